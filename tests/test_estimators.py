"""Known-answer tests for every MI estimator: zero for independent data, H(Y) for separable classes, the Monte-Carlo
truth on the paper's Gaussian task, and the documented biases (softmax under imbalance, InfoNCE's log B cap).

Samples are small and training short, so the whole file runs in well under a minute on two cores; the tolerances
(0.05–0.1 nats) are a few standard errors of the held-out mean at these sizes, not tuned to pass by luck."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from softmax_mi.data.synthetic import GaussianMixtureTask, entropy
from softmax_mi.estimators import ESTIMATORS, NEURAL, LabeledSample, build_estimator
from softmax_mi.estimators.knn import ross_mi
from softmax_mi.estimators.variational import MINE, dv_bound, infonce_bound, nwj_bound

FAST_TRAINING = {"epochs": 15, "batch_size": 250, "lr": 3e-3, "min_steps": 0, "patience": None}  # fixed
VARIATIONAL = ["mine", "nwj", "infonce"]
K = 5


@pytest.fixture(autouse=True, scope="module")
def single_thread():
    """One intra-op thread: these models are tiny, and tests may share the machine with others."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def quiet_progress(monkeypatch):
    monkeypatch.setenv("SOFTMAX_MI_QUIET", "1")


def estimator(name: str, **training_overrides):
    """``name`` through the registry; neural ones get FAST_TRAINING (+ overrides), kNN ones their defaults."""
    settings = {**FAST_TRAINING, **training_overrides} if name in NEURAL else {}
    return build_estimator(name, settings=settings, seed=0)


def gaussian_split(task: GaussianMixtureTask, test_counts, seed: int):
    """(train, test, truth): truth is the mean pointwise MI on the very test samples (the paper's ground truth),
    so sampling noise of the test set cancels out of estimate − truth."""
    rng = np.random.default_rng(seed)
    x, y = task.sample(task.class_counts, rng)
    x_test, y_test = task.sample(test_counts, rng)
    train = LabeledSample.from_arrays(x, y, task.n_classes)
    test = LabeledSample.from_arrays(x_test, y_test, task.n_classes)
    return train, test, float(task.pointwise_mi(x_test, y_test).mean())


@pytest.fixture(scope="module")
def independent_split():
    """x ~ N(0, 1) in d = 1, y uniform on 5 balanced classes, drawn independently: I(X;Y) = 0."""
    rng = np.random.default_rng(1)

    def draw(per_class):
        y = rng.permutation(np.repeat(np.arange(K), per_class))
        return LabeledSample.from_arrays(rng.standard_normal((len(y), 1)), y, K)

    return draw(600), draw(600)


@pytest.fixture(scope="module")
def separated_split():
    """Class means 10 standard deviations apart (d = 1, so sklearn_knn applies): I(X;Y) = H(Y) = log 5 up to 1e-6."""
    task = GaussianMixtureTask(dim=1, class_counts=(600,) * K, mean_unit=10.0)
    return gaussian_split(task, (300,) * K, seed=2)


@pytest.fixture(scope="module")
def paper_gaussian_d1():
    """The paper's task at d = 1, balanced (true MI ≈ 1.03 nats), scaled down from 10k to 1k per class."""
    return gaussian_split(GaussianMixtureTask(dim=1, class_counts=(1000,) * K), (600,) * K, seed=3)


# ---------------------------------------------------------------------------------------------------------------
# Every registered estimator
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_independent_variables_give_zero(name, independent_split):
    train, test = independent_split
    value = estimator(name).fit(train).estimate(test).value
    assert abs(value) < 0.05


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_separated_classes_give_label_entropy(name, separated_split):
    """Longer training: DV and NWJ fall short of H(Y) by log(1 + (K − 1)·e^{−gap}), where gap is the critic's
    joint vs. off-joint score difference; it grows only logarithmically as its gradient vanishes (15 epochs leave
    about 0.04 nats, 60 epochs about 0.01–0.02)."""
    train, test, truth = separated_split
    assert truth == pytest.approx(math.log(K), abs=1e-3)
    value = estimator(name, epochs=60).fit(train).estimate(test).value
    assert value == pytest.approx(test.label_entropy(), abs=0.05)


@pytest.mark.parametrize("name", [*VARIATIONAL, "softmax", "pc_softmax", "knn", "sklearn_knn"])
def test_balanced_paper_gaussian_matches_truth(name, paper_gaussian_d1):
    train, test, truth = paper_gaussian_d1
    value = estimator(name).fit(train).estimate(test).value
    assert value == pytest.approx(truth, abs=0.1 if name in VARIATIONAL else 0.05)


def test_estimates_carry_training_details(paper_gaussian_d1):
    train, test, _ = paper_gaussian_d1
    details = estimator("nwj", epochs=1).fit(train).estimate(test).details
    assert details["train_steps"] == math.ceil(0.9 * len(train) / FAST_TRAINING["batch_size"])
    assert details["batch_size"] <= FAST_TRAINING["batch_size"]


