"""The benchmark's estimators behind one interface, in the spirit of bmi's ``IMutualInformationPointEstimator``:
``estimate(x, y, *, seed) -> MIEstimate`` (nats, with a 95 % interval) plus the estimator's parameters as attributes
and :meth:`~HeldOutEstimator.parameters`::

    from softmax_mi.benchmark.estimators import ESTIMATORS
    estimator = ESTIMATORS["pc_softmax"](settings={"epochs": 20, "batch_size": 256})
    result = estimator.estimate(x, y, seed=0)      # x: (n, d) floats, y: (n,) ints in 0..K-1
    result.value, result.low, result.high, result.details["at_ceiling"]

Every estimator splits (x, y) as :func:`softmax_mi.mi_from_features` does (stratified, ``test_fraction`` of each
class held out, seeded by ``seed``), fits on the training split (the kNN ones do not fit) and estimates on the
held-out split; ``seed`` also seeds initialisation and minibatch order. The interval of each family, and what it
leaves out, is described in :mod:`softmax_mi.benchmark.intervals`.

With ``folds=k`` (k ≥ 2) any estimator cross-fits instead (:meth:`HeldOutEstimator.crossfit`): k seeded
stratified folds, k fits (each on the other k − 1 folds, seeded per fold), each read out on its own fold; the value
is the mean over folds and the interval value ± t_{k−1}·sd(fold values)/√k (``interval`` = ``crossfit_k``). That
interval holds the training randomness a single split's interval leaves out, at k times the cost. The pipeline
cross-fits the classifier read-outs (``benchmark.crossfit``)::

    ESTIMATORS["pc_softmax"](folds=5).estimate(x, y, seed=0)    # 5 fits; details["fold_values"]

| name       | estimate                                                        | interval                           |
|------------|-----------------------------------------------------------------|------------------------------------|
| softmax    | log K − CE of a softmax MLP classifier                           | CLT on terms, bracket, prior gap   |
| pc_softmax | mean log PC_y(x) of a PC-softmax MLP (the paper's estimator)    | CLT on per-example terms, bracket  |
| logloss    | Ĥ(Y) − mean H(q(·|x)) of a temperature-calibrated classifier    | CLT on per-example terms (delta)   |
| mine       | Donsker–Varadhan bound of a trained critic                      | CLT on influence terms (delta)     |
| infonce    | InfoNCE bound (in-batch negatives)                               | CLT on influence terms (delta)     |
| nwj        | NWJ bound                                                       | CLT on influence terms (U-stat.)   |
| knn        | Ross (2014) kNN estimator                                        | batch means over 10 subsets, t(9)  |

Bracket: the classifier read-outs' upper end reaches the in-sample (resubstitution) read-out's upper limit, which
holds the overfitting part of their bias (``details["in_sample"]``; :mod:`softmax_mi.benchmark.intervals`).
Reach (``extrapolate=r``, any trained estimator): a twin fit on half the training rows, read out on the same
held-out rows, extrapolates the read-out to unlimited rows (value + (value − half)/(2^r − 1)); the interval reaches
that value ± its z·se, upwards only for the lower bounds (softmax, pc_softmax and the critics: :data:`LOWER_BOUNDS`)
(``details["extrapolated"]``, ``["half_value"]``; interval name + ``_curve``). Prior gap (softmax only): its
read-out targets log K − H(Y|X), above I(X;Y) by log K − H(Y), so its lower end steps down by that gap of the
training labels (:func:`prior_gap`; ``details["prior_gap"]``; interval name + ``_prior``)::

    ESTIMATORS["pc_softmax"](folds=4, extrapolate=0.5).estimate(x, y, seed=0)   # 8 fits: the pipeline's setting

``details`` of every result carries: ``label_entropy`` (H of the training labels, nats: the truth's own cap),
``ceiling`` (nats, NaN when the estimator has none), ``at_ceiling`` (bool,
:data:`~softmax_mi.benchmark.intervals.CEILING_TOLERANCE`), ``interval`` (the method's name), ``n_train``,
``seconds`` (wall-clock of split + fit + estimate + interval) and ``cpu_seconds`` (process CPU time of the same).
Ceilings: softmax log K (each term ≤ log K); pc_softmax mean −log π_y of the test labels under the training prior
(≈ H(Y), each term ≤ −log π_y); logloss the test labels' plug-in Ĥ(Y); infonce the size-weighted mean plug-in
entropy of the evaluation batches' labels (≤ log B, the generic InfoNCE cap; for a discrete label this tighter cap
is the one that binds); knn ψ(N) − ⟨ψ(N_y)⟩ (every neighbourhood pure); mine and nwj none.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from functools import partial
from typing import Any, Protocol

import torch
from scipy.optimize import minimize_scalar
from scipy.special import digamma

from softmax_mi.benchmark.intervals import (
    at_ceiling,
    batched_standard_error,
    critic_influence,
    knn_standard_error,
    label_cross_entropy,
    label_entropy,
    normal_interval,
    t_quantile,
)
from softmax_mi.estimators import build_estimator
from softmax_mi.estimators.base import LabeledSample, MIEstimate, MIEstimator
from softmax_mi.estimators.classifier import SoftmaxMI
from softmax_mi.estimators.held_out import fold_samples, held_out_estimate, split_sample, stratified_split
from softmax_mi.estimators.knn import KNNMI, own_class_size, ross_mi, subsample
from softmax_mi.estimators.variational import CriticMI
from softmax_mi.runtime import derive_seed
from softmax_mi.training import TrainConfig

__all__ = [
    "ESTIMATORS",
    "BenchmarkEstimator",
    "HeldOutEstimator",
    "LogLossMI",
    "build",
    "prior_gap",
]

LOWER_BOUNDS = frozenset({"softmax", "pc_softmax", "mine", "infonce", "nwj"})
"""Read-outs that are lower bounds in expectation for any fitted model (Barber–Agakov, the variational bounds): more
training rows can only raise them, so the learning-curve reach raises their upper end only. (softmax's is a lower
bound on log K − H(Y|X), which exceeds I(X;Y) by :func:`prior_gap`: its interval's lower end steps down by that.)"""


def prior_gap(log_classes: float, label_entropy: float) -> float:
    """log K − H(Y) (nats, ≥ 0; 0 for a uniform prior): how far the softmax read-out's target, log K − H(Y|X), lies
    above I(X;Y) = H(Y) − H(Y|X). The softmax read-out is a lower bound in expectation on its target, so I(X;Y) ≥
    E[value] − gap: the benchmark lowers its interval's lower end by the gap of the training labels' plug-in
    entropy (``details["prior_gap"]``, interval name + ``_prior``); the point estimate keeps the paper's
    definition. Clipped at 0 (a plug-in entropy can exceed log K by rounding only)."""
    return max(log_classes - label_entropy, 0.0)

TRAIN_KEYS = tuple(entry.name for entry in fields(TrainConfig) if entry.name not in ("seed", "device"))
"""The settings keys that go to the trainer (whatever :class:`~softmax_mi.training.TrainConfig` holds)."""


class BenchmarkEstimator(Protocol):
    """What the benchmark calls: ``estimate(x, y, *, seed)`` → :class:`~softmax_mi.MIEstimate` in nats with an
    interval, and ``parameters()`` → the estimator's settings as a flat JSON-ready dict."""

    name: str

    def estimate(self, x, y, *, seed: int = 0) -> MIEstimate: ...

    def parameters(self) -> dict[str, Any]: ...


class LogLossMI(MIEstimator):
    """autoqild's log-loss estimator with temperature scaling (Gupta, Wever & Hüllermeier, "Information leakage
    detection through approximate Bayes-optimal prediction", 2024; package ``autoqild``, method
    ``LogLossMITemperatureScaling``), on this package's MLP classifier:

        Î(X;Y) = Ĥ(Y) − mean_i H(q_T(·|x_i)),      q_T = softmax(f(x)/T),

    Ĥ(Y) the plug-in entropy of the held-out labels, H(q) = −Σ_k q_k log q_k the classifier's predicted conditional
    entropy on each held-out x_i. f is an MLP trained with plain softmax cross-entropy (which learns p(y|x) with the
    prior included) on the training split less a seeded ``calibration_fraction``; T minimises the cross-entropy on
    that calibration part (temperature scaling, Guo et al., 2017). Unlike the Barber–Agakov read-outs (softmax,
    pc_softmax) it does not score the true labels' likelihood, so it is no lower bound: it is exact for a
    calibrated Bayes-optimal q and over-estimates for an over-confident q. Not clipped at 0 (autoqild clips).

    The estimate is the mean of the per-example terms −log p̂_{y_i} − H(q_T(·|x_i)) (p̂: held-out label
    frequencies; the first term's mean is exactly Ĥ(Y) and is its delta-method influence), so it carries the
    central-limit interval of a mean.
    """

    name = "logloss"

    def __init__(self, *, hidden: Sequence[int] = (100, 100, 100), train_config: TrainConfig = TrainConfig(),
                 calibration_fraction: float = 0.1):
        if not 0 < calibration_fraction < 1:
            raise ValueError(f"calibration_fraction must lie in (0, 1), got {calibration_fraction}")
        self.classifier = SoftmaxMI(hidden=hidden, train_config=train_config)
        self.calibration_fraction = calibration_fraction
        self.temperature = 1.0

    def fit(self, train: LabeledSample) -> LogLossMI:
        fit_part, calibration = train.split(self.calibration_fraction, seed=self.classifier.train_config.seed)
        self.classifier.fit(fit_part)
        return self.calibrate(calibration)

    def calibrate(self, calibration: LabeledSample) -> LogLossMI:
        """Set ``temperature`` to the T in [e^−4, e^4] minimising the cross-entropy of softmax(f(x)/T) on
        ``calibration`` (data the classifier was not trained on)."""
        logits = self.logits(calibration).double()
        labels = calibration.y.to(logits.device)

        def calibration_loss(log_temperature: float) -> float:
            return float(torch.nn.functional.cross_entropy(logits / math.exp(log_temperature), labels))

        self.temperature = math.exp(minimize_scalar(calibration_loss, bounds=(-4.0, 4.0), method="bounded").x)
        return self

    @torch.no_grad()
    def logits(self, sample: LabeledSample) -> torch.Tensor:
        if self.classifier.model is None:
            raise RuntimeError("LogLossMI used before fit")
        self.classifier.model.eval()
        return self.classifier.logits(sample)

    def terms(self, test: LabeledSample) -> torch.Tensor:
        """The per-example terms −log p̂_{y_i} − H(q_T(·|x_i)) (float64, (n,)) whose mean is the estimate."""
        log_q = torch.log_softmax(self.logits(test).double() / self.temperature, dim=1).cpu()
        conditional_entropy = -(log_q.exp() * log_q).sum(dim=1)
        frequencies = test.class_counts().double().cpu() / len(test)
        return -frequencies[test.y.cpu()].log() - conditional_entropy

    def estimate(self, test: LabeledSample) -> MIEstimate:
        terms = self.terms(test)
        value, se = float(terms.mean()), float(terms.std(unbiased=True) / math.sqrt(len(terms)))
        low, high = normal_interval(value, se)
        return MIEstimate(value=value, low=low, high=high, se=se, n=len(terms), details={
            "temperature": self.temperature, "train_steps": self.classifier.train_steps})


# ---------------------------------------------------------------------------------------------------------------
# Intervals and ceilings, per family: (fitted model, train, test, level, seed) -> (estimate, ceiling, method)
# ---------------------------------------------------------------------------------------------------------------

Readout = Callable[[MIEstimator, LabeledSample, LabeledSample, float, int], tuple[MIEstimate, float, str]]


def classifier_readout(model: MIEstimator, train: LabeledSample, test: LabeledSample, level: float,
                       seed: int) -> tuple[MIEstimate, float, str]:
    """The held-out read-out with its CLT interval, its upper end raised to the in-sample read-out's upper limit
    (the bracket: :mod:`softmax_mi.benchmark.intervals`); ``details["in_sample"]`` / ``["in_sample_se"]``."""
    result = held_out_estimate(model, train, test, level=level)
    fitted = held_out_estimate(model, train, train, level=level)  # resubstitution: the rows it was fitted on
    ceiling = math.log(test.n_classes) if model.name == "softmax" else label_cross_entropy(test.y,
                                                                                           train.class_counts())
    details = {**result.details, "in_sample": fitted.value, "in_sample_se": fitted.se}
    return replace(result, high=max(result.high, fitted.high), details=details), ceiling, "clt_terms_bracket"


def logloss_readout(model: LogLossMI, train: LabeledSample, test: LabeledSample, level: float,
                    seed: int) -> tuple[MIEstimate, float, str]:
    result = model.estimate(test)
    low, high = normal_interval(result.value, result.se, level)
    return replace(result, low=low, high=high, level=level), label_entropy(test.y), "clt_terms"


@torch.no_grad()
def critic_readout(model: CriticMI, train: LabeledSample, test: LabeledSample, level: float,
                   seed: int) -> tuple[MIEstimate, float, str]:
    result = model.estimate(test)
    device_test = test.to(model.train_config.device)
    batches = model.evaluation_batches(len(test), device_test.y.device)
    influences = [critic_influence(model.name, model.critic(device_test.x[index]), device_test.y[index]).cpu()
                  for index in batches]
    se = batched_standard_error(influences)
    low, high = normal_interval(result.value, se, level)
    ceiling = math.nan
    if model.name == "infonce":
        ceiling = sum(label_entropy(test.y[index.cpu()]) * len(index) for index in batches) / len(test)
    estimate = replace(result, low=low, high=high, se=se, n=len(test), level=level)
    return estimate, ceiling, "clt_influence"


def knn_readout(model: KNNMI, train: LabeledSample, test: LabeledSample, level: float,
                seed: int, subsets: int = 10) -> tuple[MIEstimate, float, str]:
    sample = subsample(test, model.max_samples, model.seed).to("cpu")
    x, y = sample.x.numpy(), sample.y.numpy()
    result = model.estimate(test)
    se, dof = knn_standard_error(lambda xs, ys: ross_mi(xs, ys, model.k)[0], x, y, subsets=subsets, seed=seed)
    low, high = normal_interval(result.value, se, level, quantile=t_quantile(level, dof) if dof else math.nan)
    kept = own_class_size(y) > 1
    ceiling = float(digamma(kept.sum()) - digamma(own_class_size(y[kept])).mean())
    method = f"batch_means_{dof + 1}" if dof else "none"
    return replace(result, low=low, high=high, se=se, n=len(y), level=level), ceiling, method


READOUTS: dict[str, Readout] = {
    "softmax": classifier_readout,
    "pc_softmax": classifier_readout,
    "logloss": logloss_readout,
    "mine": critic_readout,
    "infonce": critic_readout,
    "nwj": critic_readout,
    "knn": knn_readout,
}


# ---------------------------------------------------------------------------------------------------------------
# The interface
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class HeldOutEstimator:
    """One benchmark estimator: ``name`` (a key of :data:`ESTIMATORS`) with its ``settings`` (as
    :func:`softmax_mi.estimators.build_estimator` takes them: ``hidden``, ``epochs``, ``batch_size``, ``lr``,
    ``val_fraction``, ``select``, ``k``, ``max_samples``, ``calibration_fraction``, ...), the held-out share
    ``test_fraction``, the interval ``level`` and the torch ``device``.

    Example::

        estimator = HeldOutEstimator("nwj", settings={"epochs": 2})
        estimator.estimate(x, y, seed=0)     # MIEstimate, nats, 95 % interval; details["at_ceiling"]
    """

    name: str
    settings: Mapping[str, Any] = field(default_factory=dict)
    test_fraction: float = 0.2
    level: float = 0.95
    device: str = "cpu"
    folds: int = 1
    extrapolate: float | None = None

    def __post_init__(self) -> None:
        if self.name not in READOUTS:
            raise ValueError(f"unknown benchmark estimator {self.name!r}; use one of {', '.join(READOUTS)}")
        if self.extrapolate is not None and not (isinstance(self.extrapolate, (int, float))
                                                 and not isinstance(self.extrapolate, bool) and self.extrapolate > 0):
            raise ValueError(f"extrapolate must be None (off) or the learning-curve rate r > 0 (bias ∝ n^−r; 0.5: "
                             f"the slow rate), got {self.extrapolate!r}")
        if not isinstance(self.folds, int) or isinstance(self.folds, bool) or self.folds < 1:
            raise ValueError(f"folds must be an integer ≥ 1 (1: one held-out split; k ≥ 2: k-fold cross-fitting), "
                             f"got {self.folds!r}")
        self.settings = dict(self.settings)

    def parameters(self) -> dict[str, Any]:
        """The estimator's settings as a flat dict (name, test_fraction, level, device, folds, extrapolate, then its
        settings)."""
        return {"name": self.name, "test_fraction": self.test_fraction, "level": self.level, "device": self.device,
                "folds": self.folds, "extrapolate": self.extrapolate, **self.settings}

    def model(self, seed: int) -> MIEstimator:
        """A fresh, unfitted library estimator seeded by ``seed``."""
        if self.name != "logloss":
            return build_estimator(self.name, settings=self.settings, seed=seed, device=self.device)
        settings = dict(self.settings)
        train_config = TrainConfig(**{key: settings.pop(key) for key in TRAIN_KEYS if key in settings}, seed=seed,
                                   device=self.device)
        return LogLossMI(train_config=train_config, **settings)

    def estimate(self, x, y, *, seed: int = 0) -> MIEstimate:
        """I(X;Y) in nats from features ``x`` (n × d) and integer labels ``y`` (n,), with its interval; see the
        module docstring for the split (or the folds), the interval and the ``details``."""
        wall, cpu = time.perf_counter(), time.process_time()
        if self.folds == 1:
            train, test = split_sample(x, y, test_fraction=self.test_fraction, seed=seed)
            result, ceiling, method = self.fit_readout(train, test, seed)
            n_train, label_entropy_train = len(train), train.label_entropy()
        else:
            result, ceiling, method, n_train, label_entropy_train = self.crossfit(x, y, seed)
        details = {**result.details, "n_train": n_train, "label_entropy": label_entropy_train,
                   "ceiling": ceiling, "at_ceiling": at_ceiling(result.value, ceiling)}
        if self.name == "softmax":  # its read-out targets log K − H(Y|X), above I(X;Y) by log K − H(Y)
            gap = prior_gap(ceiling, label_entropy_train)  # softmax's ceiling is log K
            result = replace(result, low=result.low - gap)
            details["prior_gap"], method = gap, method + "_prior"
        details.update(interval=method, seconds=time.perf_counter() - wall, cpu_seconds=time.process_time() - cpu)
        return replace(result, details=details)

    def fit_readout(self, train: LabeledSample, test: LabeledSample, seed: int) -> tuple[MIEstimate, float, str]:
        """Fit a fresh model seeded by ``seed`` on ``train``; (estimate with its interval, ceiling, interval name)
        on ``test``. With ``extrapolate`` = r, a second model (its own seed) is fitted on a stratified half of
        ``train`` and read out on the same ``test``; the learning-curve extrapolation to unlimited training rows,
        value + (value − half value)/(2^r − 1), joins the interval with its own ± z·se (its upper side only for the
        :data:`LOWER_BOUNDS`; :mod:`softmax_mi.benchmark.intervals`; ``details["extrapolated"]``, ``["half_value"]``;
        interval name + ``_curve``)."""
        result, ceiling, method = READOUTS[self.name](self.model(seed).fit(train), train, test, self.level, seed)
        if self.extrapolate is None:
            return result, ceiling, method
        half_seed = derive_seed(seed, "half")
        half_train = train.subset(stratified_split(train.y, 0.5, half_seed)[0])
        half, _, _ = READOUTS[self.name](self.model(half_seed).fit(half_train), half_train, test, self.level, seed)
        reach = 1 / (2**self.extrapolate - 1)
        value = result.value + reach * (result.value - half.value)
        se = math.hypot((1 + reach) * result.se, reach * half.se)  # the shared held-out rows' covariance ignored
        reach_low, reach_high = normal_interval(value, se, self.level)
        low = result.low if self.name in LOWER_BOUNDS else min(result.low, reach_low)
        details = {**result.details, "half_value": half.value, "extrapolated": value, "extrapolated_se": se}
        return replace(result, low=low, high=max(result.high, reach_high), details=details), ceiling, method + "_curve"

    def crossfit(self, x, y, seed: int) -> tuple[MIEstimate, float, str, float, float]:
        """k-fold cross-fitting (k = ``folds``): the estimator is fitted k times, each time on k − 1 of the
        seeded stratified folds (its model seeded per fold) and read out on the fold left out. Value: the mean of
        the k fold values weighted by fold size (every example scored once, by a model that never saw it);
        interval: value ± t_{k−1}·sd(fold values)/√k. The fold-to-fold spread holds what a single split's interval
        leaves out (each fold's model has its own initialisation, minibatch order and training rows) besides the
        held-out noise; the randomness common to all folds (the (k − 2)/(k − 1) of training rows any two folds
        share) is not in it. Read-outs that also give an in-sample value (softmax, pc_softmax: the bracket of
        :mod:`softmax_mi.benchmark.intervals`) raise the upper end to the folds' in-sample mean
        + t_{k−1}·sd(in-sample values)/√k when that is higher (``interval`` = ``crossfit_k_bracket``). Returns
        (estimate, ceiling: the folds' size-weighted mean, interval name, mean training size, mean training-label
        entropy)."""
        folds = fold_samples(x, y, folds=self.folds, seed=seed)
        fits = [self.fit_readout(train, test, derive_seed(seed, "fold", f)) for f, (train, test) in enumerate(folds)]
        weights = torch.tensor([len(test) for _, test in folds], dtype=torch.float64)
        weights /= weights.sum()
        values, value, se = _over_folds([result.value for result, _, _ in fits], weights)
        quantile = t_quantile(self.level, self.folds - 1)
        low, high = normal_interval(value, se, self.level, quantile=quantile)
        details = {"fold_values": values.tolist(), "fold_se": [result.se for result, _, _ in fits]}
        method = f"crossfit_{self.folds}"
        if all("in_sample" in result.details for result, _, _ in fits):  # the bracket, over folds
            in_values, in_sample, in_se = _over_folds([result.details["in_sample"] for result, _, _ in fits])
            high = max(high, in_sample + quantile * in_se)
            details.update(in_sample=in_sample, in_sample_se=in_se, fold_in_sample=in_values.tolist())
            method += "_bracket"
        if all("extrapolated" in result.details for result, _, _ in fits):  # the learning-curve reach, over folds
            curve, extrapolated, curve_se = _over_folds([result.details["extrapolated"] for result, _, _ in fits],
                                                        weights)
            if self.name not in LOWER_BOUNDS:
                low = min(low, extrapolated - quantile * curve_se)
            high = max(high, extrapolated + quantile * curve_se)
            details.update(extrapolated=extrapolated, extrapolated_se=curve_se, fold_extrapolated=curve.tolist())
            method += "_curve"
        steps = [result.details.get("train_steps") for result, _, _ in fits]
        if None not in steps:
            details["train_steps"] = sum(steps) / len(steps)
        ceiling = float(sum(w * fit_ceiling for w, (_, fit_ceiling, _) in zip(weights.tolist(), fits)))
        estimate = MIEstimate(value=value, low=low, high=high, se=se, n=len(y), level=self.level, details=details)
        n_train = sum(len(train) for train, _ in folds) / self.folds
        entropy = sum(train.label_entropy() for train, _ in folds) / self.folds
        return estimate, ceiling, method, n_train, entropy


def _over_folds(per_fold: Sequence[float], weights: torch.Tensor | None = None) -> tuple[torch.Tensor, float, float]:
    """k per-fold quantities → (them as a float64 tensor, their mean — ``weights``-weighted when given, plain
    otherwise —, sd/√k, the standard error of that mean over folds)."""
    values = torch.tensor(per_fold, dtype=torch.float64)
    mean = float(values.mean()) if weights is None else float((weights * values).sum())
    return values, mean, float(values.std(unbiased=True)) / math.sqrt(len(values))


ESTIMATORS: dict[str, Callable[..., HeldOutEstimator]] = {name: partial(HeldOutEstimator, name) for name in READOUTS}
"""name → factory: ``ESTIMATORS[name](settings=..., test_fraction=..., level=..., device=...)``."""


def build(name: str, **options: Any) -> HeldOutEstimator:
    """``ESTIMATORS[name](**options)`` with a clear error for an unknown name."""
    if name not in ESTIMATORS:
        raise ValueError(f"unknown benchmark estimator {name!r}; use one of {', '.join(ESTIMATORS)}")
    return ESTIMATORS[name](**options)
