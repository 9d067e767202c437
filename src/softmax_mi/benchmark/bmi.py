"""bmi's estimators (Czyż et al., "Beyond Normal", NeurIPS 2023; PyPI ``benchmark-mi`` 0.1.3) on our samples, run
in their own environment: bmi 0.1.3 imports only with jax/jaxlib 0.4.13, chex 0.1.82, optax 0.1.7 and
scipy < 1.13, which cannot share a venv with this package (scipy ≥ 1.13). ``make bmi-env`` builds ``.venv-bmi``
from ``requirements-bmi.lock``; :func:`run_bmi` writes the sample to a temporary npz, runs
:mod:`softmax_mi.benchmark.bmi_runner` with that venv's python and reads the estimates back::

    from softmax_mi.benchmark.bmi import run_bmi
    estimates = run_bmi(x, y, estimators=("ksg",), seed=0)
    estimates["ksg"]        # MIEstimate, nats, with a batch-means interval over 10 subsets

The estimators see the whole sample (bmi's neural ones split it 50/50 themselves), with the label encoded as bmi's
documentation suggests for a discrete variable (:mod:`~softmax_mi.benchmark.bmi_runner`: ``label_noise``, the
label as one float column plus N(0, 0.01²) noise, or ``one_hot_noise``).
"""

from __future__ import annotations

import json
import math
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from softmax_mi.benchmark.bmi_runner import ENCODINGS, ESTIMATOR_NAMES
from softmax_mi.mi import MIEstimate

__all__ = ["BMI_PYTHON", "DEFAULT_SUBSETS", "RUNNER", "BmiEnvironmentError", "parse_results", "run_bmi"]

BMI_PYTHON = ".venv-bmi/bin/python"
RUNNER = Path(__file__).with_name("bmi_runner.py")
DEFAULT_SUBSETS = {"ksg": 10, "infonce": 0, "mine": 0, "nwj": 0}  # keys: softmax_mi.registry.BMI_ESTIMATORS
"""Batch-means subsets per bmi estimator: KSG gets an interval from 10 subsets (cheap); the neural ones none (each
subset is a full training run)."""


class BmiEnvironmentError(RuntimeError):
    """bmi's environment is missing or its runner failed."""


def parse_results(payload: Mapping[str, Any], level: float = 0.95) -> dict[str, MIEstimate]:
    """The runner's result JSON → estimator name → :class:`~softmax_mi.MIEstimate` (nats). An estimator whose run
    failed raises :class:`BmiEnvironmentError` naming it and bmi's error; ``se`` (batch means over ``subsets``) gives
    a t interval, none otherwise (NaN bounds). ``details``: seconds, cpu_seconds, encoding, subsets, versions."""
    try:
        results, versions = payload["results"], payload.get("versions", {})
    except (KeyError, TypeError):
        raise BmiEnvironmentError("bmi runner output has no 'results' list; rerun it (the runner may be stale: "
                                  "`make bmi-env`)") from None
    estimates = {}
    for record in results:
        name = record.get("estimator", "?")
        if record.get("error") or record.get("value") is None:
            raise BmiEnvironmentError(f"bmi estimator {name!r} failed: {record.get('error') or 'no value'}")
        value, se = float(record["value"]), record.get("se")
        details = {key: record.get(key) for key in ("seconds", "cpu_seconds", "encoding", "subsets", "params")}
        details["versions"] = versions
        if math.isnan(value):
            raise BmiEnvironmentError(f"bmi estimator {name!r} returned NaN (e.g. batch size above the training "
                                      "half of the sample): lower its batch_size")
        if se is None:
            estimates[name] = MIEstimate(value=value, level=level, details=details)
            continue
        from scipy import stats

        quantile = float(stats.t.ppf(0.5 + level / 2, int(record["subsets"]) - 1))
        estimates[name] = MIEstimate(value=value, low=value - quantile * se, high=value + quantile * se, se=float(se),
                                     level=level, details=details)
    return estimates


def run_bmi(x, y, *, estimators: Sequence[str] = ("ksg",), settings: Mapping[str, Mapping[str, Any]] | None = None,
            seed: int = 0, encoding: str = "label_noise", noise: float = 0.01,
            subsets: Mapping[str, int] | None = None, python: str | Path = BMI_PYTHON,
            timeout: float | None = None, level: float = 0.95) -> dict[str, MIEstimate]:
    """Run bmi's ``estimators`` (of ``ksg``, ``infonce``, ``mine``, ``nwj``) on features ``x`` (n × d) and integer
    labels ``y`` (n,) in bmi's own environment; returns name → :class:`~softmax_mi.MIEstimate` (nats).

    Args:
        settings: per-estimator keyword arguments of bmi's class (``KSGEnsembleFirstEstimator``,
            ``InfoNCEEstimator``, ``MINEEstimator``, ``NWJEstimator``); bmi's defaults otherwise (neural ones:
            ``verbose=False`` and ``seed=seed`` added).
        encoding, noise: how the label is given to bmi (see :mod:`softmax_mi.benchmark.bmi_runner`).
        subsets: batch-means subsets per estimator for an interval (default :data:`DEFAULT_SUBSETS`).
        python: the interpreter of bmi's environment (``make bmi-env``).
        timeout: seconds before the run is killed (None: no limit).

    Raises :class:`BmiEnvironmentError` when the environment is missing (naming ``make bmi-env``), the runner
    fails or an estimator fails.
    """
    unknown = sorted(set(estimators) - set(ESTIMATOR_NAMES))
    if unknown:
        raise ValueError(f"unknown bmi estimators {unknown}; use some of {', '.join(ESTIMATOR_NAMES)}")
    if encoding not in ENCODINGS:
        raise ValueError(f"unknown encoding {encoding!r}; use one of {', '.join(ENCODINGS)}")
    python = Path(python)
    if not python.exists():
        raise BmiEnvironmentError(f"bmi's environment is missing: {python} does not exist; build it with "
                                  "`make bmi-env` (pins: requirements-bmi.lock), or pass python= its interpreter")
    x = np.asarray(x, dtype=np.float64)
    x = x.reshape(len(x), -1)
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != len(x) or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"y must be 1-D integer labels with one entry per row of x ({len(x)}), got shape "
                         f"{y.shape} dtype {y.dtype}")
    subsets = {**DEFAULT_SUBSETS, **(subsets or {})}
    settings = settings or {}
    with tempfile.TemporaryDirectory(prefix="bmi-") as folder:
        folder = Path(folder)
        np.savez(folder / "samples.npz", x=x, y=y)
        request = {"samples": str(folder / "samples.npz"), "encoding": encoding, "noise": noise, "seed": seed,
                   "estimators": [{"name": name, "params": dict(settings.get(name, {})), "subsets": subsets[name]}
                                  for name in estimators]}
        (folder / "request.json").write_text(json.dumps(request))
        try:
            process = subprocess.run([str(python), str(RUNNER), str(folder / "request.json"),
                                      str(folder / "result.json")], capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise BmiEnvironmentError(f"bmi runner did not finish within {timeout} s ({', '.join(estimators)} on "
                                      f"{len(x)} rows); raise timeout= or run fewer estimators") from None
        if process.returncode != 0:
            tail = process.stderr.strip().splitlines()[-1:] or ["(no output)"]
            raise BmiEnvironmentError(f"bmi runner failed (exit {process.returncode}) under {python}: {tail[0]}; "
                                      "rebuild the environment with `make bmi-env`")
        payload = json.loads((folder / "result.json").read_text())
    return parse_results(payload, level=level)

