"""Train the independent runs of a sweep (losses × τ × seeds) together, as one stacked model: G LeNets on MNIST
(docs/paper.md §3.1) or G linear heads on cached CUB features (§3.2), with one trainer, :func:`train_stacked`.

Each run keeps exactly its own protocol: its own initialisation (a plain :class:`~softmax_mi.models.LeNet` built
under its ``init_seed``, or a head initialised as ``nn.Linear`` from it), its own data order (one permutation per
epoch from a generator seeded with its ``order_seed``, consecutive minibatches of ``batch_size``, the last one
short — what ``DataLoader(shuffle=True)`` does), its own loss, and SGD with momentum and weight decay, which are
element-wise, so one optimiser over the stacked parameters equals one optimiser per run. The summed objective
Σ_g loss_g has, for run g's parameters, exactly the gradient of loss_g. Only the shape of the work changes: every
layer is one grouped convolution or batched matmul for all runs. Float rounding does depend on that shape: a run's
numbers repeat exactly for the same stack, but move within float noise, which training amplifies to a few hundredths
of a point of accuracy, when the number of runs stacked with it changes (MNIST's faithful balanced control, seed 0
alone vs. stacked with seed 1: macro accuracy 97.77 vs. 97.80 % for softmax).

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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from softmax_mi.classification import RunId, default_drw_epoch, setting_seed
from softmax_mi.io import CheckpointError, atomic_path, load_checkpoint
from softmax_mi.losses import (
    CLASSIFICATION_LOSSES,
    class_balanced_weights,
    ldam_margins,
    log_prior_from_counts,
)
from softmax_mi.models.lenet import LeNet, StackedLeNet

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunSpec:
    """One training run of a sweep: its identity and everything its training depends on."""

    id: RunId
    init_seed: int
    order_seed: int
    beta: float = 0.9999
    ldam_max_margin: float = 0.5
    ldam_scale: float = 1.0
    drw_epoch: int | None = None

    def __post_init__(self) -> None:
        if self.loss not in CLASSIFICATION_LOSSES:
            raise ValueError(f"unknown loss {self.loss!r}; use one of {', '.join(CLASSIFICATION_LOSSES)}")

    @property
    def loss(self) -> str:
        return self.id.loss

    @property
    def tau(self) -> float | None:
        return self.id.tau


def run_specs(*, dataset: str, setting: str, loss: str, seeds: Sequence[int], options: dict, epochs: int,
              drw_epoch: int | None = None) -> list[RunSpec]:
    """The runs of one training job: every (τ, seed) of ``loss``. ``options``: the loss options of params.yaml
    (``logit_adjusted.taus``, ``class_balanced.beta``, ``ldam_drw.{max_margin, scale}``); ``drw_epoch`` (LDAM-DRW)
    defaults to the last quarter of ``epochs``. Init / order seeds depend on (seed, dataset, setting), not on the
    loss (a paired comparison)."""
    taus = options.get("logit_adjusted", {}).get("taus", [1.0]) if loss == "logit_adjusted" else [None]
    ldam = options.get("ldam_drw", {})
    return [
        RunSpec(
            id=RunId(dataset, setting, loss, None if tau is None else float(tau), seed),
            init_seed=setting_seed(seed, "init", dataset, setting),
            order_seed=setting_seed(seed, "order", dataset, setting),
            beta=float(options.get("class_balanced", {}).get("beta", 0.9999)),
            ldam_max_margin=float(ldam.get("max_margin", 0.5)),
            ldam_scale=float(ldam.get("scale", 1.0)),
            drw_epoch=default_drw_epoch(epochs) if drw_epoch is None else int(drw_epoch),
        )
        for tau in taus
        for seed in seeds
    ]


@dataclass(frozen=True)
class SGDConfig:
    """SGD with momentum, L2 weight decay on the weights (never the biases, as TF-slim's ``weights_regularizer``)
    and a staircase decay of the learning rate every ``lr_decay_epochs`` epochs (``None``: constant).

    The defaults are the original MNIST protocol: lr 0.01, momentum 0.5, batch 64, 8 epochs (docs/paper.md §3.1);
    :data:`HEAD_RECIPE` is the original CUB head's (§3.2)."""

    epochs: int = 8
    batch_size: int = 64
    lr: float = 0.01
    momentum: float = 0.5
    weight_decay: float = 0.0
    lr_decay_epochs: int | None = None
    lr_decay_factor: float = 0.1
    loss_lr_scale: Mapping[str, float] = field(default_factory=dict)
    """Per loss (e.g. ``{"class_balanced": 0.5}``): that loss's runs take their gradient × this factor, which is
    exactly their learning rate × the factor when ``weight_decay`` is 0 (SGD with momentum is linear in the
    gradient); the runs of a stack share one optimiser, so a per-run lr is set this way."""

    def lr_at(self, epoch: int) -> float:
        """The learning rate of ``epoch`` (counted from 1)."""
        if self.lr_decay_epochs is None:
            return self.lr
        return self.lr * self.lr_decay_factor ** ((epoch - 1) // self.lr_decay_epochs)


HEAD_RECIPE = SGDConfig(epochs=30, momentum=0.9, weight_decay=4e-5, lr_decay_epochs=10, lr_decay_factor=0.1)
"""The original CUB head recipe (docs/paper.md §3.2); the epochs come from params (B9)."""


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
            shift.append(log_prior if run.loss == "pc_softmax" else run.tau * log_prior if run.loss == "logit_adjusted"
                         else torch.zeros(k))
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


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """Weight decay on the weights only, never on the biases (parameters whose name ends in ``bias``)."""
    named = list(model.named_parameters())
    return [
        {"params": [p for name, p in named if not name.endswith("bias")], "weight_decay": weight_decay},
        {"params": [p for name, p in named if name.endswith("bias")], "weight_decay": 0.0},
    ]


def _checkpoint_meta(runs: Sequence[RunSpec], config: SGDConfig, inputs: torch.Tensor, labels: torch.Tensor) -> dict:
    """What a checkpoint must match to be resumed: the runs (incl. LDAM-DRW's ``drw_epoch``, which depends on the
    epoch count), the optimiser settings and the training data. Not the epoch count itself: nothing before the last
    epoch depends on it otherwise, so a checkpoint of epoch e ≤ ``epochs`` continues exactly (see ``_resume``)."""
    settings = {k: v for k, v in asdict(config).items() if k != "epochs"}
    digest = hashlib.sha256(labels.cpu().numpy().tobytes() + inputs.cpu().numpy().tobytes()).hexdigest()[:16]
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


def train_stacked(
    model: torch.nn.Module,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    runs: Sequence[RunSpec],
    config: SGDConfig,
    *,
    n_classes: int,
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    device: str = "cpu",
    checkpoint: str | Path | None = None,
    validation: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> list[dict]:
    """Train the G runs of ``model`` (G stacked models: input G × B × …, output logits G × B × K) on (``inputs``,
    ``labels``), each on its own minibatches; return the per-epoch, per-run log. ``transform`` maps a batch of
    ``inputs`` to the model's input (e.g. :func:`~softmax_mi.models.lenet.normalise` for uint8 images). The model is
    trained in place (moved to ``device``) and left in eval mode.

    With ``checkpoint``, the full state (weights, momentum buffers, data-order generators, history) is written
    atomically after every epoch, and a checkpoint found at the start is resumed from only when that gives exactly
    the uninterrupted result (same runs, settings and data, at most ``config.epochs`` epochs done); any other file
    there (stale, damaged, foreign) is discarded with a warning.

    With ``validation`` (inputs, labels), each run's accuracy on it after every epoch is logged too (``val_acc``,
    fraction 0–1): the learning curve that shows whether training has converged. It changes nothing in training.
    """
    inputs, labels = inputs.to(device), labels.to(device)
    n = len(labels)
    objective = StackedLoss(runs, torch.bincount(labels.cpu(), minlength=n_classes), device)
    lr_scale = torch.tensor([float(config.loss_lr_scale.get(run.loss, 1.0)) for run in runs], device=device)
    model.to(device)
    optimiser = torch.optim.SGD(param_groups(model, config.weight_decay), lr=config.lr, momentum=config.momentum)
    generators = [torch.Generator().manual_seed(run.order_seed) for run in runs]
    history: list[dict] = []
    start_epoch = 1
    if checkpoint is not None:
        meta = _checkpoint_meta(runs, config, inputs, labels)
        state = _resumable(Path(checkpoint), meta, config.epochs, device)
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
        for group in optimiser.param_groups:
            group["lr"] = config.lr_at(epoch)
        order = torch.stack([torch.randperm(n, generator=gen) for gen in generators]).to(device)  # G × N
        total = torch.zeros(len(runs), device=device, dtype=torch.float64)
        for begin in range(0, n, config.batch_size):
            index = order[:, begin : begin + config.batch_size]  # G × b: each run its own minibatch
            x = inputs[index] if transform is None else transform(inputs[index])
            losses = objective.per_run(model(x), labels[index], epoch)
            optimiser.zero_grad(set_to_none=True)
            (losses * lr_scale).sum().backward()  # Σ_g c_g·loss_g: run g's parameters get c_g × the gradient of loss_g
            optimiser.step()
            total += losses.detach().double() * index.shape[1]
        seconds = time.perf_counter() - started
        entries = [
            {"run": run.id.as_dict(), "epoch": epoch, "train_loss": float(total[g] / n), "lr": config.lr_at(epoch),
             "seconds": seconds}
            for g, run in enumerate(runs)
        ]
        if validation is not None:
            for entry, accuracy in zip(entries, stacked_accuracy(model, *validation, transform=transform)):
                entry["val_acc"] = accuracy
        history += entries
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
    return history


def save_runs(path: str | Path, runs: Sequence[RunSpec], model: torch.nn.Module, history: list[dict], *,
              counts: torch.Tensor, seconds: float, device: str, **extra) -> None:
    """Write a trained job atomically, loadable with ``weights_only=True``: each run's identity as a plain dict
    (``runs``, read back with :func:`softmax_mi.classification.runs_of_checkpoint`), the stacked weights, the
    training log, the training class counts and ``extra`` entries."""
    state = {
        "runs": [run.id.as_dict() for run in runs],
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "history": history,
        "seconds": seconds,
        "device": device,
        "counts": counts,
        **extra,
    }
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def last_train_loss(history: Sequence[dict]) -> dict[RunId, float]:
    """Each run's training objective over the last epoch of a :func:`train_stacked` log."""
    last = max(h["epoch"] for h in history)
    return {RunId.from_dict(h["run"]): h["train_loss"] for h in history if h["epoch"] == last}


def stacked_accuracy(model: torch.nn.Module, inputs: torch.Tensor, labels: torch.Tensor, *,
                     transform: Callable[[torch.Tensor], torch.Tensor] | None = None) -> list[float]:
    """Each stacked run's accuracy (fraction 0–1) on the same (``inputs``, ``labels``); leaves ``model`` in eval
    mode."""
    logits = predict_logits(model, inputs, transform=transform, batch_size=EVAL_BATCH)
    return (logits.argmax(-1) == labels.to(logits.device)).double().mean(1).tolist()


EVAL_BATCH = 64
"""Images per forward pass of :func:`predict_logits` where the caller chooses (the validation curve, the standard
protocol's evaluation): a G-run LeNet at 64 images a pass costs ≈ 40 % less CPU than at 1,000 (cache-sized)."""


@torch.no_grad()
def predict_logits(model: torch.nn.Module, inputs: torch.Tensor, *,
                   transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
                   batch_size: int = 1000) -> torch.Tensor:
    """Every run's logits on the same inputs: G × N × K (float32, on the model's device); ``model`` has
    ``n_models`` (G) stacked runs."""
    model.eval()
    device = next(model.parameters()).device
    parts = []
    for begin in range(0, len(inputs), batch_size):
        x = inputs[begin : begin + batch_size].to(device)
        x = x if transform is None else transform(x)
        parts.append(model(x[None].expand(model.n_models, *x.shape)))  # every run sees the same inputs
    return torch.cat(parts, dim=1)
