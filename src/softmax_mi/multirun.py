"""Train the independent runs of a sweep (losses × seeds) together, as one stacked LeNet.

Each run keeps exactly its own protocol: its own initialisation (a plain :class:`~softmax_mi.models.LeNet` built
under its ``init_seed``), its own data order (one permutation per epoch from a generator seeded with its
``order_seed``, consecutive minibatches of ``batch_size``, the last one short — what ``DataLoader(shuffle=True)``
does), its own loss, and SGD with momentum, which is element-wise, so one optimiser over the stacked parameters
equals one optimiser per run. The summed objective Σ_g loss_g has, for run g's parameters, exactly the gradient of
loss_g. Only the shape of the work changes: every layer is one grouped convolution or batched matmul for all runs.

All the losses of :data:`softmax_mi.losses.CLASSIFICATION_LOSSES` are cross-entropies of shifted, scaled, weighted
logits, so they are evaluated for every run at once:

    loss_g = Σ_i w_g[y_i]·CE(s_g·(f_i + a_g − Δ_g[y_i]·e_{y_i}), y_i) / Σ_i w_g[y_i]

(softmax: a = 0; PC-softmax: a = log π, which differs from −log PC_y by the constant log π_y only; logit-adjusted:
a = τ·log π; class-balanced: w = Cui et al. weights; LDAM-DRW: Δ = LDAM margins, w = 1 until ``drw_epoch`` then the
class-balanced weights). ``tests/test_classification.py`` checks this against the per-loss functions.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from softmax_mi.io import CheckpointError, atomic_path, load_checkpoint
from softmax_mi.losses import (
    CLASSIFICATION_LOSSES,
    class_balanced_weights,
    ldam_margins,
    log_prior_from_counts,
)
from softmax_mi.models.lenet import LeNet, StackedLeNet, normalise

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunSpec:
    """One training run of a sweep."""

    name: str
    loss: str
    init_seed: int
    order_seed: int
    tau: float = 1.0
    beta: float = 0.9999
    ldam_max_margin: float = 0.5
    ldam_scale: float = 1.0
    drw_epoch: int | None = None

    def __post_init__(self) -> None:
        if self.loss not in CLASSIFICATION_LOSSES:
            raise ValueError(f"unknown loss {self.loss!r}; use one of {', '.join(CLASSIFICATION_LOSSES)}")


@dataclass(frozen=True)
class SGDConfig:
    """The original MNIST protocol: SGD lr 0.01, momentum 0.5, batch 64, 8 epochs (docs/paper.md §3.1)."""

    epochs: int = 8
    batch_size: int = 64
    lr: float = 0.01
    momentum: float = 0.5


class StackedLoss:
    """The per-run losses of a sweep as one vectorised objective (see the module docstring)."""

    def __init__(self, runs: Sequence[RunSpec], counts: torch.Tensor, device: str | torch.device = "cpu"):
        counts = torch.as_tensor(counts)
        k = len(counts)
        log_prior = log_prior_from_counts(counts)
        shift, scale, margin, weight_early, weight_late, drw = [], [], [], [], [], []
        ones = torch.ones(k)
        for run in runs:
            cb = class_balanced_weights(counts, run.beta)
            shift.append({"pc_softmax": log_prior, "logit_adjusted": run.tau * log_prior}.get(run.loss, torch.zeros(k)))
            scale.append(run.ldam_scale if run.loss == "ldam_drw" else 1.0)
            margin.append(ldam_margins(counts, run.ldam_max_margin) if run.loss == "ldam_drw" else torch.zeros(k))
            weight_early.append(cb if run.loss == "class_balanced" else ones)
            weight_late.append(cb if run.loss in ("class_balanced", "ldam_drw") else ones)
            drw.append(run.drw_epoch if run.loss == "ldam_drw" and run.drw_epoch is not None else 10**9)
        self.shift = torch.stack(shift).to(device)  # G × K
        self.scale = torch.tensor(scale).to(device)  # G
        self.margin = torch.stack(margin).to(device)  # G × K
        self.weight_early = torch.stack(weight_early).to(device)  # G × K
        self.weight_late = torch.stack(weight_late).to(device)
        self.drw_epoch = torch.tensor(drw).to(device)  # G

    def per_run(self, logits: torch.Tensor, target: torch.Tensor, epoch: int) -> torch.Tensor:
        """logits G × B × K, target G × B → the G per-run losses."""
        g = torch.arange(len(logits), device=logits.device)[:, None]
        onehot = F.one_hot(target, logits.shape[-1]).to(logits)
        z = logits + self.shift[:, None, :] - onehot * self.margin[g, target][..., None]
        z = self.scale[:, None, None] * z
        nll = -torch.log_softmax(z, dim=-1).gather(-1, target[..., None])[..., 0]  # G × B
        late = (epoch >= self.drw_epoch)[:, None]
        w = torch.where(late, self.weight_late, self.weight_early)[g, target]  # G × B
        return (w * nll).sum(1) / w.sum(1)

    def __call__(self, logits: torch.Tensor, target: torch.Tensor, epoch: int) -> torch.Tensor:
        return self.per_run(logits, target, epoch).sum()


def init_models(runs: Sequence[RunSpec], n_classes: int = 10) -> StackedLeNet:
    """Each run's LeNet exactly as ``torch.manual_seed(init_seed); LeNet()`` would build it, then stacked."""
    models = []
    for run in runs:
        torch.manual_seed(run.init_seed)
        models.append(LeNet(n_classes))
    return StackedLeNet.from_models(models)


