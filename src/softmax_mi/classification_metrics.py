"""The metrics of a trained classifier on an evaluation split, and the rows of the classification tables.

One function per concern: :func:`classification_metrics` (one model's decision logits → accuracies and the MI
read-outs), :func:`decision_variants` (a run's decision rules: its own logits, and for softmax runs the post-hoc
logit adjustment f − τ·log π) and :meth:`TrainedJob.rows` (the metrics and per-class rows of every run of a job on
one split, with the columns of :data:`softmax_mi.classification.METRICS_COLUMNS` / ``PER_CLASS_COLUMNS``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from softmax_mi.classification import RunId
from softmax_mi.losses import log_prior_from_counts, posthoc_adjusted_logits
from softmax_mi.mi import log_class_probability
from softmax_mi.provenance import provenance
from softmax_mi.samples import label_entropy


def classification_metrics(logits: torch.Tensor, labels: torch.Tensor, log_prior: torch.Tensor,
                           train_counts: torch.Tensor, minority: np.ndarray | None = None) -> tuple[dict, np.ndarray]:
    """Metrics of one model's decision logits (N × K) on a split; also its per-class accuracy. ``minority``: the
    classes of ``minority_acc`` (default: training count below the largest)."""
    predicted = logits.argmax(-1)
    correct = (predicted == labels).double()
    per_class = np.array([
        float(correct[labels == c].mean()) if bool((labels == c).any()) else math.nan for c in range(logits.shape[-1])
    ])
    if minority is None:
        minority = (train_counts < train_counts.max()).numpy()
    log_pc = log_class_probability(logits, labels, log_prior)
    log_sm = log_class_probability(logits, labels)
    metrics = {
        "micro_acc": float(correct.mean()),
        "macro_acc": float(np.nanmean(per_class)),
        "minority_acc": float(np.nanmean(per_class[minority])) if minority.any() else math.nan,
        "mi_estimate": float(log_pc.double().mean()),
        "mi_softmax_estimate": float(log_sm.double().mean() + math.log(logits.shape[-1])),
        "entropy_y": label_entropy(labels),
        "cross_entropy": float(-log_sm.double().mean()),
    }
    return metrics, per_class


def decision_variants(run: RunId, logits: torch.Tensor, log_prior: torch.Tensor,
                      posthoc_taus: Sequence[float]) -> list[tuple[RunId, torch.Tensor]]:
    """The decision rules reported for one run: its own logits, and for a softmax run also each post-hoc
    logit-adjusted read-out f − τ·log π (loss ``posthoc_la``)."""
    variants = [(run, logits)]
    if run.loss == "softmax":
        variants += [(run.posthoc(tau), posthoc_adjusted_logits(logits, log_prior, tau)) for tau in posthoc_taus]
    return variants


@dataclass(frozen=True)
class TrainedJob:
    """What every row of one training job shares: its setting's description, its training counts and log, and the
    settings its provenance hash covers."""

    protocol: str
    profile: str
    imbalance_ratio: float
    train_counts: torch.Tensor
    epochs: int
    train_loss: Mapping[RunId, float]
    train_seconds: float
    device: str
    class_names: Sequence[str]
    settings: Mapping[str, Any]
    posthoc_taus: Sequence[float] = ()
    minority: np.ndarray | None = None  # classes of minority_acc (default: count below the largest)

    @property
    def log_prior(self) -> torch.Tensor:
        """log π of the training split (the PC-softmax read-out's and the post-hoc adjustment's prior)."""
        return log_prior_from_counts(self.train_counts)

    def rows(self, runs: Sequence[RunId], logits: torch.Tensor, labels: torch.Tensor,
             split: str) -> tuple[list[dict], list[dict]]:
        """The metrics rows (one per run and decision rule) and per-class rows (× class) of the runs' logits
        (G × N × K, run g = ``runs[g]``) on one evaluation split."""
        log_prior = self.log_prior
        k = len(self.train_counts)
        eval_counts = torch.bincount(labels, minlength=k)
        rows, class_rows = [], []
        for g, run in enumerate(runs):
            for variant, variant_logits in decision_variants(run, logits[g], log_prior, self.posthoc_taus):
                metrics, per_class = classification_metrics(variant_logits, labels, log_prior, self.train_counts,
                                                            minority=self.minority)
                columns = variant.columns()
                key = {
                    "dataset": columns["dataset"], "protocol": self.protocol, "setting": columns["setting"],
                    "profile": self.profile, "imbalance_ratio": self.imbalance_ratio, "loss": columns["loss"],
                    "tau": columns["tau"], "seed": columns["seed"], "split": split,
                }
                origin = provenance({**key, **self.settings})
                rows.append({
                    **key, "n_train": int(self.train_counts.sum()), "n_test": len(labels), "epochs": self.epochs,
                    **metrics, "train_loss": self.train_loss[run], "train_seconds": float(self.train_seconds),
                    "device": self.device, **origin,
                })
                class_rows += [
                    {**key, "class": c, "class_name": self.class_names[c], "n_train": int(self.train_counts[c]),
                     "n_test": int(eval_counts[c]), "accuracy": float(per_class[c]), **origin}
                    for c in range(k)
                ]
        return rows, class_rows
