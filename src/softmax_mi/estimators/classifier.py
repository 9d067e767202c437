"""A classifier read as a mutual-information estimator (the paper's central claim).

- :class:`SoftmaxMI`: train with softmax cross-entropy, report ``log K − CE`` on held-out data. Under balanced
  labels this is the Barber–Agakov lower bound on I(X;Y); under imbalance it over-estimates by log K − H(Y).
- :class:`PCSoftmaxMI`: train with the PC-softmax loss, report the held-out mean of ``log PC_y(x)``, which is the
  same bound with the true label prior π plugged in, valid for any prior.

A fitted classifier can be kept for later use (e.g. decision rules under a shifted label prior):
:meth:`ClassifierMI.checkpoint` gives it as plain tensors and dicts, :func:`save_classifiers` writes a list of them
(loadable with ``torch.load(weights_only=True)``), :func:`load_classifiers` reads them back as
:class:`TrainedClassifier` objects.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from softmax_mi import losses
from softmax_mi.estimators.base import LabeledSample, MIEstimate, MIEstimator
from softmax_mi.mi import log_class_probability
from softmax_mi.models.mlp import MLP
from softmax_mi.training import TrainConfig, build_seeded, train


class ClassifierMI(MIEstimator):
    """Shared machinery: an MLP classifier over x, trained by minibatch Adam, evaluated on held-out data."""

    def __init__(self, *, hidden: Sequence[int] = (100, 100, 100), train_config: TrainConfig = TrainConfig()):
        self.hidden = tuple(hidden)
        self.train_config = train_config
        self.model: MLP | None = None
        self.log_prior: torch.Tensor | None = None
        self.train_counts: torch.Tensor | None = None
        self.train_steps = 0

    def loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def pointwise_mi(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The per-example term whose held-out mean is the estimate (nats); the terms of
        :func:`softmax_mi.mi_from_logits` with the same read-out."""
        raise NotImplementedError

    def fit(self, train_data: LabeledSample) -> ClassifierMI:
        self.train_counts = train_data.class_counts().cpu()
        self.log_prior = losses.log_prior_from_counts(self.train_counts).to(self.train_config.device)
        self.model = build_seeded(
            lambda: MLP(train_data.dim, train_data.n_classes, hidden=self.hidden), self.train_config.seed
        )
        result = train(self.model, lambda model, x, y: self.loss(model(x), y), train_data, self.train_config)
        self.train_steps = result.steps
        return self

    @torch.no_grad()
    def logits(self, sample: LabeledSample) -> torch.Tensor:
        """The fitted classifier's logits f(x) (n × K) on ``sample``, on the training device."""
        if self.model is None:
            raise RuntimeError(f"{type(self).__name__} used before fit")
        return self.model(sample.x.to(self.train_config.device))

    def estimate(self, test: LabeledSample) -> MIEstimate:
        return self.estimate_from_logits(self.logits(test), test)

    @torch.no_grad()
    def estimate_from_logits(self, logits: torch.Tensor, test: LabeledSample) -> MIEstimate:
        """The estimate (mean of the per-example terms) and its diagnostics from ``logits`` = :meth:`logits` of
        ``test``: one forward pass serves the value and :func:`softmax_mi.mi_from_logits`'s interval."""
        test = test.to(logits.device)
        predicted = logits.argmax(dim=1)
        correct = (predicted == test.y).double()
        per_class = torch.zeros(test.n_classes, dtype=torch.float64, device=correct.device)
        per_class.index_add_(0, test.y, correct)
        counts = test.class_counts().double()
        present = counts > 0
        return MIEstimate(
            value=float(self.pointwise_mi(logits, test.y).mean()),
            details={
                "micro_acc": float(correct.mean()),
                "macro_acc": float((per_class[present] / counts[present]).mean()),
                "cross_entropy": float(losses.softmax_cross_entropy(logits, test.y)),
                "train_steps": self.train_steps,
            },
        )


    def checkpoint(self, seed: int) -> dict:
        """The fitted classifier as plain tensors and dicts (what :func:`save_classifiers` writes): the estimator's
        name, ``seed`` (the caller's label for this run), the training class counts, the MLP's architecture and
        weights (on the CPU)."""
        if self.model is None or self.train_counts is None:
            raise RuntimeError(f"{type(self).__name__}.checkpoint called before fit")
        return {
            "estimator": self.name,
            "seed": int(seed),
            "train_counts": self.train_counts.clone(),
            "architecture": {
                "in_features": int(self.model[0].in_features),
                "n_classes": int(self.train_counts.numel()),
                "hidden": list(self.hidden),
            },
            "state_dict": {key: value.detach().cpu().clone() for key, value in self.model.state_dict().items()},
        }


