"""Pipeline stages of the synthetic MI experiment (paper §2, E1–E3).

estimate (one job per task × dim × balance: draw every seed's data, compute the truth, run every estimator;
one row per estimator × seed) → gather → summarise.
"""

from __future__ import annotations

import logging
import math
import time

import numpy as np
import pandas as pd

from softmax_mi.data.synthetic import entropy, held_out_counts, make_task
from softmax_mi.io import atomic_path, read_table, write_json, write_table
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


def draw_splits(task: dict, test_ratio: float, seed: int) -> dict:
    """The (train, test) samples of ``task`` for base seed ``seed``, as
    :class:`~softmax_mi.estimators.base.LabeledSample` by split name: a training set with the configured class
    counts and a fresh test set (counts × test_ratio). The draw depends on the seed and the task only.

    Example::

        splits = draw_splits(grid.synthetic_task(params, "gaussian", 5, "balanced"), 0.2, seed=0)
        splits["train"].x.shape    # (50000, 5)
    """
    from softmax_mi.estimators.base import LabeledSample  # torch: imported by the job, not at parse time

    problem = make_task(task)
    rng = np.random.default_rng(task_seed(seed, "sample", task))
    splits = {}
    for split, counts in (("train", problem.class_counts), ("test", held_out_counts(problem.class_counts, test_ratio))):
        x, y = problem.sample(counts, rng)
        splits[split] = LabeledSample.from_arrays(x.reshape(len(x), -1).astype(np.float32), y.astype(np.int64),
                                                  n_classes=problem.n_classes)
    return splits


def true_mi(task: dict, mc_samples: int, seed: int) -> dict:
    """True I(X;Y) (closed form, or Monte Carlo with its standard error) and H(Y) of the prior, in nats."""
    problem = make_task(task)
    rng = np.random.default_rng(task_seed(seed, "truth", task))
    mi, se = problem.true_mi(mc_samples, rng)
    log.info("true MI %.4f ± %.4f nats (H(Y) = %.4f)", mi, se, entropy(problem.prior))
    return {"mi_true": mi, "mi_true_se": se, "entropy_y": entropy(problem.prior)}


def estimate(
    *, task: dict, test_ratio: float, mc_samples: int, truth_seed: int, seeds: list[int], estimators: dict,
    device: str, outputs: dict,
) -> None:
    """One setting, whole: per seed, draw the data (:func:`draw_splits`) and run every estimator of ``estimators``
    (name → settings) on it; the truth (:func:`true_mi`) once. Writes one row per (estimator, seed) to
    ``outputs["rows"]`` and the fitted softmax / PC-softmax classifiers to ``outputs["classifiers"]``
    (:func:`softmax_mi.estimators.classifier.save_classifiers`: per seed, in the order of ``estimators``; an empty
    list when neither is configured).

    One job per setting pays one process start and torch import for every estimator and seed (they were 75 jobs
    of ~3 s overhead each); each run's seeds derive from its base seed, task and estimator as before, so the rows
    do not depend on how the runs are grouped into jobs."""
    from softmax_mi.estimators.classifier import ClassifierMI, save_classifiers  # torch: the job imports it

    reference = true_mi(task, mc_samples, truth_seed)
    rows, classifiers = [], []
    for seed in seeds:
        splits = draw_splits(task, test_ratio, seed)
        for name, settings in estimators.items():
            row, fitted = estimate_one(task, name, settings, seed, device, splits, reference)
            rows.append(row)
            if isinstance(fitted, ClassifierMI):
                classifiers.append({**fitted.checkpoint(seed), "task": task})
    write_table(pd.DataFrame(rows), outputs["rows"], column_docs=MI_ESTIMATES_COLUMNS)
    save_classifiers(classifiers, outputs["classifiers"])


def estimate_one(
    task: dict, estimator: str, settings: dict, seed: int, device: str, splits: dict, reference: dict
) -> tuple[dict, object]:
    """One run: the result row of ``estimator`` on the ``splits`` of ``seed``, and the fitted estimator."""
    from softmax_mi.estimators import build_estimator  # imports torch: only the jobs that train pay for it

    problem = make_task(task)
    train, test = splits["train"], splits["test"]
    device = resolve_device(device)
    run_seed = task_seed(seed, "estimate", task, estimator)
    seed_everything(run_seed)
    started = time.perf_counter()
    fitted = build_estimator(estimator, settings=settings, seed=run_seed, device=device).fit(train)
    result = fitted.estimate(test)
    seconds = time.perf_counter() - started
    log.info("%s seed %d: estimate %.4f vs truth %.4f nats (%d steps, %.1f s)",
             estimator, seed, result.value, reference["mi_true"], result.details.get("train_steps", 0), seconds)
    row = {
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
    return row, fitted


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
