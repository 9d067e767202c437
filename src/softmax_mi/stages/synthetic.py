"""Pipeline stages of the synthetic MI experiment (paper §2, E1–E3).

sample → truth → estimate (one row per task × dim × balance × estimator × seed) → gather → summarise.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd

from softmax_mi.data.synthetic import entropy, held_out_counts, make_task
from softmax_mi.io import atomic_path, read_json, read_table, write_json, write_table
from softmax_mi.provenance import AGGREGATE_PROVENANCE_COLUMNS, PROVENANCE_COLUMNS, provenance
from softmax_mi.runtime import derive_seed, resolve_device, seed_everything
from softmax_mi.summaries import SEED_COLUMNS, summarise_synthetic, synthetic_headline, synthetic_plot_data

log = logging.getLogger(__name__)

MI_ESTIMATES_COLUMNS = {
    "dataset": "synthetic task: 'gaussian' (paper §2 mixture) or 'uniform' (Gao et al. 2017, closed form)",
    "dim": "dimension d of x",
    "balance": "label prior: 'balanced' or 'imbalanced' (training class counts from params.yaml)",
    "n_classes": "number of classes K",
    "estimator": "MI estimator (softmax_mi.estimators.ESTIMATORS)",
    "seed": "base seed from params.yaml; data and training seeds derive from it",
    "n_train": "training examples (incl. the validation share held out for model selection)",
    "n_test": "held-out examples the estimate is computed on",
    "mi_true": "true I(X;Y) in nats: closed form, or Monte-Carlo mean over truth_mc_samples fresh draws",
    "mi_true_se": "standard error of mi_true in nats (0 for a closed form)",
    "mi_true_test": "plug-in truth on this run's test sample: mean of log p(x|y) − log p(x), nats",
    "mi_estimate": "the estimator's I(X;Y) estimate on the test split, nats",
    "error": "mi_estimate − mi_true, nats",
    "entropy_y": "H(Y) of the label prior, nats (upper bound on I(X;Y))",
    "micro_acc": "test accuracy of the classifier, fraction (NaN for estimators without a classifier)",
    "macro_acc": "mean per-class test accuracy, fraction (NaN for estimators without a classifier)",
    "train_steps": "optimiser steps taken (0 for non-parametric estimators)",
    "seconds": "wall time of fit + estimate, seconds",
    "device": "torch device the estimator ran on",
    **PROVENANCE_COLUMNS,
}

SUMMARY_COLUMNS = {
    "dataset": MI_ESTIMATES_COLUMNS["dataset"],
    "dim": MI_ESTIMATES_COLUMNS["dim"],
    "balance": MI_ESTIMATES_COLUMNS["balance"],
    "estimator": MI_ESTIMATES_COLUMNS["estimator"],
    "n_seeds": SEED_COLUMNS["n_seeds"],
    "seed_list": SEED_COLUMNS["seed_list"],
    "n_classes": MI_ESTIMATES_COLUMNS["n_classes"],
    "mi_true": MI_ESTIMATES_COLUMNS["mi_true"],
    "entropy_y": MI_ESTIMATES_COLUMNS["entropy_y"],
    "mean": "mean of mi_estimate over seeds, nats",
    "std": "sample standard deviation of mi_estimate over seeds, nats (NaN for one seed)",
    "bias": "mean − mi_true, nats",
    "rmse": "root mean squared error of mi_estimate against mi_true over seeds, nats",
    "mean_seconds": "mean wall time per run, seconds",
    **AGGREGATE_PROVENANCE_COLUMNS,
}


def task_seed(seed: int, purpose: str, task: dict, *labels: str) -> int:
    """The seed of one draw (sample, truth, estimate + estimator) for ``task``; the whole task spec is a label, so
    tasks that differ in any field draw differently."""
    return derive_seed(seed, purpose, *labels, task)


def sample(*, task: dict, test_ratio: float, seeds: list[int], outputs: dict) -> None:
    """Per seed, draw a training set with the configured class counts and a fresh test set (counts × test_ratio);
    ``outputs["data"]`` lists one file per seed, in the order of ``seeds``. Each seed's draw depends on that seed
    and the task only, so one job per task costs one process start, not one per seed."""
    problem = make_task(task)
    paths = outputs["data"]
    if len(paths) != len(seeds):
        raise ValueError(f"sample: {len(paths)} output files for {len(seeds)} seeds ({paths})")
    for seed, path in zip(seeds, paths):
        rng = np.random.default_rng(task_seed(seed, "sample", task))
        parts = []
        for split, counts in (("train", problem.class_counts),
                              ("test", held_out_counts(problem.class_counts, test_ratio))):
            x, y = problem.sample(counts, rng)
            frame = pd.DataFrame(x, columns=[f"x{i}" for i in range(x.shape[1])])
            frame.insert(0, "y", y.astype(np.int64))
            frame.insert(0, "split", split)
            parts.append(frame)
        write_table(pd.concat(parts, ignore_index=True), path)
    log.info("sampled %s, seeds %s: train %s, test %s", task, seeds, problem.class_counts,
             held_out_counts(problem.class_counts, test_ratio))


def truth(*, task: dict, mc_samples: int, seed: int, outputs: dict) -> None:
    """True I(X;Y) (closed form, or Monte Carlo with its standard error) and H(Y) of the prior."""
    problem = make_task(task)
    rng = np.random.default_rng(task_seed(seed, "truth", task))
    mi, se = problem.true_mi(mc_samples, rng)
    write_json(
        {"mi_true": mi, "mi_true_se": se, "entropy_y": entropy(problem.prior), "mc_samples": mc_samples},
        outputs["truth"],
    )
    log.info("true MI %.4f ± %.4f nats (H(Y) = %.4f)", mi, se, entropy(problem.prior))


def load_splits(path: str | Path, n_classes: int) -> dict:
    """The splits of a sampled data file (one read), as :class:`~softmax_mi.estimators.base.LabeledSample` by name."""
    from softmax_mi.estimators.base import LabeledSample  # torch: imported only by jobs that need it

    frame = read_table(path)
    features = [c for c in frame.columns if c.startswith("x")]
    return {
        split: LabeledSample.from_arrays(
            part[features].to_numpy(np.float32, copy=True), part["y"].to_numpy(), n_classes=n_classes
        )
        for split, part in frame.groupby("split", sort=False)
    }


def estimate(
    *, task: dict, estimator: str, settings: dict, seeds: list[int], device: str, inputs: dict, outputs: dict
) -> None:
    """For each seed: fit one estimator on that seed's training split, evaluate it on its test split; one row each."""
    data = inputs["data"]
    if len(data) != len(seeds):
        raise ValueError(f"estimate: {len(data)} data files for {len(seeds)} seeds ({data})")
    reference = read_json(inputs["truth"])
    rows = [estimate_one(task, estimator, settings, seed, device, path, reference) for seed, path in zip(seeds, data)]
    write_table(pd.DataFrame(rows), outputs["rows"], column_docs=MI_ESTIMATES_COLUMNS)


