"""Non-parametric k-nearest-neighbour estimators of I(X;Y) for continuous X and discrete Y (nats).

- :class:`KNNMI` — Ross (2014), "Mutual information between discrete and continuous data sets", PLoS ONE 9(2),
  for the **joint** I(X;Y) with multivariate X (n × d), max-norm (Chebyshev) distances:

      I = ψ(N) − ⟨ψ(N_{y_i})⟩ + ⟨ψ(k_i)⟩ − ⟨ψ(m_i)⟩

  where, for point i, d_i is the distance to its k_i-th nearest neighbour among the points of its own class
  (k_i = min(k, N_{y_i} − 1)) and m_i counts the points of the whole sample within distance ≤ d_i, itself excluded
  (so m_i ≥ k_i). Points whose class has a single member have no same-class neighbour and are dropped, as in
  scikit-learn; N and N_y are counted after that. Negative values (possible when I ≈ 0) are reported unclipped.
- :class:`SklearnKNNMI` — scikit-learn's ``mutual_info_classif``, the same estimator per feature column. It returns
  one I(X_j;Y) per column, not the joint I(X;Y), so it is accepted only for d = 1; it also clips negatives to 0.

Ties: no jitter is added. Distances are computed in float64, and the inclusive count ``≤ d_i`` already keeps
m_i ≥ k_i when distances tie (duplicated x), so every digamma stays finite; the estimate is then exactly
reproducible. scikit-learn instead adds 1e-10-scale noise and counts strictly inside d_i plus the point itself;
the two agree whenever no two neighbours of a point sit at exactly the same distance. Heavily duplicated X
(discrete-valued features) biases every kNN estimator; add noise upstream if that is the situation.

The max-norm makes the estimate depend on the relative scale of the features; standardise X first if they differ.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.spatial import cKDTree
from scipy.special import digamma

from softmax_mi.estimators.base import LabeledSample, MIEstimate, MIEstimator

CHEBYSHEV = np.inf  # Minkowski p for cKDTree: the max-norm of Kraskov et al. and Ross


def same_class_radius(x: np.ndarray, y: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per point: the max-norm distance to its k_i-th same-class neighbour, and k_i = min(k, class size − 1).

    Every class must have at least two members. The loop runs over classes, not samples."""
    radius = np.empty(len(y))
    k_used = np.empty(len(y), dtype=np.int64)
    for label in np.unique(y):
        members = np.flatnonzero(y == label)
        k_class = min(k, len(members) - 1)
        # k_class + 1 neighbours because each point is its own nearest neighbour, at distance 0.
        distances, _ = cKDTree(x[members]).query(x[members], k=[k_class + 1], p=CHEBYSHEV)
        radius[members] = distances[:, 0]
        k_used[members] = k_class
    return radius, k_used


def neighbours_within(x: np.ndarray, radius: np.ndarray) -> np.ndarray:
    """m_i: points of the whole sample at max-norm distance ≤ radius_i from point i, the point itself excluded."""
    counts = cKDTree(x).query_ball_point(x, r=radius, p=CHEBYSHEV, return_length=True)
    return np.asarray(counts, dtype=np.int64) - 1


def own_class_size(y: np.ndarray) -> np.ndarray:
    """N_{y_i} for every point i."""
    _, inverse, sizes = np.unique(y, return_inverse=True, return_counts=True)
    return sizes[inverse]


def ross_mi(x: np.ndarray, y: np.ndarray, k: int = 3) -> tuple[float, dict[str, float]]:
    """Ross (2014) estimate of the joint I(X;Y) in nats, with diagnostics; see the module docstring."""
    if k < 1:
        raise ValueError(f"k must be ≥ 1, got {k}")
    x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    y = np.asarray(y)
    keep = own_class_size(y) > 1  # a singleton class has no same-class neighbour
    x, y = x[keep], y[keep]
    if len(y) == 0:
        raise ValueError("kNN MI needs at least one class with two or more samples")
    radius, k_used = same_class_radius(x, y, k)
    neighbours = neighbours_within(x, radius)
    mi = digamma(len(y)) - digamma(own_class_size(y)).mean() + digamma(k_used).mean() - digamma(neighbours).mean()
    return float(mi), {
        "n_samples": len(y),
        "n_dropped_singletons": int((~keep).sum()),
        "mean_neighbours": float(neighbours.mean()),
    }


def subsample(sample: LabeledSample, max_samples: int | None, seed: int) -> LabeledSample:
    """A seeded uniform subsample without replacement (kNN cost grows as N log N per query set)."""
    if max_samples is None or len(sample) <= max_samples:
        return sample
    index = np.random.default_rng(seed).choice(len(sample), size=max_samples, replace=False)
    return sample.subset(torch.as_tensor(np.sort(index), dtype=torch.int64, device=sample.y.device))


class KNNMI(MIEstimator):
    """Ross (2014) kNN estimator of the joint I(X;Y) (continuous multivariate X, discrete Y), max-norm, nats."""

    name = "knn"

    def __init__(self, *, k: int = 3, max_samples: int | None = None, seed: int = 0):
        if k < 1:
            raise ValueError(f"k must be ≥ 1, got {k}")
        self.k = k
        self.max_samples = max_samples
        self.seed = seed

    def estimate(self, test: LabeledSample) -> MIEstimate:
        test = subsample(test, self.max_samples, self.seed).to("cpu")
        value, details = ross_mi(test.x.numpy(), test.y.numpy(), self.k)
        return MIEstimate(value=value, details={"k": self.k, **details})


class SklearnKNNMI(MIEstimator):
    """scikit-learn ``mutual_info_classif`` (the same Ross estimator, per feature, clipped at 0); d = 1 only."""

    name = "sklearn_knn"

    def __init__(self, *, k: int = 3, seed: int = 0):
        self.k = k
        self.seed = seed

    def estimate(self, test: LabeledSample) -> MIEstimate:
        from softmax_mi.extras import optional_import

        optional_import("sklearn", "the sklearn_knn estimator")
        from sklearn.feature_selection import mutual_info_classif

        if test.dim != 1:
            raise ValueError(
                "mutual_info_classif estimates per-feature I(X_j;Y), not the joint I(X;Y); valid only for d = 1 "
                f"(got d = {test.dim}); use the 'knn' estimator for the joint MI"
            )
        test = test.to("cpu")
        value = mutual_info_classif(
            test.x.numpy(), test.y.numpy(), discrete_features=False, n_neighbors=self.k, random_state=self.seed
        )[0]
        return MIEstimate(value=float(value), details={"k": self.k, "n_samples": len(test)})
