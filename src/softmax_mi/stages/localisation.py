"""Pipeline stages of the WSOL experiment (paper §4, E6 + E8) on the embedded cluttered-MNIST dataset.

dataset → train (one GAP classifier per backbone × ADL × seed; checkpoint chosen on val_fullsup accuracy)
→ evaluate (maps from one forward pass per batch; `paper`, `maxboxacc` and `maxboxacc_v2` protocols, τ chosen on
val_fullsup only; leaf tables per run) → gather (metrics.parquet, curves.parquet, metrics.json) → figures.

Maps are computed for the ground-truth class. Top-1 loc (class correct AND IoU ≥ 0.5) uses them too: when the
top-1 class is correct the predicted-class map *is* the GT-class map, and when it is wrong the image fails either
way, so this equals scoring the predicted-class map (``softmax_mi.cam`` gives both from one forward pass).
Deviations from the original, on purpose: plain final ratios (B14), clamped IoU (B15), argmin for the least-likely
class (B16), τ and checkpoint chosen on val_fullsup (B6, B17), τ on the min-max normalised map rather than on a
cubehelix-gray rendering (PAPER.md §1.6 step 3); ``infocam_full`` keeps the original's stretched full-padding map
(B18) next to the centred ``infocam``.
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
from softmax_mi.data import cluttered
from softmax_mi.io import atomic_path, read_json, read_table, write_json, write_table
from softmax_mi.localisation import (
    boxes_at_threshold,
    box_accuracy,
    centre_box_map,
    maxboxacc_v2,
    paper_localisation,
    sweep,
    threshold_grid,
)
from softmax_mi.models.backbones import build_backbone, input_channels
from softmax_mi.provenance import PROVENANCE_COLUMNS, provenance
from softmax_mi.runtime import derive_seed, progress, resolve_device, seed_everything

log = logging.getLogger(__name__)

METRICS_COLUMNS = {
    "dataset": "WSOL dataset (cluttered_mnist: the embedded MNIST-on-canvas set, softmax_mi.data.cluttered)",
    "backbone": "classifier backbone (softmax_mi.models.backbones)",
    "adl": "whether ADL (attention-based dropout) was active in training",
    "method": "map (softmax_mi.cam: cam, infocam, …, gradcam), centre_box (fixed central box baseline) or classifier",
    "protocol": "paper (fixed τ, largest component) | maxboxacc (τ chosen on val_fullsup, largest component) | "
    "maxboxacc_v2 (τ per IoU threshold chosen on val_fullsup, all components) | classification",
    "split": "val_fullsup (where τ / checkpoint were chosen) or test",
    "threshold": "τ on the min-max normalised map, fraction of its range (NaN where not applicable)",
    "iou": "IoU threshold δ, fraction (NaN for a mean over δ or for classification)",
    "metric": "gt_known_loc | top1_loc | box_acc | maxboxacc_v2 (mean over δ of box_acc) | top1_acc",
    "value": "accuracy, fraction 0–1",
    "seed": "base seed from params.yaml (training seed derives from it)",
    "n_images": "images the value is computed on",
    **PROVENANCE_COLUMNS,
}

CURVES_COLUMNS = {
    "dataset": METRICS_COLUMNS["dataset"],
    "backbone": METRICS_COLUMNS["backbone"],
    "adl": METRICS_COLUMNS["adl"],
    "method": METRICS_COLUMNS["method"],
    "seed": METRICS_COLUMNS["seed"],
    "split": "val_fullsup or test",
    "boxes": "largest (largest connected component) | all (best of all components, MaxBoxAccV2)",
    "iou": "IoU threshold δ, fraction",
    "threshold": "τ on the min-max normalised map, fraction of its range",
    "value": "box accuracy at (τ, δ): fraction of images with IoU ≥ δ, 0–1",
}


def _run_name(backbone: str, adl: bool) -> str:
    return f"{backbone}{'-adl' if adl else ''}"


# ------------------------------------------------------------------------------------------------------------ data
def dataset(*, data: dict, outputs: dict, **_) -> None:
    """Render the cluttered-MNIST WSOL dataset (deterministic from ``data.seed``)."""
    config = cluttered.ClutterConfig.from_params(data)
    images, frame = cluttered.build(data["counts"], config, data["seed"])
    cluttered.save(images, frame, Path(outputs["images"]).parent)
    log.info("cluttered MNIST: %s images %s; splits %s", len(images), images.shape[1:], data["counts"])


def _tensors(split: cluttered.WSOLSplit, backbone: str, input_size: int | None, device: str):
    x = torch.from_numpy(split.images).to(device).float().div_(255.0).unsqueeze(1)
    if input_channels(backbone) == 3:
        x = x.expand(-1, 3, -1, -1)
    if input_size and input_size != x.shape[-1]:
        x = F.interpolate(x, size=(input_size, input_size), mode="bilinear", align_corners=False)
    return (x - 0.5) / 0.5, torch.from_numpy(split.labels).to(device)


# ------------------------------------------------------------------------------------------------------ training
def _model(backbone: str, adl: bool, settings: dict, n_classes: int = 10):
    return build_backbone(
        backbone, n_classes, pretrained=settings["pretrained"],
        adl=settings["adl_settings"] if adl else None, widths=tuple(settings["gap_cnn"]["widths"]),
    )


@torch.no_grad()
def _accuracy(model, x, y, batch_size: int) -> float:
    model.eval()
    hits = sum(int((model(x[i : i + batch_size]).argmax(1) == y[i : i + batch_size]).sum())
               for i in range(0, len(y), batch_size))
    return hits / max(len(y), 1)


def train(*, backbone: str, adl: bool, settings: dict, seed: int, device: str, inputs: dict, outputs: dict, **_) -> None:
    """Train one GAP classifier on the train split's labels; keep the epoch with the best val_fullsup accuracy."""
    device = resolve_device(device)
    run_seed = derive_seed(seed, "wsol_train", backbone, adl)
    seed_everything(run_seed)
    training = settings["training"]
    train_split = cluttered.load(inputs["images"], inputs["boxes"], "train")
    val_split = cluttered.load(inputs["images"], inputs["boxes"], "val_fullsup")
    x, y = _tensors(train_split, backbone, settings["input_size"], device)
    x_val, y_val = _tensors(val_split, backbone, settings["input_size"], device)
    model = _model(backbone, adl, settings).to(device)
    optimiser = torch.optim.AdamW(model.parameters(), lr=training["lr"], weight_decay=training["weight_decay"])
    batch = training["batch_size"]
    steps_per_epoch = len(y) // batch
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimiser, max_lr=training["lr"], total_steps=training["epochs"] * steps_per_epoch
    )
    generator = torch.Generator().manual_seed(run_seed)
    history, best, best_state = [], -1.0, None
    started = time.perf_counter()
    for epoch in progress(range(1, training["epochs"] + 1), desc="epochs"):
        model.train()
        order = torch.randperm(len(y), generator=generator).to(device)
        total = 0.0
        for step in range(steps_per_epoch):
            index = order[step * batch : (step + 1) * batch]
            loss = F.cross_entropy(model(x[index]), y[index])
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            schedule.step()
            total += float(loss.detach())
        val_acc = _accuracy(model, x_val, y_val, training["eval_batch_size"])
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


