"""Score benchmark estimates against the truth: per-run error and coverage, and the summary per estimator × family.

Torch-free and pipeline-free: the inputs are plain tables (one row per run with ``estimate``, ``low``, ``high``, and
one row per task with its truth), so results of any estimator run elsewhere (e.g. bmi's, in its own environment)
are scored by the same code.

- :func:`score_runs`: joins the runs with the truths (on ``dataset``, the task's name) and adds ``error``
  (estimate − truth), ``abs_error`` and ``covered`` (the coverage study's one definition,
  :func:`softmax_mi.benchmark.coverage.covers`: the interval, widened by the truth's standard error, meets the
  truth interval [truth_low, truth_high]; NA for a failed run or a run without an interval);
- :func:`invariance_shifts`: per bijection task, the estimate on the mapped sample minus the estimate on the
  base task's sample of the same seed and size (the same draw, mapped), per estimator;
- :func:`summarise_estimates`: bias, |error|, RMSE, coverage, interval width, ceiling rate, time and the
  invariance shift per estimator × family.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
import pandas as pd

from softmax_mi.benchmark.coverage import covers
from softmax_mi.provenance import aggregate_provenance

SUMMARY_KEYS = ["estimator", "family"]


def score_runs(runs: pd.DataFrame, truths: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """``runs`` (dataset, estimate, low, high, ...) joined with ``truths`` (dataset, truth, truth_se, truth_low,
    truth_high, ...), with ``error``, ``abs_error``, ``covered`` (:func:`softmax_mi.benchmark.coverage.covers` at
    ``level``) and ``width`` (high − low) added."""
    missing = sorted(set(runs["dataset"]) - set(truths["dataset"]))
    if missing:
        raise ValueError(f"no truth for the task(s) {', '.join(missing)}: the truth table and the runs disagree "
                         "(rerun the benchmark's truth step)")
    runs = runs if "status" in runs.columns else runs.assign(status="ok")
    table = runs.merge(truths.drop(columns=[c for c in truths.columns if c in runs.columns and c != "dataset"]),
                       on="dataset", how="left", validate="many_to_one")
    table["error"] = table["estimate"] - table["truth"]
    table["abs_error"] = table["error"].abs()
    table["width"] = table["high"] - table["low"]
    table["covered"] = covers(table, level=level)  # NA: a failed run, or no interval (e.g. bmi's neural estimators)
    return table


def base_task_of(spec: dict) -> dict | None:
    """The (family, params) a bijection task spec maps, as a plain task spec without a name; None for others."""
    if spec.get("family") != "bijection":
        return None
    params = dict(spec.get("params") or {})
    base = dict(params.get("base") or {"family": "gaussian"})
    family = base.pop("family")
    return {"family": family, "params": base}


def invariance_shifts(estimates: pd.DataFrame, specs: Sequence[dict]) -> pd.DataFrame:
    """Per bijection task whose base task is also in ``specs``: estimate(mapped) − estimate(base), matched on
    estimator, seed and n; columns dataset (the bijection task), base_dataset, estimator, seed, n, shift (nats)."""
    key = {json.dumps({"family": s["family"], "params": dict(s.get("params") or {})}, sort_keys=True): s["name"]
           for s in specs}
    pairs = []
    for spec in specs:
        base = base_task_of(spec)
        name = key.get(json.dumps(base, sort_keys=True)) if base is not None else None
        if name is not None:
            pairs.append((spec["name"], name))
    columns = ["dataset", "base_dataset", "estimator", "seed", "n", "shift"]
    if not pairs:
        return pd.DataFrame(columns=columns)
    runs = estimates[["dataset", "estimator", "seed", "n", "estimate"]]
    frames = []
    for mapped, base in pairs:
        joined = runs[runs["dataset"] == mapped].merge(runs[runs["dataset"] == base], on=["estimator", "seed", "n"],
                                                    suffixes=("", "_base"))
        joined["base_dataset"] = base
        joined["shift"] = joined["estimate"] - joined["estimate_base"]
        frames.append(joined[columns])
    return pd.concat(frames, ignore_index=True)


def summarise_estimates(estimates: pd.DataFrame, shifts: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per estimator × family over every task, size and seed of that family."""
    grouped = estimates.groupby(SUMMARY_KEYS, sort=True)
    summary = grouped.agg(
        n_tasks=("dataset", "nunique"),
        n_runs=("estimate", "size"),
        failure_rate=("status", lambda status: float((status != "ok").mean())),
        bias=("error", "mean"),
        error_std=("error", "std"),
        mean_abs_error=("abs_error", "mean"),
        median_abs_error=("abs_error", "median"),
        rmse=("error", lambda e: float(np.sqrt(np.nanmean(np.square(e)))) if e.notna().any() else np.nan),
        coverage=("covered", "mean"),
        mean_width=("width", "mean"),
        ceiling_rate=("at_ceiling", "mean"),
        mean_seconds=("seconds", "mean"),
        **aggregate_provenance(),
    ).reset_index()
    summary["invariance_shift"] = np.nan
    summary["invariance_abs_shift"] = np.nan
    if shifts is not None and len(shifts):
        moved = shifts.groupby("estimator")["shift"].agg(["mean", lambda s: s.abs().mean()])
        moved.columns = ["invariance_shift", "invariance_abs_shift"]
        rows = summary["family"] == "bijection"
        for column in moved.columns:
            summary.loc[rows, column] = summary.loc[rows, "estimator"].map(moved[column])
    return summary
