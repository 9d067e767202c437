"""Scoring a trained GAP classifier's maps on WSOL splits: every method under the three protocols (needs torch).

:func:`evaluate_wsol` is the whole loop: per split, a chunk of images at a time, one forward pass gives the logits and
every weight-rule map (:func:`compute_maps`, :mod:`softmax_mi.cam`; Grad-CAM takes a second, gradient pass), each map
is swept over the τ grid and boxed at the paper's fixed τ (:func:`score_split`); then, per method, the ``maxboxacc``
(V1) and ``maxboxacc_v2`` τ are chosen on ``val_fullsup`` and applied to every split
(:mod:`softmax_mi.localisation.protocols`). A ``centre_box`` map (a fixed central box, sized by τ like any method's
box) is scored next to the methods as the floor.

Maps are computed for the ground-truth class. Top-1 loc (class correct AND IoU ≥ 0.5) uses them too: when the top-1
class is correct the predicted-class map *is* the GT-class map, and when it is wrong the image fails either way, so
this equals scoring the predicted-class map. Deviations from the original, on purpose: plain final ratios (B14),
clamped IoU (B15), argmin for the least-likely class (B16), τ chosen on val_fullsup (B6, B17), τ on the min-max
normalised map rather than on a cubehelix-gray rendering (docs/paper.md §1.6 step 3); ``infocam_full`` keeps the
original's stretched full-padding map (B18) next to the centred ``infocam``. Images are scored at their own size
(wsolevaluation's protocol), not centre-cropped.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from softmax_mi.cam import WEIGHT_METHODS, FeatureExtractor, all_maps, gradcam_maps, normalise, upsample
from softmax_mi.data.wsol import WSOLSplit
from softmax_mi.localisation.boxes import centre_box_map
from softmax_mi.localisation.protocols import box_accuracy, maxboxacc, maxboxacc_v2, paper_localisation, threshold_grid
from softmax_mi.localisation.tau_sweep import Sweep, boxes_at_threshold, concat_sweeps, sweep

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WSOLEvalConfig:
    """What scoring needs from the WSOL settings (params.yaml ``localisation``)."""

    methods: Sequence[str]  # softmax_mi.cam methods; centre_box is always added
    region_k: int = 3  # infoCAM region size
    paper_threshold: float = 0.2  # `paper` protocol: fixed τ
    threshold_step: float = 0.01  # τ grid step of the maxboxacc protocols
    iou_thresholds: Sequence[float] = (0.3, 0.5, 0.7)  # maxboxacc_v2's δ
    batch_size: int = 500  # images per chunk (the maps of a chunk are held in memory)

    @classmethod
    def from_params(cls, settings: Mapping[str, Any]) -> WSOLEvalConfig:
        return cls(methods=settings["methods"], region_k=settings["region_k"],
                   paper_threshold=settings["paper_threshold"], threshold_step=settings["threshold_step"],
                   iou_thresholds=tuple(settings["iou_thresholds"]),
                   batch_size=settings["training"]["eval_batch_size"])


def compute_maps(model: nn.Module, x: torch.Tensor, y: torch.Tensor, methods: Sequence[str], *, region_k: int,
                 size: tuple[int, int], batch_size: int) -> tuple[torch.Tensor, dict[str, np.ndarray]]:
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


def score_split(model: nn.Module, split: WSOLSplit, to_input: Callable, config: WSOLEvalConfig,
                thresholds: np.ndarray) -> tuple[np.ndarray, dict[str, Sweep], dict[str, Sweep]]:
    """Per-image results on one split, a chunk of images at a time (maps of a whole CUB split would not fit in
    memory): top-1 correctness, and per method the τ sweep and the boxes at the paper's fixed τ."""
    chunk = config.batch_size
    centre = centre_box_map(*split.size)
    correct, sweeps, fixed = [], {}, {}
    for start in range(0, len(split), chunk):
        part = split.subset(slice(start, start + chunk))
        labels = torch.from_numpy(part.labels).to(to_input.device)
        logits, maps = compute_maps(model, to_input(part.images), labels, config.methods,
                                    region_k=config.region_k, size=split.size, batch_size=chunk)
        correct.append((logits.argmax(1) == labels.cpu()).numpy())
        maps["centre_box"] = np.broadcast_to(centre, (len(part), *split.size))
        for method, method_maps in maps.items():
            sweeps.setdefault(method, []).append(sweep(method_maps, thresholds, part.boxes))
            fixed.setdefault(method, []).append(boxes_at_threshold(method_maps, config.paper_threshold, part.boxes))
    return (np.concatenate(correct), {m: concat_sweeps(v) for m, v in sweeps.items()},
            {m: concat_sweeps(v) for m, v in fixed.items()})


