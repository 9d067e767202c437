"""Pipeline stage of the label-shift study (issue 15): no training, only the logits the other parts already write.

One job (:func:`run`, a process start is ≈ 3 s of the budget): evaluate (every classification setting's
``logits.npz`` and every synthetic setting's classifiers → results/label_shift/shifts.parquet), then summarise
(summary table, verdicts, figures).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import pandas as pd

from softmax_mi.io import read_table, write_json, write_table
from softmax_mi.label_shift.priors import prior_grid, shifted_prior, shifted_subset, signed_ratio
from softmax_mi.provenance import AGGREGATE_PROVENANCE_COLUMNS, PROVENANCE_COLUMNS, aggregate_provenance, provenance
from softmax_mi.runtime import derive_seed
from softmax_mi.summaries import SEED_COLUMNS

log = logging.getLogger(__name__)

METRIC_COLUMNS = {
    "micro_acc": "accuracy on the shifted test set, fraction",
    "macro_acc": "mean per-class accuracy over the classes present, fraction",
    "many_acc": "mean per-class accuracy of the classes with > shots[1] training examples, fraction (NaN: none)",
    "medium_acc": "mean per-class accuracy of the classes with shots[0]..shots[1] training examples, fraction "
                  "(NaN: none)",
    "few_acc": "mean per-class accuracy of the classes with < shots[0] training examples, fraction (NaN: none)",
    "nll": "mean −log posterior of the true label under the rule's posterior (softmax of its decision logits), nats",
    "ece": "expected calibration error of the rule's top-1 confidence, ece_bins equal-width bins, fraction",
    "q_l1": "L1 distance Σ|q̂ − q| of the rule's test prior from the true one (0 for known_q; NaN: the rule sets none)",
    "q_kl": "KL(q ‖ q̂) of the rule's test prior from the true one, nats (NaN: the rule sets none)",
    "mi_estimate": "MI read-out under the rule's prior p: mean of log softmax(g + log p)_y − log p_y, nats (argmax: "
                   "the "
                   "paper's read-out blind to the shift, log K − CE for softmax, log PC_y with π otherwise; "
                   "posthoc_la: NaN)",
}

SHIFTS_COLUMNS = {
    "dataset": "mnist | fashion_mnist | cub (classification logits) or gaussian (Part 1's synthetic task)",
    "setting": "training setting: the classification setting id (e.g. step-r10) or d{dim}-{balance} (synthetic)",
    "loss": "training loss of the model (synthetic: Part 1's estimator, softmax or pc_softmax)",
    "tau": "τ of the loss (logit_adjusted), NaN otherwise",
    "seed": "base seed of the model (from params.yaml seeds)",
    "prior_weight": "w in g = f − w·log π: the power of the training prior the logits carry (softmax 1, PC-softmax 0)",
    "profile": "test prior: forward (training order) | uniform | backward (reversed)",
    "ratio": "max q / min q of the test prior (1 for uniform)",
    "decay": "exponential | step: how q falls over the classes ranked by training count",
    "signed_ratio": "plotting coordinate: ratio for forward, 1/ratio for backward, 1 for uniform",
    "draw": "index of the shifted test draw (seeded; the same draws for every model of a setting and seed)",
    "rule": "decision rule: argmax | known_q | em | bbse | posthoc_la (softmax_mi.label_shift.rules)",
    "n_test": "examples in the shifted test set",
    "n_val": "labelled validation examples (BBSE's confusion matrix)",
    **METRIC_COLUMNS,
    "q_true": "the true test prior q, one entry per class",
    "q_estimated": "the rule's test prior (known_q: q; em/bbse: q̂), NaN entries for the rules that set none",
    "bayes_acc": "exact Bayes-optimal accuracy under q (1-D quadrature; synthetic only, NaN otherwise), fraction",
    "mi_true": "exact I(X;Y) under q (1-D quadrature; synthetic only, NaN otherwise), nats",
    "blind_bias": "limit of the shift-blind read-out (argmax row's mi_estimate) − mi_true for a Bayes-optimal model "
                  "trained under π: KL(q‖1/K) − KL(q‖π) + KL(p_q(X)‖p_π(X)) for softmax, KL(p_q(X)‖p_π(X)) for "
                  "PC-softmax (synthetic only), nats",
    "bayes_acc_sample": "accuracy of the Bayes rule on this very draw (synthetic only), fraction",
    "mi_true_sample": "plug-in truth on this draw: mean log p(x|y) − log Σ q_k p(x|k) (synthetic only), nats",
    **PROVENANCE_COLUMNS,
}

KEYS = ["dataset", "setting", "loss", "tau", "profile", "ratio", "decay", "signed_ratio", "rule"]
SUMMARY_METRICS = [*METRIC_COLUMNS, "bayes_acc", "mi_true", "blind_bias"]
SUMMARY_COLUMNS = {
    **{key: SHIFTS_COLUMNS[key] for key in KEYS},
    **SEED_COLUMNS,
    **{f"{name}_{stat}": f"{stat} over seeds (each seed's mean over draws) of {name}: {SHIFTS_COLUMNS[name]}"
       for name in SUMMARY_METRICS for stat in ("mean", "std")},
    "mi_error_mean": "mean over seeds of mi_estimate − mi_true, nats (synthetic only)",
    "bayes_gap_mean": "mean over seeds of micro_acc − bayes_acc, fraction (synthetic only)",
    "regret_mean": "mean over seeds of bayes_acc_sample − micro_acc: accuracy lost to the Bayes rule on the same "
                   "draws (paired, free of the draws' noise), fraction (synthetic only)",
    **AGGREGATE_PROVENANCE_COLUMNS,
}


# ------------------------------------------------------------------------------------------- reading the inputs
# ------------------------------------------------------------------------------------------------- evaluation
def classification_rows(path: str, priors: list[tuple], study: dict, seed: int) -> list[dict]:
    """Every run of one classification setting under every test prior and rule (one batch per prior)."""
    from softmax_mi.label_shift.evaluate import evaluate_shift
    from softmax_mi.label_shift.rules import prior_weight

    from softmax_mi.classification import load_logits

    data = load_logits(path)  # the standard protocol's logits file, checked (softmax_mi.classification.RunLogits)
    runs, counts = data.runs, data.train_counts
    weights = np.array([prior_weight(run.loss, run.tau) for run in runs])
    n_draws = study["classification"]["n_draws"]
    rows = []
    for spec in priors:
        q = shifted_prior(counts, *spec)
        draw_seed = derive_seed(seed, "label_shift", runs[0].dataset, runs[0].setting, *spec)
        index = shifted_subset(data.test_labels, q, draw_seed, study["classification"]["test_size"], n_draws)
        logits = data.test_logits[:, index].reshape(len(runs) * n_draws, index.shape[1], -1)
        results = evaluate_shift(
            logits, np.tile(data.test_labels[index], (len(runs), 1)), counts, np.repeat(weights, n_draws), q,
            study["rules"], val_logits=np.repeat(data.val_logits, n_draws, axis=0), val_labels=data.val_labels,
            tau=study["posthoc_tau"], em=study["em"], bbse=study["bbse"], shots=study["shots"],
            bins=study["ece_bins"])
        for g, run in enumerate(runs):
            for d in range(n_draws):
                b = g * n_draws + d
                for rule, metrics in results.items():
                    rows.append({**run.columns(), "prior_weight": weights[g], **prior_columns(spec), "draw": d,
                                 "rule": rule, "n_test": index.shape[1], "n_val": len(data.val_labels),
                                 **{name: float(value[b]) for name, value in metrics.items() if name != "prior"},
                                 "q_true": q.tolist(), "q_estimated": metrics["prior"][b].tolist()})
        log.info("%s: %s ρ=%g (%s), %d test examples, %d runs × %d draws", path, *spec, index.shape[1], len(runs),
                 n_draws)
    return rows


def prior_columns(spec: tuple) -> dict:
    profile, ratio, decay = spec
    return {"profile": profile, "ratio": float(ratio), "decay": decay, "signed_ratio": signed_ratio(profile, ratio)}


def synthetic_rows(classifiers: list, task: dict, setting: str, priors: list[tuple], study: dict) -> list[dict]:
    """The study on fitted classifiers of one synthetic setting (:class:`~softmax_mi.label_shift.gaussian.
    FittedClassifier` objects), fresh draws from the task's class-conditionals (``study["synthetic"]`` sizes)."""
    from softmax_mi.data.synthetic import make_task
    from softmax_mi.label_shift.gaussian import evaluate_gaussian_shift
    from softmax_mi.label_shift.rules import prior_weight

    sizes = study["synthetic"]
    rows = evaluate_gaussian_shift(
        classifiers, make_task(task), priors, test_size=sizes["test_size"], val_size=sizes["val_size"],
        n_draws=sizes["n_draws"], rules=study["rules"], tau=study["posthoc_tau"], em=study["em"], bbse=study["bbse"],
        shots=study["shots"], bins=study["ece_bins"], progress=log.info)
    for row in rows:
        estimator = row.pop("estimator")
        row.update({"dataset": task["kind"], "setting": setting, "loss": estimator, "tau": math.nan,
                    "prior_weight": prior_weight(estimator), **prior_columns((row["profile"], row["ratio"],
                                                                              row["decay"]))})
    return rows


