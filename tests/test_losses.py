"""PC-softmax loss: its definition, its stable form, and its equivalence with logit adjustment (τ = 1)."""

from __future__ import annotations

import math

import pytest
import torch

from softmax_mi import losses


@pytest.fixture
def batch():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(64, 5, generator=generator, dtype=torch.float64)
    target = torch.randint(0, 5, (64,), generator=generator)
    log_prior = losses.log_prior_from_counts(torch.tensor([1, 2, 3, 4, 5])).double()
    return logits, target, log_prior


def test_pc_softmax_matches_its_definition(batch):
    logits, target, log_prior = batch
    prior = log_prior.exp()
    pc = logits.exp() / (prior * logits.exp()).sum(dim=1, keepdim=True)
    expected = -pc.gather(1, target[:, None]).log().mean()
    assert losses.pc_softmax_loss(logits, target, log_prior) == pytest.approx(float(expected), rel=1e-12)
    # Σ_y π_y PC_y = 1 (not Σ_y PC_y = 1)
    assert torch.allclose((prior * pc).sum(dim=1), torch.ones(64, dtype=torch.float64))


def test_pc_softmax_equals_logit_adjusted_ce_minus_log_prior(batch):
    logits, target, log_prior = batch
    pc = losses.pc_softmax_loss(logits, target, log_prior, reduction="none")
    adjusted = losses.logit_adjusted_loss(logits, target, log_prior, tau=1.0, reduction="none")
    assert torch.allclose(pc, adjusted + log_prior[target], atol=1e-12)


def test_pc_softmax_is_stable_for_huge_logits(batch):
    logits, target, log_prior = batch
    shifted = losses.pc_softmax_loss(logits + 1e5, target, log_prior)  # exp(1e5) overflows float64
    assert torch.isfinite(shifted)
    assert float(shifted) == pytest.approx(float(losses.pc_softmax_loss(logits, target, log_prior)), rel=1e-9)


def test_balanced_prior_reduces_to_softmax_plus_log_k(batch):
    logits, target, _ = batch
    uniform = torch.full((5,), -math.log(5), dtype=torch.float64)
    assert float(losses.pc_softmax_loss(logits, target, uniform)) == pytest.approx(
        float(losses.softmax_cross_entropy(logits, target)) - math.log(5), rel=1e-12
    )


def test_empty_class_in_prior_is_an_error():
    with pytest.raises(ValueError, match=r"classes \[1\]"):
        losses.log_prior_from_counts(torch.tensor([3, 0, 2]))