def load_model(path: str | Path, backbone: str, adl: bool, settings: dict, device: str):
    model = _model(backbone, adl, {**settings, "pretrained": "none"})
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
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


def evaluate(
    *, backbone: str, adl: bool, settings: dict, seed: int, device: str, inputs: dict, outputs: dict, **_
) -> None:
    """Score every method under the three protocols; τ is chosen on val_fullsup and applied to test."""
    device = resolve_device(device)
    seed_everything(derive_seed(seed, "wsol_evaluate", backbone, adl))
    dataset_name = settings["data"]["name"]
    model = load_model(inputs["checkpoint"], backbone, adl, settings, device)
    thresholds = threshold_grid(settings["threshold_step"])
    deltas = tuple(settings["iou_thresholds"])
    base = {"dataset": dataset_name, "backbone": backbone, "adl": adl, "seed": seed}
    prov = provenance({"settings": settings, "backbone": backbone, "adl": adl, "seed": seed})
    rows, curves, sweeps, correct = [], [], {}, {}
    for split_name in ("val_fullsup", "test"):
        split = cluttered.load(inputs["images"], inputs["boxes"], split_name)
        x, y = _tensors(split, backbone, settings["input_size"], device)
        size = split.images.shape[1:]
        logits, maps = compute_maps(
            model, x, y, settings["methods"], region_k=settings["region_k"], size=size,
            batch_size=settings["training"]["eval_batch_size"],
        )
        correct[split_name] = (logits.argmax(1) == y.cpu()).numpy()
        maps["centre_box"] = np.broadcast_to(centre_box_map(*size), (len(y), *size))
        rows.append({**base, "method": "classifier", "protocol": "classification", "split": split_name,
                     "threshold": math.nan, "iou": math.nan, "metric": "top1_acc",
                     "value": float(correct[split_name].mean()), "n_images": len(y)})
        for method, method_maps in maps.items():
            started = time.perf_counter()
            result = sweep(method_maps, thresholds, split.boxes)
            fixed = boxes_at_threshold(method_maps, settings["paper_threshold"], split.boxes)
            sweeps[method, split_name] = result
            for metric, value in paper_localisation(fixed.largest_iou[:, 0], correct[split_name]).items():
                rows.append({**base, "method": method, "protocol": "paper", "split": split_name,
                             "threshold": settings["paper_threshold"], "iou": 0.5, "metric": metric,
                             "value": value, "n_images": len(y)})
            for boxes, ious, deltas_here in (("largest", result.largest_iou, (0.5,)), ("all", result.best_iou, deltas)):
                accuracy = box_accuracy(ious, deltas_here)
                for delta, curve in zip(deltas_here, accuracy):
                    curves.append(pd.DataFrame({
                        **base, "method": method, "split": split_name, "boxes": boxes, "iou": delta,
                        "threshold": thresholds, "value": curve,
                    }))
            log.info("%s %s: swept %d maps × %d τ in %.1f s", split_name, method, len(y), len(thresholds),
                     time.perf_counter() - started)
    for method in maps:
        val, test = sweeps[method, "val_fullsup"], sweeps[method, "test"]
        # maxboxacc (V1): GT-known / Top-1 loc at the τ chosen on val_fullsup, largest component, IoU ≥ 0.5
        val_curve = (val.largest_iou >= 0.5).mean(axis=0)
        chosen = int(val_curve.argmax())
        tau = float(thresholds[chosen])
        for split_name, result in (("val_fullsup", val), ("test", test)):
            for metric, value in paper_localisation(result.largest_iou[:, chosen], correct[split_name]).items():
                rows.append({**base, "method": method, "protocol": "maxboxacc", "split": split_name,
                             "threshold": tau, "iou": 0.5, "metric": metric, "value": value,
                             "n_images": len(result.largest_iou)})
        # maxboxacc_v2: τ per δ chosen on val_fullsup (all components), applied to test; mean over δ
        v2 = maxboxacc_v2(val.best_iou, test.best_iou, thresholds, deltas)
        for split_name, values, n in (("val_fullsup", v2.val_accuracy, len(val.best_iou)),
                                      ("test", v2.test_accuracy, len(test.best_iou))):
            for delta, tau_d, value in zip(deltas, v2.chosen_threshold, values):
                rows.append({**base, "method": method, "protocol": "maxboxacc_v2", "split": split_name,
                             "threshold": float(tau_d), "iou": delta, "metric": "box_acc", "value": float(value),
                             "n_images": n})
            rows.append({**base, "method": method, "protocol": "maxboxacc_v2", "split": split_name,
                         "threshold": math.nan, "iou": math.nan, "metric": "maxboxacc_v2",
                         "value": float(np.mean(values)), "n_images": n})
    metrics = pd.DataFrame(rows).assign(**prov)
    write_table(metrics, outputs["metrics"], column_docs=METRICS_COLUMNS)
    write_table(pd.concat(curves, ignore_index=True), outputs["curves"], column_docs=CURVES_COLUMNS)


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


