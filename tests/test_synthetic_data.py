"""Synthetic tasks: exact class counts, determinism, and ground-truth MI against the references."""

from __future__ import annotations

import math

import numpy as np
import pytest

from softmax_mi.data.synthetic import GaussianMixtureTask, UniformOverlapTask, entropy, held_out_counts, make_task

BALANCED = (10000,) * 5
IMBALANCED = (5000, 10000, 15000, 20000, 25000)

# docs/paper.md §2, Monte Carlo with 4×10^5 samples (independent re-run): d → (balanced, imbalanced) nats.
PAPER_TRUTH = {1: (1.032, 1.023), 2: (1.298, 1.239), 5: (1.555, 1.445), 10: (1.606, 1.488)}


@pytest.mark.parametrize("dim", sorted(PAPER_TRUTH))
@pytest.mark.parametrize("column, counts", [(0, BALANCED), (1, IMBALANCED)])
def test_monte_carlo_truth_matches_paper_table(dim, column, counts):
    mi, se = GaussianMixtureTask(dim, counts).true_mi(200_000, np.random.default_rng(dim))
    assert se < 0.0025
    assert mi == pytest.approx(PAPER_TRUTH[dim][column], abs=0.01)


def test_paper_means_and_prior():
    task = GaussianMixtureTask(3, IMBALANCED)
    assert task.means[:, 0].tolist() == [0.0, 2.0, -2.0, 4.0, -4.0]
    assert np.allclose(task.prior, np.arange(1, 6) / 15)
    assert entropy(task.prior) == pytest.approx(1.4898, abs=1e-4)


def test_samples_have_exact_counts_and_are_deterministic():
    task = GaussianMixtureTask(2, IMBALANCED)
    x1, y1 = task.sample((5, 10, 15, 20, 25), np.random.default_rng(7))
    x2, y2 = task.sample((5, 10, 15, 20, 25), np.random.default_rng(7))
    assert np.bincount(y1).tolist() == [5, 10, 15, 20, 25]
    assert x1.shape == (75, 2) and x1.dtype == np.float32
    assert np.array_equal(x1, x2) and np.array_equal(y1, y2)
    assert held_out_counts(IMBALANCED, 0.2) == (1000, 2000, 3000, 4000, 5000)


def test_uniform_overlap_closed_form_agrees_with_monte_carlo():
    task = UniformOverlapTask((1000,) * 5)
    closed, se = task.true_mi()
    assert closed == pytest.approx(math.log(5) - 0.8 * math.log(2)) and se == 0.0
    x, y = task.sample((40_000,) * 5, np.random.default_rng(0))
    assert task.pointwise_mi(x, y).mean() == pytest.approx(closed, abs=0.01)


def test_make_task_rejects_unknown_kind_and_imbalanced_uniform():
    with pytest.raises(ValueError, match="unknown synthetic task"):
        make_task({"kind": "spiral", "dim": 1, "class_counts": [1, 1]})
    with pytest.raises(ValueError, match="balanced"):
        UniformOverlapTask((1, 2))
