"""softmax_mi.mi.mi_from_logits: the same value as the repository's read-outs, a hand-checked interval, clear input
errors, and the interval's coverage of the true I(X;Y) on the synthetic tasks with Bayes-optimal logits.

With logits f_k(x) = log p(x|k) (the task's known class-conditionals), log PC_y(x) with the true prior is exactly the
pointwise MI log p(x|y) − log p(x), so on i.i.d. joint draws the per-example terms have mean I(X;Y): the CLT interval
should cover the truth in about 95 % of seeded test sets (asserted: 90–98 % over 200 sets of 1,000 points).

Measured (seed 13 below, 1,000 points): 94.0 % (Gaussian d = 1 imbalanced, PC-softmax), 94.5 % (Gaussian d = 2
balanced, softmax), 94.5 % (uniform task); at 300 points one seed of ten fell to 88 %, hence 1,000. Pooled over seeds 0–9 (2,000 sets each), 300 points: 93.45 % and 93.55 %; 1,000 points: 95.25 %
and 95.2 %: the pointwise MI is left-skewed, so at a few hundred points the CLT interval is slightly short."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pytest
import torch

from softmax_mi.classification_metrics import classification_metrics
from softmax_mi.data.synthetic import GaussianMixtureTask, make_task
from softmax_mi.estimators.classifier import PCSoftmaxMI, SoftmaxMI
from softmax_mi.losses import log_prior_from_counts
from softmax_mi.mi import MIEstimate, mi_from_logits

Z95 = 1.959963984540054
IMBALANCED = (5000, 10000, 15000, 20000, 25000)
BALANCED = (10000,) * 5
N_SETS, N_TEST = 200, 1000


def random_logits(seed: int = 0, n: int = 500, k: int = 5):
    generator = torch.Generator().manual_seed(seed)
    return 3 * torch.randn(n, k, generator=generator), torch.randint(0, k, (n,), generator=generator)


# ------------------------------------------------------------------------------------ same value as the pipeline


def test_value_equals_the_classification_tables_read_outs():
    logits, labels = random_logits()
    counts = torch.tensor(IMBALANCED)
    metrics, _ = classification_metrics(logits, labels, log_prior_from_counts(counts), counts)
    assert mi_from_logits(logits, labels, class_counts=counts).value == pytest.approx(metrics["mi_estimate"],
                                                                                      rel=1e-12)
    assert mi_from_logits(logits, labels, readout="softmax").value == pytest.approx(metrics["mi_softmax_estimate"],
                                                                                     rel=1e-12)


def test_value_equals_the_estimators_per_example_terms():
    logits, labels = random_logits(1)
    pc = PCSoftmaxMI()
    pc.log_prior = log_prior_from_counts(torch.tensor(IMBALANCED))
    expected_pc = float(pc.pointwise_mi(logits, labels).double().mean())
    expected_sm = float(SoftmaxMI().pointwise_mi(logits, labels).double().mean())
    assert mi_from_logits(logits.numpy(), labels.numpy(), class_counts=np.array(IMBALANCED)).value == \
        pytest.approx(expected_pc, rel=1e-12)
    # SoftmaxMI adds log K to float32 terms (the estimate itself is a float32 mean): equal to float32 precision
    assert mi_from_logits(logits, labels, readout="softmax").value == pytest.approx(expected_sm, rel=1e-6)
    # the prior given directly is the same as the counts it comes from
    prior = np.array(IMBALANCED) / sum(IMBALANCED)
    assert mi_from_logits(logits.double(), labels, prior=prior).value == pytest.approx(expected_pc, rel=1e-6)


# ------------------------------------------------------------------------------------ the interval, by hand


def test_interval_equals_a_hand_computation():
    log3 = math.log(3)
    logits = np.array([[0.0, 0.0], [log3, 0.0], [0.0, log3], [0.0, 0.0], [log3, 0.0]])
    labels = np.array([0, 0, 0, 1, 1])
    # softmax: log softmax_y + log 2 -> 0, log(3/4·2), log(1/4·2), 0, log(1/4·2)
    terms = [0.0, math.log(1.5), math.log(0.5), 0.0, math.log(0.5)]
    # PC-softmax with π = (1/4, 3/4): f_y − log(Σ π_k e^{f_k}); denominators 1, 3/2, 5/2, 1, 3/2
    pc_terms = [0.0, log3 - math.log(1.5), -math.log(2.5), 0.0, -math.log(1.5)]
    for kwargs, hand in (({"readout": "softmax"}, terms), ({"class_counts": [1, 3]}, pc_terms)):
        mean, se = statistics.mean(hand), statistics.stdev(hand) / math.sqrt(len(hand))
        got = mi_from_logits(logits, labels, **kwargs)
        assert (got.n, got.level, got.unit) == (5, 0.95, "nats")
        assert got.value == pytest.approx(mean, abs=1e-15)
        assert got.se == pytest.approx(se, rel=1e-12)
        assert (got.low, got.high) == pytest.approx((mean - Z95 * se, mean + Z95 * se), rel=1e-12)
    wider = mi_from_logits(logits, labels, readout="softmax", level=0.99)
    assert wider.high - wider.value == pytest.approx(2.5758293035489 * wider.se, rel=1e-12)


def test_bits_and_text():
    estimate = MIEstimate(value=0.8123, low=0.7941, high=0.8302, se=0.0093, n=2000)
    assert str(estimate) == "0.812 nats [0.794, 0.830] (95 % CI, n=2000)"
    bits = estimate.to_bits()
    assert (bits.value, bits.low, bits.high, bits.se) == pytest.approx(
        (0.8123 / math.log(2), 0.7941 / math.log(2), 0.8302 / math.log(2), 0.0093 / math.log(2)))
    assert (bits.unit, bits.n, bits.level, bits.to_bits()) == ("bits", 2000, 0.95, bits)
    assert str(bits).startswith("1.172 bits [1.146, 1.198] (95 % CI")


# ------------------------------------------------------------------------------------ input errors


@pytest.mark.parametrize("call, message", [
    (lambda l, y: mi_from_logits(l[0], y, class_counts=[1] * 5), "2-D"),
    (lambda l, y: mi_from_logits(l, y[:-1], class_counts=[1] * 5), "one entry per row"),
    (lambda l, y: mi_from_logits(l, y + 5, class_counts=[1] * 5), r"labels must lie in \[0, 4\]"),
    (lambda l, y: mi_from_logits(l, y.float(), class_counts=[1] * 5), "integer class indices"),
    (lambda l, y: mi_from_logits(torch.where(y[:, None] == 0, math.nan, l), y, class_counts=[1] * 5), "non-finite"),
    (lambda l, y: mi_from_logits(l, y, class_counts=[1] * 4), "class_counts must be 1-D with one entry per class"),
    (lambda l, y: mi_from_logits(l, y, class_counts=[1, 0, 1, 1, 1]), r"classes \[1\]"),
    (lambda l, y: mi_from_logits(l, y), "pass class_counts="),
    (lambda l, y: mi_from_logits(l, y, class_counts=[1] * 5, prior=[0.2] * 5), "not both"),
    (lambda l, y: mi_from_logits(l, y, prior=[0.3] * 5), "prior must sum to 1"),
    (lambda l, y: mi_from_logits(l, y, readout="softmax", class_counts=[1] * 5), "uses no prior"),
    (lambda l, y: mi_from_logits(l, y, readout="log_k"), "unknown readout"),
    (lambda l, y: mi_from_logits(l, y, class_counts=[1] * 5, level=95), r"level must be a number in \(0, 1\)"),
    (lambda l, y: mi_from_logits(l[:1], y[:1], class_counts=[1] * 5), "at least 2"),
])
def test_bad_inputs_name_the_argument(call, message):
    logits, labels = random_logits(2, n=20)
    with pytest.raises((ValueError, TypeError), match=message):
        call(logits, labels)


# ------------------------------------------------------------------------------------ coverage of the truth


def gaussian_truth(task: GaussianMixtureTask) -> float:
    """I(X;Y) by quadrature: the means lie on the diagonal, so the task is the 1-D one with spacing u·√d."""
    line = GaussianMixtureTask(dim=1, class_counts=task.class_counts, mean_unit=task.mean_unit * math.sqrt(task.dim))
    x = np.linspace(line.means.min() - 12, line.means.max() + 12, 200_001)[:, None]
    log_lik = line.log_likelihood(x)
    pmi = np.stack([line.pointwise_mi(x, np.full(len(x), k)) for k in range(line.n_classes)], axis=1)
    integrand = (np.exp(log_lik) * pmi) @ line.prior
    return float(np.trapezoid(integrand, x[:, 0]))


def coverage(task, truth: float, readout: str, seed: int, bayes_logits) -> float:
    """Share of N_SETS seeded i.i.d. test sets of N_TEST joint draws whose interval covers ``truth``."""
    rng = np.random.default_rng(seed)
    kwargs = {"class_counts": task.class_counts} if readout == "pc_softmax" else {}
    covered = 0
    for _ in range(N_SETS):
        x, y = task.sample(tuple(rng.multinomial(N_TEST, task.prior)), rng)  # multinomial counts: i.i.d. y ~ π
        estimate = mi_from_logits(bayes_logits(x), y, readout=readout, **kwargs)
        covered += estimate.low <= truth <= estimate.high
    return covered / N_SETS


def test_gaussian_truth_matches_the_monte_carlo_truth():
    task = make_task({"kind": "gaussian", "dim": 1, "class_counts": IMBALANCED})
    value, se = task.true_mi(200_000, np.random.default_rng(0))
    assert gaussian_truth(task) == pytest.approx(value, abs=4 * se)


@pytest.mark.parametrize("spec, readout", [
    ({"kind": "gaussian", "dim": 1, "class_counts": IMBALANCED}, "pc_softmax"),
    ({"kind": "gaussian", "dim": 2, "class_counts": BALANCED}, "softmax"),
    ({"kind": "uniform", "class_counts": BALANCED}, "pc_softmax"),
])
def test_interval_covers_the_true_mi_with_bayes_optimal_logits(spec, readout):
    task = make_task(spec)
    if spec["kind"] == "gaussian":
        truth, bayes_logits = gaussian_truth(task), task.log_likelihood
    else:  # log p(x|k) = log(1/2) inside [k, k + 2]; a finite stand-in for −inf outside (exp underflows to 0)
        truth = task.true_mi()[0]
        classes = np.arange(task.n_classes)

        def bayes_logits(x):
            x = np.asarray(x, dtype=np.float64).reshape(-1, 1)
            return np.where((x >= classes) & (x <= classes + 2), math.log(0.5), -1e4)

    rate = coverage(task, truth, readout, seed=13, bayes_logits=bayes_logits)
    print(f"coverage {spec['kind']} {readout}: {rate:.3f}")
    assert 0.90 <= rate <= 0.98, f"95 % interval covered the true MI in {rate:.1%} of {N_SETS} test sets"


def test_top_level_export_is_lazy_and_torch_free():
    import subprocess
    import sys

    code = ("import sys, softmax_mi; light = 'torch' not in sys.modules; "
            "from softmax_mi import MIEstimate, mi_from_logits; import softmax_mi.mi as m; "
            "print(light, mi_from_logits is m.mi_from_logits, MIEstimate is m.MIEstimate)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["True", "True", "True"]


# ------------------------------------------------------------------------------------ one result type, one term


def test_one_mi_estimate_class_for_every_estimator():
    import softmax_mi
    import softmax_mi.estimators as estimators

    assert estimators.MIEstimate is softmax_mi.MIEstimate is MIEstimate
    plain = MIEstimate(value=np.float32(0.5), details={"k": 3})
    assert (type(plain.value), plain.has_interval, str(plain)) == (float, False, "0.500 nats (no interval)")
    assert plain.as_record()["low"] is None
    with pytest.raises(FloatingPointError, match="diverged"):
        MIEstimate(value=math.nan)


def test_the_read_outs_share_one_per_example_term_bit_for_bit():
    """The estimators and the classification tables compute through log_class_probability: the same floats as the
    formulas they used before (float32 and float64 logits)."""
    from softmax_mi.losses import log_pc_softmax
    from softmax_mi.mi import log_class_probability

    for dtype in (torch.float32, torch.float64):
        logits, labels = random_logits(3)
        logits = logits.to(dtype)
        log_prior = log_prior_from_counts(torch.tensor(IMBALANCED))
        pc = PCSoftmaxMI()
        pc.log_prior = log_prior
        old_pc = log_pc_softmax(logits, log_prior).gather(1, labels[:, None]).squeeze(1)
        old_sm = torch.log_softmax(logits, dim=1).gather(1, labels[:, None]).squeeze(1)
        assert torch.equal(log_class_probability(logits, labels, log_prior), old_pc)
        assert torch.equal(pc.pointwise_mi(logits, labels), old_pc)
        assert torch.equal(SoftmaxMI().pointwise_mi(logits, labels), old_sm + math.log(5))
        metrics, _ = classification_metrics(logits, labels, log_prior, torch.tensor(IMBALANCED))
        assert metrics["mi_estimate"] == float(old_pc[:, None].double().mean())
        assert metrics["mi_softmax_estimate"] == float(old_sm[:, None].double().mean() + math.log(5))


def test_one_class_count_check_for_losses_modules_and_mi():
    from softmax_mi.loss_modules import PCSoftmaxLoss

    message = r"class_counts must be positive and finite; classes \[1\] have \[0.0\] \(a class absent"
    for call in (lambda: log_prior_from_counts(torch.tensor([3, 0, 2])), lambda: PCSoftmaxLoss([3, 0, 2]),
                 lambda: mi_from_logits(*random_logits(n=10, k=3), class_counts=[3, 0, 2])):
        with pytest.raises(ValueError, match=message):
            call()


# ------------------------------------------------------------------------------------ from features


def two_gaussians(n: int = 600, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    return rng.normal(2.0 * y, 1.0)[:, None].astype(np.float32), y


def test_stratified_split_is_seeded_disjoint_and_keeps_every_class_in_training():
    from softmax_mi.estimators.held_out import stratified_split

    labels = torch.tensor([0] * 50 + [1] * 7 + [2] * 2)
    train, test = stratified_split(labels, 0.2, seed=4)
    assert torch.bincount(labels[test], minlength=3).tolist() == [10, 1, 0]  # round(0.4) = 0; never the last one
    assert sorted(torch.cat([train, test]).tolist()) == list(range(59))
    again = stratified_split(labels, 0.2, seed=4)
    assert torch.equal(again[1], test) and not torch.equal(stratified_split(labels, 0.2, seed=5)[1], test)


def test_mi_from_features_is_the_estimators_number_with_an_interval():
    from softmax_mi.estimators import LabeledSample, build_estimator
    from softmax_mi.estimators.held_out import mi_from_features, stratified_split

    x, y = two_gaussians()
    settings = {"epochs": 4, "hidden": [16], "batch_size": 100, "min_steps": 0, "patience": None}  # fixed, short
    result = mi_from_features(x, y, estimator="pc_softmax", test_fraction=0.25, seed=2, settings=settings)
    train_index, test_index = stratified_split(torch.as_tensor(y), 0.25, 2)
    train = LabeledSample.from_arrays(x[train_index], y[train_index], 2)
    test = LabeledSample.from_arrays(x[test_index], y[test_index], 2)
    direct = build_estimator("pc_softmax", settings=settings, seed=2).fit(train).estimate(test)
    assert result.value == pytest.approx(direct.value, rel=1e-6)
    assert result.has_interval and result.n == len(test) == 150 and result.details["n_train"] == 450
    assert result.low < result.value < result.high
    assert mi_from_features(x, y, test_fraction=0.25, seed=2, settings=settings) == result  # seeded
    knn = mi_from_features(x, y, estimator="knn", seed=2)
    assert not knn.has_interval and knn.n == 120


@pytest.mark.parametrize("kwargs, message", [
    ({"estimator": "mutual"}, "unknown estimator 'mutual'; use one of softmax, pc_softmax"),
    ({"test_fraction": 1.0}, r"test_fraction must be a number in \(0, 1\)"),
    ({"labels": np.r_[np.zeros(599, int), 2]}, r"labels: classes \[1, 2\] have fewer than 2 examples"),
    ({"features": np.full((600, 1), math.nan)}, "features has non-finite entries"),
    ({"labels": np.zeros(5, int)}, r"one entry per row of logits \(600\)"),
])
def test_mi_from_features_refuses_bad_inputs(kwargs, message):
    from softmax_mi.estimators.held_out import mi_from_features

    x, y = two_gaussians()
    arguments = {"features": x, "labels": y, **kwargs}
    with pytest.raises((ValueError, TypeError), match=message):
        mi_from_features(arguments.pop("features"), arguments.pop("labels"), **arguments)
