"""Synthetic tasks with a continuous X, a discrete label Y and a known I(X;Y) in nats.

- :class:`GaussianMixtureTask` — the paper's task (docs/paper.md §2): K = 5, x | y ~ N(μ_y, I_d) with
  μ = (0, +u, −u, +2u, −2u)·**1**, u = 2. No closed form: the truth is a Monte-Carlo mean of the pointwise MI
  log p(x|y) − log Σ_k π_k p(x|k), with its standard error.
- :class:`UniformOverlapTask` — Gao et al. (2017): y ~ U{0..m−1}, x | y ~ U(y, y + 2);
  I = log m − (m − 1)/m · log 2 in closed form.

Both sample with an explicit ``numpy.random.Generator``; nothing here reads global random state.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import logsumexp


def entropy(prior: np.ndarray) -> float:
    """Shannon entropy of a probability vector, in nats."""
    prior = np.asarray(prior, dtype=np.float64)
    prior = prior[prior > 0]
    return float(-(prior * np.log(prior)).sum())


def _labels(class_counts: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Exactly ``class_counts[k]`` labels of class k, in random order."""
    labels = np.repeat(np.arange(len(class_counts)), class_counts)
    return rng.permutation(labels)


@dataclass(frozen=True)
class GaussianMixtureTask:
    """Class-conditional unit-variance Gaussians with means on the diagonal, spaced ``mean_unit`` apart."""

    dim: int
    class_counts: tuple[int, ...]
    mean_unit: float = 2.0

    def __post_init__(self) -> None:
        if self.dim < 1:
            raise ValueError(f"dim must be ≥ 1, got {self.dim}")
        if len(self.class_counts) < 2 or min(self.class_counts) < 1:
            raise ValueError(f"class_counts needs ≥ 2 positive entries, got {self.class_counts}")

    @property
    def n_classes(self) -> int:
        return len(self.class_counts)

    @property
    def prior(self) -> np.ndarray:
        counts = np.asarray(self.class_counts, dtype=np.float64)
        return counts / counts.sum()

    @property
    def means(self) -> np.ndarray:
        """(K, d): class k sits at offset 0, +u, −u, +2u, −2u, ... along the all-ones direction."""
        offsets = [0.0] + [sign * step * self.mean_unit for step in range(1, self.n_classes) for sign in (1, -1)]
        return np.outer(offsets[: self.n_classes], np.ones(self.dim))

    def sample(self, class_counts: tuple[int, ...], rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        y = _labels(class_counts, rng)
        x = self.means[y] + rng.standard_normal((len(y), self.dim))
        return x.astype(np.float32), y

    def log_likelihood(self, x: np.ndarray) -> np.ndarray:
        """log p(x | k) for every row and class, (n, K)."""
        x = np.asarray(x, dtype=np.float64)
        squared = ((x[:, None, :] - self.means[None, :, :]) ** 2).sum(axis=2)
        return -0.5 * squared - 0.5 * self.dim * math.log(2 * math.pi)

    def pointwise_mi(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """log p(x|y) − log p(x): its mean over joint draws is I(X;Y)."""
        log_lik = self.log_likelihood(x)
        log_marginal = logsumexp(log_lik + np.log(self.prior), axis=1)
        return log_lik[np.arange(len(y)), y] - log_marginal

    def true_mi(self, n_samples: int, rng: np.random.Generator, chunk: int = 100_000) -> tuple[float, float]:
        """Monte-Carlo I(X;Y) and its standard error from ``n_samples`` fresh joint draws (labels ~ π)."""
        values = []
        for start in range(0, n_samples, chunk):
            n = min(chunk, n_samples - start)
            y = rng.choice(self.n_classes, size=n, p=self.prior)
            x = self.means[y] + rng.standard_normal((n, self.dim))
            values.append(self.pointwise_mi(x, y))
        pmi = np.concatenate(values)
        return float(pmi.mean()), float(pmi.std(ddof=1) / math.sqrt(len(pmi)))


@dataclass(frozen=True)
class UniformOverlapTask:
    """y ~ U{0..m−1}, x | y ~ U(y, y + 2): neighbouring classes overlap on unit intervals."""

    class_counts: tuple[int, ...]

    dim = 1

    def __post_init__(self) -> None:
        if len(set(self.class_counts)) != 1:
            raise ValueError("the closed form holds for balanced labels only: give equal class_counts")

    @property
    def n_classes(self) -> int:
        return len(self.class_counts)

    @property
    def prior(self) -> np.ndarray:
        return np.full(self.n_classes, 1.0 / self.n_classes)

    def sample(self, class_counts: tuple[int, ...], rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        y = _labels(class_counts, rng)
        x = y + 2.0 * rng.random(len(y))
        return x[:, None].astype(np.float32), y

    def pointwise_mi(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64).reshape(-1)
        classes = np.arange(self.n_classes)
        inside = (x[:, None] >= classes) & (x[:, None] <= classes + 2.0)
        density = 0.5 * inside  # p(x | k)
        marginal = density @ self.prior
        return np.log(density[np.arange(len(y)), y] / marginal)

    def true_mi(self, n_samples: int = 0, rng: np.random.Generator | None = None) -> tuple[float, float]:
        m = self.n_classes
        return math.log(m) - (m - 1) / m * math.log(2), 0.0


def held_out_counts(train_counts: tuple[int, ...], test_ratio: float) -> tuple[int, ...]:
    """Per-class test sizes: the training sizes scaled by ``test_ratio`` (paper: 1/5), at least one each."""
    return tuple(max(1, int(round(n * test_ratio))) for n in train_counts)


def make_task(spec: dict) -> GaussianMixtureTask | UniformOverlapTask:
    """Build a task from its parameter mapping (``kind`` + the dataclass fields)."""
    spec = dict(spec)
    kind = spec.pop("kind")
    counts = tuple(spec.pop("class_counts"))
    if kind == "gaussian":
        return GaussianMixtureTask(dim=spec["dim"], class_counts=counts, mean_unit=spec.get("mean_unit", 2.0))
    if kind == "uniform":
        return UniformOverlapTask(class_counts=counts)
    raise ValueError(f"unknown synthetic task kind {kind!r} (expected 'gaussian' or 'uniform')")
