"""A small minibatch trainer shared by every neural estimator and classifier.

The data stays as tensors on the training device; each epoch draws one seeded permutation. Model selection
uses a held-out validation split carved from the training data (never the test split): the weights of the
epoch with the lowest validation objective are kept, or the last epoch's with ``select="last"``.

How long training runs (:class:`TrainConfig`, :func:`epoch_floor`) adapts to the data:

- **a floor that scales with the data**: at least ``epochs`` epochs, raised until they take at least ``min_steps``
  optimiser steps — a small sample gets more passes, so that it is not under-trained (with 10,000 rows and batches
  of 500, 8 epochs are only 144 steps);
- **early stopping on the validation split**: with ``patience`` set, training goes on past the floor while the
  validation objective improves, and stops at the first epoch ≥ the floor that comes ``patience`` or more epochs
  after the best one (an improvement counts only if it exceeds ``min_delta``), so a large sample that has
  converged stops at its floor instead of running a fixed count;
- **a cap**: ``min_steps`` and early stopping never take training past ``max_epochs`` epochs (``epochs`` itself is
  always run in full).

The defaults are the pipeline's (params.yaml ``synthetic.neural``): at least 540 steps, patience 2 epochs, at most
100 epochs. With ``min_steps=0`` and ``patience=None`` training runs exactly ``epochs`` epochs (a fixed schedule).
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from softmax_mi.samples import LabeledSample
from softmax_mi.runtime import progress

log = logging.getLogger(__name__)

Objective = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]
"""(model, x, y) → scalar loss to minimise."""


@dataclass(frozen=True)
class TrainConfig:
    """Settings of :func:`train` (the module docstring explains the stopping rule).

    Attributes:
        epochs: the fewest epochs (exactly this many when ``min_steps`` is 0 and ``patience`` is None).
        batch_size: examples per optimiser step.
        lr: Adam's learning rate.
        val_fraction: share of the training data held out to select (and stop) on.
        select: ``best_val`` keeps the weights of the epoch with the lowest validation objective, ``last`` the last.
        min_steps: raise the fewest epochs until they take at least this many optimiser steps (0: no raise).
        max_epochs: the most epochs ``min_steps`` and early stopping may reach, never below ``epochs`` (None: no
            cap on the ``min_steps`` raise; required with ``patience``).
        patience: stop once this many epochs have passed since the best validation objective, at or after the
            floor (None: no early stopping, train exactly the floor).
        min_delta: the validation objective must drop by more than this to count as a new best for stopping.
        seed: seeds the validation split and the minibatch order.
        device: torch device to train on.
    """

    epochs: int = 1
    batch_size: int = 500
    lr: float = 1e-3
    val_fraction: float = 0.1
    select: str = "best_val"  # or "last"
    min_steps: int = 540
    max_epochs: int | None = 100
    patience: int | None = 2
    min_delta: float = 0.005
    seed: int = 0
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.select not in {"best_val", "last"}:
            raise ValueError(f"select must be 'best_val' or 'last', not {self.select!r}")
        for name, least in (("epochs", 1), ("batch_size", 1), ("min_steps", 0)):
            if getattr(self, name) < least:
                raise ValueError(f"{name} must be ≥ {least}, not {getattr(self, name)}")
        if self.max_epochs is not None and self.max_epochs < 1:
            raise ValueError(f"max_epochs must be ≥ 1 or None, not {self.max_epochs}")
        if self.patience is not None:
            if self.patience < 1:
                raise ValueError(f"patience must be ≥ 1 or None, not {self.patience}")
            if self.max_epochs is None:
                raise ValueError("patience needs max_epochs (the most epochs early stopping may run to)")
            if self.val_fraction == 0.0:
                raise ValueError("patience (early stopping) needs val_fraction > 0")
        if self.min_delta < 0:
            raise ValueError(f"min_delta must be ≥ 0, not {self.min_delta}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ValueError(f"val_fraction must lie in [0, 1), not {self.val_fraction}")
        if self.select == "best_val" and self.val_fraction == 0.0:
            raise ValueError("select='best_val' needs val_fraction > 0")


def build_seeded(factory: Callable[[], nn.Module], seed: int) -> nn.Module:
    """Build a model whose initial weights depend on ``seed`` alone, leaving the caller's global RNG untouched."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return factory()