def evaluate_wsol(
    model: nn.Module, splits: Iterable[tuple[str, WSOLSplit]], to_input: Callable, config: WSOLEvalConfig, *,
    tags: Mapping[str, Any] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Score every method on every split; the two MaxBoxAcc τ choices are made on the split named ``val_fullsup``.

    ``splits`` yields (name, split) pairs, so the caller may load each split only when it is scored. ``tags``
    (e.g. dataset, backbone, seed) lead every row. Returns ``(metrics, curves)``: one row per method × protocol ×
    split × metric (``threshold`` and ``iou`` NaN where they do not apply), and box accuracy per τ (``largest``
    component at δ = 0.5, ``all`` components at every δ of ``config.iou_thresholds``)."""
    base = dict(tags or {})
    thresholds = threshold_grid(config.threshold_step)
    deltas = tuple(config.iou_thresholds)
    names, rows, curves, sweeps, correct = [], [], [], {}, {}

    def row(**values):
        rows.append({**base, **values})

    for split_name, split in splits:
        started = time.perf_counter()
        names.append(split_name)
        correct[split_name], split_sweeps, fixed = score_split(model, split, to_input, config, thresholds)
        n = len(split)
        row(method="classifier", protocol="classification", split=split_name, threshold=math.nan, iou=math.nan,
            metric="top1_acc", value=float(correct[split_name].mean()), n_test=n)
        for method, result in split_sweeps.items():
            sweeps[method, split_name] = result
            for metric, value in paper_localisation(fixed[method].largest_iou[:, 0], correct[split_name]).items():
                row(method=method, protocol="paper", split=split_name, threshold=config.paper_threshold,
                    iou=0.5, metric=metric, value=value, n_test=n)
            for boxes, ious, deltas_here in (("largest", result.largest_iou, (0.5,)), ("all", result.best_iou, deltas)):
                for delta, curve in zip(deltas_here, box_accuracy(ious, deltas_here)):
                    curves.append(pd.DataFrame({
                        **base, "method": method, "split": split_name, "boxes": boxes, "iou": delta,
                        "threshold": thresholds, "value": curve,
                    }))
        log.info("%s: %d images, %d maps × %d τ per method, %.1f s", split_name, n, n, len(thresholds),
                 time.perf_counter() - started)
    if "val_fullsup" not in names:
        raise ValueError(f"evaluate_wsol: τ is chosen on val_fullsup, but the splits are {names}")
    for method in dict.fromkeys(m for m, _ in sweeps):
        val = sweeps[method, "val_fullsup"]
        v1 = maxboxacc(val.largest_iou, thresholds)  # one τ, largest component, IoU ≥ 0.5
        for split_name in names:
            result = sweeps[method, split_name]
            at_tau = result.largest_iou[:, v1.chosen_index]
            for metric, value in paper_localisation(at_tau, correct[split_name]).items():
                row(method=method, protocol="maxboxacc", split=split_name, threshold=v1.chosen_threshold, iou=0.5,
                    metric=metric, value=value, n_test=len(result.largest_iou))
        for split_name in names:  # one τ per δ, all components; mean over δ
            result = sweeps[method, split_name]
            v2 = maxboxacc_v2(val.best_iou, result.best_iou, thresholds, deltas)
            n = len(result.best_iou)
            for delta, tau_d, value in zip(deltas, v2.chosen_threshold, v2.test_accuracy):
                row(method=method, protocol="maxboxacc_v2", split=split_name, threshold=float(tau_d), iou=delta,
                    metric="box_acc", value=float(value), n_test=n)
            row(method=method, protocol="maxboxacc_v2", split=split_name, threshold=math.nan, iou=math.nan,
                metric="maxboxacc_v2", value=float(np.mean(v2.test_accuracy)), n_test=n)
    return pd.DataFrame(rows), pd.concat(curves, ignore_index=True)


def maps_with_boxes(model: nn.Module, split: WSOLSplit, to_input: Callable, thresholds: Mapping[str, float], *,
                    region_k: int) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """What a heatmap figure shows for a handful of images (one batch): the predicted classes ``[N]``, each method's
    maps for the GT classes ``[N, H, W]`` and the box of their largest component at the method's τ ``[N, 4]``."""
    labels = torch.from_numpy(split.labels).to(to_input.device)
    logits, maps = compute_maps(model, to_input(split.images), labels, list(thresholds), region_k=region_k,
                                size=split.size, batch_size=len(split))
    boxes = {m: sweep(maps[m], [tau], split.boxes).largest_box[:, 0] for m, tau in thresholds.items()}
    return logits.argmax(1).numpy(), maps, boxes