def load_synthetic(path: str) -> list:
    """Part 1's saved classifiers of one synthetic setting (its loader: softmax_mi.estimators.classifier)."""
    from softmax_mi.estimators.classifier import load_classifiers  # written by Part 1's training stage

    return list(load_classifiers(path))


def evaluate(*, study: dict, seed: int, synthetic_tasks: list[dict], inputs: dict, outputs: dict) -> None:
    """Every model under every test prior and rule: the classification settings' logits (``inputs["logits"]``) and
    the synthetic settings' classifiers (``inputs["classifiers"]``, one file per entry of ``synthetic_tasks``:
    ``{"task": <task spec>, "setting": "d2-balanced"}``) → one row per model × prior × draw × rule."""
    priors = prior_grid(study["profiles"], study["ratios"], study["decays"])
    settings = {key: study[key] for key in ("profiles", "ratios", "decays", "rules", "posthoc_tau", "em", "bbse",
                                            "shots", "ece_bins")}
    rows = []
    for path in inputs.get("logits", []):
        part = classification_rows(path, priors, study, seed)
        hash_settings = {**settings, **study["classification"], "seed": seed, "logits": Path(path).parent.as_posix()}
        rows += [{**row, **provenance(hash_settings)} for row in part]
    classifier_files = inputs.get("classifiers", [])
    if len(classifier_files) != len(synthetic_tasks):
        raise ValueError(f"evaluate: {len(classifier_files)} classifier files for {len(synthetic_tasks)} synthetic "
                         "settings")
    for path, entry in zip(classifier_files, synthetic_tasks):
        part = synthetic_rows(load_synthetic(path), entry["task"], entry["setting"], priors, study)
        rows += [{**row, **provenance({**settings, **study["synthetic"], "task": entry["task"]})} for row in part]
    if not rows:
        raise ValueError("evaluate: no inputs (neither logits nor classifiers); check label_shift in params.yaml")
    write_table(shifts_frame(rows), outputs["rows"], column_docs=SHIFTS_COLUMNS,
                table_doc="label shift: one row per model × test prior × draw × decision rule")