def epoch_floor(config: TrainConfig, n_fit: int) -> int:
    """The fewest epochs :func:`train` runs on ``n_fit`` fitting examples: ``epochs``, raised until the epochs take
    at least ``min_steps`` optimiser steps, but not past ``max_epochs`` (an explicit ``epochs`` is always run).

    Example::

        epoch_floor(TrainConfig(epochs=3, min_steps=600, batch_size=500), 9000)    # 34: 18 steps an epoch
    """
    steps_per_epoch = max(1, math.ceil(n_fit / config.batch_size))
    raised = math.ceil(config.min_steps / steps_per_epoch)
    if config.max_epochs is not None:
        raised = min(raised, config.max_epochs)
    return max(config.epochs, raised)


@dataclass
class TrainResult:
    """What :func:`train` did: optimiser steps, the epoch whose weights were kept, per-epoch losses, and why it
    stopped (``floor``: the floor was reached with early stopping off; ``patience``: early stopping;
    ``max_epochs``: the cap)."""

    steps: int
    best_epoch: int
    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    epochs: int = 0
    stop_reason: str = ""


@torch.no_grad()
def evaluate_objective(model: nn.Module, objective: Objective, data: LabeledSample, batch_size: int = 8192) -> float:
    """Mean objective over ``data`` (batched only to bound memory)."""
    model.eval()
    total = 0.0
    for start in range(0, len(data), batch_size):
        x, y = data.x[start : start + batch_size], data.y[start : start + batch_size]
        total += float(objective(model, x, y)) * len(y)
    return total / max(len(data), 1)


def train(model: nn.Module, objective: Objective, data: LabeledSample, config: TrainConfig) -> TrainResult:
    """Minimise ``objective`` over minibatches of ``data``; returns the history, leaves the selected weights in."""
    generator = torch.Generator().manual_seed(config.seed)
    torch.manual_seed(config.seed)  # weight init of lazily built parts, dropout, ...
    data = data.to(config.device)
    if config.val_fraction > 0:
        fit_data, val_data = data.split(config.val_fraction, seed=config.seed)
    else:
        fit_data, val_data = data, None
    model.to(config.device)
    optimiser = torch.optim.Adam(model.parameters(), lr=config.lr)
    floor = epoch_floor(config, len(fit_data))
    last_epoch = floor if config.patience is None else max(floor, config.max_epochs)
    result = TrainResult(steps=0, best_epoch=last_epoch)
    best_state, best_val, stop_best_val, stop_best_epoch = None, float("inf"), float("inf"), 0
    for epoch in progress(range(1, last_epoch + 1), desc="epochs", leave=False):
        model.train()
        order = torch.randperm(len(fit_data), generator=generator).to(config.device)
        running = 0.0
        for start in range(0, len(order), config.batch_size):
            index = order[start : start + config.batch_size]
            loss = objective(model, fit_data.x[index], fit_data.y[index])
            optimiser.zero_grad(set_to_none=True)  # the original MI code forgot this (docs/paper.md B1)
            loss.backward()
            optimiser.step()
            running += float(loss.detach()) * len(index)
            result.steps += 1
        result.train_loss.append(running / len(fit_data))
        result.epochs = epoch
        if val_data is None:
            continue
        val_loss = evaluate_objective(model, objective, val_data)
        result.val_loss.append(val_loss)
        if config.select == "best_val" and val_loss < best_val:
            best_val, result.best_epoch = val_loss, epoch
            best_state = copy.deepcopy(model.state_dict())
        if val_loss < stop_best_val - config.min_delta:
            stop_best_val, stop_best_epoch = val_loss, epoch
        if config.patience is not None and epoch >= floor and epoch - stop_best_epoch >= config.patience:
            result.stop_reason = "patience"
            break
    result.stop_reason = result.stop_reason or ("floor" if config.patience is None else "max_epochs")
    if config.select == "last":
        result.best_epoch = result.epochs
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    log.info("trained %d steps in %d epochs (floor %d, stopped by %s); kept epoch %d (%s)", result.steps,
             result.epochs, floor, result.stop_reason, result.best_epoch, config.select)
    return result
