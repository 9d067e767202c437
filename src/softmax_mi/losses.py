"""Classification losses built around the label prior, all in numerically stable log-sum-exp form.

Notation: logits ``f`` (batch × K), integer targets ``y``, ``log_prior`` = log π (K,), the training-set class
proportions. PC-softmax ("probability-correct" softmax, the paper's eq. as implemented in its code) is

    PC_y(x) = exp f_y(x) / Σ_j π_j exp f_j(x),       log PC_y = f_y − logsumexp(f + log π)

so ``-log PC_y`` = cross-entropy on the prior-shifted logits ``f + log π`` minus the constant ``log π_y``:
PC-softmax training has exactly the gradients of logit adjustment with τ = 1 (Menon et al.) and of Balanced
Softmax (Ren et al.). Its mean over held-out pairs, E[log PC_y], is the Barber–Agakov lower bound on I(X;Y).

The same losses as ``nn.Module`` wrappers built from the class counts (``PCSoftmaxLoss``, ``LogitAdjustedLoss``,
``ClassBalancedLoss``, ``LDAMLoss``) live in :mod:`softmax_mi.loss_modules` and are re-exported here (lazily);
plain softmax cross-entropy is ``torch.nn.CrossEntropyLoss``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from softmax_mi import registry


def checked_counts(class_counts, *, name: str = "class_counts", n_classes: int | None = None) -> torch.Tensor:
    """``class_counts`` as a float64 CPU vector, refused with a clear message unless 1-D, non-empty (with
    ``n_classes`` entries when given), positive and finite. The one check of training class counts (and of a prior
    given directly, with ``name="prior"``) used by the losses, their modules and :func:`softmax_mi.mi_from_logits`.

    Example::

        checked_counts([500, 50, 5])        # tensor([500., 50., 5.], dtype=torch.float64)
        checked_counts([500, 0, 5])         # ValueError: ... classes [1] have [0.0] ...
    """
    counts = torch.as_tensor(class_counts).detach().to("cpu", torch.float64)
    if counts.ndim != 1 or counts.numel() == 0:
        raise ValueError(f"{name} must be a non-empty 1-D sequence (one count per class), got shape "
                         f"{tuple(counts.shape)}")
    if n_classes is not None and counts.shape[0] != n_classes:
        raise ValueError(f"{name} must be 1-D with one entry per class ({n_classes}, the columns of the logits), got "
                         f"shape {tuple(counts.shape)}")
    bad = torch.nonzero(~torch.isfinite(counts) | (counts <= 0)).flatten().tolist()
    if bad:
        raise ValueError(f"{name} must be positive and finite; classes {bad} have {[float(counts[i]) for i in bad]} "
                         "(a class absent from training has no prior: drop its logit column and its examples)")
    return counts


def log_prior_from_counts(counts: torch.Tensor) -> torch.Tensor:
    """log π (float32, on the device of ``counts``) from per-class counts; a class with no examples is an error
    (see :func:`checked_counts`), not a silent −inf."""
    checked = checked_counts(counts)
    log_prior = (checked / checked.sum()).log().float()
    return log_prior.to(counts.device) if isinstance(counts, torch.Tensor) else log_prior


def log_pc_softmax(logits: torch.Tensor, log_prior: torch.Tensor) -> torch.Tensor:
    """log PC_y(x) for every class y (batch × K). Note Σ_y π_y PC_y = 1, not Σ_y PC_y = 1."""
    log_prior = log_prior.to(logits)
    return logits - torch.logsumexp(logits + log_prior, dim=-1, keepdim=True)


def pc_softmax_loss(
    logits: torch.Tensor, target: torch.Tensor, log_prior: torch.Tensor, reduction: str = "mean"
) -> torch.Tensor:
    """Negative log PC-softmax of the target class."""
    return F.nll_loss(log_pc_softmax(logits, log_prior), target, reduction=reduction)


def softmax_cross_entropy(logits: torch.Tensor, target: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    return F.cross_entropy(logits, target, reduction=reduction)


def logit_adjusted_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    log_prior: torch.Tensor,
    tau: float = 1.0,
    reduction: str = "mean",
) -> torch.Tensor:
    """Logit-adjusted cross-entropy (Menon et al., 2021): CE on ``f + τ·log π``; τ = 1 is Balanced Softmax."""
    return F.cross_entropy(logits + tau * log_prior.to(logits), target, reduction=reduction)


# --------------------------------------------------------------------------------------------- long-tail controls


def posthoc_adjusted_logits(logits: torch.Tensor, log_prior: torch.Tensor, tau: float = 1.0) -> torch.Tensor:
    """Post-hoc logit adjustment (Menon et al.): train plain CE, predict argmax_y (f_y − τ·log π_y)."""
    return logits - tau * log_prior.to(logits)


def class_balanced_weights(counts: torch.Tensor, beta: float) -> torch.Tensor:
    """Cui et al. (2019) weights (1 − β)/(1 − β^{n_y}), normalised to sum to K (β = 0: all ones)."""
    counts = torch.as_tensor(counts, dtype=torch.float64)
    if beta > 0:
        effective = (1.0 - torch.pow(torch.tensor(beta, dtype=torch.float64), counts)) / (1.0 - beta)
    else:
        effective = torch.ones_like(counts)
    weights = 1.0 / effective
    return (weights * len(counts) / weights.sum()).float()


def class_balanced_loss(
    logits: torch.Tensor, target: torch.Tensor, weights: torch.Tensor, reduction: str = "mean"
) -> torch.Tensor:
    """Class-balanced (re-weighted) cross-entropy; ``mean`` divides by the summed weights, as torch does."""
    return F.cross_entropy(logits, target, weight=weights.to(logits), reduction=reduction)


def ldam_margins(counts: torch.Tensor, max_margin: float = 0.5) -> torch.Tensor:
    """LDAM margins Δ_y ∝ n_y^(−1/4), scaled so the rarest class gets ``max_margin`` (Cao et al., 2019)."""
    margins = torch.as_tensor(counts, dtype=torch.float64).pow(-0.25)
    return (margins * (max_margin / margins.max())).float()


def ldam_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    margins: torch.Tensor,
    scale: float = 1.0,
    weights: torch.Tensor | None = None,
    reduction: str = "mean",
) -> torch.Tensor:
    """LDAM: cross-entropy on ``scale·(f − Δ_y·onehot(y))``; with DRW, ``weights`` switch on late in training."""
    shifted = logits - F.one_hot(target, logits.shape[-1]).to(logits) * margins.to(logits)[target, None]
    return F.cross_entropy(
        scale * shifted, target, weight=None if weights is None else weights.to(logits), reduction=reduction
    )


CLASSIFICATION_LOSSES = registry.LOSSES  # the names classification_loss builds, listed once


def classification_loss(
    name: str,
    counts: torch.Tensor,
    *,
    tau: float = 1.0,
    beta: float = 0.9999,
    ldam_max_margin: float = 0.5,
    ldam_scale: float = 1.0,
    drw_epoch: int | None = None,
):
    """The training objective ``loss(logits, target, epoch) -> scalar`` of one named loss, built from the training
    class counts. ``epoch`` counts from 1; only LDAM-DRW uses it (re-weighting from ``drw_epoch`` on)."""
    counts = torch.as_tensor(counts)
    log_prior = log_prior_from_counts(counts)
    if name == "softmax":
        return lambda logits, target, epoch: softmax_cross_entropy(logits, target)
    if name == "pc_softmax":
        return lambda logits, target, epoch: pc_softmax_loss(logits, target, log_prior)
    if name == "logit_adjusted":
        return lambda logits, target, epoch: logit_adjusted_loss(logits, target, log_prior, tau=tau)
    if name == "class_balanced":
        weights = class_balanced_weights(counts, beta)
        return lambda logits, target, epoch: class_balanced_loss(logits, target, weights)
    if name == "ldam_drw":
        margins = ldam_margins(counts, ldam_max_margin)
        weights = class_balanced_weights(counts, beta)

        def loss(logits, target, epoch):
            late = drw_epoch is not None and epoch >= drw_epoch
            return ldam_loss(logits, target, margins, scale=ldam_scale, weights=weights if late else None)

        return loss
    raise ValueError(f"unknown loss {name!r}; use one of {', '.join(CLASSIFICATION_LOSSES)}")


def __getattr__(name: str):
    """The ``nn.Module`` wrappers (``softmax_mi.loss_modules.__all__``), imported on first use: loss_modules imports
    this module's functions."""
    from softmax_mi import loss_modules

    if name not in loss_modules.__all__:
        raise AttributeError(f"module 'softmax_mi.losses' has no attribute {name!r}")
    return getattr(loss_modules, name)