def shifts_frame(rows: list[dict]) -> pd.DataFrame:
    """The rows in the documented column order (synthetic-only columns NaN for classification rows)."""
    frame = pd.DataFrame(rows)
    for column in ("bayes_acc", "mi_true", "blind_bias", "bayes_acc_sample", "mi_true_sample"):
        if column not in frame:
            frame[column] = math.nan
    frame["tau"] = frame["tau"].astype(float)
    return frame[list(SHIFTS_COLUMNS)].sort_values(["dataset", "setting", "loss", "tau", "seed", "signed_ratio",
                                                    "draw", "rule"], ignore_index=True)


# ---------------------------------------------------------------------------------------------------- summary
def summarise_shifts(table: pd.DataFrame) -> pd.DataFrame:
    """Mean and std over seeds (of each seed's mean over its draws) per dataset × setting × loss × τ × prior × rule."""
    keys = KEYS
    per_seed = (table.groupby([*keys, "seed"], dropna=False)
                .agg(**{name: (name, "mean") for name in [*SUMMARY_METRICS, "bayes_acc_sample"]},
                     **aggregate_provenance())
                .reset_index())
    per_seed["mi_error"] = per_seed["mi_estimate"] - per_seed["mi_true"]
    per_seed["bayes_gap"] = per_seed["micro_acc"] - per_seed["bayes_acc"]
    per_seed["regret"] = per_seed["bayes_acc_sample"] - per_seed["micro_acc"]
    grouped = per_seed.groupby(keys, dropna=False)
    stats = grouped[SUMMARY_METRICS].agg(["mean", "std"])
    stats.columns = [f"{name}_{stat}" for name, stat in stats.columns]
    summary = pd.concat([
        grouped.agg(n_seeds=("seed", "nunique"), seed_list=("seed", lambda s: sorted(int(v) for v in set(s)))),
        stats,
        grouped.agg(mi_error_mean=("mi_error", "mean"), bayes_gap_mean=("bayes_gap", "mean"),
                    regret_mean=("regret", "mean"),
                    **aggregate_provenance()),
    ], axis=1).reset_index()
    return summary[list(SUMMARY_COLUMNS)]


def run(*, study: dict, seed: int, synthetic_tasks: list[dict], inputs: dict, outputs: dict) -> None:
    """:func:`evaluate` then :func:`summarise`, in one process."""
    evaluate(study=study, seed=seed, synthetic_tasks=synthetic_tasks, inputs=inputs, outputs=outputs)
    summarise(inputs={"rows": outputs["rows"]}, outputs=outputs)


def summarise(*, inputs: dict, outputs: dict) -> None:
    """Summary over seeds, the verdict numbers (metrics JSON) and the two figures."""
    from softmax_mi.label_shift.verdicts import verdicts
    from softmax_mi.plots_label_shift import plot_accuracy_vs_ratio, plot_prior_estimates

    table = read_table(inputs["rows"])
    summary = summarise_shifts(table)
    write_table(summary, outputs["summary"], column_docs=SUMMARY_COLUMNS,
                table_doc="label shift, mean ± std over seeds per model setting × test prior × rule")
    write_json(verdicts(summary), outputs["metrics"])
    plot_accuracy_vs_ratio(summary, outputs["accuracy_figure"])
    plot_prior_estimates(table, outputs["prior_figure"])
