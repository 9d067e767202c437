"""The benchmark's task families: every truth against an independent computation, bijections keep the truth,
anchors are exact, samplers draw what they say (shapes, dtypes, class shares, determinism)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from softmax_mi.benchmark.tasks import (
    MAPS,
    GaoFamily,
    GaussianFamily,
    MnistFamily,
    StudentTFamily,
    Task,
    apply_map,
    label_entropy_bound,
    label_prior,
    make_task,
    mnist_pool,
    monte_carlo_mi,
    pointwise_mi,
    quadrature_mi,
    stratified_labels,
    symmetric_channel_mi,
)
from softmax_mi.data.synthetic import entropy


def agree(a: float, b: float, se: float, floor: float = 1e-6) -> bool:
    """Within 4 combined standard errors (plus a floor for exact values)."""
    return abs(a - b) <= 4 * se + floor


@pytest.mark.parametrize("params", [
    {"classes": 5, "d": 3, "separation": 2.0, "prior": "exponential", "rho": 10},
    {"classes": 10, "d": 1, "separation": 1.0, "prior": "step", "rho": 100},
    {"classes": 2, "d": 20, "separation": 4.0},
])
def test_gaussian_quadrature_matches_part1_monte_carlo(params):
    family = GaussianFamily(**params)
    quadrature = family.truth().value
    mc, se = family.part1_task().true_mi(100_000, np.random.default_rng(1))  # Part 1's code, full d dimensions
    assert agree(quadrature, mc, se), (quadrature, mc, se)


def test_gaussian_truth_does_not_depend_on_dimension():
    values = [GaussianFamily(classes=10, d=d, separation=2.0).truth().value for d in (1, 5, 100)]
    assert max(values) - min(values) < 1e-12


def test_gaussian_regimes_span_low_to_saturation():
    h = math.log(10)
    low, mid, high = (GaussianFamily(classes=10, separation=s).truth().value / h for s in (0.2, 1.5, 6.0))
    assert low < 0.1 < 0.3 < mid < 0.7 < 0.95 < high <= 1


@pytest.mark.parametrize("nu", [1.0, 5.0])
def test_student_t_monte_carlo_matches_quadrature_in_one_dimension(nu):
    family = StudentTFamily(classes=4, d=1, separation=2.0, nu=nu)
    mc = family.truth(np.random.default_rng(3))
    assert mc.se <= 0.005
    offsets = family.offsets
    grid = np.arange(-3000.0, 3000.0, 0.01)
    exact = quadrature_mi(lambda t: family.log_likelihood(t[:, None]), family.prior_vector, grid)
    assert agree(mc.value, exact, mc.se), (mc, exact, offsets)


def test_student_t_two_monte_carlo_runs_agree_in_higher_dimension():
    family = StudentTFamily(classes=5, d=4, separation=2.0, nu=2.0, prior="exponential", rho=10)
    first, second = family.truth(np.random.default_rng(1)), family.truth(np.random.default_rng(2))
    assert first.se <= 0.005 and second.se <= 0.005
    assert agree(first.value, second.value, math.hypot(first.se, second.se))


@pytest.mark.parametrize("name", MAPS)
def test_bijections_keep_the_truth_and_map_the_same_base_sample(name):
    base = {"family": "gaussian", "classes": 5, "d": 3, "separation": 2.0}
    mapped = Task("mapped", "bijection", {"map": name, "base": base, "map_seed": 7})
    plain = Task("plain", "gaussian", {k: v for k, v in base.items() if k != "family"})
    assert mapped.truth() == plain.truth().__class__(plain.truth().value, 0.0, method=mapped.truth().method)
    x_base, y_base = plain.sample(500, seed=4)
    x_map, y_map = mapped.sample(500, seed=4)
    assert np.array_equal(y_base, y_map)
    assert np.allclose(x_map, apply_map(name, x_base.astype(np.float64), 7), atol=1e-6)


def test_maps_are_invertible():
    x = np.random.default_rng(0).standard_normal((2000, 3)) * 3
    assert np.allclose(np.sinh(apply_map("asinh", x)), x)
    halfcube = apply_map("halfcube", x)
    assert np.allclose(np.sign(halfcube) * np.abs(halfcube) ** (2 / 3), x)
    warped = apply_map("rotate_warp", x, seed=1)
    rotated = apply_map("rotate_warp", np.eye(3), seed=1)  # w(Q e_i): Q is orthogonal, w strictly increasing
    assert np.linalg.matrix_rank(rotated) == 3
    grid = np.linspace(-20, 20, 10_001)
    assert np.all(np.diff(np.tanh(grid) + 0.1 * grid) > 0)
    assert len(np.unique(warped.round(9), axis=0)) == len(x)


def test_anchors_are_exact():
    independent = Task("zero", "independent", {"classes": 7, "d": 4, "prior": "step", "rho": 10})
    assert independent.truth().value == 0.0
    saturated = Task("full", "saturated", {"classes": 7, "d": 3, "prior": "exponential", "rho": 100})
    assert saturated.truth().value == pytest.approx(entropy(saturated.prior), abs=1e-12)
    x, y = saturated.sample(3000, seed=0)
    assert np.array_equal(np.floor(x[:, 0]).astype(np.int64), y)  # y is a function of x


def test_gao_closed_form_matches_monte_carlo():
    family = GaoFamily(classes=5)
    mc = monte_carlo_mi(family.iid_draw, family.part1_task.pointwise_mi, np.random.default_rng(0), se_target=0.002)
    assert agree(family.truth().value, mc.value, mc.se)


def test_symmetric_channel_matches_the_joint_distribution():
    prior = label_prior(10, "exponential", 10)
    for epsilon in (0.0, 0.1, 0.3, 0.5):
        channel = np.full((10, 10), epsilon / 9) + np.eye(10) * (1 - epsilon - epsilon / 9)
        joint = prior[:, None] * channel
        outer = prior[:, None] * joint.sum(axis=0)[None, :]
        direct = float(np.sum(joint[joint > 0] * np.log(joint[joint > 0] / outer[joint > 0])))
        h_noisy, mi = symmetric_channel_mi(prior, epsilon)
        assert mi == pytest.approx(direct, abs=1e-12)
        assert h_noisy == pytest.approx(entropy(joint.sum(axis=0)), abs=1e-12)


@pytest.fixture(scope="module")
def fake_mnist(tmp_path_factory):
    """A tiny stand-in for the classification part's arrays.npz: 400 + 200 images, the label written in the ink."""
    from softmax_mi.data.mnist import ImageDataset

    rng = np.random.default_rng(0)

    def images(labels):
        x = rng.integers(0, 40, size=(len(labels), 28, 28), dtype=np.uint8)
        x[np.arange(len(labels)), 2 * labels + 2, 5] = 255
        return x

    y_train, y_test = np.arange(400) % 10, np.arange(200) % 10
    path = tmp_path_factory.mktemp("mnist") / "arrays.npz"
    ImageDataset(images(y_train), y_train.astype(np.int64), images(y_test), y_test.astype(np.int64)).save(path)
    return str(path)


