"""Standard errors for the estimators whose value is not a plain mean of independent per-example terms, and the
ceilings an estimate cannot exceed.

Every interval of the benchmark is ``value ± z·se`` (z the standard-normal quantile, 1.960 at 95 %), except the
kNN ones (a t quantile, see :func:`knn_standard_error`). What each ``se`` is:

- **Classifier read-outs** (softmax, pc_softmax, logloss): the value is a mean of held-out per-example terms; ``se``
  is their sample standard deviation / √n (:func:`softmax_mi.mi_from_logits`).
- **The bracket** (softmax, pc_softmax): the held-out read-out of a classifier is pessimistic — for any fixed
  model the held-out cross-entropy is at least H(Y|X) in expectation (Gibbs' inequality), so the value is a lower
  bound in expectation (on log K − H(Y|X) for softmax). The same read-out on the rows the model was fitted on (the
  in-sample, or resubstitution, value) is optimistic for a model that fits its training rows at least as well as
  the true posterior would: the overfitting gap. The interval's upper end is therefore raised to the in-sample
  value's own upper limit when that is higher: [value − z·se, max(value + z·se, in-sample + z·se_in)] (interval
  ``clt_terms_bracket``; cross-fitted, over folds: ``crossfit_k_bracket``). It holds the estimation part of the
  bias (a model that learnt its training rows too well); it cannot hold the approximation part (a model that
  stopped or was too small to reach the Bayes posterior, where in-sample ≈ held-out), and it does not apply to
  logloss, whose terms do not read the evaluated rows' labels (its in-sample value equals the held-out one in
  expectation).
- **The learning-curve reach** (``extrapolate`` = r; the pipeline: softmax, pc_softmax, logloss at r = 0.5): the
  part of a trained read-out's bias that more training rows would remove is measured by a twin fit on a stratified
  half of the training rows, read out on the same held-out rows. If the bias falls as n^−r, the read-out at
  unlimited rows is value + (value − half value)/(2^r − 1); that extrapolation, ± z·se (se² = (1 + c)²·se² +
  c²·se_half², c = 1/(2^r − 1), the two read-outs' covariance on the shared rows left out, which widens it), joins
  the interval (interval name + ``_curve``; cross-fitted: the folds' extrapolations, ± t_{k−1}·sd/√k), on the upper
  side only for a read-out that is a lower bound in expectation (softmax, pc_softmax, the critics). r = 0.5 is
  the slow rate of a bounded loss' excess risk (r = 1, the jackknife's and a well-specified parametric model's, reaches
  less than half as far: c = 1 against 2.41). The estimate itself is unchanged. The reach holds what a larger sample would fix
  (held-out noise in a small training set, the overfitting the bracket also holds); it does not hold a bias that more
  rows do not move (a network too small, or stopped too early, for a step-shaped posterior: the saturated and Gao
  tasks), nor softmax's structural bias under an imbalanced prior (the prior gap's).
- **The prior gap** (softmax): its read-out is a lower bound in expectation on log K − H(Y|X), which exceeds I(X;Y)
  = H(Y) − H(Y|X) by log K − H(Y) ≥ 0 (zero only for a uniform prior), so I(X;Y) ≥ E[value] − (log K − H(Y)). The
  interval's lower end steps down by that gap, from the training labels' plug-in entropy
  (:func:`softmax_mi.benchmark.estimators.prior_gap`; interval name + ``_prior``); its upper end and the point
  estimate (the paper's log K − CE) stay. On an imbalanced prior the interval is as wide as what the read-out cannot
  tell apart: the mutual information, or log K − H(Y|X) above it.
- **Critic bounds** (MINE/DV, NWJ, InfoNCE): the value pairs every held-out example with every other of its
  evaluation batch, so the per-example terms are *not* independent and their naive standard error is wrong (the
  marginal term is a U-statistic over pairs). :func:`critic_influence` gives each example's first-order influence
  (Hoeffding projection / delta method) on its batch's bound; ``se²`` = Σ_b (B_b/n)² · var_b(influence)/B_b over
  the evaluation batches b. This is the asymptotic variance of the batched bound given the trained critic.
- **kNN** (Ross 2014; bmi's KSG through :mod:`~softmax_mi.benchmark.bmi` alike): each per-point term depends on
  the point's neighbours, so the terms are dependent (their naive CLT under-states the spread by 6–18 %,
  ``bench/benchmark_intervals.py``); :func:`knn_standard_error` uses batch means: the held-out points are cut into
  ``m`` disjoint seeded class-stratified subsets, the estimator runs on each, and ``se = sd(subset estimates)/√m``
  (= sd·√(n_sub/n): the kNN variance scales as 1/n at fixed k), with a t quantile on m − 1 degrees of freedom.

What none of these includes: the randomness of training (initialisation, minibatch order, the training sample)
and the bias of the estimator (a lower bound's gap, kNN's small-sample bias). The first is what k-fold
cross-fitting adds (``folds=k`` of :class:`~softmax_mi.benchmark.estimators.HeldOutEstimator`: value ±
t_{k−1}·sd(fold values)/√k over k fits, each read out on the fold it did not see); of the bias, the classifier
read-outs' overfitting part is held by the bracket, and the part more training rows would remove by the reach.
The coverage study (:mod:`softmax_mi.benchmark.coverage`) measures how far each matters.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from statistics import NormalDist

import numpy as np
import torch
from scipy import stats

from softmax_mi.benchmark.bmi_runner import subset_groups  # numpy-only: bmi's runner shares the grouping
from softmax_mi.estimators.variational import joint_scores, log_partner_label_frequencies
from softmax_mi.samples import label_entropy  # re-exported: the ceilings of logloss and InfoNCE

__all__ = [
    "CEILING_TOLERANCE",
    "at_ceiling",
    "batched_standard_error",
    "critic_influence",
    "knn_standard_error",
    "label_cross_entropy",
    "label_entropy",
    "normal_interval",
    "t_quantile",
]

CEILING_TOLERANCE = (0.01, 0.01)
"""(absolute nats, fraction of the ceiling): an estimate is at its ceiling when ceiling − value ≤ the larger."""


def normal_interval(value: float, se: float, level: float = 0.95, quantile: float | None = None) -> tuple[float, float]:
    """(low, high) = value ∓ q·se with q the standard-normal quantile at (1 + level)/2 unless ``quantile`` is given."""
    q = NormalDist().inv_cdf(0.5 + level / 2) if quantile is None else quantile
    return value - q * se, value + q * se


def _off_diagonal_means(exp_scores: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Row means r_i = mean_{j≠i} e^{S[i, y_j]} and column means c_i = mean_{j≠i} e^{S[j, y_i]}, (B,) each, O(B·K).

    ``exp_scores`` is e^{S} (B × K, already shifted by a constant for stability)."""
    n_classes = exp_scores.shape[1]
    log_freq = log_partner_label_frequencies(y, n_classes, include_self=False, dtype=exp_scores.dtype)
    rows = (exp_scores * log_freq.exp()).sum(dim=1)
    batch_size = len(y)
    column_sums = exp_scores.sum(dim=0)  # Σ_j e^{S[j, k]}
    own = joint_scores(exp_scores, y)
    columns = (column_sums[y] - own) / max(batch_size - 1, 1)
    return rows, columns