def gather(*, inputs: dict, outputs: dict, **_) -> None:
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
    summaries = [read_json(p) for p in ([inputs["summaries"]] if isinstance(inputs["summaries"], str)
                                        else inputs["summaries"])]
    write_json({"localisation": headline_metrics(metrics),
                "training_seconds_mean": round(float(np.mean([s["seconds"] for s in summaries])), 1)},
               outputs["json"])


# ------------------------------------------------------------------------------------------------------- figures
def figures(
    *, backbone: str, adl: bool, settings: dict, device: str, inputs: dict, outputs: dict, **_
) -> None:
    """Heatmap grid (CAM vs infoCAM, GT box red, predicted box green) and accuracy-vs-τ curves."""
    from softmax_mi.plots_localisation import plot_heatmaps, plot_threshold_curves

    device = resolve_device(device)
    metrics = read_table(inputs["metrics"])
    curves = read_table(inputs["curves"])
    plot_threshold_curves(curves, metrics, outputs["curves_figure"])
    model = load_model(inputs["checkpoint"], backbone, adl, settings, device)
    split = cluttered.load(inputs["images"], inputs["boxes"], "test")
    count = settings["figure_images"]
    index = np.random.default_rng(derive_seed(0, "figure")).choice(len(split), size=count, replace=False)
    subset = cluttered.WSOLSplit(split.images[index], split.labels[index], split.boxes[index])
    x, y = _tensors(subset, backbone, settings["input_size"], device)
    methods = [m for m in ("cam", "infocam") if m in settings["methods"]]
    logits, maps = compute_maps(model, x, y, methods, region_k=settings["region_k"],
                                size=subset.images.shape[1:], batch_size=count)
    seed0 = metrics[(metrics["protocol"] == "maxboxacc") & (metrics["split"] == "test")
                    & (metrics["backbone"] == backbone) & (metrics["adl"] == adl)
                    & (metrics["seed"] == metrics["seed"].min()) & (metrics["metric"] == "gt_known_loc")]
    taus = {m: float(seed0.loc[seed0["method"] == m, "threshold"].iloc[0]) for m in methods}
    predicted = {m: sweep(maps[m], [taus[m]], subset.boxes).largest_box[:, 0] for m in methods}
    plot_heatmaps(subset, maps, predicted, taus, logits.argmax(1).numpy(), outputs["heatmaps"])
