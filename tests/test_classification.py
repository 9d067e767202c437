"""PC-softmax classification: loss equivalences, the stacked multi-run trainer (LeNets and linear heads), resume,
the run identity through checkpoints and tables, and the smoke pipeline."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch

from helpers import run_spec, tiny_training_data, train_lenets
from softmax_mi.classification import (
    CURVE_COLUMNS,
    METRICS_COLUMNS,
    PER_CLASS_COLUMNS,
    RunId,
    RunLogits,
    load_logits,
    parse_setting,
    runs_of_checkpoint,
)
from softmax_mi.classification_metrics import TrainedJob
from softmax_mi.io import column_descriptions, read_table, write_table
from softmax_mi.losses import (
    class_balanced_weights,
    classification_loss,
    ldam_margins,
    log_prior_from_counts,
    logit_adjusted_loss,
    pc_softmax_loss,
    posthoc_adjusted_logits,
)
from softmax_mi.models import LeNet, StackedLeNet, StackedLinear
from softmax_mi.models.lenet import normalise
from softmax_mi.multirun import (
    SGDConfig,
    StackedLoss,
    init_models,
    last_train_loss,
    predict_logits,
    run_specs,
    save_runs,
    stacked_accuracy,
    train_stacked,
)

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
    runs = [run_spec(loss, 0, 0, tau=1.5, beta=0.99, ldam_scale=2.0, drw_epoch=2), run_spec("softmax", 0, 0)]
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
    loss_fn = classification_loss(run.loss, counts, tau=run.tau or 1.0, beta=run.beta, drw_epoch=run.drw_epoch)
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
    runs = [run_spec("softmax", 1, 11), run_spec("pc_softmax", 2, 12), run_spec("ldam_drw", 3, 13, drw_epoch=2)]
    config = SGDConfig(epochs=2, batch_size=64)
    stacked, history = train_lenets(images, labels, runs, config)
    assert len(history) == 2 * len(runs) and all(math.isfinite(h["train_loss"]) for h in history)
    for run, model in zip(runs, stacked.to_models()):
        reference = _train_one_by_one(images, labels, run, config, counts)
        for a, b in zip(model.parameters(), reference.parameters()):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
    logits = predict_logits(stacked, images[:50], transform=normalise)
    assert logits.shape == (3, 50, 10)


def test_training_resumes_from_its_checkpoint(tmp_path):
    images, labels = tiny_training_data(192)
    runs = [run_spec("softmax", 5, 6), run_spec("pc_softmax", 5, 6)]
    straight, _ = train_lenets(images, labels, runs, SGDConfig(epochs=2))
    checkpoint = tmp_path / "state.pt"
    train_lenets(images, labels, runs, SGDConfig(epochs=1), checkpoint=checkpoint)  # "interrupted" after epoch 1
    assert torch.load(checkpoint, weights_only=True)["epoch"] == 1
    resumed, history = train_lenets(images, labels, runs, SGDConfig(epochs=2), checkpoint=checkpoint)
    assert [h["epoch"] for h in history] == [1, 1, 2, 2]
    for a, b in zip(straight.parameters(), resumed.parameters()):
        torch.testing.assert_close(a, b)
    # a checkpoint of other runs is ignored, not resumed
    _, history = train_lenets(images, labels, runs[:1], SGDConfig(epochs=1), checkpoint=checkpoint)
    assert [h["epoch"] for h in history] == [1]


def test_the_validation_curve_changes_nothing_in_training():
    images, labels = tiny_training_data(64)
    runs = [run_spec("softmax", 5, 6), run_spec("ldam_drw", 7, 8, drw_epoch=2)]
    plain, _ = train_lenets(images, labels, runs, SGDConfig(epochs=2))
    model = init_models(runs)
    validation = (images[:20], labels[:20])
    history = train_stacked(model, images, labels, runs, SGDConfig(epochs=2), n_classes=10, transform=normalise,
                            validation=validation)
    for a, b in zip(plain.parameters(), model.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert [h["epoch"] for h in history] == [1, 1, 2, 2]
    assert [h["val_acc"] for h in history[2:]] == stacked_accuracy(model, *validation, transform=normalise)


def test_logits_files_round_trip_and_name_what_is_wrong(tmp_path):
    runs = [RunId("mnist", "step-r10", "softmax", None, 0), RunId("mnist", "step-r10", "logit_adjusted", 2.0, 0)]
    rng = np.random.default_rng(0)
    logits = RunLogits(runs=runs, val_logits=rng.normal(size=(2, 5, 10)).astype(np.float32),
                       val_labels=np.arange(5), test_logits=rng.normal(size=(2, 7, 10)).astype(np.float32),
                       test_labels=np.arange(7), train_counts=np.full(10, 30))
    logits.save(tmp_path / "logits.npz")
    back = load_logits(tmp_path / "logits.npz")
    assert back.runs == runs and back.test_logits.dtype == np.float32 and back.train_counts.dtype == np.int64
    np.testing.assert_array_equal(back.test_logits, logits.test_logits)
    with np.load(tmp_path / "logits.npz") as archive:
        arrays = dict(archive)
    np.savez(tmp_path / "missing.npz", **{k: v for k, v in arrays.items() if k != "val_labels"})
    with pytest.raises(ValueError, match=r"missing.npz: no val_labels .*fix: rerun"):
        load_logits(tmp_path / "missing.npz")
    np.savez(tmp_path / "double.npz", **{**arrays, "test_logits": arrays["test_logits"].astype(np.float64)})
    with pytest.raises(ValueError, match="test_logits is float64 of rank 3, expected float32"):
        load_logits(tmp_path / "double.npz")
    with pytest.raises(ValueError, match="absent.npz: not a readable logits file"):
        load_logits(tmp_path / "absent.npz")
    with pytest.raises(ValueError, match=r"val_logits has shape \(2, 5, 10\), expected \(runs 1"):
        RunLogits(runs=runs[:1], **{k: v for k, v in arrays.items() if k != "runs"})


def test_the_balanced_reference_is_a_standard_setting():
    assert parse_setting("balanced") == ("standard", "balanced", 1.0)
    assert parse_setting("faithful-balanced")[:2] == ("faithful", "balanced")
    assert parse_setting("exponential-r100") == ("standard", "exponential", 100.0)


# ------------------------------------------------------------------------------- one trainer, two kinds of model


def _train_linear_one_by_one(x, y, run, config, counts):
    """The classic protocol for one linear head: ``nn.Linear`` initialised from its seed, its own SGD (weight decay
    on the weight only), the staircase learning rate, its own per-epoch permutation."""
    head = torch.nn.Linear(x.shape[1], 10)
    generator = torch.Generator().manual_seed(run.init_seed)
    bound = 1 / math.sqrt(x.shape[1])
    with torch.no_grad():
        head.weight.copy_((torch.rand(10, x.shape[1], generator=generator) * 2 - 1) * bound)
        head.bias.copy_((torch.rand(10, generator=generator) * 2 - 1) * bound)
    optimiser = torch.optim.SGD([{"params": [head.weight], "weight_decay": config.weight_decay},
                                 {"params": [head.bias], "weight_decay": 0.0}], lr=config.lr, momentum=config.momentum)
    order_generator = torch.Generator().manual_seed(run.order_seed)
    loss_fn = classification_loss(run.loss, counts, tau=run.tau or 1.0, drw_epoch=run.drw_epoch)
    for epoch in range(1, config.epochs + 1):
        for group in optimiser.param_groups:
            group["lr"] = config.lr_at(epoch)
        order = torch.randperm(len(y), generator=order_generator)
        for begin in range(0, len(y), config.batch_size):
            index = order[begin : begin + config.batch_size]
            loss = loss_fn(head(x[index]), y[index], epoch)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    return head


HEADS = SGDConfig(epochs=4, batch_size=32, lr=0.05, momentum=0.9, weight_decay=1e-3, lr_decay_epochs=2)


def test_the_trainer_trains_linear_heads_as_separate_runs():
    """The LeNet sweep's trainer, given stacked linear heads: each head as if trained alone with its own SGD
    (momentum, weight decay on the weight only, staircase learning rate)."""
    generator = torch.Generator().manual_seed(0)
    x, y = torch.randn(150, 12, generator=generator), torch.arange(150) % 10
    runs = [run_spec("softmax", 1, 11, seed=1), run_spec("logit_adjusted", 2, 12, tau=2.0),
            run_spec("ldam_drw", 3, 13, drw_epoch=3)]
    heads = StackedLinear.from_seeds([run.init_seed for run in runs], 12, 10)
    history = train_stacked(heads, x, y, runs, HEADS, n_classes=10)
    assert [h["lr"] for h in history[:: len(runs)]] == [0.05, 0.05, pytest.approx(0.005), pytest.approx(0.005)]
    logits = predict_logits(heads, x[:7])
    for g, run in enumerate(runs):
        reference = _train_linear_one_by_one(x, y, run, HEADS, torch.bincount(y, minlength=10))
        torch.testing.assert_close(heads.weight[g], reference.weight.T, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(heads.bias[g], reference.bias, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(logits[g], reference(x[:7]), rtol=1e-5, atol=1e-5)


def test_linear_heads_resume_like_lenets(tmp_path):
    x, y = torch.randn(96, 8, generator=torch.Generator().manual_seed(1)), torch.arange(96) % 10
    runs = [run_spec("softmax", 5, 6), run_spec("class_balanced", 5, 6)]
    straight = StackedLinear.from_seeds([5, 5], 8, 10)
    train_stacked(straight, x, y, runs, HEADS, n_classes=10)
    checkpoint = tmp_path / "heads.pt.partial"
    interrupted = StackedLinear.from_seeds([5, 5], 8, 10)
    train_stacked(interrupted, x, y, runs, replace(HEADS, epochs=3), n_classes=10, checkpoint=checkpoint)
    resumed = StackedLinear.from_seeds([5, 5], 8, 10)
    history = train_stacked(resumed, x, y, runs, HEADS, n_classes=10, checkpoint=checkpoint)
    assert [h["epoch"] for h in history] == [1, 1, 2, 2, 3, 3, 4, 4]
    assert torch.equal(resumed.weight, straight.weight) and torch.equal(resumed.bias, straight.bias)



def test_a_loss_lr_scale_is_that_losss_learning_rate():
    """loss_lr_scale {class_balanced: 0.5} trains the class-balanced run exactly as lr × 0.5 would (no weight decay)
    and leaves the other runs of the stack as they were."""
    x, y = torch.randn(96, 8, generator=torch.Generator().manual_seed(2)), torch.arange(96) % 10
    runs = [run_spec("softmax", 5, 6), run_spec("class_balanced", 5, 6)]
    plain = replace(HEADS, weight_decay=0.0)
    scaled = StackedLinear.from_seeds([5, 5], 8, 10)
    train_stacked(scaled, x, y, runs, replace(plain, loss_lr_scale={"class_balanced": 0.5}), n_classes=10)
    for g, config in enumerate([plain, replace(plain, lr=plain.lr * 0.5)]):
        alone = StackedLinear.from_seeds([5], 8, 10)
        train_stacked(alone, x, y, runs[g : g + 1], config, n_classes=10)
        torch.testing.assert_close(scaled.weight[g], alone.weight[0], rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------------------------------------ run identity


def test_run_specs_pair_the_losses_of_a_seed():
    options = {"logit_adjusted": {"taus": [1.0, 2.0]}, "ldam_drw": {"max_margin": 0.3}}
    softmax = run_specs(dataset="mnist", setting="step-r10", loss="softmax", seeds=[0, 1], options=options, epochs=8)
    adjusted = run_specs(dataset="mnist", setting="step-r10", loss="logit_adjusted", seeds=[0, 1], options=options,
                         epochs=8)
    ldam = run_specs(dataset="mnist", setting="step-r10", loss="ldam_drw", seeds=[0], options=options, epochs=8)
    assert [run.id for run in softmax] == [RunId("mnist", "step-r10", "softmax", None, 0),
                                           RunId("mnist", "step-r10", "softmax", None, 1)]
    assert [(run.id.tau, run.id.seed) for run in adjusted] == [(1.0, 0), (1.0, 1), (2.0, 0), (2.0, 1)]
    assert [(r.init_seed, r.order_seed) for r in adjusted[:2]] == [(r.init_seed, r.order_seed) for r in softmax]
    assert ldam[0].drw_epoch == 7 and ldam[0].ldam_max_margin == 0.3  # the last quarter of 8 epochs
    assert run_specs(dataset="cub", setting="imbalanced", loss="ldam_drw", seeds=[0], options={}, epochs=30,
                     drw_epoch=21)[0].drw_epoch == 21
    with pytest.raises(ValueError, match="tau"):
        RunId("mnist", "step-r10", "softmax", 1.0, 0)  # a loss without τ has none, not a dummy 1.0


def test_run_identity_round_trips_through_a_checkpoint_and_a_table(tmp_path):
    images, labels = tiny_training_data(96)
    runs = run_specs(dataset="mnist", setting="faithful-imbalanced", loss="softmax", seeds=[3, 4], options={},
                     epochs=1)
    model, history = train_lenets(images, labels, runs, SGDConfig(epochs=1))
    counts = torch.bincount(labels, minlength=10)
    save_runs(tmp_path / "model.pt", runs, model, history, counts=counts, seconds=1.0, device="cpu")
    state = torch.load(tmp_path / "model.pt", weights_only=True)  # plain dicts and tensors only
    assert state["runs"][0] == {"dataset": "mnist", "setting": "faithful-imbalanced", "loss": "softmax", "tau": None,
                                "seed": 3}
    ids = runs_of_checkpoint(state, tmp_path / "model.pt")
    assert ids == [run.id for run in runs]

    job = TrainedJob(protocol="faithful", profile="step", imbalance_ratio=1.0, train_counts=counts, epochs=1,
                     train_loss=last_train_loss(state["history"]), train_seconds=1.0, device="cpu",
                     class_names=[str(c) for c in range(10)], settings={}, posthoc_taus=[0.5])
    rows, class_rows = job.rows(ids, predict_logits(model, images[:40], transform=normalise), labels[:40], "test")
    write_table(pd.DataFrame(rows)[list(METRICS_COLUMNS)], tmp_path / "metrics.parquet")
    write_table(pd.DataFrame(class_rows)[list(PER_CLASS_COLUMNS)], tmp_path / "per_class.parquet")
    table = read_table(tmp_path / "metrics.parquet")
    back = [RunId.from_row(row) for row in table.to_dict("records")]
    assert back == [ids[0], ids[0].posthoc(0.5), ids[1], ids[1].posthoc(0.5)]
    assert table["tau"].isna().tolist() == [True, False, True, False]
    per_class = read_table(tmp_path / "per_class.parquet")
    assert {RunId.from_row(row) for row in per_class.to_dict("records")} == set(back)

    old = {**state, "runs": ["softmax/tau1/seed3", "softmax/tau1/seed4"]}  # as written before run identities
    with pytest.raises(ValueError, match="older softmax-mi.*delete it and rerun"):
        runs_of_checkpoint(old, "model.pt")


@pytest.mark.slow
def test_classification_smoke_pipeline(smoke_run):
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
    for figure in ("per_class_accuracy.png", "accuracy_vs_imbalance.png", "convergence.png"):
        assert (folder / figure).stat().st_size > 10_000
    assert "faithful-imbalanced" in (folder / "metrics.json").read_text()
    # the standard protocol: one job per setting stacks every loss × τ × seed; its curve and logits
    standard = metrics[(metrics["setting"] == "step-r10") & (metrics["split"] == "test")]
    assert set(standard["loss"]) == {"logit_adjusted", "class_balanced", "ldam_drw"} and set(standard["seed"]) == {0, 1}
    curve = pd.read_parquet(folder / "convergence.parquet")
    assert list(curve.columns) == list(CURVE_COLUMNS) and curve["val_acc"].between(0, 1).all()
    assert len(curve) == len(standard) * curve["epoch"].nunique()
    logits = load_logits(smoke_run / "models/classification/mnist/step-r10/logits.npz")
    assert {(run.loss, run.seed) for run in logits.runs} == set(zip(standard["loss"], standard["seed"]))
    assert logits.test_logits.shape == (len(standard), len(logits.test_labels), 10)
    first = standard.set_index(["loss", "seed"]).loc[(logits.runs[0].loss, logits.runs[0].seed)]
    assert first["micro_acc"] == pytest.approx((logits.test_logits[0].argmax(-1) == logits.test_labels).mean())