# ---------------------------------------------------------------------------------------------------------------
# Classifier estimators under imbalance (docs/paper.md §1.2–1.3)
# ---------------------------------------------------------------------------------------------------------------


def test_plain_softmax_overshoots_by_entropy_gap_under_imbalance_and_pc_softmax_does_not():
    """Paper's d = 2 imbalanced task ([5k..25k] scaled down 12.5×): log K − CE ≈ I + (log K − H(Y)), PC ≈ I."""
    task = GaussianMixtureTask(dim=2, class_counts=(400, 800, 1200, 1600, 2000))
    train, test, truth = gaussian_split(task, task.class_counts, seed=4)
    gap = math.log(K) - entropy(task.prior)  # 0.120 nats
    softmax = estimator("softmax").fit(train).estimate(test).value
    pc_softmax = estimator("pc_softmax").fit(train).estimate(test).value
    assert softmax - truth == pytest.approx(gap, abs=0.04)
    assert pc_softmax == pytest.approx(truth, abs=0.04)


# ---------------------------------------------------------------------------------------------------------------
# Variational bounds: the O(B·K) in-batch pairing, InfoNCE's cap, MINE's corrected gradient
# ---------------------------------------------------------------------------------------------------------------


def brute_force_bounds(scores: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
    """The textbook B × B score-matrix versions, S_ij = g(x_i)[y_j]."""
    matrix = scores[:, y]
    joint = matrix.diagonal().mean()
    off_diagonal = matrix[~torch.eye(len(y), dtype=torch.bool)]
    log_mean_exp_off = torch.logsumexp(off_diagonal, 0) - math.log(len(off_diagonal))
    infonce = (matrix.diagonal() - (torch.logsumexp(matrix, 1) - math.log(len(y)))).mean()
    return {"dv": joint - log_mean_exp_off, "nwj": joint - (log_mean_exp_off - 1).exp(), "infonce": infonce}


@pytest.mark.parametrize("batch_size", [2, 7, 64])
def test_label_count_pairing_equals_full_score_matrix(batch_size):
    generator = torch.Generator().manual_seed(batch_size)
    scores = 3 * torch.randn(batch_size, K, generator=generator, dtype=torch.float64)
    y = torch.randint(0, K, (batch_size,), generator=generator)
    expected = brute_force_bounds(scores, y)
    assert float(dv_bound(scores, y)) == pytest.approx(float(expected["dv"]), abs=1e-9)
    assert float(nwj_bound(scores, y)) == pytest.approx(float(expected["nwj"]), abs=1e-9)
    assert float(infonce_bound(scores, y)) == pytest.approx(float(expected["infonce"]), abs=1e-9)


def test_infonce_bound_never_exceeds_log_batch_size_for_any_critic():
    generator = torch.Generator().manual_seed(0)
    for batch_size in (1, 3, 4, 50):
        y = torch.randint(0, K, (batch_size,), generator=generator)
        scores = 1e3 * torch.nn.functional.one_hot(y, K).double()  # the most confident correct critic there is
        assert float(infonce_bound(scores, y)) <= math.log(batch_size) + 1e-9


def test_infonce_estimate_is_capped_by_log_batch_size(separated_split):
    """Batch 4 < K: the InfoNCE estimate of I = log 5 is held below log 4, whatever the critic learns."""
    train, test, _ = separated_split
    train = train.subset(torch.arange(1000))
    result = estimator("infonce", epochs=3, batch_size=4).fit(train).estimate(test)
    assert result.details["batch_size"] == 4
    assert result.value <= math.log(4) + 1e-6
    assert result.value > 0.5  # it did learn something: the cap, not a failure, is what binds


def test_mine_training_value_is_the_dv_bound_but_its_gradient_uses_the_moving_average():
    generator = torch.Generator().manual_seed(0)
    y = torch.randint(0, K, (32,), generator=generator)
    mine = MINE(ema_decay=0.9)
    mine.log_marginal_ema = torch.tensor(2.0)  # an EMA far from this batch's mean, to make the correction visible

    scores = torch.randn(32, K, generator=generator, requires_grad=True)
    surrogate = mine.training_bound(scores, y, update_state=True)
    (surrogate_grad,) = torch.autograd.grad(surrogate, scores)
    plain = dv_bound(scores, y)
    (plain_grad,) = torch.autograd.grad(plain, scores)

    assert float(surrogate.detach()) == pytest.approx(float(plain.detach()), abs=1e-6)
    assert not torch.allclose(surrogate_grad, plain_grad)
    # Joint-term gradients are untouched; only the marginal term is rescaled (by batch mean / EMA).
    joint_mask = torch.nn.functional.one_hot(y, K).bool()
    marginal_ratio = (surrogate_grad - plain_grad)[~joint_mask] / (-plain_grad[~joint_mask])
    assert torch.allclose(marginal_ratio, marginal_ratio[0].expand_as(marginal_ratio), atol=1e-5)


@pytest.mark.parametrize("name", VARIATIONAL)
def test_fit_is_reproducible_from_the_seed_alone(name, paper_gaussian_d1):
    train, test, _ = paper_gaussian_d1
    first = estimator(name, epochs=1).fit(train).estimate(test).value
    torch.manual_seed(12345)  # a caller's global RNG state must not leak into the initial weights
    second = estimator(name, epochs=1).fit(train).estimate(test).value
    assert first == second


def test_mine_moving_average_is_reset_by_fit(paper_gaussian_d1):
    train, _, _ = paper_gaussian_d1
    mine = estimator("mine", epochs=1)
    mine.log_marginal_ema = torch.tensor(50.0)  # stale state from an imaginary earlier fit
    mine.fit(train)
    assert float(mine.log_marginal_ema) < 5.0  # rebuilt from this fit's batches (E_q[e^T] is O(1) here)


def test_validation_passes_leave_mine_state_alone():
    mine = MINE()
    scores, y = torch.randn(16, K), torch.randint(0, K, (16,))
    mine.training_bound(scores, y, update_state=False)
    assert mine.log_marginal_ema is None


# ---------------------------------------------------------------------------------------------------------------
# kNN estimators
# ---------------------------------------------------------------------------------------------------------------


def test_knn_agrees_with_sklearn_in_one_dimension(paper_gaussian_d1):
    _, test, _ = paper_gaussian_d1
    ours = estimator("knn").estimate(test).value
    sklearn = estimator("sklearn_knn").estimate(test).value
    assert ours == pytest.approx(sklearn, abs=0.02)


def test_sklearn_knn_refuses_multivariate_x():
    sample = LabeledSample.from_arrays(np.zeros((10, 2)), np.arange(10) % 2)
    with pytest.raises(ValueError, match="not the joint I"):
        estimator("sklearn_knn").estimate(sample)


def test_knn_estimates_the_joint_mi_in_several_dimensions():
    """Where sklearn cannot: d = 5, true MI ≈ 1.55 nats."""
    _, test, truth = gaussian_split(GaussianMixtureTask(dim=5, class_counts=(1,) * K), (600,) * K, seed=5)
    assert estimator("knn").estimate(test).value == pytest.approx(truth, abs=0.05)


def test_knn_stays_finite_on_tied_points_and_drops_singleton_classes():
    x = np.repeat(np.arange(20.0), 5)[:, None]  # every value five times: zero distances everywhere
    y = np.arange(100) % 4
    y[0] = 4  # class 4 has a single member
    value, details = ross_mi(x, y, k=3)
    assert math.isfinite(value)
    assert details["n_dropped_singletons"] == 1 and details["n_samples"] == 99


def test_knn_subsamples_reproducibly(paper_gaussian_d1):
    _, test, _ = paper_gaussian_d1
    first = build_estimator("knn", settings={"max_samples": 500}, seed=7).estimate(test)
    second = build_estimator("knn", settings={"max_samples": 500}, seed=7).estimate(test)
    assert first.details["n_samples"] == 500
    assert first.value == second.value


# ---------------------------------------------------------------------------------------------------------------
# Saved classifiers (softmax_mi.estimators.classifier.save_classifiers / load_classifiers)
# ---------------------------------------------------------------------------------------------------------------


def test_saved_classifiers_load_with_weights_only_and_give_the_same_logits(tmp_path, paper_gaussian_d1):
    from softmax_mi.estimators.classifier import load_classifiers, save_classifiers

    train, test, _ = paper_gaussian_d1
    fitted = [estimator(name, epochs=1).fit(train) for name in ("softmax", "pc_softmax")]
    path = tmp_path / "classifiers.pt"
    save_classifiers([model.checkpoint(seed=7) for model in fitted], path)
    assert torch.load(path, weights_only=True)["classifiers"][0]["estimator"] == "softmax"
    loaded = load_classifiers(path)
    assert [(c.estimator, c.seed) for c in loaded] == [("softmax", 7), ("pc_softmax", 7)]
    for model, clf in zip(fitted, loaded):
        assert torch.equal(clf.train_counts, train.class_counts())
        assert torch.allclose(clf.logits(test.x[:50]), model.model(test.x[:50]))


def test_load_classifiers_names_the_file_on_a_bad_checkpoint(tmp_path):
    from softmax_mi.estimators.classifier import load_classifiers
    from softmax_mi.io import CheckpointError

    other = tmp_path / "other.pt"
    torch.save({"model": torch.zeros(2)}, other)
    with pytest.raises(CheckpointError, match="other.pt: not a saved-classifiers file"):
        load_classifiers(other)
    broken = tmp_path / "broken.pt"
    torch.save({"format": "softmax_mi.classifiers/1", "classifiers": [{"estimator": "softmax"}]}, broken)
    with pytest.raises(CheckpointError, match="broken.pt: classifier 0 is malformed"):
        load_classifiers(broken)
    with pytest.raises(CheckpointError, match="missing.pt: no such checkpoint"):
        load_classifiers(tmp_path / "missing.pt")
