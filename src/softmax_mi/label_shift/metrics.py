"""Metrics of a decision rule on a batch of shifted test sets (B, N, K), and the error of an estimated prior.

- ``micro_acc``: accuracy over the test examples (what matters when q is the truth); ``macro_acc``: mean of the
  per-class accuracies over the classes present.
- ``many_acc`` / ``medium_acc`` / ``few_acc``: mean per-class accuracy over the classes whose *training* count is
  > ``shots[1]`` / in [``shots[0]``, ``shots[1]``] / < ``shots[0]`` (Liu et al. 2019's groups with their
  thresholds 20 and 100 by default; NaN for an empty group).
- ``nll``: mean −log of the rule's posterior (softmax of its decision logits) at the true label, nats.
- ``ece``: expected calibration error of the top-1 confidence with ``bins`` equal-width bins on [0, 1] (15 by
  default): Σ_b (n_b / N)·|accuracy_b − mean confidence_b|.
- ``q_l1``: Σ_y |q̂_y − q_y|; ``q_kl``: KL(q ‖ q̂) = Σ_y q_y log(q_y / q̂_y), nats.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from softmax_mi.label_shift.rules import log_softmax

SHOTS = (20, 100)
ECE_BINS = 15


def shot_groups(train_counts: Sequence[float], shots: Sequence[int] = SHOTS) -> dict[str, torch.Tensor]:
    """Boolean class masks (K,) of the many-, medium- and few-shot groups by training count (module docstring)."""
    counts = torch.as_tensor(train_counts, dtype=torch.float64)
    low, high = shots
    return {"many": counts > high, "medium": (counts >= low) & (counts <= high), "few": counts < low}


def _per_class(values: torch.Tensor, labels: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Sums of ``values`` (B, N) per true class and the class counts, both (B, K)."""
    sums = torch.zeros(values.shape[0], k, dtype=torch.float64, device=values.device)
    counts = torch.zeros_like(sums)
    sums.scatter_add_(1, labels, values.double())
    counts.scatter_add_(1, labels, torch.ones_like(values, dtype=torch.float64))
    return sums, counts


def _masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over the last axis where ``mask``; NaN where nothing is selected."""
    total = torch.where(mask, values, torch.zeros_like(values)).sum(-1)
    n = mask.sum(-1)
    return torch.where(n > 0, total / n.clamp_min(1), torch.full_like(total, float("nan")))


def expected_calibration_error(posterior: torch.Tensor, labels: torch.Tensor, bins: int = ECE_BINS) -> torch.Tensor:
    """ECE (B,) of the top-1 confidence of ``posterior`` (B, N, K) with ``bins`` equal-width bins."""
    confidence, predicted = posterior.max(dim=-1)
    correct = (predicted == labels).double()
    index = (confidence.double() * bins).long().clamp(0, bins - 1)
    sums_conf, counts = _per_class(confidence, index, bins)
    sums_correct, _ = _per_class(correct, index, bins)
    return (sums_correct - sums_conf).abs().sum(-1) / labels.shape[-1]


def rule_metrics(decision: torch.Tensor, labels: torch.Tensor, train_counts: Sequence[float], *,
                 shots: Sequence[int] = SHOTS, bins: int = ECE_BINS) -> dict[str, torch.Tensor]:
    """micro/macro/many/medium/few accuracy, NLL and ECE (each (B,)) of decision logits (B, N, K) on labels (B, N)
    (module docstring)."""
    k = decision.shape[-1]
    labels = labels.expand(decision.shape[:2])
    log_posterior = log_softmax(decision)
    correct = (decision.argmax(-1) == labels).double()
    hits, counts = _per_class(correct, labels, k)
    present = counts > 0
    per_class = hits / counts.clamp_min(1)
    metrics = {"micro_acc": correct.mean(-1), "macro_acc": _masked_mean(per_class, present)}
    for name, group in shot_groups(train_counts, shots).items():
        metrics[f"{name}_acc"] = _masked_mean(per_class, present & group.to(present.device))
    metrics["nll"] = -log_posterior.gather(-1, labels[..., None])[..., 0].mean(-1, dtype=torch.float64)
    metrics["ece"] = expected_calibration_error(log_posterior.exp(), labels, bins)
    return metrics


def prior_errors(estimated: torch.Tensor, true: torch.Tensor) -> dict[str, torch.Tensor]:
    """``q_l1`` and ``q_kl`` = KL(q ‖ q̂) (B,) of estimated priors (B, K) against the true q (K,) or (B, K)."""
    true = torch.as_tensor(true).to(estimated).expand_as(estimated)
    return {"q_l1": (estimated - true).abs().sum(-1),
            "q_kl": (true * (true.log() - estimated.log())).sum(-1)}
