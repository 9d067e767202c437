"""softmax_mi.training's stopping rule: the floor that scales with the data, early stopping on the validation
split, the cap, and best-validation selection (scripted validation losses, a one-weight model: milliseconds)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from softmax_mi.samples import LabeledSample
from softmax_mi.training import TrainConfig, epoch_floor, train

DATA = LabeledSample(torch.zeros(100, 1), torch.zeros(100, dtype=torch.int64), 1)  # 90 fit + 10 validation rows


def scripted(val_losses: list[float]):
    """An objective whose training value moves the weight and whose validation values are ``val_losses`` in turn;
    each validation pass also records the weight it saw."""
    seen: list[float] = []

    def objective(model, x, y):
        if model.training:
            return (model.weight - 100.0).pow(2).sum()  # every step moves the weight: epochs are distinguishable
        seen.append(float(model.weight))
        return torch.tensor(val_losses[len(seen) - 1])

    return objective, seen


def config(**changes) -> TrainConfig:
    """A fixed one-epoch schedule (no floor raise, no early stopping) with ``changes``."""
    fixed = {"epochs": 1, "min_steps": 0, "patience": None, "max_epochs": None, "min_delta": 0.0}
    return TrainConfig(**{"batch_size": 30, "lr": 0.1, "val_fraction": 0.1, **fixed, **changes})


def test_the_floor_is_raised_to_min_steps_and_capped_by_max_epochs_but_never_below_epochs():
    assert epoch_floor(config(epochs=2), 90) == 2  # 3 steps an epoch, no raise
    assert epoch_floor(config(epochs=2, min_steps=20), 90) == 7  # ceil(20 / 3)
    assert epoch_floor(config(epochs=2, min_steps=20, max_epochs=5), 90) == 5
    assert epoch_floor(config(epochs=6, min_steps=20, max_epochs=5), 90) == 6  # an explicit epochs is run


def test_without_early_stopping_training_runs_exactly_the_floor():
    objective, _ = scripted([1.0] * 10)
    result = train(nn.Linear(1, 1), objective, DATA, config(epochs=2, min_steps=10))
    assert (result.epochs, result.steps, result.stop_reason) == (4, 12, "floor")


def test_early_stopping_waits_for_the_floor_then_patience_and_keeps_the_best_epoch():
    losses = [5.0, 4.0, 3.0, 2.9, 3.2, 2.0, 2.5, 2.4, 2.3, 2.2]  # best at 6, then no new best
    objective, seen = scripted(losses)
    model = nn.Linear(1, 1)
    result = train(model, objective, DATA, config(min_steps=9, patience=2, max_epochs=10))
    assert (result.epochs, result.best_epoch, result.stop_reason) == (8, 6, "patience")
    assert float(model.weight.detach()) == pytest.approx(seen[5])  # the weights of epoch 6
    objective, _ = scripted(losses)  # a floor past the best epoch: stops right at it
    assert train(nn.Linear(1, 1), objective, DATA, config(min_steps=27, patience=2, max_epochs=10)).epochs == 9


def test_min_delta_ignores_tiny_improvements_and_max_epochs_caps_the_run():
    objective, _ = scripted([3.0, 2.0, 1.999, 1.998, 1.997, 1.996])
    result = train(nn.Linear(1, 1), objective, DATA, config(patience=2, max_epochs=6, min_delta=0.01))
    assert (result.epochs, result.best_epoch) == (4, 4)  # stopped on patience; the selection still takes any drop
    objective, _ = scripted([3.0, 2.0, 1.0, 0.5])
    assert train(nn.Linear(1, 1), objective, DATA, config(patience=2, max_epochs=4)).stop_reason == "max_epochs"


@pytest.mark.parametrize("changes, message", [
    ({"patience": 2}, "patience needs max_epochs"),
    ({"patience": 2, "max_epochs": 5, "val_fraction": 0.0, "select": "last"}, "needs val_fraction > 0"),
    ({"min_steps": -1}, "min_steps must be ≥ 0"),
    ({"patience": 0, "max_epochs": 5}, "patience must be ≥ 1"),
])
def test_inconsistent_stopping_settings_are_refused(changes, message):
    with pytest.raises(ValueError, match=message):
        config(**changes)


def test_the_default_is_the_adaptive_rule_and_a_small_sample_gets_min_steps():
    default = TrainConfig()
    assert default.patience is not None and default.max_epochs is not None
    assert epoch_floor(default, 9000) * 18 >= default.min_steps  # 10,000 rows: 18 steps an epoch, not 8 epochs' 144
