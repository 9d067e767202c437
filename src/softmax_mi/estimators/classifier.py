"""A classifier read as a mutual-information estimator (the paper's central claim).

- :class:`SoftmaxMI`: train with softmax cross-entropy, report ``log K − CE`` on held-out data. Under balanced
  labels this is the Barber–Agakov lower bound on I(X;Y); under imbalance it over-estimates by log K − H(Y).
- :class:`PCSoftmaxMI`: train with the PC-softmax loss, report the held-out mean of ``log PC_y(x)``, which is the
  same bound with the true label prior π plugged in, valid for any prior.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

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
        self.train_steps = 0

    def loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def pointwise_mi(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The per-example term whose held-out mean is the estimate (nats); the terms of
        :func:`softmax_mi.mi_from_logits` with the same read-out."""
        raise NotImplementedError

    def fit(self, train_data: LabeledSample) -> ClassifierMI:
        self.log_prior = losses.log_prior_from_counts(train_data.class_counts()).to(self.train_config.device)
        self.model = build_seeded(
            lambda: MLP(train_data.dim, train_data.n_classes, hidden=self.hidden), self.train_config.seed
        )
        result = train(self.model, lambda model, x, y: self.loss(model(x), y), train_data, self.train_config)
        self.train_steps = result.steps
        return self

    @torch.no_grad()
    def estimate(self, test: LabeledSample) -> MIEstimate:
        if self.model is None:
            raise RuntimeError(f"{type(self).__name__}.estimate called before fit")
        test = test.to(self.train_config.device)
        logits = self.model(test.x)
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
