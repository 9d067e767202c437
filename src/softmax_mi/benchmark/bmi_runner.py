"""Runs bmi's estimators (PyPI ``benchmark-mi`` 0.1.3) on one sample; executed by the python of bmi's own
environment (``make bmi-env`` → ``.venv-bmi``), never imported by the package (it imports only numpy and bmi)::

    .venv-bmi/bin/python src/softmax_mi/benchmark/bmi_runner.py request.json result.json

``request.json``: ``{"samples": "<npz with x (n, d) floats and y (n,) ints>", "encoding": "label_noise" |
"one_hot_noise", "noise": 0.01, "seed": 0, "estimators": [{"name": "ksg", "params": {...}, "subsets": 10}, ...]}``.
``result.json``: ``{"versions": {...}, "results": [{"estimator", "value", "se", "subsets", "seconds",
"cpu_seconds", "params", "encoding", "error"}, ...]}``; one estimator's failure is recorded in its ``error`` and the
others still run. :func:`softmax_mi.benchmark.bmi.run_bmi` writes the request and reads the result.

The label encoding (bmi's documentation, FAQ "Do these estimators work for discrete variables?": "one can
approximate mutual information by adding small noise to the discrete variable"):

- ``label_noise``: y as one float column, y_i + ε_i, ε_i ~ N(0, noise²) (seeded);
- ``one_hot_noise``: y one-hot (K columns), each entry + N(0, noise²).

bmi then standardises every column (its default ``standardize=True``). ``subsets`` > 1 also runs the estimator on
that many disjoint seeded class-stratified subsets (batch means: se = sd(subset values)/√subsets).
"""

from __future__ import annotations

import json
import math
import os
import sys
import time

import numpy as np

ENCODINGS = ("label_noise", "one_hot_noise")
ESTIMATOR_NAMES = ("ksg", "infonce", "mine", "nwj")


def encode_labels(y: np.ndarray, encoding: str, noise: float, seed: int) -> np.ndarray:
    """The label as bmi sees it: (n, 1) for ``label_noise``, (n, K) for ``one_hot_noise``, plus seeded noise."""
    y = np.asarray(y, dtype=np.int64)
    if encoding == "label_noise":
        encoded = y[:, None].astype(np.float64)
    elif encoding == "one_hot_noise":
        encoded = np.eye(int(y.max()) + 1)[y]
    else:
        raise ValueError(f"unknown encoding {encoding!r}; use one of {', '.join(ENCODINGS)}")
    return encoded + noise * np.random.default_rng(seed).standard_normal(encoded.shape)


def subset_groups(y: np.ndarray, subsets: int, seed: int) -> np.ndarray:
    """Group index (0..subsets−1) of every point: class by class in a seeded order, dealt round-robin."""
    rng = np.random.default_rng(seed)
    order = np.concatenate([rng.permutation(np.flatnonzero(y == label)) for label in np.unique(y)])
    group = np.empty(len(y), dtype=np.int64)
    group[order] = np.arange(len(y)) % subsets
    return group


def make_estimator(name: str, params: dict, seed: int):
    import bmi

    factories = {"ksg": bmi.estimators.KSGEnsembleFirstEstimator, "infonce": bmi.estimators.InfoNCEEstimator,
                 "mine": bmi.estimators.MINEEstimator, "nwj": bmi.estimators.NWJEstimator}
    if name not in factories:
        raise ValueError(f"unknown bmi estimator {name!r}; use one of {', '.join(ESTIMATOR_NAMES)}")
    if name != "ksg":
        params = {"seed": seed, "verbose": False, **params}
    return factories[name](**params)


def run_one(spec: dict, x: np.ndarray, y_encoded: np.ndarray, y: np.ndarray, seed: int) -> dict:
    name, params, subsets = spec["name"], dict(spec.get("params", {})), int(spec.get("subsets", 0))
    wall, cpu = time.perf_counter(), time.process_time()
    record = {"estimator": name, "value": None, "se": None, "subsets": subsets, "error": None}
    try:
        estimator = make_estimator(name, params, seed)
        record["params"] = json.loads(estimator.parameters().json())
        record["value"] = float(estimator.estimate(x, y_encoded))
        if subsets > 1:
            group = subset_groups(y, subsets, seed)
            values = [float(make_estimator(name, params, seed).estimate(x[group == g], y_encoded[group == g]))
                      for g in range(subsets)]
            record["se"] = float(np.std(values, ddof=1) / math.sqrt(subsets))
    except Exception as error:  # noqa: BLE001 — one estimator's failure must not lose the others' results
        record["error"] = f"{type(error).__name__}: {error}"
    record["seconds"] = time.perf_counter() - wall
    record["cpu_seconds"] = time.process_time() - cpu
    return record


def versions() -> dict:
    from importlib.metadata import version

    return {name: version(name) for name in ("benchmark-mi", "jax", "jaxlib", "numpy", "scipy")}


def main(argv: list[str]) -> int:
    # run as a script, this file's folder leads sys.path, and its sibling bmi.py would shadow the bmi package
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [entry for entry in sys.path if os.path.abspath(entry or os.curdir) != here]
    if len(argv) != 2:
        print("usage: bmi_runner.py REQUEST.json RESULT.json", file=sys.stderr)
        return 2
    with open(argv[0]) as handle:
        request = json.load(handle)
    with np.load(request["samples"]) as samples:
        x, y = np.asarray(samples["x"], dtype=np.float64), np.asarray(samples["y"], dtype=np.int64)
    x = x.reshape(len(x), -1)
    seed, encoding = int(request.get("seed", 0)), request.get("encoding", "label_noise")
    y_encoded = encode_labels(y, encoding, float(request.get("noise", 0.01)), seed)
    results = []
    for spec in request["estimators"]:
        record = run_one(spec, x, y_encoded, y, seed)
        record["encoding"] = encoding
        results.append(record)
    with open(argv[1], "w") as handle:
        json.dump({"versions": versions(), "results": results}, handle)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
