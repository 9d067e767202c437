"""The WSOL library on its own, without the pipeline: the training loop (softmax_mi.wsol) and the evaluation loop
(softmax_mi.localisation.evaluate) on hand-made tiny datasets."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from softmax_mi.data.wsol import WSOLSplit
from softmax_mi.localisation import maxboxacc, sweep, threshold_grid
from softmax_mi.localisation.evaluate import WSOLEvalConfig, evaluate_wsol, maps_with_boxes
from softmax_mi.models import GapCNN
from softmax_mi.wsol import InputPipeline, WSOLTrainConfig, build_optimiser, train_wsol

WIDTHS = (4, 8, 8, 8)


def tiny_split(n: int, *, seed: int = 0, size: int = 16) -> WSOLSplit:
    """Grey images: a bright square (class 0) or a dim one (class 1) on black; the box is the square."""
    rng = np.random.default_rng(seed)
    images = np.zeros((n, size, size), np.uint8)
    labels = np.arange(n) % 2
    boxes = np.zeros((n, 4), np.int64)
    for i in range(n):
        x0, y0 = (int(v) for v in rng.integers(0, size - 6, 2))
        images[i, y0 : y0 + 6, x0 : x0 + 6] = 250 if labels[i] == 0 else 120
        boxes[i] = (x0, y0, x0 + 6, y0 + 6)
    return WSOLSplit(images, labels.astype(np.int64), boxes)


def config(**changes) -> WSOLTrainConfig:
    values = dict(epochs=1, batch_size=2, lr=0.01, weight_decay=0.0, eval_batch_size=2)
    return WSOLTrainConfig(**{**values, **changes})


def _train(seed: int, cfg: WSOLTrainConfig, n: int = 2):
    torch.manual_seed(123)  # the model's initial weights
    model = GapCNN(2, widths=WIDTHS)
    result = train_wsol(model, tiny_split(n), tiny_split(n, seed=1), InputPipeline(1, "gap_cnn", None, "cpu"), cfg,
                        seed=seed)
    return model, result


@pytest.mark.parametrize("optimizer", ["adamw", "sgd"])
def test_one_epoch_on_two_images_is_deterministic(optimizer):
    cfg = config(optimizer=optimizer, hflip=True, batch_size=1)
    _, first = _train(7, cfg)
    _, again = _train(7, cfg)
    assert [row["epoch"] for row in first.history] == [1] and first.best_epoch == 1
    assert first.history == again.history and first.best_val_acc == again.best_val_acc
    assert first.best_state.keys() == again.best_state.keys()
    assert all(torch.equal(first.best_state[k], again.best_state[k]) for k in first.best_state)
    assert all(v.device.type == "cpu" for v in first.best_state.values())


def test_the_first_best_epoch_is_kept():
    # lr = 0: the weights never move, every epoch has the same val accuracy, so epoch 1 (the first best) is kept
    model, result = _train(0, config(epochs=3, lr=0.0))
    assert result.best_epoch == 1 and len(result.history) == 3
    assert len({row["val_fullsup_acc"] for row in result.history}) == 1
    torch.manual_seed(123)
    initial = dict(GapCNN(2, widths=WIDTHS).named_parameters())  # (batch-norm statistics do move in training)
    assert all(torch.equal(result.best_state[k], initial[k].detach()) for k in initial)


def test_train_config_from_params_is_strict():
    cfg = WSOLTrainConfig.from_params({"epochs": 2, "batch_size": 4, "lr": 0.1, "weight_decay": 0.0,
                                       "eval_batch_size": 8, "optimizer": "sgd"})
    assert cfg.optimizer == "sgd" and cfg.momentum == 0.9 and not cfg.hflip
    with pytest.raises(ValueError, match="unknown setting.*lr_decay"):
        WSOLTrainConfig.from_params({"epochs": 2, "batch_size": 4, "lr": 0.1, "weight_decay": 0.0,
                                     "eval_batch_size": 8, "lr_decay": 0.5})
    with pytest.raises(ValueError, match="optimizer"):
        config(optimizer="adam")


class TwoPartNet(torch.nn.Module):
    """A body, then the classifier part (the layer feeding GAP and the fc), as in VGG / ResNet."""

    def __init__(self):
        super().__init__()
        self.body = torch.nn.Conv2d(1, 4, 3)
        self.cam_layer = torch.nn.Conv2d(4, 4, 3)
        self.fc = torch.nn.Linear(4, 2)


def test_optimiser_gives_the_classifier_part_its_own_lr():
    model = TwoPartNet()
    optimiser, schedule = build_optimiser(model, config(optimizer="sgd", head_lr_ratio=10, step_epochs=2), 3)
    head = {id(p) for module in (model.cam_layer, model.fc) for p in module.parameters()}
    lrs = {id(p): group["lr"] for group in optimiser.param_groups for p in group["params"]}
    assert sorted({lrs[i] for i in head}) == [pytest.approx(0.1)]
    assert {lr for i, lr in lrs.items() if i not in head} == {0.01}
    assert isinstance(schedule, torch.optim.lr_scheduler.StepLR) and schedule.step_size == 6
    _, one_cycle = build_optimiser(model, config(epochs=4), 5)
    assert isinstance(one_cycle, torch.optim.lr_scheduler.OneCycleLR) and one_cycle.total_steps == 20


def test_evaluate_wsol_chooses_tau_on_val_fullsup_and_tags_every_row():
    torch.manual_seed(0)
    model = GapCNN(2, widths=WIDTHS).eval()
    to_input = InputPipeline(1, "gap_cnn", None, "cpu")
    val, test = tiny_split(6, seed=2), tiny_split(4, seed=3)
    cfg = WSOLEvalConfig(methods=["cam", "infocam"], threshold_step=0.25, batch_size=4)
    metrics, curves = evaluate_wsol(model, [("val_fullsup", val), ("test", test)], to_input, cfg,
                                    tags={"dataset": "tiny", "seed": 5})
    assert list(metrics.columns[:2]) == ["dataset", "seed"] and (metrics["seed"] == 5).all()
    assert set(metrics["method"]) == {"classifier", "cam", "infocam", "centre_box"}
    assert set(curves["boxes"]) == {"largest", "all"} and len(curves) % 4 == 0
    # the V1 τ of cam is the one maxboxacc picks from cam's val_fullsup sweep, and it is shared by both splits
    _, maps, _ = maps_with_boxes(model, val, to_input, {"cam": 0.0}, region_k=3)
    expected = maxboxacc(sweep(maps["cam"], threshold_grid(0.25), val.boxes).largest_iou, threshold_grid(0.25))
    v1 = metrics[(metrics["protocol"] == "maxboxacc") & (metrics["method"] == "cam")]
    assert set(v1["threshold"]) == {expected.chosen_threshold} and set(v1["split"]) == {"val_fullsup", "test"}
    v2_mean = metrics[(metrics["metric"] == "maxboxacc_v2")]
    assert v2_mean["threshold"].map(math.isnan).all()
    with pytest.raises(ValueError, match="val_fullsup"):
        evaluate_wsol(model, [("test", test)], to_input, cfg)


def test_maps_with_boxes_boxes_the_largest_component_at_each_tau():
    torch.manual_seed(0)
    model = GapCNN(2, widths=WIDTHS).eval()
    split = tiny_split(3)
    predicted, maps, boxes = maps_with_boxes(model, split, InputPipeline(1, "gap_cnn", None, "cpu"),
                                             {"cam": 0.3, "infocam": 0.6}, region_k=3)
    assert predicted.shape == (3,) and set(maps) == set(boxes) == {"cam", "infocam"}
    assert maps["cam"].shape == (3, 16, 16) and boxes["infocam"].shape == (3, 4)
    np.testing.assert_array_equal(boxes["cam"], sweep(maps["cam"], [0.3], split.boxes).largest_box[:, 0])