def critic_influence(bound: str, scores: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-example first-order influence (B,) on the batch bound ``bound`` ∈ {"mine", "nwj", "infonce"} of the
    critic scores ``scores`` = g(x) (B × K) and labels ``y``; its variance / B is the bound's variance.

    With T_i = S[i, y_i], r_i / c_i the row / column means of e^{S[i, y_j]} over partners j ≠ i, M their grand mean:

    - NWJ  (E_p T − e^{−1}·M):   ψ_i = T_i − e^{−1}(r_i + c_i)
    - DV / MINE (E_p T − log M):  ψ_i = T_i − (r_i + c_i)/M
    - InfoNCE (mean_i [T_i − log A_i], A_i = mean_j e^{S[i, y_j]} over all j):
      ψ_i = T_i − log A_i − mean_j e^{S[j, y_i]}/A_j

    (each up to an additive constant, which the variance ignores). Computed in float64.
    """
    scores = scores.double()
    shift = scores.max()
    exp_scores = (scores - shift).exp()  # e^{S − shift}: the shift cancels in every ratio below
    joint = joint_scores(scores, y)
    if bound == "infonce":
        log_freq = log_partner_label_frequencies(y, scores.shape[1], include_self=True, dtype=scores.dtype)
        log_a = torch.logsumexp(scores + log_freq, dim=1)  # log A_i
        weights = (scores - log_a[:, None]).exp()  # e^{S[j, k]}/A_j
        return joint - log_a - weights.mean(dim=0)[y]
    rows, columns = _off_diagonal_means(exp_scores, y)
    if bound == "nwj":
        return joint - math.exp(shift.item() - 1.0) * (rows + columns)
    if bound == "mine":
        return joint - (rows + columns) / rows.mean()
    raise ValueError(f"unknown critic bound {bound!r}; use 'mine', 'nwj' or 'infonce'")


def batched_standard_error(influences: Sequence[torch.Tensor]) -> float:
    """Standard error of a size-weighted mean of batch statistics from each batch's per-example influences:
    √(Σ_b (B_b/n)² · var_b/B_b) with var_b the sample variance (ddof = 1) of batch b's influences."""
    sizes = np.array([len(values) for values in influences], dtype=np.float64)
    n = sizes.sum()
    variances = np.array([float(values.double().var(unbiased=True)) if len(values) > 1 else math.nan
                          for values in influences])
    return float(math.sqrt(np.sum((sizes / n) ** 2 * variances / sizes)))


def knn_standard_error(estimate: Callable[[np.ndarray, np.ndarray], float], x: np.ndarray, y: np.ndarray, *,
                       subsets: int = 10, seed: int = 0) -> tuple[float, int]:
    """(se, degrees of freedom) of the kNN estimate ``estimate(x, y)`` by batch means.

    The points are dealt, class by class in a seeded order, into m disjoint groups of (almost) equal size and
    label mix; ``estimate`` runs on each group; se = sd(group estimates)·√(n_group/n), which assumes the
    estimator's variance scales as 1/n (true of kNN estimators at fixed k). m = ``subsets``, or fewer so that
    every group keeps ≥ 2 points of the smallest class; degrees of freedom m − 1. With a class of fewer than 4
    points no split works: (NaN, 0), no interval.
    """
    if subsets < 2:
        raise ValueError(f"subsets must be ≥ 2, got {subsets}")
    subsets = min(subsets, int(np.bincount(y)[np.unique(y)].min()) // 2)
    if subsets < 2:
        return math.nan, 0
    group = subset_groups(y, subsets, seed)
    values = np.array([estimate(x[group == g], y[group == g]) for g in range(subsets)])
    se = float(np.std(values, ddof=1) / math.sqrt(subsets))  # = sd·√(n_group/n) with n_group = n/subsets
    return se, subsets - 1


def t_quantile(level: float, dof: float) -> float:
    """Student-t quantile at (1 + level)/2 with ``dof`` degrees of freedom."""
    return float(stats.t.ppf(0.5 + level / 2, dof))


def label_cross_entropy(y: torch.Tensor, class_counts: torch.Tensor) -> float:
    """mean_i −log π_{y_i} with π the normalised ``class_counts`` (nats): the exact maximum of the mean of
    log PC_{y_i}(x_i) terms with that prior, ≈ H(Y)."""
    counts = class_counts.double()
    log_prior = (counts / counts.sum()).log()
    return float(-log_prior[y.cpu()].mean())


def at_ceiling(value: float, ceiling: float, tolerance: tuple[float, float] = CEILING_TOLERANCE) -> bool:
    """Whether ``value`` is within ``tolerance`` (absolute nats, fraction of the ceiling; the larger) of
    ``ceiling``; False when there is no ceiling (NaN)."""
    if math.isnan(ceiling):
        return False
    return ceiling - value <= max(tolerance[0], tolerance[1] * abs(ceiling))