def _checkpoint_meta(runs: Sequence[RunSpec], config: SGDConfig, images: torch.Tensor, labels: torch.Tensor) -> dict:
    """What a checkpoint must match to be resumed: the runs (incl. LDAM-DRW's ``drw_epoch``, which depends on the
    epoch count), the optimiser settings and the training data. Not the epoch count itself: nothing before the last
    epoch depends on it otherwise, so a checkpoint of epoch e ≤ ``epochs`` continues exactly (see ``_resume``)."""
    settings = {k: v for k, v in asdict(config).items() if k != "epochs"}
    digest = hashlib.sha256(labels.cpu().numpy().tobytes() + images.cpu().numpy().tobytes()).hexdigest()[:16]
    return {"runs": [asdict(r) for r in runs], "config": settings, "n_train": len(labels), "data": digest}


_CHECKPOINT_KEYS = {"meta", "epoch", "model", "optimiser", "generators", "history"}


def _resumable(checkpoint: Path, meta: dict, epochs: int, device: str) -> dict | None:
    """The state in ``checkpoint`` if resuming from it gives exactly what an uninterrupted run of ``epochs`` gives;
    else ``None`` (the reason is logged, the caller trains from scratch and overwrites the file)."""
    if not checkpoint.is_file():
        return None
    try:
        state = load_checkpoint(checkpoint, map_location=device, fix="nothing: it is discarded")
    except CheckpointError as error:
        log.warning("discarding the resume state: %s; training from scratch", error)
        return None
    if not isinstance(state, dict) or not _CHECKPOINT_KEYS <= set(state):
        log.warning("discarding %s: not a resume state of this trainer; training from scratch", checkpoint)
        return None
    if state["meta"] != meta:
        log.warning("discarding %s: it was written for other runs, settings or data; training from scratch", checkpoint)
        return None
    if not 1 <= int(state["epoch"]) <= epochs:
        log.warning("discarding %s: it holds epoch %s, but %d epoch(s) are asked for (a model cannot be untrained); "
                    "training from scratch", checkpoint, state["epoch"], epochs)
        return None
    return state


def train_runs(
    images: torch.Tensor,
    labels: torch.Tensor,
    runs: Sequence[RunSpec],
    config: SGDConfig = SGDConfig(),
    *,
    n_classes: int = 10,
    device: str = "cpu",
    checkpoint: str | Path | None = None,
) -> tuple[StackedLeNet, list[dict]]:
    """Train every run on (``images`` uint8 N × 28 × 28, ``labels``); return the stacked model and per-epoch logs.

    With ``checkpoint``, the full state (weights, momentum buffers, data-order generators, history) is written
    atomically after every epoch, and a checkpoint found at the start is resumed from only when that gives exactly
    the uninterrupted result (same runs, settings and data, at most ``config.epochs`` epochs done); any other file
    there (stale, damaged, foreign) is discarded with a warning.
    """
    images = images.to(device)
    labels = labels.to(device)
    n = len(labels)
    counts = torch.bincount(labels.cpu(), minlength=n_classes)
    objective = StackedLoss(runs, counts, device)
    model = init_models(runs, n_classes).to(device)
    optimiser = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum)
    generators = [torch.Generator().manual_seed(run.order_seed) for run in runs]
    history: list[dict] = []
    start_epoch = 1
    meta = _checkpoint_meta(runs, config, images, labels)
    state = _resumable(Path(checkpoint), meta, config.epochs, device) if checkpoint is not None else None
    if state is not None:
        model.load_state_dict(state["model"])
        optimiser.load_state_dict(state["optimiser"])
        for generator, gen_state in zip(generators, state["generators"]):
            generator.set_state(gen_state.cpu())
        history = list(state["history"])
        start_epoch = int(state["epoch"]) + 1
        log.info("resumed %s after epoch %d of %d", checkpoint, start_epoch - 1, config.epochs)
    for epoch in range(start_epoch, config.epochs + 1):
        started, cpu_started = time.perf_counter(), time.process_time()
        model.train()
        order = torch.stack([torch.randperm(n, generator=gen) for gen in generators]).to(device)  # G × N
        total = torch.zeros(len(runs), device=device, dtype=torch.float64)
        for begin in range(0, n, config.batch_size):
            index = order[:, begin : begin + config.batch_size]  # G × b
            x = normalise(images[index])  # G × b × 28 × 28
            y = labels[index]
            losses = objective.per_run(model(x), y, epoch)
            optimiser.zero_grad(set_to_none=True)
            losses.sum().backward()
            optimiser.step()
            total += losses.detach().double() * index.shape[1]
        seconds = time.perf_counter() - started
        history += [
            {"run": run.name, "epoch": epoch, "train_loss": float(total[g] / n), "seconds": seconds}
            for g, run in enumerate(runs)
        ]
        log.info("epoch %d/%d in %.1f s (%.1f s CPU); mean train loss %.4f", epoch, config.epochs, seconds,
                 time.process_time() - cpu_started, float(total.mean() / n))
        if checkpoint is not None:
            state = {
                "meta": meta,
                "epoch": epoch,
                "model": model.state_dict(),
                "optimiser": optimiser.state_dict(),
                "generators": [gen.get_state() for gen in generators],
                "history": history,
            }
            with atomic_path(checkpoint) as tmp:
                torch.save(state, tmp)
    model.eval()
    return model, history


@torch.no_grad()
def predict_logits(model: StackedLeNet, images: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Every run's logits on the same images: G × N × K (float32, on the images' device)."""
    model.eval()
    device = next(model.parameters()).device
    parts = []
    for begin in range(0, len(images), batch_size):
        x = normalise(images[begin : begin + batch_size].to(device))
        parts.append(model(x[None].expand(model.n_models, *x.shape)))
    return torch.cat(parts, dim=1)
