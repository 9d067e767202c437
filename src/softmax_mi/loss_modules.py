"""``nn.Module`` wrappers of the long-tail losses of :mod:`softmax_mi.losses`, for use in your own training loop.

Each module is built from the *training* class counts (a sequence or a tensor, one positive finite count per class)
and is called torch-style, ``loss(logits, target)`` with logits ``batch × K`` and integer targets ``batch``. The
per-class quantities it derives from the counts (log prior, weights, margins) are buffers, so ``.to(device)`` and
``.to(dtype)`` move them with the model. Each forward calls the function of the same name in
:mod:`softmax_mi.losses`, so a module and its function give the same value and gradient.

Plain softmax cross-entropy has no wrapper here: it is ``torch.nn.CrossEntropyLoss()``
(= :func:`softmax_mi.losses.softmax_cross_entropy`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from softmax_mi.losses import (
    class_balanced_loss,
    checked_counts,
    class_balanced_weights,
    ldam_loss,
    ldam_margins,
    log_prior_from_counts,
    logit_adjusted_loss,
    pc_softmax_loss,
)

__all__ = ["ClassBalancedLoss", "LDAMLoss", "LogitAdjustedLoss", "PCSoftmaxLoss"]

REDUCTIONS = ("mean", "sum", "none")


def checked_number(name: str, value: float, low: float, high: float = math.inf, *, closed_high: bool = False) -> float:
    """``value`` as a float in [low, high) (or [low, high] with ``closed_high``), else a ValueError naming it."""
    value = float(value)
    if not (low <= value and (value <= high if closed_high else value < high)):
        end = "]" if closed_high else ")"
        raise ValueError(f"{name} must be in [{low}, {high}{end}, got {value}")
    return value


class _PriorLoss(nn.Module):
    """Common part: the counts buffer, the reduction, and the check of logits and targets against them."""

    def __init__(self, class_counts: Sequence[float] | torch.Tensor, reduction: str) -> None:
        super().__init__()
        if reduction not in REDUCTIONS:
            raise ValueError(f"reduction must be one of {', '.join(REDUCTIONS)}, got {reduction!r}")
        self.reduction = reduction
        self.register_buffer("class_counts", checked_counts(class_counts))

    @property
    def num_classes(self) -> int:
        return self.class_counts.shape[0]

    def check(self, logits: torch.Tensor, target: torch.Tensor) -> None:
        if logits.ndim != 2:
            raise ValueError(f"logits must be batch × classes (2-D), got shape {tuple(logits.shape)}")
        if logits.shape[-1] != self.num_classes:
            raise ValueError(f"class_counts has {self.num_classes} classes but logits have {logits.shape[-1]}")
        if target.shape != logits.shape[:1]:
            raise ValueError(f"target must hold one class index per row of logits ({logits.shape[0]}), got shape "
                             f"{tuple(target.shape)}")

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}, reduction={self.reduction!r}"


class PCSoftmaxLoss(_PriorLoss):
    """PC-softmax loss: ``−log PC_y(x) = −f_y + logsumexp_j(f_j + log π_j)``, π the training class proportions.

    The paper's probability-correct softmax ("Rethinking Softmax with Cross-Entropy"); the same gradients as
    logit adjustment with τ = 1. See :func:`softmax_mi.losses.pc_softmax_loss`.

    Example::

        loss_fn = PCSoftmaxLoss(class_counts=[500, 50, 5])
        loss = loss_fn(model(x), y)
        loss.backward()
    """

    def __init__(self, class_counts: Sequence[float] | torch.Tensor, reduction: str = "mean") -> None:
        super().__init__(class_counts, reduction)
        self.register_buffer("log_prior", log_prior_from_counts(self.class_counts))

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        self.check(logits, target)
        return pc_softmax_loss(logits, target, self.log_prior, reduction=self.reduction)


class LogitAdjustedLoss(_PriorLoss):
    """Logit-adjusted cross-entropy: ``CE(f + τ·log π, y)``, π the training class proportions.

    Menon et al. 2021, "Long-tail learning via logit adjustment" (τ = 1 is Ren et al.'s Balanced Softmax).
    See :func:`softmax_mi.losses.logit_adjusted_loss`.

    Example::

        loss_fn = LogitAdjustedLoss(class_counts=[500, 50, 5], tau=1.0)
        loss = loss_fn(model(x), y)
        loss.backward()
    """

    def __init__(self, class_counts: Sequence[float] | torch.Tensor, tau: float = 1.0, reduction: str = "mean") -> None:
        super().__init__(class_counts, reduction)
        self.tau = float(tau)
        if not math.isfinite(self.tau):
            raise ValueError(f"tau must be finite, got {tau}")
        self.register_buffer("log_prior", log_prior_from_counts(self.class_counts))

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        self.check(logits, target)
        return logit_adjusted_loss(logits, target, self.log_prior, tau=self.tau, reduction=self.reduction)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, tau={self.tau}"


class ClassBalancedLoss(_PriorLoss):
    """Class-balanced cross-entropy: ``w_y·CE(f, y)``, ``w_y ∝ (1 − β)/(1 − β^{n_y})`` normalised to sum to K.

    Cui et al. 2019, "Class-Balanced Loss Based on Effective Number of Samples" (β = 0: plain cross-entropy).
    ``mean`` divides by the summed weights of the batch, as ``nn.CrossEntropyLoss(weight=…)`` does.
    See :func:`softmax_mi.losses.class_balanced_loss`.

    Example::

        loss_fn = ClassBalancedLoss(class_counts=[500, 50, 5], beta=0.9999)
        loss = loss_fn(model(x), y)
        loss.backward()
    """

    def __init__(
        self, class_counts: Sequence[float] | torch.Tensor, beta: float = 0.9999, reduction: str = "mean"
    ) -> None:
        super().__init__(class_counts, reduction)
        self.beta = checked_number("beta", beta, 0.0, 1.0)
        self.register_buffer("weights", class_balanced_weights(self.class_counts, self.beta))

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        self.check(logits, target)
        return class_balanced_loss(logits, target, self.weights, reduction=self.reduction)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, beta={self.beta}"


class LDAMLoss(_PriorLoss):
    """LDAM loss, optionally with deferred re-weighting (LDAM-DRW):
    ``w_y·CE(s·(f − Δ_y·onehot(y)), y)``, ``Δ_y ∝ n_y^(−1/4)`` with the rarest class at ``max_margin``.

    Cao et al. 2019, "Learning Imbalanced Datasets with Label-Distribution-Aware Margin Loss". ``w`` is 1 until the
    re-weighting is switched on, then the class-balanced weights of ``beta`` (Cui et al. 2019). Switch it on either
    by hand, ``loss_fn.reweight(True)``, or by calling ``loss_fn.set_epoch(epoch)`` at the start of every epoch
    (epochs count from 1): it is on from ``drw_epoch`` on, as ``classification_loss("ldam_drw", …)`` does; with
    ``drw_epoch=None`` ``set_epoch`` never switches it on. The switch is a plain attribute (``reweighting``), not
    part of the ``state_dict``. See :func:`softmax_mi.losses.ldam_loss`.

    Example::

        loss_fn = LDAMLoss(class_counts=[500, 50, 5], max_margin=0.5, scale=30.0, drw_epoch=160)
        loss_fn.set_epoch(epoch)  # each epoch; re-weights from epoch 160 on
        loss_fn(model(x), y).backward()
    """

    def __init__(
        self,
        class_counts: Sequence[float] | torch.Tensor,
        max_margin: float = 0.5,
        scale: float = 1.0,
        beta: float = 0.9999,
        drw_epoch: int | None = None,
        reduction: str = "mean",
    ) -> None:
        super().__init__(class_counts, reduction)
        self.max_margin = checked_number("max_margin", max_margin, 0.0)
        self.scale = checked_number("scale", scale, 0.0)
        if self.scale == 0:
            raise ValueError("scale must be positive, got 0.0")
        self.beta = checked_number("beta", beta, 0.0, 1.0)
        if drw_epoch is not None and (isinstance(drw_epoch, bool) or int(drw_epoch) != drw_epoch):
            raise ValueError(f"drw_epoch must be an integer epoch (counting from 1) or None, got {drw_epoch!r}")
        self.drw_epoch = None if drw_epoch is None else int(drw_epoch)
        self.reweighting = False
        self.register_buffer("margins", ldam_margins(self.class_counts, self.max_margin))
        self.register_buffer("weights", class_balanced_weights(self.class_counts, self.beta))

    def reweight(self, on: bool = True) -> LDAMLoss:
        """Switch the class-balanced re-weighting on (or off); returns the module."""
        self.reweighting = bool(on)
        return self

    def set_epoch(self, epoch: int) -> LDAMLoss:
        """Re-weight from ``drw_epoch`` on (epochs count from 1); returns the module."""
        return self.reweight(self.drw_epoch is not None and epoch >= self.drw_epoch)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        self.check(logits, target)
        weights = self.weights if self.reweighting else None
        return ldam_loss(logits, target, self.margins, scale=self.scale, weights=weights, reduction=self.reduction)

    def extra_repr(self) -> str:
        return (f"{super().extra_repr()}, max_margin={self.max_margin}, scale={self.scale}, beta={self.beta}, "
                f"drw_epoch={self.drw_epoch}, reweighting={self.reweighting}")
