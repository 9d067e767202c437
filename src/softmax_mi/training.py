"""A small minibatch trainer shared by every neural estimator and classifier.

The data stays as tensors on the training device; each epoch draws one seeded permutation. Model selection
uses a held-out validation split carved from the training data (never the test split): the weights of the
epoch with the lowest validation objective are kept, or the last epoch's with ``select="last"``.
"""

from __future__ import annotations

import copy
import logging
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
    epochs: int = 20
    batch_size: int = 500
    lr: float = 1e-3
    val_fraction: float = 0.1
    select: str = "best_val"  # or "last"
    seed: int = 0
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.select not in {"best_val", "last"}:
            raise ValueError(f"select must be 'best_val' or 'last', not {self.select!r}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ValueError(f"val_fraction must lie in [0, 1), not {self.val_fraction}")
        if self.select == "best_val" and self.val_fraction == 0.0:
            raise ValueError("select='best_val' needs val_fraction > 0")


def build_seeded(factory: Callable[[], nn.Module], seed: int) -> nn.Module:
    """Build a model whose initial weights depend on ``seed`` alone, leaving the caller's global RNG untouched."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return factory()


@dataclass
class TrainResult:
    steps: int
    best_epoch: int
    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)


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
    result = TrainResult(steps=0, best_epoch=config.epochs)
    best_state, best_val = None, float("inf")
    for epoch in progress(range(1, config.epochs + 1), desc="epochs", leave=False):
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
        if val_data is not None:
            val_loss = evaluate_objective(model, objective, val_data)
            result.val_loss.append(val_loss)
            if config.select == "best_val" and val_loss < best_val:
                best_val, result.best_epoch = val_loss, epoch
                best_state = copy.deepcopy(model.state_dict())
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    log.info("trained %d steps; kept epoch %d (%s)", result.steps, result.best_epoch, config.select)
    return result
