"""Pipeline stages of the discrete-label MI benchmark (issue 16, docs/benchmark.md).

truth (every task, one job) ─┐
estimate (one job per estimator: every task × n × seed) ─┤
estimate_bmi (bmi's own estimators, one job, in .venv-bmi) ─┴→ summarise (estimates table, summary, metrics, figures).

Every estimator sees the same samples: a sample's seed derives from the base seed, the task and n only.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import time

import pandas as pd

from softmax_mi.io import read_table, write_json, write_table
from softmax_mi.provenance import AGGREGATE_PROVENANCE_COLUMNS, PROVENANCE_COLUMNS, provenance
from softmax_mi.runtime import derive_seed, resolve_device, seed_everything

log = logging.getLogger(__name__)

TASK_COLUMNS = {
    "dataset": "the benchmark task's name (params.yaml benchmark.tasks[].name)",
    "family": "task family (softmax_mi.benchmark.tasks.TASK_FAMILIES)",
    "n_classes": "number of classes K",
    "dim": "dimension d of x",
    "prior": "label prior: uniform | step | exponential",
    "rho": "imbalance ratio ρ of the prior (largest / smallest class; 1 for uniform)",
    "separation": "distance s between neighbouring class means (Gaussian / Student-t line; NaN otherwise)",
    "nu": "Student-t degrees of freedom ν (NaN otherwise)",
    "map": "the bijection of x (asinh | halfcube | rotate_warp; 'none' otherwise)",
    "epsilon": "MNIST label flip probability ε (NaN otherwise)",
    "entropy_y": "H(Y) of the label prior, nats (the upper bound on I(X;Y))",
}
TRUTH_COLUMNS = {
    **TASK_COLUMNS,
    "truth": "true I(X;Y), nats (MNIST: the upper end of the truth interval)",
    "truth_se": "standard error of truth, nats (0 for a closed form or a quadrature)",
    "truth_low": "lower end of the interval the truth lies in, nats (= truth unless only bounded: MNIST)",
    "truth_high": "upper end of that interval, nats",
    "truth_method": "how the truth was obtained (closed form, quadrature, Monte Carlo with its draws, interval)",
    "truth_seconds": "CPU seconds of the truth computation",
    **PROVENANCE_COLUMNS,
}
RUN_COLUMNS = {
    "dataset": TASK_COLUMNS["dataset"],
    "estimator": "MI estimator (softmax_mi.benchmark.estimators.ESTIMATORS; bmi_<name>: bmi's own, benchmark.bmi)",
    "seed": "base seed (params.yaml seeds); the sample's and the estimator's seeds derive from it",
    "n_per_class": "rows per class of the sample (n = n_per_class × K)",
    "n": "rows of the sample (train + held-out)",
    "sweep": "True when this size is one of benchmark.sweep.n_per_class only (sample-efficiency rows)",
    "status": "'ok', or 'failed: <reason>' (diverged to NaN, or too few rows of a class): estimate and interval NaN",
    "n_train": "rows the estimator trained on (the rest is held out; cross-fitted: the folds' mean)",
    "estimate": "the estimate of I(X;Y), nats",
    "low": "lower end of the estimate's interval (level: benchmark.level), nats",
    "high": "upper end of the estimate's interval, nats",
    "se": "standard error of the estimate, nats",
    "ceiling": "the most the estimator can report on this sample (log K for softmax, ...), nats; NaN if none",
    "at_ceiling": "True when the estimate sits at its ceiling (then it says nothing about larger MI)",
    "interval": "how the interval was computed (softmax_mi.benchmark.intervals; crossfit_k: over k folds; "
                "_bracket: the upper end raised to the in-sample read-out's upper limit; _curve: widened to the "
                "learning-curve extrapolation's interval; _prior: softmax's lower end lowered by log K − H(Y) of the "
                "training labels)",
    "in_sample": "softmax, pc_softmax: the same read-out on the rows the model was fitted on (resubstitution: "
                 "optimistic where the model overfits; cross-fitted: the folds' mean), nats; NaN otherwise",
    "extrapolated": "estimators of benchmark.extrapolate: the read-out extrapolated to unlimited training rows from "
                    "a second fit on half of them, value + (value − half value)/(2^rate − 1) (cross-fitted: the "
                    "folds' mean), nats; the interval reaches it; NaN otherwise",
    "seconds": "wall time of split + fit + estimate + interval, seconds",
    "cpu_seconds": "process CPU time of the same, seconds",
    "train_steps": "optimiser steps taken (0 for kNN; cross-fitted: the folds' mean)",
    "device": "torch device the estimator ran on",
    **PROVENANCE_COLUMNS,
}
ESTIMATES_COLUMNS = {
    **{k: v for k, v in TRUTH_COLUMNS.items() if k not in PROVENANCE_COLUMNS and k != "truth_seconds"},
    **RUN_COLUMNS,
    "error": "estimate − truth, nats",
    "abs_error": "|estimate − truth|, nats",
    "width": "high − low, nats",
    "covered": "True when [low, high], widened in quadrature by z·truth_se, meets [truth_low, truth_high] "
               "(softmax_mi.benchmark.coverage.covers); NA for a failed run or one without an interval",
}
SUMMARY_COLUMNS = {
    "estimator": RUN_COLUMNS["estimator"],
    "family": TASK_COLUMNS["family"],
    "n_tasks": "tasks of the family",
    "n_runs": "runs (task × n × seed) aggregated",
    "bias": "mean of estimate − truth, nats",
    "error_std": "standard deviation of estimate − truth over the runs, nats",
    "failure_rate": "share of runs that failed (status != 'ok'); the other columns are over the runs that did not",
    "mean_abs_error": "mean |estimate − truth|, nats",
    "median_abs_error": "median |estimate − truth|, nats (robust to a few diverged estimates)",
    "rmse": "root mean squared error, nats",
    "coverage": "share of runs whose interval meets the truth (nominal: benchmark.level)",
    "mean_width": "mean interval width, nats",
    "ceiling_rate": "share of runs at the estimator's ceiling",
    "mean_seconds": "mean wall time per run, seconds",
    "invariance_shift": "bijection rows: mean of estimate(mapped x) − estimate(x) on the same draw, nats (NaN otherwise)",
    "invariance_abs_shift": "bijection rows: mean |estimate(mapped x) − estimate(x)|, nats (NaN otherwise)",
    **AGGREGATE_PROVENANCE_COLUMNS,
}


def check_tasks(benchmark: dict) -> None:
    """Raise ValueError naming the key when params.yaml `benchmark` lists a task twice, a task the library refuses
    (its family's parameters), or a sweep or bmi task that is not listed. Called when the workflow is parsed."""
    from softmax_mi.benchmark.tasks import make_task  # numpy + scipy, no torch

    names: list[str] = []
    for index, spec in enumerate(benchmark["tasks"]):
        if spec["name"] in names:
            raise ValueError(f"benchmark.tasks.{index}.name: {spec['name']!r} is given twice (fix: rename one)")
        names.append(spec["name"])
        try:
            make_task(spec)
        except ValueError as error:
            raise ValueError(f"benchmark.tasks.{index}: {error} (fix: give the family's parameters, "
                             "softmax_mi.benchmark.tasks)") from None
    for key, chosen in (("sweep.tasks", benchmark["sweep"]["tasks"]), ("bmi.tasks", bmi_tasks(benchmark))):
        for name in chosen:
            if name not in names:
                raise ValueError(f"benchmark.{key}: {name!r} is not a task of benchmark.tasks (fix: use one of "
                                 f"{', '.join(names)})")


def bmi_tasks(benchmark: dict) -> list[str]:
    """The task names ``benchmark.bmi.tasks`` lists, when bmi runs at all (its estimators not [])."""
    bmi = benchmark.get("bmi") or {}
    return list(bmi.get("tasks") or []) if bmi.get("estimators") else []


def with_source(spec: dict, mnist: list[str]) -> dict:
    """An MNIST task reads the prepared arrays of the rule's input (the task's name and identity are unchanged)."""
    if spec["family"] != "mnist" or not mnist:
        return spec
    return {**spec, "params": {**(spec.get("params") or {}), "source": mnist[0]}}


def with_se_target(spec: dict, se_target: float) -> dict:
    """A Student-t task (or a bijection of one) with its Monte-Carlo truth's target standard error."""
    params = dict(spec.get("params") or {})
    if spec["family"] == "student_t":
        params = {"se_target": se_target, **params}
    elif spec["family"] == "bijection" and (params.get("base") or {}).get("family") == "student_t":
        params["base"] = {"se_target": se_target, **params["base"]}
    return {**spec, "params": params}


def sample_seed(seed: int, spec: dict, n: int) -> int:
    """The seed of the sample of ``spec`` at size ``n``: the same for every estimator."""
    return derive_seed(seed, "benchmark-sample", spec, n)


def truth(*, tasks: list[dict], seed: int, truth_se_target: float, inputs: dict, outputs: dict) -> None:
    """The truth of every task, one row each: exact, quadrature, Monte Carlo (se ≤ ``truth_se_target``) or an
    interval (MNIST)."""
    from softmax_mi.benchmark.tasks import make_task

    rows = []
    for spec in tasks:
        task = make_task(with_se_target(with_source(spec, inputs.get("mnist", [])), truth_se_target))
        started = time.process_time()
        result = task.truth(derive_seed(seed, "benchmark-truth", spec))
        rows.append({"dataset": task.name, "family": task.family, **task.describe(), **result.as_record(),
                     "truth_seconds": time.process_time() - started, **provenance({"task": spec})})
        log.info("%s: truth %.4f ± %.4f in [%.4f, %.4f] nats (%s), H(Y) %.4f", task.name, result.value, result.se,
                 result.low, result.high, result.method, task.entropy_y)
    write_table(pd.DataFrame(rows)[list(TRUTH_COLUMNS)], outputs["truths"], column_docs=TRUTH_COLUMNS,
                table_doc="the true I(X;Y) of every benchmark task")


def samples(runs: list, seeds: list[int], mnist: list[str]):
    """(task, spec, rows per class, n, seed, x, y) of every run × seed: the draw every estimator sees (its seed:
    :func:`sample_seed`)."""
    from softmax_mi.benchmark.tasks import make_task

    for spec, sizes in runs:
        task = make_task(with_source(spec, mnist))
        for n_per_class in sizes:
            n = n_per_class * task.n_classes
            for seed in seeds:
                yield (task, spec, n_per_class, n, seed, *task.sample(n, sample_seed(seed, spec, n)))


def estimate(*, runs: list, estimator: str, settings: dict, seeds: list[int], main_sizes: list[int], folds: int,
             extrapolate: float | None, test_fraction: float, level: float, device: str, inputs: dict,
             outputs: dict) -> None:
    """One estimator on every task × size × seed; ``runs``: (task spec, rows per class) pairs (softmax_mi.grid);
    ``folds``: 1 for one held-out split of ``test_fraction``, k ≥ 2 for k-fold cross-fitting; ``extrapolate``: the
    learning-curve rate (None: off; softmax_mi.benchmark.intervals)."""
    from softmax_mi.benchmark.estimators import build  # torch: imported by the job, not at parse time

    device = resolve_device(device)
    method = build(estimator, settings=settings, folds=folds, extrapolate=extrapolate, test_fraction=test_fraction,
                   level=level, device=device)
    warm_up(method, runs[0][0], min(main_sizes), inputs.get("mnist", []))
    rows = []
    for task, spec, n_per_class, n, seed, x, y in samples(runs, seeds, inputs.get("mnist", [])):
        run_seed = derive_seed(seed, "benchmark-estimate", spec, n, estimator)
        seed_everything(run_seed)
        row = run_row(method, x, y, run_seed)
        rows.append({
            "dataset": task.name, "estimator": estimator, "seed": seed, "n_per_class": n_per_class, "n": n,
            "sweep": n_per_class not in main_sizes, **row, "device": device,
            **provenance({"task": spec, "estimator": estimator, "settings": settings, "seed": seed, "n": n,
                          "folds": folds, "extrapolate": extrapolate, "test_fraction": test_fraction,
                          "level": level}),
        })
        log.info("%s n=%d seed %d: %.4f [%.4f, %.4f] nats (%s)", task.name, n, seed, row["estimate"], row["low"],
                 row["high"], row["status"])
    write_table(pd.DataFrame(rows, columns=list(RUN_COLUMNS)), outputs["rows"], column_docs=RUN_COLUMNS,
                table_doc=f"benchmark runs of {estimator}")


def estimate_bmi(*, runs: list, estimators: list[str], settings: dict, encoding: str, noise: float, seeds: list[int],
                 main_sizes: list[int], level: float, inputs: dict, outputs: dict) -> None:
    """bmi's own ``estimators`` (softmax_mi.benchmark.bmi.run_bmi, in ``.venv-bmi``) on the very samples the other
    estimators see (:func:`sample_seed`), rows in :data:`RUN_COLUMNS` named ``bmi_<name>``. bmi gives KSG a
    batch-means interval and its neural estimators none (NaN bounds; ``interval`` says so). A missing environment
    stops the job with one line naming ``make bmi-env``."""
    from softmax_mi.benchmark import bmi

    if not os.path.exists(bmi.BMI_PYTHON):
        raise SystemExit(f"benchmark_bmi: bmi's environment is missing ({bmi.BMI_PYTHON} does not exist); build it "
                         "with `make bmi-env`, or set benchmark.bmi.estimators: [] to leave bmi out")
    rows = []
    for task, spec, n_per_class, n, seed, x, y in samples(runs, seeds, inputs.get("mnist", [])):
        results = bmi_results(x, y, estimators, settings, derive_seed(seed, "benchmark-estimate", spec, n, "bmi"),
                              encoding, noise, level)
        for name, row in results.items():
            rows.append({
                "dataset": task.name, "estimator": f"bmi_{name}", "seed": seed, "n_per_class": n_per_class, "n": n,
                "sweep": n_per_class not in main_sizes, **row, "n_train": n, "device": "cpu",
                **provenance({"task": spec, "estimator": f"bmi_{name}", "settings": settings.get(name, {}),
                              "encoding": encoding, "noise": noise, "seed": seed, "n": n, "level": level}),
            })
            log.info("%s n=%d seed %d bmi_%s: %.4f [%.4f, %.4f] nats (%s)", task.name, n, seed, name,
                     row["estimate"], row["low"], row["high"], row["status"])
    write_table(pd.DataFrame(rows, columns=list(RUN_COLUMNS)), outputs["rows"], column_docs=RUN_COLUMNS,
                table_doc="benchmark runs of bmi's estimators (benchmark-mi, its own environment)")


def bmi_results(x, y, estimators: list[str], settings: dict, seed: int, encoding: str, noise: float,
                level: float) -> dict[str, dict]:
    """name → the result columns of bmi's estimators on one sample. One runner call for all of them; when one
    estimator fails (e.g. NaN), each is rerun alone so that only the failing one becomes a ``failed`` row. A broken
    environment stops the job with one line naming ``make bmi-env``."""
    from softmax_mi.benchmark import bmi

    def call(names: list[str]):
        return bmi.run_bmi(x, y, estimators=names, settings=settings, seed=seed, encoding=encoding, noise=noise,
                           level=level, python=bmi.BMI_PYTHON)

    try:
        results = call(estimators)
    except bmi.BmiEnvironmentError as error:
        if not str(error).startswith("bmi estimator"):
            raise SystemExit(f"benchmark_bmi: {error}") from None
        results = {}
        for name in estimators:
            try:
                results.update(call([name]))
            except bmi.BmiEnvironmentError as failure:
                if not str(failure).startswith("bmi estimator"):
                    raise SystemExit(f"benchmark_bmi: {failure}") from None
                results[name] = str(failure)
    return {name: bmi_row(results[name]) for name in estimators}


def bmi_row(result) -> dict:
    """The result columns of one bmi estimate (an :class:`~softmax_mi.MIEstimate`, or the failure's message)."""
    if isinstance(result, str):
        return failed_row(result)
    details = result.details
    subsets = int(details.get("subsets") or 0)
    interval = (f"bmi batch means over {subsets} subsets (t)" if result.se is not None and not math.isnan(result.se)
                else "none: bmi gives this estimator no interval")
    steps = (details.get("params") or {}).get("max_n_steps", 0)
    return {"status": "ok", "estimate": result.value, "low": result.low, "high": result.high, "se": result.se,
            "ceiling": math.nan, "at_ceiling": False, "interval": interval,
            "seconds": float(details.get("seconds") or math.nan),
            "cpu_seconds": float(details.get("cpu_seconds") or math.nan), "train_steps": int(steps or 0)}


def failed_row(reason: str) -> dict:
    """The result columns of a run that could not give an estimate: NaN estimate and interval, ``status`` why."""
    return {"status": f"failed: {reason}", "n_train": 0, "estimate": math.nan, "low": math.nan, "high": math.nan,
            "se": math.nan, "ceiling": math.nan, "at_ceiling": False, "interval": "", "seconds": math.nan,
            "cpu_seconds": math.nan, "train_steps": 0}


def run_row(method, x, y, seed: int) -> dict:
    """The result columns of one estimate. A diverged estimator (NaN) or one that cannot run on this sample (too few
    rows of a class) is a result too: NaN estimate and interval, ``status`` the reason, never a failed job."""
    try:
        result = method.estimate(x, y, seed=seed)
    except (FloatingPointError, ValueError) as error:
        return failed_row(str(error).splitlines()[0] if str(error) else type(error).__name__)
    details = result.details
    return {"status": "ok", "n_train": int(details.get("n_train", 0)), "estimate": result.value, "low": result.low,
            "high": result.high, "se": result.se, "ceiling": float(details.get("ceiling", math.nan)),
            "at_ceiling": bool(details.get("at_ceiling", False)), "interval": str(details.get("interval", "")),
            "seconds": float(details.get("seconds", math.nan)), "cpu_seconds": float(details.get("cpu_seconds", math.nan)),
            "train_steps": int(details.get("train_steps", 0)), "in_sample": float(details.get("in_sample", math.nan)),
            "extrapolated": float(details.get("extrapolated", math.nan))}


def warm_up(method, spec: dict, n_per_class: int, mnist: list[str]) -> None:
    """One untimed estimate on a sample of ``spec`` (a main size): the first call in a process pays one-off costs
    (lazy imports, allocator and thread-pool start-up, seconds) that would otherwise land in the first run's
    ``seconds``."""
    from softmax_mi.benchmark.tasks import make_task

    task = make_task(with_source(spec, mnist))
    single = dataclasses.replace(method, folds=1, extrapolate=None)  # one fit pays them as well as k (or a twin) would
    single.estimate(*task.sample(n_per_class * task.n_classes, derive_seed(0, "benchmark-warm-up", spec)), seed=0)


def summarise(*, tasks: list[dict], level: float, inputs: dict, outputs: dict) -> None:
    """The estimates table (runs scored against the truth), the summary per estimator × family, the headline
    metrics and the figures."""
    from softmax_mi.benchmark.scoring import invariance_shifts, score_runs, summarise_estimates
    from softmax_mi.plots_benchmark import plot_bias, plot_coverage  # matplotlib: imported by the job

    runs = pd.concat([read_table(path) for path in inputs["rows"]], ignore_index=True)
    estimates = score_runs(runs, read_table(inputs["truths"]), level)[list(ESTIMATES_COLUMNS)]
    estimates = estimates.sort_values(["family", "dataset", "estimator", "n", "seed"], ignore_index=True)
    write_table(estimates, outputs["estimates"], column_docs=ESTIMATES_COLUMNS,
                table_doc="one row per benchmark task × estimator × seed × n, scored against the truth")
    shifts = invariance_shifts(estimates, tasks)
    summary = summarise_estimates(estimates, shifts)[list(SUMMARY_COLUMNS)]
    write_table(summary, outputs["summary"], column_docs=SUMMARY_COLUMNS,
                table_doc="benchmark per estimator × family")
    write_json(headline(estimates), outputs["metrics"])
    plot_bias(estimates, outputs["bias_figure"])
    plot_coverage(summary, outputs["coverage_figure"], level)


def headline(estimates: pd.DataFrame) -> dict:
    """Per estimator over every run: mean |error| (nats), coverage, mean seconds (for `dvc metrics show`)."""
    grouped = estimates.groupby("estimator")
    return {name: {"mean_abs_error_nats": round(float(frame["abs_error"].mean()), 4),
                   "coverage": round(float(frame["covered"].mean()), 4),
                   "mean_seconds": round(float(frame["seconds"].mean()), 3)}
            for name, frame in grouped}