def estimate_one(
    task: dict, estimator: str, settings: dict, seed: int, device: str, data: str, reference: dict
) -> dict:
    """One run: the result row of ``estimator`` on the data file of ``seed``."""
    from softmax_mi.estimators import build_estimator  # imports torch: only the jobs that train pay for it

    problem = make_task(task)
    splits = load_splits(data, problem.n_classes)
    train, test = splits["train"], splits["test"]
    device = resolve_device(device)
    run_seed = task_seed(seed, "estimate", task, estimator)
    seed_everything(run_seed)
    started = time.perf_counter()
    result = build_estimator(estimator, settings=settings, seed=run_seed, device=device).fit_estimate(train, test)
    seconds = time.perf_counter() - started
    log.info("%s seed %d: estimate %.4f vs truth %.4f nats (%.1f s)",
             estimator, seed, result.value, reference["mi_true"], seconds)
    return {
        "dataset": task["kind"],
        "dim": task["dim"],
        "balance": "balanced" if len(set(task["class_counts"])) == 1 else "imbalanced",
        "n_classes": problem.n_classes,
        "estimator": estimator,
        "seed": seed,
        "n_train": len(train),
        "n_test": len(test),
        "mi_true": reference["mi_true"],
        "mi_true_se": reference["mi_true_se"],
        "mi_true_test": float(problem.pointwise_mi(test.x.numpy(), test.y.numpy()).mean()),
        "mi_estimate": result.value,
        "error": result.value - reference["mi_true"],
        "entropy_y": reference["entropy_y"],
        "micro_acc": result.details.get("micro_acc", math.nan),
        "macro_acc": result.details.get("macro_acc", math.nan),
        "train_steps": int(result.details.get("train_steps", 0)),
        "seconds": seconds,
        "device": device,
        **provenance({"task": task, "estimator": estimator, "settings": settings, "seed": seed}),
    }


def gather(*, inputs: dict, outputs: dict) -> None:
    """Concatenate the per-run rows into the table users query."""
    table = pd.concat([read_table(path) for path in inputs["rows"]], ignore_index=True)
    table = table.sort_values(["dataset", "balance", "dim", "estimator", "seed"], ignore_index=True)
    write_table(table, outputs["table"], column_docs=MI_ESTIMATES_COLUMNS, table_doc="one row per synthetic MI run")


def summarise(*, inputs: dict, outputs: dict) -> None:
    """The summary over seeds, its headline metrics (bias, RMSE), the `dvc plots` data and the MI-vs-truth figure."""
    from softmax_mi.plots import plot_mi_vs_truth  # matplotlib: imported by the job, not at parse time

    summary = summarise_synthetic(read_table(inputs["table"]))[list(SUMMARY_COLUMNS)]
    write_table(summary, outputs["summary"], column_docs=SUMMARY_COLUMNS, table_doc="synthetic MI, per setting")
    write_json(synthetic_headline(summary), outputs["metrics"])
    if "plot_data" in outputs:
        with atomic_path(outputs["plot_data"]) as tmp:
            synthetic_plot_data(summary).to_csv(tmp, index=False)
    plot_mi_vs_truth(summary, outputs["figure"])
