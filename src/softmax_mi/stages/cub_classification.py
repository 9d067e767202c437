"""PC-softmax on CUB-200-2011 (paper §3.2, E5): a linear head on frozen, cached backbone features.

features (once per backbone: every prepared image → one float32 vector) → head (one job per setting × loss: its
seeds and τs trained together as stacked linear heads, then evaluated) → rows in the MNIST tables
(results/classification/metrics.parquet, per_class.parquet) through the classification gather.

Settings
- ``imbalanced`` (protocol ``faithful``): the paper's split, column ``pc_split`` of the prepared table (3,997 train /
  1,996 test on the real data, 10 vs 30 training images per class and an equally imbalanced test set). Its test set
  is a 1,996-image subset: its accuracies are NOT comparable with published results on the full 5,794-image test
  set (docs/paper.md B8); they are their own setting.
- ``balanced`` (protocol ``standard``): the official split, ``official_split`` (5,994 / 5,794).

The original recipe (TF-slim, only the ``Logits`` scope trained) adapted: SGD momentum 0.9, lr 0.01 decayed
×0.1 (staircase) every ``lr_decay_epochs`` epochs, batch 64, L2 weight decay 4e-5 on the weights (not the bias, as
slim's ``weights_regularizer``); the number of epochs comes from params and the schedule from the actual training
set size (the original hard-coded 5,994 images, so on 3,997 it ran ≈ 45 epochs, B9); π is the training split's
class frequency (the original's prior file is missing, B10); log PC is f_y − logsumexp(f + log π) (B11). The test
split is read once, and selects nothing: the last epoch is reported, as in the original.

Differences from the original, by construction of cached features: no data augmentation (slim's random crop and
flip), no dropout before the logits, the backbone's batch norm in inference mode, and the backbone itself (see
:mod:`softmax_mi.models.feature_backbones`: the iNat Inception-V3 checkpoint is not obtainable).

Seeds: run ``seed`` draws its head initialisation and data order from seeds derived from (seed, "cub", setting),
not from the loss, so the losses of one seed start from the same head and see the same batches (paired comparison).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from softmax_mi.io import atomic_path, read_json, read_table, write_json, write_table
from softmax_mi.losses import log_prior_from_counts, posthoc_adjusted_logits
from softmax_mi.multirun import RunSpec, StackedLoss
from softmax_mi.provenance import provenance
from softmax_mi.runtime import progress, resolve_device
from softmax_mi.stages.classification import METRICS_COLUMNS, PER_CLASS_COLUMNS, classification_metrics, setting_seed

log = logging.getLogger(__name__)

DATASET = "cub"

# setting → (column of the prepared table, protocol, profile)
SETTINGS = {
    "imbalanced": ("pc_split", "faithful", "step"),
    "balanced": ("official_split", "standard", "balanced"),
}


# --------------------------------------------------------------------------------------------- features


def features(*, backbone: str, weights: str, image_size: int | None, batch_size: int, device: str, inputs: dict,
             outputs: dict) -> None:
    """Pooled features of every prepared image (row i of images.npy → row i of the output), computed once."""
    from softmax_mi.io import file_digest
    from softmax_mi.models.feature_backbones import FrozenBackbone

    device = resolve_device(device)
    images = np.load(inputs["images"], mmap_mode="r")
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"{inputs['images']}: expected uint8 [N, 3, S, S], got {images.dtype} {images.shape} "
                         "(fix: rerun the CUB preparation rule)")
    model = FrozenBackbone(backbone, weights, image_size).to(device)
    if device == "cuda":  # faster convolutions on tensor cores; float32 kept, so features match the CPU's closely
        model = model.to(memory_format=torch.channels_last)
    n = len(images)
    out = np.empty((n, model.feature_dim), dtype=np.float32)
    started = time.perf_counter()
    for begin in progress(range(0, n, batch_size), desc=f"{backbone} features", unit="batch"):
        batch = torch.from_numpy(np.ascontiguousarray(images[begin : begin + batch_size])).to(device)
        out[begin : begin + len(batch)] = model(batch).float().cpu().numpy()
    seconds = time.perf_counter() - started
    if not np.isfinite(out).all():
        raise FloatingPointError(f"{backbone}: non-finite features (weights {model.weights_path})")
    with atomic_path(outputs["features"]) as tmp, open(tmp, "wb") as handle:
        np.save(handle, out)
    write_json({
        "backbone": backbone,
        "weights": str(model.weights_path),
        "weights_sha256": file_digest(model.weights_path),
        "image_size": model.image_size,
        "source_image_size": int(images.shape[-1]),
        "n_images": n,
        "feature_dim": model.feature_dim,
        "seconds": seconds,
        "images_per_second": n / seconds if seconds > 0 else math.nan,
        "device": device,
        "torch": torch.__version__,
    }, outputs["info"])
    log.info("%s: %d images → %s in %.1f s (%.1f images/s on %s)", backbone, n, out.shape, seconds,
             n / max(seconds, 1e-9), device)


# --------------------------------------------------------------------------------------------- data


def setting_rows(table: pd.DataFrame, setting: str, role: str) -> tuple[np.ndarray, np.ndarray]:
    """(rows of images.npy, labels) of one role (train | test) of a setting, in table order."""
    if setting not in SETTINGS:
        raise ValueError(f"classification.cub.settings: unknown setting {setting!r}; use one of {', '.join(SETTINGS)}")
    column = SETTINGS[setting][0]
    if column not in table.columns:
        raise KeyError(f"prepared CUB table has no column {column!r} (fix: rerun the CUB preparation rule)")
    part = table[(table[column] == role).to_numpy()]
    return part["index"].to_numpy(np.int64, copy=True), part["label"].to_numpy(np.int64, copy=True)


def n_classes_of(table: pd.DataFrame) -> int:
    return int(table["label"].max()) + 1


def class_names(table: pd.DataFrame, k: int) -> list[str]:
    if "class_name" not in table.columns:
        return [str(c) for c in range(k)]
    names = table.drop_duplicates("label").set_index("label")["class_name"].astype(str)
    return [names.get(c, str(c)) for c in range(k)]


# --------------------------------------------------------------------------------------------- linear heads


@dataclass(frozen=True)
class HeadConfig:
    """The original's head recipe (docs/paper.md §3.2), epochs from params (B9)."""

    epochs: int = 30
    batch_size: int = 64
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 4e-5
    lr_decay_epochs: int = 10
    lr_decay_factor: float = 0.1

    def lr_at(self, epoch: int) -> float:
        """Staircase schedule; ``epoch`` counts from 1."""
        return self.lr * self.lr_decay_factor ** ((epoch - 1) // self.lr_decay_epochs)


def init_heads(runs: list[RunSpec], dim: int, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Each run's head initialised as ``nn.Linear(dim, k)`` does (U(±1/√dim)), from its own ``init_seed``.
    Returns weight G×D×K and bias G×K."""
    bound = 1.0 / math.sqrt(dim)
    weights, biases = [], []
    for run in runs:
        generator = torch.Generator().manual_seed(run.init_seed)
        weights.append((torch.rand(k, dim, generator=generator) * 2 - 1) * bound)
        biases.append((torch.rand(k, generator=generator) * 2 - 1) * bound)
    return torch.stack(weights).transpose(1, 2).contiguous(), torch.stack(biases)


def head_logits(weight: torch.Tensor, bias: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """x: G×B×D (each run its own rows) or B×D (shared) → G×B×K."""
    if x.ndim == 2:
        x = x.expand(len(weight), *x.shape)
    return torch.baddbmm(bias[:, None, :], x, weight)


def train_heads(features: torch.Tensor, labels: torch.Tensor, runs: list[RunSpec], config: HeadConfig, k: int,
                device: str = "cpu") -> tuple[torch.Tensor, torch.Tensor, list[dict]]:
    """Train every run's linear head on the same cached features; each keeps its own init, data order (one
    permutation per epoch, consecutive batches, the last one short) and loss. SGD with momentum and weight decay
    is element-wise, so one optimiser over the stacked heads equals one per run (see softmax_mi.multirun)."""
    features, labels = features.to(device), labels.to(device)
    n, dim = features.shape
    counts = torch.bincount(labels.cpu(), minlength=k)
    objective = StackedLoss(runs, counts, device)
    weight, bias = (t.to(device).requires_grad_() for t in init_heads(runs, dim, k))
    optimiser = torch.optim.SGD(
        [{"params": [weight], "weight_decay": config.weight_decay}, {"params": [bias], "weight_decay": 0.0}],
        lr=config.lr, momentum=config.momentum,
    )
    generators = [torch.Generator().manual_seed(run.order_seed) for run in runs]
    history: list[dict] = []
    for epoch in range(1, config.epochs + 1):
        for group in optimiser.param_groups:
            group["lr"] = config.lr_at(epoch)
        order = torch.stack([torch.randperm(n, generator=gen) for gen in generators]).to(device)  # G × N
        total = torch.zeros(len(runs), device=device, dtype=torch.float64)
        for begin in range(0, n, config.batch_size):
            index = order[:, begin : begin + config.batch_size]
            losses = objective.per_run(head_logits(weight, bias, features[index]), labels[index], epoch)
            optimiser.zero_grad(set_to_none=True)
            losses.sum().backward()
            optimiser.step()
            total += losses.detach().double() * index.shape[1]
        history += [{"run": run.name, "epoch": epoch, "train_loss": float(total[g] / n), "lr": config.lr_at(epoch)}
                    for g, run in enumerate(runs)]
    log.info("trained %d heads for %d epochs; last mean train loss %.4f", len(runs), config.epochs,
             float(total.mean() / n))
    return weight.detach(), bias.detach(), history


def run_specs(*, setting: str, loss: str, seeds: list[int], options: dict, drw_epoch: int) -> list[RunSpec]:
    """Every (τ, seed) of one loss; init / order seeds depend on (seed, setting) only, not on the loss."""
    taus = options.get("logit_adjusted", {}).get("taus", [1.0]) if loss == "logit_adjusted" else [1.0]
    ldam = options.get("ldam_drw", {})
    return [
        RunSpec(
            name=f"{loss}/tau{tau:g}/seed{seed}",
            loss=loss,
            init_seed=setting_seed(seed, "init", DATASET, setting),
            order_seed=setting_seed(seed, "order", DATASET, setting),
            tau=float(tau),
            beta=float(options.get("class_balanced", {}).get("beta", 0.9999)),
            ldam_max_margin=float(ldam.get("max_margin", 0.5)),
            ldam_scale=float(ldam.get("scale", 1.0)),
            drw_epoch=drw_epoch,
        )
        for tau in taus
        for seed in seeds
    ]


# --------------------------------------------------------------------------------------------- the stage


def minority_mask(counts: torch.Tensor, setting: str) -> np.ndarray:
    """Imbalanced setting: the classes below the midpoint of the smallest and largest training counts (the
    10-image classes on the real data; the 29-image odd classes are majority). Balanced: none (→ NaN)."""
    if SETTINGS[setting][2] == "balanced":
        return np.zeros(len(counts), dtype=bool)
    counts = counts.double()
    return (counts < (counts.min() + counts.max()) / 2).numpy()


def head(*, setting: str, loss: str, seeds: list[int], options: dict, training: dict, posthoc_taus: list[float],
         device: str, inputs: dict, outputs: dict) -> None:
    """Train the heads of one (setting, loss) on cached features, then write its metrics and per-class leaves."""
    device = resolve_device(device)
    table = read_table(inputs["table"])
    info = read_json(inputs["info"])
    features = np.load(inputs["features"], mmap_mode="r")
    if len(features) != len(table) or len(table) and int(table["index"].max()) >= len(features):
        raise ValueError(f"{inputs['features']}: {len(features)} rows for {len(table)} images in {inputs['table']} "
                         "(fix: rerun the CUB feature rule)")
    k = n_classes_of(table)
    train_rows, train_labels = setting_rows(table, setting, "train")
    test_rows, test_labels = setting_rows(table, setting, "test")
    if len(train_rows) == 0 or len(test_rows) == 0:
        raise ValueError(f"{inputs['table']}: CUB setting {setting!r} has {len(train_rows)} train and "
                         f"{len(test_rows)} test images")
    config = HeadConfig(**training)
    drw_epoch = options.get("drw_epoch") or max(1, config.epochs * 3 // 4 + 1)
    runs = run_specs(setting=setting, loss=loss, seeds=seeds, options=options, drw_epoch=drw_epoch)
    x_train = torch.from_numpy(np.ascontiguousarray(features[train_rows]))
    y_train = torch.from_numpy(train_labels)
    started = time.perf_counter()
    weight, bias, history = train_heads(x_train, y_train, runs, config, k, device)
    seconds = time.perf_counter() - started
    train_counts = torch.bincount(y_train, minlength=k)
    with atomic_path(outputs["model"]) as tmp:
        torch.save({"runs": [r.name for r in runs], "weight": weight.cpu(), "bias": bias.cpu(), "history": history,
                    "counts": train_counts, "seconds": seconds, "device": device, "features": info}, tmp)

    log_prior = log_prior_from_counts(train_counts)
    minority = minority_mask(train_counts, setting)
    x_test = torch.from_numpy(np.ascontiguousarray(features[test_rows])).to(device)
    y_test = torch.from_numpy(test_labels)
    with torch.no_grad():
        all_logits = head_logits(weight, bias, x_test).cpu()  # one pass over the test set (B9)
    _, protocol, profile = SETTINGS[setting]
    ratio = float(train_counts.max() / train_counts.min())
    names = class_names(table, k)
    eval_counts = torch.bincount(y_test, minlength=k)
    train_loss = {h["run"]: h["train_loss"] for h in history if h["epoch"] == config.epochs}
    settings_of_run = {"cub": training, "options": options, "backbone": info["backbone"],
                       "weights_sha256": info["weights_sha256"], "image_size": info["image_size"]}
    rows, class_rows = [], []
    for g, run in enumerate(runs):
        seed = int(run.name.rpartition("seed")[2])
        variants = [(loss, run.tau if loss == "logit_adjusted" else math.nan, all_logits[g])]
        if loss == "softmax":
            variants += [("posthoc_la", t, posthoc_adjusted_logits(all_logits[g], log_prior, t)) for t in posthoc_taus]
        for variant, tau, logits in variants:
            metrics, per_class = classification_metrics(logits, y_test, log_prior, train_counts, minority=minority)
            key = {"dataset": DATASET, "protocol": protocol, "setting": setting, "profile": profile,
                   "imbalance_ratio": ratio, "loss": variant, "tau": tau, "seed": seed, "split": "test"}
            origin = provenance({**key, **settings_of_run})
            rows.append({**key, "n_train": len(train_rows), "n_test": len(test_rows), "epochs": config.epochs,
                         **metrics, "train_loss": train_loss[run.name], "train_seconds": seconds, "device": device,
                         **origin})
            class_rows += [
                {**key, "class": c, "class_name": names[c], "n_train": int(train_counts[c]),
                 "n_test": int(eval_counts[c]), "accuracy": float(per_class[c]), **origin}
                for c in range(k)
            ]
    # exactly the MNIST columns, in their order: a renamed or missing column fails here, not in the gather
    write_table(pd.DataFrame(rows)[list(METRICS_COLUMNS)], outputs["metrics"], column_docs=METRICS_COLUMNS)
    write_table(pd.DataFrame(class_rows)[list(PER_CLASS_COLUMNS)], outputs["per_class"],
                column_docs=PER_CLASS_COLUMNS)
    summary = pd.DataFrame(rows).groupby("loss")[["micro_acc", "macro_acc"]].mean()
    log.info("cub %s %s (%d runs, %.1f s on %s):\n%s", setting, loss, len(runs), seconds, device, summary)
