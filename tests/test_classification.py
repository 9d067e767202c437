"""PC-softmax classification: loss equivalences, the stacked multi-run trainer, resume, and the smoke pipeline."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from helpers import tiny_training_data
from softmax_mi.io import column_descriptions
from softmax_mi.losses import (
    class_balanced_weights,
    classification_loss,
    ldam_margins,
    log_prior_from_counts,
    logit_adjusted_loss,
    pc_softmax_loss,
    posthoc_adjusted_logits,
)
from softmax_mi.models import LeNet, StackedLeNet
from softmax_mi.models.lenet import normalise
from softmax_mi.multirun import RunSpec, SGDConfig, StackedLoss, predict_logits, train_runs

COUNTS = torch.tensor([300, 3000, 300, 3000, 300, 3000, 300, 3000, 300, 3000])


def test_logit_adjusted_tau1_has_pc_softmax_gradients():
    torch.manual_seed(0)
    logits = torch.randn(64, 10, dtype=torch.float64) * 3
    target = torch.randint(0, 10, (64,))
    log_prior = log_prior_from_counts(COUNTS).double()
    grads = []
    pc = lambda f: pc_softmax_loss(f, target, log_prior)  # noqa: E731
    la = lambda f: logit_adjusted_loss(f, target, log_prior, 1.0)  # noqa: E731
    for loss_fn in (pc, la):
        f = logits.clone().requires_grad_()
        loss_fn(f).backward()
        grads.append(f.grad)
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-12, atol=1e-12)
    # and the losses differ exactly by the constant −log π_y
    gap = pc_softmax_loss(logits, target, log_prior) - logit_adjusted_loss(logits, target, log_prior, 1.0)
    assert float(gap) == pytest.approx(float(log_prior[target].mean()), abs=1e-10)
    # τ = 2 is something else
    f = logits.clone().requires_grad_()
    logit_adjusted_loss(f, target, log_prior, 2.0).backward()
    assert not torch.allclose(f.grad, grads[0])


def test_long_tail_helpers():
    weights = class_balanced_weights(COUNTS, 0.9999)
    assert weights.sum().item() == pytest.approx(10.0, rel=1e-5)
    assert weights[0] > weights[1]
    assert torch.allclose(class_balanced_weights(COUNTS, 0.0), torch.ones(10))
    margins = ldam_margins(COUNTS, 0.5)
    assert margins.max().item() == pytest.approx(0.5) and margins[1] < margins[0]
    log_prior = log_prior_from_counts(COUNTS)
    logits = torch.zeros(3, 10)
    assert (posthoc_adjusted_logits(logits, log_prior).argmax(-1) == 0).all()  # ties → rarest class first


@pytest.mark.parametrize("loss", ["softmax", "pc_softmax", "logit_adjusted", "class_balanced", "ldam_drw"])
def test_stacked_loss_matches_each_library_loss(loss):
    torch.manual_seed(1)
    runs = [RunSpec("a", loss, 0, 0, tau=1.5, beta=0.99, ldam_scale=2.0, drw_epoch=2),
            RunSpec("b", "softmax", 0, 0)]
    logits = torch.randn(2, 32, 10, dtype=torch.float64)
    target = torch.randint(0, 10, (2, 32))
    stacked = StackedLoss(runs, COUNTS)
    for epoch in (1, 2):
        reference = classification_loss(loss, COUNTS, tau=1.5, beta=0.99, ldam_scale=2.0, drw_epoch=2)
        expected = reference(logits[0].float(), target[0], epoch)
        got = stacked.per_run(logits.float(), target, epoch)[0]
        if loss == "pc_softmax":  # −log PC_y = CE(f + log π) − log π_y: a constant offset, identical gradients
            expected = expected - log_prior_from_counts(COUNTS)[target[0]].mean()
        assert float(got) == pytest.approx(float(expected), rel=1e-5, abs=1e-5)


def test_stacked_lenet_is_g_independent_lenets():
    torch.manual_seed(0)
    models = [LeNet() for _ in range(3)]
    stacked = StackedLeNet.from_models(models)
    x = torch.randn(3, 5, 28, 28)
    out = stacked(x)
    for g, model in enumerate(models):
        torch.testing.assert_close(out[g], model(x[g, :, None]), rtol=1e-5, atol=1e-5)
    for a, b in zip(stacked.to_models()[1].parameters(), models[1].parameters()):
        torch.testing.assert_close(a, b)


def _train_one_by_one(images, labels, run, config, counts):
    """The classic protocol for one run: own LeNet, own optimiser, own per-epoch permutation."""
    torch.manual_seed(run.init_seed)
    net = LeNet()
    optimiser = torch.optim.SGD(net.parameters(), lr=config.lr, momentum=config.momentum)
    generator = torch.Generator().manual_seed(run.order_seed)
    loss_fn = classification_loss(run.loss, counts, tau=run.tau, beta=run.beta, drw_epoch=run.drw_epoch)
    for epoch in range(1, config.epochs + 1):
        order = torch.randperm(len(labels), generator=generator)
        for begin in range(0, len(labels), config.batch_size):
            index = order[begin : begin + config.batch_size]
            loss = loss_fn(net(normalise(images[index])[:, None]), labels[index], epoch)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    return net


def test_batched_training_equals_separate_runs():
    images, labels = tiny_training_data()
    counts = torch.bincount(labels, minlength=10)
    runs = [RunSpec("s", "softmax", 1, 11), RunSpec("p", "pc_softmax", 2, 12),
            RunSpec("l", "ldam_drw", 3, 13, drw_epoch=2)]
    config = SGDConfig(epochs=2, batch_size=64)
    stacked, history = train_runs(images, labels, runs, config)
    assert len(history) == 2 * len(runs) and all(math.isfinite(h["train_loss"]) for h in history)
    for run, model in zip(runs, stacked.to_models()):
        reference = _train_one_by_one(images, labels, run, config, counts)
        for a, b in zip(model.parameters(), reference.parameters()):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
    logits = predict_logits(stacked, images[:50])
    assert logits.shape == (3, 50, 10)


def test_training_resumes_from_its_checkpoint(tmp_path):
    images, labels = tiny_training_data(192)
    runs = [RunSpec("a", "softmax", 5, 6), RunSpec("b", "pc_softmax", 5, 6)]
    straight, _ = train_runs(images, labels, runs, SGDConfig(epochs=2))
    checkpoint = tmp_path / "state.pt"
    train_runs(images, labels, runs, SGDConfig(epochs=1), checkpoint=checkpoint)  # "interrupted" after epoch 1
    assert torch.load(checkpoint, weights_only=True)["epoch"] == 1
    resumed, history = train_runs(images, labels, runs, SGDConfig(epochs=2), checkpoint=checkpoint)
    assert [h["epoch"] for h in history] == [1, 1, 2, 2]
    for a, b in zip(straight.parameters(), resumed.parameters()):
        torch.testing.assert_close(a, b)
    # a checkpoint of other runs is ignored, not resumed
    _, history = train_runs(images, labels, runs[:1], SGDConfig(epochs=1), checkpoint=checkpoint)
    assert [h["epoch"] for h in history] == [1]


@pytest.mark.slow
def test_classification_smoke_pipeline(smoke_run):
    from softmax_mi.stages.classification import METRICS_COLUMNS, PER_CLASS_COLUMNS

    folder = smoke_run / "results/classification"
    metrics = pd.read_parquet(folder / "metrics.parquet")
    assert list(metrics.columns) == list(METRICS_COLUMNS)
    assert column_descriptions(folder / "metrics.parquet").keys() == METRICS_COLUMNS.keys()
    required = {"dataset", "protocol", "profile", "imbalance_ratio", "loss", "tau", "seed", "split", "micro_acc",
                "macro_acc", "mi_estimate", "entropy_y"}
    assert required <= set(metrics.columns)
    assert {"softmax", "pc_softmax", "posthoc_la"} <= set(metrics["loss"])
    assert metrics[["micro_acc", "macro_acc"]].apply(lambda c: c.between(0, 1)).all().all()
    faithful = metrics[(metrics["setting"] == "faithful-imbalanced") & (metrics["split"] == "test")]
    assert not faithful.empty and (faithful["n_test"] > 0).all()
    assert (faithful["imbalance_ratio"] == 10).all()
    per_class = pd.read_parquet(folder / "per_class.parquet")
    assert list(per_class.columns) == list(PER_CLASS_COLUMNS)
    assert len(per_class) == 10 * len(metrics)
    assert (np.asarray(per_class["n_test"]) >= 0).all()
    for figure in ("per_class_accuracy.png", "accuracy_vs_imbalance.png"):
        assert (folder / figure).stat().st_size > 10_000
    assert "faithful-imbalanced" in (folder / "metrics.json").read_text()
