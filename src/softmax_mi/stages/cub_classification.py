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
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from softmax_mi.classification import METRICS_COLUMNS, PER_CLASS_COLUMNS
from softmax_mi.io import atomic_path, read_json, read_table, write_json, write_table
from softmax_mi.runtime import progress, resolve_device

if TYPE_CHECKING:
    import torch

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
    import torch  # torch: imported by the job, not at parse time

    from softmax_mi.io import file_digest
    from softmax_mi.models.feature_backbones import FrozenBackbone  # torch

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
    import torch  # torch: imported by the job, not at parse time

    from softmax_mi.classification_metrics import TrainedJob  # torch
    from softmax_mi.models.linear import StackedLinear  # torch
    from softmax_mi.multirun import SGDConfig, last_train_loss, predict_logits, run_specs  # torch
    from softmax_mi.multirun import save_runs, train_stacked  # torch

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
    config = SGDConfig(**training)
    runs = run_specs(dataset=DATASET, setting=setting, loss=loss, seeds=seeds, options=options, epochs=config.epochs,
                     drw_epoch=options.get("drw_epoch"))
    x_train = torch.from_numpy(np.ascontiguousarray(features[train_rows]))
    y_train = torch.from_numpy(train_labels)
    started = time.perf_counter()
    model = StackedLinear.from_seeds([run.init_seed for run in runs], x_train.shape[1], k)
    history = train_stacked(model, x_train, y_train, runs, config, n_classes=k, device=device)
    seconds = time.perf_counter() - started
    train_counts = torch.bincount(y_train, minlength=k)
    save_runs(outputs["model"], runs, model, history, counts=train_counts, seconds=seconds, device=device,
              features=info)

    x_test = torch.from_numpy(np.ascontiguousarray(features[test_rows]))
    logits = predict_logits(model, x_test, batch_size=len(x_test)).cpu()  # one pass over the test set (B9)
    _, protocol, profile = SETTINGS[setting]
    job = TrainedJob(
        protocol=protocol, profile=profile, imbalance_ratio=float(train_counts.max() / train_counts.min()),
        train_counts=train_counts, epochs=config.epochs, train_loss=last_train_loss(history), train_seconds=seconds,
        device=device, class_names=class_names(table, k), posthoc_taus=posthoc_taus,
        settings={"cub": training, "options": options, "backbone": info["backbone"],
                  "weights_sha256": info["weights_sha256"], "image_size": info["image_size"]},
        minority=minority_mask(train_counts, setting),
    )
    rows, class_rows = job.rows([run.id for run in runs], logits, torch.from_numpy(test_labels), "test")
    # exactly the MNIST columns, in their order: a renamed or missing column fails here, not in the gather
    write_table(pd.DataFrame(rows)[list(METRICS_COLUMNS)], outputs["metrics"], column_docs=METRICS_COLUMNS)
    write_table(pd.DataFrame(class_rows)[list(PER_CLASS_COLUMNS)], outputs["per_class"],
                column_docs=PER_CLASS_COLUMNS)
    summary = pd.DataFrame(rows).groupby("loss")[["micro_acc", "macro_acc"]].mean()
    log.info("cub %s %s (%d runs, %.1f s on %s):\n%s", setting, loss, len(runs), seconds, device, summary)
