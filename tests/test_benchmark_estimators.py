"""The benchmark's estimator interface (softmax_mi.benchmark.estimators) and its intervals and ceilings
(softmax_mi.benchmark.intervals): tiny data, 1–2 epochs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import integrate, stats

from softmax_mi.benchmark import intervals
from softmax_mi.benchmark.estimators import ESTIMATORS, LogLossMI, build
from softmax_mi.data.synthetic import GaussianMixtureTask
from softmax_mi.estimators.knn import ross_mi
from softmax_mi.estimators.variational import dv_bound, infonce_bound, nwj_bound
from softmax_mi.samples import LabeledSample

TINY = {"epochs": 1, "batch_size": 64, "hidden": (8,)}


def gaussian_sample(n: int, dim: int, seed: int, n_classes: int = 3) -> tuple[np.ndarray, np.ndarray]:
    task = GaussianMixtureTask(dim, (1,) * n_classes)
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_classes, n)
    return task.means[y] + rng.standard_normal((n, dim)), y


def test_every_estimator_returns_an_interval_a_ceiling_flag_and_its_timing():
    x, y = gaussian_sample(300, 2, seed=0)
    for name in ESTIMATORS:
        estimator = ESTIMATORS[name](settings={} if name == "knn" else TINY)
        result = estimator.estimate(x, y, seed=0)
        assert result.low <= result.value <= result.high, name
        assert result.has_interval and result.se > 0 and result.n == 60, name
        assert isinstance(result.details["at_ceiling"], bool), name
        expected = {"ceiling", "interval", "n_train", "label_entropy", "seconds", "cpu_seconds"}
        assert expected <= result.details.keys(), name
        assert estimator.parameters()["name"] == name
    assert build("infonce", settings=TINY).estimate(x, y, seed=0).details["ceiling"] <= math.log(3) + 1e-9


def test_same_seed_same_estimate_and_unknown_names_are_refused():
    x, y = gaussian_sample(200, 2, seed=1)
    first, second = (build("nwj", settings=TINY).estimate(x, y, seed=3) for _ in range(2))
    assert (first.value, first.low, first.high) == (second.value, second.low, second.high)
    with pytest.raises(ValueError, match="unknown benchmark estimator 'ksg'; use one of"):
        build("ksg")


def test_the_critic_influence_standard_error_matches_the_spread_over_test_sets():
    """A fixed critic (the Bayes log-likelihoods, halved), 120 test sets of 400 points in batches of 100: the mean
    standard error of each batched bound is its standard deviation across test sets, ±15 %."""
    task = GaussianMixtureTask(2, (1,) * 5)
    bounds = {"mine": dv_bound, "nwj": nwj_bound, "infonce": infonce_bound}
    values, errors = {name: [] for name in bounds}, {name: [] for name in bounds}
    for repeat in range(120):
        rng = np.random.default_rng(repeat)
        y = rng.integers(0, 5, 400)
        scores = torch.tensor(task.log_likelihood(task.means[y] + rng.standard_normal((400, 2)))) * 0.5
        labels, batches = torch.tensor(y), torch.arange(400).split(100)
        for name, bound in bounds.items():
            values[name].append(np.mean([float(bound(scores[index], labels[index])) for index in batches]))
            errors[name].append(intervals.batched_standard_error(
                [intervals.critic_influence(name, scores[index], labels[index]) for index in batches]))
    for name in bounds:
        assert np.mean(errors[name]) == pytest.approx(np.std(values[name]), rel=0.15), name


def test_knn_batch_means_and_the_ceiling_of_perfectly_separated_classes():
    y = np.repeat(np.arange(3), 100)
    x = (100.0 * y + np.random.default_rng(0).standard_normal(300))[:, None]  # every neighbourhood is pure
    result = build("knn").estimate(x, y, seed=0)
    assert result.details["at_ceiling"] and result.details["interval"] == "batch_means_10"
    se, dof = intervals.knn_standard_error(lambda a, b: ross_mi(a, b, 3)[0], *gaussian_sample(400, 2, seed=2))
    assert se > 0 and dof == 9


def test_ceiling_helpers():
    counts = torch.tensor([30, 10])
    labels = torch.tensor([0, 0, 0, 1])
    assert intervals.label_cross_entropy(labels, counts) == pytest.approx(-(3 * math.log(0.75) + math.log(0.25)) / 4)
    assert intervals.label_entropy(torch.tensor([0, 1, 2, 3])) == pytest.approx(math.log(4))
    assert intervals.at_ceiling(0.685, math.log(2)) and not intervals.at_ceiling(0.6, math.log(2))
    assert intervals.at_ceiling(4.56, math.log(100)) and not intervals.at_ceiling(0.5, math.nan)


class TwoGaussianPosterior(torch.nn.Module):
    """Exact logits of y ∈ {0, 1}, x | y ~ N(2y, 1), equal prior, times ``scale``."""

    def __init__(self, scale: float = 1.0):
        super().__init__()
        self.scale = scale

    def forward(self, x):
        return self.scale * torch.cat([-0.5 * x**2, -0.5 * (x - 2.0) ** 2], dim=1)


def two_gaussian_mi() -> float:
    """I(X;Y) by quadrature: H(Y) − E_x H(Y|x), x ~ ½N(0, 1) + ½N(2, 1)."""
    def integrand(x):
        p0, p1 = stats.norm.pdf(x), stats.norm.pdf(x, loc=2.0)
        q = p1 / (p0 + p1)
        entropy = -sum(v * math.log(v) for v in (q, 1 - q) if v > 0)
        return 0.5 * (p0 + p1) * entropy

    return math.log(2) - integrate.quad(integrand, -12, 14, limit=200)[0]


def test_logloss_with_the_bayes_posterior_recovers_the_known_mi_and_calibration_undoes_overconfidence():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 20_000)
    sample = LabeledSample.from_arrays(rng.normal(2.0 * y, 1.0)[:, None], y)
    estimator = LogLossMI()
    estimator.classifier.model = TwoGaussianPosterior(scale=3.0)  # over-confident: the calibrated T is ≈ 3
    estimator.calibrate(sample.subset(torch.arange(5000)))
    assert estimator.temperature == pytest.approx(3.0, rel=0.1)
    estimator.temperature = 3.0  # exactly the Bayes posterior
    result = estimator.estimate(sample.subset(torch.arange(5000, 20_000)))
    assert abs(result.value - two_gaussian_mi()) < 3 * result.se  # 0.337 nats


def test_stratified_folds_deal_every_class_evenly_and_are_seeded():
    from softmax_mi.estimators.held_out import stratified_folds

    labels = torch.tensor([0] * 53 + [1] * 11 + [2] * 7)
    fold = stratified_folds(labels, 5, seed=3)
    sizes = torch.bincount(fold, minlength=5)
    assert int(sizes.max() - sizes.min()) <= 1 and int(sizes.sum()) == 71
    for k, n_k in enumerate((53, 11, 7)):
        per_fold = torch.bincount(fold[labels == k], minlength=5)
        assert int(per_fold.max() - per_fold.min()) <= 1 and int(per_fold.sum()) == n_k
    assert torch.equal(stratified_folds(labels, 5, seed=3), fold)
    assert not torch.equal(stratified_folds(labels, 5, seed=4), fold)
    with pytest.raises(ValueError, match="folds must be an integer ≥ 2"):
        stratified_folds(labels, 1, seed=0)


def test_fold_samples_hold_every_example_out_once_and_keep_every_class_in_training():
    from softmax_mi.estimators.held_out import fold_samples

    x, y = gaussian_sample(40, 2, seed=5)
    y[:2] = 3  # a class of two examples: each training part must still hold one
    folds = fold_samples(x, y, folds=4, seed=1)
    held = torch.cat([test.x for _, test in folds])
    assert len(folds) == 4 and len(held) == 40
    assert torch.equal(torch.sort(held[:, 0]).values, torch.sort(torch.as_tensor(x[:, 0]).float()).values)
    for train, test in folds:
        assert len(train) + len(test) == 40 and bool((train.class_counts() > 0).all())
    with pytest.raises(ValueError, match="cannot make 30 folds"):
        fold_samples(x, y, folds=30, seed=0)
    with pytest.raises(ValueError, match="folds must be an integer ≥ 2"):
        fold_samples(x, y, folds=1, seed=0)


def test_crossfit_value_is_the_folds_weighted_mean_and_its_interval_their_t_spread():
    from softmax_mi.estimators.held_out import stratified_folds

    x, y = gaussian_sample(303, 2, seed=6)
    estimator = build("pc_softmax", settings=TINY, folds=3)
    result = estimator.estimate(x, y, seed=2)
    values = np.array(result.details["fold_values"])
    sizes = np.bincount(stratified_folds(torch.as_tensor(y), 3, 2).numpy())
    assert result.value == pytest.approx(float(np.average(values, weights=sizes)))
    assert result.se == pytest.approx(float(np.std(values, ddof=1) / math.sqrt(3)))
    q = stats.t.ppf(0.975, 2)
    in_sample = np.array(result.details["fold_in_sample"])
    upper = max(result.value + q * result.se, in_sample.mean() + q * np.std(in_sample, ddof=1) / math.sqrt(3))
    assert (result.low, result.high) == pytest.approx((result.value - q * result.se, upper))
    assert result.details["in_sample"] == pytest.approx(in_sample.mean())
    assert result.n == 303 and result.details["interval"] == "crossfit_3_bracket"
    assert result.details["n_train"] == pytest.approx(202.0) and estimator.parameters()["folds"] == 3
    # each fold is a fresh fit seeded per fold: the same call is reproducible, the folds differ from each other
    assert estimator.estimate(x, y, seed=2).value == result.value and len(set(values.round(12))) == 3
    with pytest.raises(ValueError, match="folds must be an integer ≥ 1"):
        build("pc_softmax", folds=0)


def test_the_learning_curve_reach_is_a_half_size_twin_read_out_on_the_same_rows():
    """extrapolate = r: a second model, seeded apart, fitted on a stratified half of the training rows and read out
    on the same held-out rows; value + (value − half)/(2^r − 1) with its ± z·se joins the interval."""
    from softmax_mi.estimators.held_out import held_out_estimate, split_sample, stratified_split
    from softmax_mi.runtime import derive_seed

    x, y = gaussian_sample(400, 2, seed=8)
    estimator = build("logloss", settings=TINY, extrapolate=0.5)
    result = estimator.estimate(x, y, seed=3)
    train, test = split_sample(x, y, test_fraction=0.2, seed=3)
    half_seed = derive_seed(3, "half")
    half_train = train.subset(stratified_split(train.y, 0.5, half_seed)[0])
    half = estimator.model(half_seed).fit(half_train).estimate(test)
    plain = build("logloss", settings=TINY).estimate(x, y, seed=3)
    reach = 1 / (math.sqrt(2) - 1)
    extrapolated = plain.value + reach * (plain.value - half.value)
    se = math.hypot((1 + reach) * plain.se, reach * half.se)
    assert result.value == pytest.approx(plain.value) and result.se == pytest.approx(plain.se)  # the estimate is kept
    assert result.details["half_value"] == pytest.approx(half.value)
    assert result.details["extrapolated"] == pytest.approx(extrapolated)
    assert (result.low, result.high) == pytest.approx((min(plain.low, extrapolated - 1.959964 * se),
                                                      max(plain.high, extrapolated + 1.959964 * se)))
    assert result.details["interval"] == "clt_terms_curve" and estimator.parameters()["extrapolate"] == 0.5
    assert len(half_train) == pytest.approx(len(train) / 2, abs=3) and bool((half_train.class_counts() > 0).all())
    with pytest.raises(ValueError, match="extrapolate must be None"):
        build("pc_softmax", extrapolate=0)


def test_crossfit_reaches_the_folds_mean_extrapolation_with_their_t_spread():
    """Over folds: the folds' extrapolations, their mean ± t_{k−1}·sd/√k; PC-softmax's lower end stays."""
    x, y = gaussian_sample(303, 2, seed=6)
    bracketed = build("pc_softmax", settings=TINY, folds=3).estimate(x, y, seed=2)
    result = build("pc_softmax", settings=TINY, folds=3, extrapolate=1.0).estimate(x, y, seed=2)
    curve = np.array(result.details["fold_extrapolated"])
    q = stats.t.ppf(0.975, 2)
    reach_se = np.std(curve, ddof=1) / math.sqrt(3)
    extrapolated = result.details["extrapolated"]
    assert result.value == pytest.approx(bracketed.value) and result.details["interval"] == "crossfit_3_bracket_curve"
    assert extrapolated == pytest.approx(float(np.average(curve, weights=[101, 101, 101])))
    # a lower bound in expectation: the reach raises the upper end only
    assert (result.low, result.high) == pytest.approx((bracketed.low, max(bracketed.high, extrapolated + q * reach_se)))


def test_the_bracket_reaches_the_in_sample_read_out_of_a_model_that_overfits():
    """softmax / pc_softmax: the same read-out on the rows the model was fitted on is optimistic where the model
    overfits (200 rows of a weak 30-d signal, 64 hidden units, 30 epochs without early stopping): the interval's
    upper end reaches its upper limit; logloss (its terms do not read the labels) and the critics have no bracket."""
    from softmax_mi.estimators.held_out import held_out_estimate, split_sample

    rng = np.random.default_rng(7)
    y = rng.integers(0, 3, 200)
    x = 0.3 * np.eye(3)[y] @ rng.standard_normal((3, 30)) + rng.standard_normal((200, 30))  # weak signal, 30-d
    overfit = {"epochs": 30, "batch_size": 32, "hidden": (64,), "select": "last", "min_steps": 0, "patience": None}
    estimator = build("pc_softmax", settings=overfit)
    result = estimator.estimate(x, y, seed=0)
    train, _ = split_sample(x, y, test_fraction=0.2, seed=0)
    fitted = held_out_estimate(estimator.model(0).fit(train), train, train)
    assert result.details["interval"] == "clt_terms_bracket"
    assert result.details["in_sample"] == pytest.approx(fitted.value, abs=1e-6)
    assert result.details["in_sample"] > result.value + 0.1  # overfitting: resubstitution is optimistic
    assert result.high == pytest.approx(fitted.high, abs=1e-6) and result.value - result.low < result.high - result.value
    for name in ("logloss", "nwj"):
        assert "in_sample" not in build(name, settings=TINY).estimate(x, y, seed=0).details, name


def test_softmax_lower_end_steps_down_by_the_prior_gap_its_target_sits_above_the_mutual_information():
    """softmax's read-out is a lower bound in expectation on log K − H(Y|X) = I(X;Y) + (log K − H(Y)): on
    imbalanced labels its lower end steps down by log K − H(training labels), one split or cross-fitted; the point
    estimate and the upper end stay; PC-softmax (no such gap) is untouched; balanced labels give a zero gap."""
    from softmax_mi.benchmark.estimators import prior_gap
    from softmax_mi.estimators.held_out import held_out_estimate, split_sample

    rng = np.random.default_rng(4)
    y = rng.choice(3, size=600, p=[0.7, 0.2, 0.1])
    x = GaussianMixtureTask(2, (1, 1, 1)).means[y] + rng.standard_normal((600, 2))
    train, test = split_sample(x, y, test_fraction=0.2, seed=1)
    gap = math.log(3) - train.label_entropy()
    assert gap > 0.15 and prior_gap(math.log(3), train.label_entropy()) == pytest.approx(gap)
    result = build("softmax", settings=TINY).estimate(x, y, seed=1)
    plain = held_out_estimate(build("softmax", settings=TINY).model(1).fit(train), train, test)
    assert result.value == pytest.approx(plain.value) and result.low == pytest.approx(plain.low - gap)
    assert result.high >= plain.high and result.details["prior_gap"] == pytest.approx(gap)
    assert result.details["interval"] == "clt_terms_bracket_prior"
    crossfitted = build("softmax", settings=TINY, folds=3).estimate(x, y, seed=1)
    q = stats.t.ppf(0.975, 2)
    assert crossfitted.low == pytest.approx(crossfitted.value - q * crossfitted.se - crossfitted.details["prior_gap"])
    assert crossfitted.details["interval"] == "crossfit_3_bracket_prior" and crossfitted.details["prior_gap"] > 0.15
    pc = build("pc_softmax", settings=TINY).estimate(x, y, seed=1)
    assert "prior_gap" not in pc.details and pc.details["interval"] == "clt_terms_bracket"
    balanced = build("softmax", settings=TINY).estimate(*gaussian_sample(300, 2, seed=0), seed=0)
    assert balanced.details["prior_gap"] < 0.01
