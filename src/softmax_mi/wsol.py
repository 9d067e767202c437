"""Training a GAP classifier for weakly-supervised object localisation (WSOL), on image-level labels only.

One loop, readable top to bottom (:func:`train_wsol`): each epoch draws one permutation of the training images from
the run's generator, feeds batches through the :class:`InputPipeline` (uint8 → normalised float, per batch), mirrors a
random half of each batch when ``hflip`` is set (:func:`random_flip`, same generator), takes one optimiser and one
scheduler step per batch, then measures top-1 accuracy on the selection split (``val_fullsup``); the state of the
epoch with the best accuracy is kept (first best on ties; the checkpoint is never chosen on test, docs/paper.md B6).

Optimisers (:func:`build_optimiser`): AdamW with a one-cycle schedule (the small CPU default), or the original's SGD
with Nesterov momentum, the classifier part at ``head_lr_ratio`` × lr and × 0.1 every ``step_epochs`` epochs
(docs/paper.md §4.3). Usable on any model with ``cam_layer`` and ``fc`` attributes (:mod:`softmax_mi.models`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from softmax_mi.data.wsol import WSOLSplit
from softmax_mi.models.backbones import input_channels
from softmax_mi.runtime import progress

log = logging.getLogger(__name__)

# Grey canvases are centred on 0.5 (no pretrained statistics apply); RGB photos use the ImageNet statistics that
# the pretrained VGG / ResNet weights expect (the original's transforms).
GREY_MEAN_STD = ((0.5,), (0.5,))
IMAGENET_MEAN_STD = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
OPTIMIZERS = ("adamw", "sgd")


# ------------------------------------------------------------------------------------------------------------- input
def image_channels(images: np.ndarray) -> int:
    """1 for grey images ``[N, H, W]``, else the channel count of ``[N, C, H, W]``."""
    return 1 if images.ndim == 3 else images.shape[1]


class InputPipeline:
    """uint8 image batches → the network's float input, on the device (one conversion per batch, so a whole
    dataset never sits in memory as float)."""

    def __init__(self, channels: int, backbone: str, input_size: int | None, device: str):
        self.expand = 3 if input_channels(backbone) == 3 and channels == 1 else None
        mean, std = GREY_MEAN_STD if channels == 1 else IMAGENET_MEAN_STD
        self.mean = torch.tensor(mean, device=device).view(1, -1, 1, 1)
        self.std = torch.tensor(std, device=device).view(1, -1, 1, 1)
        self.input_size, self.device = input_size, device

    def __call__(self, images: np.ndarray | torch.Tensor) -> torch.Tensor:
        x = torch.as_tensor(images).to(self.device)
        x = x.unsqueeze(1) if x.ndim == 3 else x
        x = (x.float().div_(255.0) - self.mean) / self.std
        if self.expand:
            x = x.expand(-1, self.expand, -1, -1)
        if self.input_size and self.input_size != x.shape[-1]:
            x = F.interpolate(x, size=(self.input_size, self.input_size), mode="bilinear", align_corners=False)
        return x


def random_flip(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Mirror a random half of the batch left-right (the original's RandomHorizontalFlip, batched)."""
    flip = torch.rand(len(images), generator=generator).lt(0.5).to(images.device)
    return torch.where(flip.view(-1, *[1] * (images.ndim - 1)), images.flip(-1), images)


