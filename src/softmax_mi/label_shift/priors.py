"""Test label priors q unlike the training prior π, and seeded shifted test subsets (numpy only).

A test prior is named by a **profile** and a **ratio** ρ = max_y q_y / min_y q_y:

- ``forward``: long-tailed in the same order as training (the class with the most training examples is the most
  frequent at test time); ``backward``: the reverse order; ``uniform``: q = 1/K (its ratio is 1). Classes are ranked
  by training count, largest first, ties by class index (so on a balanced training set "forward" means class 0 first).
- the **decay** over the ranks r = 0..K−1: ``exponential`` q_r ∝ ρ^(−r/(K−1)) (the long-tail literature's
  profile), ``step`` q_r ∝ 1 for the first ⌈K/2⌉ ranks and 1/ρ for the rest.

A shifted subset of a labelled test set keeps ``n_y`` examples of class y, drawn without replacement:
:func:`subset_sizes` gives the counts (by default the largest subset with exactly the proportions q that the test set
allows: ``N = min_y available_y / q_y``, ``n_y = ⌊N·q_y⌋``, at least 1), :func:`shifted_subset` the seeded indices.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from softmax_mi.registry import SHIFT_DECAYS as DECAYS
from softmax_mi.registry import SHIFT_PROFILES as PROFILES


def _ranks(train_counts: Sequence[float]) -> np.ndarray:
    """Rank of each class by training count, 0 = most examples (ties: lower class index first)."""
    counts = np.asarray(train_counts, dtype=np.float64)
    order = np.lexsort((np.arange(len(counts)), -counts))
    ranks = np.empty(len(counts), dtype=np.int64)
    ranks[order] = np.arange(len(counts))
    return ranks


def shifted_prior(train_counts: Sequence[float], profile: str, ratio: float, decay: str = "exponential") -> np.ndarray:
    """The test prior q (K,) of ``profile`` (forward | uniform | backward) with max/min ratio ``ratio`` (≥ 1),
    ``decay`` (exponential | step) over the classes ranked by ``train_counts`` (module docstring).

    Example::

        shifted_prior([300, 100, 30], "backward", 10)   # array([0.0725..., 0.2293..., 0.7251...])
    """
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {', '.join(PROFILES)}, got {profile!r}")
    if decay not in DECAYS:
        raise ValueError(f"decay must be one of {', '.join(DECAYS)}, got {decay!r}")
    if not (isinstance(ratio, (int, float)) and math.isfinite(ratio) and ratio >= 1):
        raise ValueError(f"ratio must be a number ≥ 1 (max q / min q), got {ratio!r}")
    ranks = _ranks(train_counts)
    k = len(ranks)
    if k < 2:
        raise ValueError(f"train_counts needs ≥ 2 classes, got {k}")
    if profile == "uniform" or ratio == 1:
        return np.full(k, 1.0 / k)
    if profile == "backward":
        ranks = k - 1 - ranks
    if decay == "exponential":
        weights = float(ratio) ** (-ranks / (k - 1))
    else:
        weights = np.where(ranks < math.ceil(k / 2), 1.0, 1.0 / float(ratio))
    return weights / weights.sum()


def prior_grid(profiles: Sequence[str], ratios: Sequence[float], decays: Sequence[str]) -> list[tuple[str, float, str]]:
    """The distinct (profile, ratio, decay) test priors of a parameter grid: ``uniform`` (and every ratio 1) once,
    as ("uniform", 1, decays[0]); forward and backward at every ratio > 1 and decay; in the order given."""
    grid: list[tuple[str, float, str]] = []
    for decay in decays:
        for profile in profiles:
            for ratio in ratios:
                key = ("uniform", 1.0, decays[0]) if profile == "uniform" or ratio == 1 else (profile, float(ratio),
                                                                                               decay)
                if key not in grid:
                    grid.append(key)
    return grid


def signed_ratio(profile: str, ratio: float) -> float:
    """The plotting coordinate of a test prior: ρ for forward, 1/ρ for backward, 1 for uniform."""
    return 1.0 if profile == "uniform" else (float(ratio) if profile == "forward" else 1.0 / float(ratio))


def subset_sizes(available: Sequence[int], prior: Sequence[float], total: int | None = None) -> np.ndarray:
    """Per-class sizes n_y of a test subset with proportions ``prior`` from ``available`` examples per class.

    ``total=None``: the largest such subset, N = min_y available_y / q_y, n_y = ⌊N·q_y⌋ (≥ 1 each); with ``total``:
    n_y = round(total·q_y) (≥ 1), refused when a class has fewer examples than it needs.
    """
    available = np.asarray(available, dtype=np.int64)
    q = np.asarray(prior, dtype=np.float64)
    if available.shape != q.shape:
        raise ValueError(f"available has {available.shape} classes, prior {q.shape}: give one entry per class")
    if (q <= 0).any() or abs(q.sum() - 1) > 1e-6:
        raise ValueError(f"prior must be positive and sum to 1, got {q.round(4).tolist()}")
    if total is None:
        largest = float(np.min(available / q))
        sizes = np.maximum(1, np.floor(largest * q + 1e-9)).astype(np.int64)
    else:
        sizes = np.maximum(1, np.round(total * q)).astype(np.int64)
    short = np.nonzero(sizes > available)[0]
    if len(short):
        raise ValueError(f"classes {short.tolist()} need {sizes[short].tolist()} test examples but have "
                         f"{available[short].tolist()}: lower the test size (null = the largest possible)")
    return sizes


def shifted_subset(labels: Sequence[int], prior: Sequence[float], seed: int, total: int | None = None,
                   n_draws: int = 1) -> np.ndarray:
    """Indices (n_draws, N) into ``labels`` of ``n_draws`` seeded shifted subsets with proportions ``prior`` and the
    sizes of :func:`subset_sizes` (``total=None``: the largest possible). Each row is sorted by class, then random
    within class; one vectorised lexsort per draw, no per-example loop.

    Example::

        rows = shifted_subset(test_labels, shifted_prior(train_counts, "forward", 10), seed=0, n_draws=3)
        logits[rows[0]], test_labels[rows[0]]     # the first shifted test set
    """
    labels = np.asarray(labels, dtype=np.int64)
    q = np.asarray(prior, dtype=np.float64)
    available = np.bincount(labels, minlength=len(q))
    if len(available) != len(q):
        raise ValueError(f"labels reach class {len(available) - 1} but the prior has {len(q)} entries")
    sizes = subset_sizes(available, q, total)
    starts = np.concatenate([[0], np.cumsum(available)[:-1]])
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n_draws):
        order = np.lexsort((rng.random(len(labels)), labels))  # by class, random within class
        rank = np.arange(len(labels)) - starts[labels[order]]
        rows.append(order[rank < sizes[labels[order]]])
    return np.stack(rows)