class SoftmaxMI(ClassifierMI):
    """Softmax cross-entropy training; estimate = log K − CE (the "balanced assumption" of the paper)."""

    name = "softmax"

    def loss(self, logits, y):
        return losses.softmax_cross_entropy(logits, y)

    def pointwise_mi(self, logits, y):
        return log_class_probability(logits, y) + math.log(logits.shape[1])


class PCSoftmaxMI(ClassifierMI):
    """PC-softmax training with the training-set prior; estimate = mean log PC_y(x)."""

    name = "pc_softmax"

    def loss(self, logits, y):
        return losses.pc_softmax_loss(logits, y, self.log_prior)

    def pointwise_mi(self, logits, y):
        return log_class_probability(logits, y, self.log_prior)


# ---------------------------------------------------------------------------------------------------------------
# Saved classifiers
# ---------------------------------------------------------------------------------------------------------------

CHECKPOINT_FORMAT = "softmax_mi.classifiers/1"
"""The ``format`` entry of a file written by :func:`save_classifiers`."""


@dataclass(frozen=True)
class TrainedClassifier:
    """A fitted classifier read back by :func:`load_classifiers`.

    Attributes:
        estimator: the estimator that trained it (``softmax`` or ``pc_softmax``).
        seed: the seed label it was saved with (for the pipeline: the base seed of ``params.yaml``).
        train_counts: (K,) training class counts; for ``pc_softmax`` they are the prior its logits were trained
            against (``log PC_y(x) = f_y(x) − log Σ_k π_k e^{f_k(x)}``).
        model: the MLP (eval mode, CPU); :meth:`logits` applies it.
    """

    estimator: str
    seed: int
    train_counts: torch.Tensor
    model: MLP

    @torch.no_grad()
    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """The classifier's logits f(x), (n × K), for features ``x`` (n × d, or (n,) when d = 1)."""
        x = torch.as_tensor(x, dtype=torch.float32)
        return self.model(x.reshape(len(x), -1))


def save_classifiers(checkpoints: Sequence[dict], path: str | Path) -> None:
    """Write the :meth:`ClassifierMI.checkpoint` dicts ``checkpoints`` to ``path`` atomically, as one torch file
    of plain tensors and dicts (``torch.load(path, weights_only=True)`` reads it; :func:`load_classifiers` too)."""
    from softmax_mi.io import atomic_path

    with atomic_path(path) as tmp:
        torch.save({"format": CHECKPOINT_FORMAT, "classifiers": list(checkpoints)}, tmp)


def load_classifiers(path: str | Path) -> list[TrainedClassifier]:
    """The classifiers saved in ``path`` by :func:`save_classifiers`, in their saved order (the pipeline writes
    ``models/synthetic/{task}/d{dim}-{balance}/classifiers.pt``: per seed, softmax then pc_softmax).

    Raises :class:`softmax_mi.io.CheckpointError` naming the file and the problem when it is missing, damaged, not
    such a file or its weights do not fit its recorded architecture.

    Example::

        from softmax_mi.estimators.classifier import load_classifiers
        for clf in load_classifiers("models/synthetic/gaussian/d5-imbalanced/classifiers.pt"):
            print(clf.estimator, clf.seed, clf.train_counts.tolist(), clf.logits(x).shape)
    """
    from softmax_mi.io import CheckpointError, load_checkpoint

    fix = "rerun the synthetic stage that writes it: snakemake --cores all results/synthetic/summary.parquet"
    state = load_checkpoint(path, fix=fix)
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        found = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise CheckpointError(f"{path}: not a saved-classifiers file (format {found!r}, expected "
                              f"{CHECKPOINT_FORMAT!r}) (fix: {fix})")
    classifiers = []
    for index, entry in enumerate(state.get("classifiers", [])):
        try:
            architecture = entry["architecture"]
            model = MLP(int(architecture["in_features"]), int(architecture["n_classes"]),
                        hidden=[int(width) for width in architecture["hidden"]])
            model.load_state_dict(entry["state_dict"])
            classifiers.append(TrainedClassifier(
                estimator=str(entry["estimator"]), seed=int(entry["seed"]),
                train_counts=torch.as_tensor(entry["train_counts"]), model=model.eval(),
            ))
        except (KeyError, TypeError, ValueError, RuntimeError) as error:
            first_line = (str(error).strip().splitlines() or [""])[0][:200]
            raise CheckpointError(f"{path}: classifier {index} is malformed ({type(error).__name__}: {first_line}) "
                                  f"(fix: {fix})") from None
    return classifiers