# ---------------------------------------------------------------------------------------------------------- training
@dataclass(frozen=True)
class WSOLTrainConfig:
    """The ``localisation.training`` section of params.yaml (one field per key; docs/paper.md §4.3)."""

    epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    eval_batch_size: int  # images per forward pass when measuring val_fullsup accuracy
    optimizer: str = "adamw"  # adamw (one-cycle) | sgd (Nesterov momentum, StepLR)
    momentum: float = 0.9  # sgd only
    nesterov: bool = True  # sgd only
    head_lr_ratio: float = 1  # lr multiplier of the layer feeding GAP + the fc
    step_epochs: int = 60  # sgd only: lr × 0.1 every this many epochs
    hflip: bool = False

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"training.optimizer must be one of {OPTIMIZERS}, not {self.optimizer!r}")

    @classmethod
    def from_params(cls, training: Mapping[str, Any]) -> WSOLTrainConfig:
        """From the ``training`` mapping of the WSOL settings; an unknown key is an error that names it."""
        unknown = sorted(set(training) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(f"localisation.training: unknown setting(s) {', '.join(unknown)}")
        return cls(**training)


def build_optimiser(model: nn.Module, config: WSOLTrainConfig, steps_per_epoch: int):
    """AdamW + one-cycle (the small CPU default), or the original's SGD (Nesterov momentum) with the classifier
    part — the layer feeding GAP and the fc, i.e. VGG conv6 + fc, ResNet layer4 + fc — at ``head_lr_ratio`` × lr
    and a ×0.1 step every ``step_epochs`` epochs. Returns (optimiser, scheduler); the scheduler steps per batch."""
    lr = config.lr
    head = {id(p) for module in (model.cam_layer, model.fc) for p in module.parameters()}
    groups = [
        {"params": [p for p in model.parameters() if id(p) not in head], "lr": lr},
        {"params": [p for p in model.parameters() if id(p) in head], "lr": lr * config.head_lr_ratio},
    ]
    groups = [g for g in groups if g["params"]]
    if config.optimizer == "sgd":
        optimiser = torch.optim.SGD(groups, lr=lr, momentum=config.momentum, nesterov=config.nesterov,
                                    weight_decay=config.weight_decay)
        step = max(config.step_epochs * steps_per_epoch, 1)
        return optimiser, torch.optim.lr_scheduler.StepLR(optimiser, step_size=step, gamma=0.1)
    optimiser = torch.optim.AdamW(groups, lr=lr, weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimiser, max_lr=[g["lr"] for g in groups], total_steps=config.epochs * steps_per_epoch
    )
    return optimiser, schedule


@torch.no_grad()
def accuracy(model: nn.Module, split: WSOLSplit, to_input: InputPipeline, batch_size: int) -> float:
    """Top-1 accuracy of ``model`` (put in eval mode) on ``split``."""
    model.eval()
    hits = 0
    for start in range(0, len(split), batch_size):
        labels = torch.from_numpy(split.labels[start : start + batch_size]).to(to_input.device)
        hits += int((model(to_input(split.images[start : start + batch_size])).argmax(1) == labels).sum())
    return hits / max(len(split), 1)


@dataclass
class WSOLTrainResult:
    """What :func:`train_wsol` returns: the kept weights (on the CPU) and the per-epoch history."""

    best_state: dict[str, torch.Tensor] | None  # None only when no epoch ran
    best_epoch: int | None
    best_val_acc: float  # val_fullsup accuracy of best_state (-1 when no epoch ran)
    history: list[dict] = field(default_factory=list)  # {"epoch", "train_loss", "val_fullsup_acc"} per epoch
    seconds: float = 0.0


def train_wsol(model: nn.Module, train: WSOLSplit, val: WSOLSplit, to_input: InputPipeline,
               config: WSOLTrainConfig, *, seed: int) -> WSOLTrainResult:
    """Train ``model`` (already on ``to_input.device``) with cross-entropy on ``train``'s labels; keep the epoch with
    the best ``val`` accuracy. ``seed`` drives the batch order and the flips; the model's own randomness (dropout,
    ADL) draws from torch's global generator, which the caller seeds."""
    device = to_input.device
    images = torch.from_numpy(train.images).to(device)  # uint8: converted per batch
    labels = torch.from_numpy(train.labels).to(device)
    batch = min(config.batch_size, len(labels))
    steps_per_epoch = len(labels) // batch
    optimiser, schedule = build_optimiser(model, config, steps_per_epoch)
    generator = torch.Generator().manual_seed(seed)
    history, best, best_state = [], -1.0, None
    started = time.perf_counter()
    for epoch in progress(range(1, config.epochs + 1), desc="epochs"):
        model.train()
        order = torch.randperm(len(labels), generator=generator).to(device)
        total = 0.0
        for step in range(steps_per_epoch):
            index = order[step * batch : (step + 1) * batch]
            x = to_input(images[index])
            if config.hflip:
                x = random_flip(x, generator)
            loss = F.cross_entropy(model(x), labels[index])
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            schedule.step()
            total += float(loss.detach())
        val_acc = accuracy(model, val, to_input, config.eval_batch_size)
        history.append({"epoch": epoch, "train_loss": total / steps_per_epoch, "val_fullsup_acc": val_acc})
        log.info("epoch %d: train loss %.4f, val_fullsup acc %.4f", epoch, total / steps_per_epoch, val_acc)
        if val_acc > best:
            best, best_state = val_acc, {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    best_epoch = max(history, key=lambda row: (row["val_fullsup_acc"], -row["epoch"]))["epoch"] if history else None
    return WSOLTrainResult(best_state=best_state, best_epoch=best_epoch, best_val_acc=best, history=history,
                           seconds=time.perf_counter() - started)
