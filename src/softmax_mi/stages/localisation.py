"""Pipeline stages of the WSOL experiment (paper §4, E6 + E8), on any dataset in the :mod:`softmax_mi.data.wsol`
format: the embedded cluttered MNIST (default), and CUB-200-2011 / Tiny-ImageNet when the user supplies them (E6, E7).

dataset → train (one GAP classifier per dataset × backbone × ADL × seed; checkpoint chosen on val_fullsup accuracy)
→ evaluate (maps from one forward pass per batch; `paper`, `maxboxacc` and `maxboxacc_v2` protocols, τ chosen on
val_fullsup only and applied to test and to the faithful derived splits; leaf tables per run) → gather
(metrics.parquet, curves.parquet, metrics.json) → figures (one set per dataset).

Maps are computed for the ground-truth class. Top-1 loc (class correct AND IoU ≥ 0.5) uses them too: when the
top-1 class is correct the predicted-class map *is* the GT-class map, and when it is wrong the image fails either
way, so this equals scoring the predicted-class map (``softmax_mi.cam`` gives both from one forward pass).
Deviations from the original, on purpose: plain final ratios (B14), clamped IoU (B15), argmin for the least-likely
class (B16), τ and checkpoint chosen on val_fullsup (B6, B17), τ on the min-max normalised map rather than on a
cubehelix-gray rendering (docs/paper.md §1.6 step 3); ``infocam_full`` keeps the original's stretched full-padding map
(B18) next to the centred ``infocam``; the original's half CUB test set (B12) and misread Tiny-ImageNet boxes (B13)
are scored as the extra splits ``test_half`` and ``test_faithful_boxes`` next to the full, correct ``test``.
Images are resized to a square and scored at that size (wsolevaluation's protocol), not centre-cropped.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from softmax_mi.cam import WEIGHT_METHODS, FeatureExtractor, all_maps, gradcam_maps, normalise, upsample
from softmax_mi.data import cluttered, wsol
from softmax_mi.io import atomic_path, load_checkpoint, read_json, read_table, write_json, write_table
from softmax_mi.localisation import (
    Sweep,
    boxes_at_threshold,
    box_accuracy,
    centre_box_map,
    maxboxacc_v2,
    paper_localisation,
    sweep,
    threshold_grid,
)
from softmax_mi.models.backbones import build_backbone, input_channels
from softmax_mi.provenance import AGGREGATE_PROVENANCE_COLUMNS, PROVENANCE_COLUMNS, provenance
from softmax_mi.runtime import derive_seed, progress, resolve_device, seed_everything
from softmax_mi.summaries import LOCALISATION_KEYS, SEED_COLUMNS, summarise_localisation

log = logging.getLogger(__name__)

METRICS_COLUMNS = {
    "dataset": "WSOL dataset: cluttered_mnist (embedded, softmax_mi.data.cluttered), cub or tiny_imagenet "
    "(user-supplied, softmax_mi.data.cub / tiny_imagenet)",
    "backbone": "classifier backbone (softmax_mi.models.backbones)",
    "adl": "whether ADL (attention-based dropout) was active in training",
    "method": "map (softmax_mi.cam: cam, infocam, …, gradcam), centre_box (fixed central box baseline) or classifier",
    "protocol": "paper (fixed τ, largest component) | maxboxacc (τ chosen on val_fullsup, largest component) | "
    "maxboxacc_v2 (τ per IoU threshold chosen on val_fullsup, all components) | classification",
    "split": "val_fullsup (where τ / checkpoint were chosen), test, or a faithful split of the original code: "
    "test_half (CUB: every other test image per class, B12), test_faithful_boxes (Tiny-ImageNet: misread boxes, B13)",
    "threshold": "τ on the min-max normalised map, fraction of its range (NaN where not applicable)",
    "iou": "IoU threshold δ, fraction (NaN for a mean over δ or for classification)",
    "metric": "gt_known_loc | top1_loc | box_acc | maxboxacc_v2 (mean over δ of box_acc) | top1_acc",
    "value": "accuracy, fraction 0–1",
    "seed": "base seed from params.yaml (training seed derives from it)",
    "n_test": "images the value is computed on (of the split in `split`)",
    **PROVENANCE_COLUMNS,
}

CURVES_COLUMNS = {
    "dataset": METRICS_COLUMNS["dataset"],
    "backbone": METRICS_COLUMNS["backbone"],
    "adl": METRICS_COLUMNS["adl"],
    "method": METRICS_COLUMNS["method"],
    "seed": METRICS_COLUMNS["seed"],
    "split": METRICS_COLUMNS["split"],
    "boxes": "largest (largest connected component) | all (best of all components, MaxBoxAccV2)",
    "iou": "IoU threshold δ, fraction",
    "threshold": "τ on the min-max normalised map, fraction of its range",
    "value": "box accuracy at (τ, δ): fraction of images with IoU ≥ δ, 0–1",
    **PROVENANCE_COLUMNS,
}

SUMMARY_COLUMNS = {
    **{key: METRICS_COLUMNS[key] for key in LOCALISATION_KEYS},
    **SEED_COLUMNS,
    "mean": "mean of value over seeds, fraction 0–1",
    "std": "sample standard deviation of value over seeds, fraction (NaN for one seed)",
    **AGGREGATE_PROVENANCE_COLUMNS,
}

# Grey canvases are centred on 0.5 (no pretrained statistics apply); RGB photos use the ImageNet statistics that
# the pretrained VGG / ResNet weights expect (the original's transforms).
GREY_MEAN_STD = ((0.5,), (0.5,))
IMAGENET_MEAN_STD = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


def _run_name(backbone: str, adl: bool) -> str:
    return f"{backbone}{'-adl' if adl else ''}"


# ------------------------------------------------------------------------------------------------------------ data
def dataset(*, data: dict, outputs: dict) -> None:
    """Render the cluttered-MNIST WSOL dataset (deterministic from ``data.seed``)."""
    config = cluttered.ClutterConfig.from_params(data)
    images, frame = cluttered.build(data["counts"], config, data["seed"])
    cluttered.save(images, frame, Path(outputs["images"]).parent)
    log.info("cluttered MNIST: %s images %s; splits %s", len(images), images.shape[1:], data["counts"])


def image_channels(images: np.ndarray) -> int:
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


# ------------------------------------------------------------------------------------------------------ training
def _model(backbone: str, adl: bool, settings: dict, n_classes: int, channels: int):
    return build_backbone(
        backbone, n_classes, in_channels=channels, pretrained=settings["pretrained"],
        adl=settings["adl_settings"] if adl else None, widths=tuple(settings["gap_cnn"]["widths"]),
    )


def _optimiser(model, training: dict, steps_per_epoch: int):
    """AdamW + one-cycle (the small CPU default), or the original's SGD (Nesterov momentum) with the classifier
    part — the layer feeding GAP and the fc, i.e. VGG conv6 + fc, ResNet layer4 + fc — at ``head_lr_ratio`` × lr
    and a ×0.1 step every ``step_epochs`` epochs."""
    lr, epochs = training["lr"], training["epochs"]
    head = {id(p) for module in (model.cam_layer, model.fc) for p in module.parameters()}
    groups = [
        {"params": [p for p in model.parameters() if id(p) not in head], "lr": lr},
        {"params": [p for p in model.parameters() if id(p) in head], "lr": lr * training["head_lr_ratio"]},
    ]
    groups = [g for g in groups if g["params"]]
    if training["optimizer"] == "sgd":
        optimiser = torch.optim.SGD(groups, lr=lr, momentum=training["momentum"], nesterov=training["nesterov"],
                                    weight_decay=training["weight_decay"])
        step = max(training["step_epochs"] * steps_per_epoch, 1)
        return optimiser, torch.optim.lr_scheduler.StepLR(optimiser, step_size=step, gamma=0.1)
    optimiser = torch.optim.AdamW(groups, lr=lr, weight_decay=training["weight_decay"])
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimiser, max_lr=[g["lr"] for g in groups], total_steps=epochs * steps_per_epoch
    )
    return optimiser, schedule


@torch.no_grad()
def _accuracy(model, split: wsol.WSOLSplit, to_input: InputPipeline, batch_size: int) -> float:
    model.eval()
    hits = 0
    for start in range(0, len(split), batch_size):
        labels = torch.from_numpy(split.labels[start : start + batch_size]).to(to_input.device)
        hits += int((model(to_input(split.images[start : start + batch_size])).argmax(1) == labels).sum())
    return hits / max(len(split), 1)


def wsol_seed(seed: int, purpose: str, dataset: str, backbone: str, adl: bool) -> int:
    """The seed of one WSOL run (dataset × backbone × ADL × seed) for ``purpose`` (wsol_train, wsol_evaluate)."""
    return derive_seed(seed, purpose, dataset, backbone, adl)


def train(*, dataset: str, backbone: str, adl: bool, settings: dict, seed: int, device: str, inputs: dict,
          outputs: dict) -> None:
    """Train one GAP classifier on the train split's labels; keep the epoch with the best val_fullsup accuracy."""
    device = resolve_device(device)
    run_seed = wsol_seed(seed, "wsol_train", dataset, backbone, adl)
    seed_everything(run_seed)
    training = settings["training"]
    train_split = wsol.load(inputs["images"], inputs["boxes"], "train")
    val_split = wsol.load(inputs["images"], inputs["boxes"], "val_fullsup")
    channels = image_channels(train_split.images)
    to_input = InputPipeline(channels, backbone, settings["input_size"], device)
    images = torch.from_numpy(train_split.images).to(device)  # uint8: converted per batch
    labels = torch.from_numpy(train_split.labels).to(device)
    model = _model(backbone, adl, settings, wsol.n_classes(inputs["boxes"]), channels).to(device)
    batch = min(training["batch_size"], len(labels))
    steps_per_epoch = len(labels) // batch
    optimiser, schedule = _optimiser(model, training, steps_per_epoch)
    generator = torch.Generator().manual_seed(run_seed)
    history, best, best_state = [], -1.0, None
    started = time.perf_counter()
    for epoch in progress(range(1, training["epochs"] + 1), desc="epochs"):
        model.train()
        order = torch.randperm(len(labels), generator=generator).to(device)
        total = 0.0
        for step in range(steps_per_epoch):
            index = order[step * batch : (step + 1) * batch]
            x = to_input(images[index])
            if training["hflip"]:
                x = random_flip(x, generator)
            loss = F.cross_entropy(model(x), labels[index])
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            schedule.step()
            total += float(loss.detach())
        val_acc = _accuracy(model, val_split, to_input, training["eval_batch_size"])
        history.append({"epoch": epoch, "train_loss": total / steps_per_epoch, "val_fullsup_acc": val_acc})
        log.info("epoch %d: train loss %.4f, val_fullsup acc %.4f", epoch, total / steps_per_epoch, val_acc)
        if val_acc > best:
            best, best_state = val_acc, {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    with atomic_path(outputs["checkpoint"]) as tmp:
        torch.save(best_state, tmp)
    best_epoch = max(history, key=lambda row: (row["val_fullsup_acc"], -row["epoch"]))["epoch"]
    write_json(
        {"history": history, "best_epoch": best_epoch, "val_fullsup_acc": best, "seconds": time.perf_counter() - started,
         "run_seed": run_seed, "device": device},
        outputs["summary"],
    )


def load_model(path: str | Path, backbone: str, adl: bool, settings: dict, device: str, *, n_classes: int,
               channels: int):
    model = _model(backbone, adl, {**settings, "pretrained": "none"}, n_classes, channels)
    model.load_state_dict(load_checkpoint(path, fix="delete it and rerun: snakemake --cores all"))
    return model.to(device).eval()


# ----------------------------------------------------------------------------------------------------------- maps
def compute_maps(model, x, y, methods, *, region_k: int, size: tuple[int, int], batch_size: int):
    """Logits [N, K] and normalised maps {method: float32 [N, H, W]} for the GT classes (one forward per batch)."""
    weight_methods = [m for m in methods if m in WEIGHT_METHODS]
    logits, maps = [], {m: [] for m in methods}
    with FeatureExtractor(model) as extract:
        for start in range(0, len(y), batch_size):
            xb, yb = x[start : start + batch_size], y[start : start + batch_size]
            out, batch_maps = all_maps(extract, xb, yb, weight_methods, region_k=region_k, size=size)
            logits.append(out.cpu())
            for method, value in batch_maps.items():
                maps[method].append(value.cpu().numpy())
    if "gradcam" in methods:
        layer = model.cam_layer
        for start in range(0, len(y), batch_size):
            xb, yb = x[start : start + batch_size], y[start : start + batch_size]
            grad = gradcam_maps(model, layer, xb, yb.tolist()).float()
            maps["gradcam"].append(normalise(upsample(grad, size)).numpy())
    return torch.cat(logits), {m: np.concatenate(v) for m, v in maps.items()}


def _concat_sweeps(parts: list[Sweep]) -> Sweep:
    return Sweep(parts[0].thresholds, *(np.concatenate([getattr(p, field) for p in parts])
                                        for field in ("largest_box", "largest_iou", "best_iou", "n_components")))


def score_split(model, split: wsol.WSOLSplit, to_input: InputPipeline, settings: dict, thresholds: np.ndarray):
    """Per-image results on one split, a chunk of images at a time (maps of a whole CUB split would not fit in
    memory): top-1 correctness, and per method the τ sweep and the boxes at the paper's fixed τ."""
    chunk = settings["training"]["eval_batch_size"]
    centre = centre_box_map(*split.size)
    correct, sweeps, fixed = [], {}, {}
    for start in range(0, len(split), chunk):
        part = split.subset(slice(start, start + chunk))
        labels = torch.from_numpy(part.labels).to(to_input.device)
        logits, maps = compute_maps(model, to_input(part.images), labels, settings["methods"],
                                    region_k=settings["region_k"], size=split.size, batch_size=chunk)
        correct.append((logits.argmax(1) == labels.cpu()).numpy())
        maps["centre_box"] = np.broadcast_to(centre, (len(part), *split.size))
        for method, method_maps in maps.items():
            sweeps.setdefault(method, []).append(sweep(method_maps, thresholds, part.boxes))
            fixed.setdefault(method, []).append(
                boxes_at_threshold(method_maps, settings["paper_threshold"], part.boxes))
    return (np.concatenate(correct), {m: _concat_sweeps(v) for m, v in sweeps.items()},
            {m: _concat_sweeps(v) for m, v in fixed.items()})


def evaluate(*, dataset: str, backbone: str, adl: bool, settings: dict, seed: int, device: str, inputs: dict,
             outputs: dict) -> None:
    """Score every method under the three protocols; τ is chosen on val_fullsup and applied to the test splits."""
    device = resolve_device(device)
    seed_everything(wsol_seed(seed, "wsol_evaluate", dataset, backbone, adl))
    splits = wsol.evaluation_splits(read_table(inputs["boxes"]))
    first = wsol.load(inputs["images"], inputs["boxes"], "val_fullsup")
    channels = image_channels(first.images)
    model = load_model(inputs["checkpoint"], backbone, adl, settings, device,
                       n_classes=wsol.n_classes(inputs["boxes"]), channels=channels)
    to_input = InputPipeline(channels, backbone, settings["input_size"], device)
    thresholds = threshold_grid(settings["threshold_step"])
    deltas = tuple(settings["iou_thresholds"])
    base = {"dataset": dataset, "backbone": backbone, "adl": adl, "seed": seed}
    rows, curves, sweeps, correct = [], [], {}, {}

    def row(**values):
        rows.append({**base, **values})

    for split_name in splits:
        started = time.perf_counter()
        split = first if split_name == "val_fullsup" else wsol.load(inputs["images"], inputs["boxes"], split_name)
        correct[split_name], split_sweeps, fixed = score_split(model, split, to_input, settings, thresholds)
        n = len(split)
        row(method="classifier", protocol="classification", split=split_name, threshold=math.nan, iou=math.nan,
            metric="top1_acc", value=float(correct[split_name].mean()), n_test=n)
        for method, result in split_sweeps.items():
            sweeps[method, split_name] = result
            for metric, value in paper_localisation(fixed[method].largest_iou[:, 0], correct[split_name]).items():
                row(method=method, protocol="paper", split=split_name, threshold=settings["paper_threshold"],
                    iou=0.5, metric=metric, value=value, n_test=n)
            for boxes, ious, deltas_here in (("largest", result.largest_iou, (0.5,)), ("all", result.best_iou, deltas)):
                for delta, curve in zip(deltas_here, box_accuracy(ious, deltas_here)):
                    curves.append(pd.DataFrame({
                        **base, "method": method, "split": split_name, "boxes": boxes, "iou": delta,
                        "threshold": thresholds, "value": curve,
                    }))
        log.info("%s: %d images, %d maps × %d τ per method, %.1f s", split_name, n, n, len(thresholds),
                 time.perf_counter() - started)
    for method in dict.fromkeys(m for m, _ in sweeps):
        val = sweeps[method, "val_fullsup"]
        # maxboxacc (V1): GT-known / Top-1 loc at the τ chosen on val_fullsup, largest component, IoU ≥ 0.5
        chosen = int((val.largest_iou >= 0.5).mean(axis=0).argmax())
        tau = float(thresholds[chosen])
        for split_name in splits:
            result = sweeps[method, split_name]
            for metric, value in paper_localisation(result.largest_iou[:, chosen], correct[split_name]).items():
                row(method=method, protocol="maxboxacc", split=split_name, threshold=tau, iou=0.5, metric=metric,
                    value=value, n_test=len(result.largest_iou))
        # maxboxacc_v2: τ per δ chosen on val_fullsup (all components), applied to every split; mean over δ
        for split_name in splits:
            result = sweeps[method, split_name]
            v2 = maxboxacc_v2(val.best_iou, result.best_iou, thresholds, deltas)
            n = len(result.best_iou)
            for delta, tau_d, value in zip(deltas, v2.chosen_threshold, v2.test_accuracy):
                row(method=method, protocol="maxboxacc_v2", split=split_name, threshold=float(tau_d), iou=delta,
                    metric="box_acc", value=float(value), n_test=n)
            row(method=method, protocol="maxboxacc_v2", split=split_name, threshold=math.nan, iou=math.nan,
                metric="maxboxacc_v2", value=float(np.mean(v2.test_accuracy)), n_test=n)
    origin = provenance({"settings": settings, "dataset": dataset, "backbone": backbone, "adl": adl, "seed": seed})
    write_table(pd.DataFrame(rows).assign(**origin), outputs["metrics"], column_docs=METRICS_COLUMNS)
    write_table(pd.concat(curves, ignore_index=True).assign(**origin), outputs["curves"], column_docs=CURVES_COLUMNS)


# ---------------------------------------------------------------------------------------------- gather + summary
def summarise_metrics(table: pd.DataFrame) -> pd.DataFrame:
    """Mean ± std over seeds of every test metric."""
    keys = ["dataset", "backbone", "adl", "method", "protocol", "metric", "iou"]
    test = table[table["split"] == "test"]
    return (test.groupby(keys, dropna=False, sort=True)["value"]
            .agg(mean="mean", std="std", n_seeds="count").reset_index())


def headline_metrics(table: pd.DataFrame) -> dict:
    """Small nested mapping for `dvc metrics show`: test means over seeds."""
    summary = summarise_metrics(table)
    wanted = {("classification", "top1_acc"), ("paper", "gt_known_loc"), ("paper", "top1_loc"),
              ("maxboxacc", "gt_known_loc"), ("maxboxacc_v2", "maxboxacc_v2")}
    out: dict = {}
    for row in summary.itertuples(index=False):
        if (row.protocol, row.metric) not in wanted:
            continue
        run = f"{row.dataset}/{_run_name(row.backbone, row.adl)}"
        out.setdefault(run, {}).setdefault(row.method, {})[f"{row.protocol}.{row.metric}"] = {
            "mean": round(float(row.mean), 4),
            "std": round(float(row.std), 4) if not math.isnan(row.std) else None,
            "n_seeds": int(row.n_seeds),
        }
    return out


def gather(*, inputs: dict, outputs: dict) -> None:
    def concat(paths):
        paths = [paths] if isinstance(paths, str) else paths
        return pd.concat([read_table(p) for p in paths], ignore_index=True)

    metrics = concat(inputs["metrics"]).sort_values(
        ["dataset", "backbone", "adl", "method", "protocol", "split", "metric", "iou", "seed"], ignore_index=True
    )
    curves = concat(inputs["curves"])
    write_table(metrics, outputs["metrics"], column_docs=METRICS_COLUMNS,
                table_doc="WSOL metrics, one row per run × method × protocol × split × metric")
    write_table(curves, outputs["curves"], column_docs=CURVES_COLUMNS,
                table_doc="WSOL box accuracy vs τ, per run × method × split × box rule × δ")
    write_table(summarise_localisation(metrics)[list(SUMMARY_COLUMNS)], outputs["summary"],
                column_docs=SUMMARY_COLUMNS, table_doc="WSOL metrics, mean over seeds per run × method × protocol "
                "× split × metric × δ")
    summaries = [read_json(p) for p in ([inputs["summaries"]] if isinstance(inputs["summaries"], str)
                                        else inputs["summaries"])]
    write_json({"localisation": headline_metrics(metrics),
                "training_seconds_mean": round(float(np.mean([s["seconds"] for s in summaries])), 1)},
               outputs["json"])


# ------------------------------------------------------------------------------------------------------- figures
def run_thresholds(metrics: pd.DataFrame, *, backbone: str, adl: bool, seed: int, methods: list[str],
                   source: str = "metrics") -> dict[str, float]:
    """The MaxBoxAcc τ of each method in one run (one dataset's rows; chosen on val_fullsup, stored on test rows)."""
    run = metrics[(metrics["protocol"] == "maxboxacc") & (metrics["split"] == "test")
                  & (metrics["backbone"] == backbone) & (metrics["adl"] == adl)
                  & (metrics["seed"] == seed) & (metrics["metric"] == "gt_known_loc")]
    missing = [m for m in methods if not (run["method"] == m).any()]
    if missing:
        raise ValueError(f"{source}: no maxboxacc test row for {backbone}/adl={adl}/seed{seed} and method(s) "
                         f"{', '.join(missing)} (fix: rerun localisation_evaluate / localisation_gather)")
    return {m: float(run.loc[run["method"] == m, "threshold"].iloc[0]) for m in methods}


def figures(
    *, dataset: str, backbone: str, adl: bool, seed: int, settings: dict, device: str, inputs: dict, outputs: dict
) -> None:
    """Heatmap grid (CAM vs infoCAM, GT box red, predicted box green) and accuracy-vs-τ curves of one dataset.

    The maps are those of ``inputs["checkpoint"]``, the model of run ``seed``; the boxes use that run's τ."""
    from softmax_mi.plots_localisation import plot_heatmaps, plot_threshold_curves

    device = resolve_device(device)
    metrics = read_table(inputs["metrics"])
    metrics = metrics[metrics["dataset"] == dataset]
    curves = read_table(inputs["curves"])
    plot_threshold_curves(curves[curves["dataset"] == dataset], metrics, outputs["curves_figure"])
    split = wsol.load(inputs["images"], inputs["boxes"], "test")
    channels = image_channels(split.images)
    model = load_model(inputs["checkpoint"], backbone, adl, settings, device,
                       n_classes=wsol.n_classes(inputs["boxes"]), channels=channels)
    count = min(settings["figure_images"], len(split))
    index = np.random.default_rng(derive_seed("figure", dataset)).choice(len(split), size=count, replace=False)
    subset = split.subset(index)
    y = torch.from_numpy(subset.labels).to(device)
    x = InputPipeline(channels, backbone, settings["input_size"], device)(subset.images)
    methods = [m for m in ("cam", "infocam") if m in settings["methods"]]
    logits, maps = compute_maps(model, x, y, methods, region_k=settings["region_k"], size=subset.size,
                                batch_size=count)
    taus = run_thresholds(metrics, backbone=backbone, adl=adl, seed=seed, methods=methods, source=inputs["metrics"])
    predicted = {m: sweep(maps[m], [taus[m]], subset.boxes).largest_box[:, 0] for m in methods}
    plot_heatmaps(subset, maps, predicted, taus, logits.argmax(1).numpy(), outputs["heatmaps"])