def test_mnist_sampler_flips_labels_at_rate_epsilon(fake_mnist):
    features, labels, n_train = mnist_pool(fake_mnist, 2)
    assert features.shape == (600, 196) and n_train == 400 and 0 <= features.min() and features.max() <= 1
    family = MnistFamily(epsilon=0.3, source=fake_mnist)
    y = np.repeat(np.arange(10), 5000)
    flipped = family.flip(y, np.random.default_rng(0)) != y
    assert flipped.mean() == pytest.approx(0.3, abs=0.01)
    x, noisy = Task("m", "mnist", {"epsilon": 0.0, "source": fake_mnist}).sample(300, seed=1)
    assert x.shape == (300, 196) and x.dtype == np.float32 and noisy.dtype == np.int64
    rows = [np.flatnonzero((features == row).all(axis=1))[0] for row in x[:20]]
    assert np.array_equal(labels[rows], noisy[:20])  # ε = 0: the images' own labels


def test_mnist_truth_is_an_interval_from_a_held_out_bound(fake_mnist):
    bound, cross_entropy, se = label_entropy_bound(fake_mnist, 2, 1, 0)
    assert bound == pytest.approx(cross_entropy + 1.96 * se) and cross_entropy > 0
    truth = Task("m", "mnist", {"epsilon": 0.1, "source": fake_mnist, "bound_epochs": 1}).truth()
    assert truth.high == truth.value == pytest.approx(symmetric_channel_mi(np.full(10, 0.1), 0.1)[1])
    assert truth.low == pytest.approx(max(0.0, truth.high - bound))


def test_samplers_draw_the_prior_shares_deterministically():
    prior = label_prior(10, "exponential", 100)
    assert prior[0] / prior[-1] == pytest.approx(100, rel=1e-4)
    assert np.allclose(label_prior(4, "step", 10), np.array([10, 10, 1, 1]) / 22)
    counts = np.bincount(stratified_labels(prior, 1001, np.random.default_rng(0)), minlength=10)
    assert counts.sum() == 1001 and np.all(np.abs(counts - 1001 * prior) < 1)
    task = Task("t", "student_t", {"classes": 5, "d": 2, "nu": 1.0})
    first, again = task.sample(100, seed=3), task.sample(100, seed=3)
    assert np.array_equal(first[0], again[0]) and not np.array_equal(first[0], task.sample(100, seed=4)[0])


def test_bad_task_specs_name_the_problem():
    with pytest.raises(ValueError, match="unknown task family 'gausian'"):
        make_task({"name": "a", "family": "gausian"})
    with pytest.raises(ValueError, match="task 'b'.*no parameter 'sep'"):
        make_task({"name": "b", "family": "gaussian", "params": {"sep": 2}})
    with pytest.raises(ValueError, match="prior must be one of"):
        make_task({"name": "c", "family": "independent", "params": {"prior": "zipf"}})


def test_pointwise_mi_is_zero_for_identical_classes():
    log_lik = np.zeros((4, 3))
    assert np.allclose(pointwise_mi(log_lik, np.full(3, 1 / 3), np.array([0, 1, 2, 0])), 0)
