"""WSOL scoring of any score maps: GT-known / Top-1 loc, MaxBoxAcc (V1) and MaxBoxAccV2, under two protocols.

The maps may come from anywhere: this package's extractors (:mod:`softmax_mi.extractors`), torchcam,
pytorch-grad-cam, or ``.npy`` files; one 2-D map per image, of any size (each is resized to its image's size). Boxes
are ``(x0, y0, x1, y1)`` in the image's pixels; an image may have several (its IoU is the best over them).

Protocols
---------
``ours`` (the default; the convention of :mod:`softmax_mi.localisation`, docs/paper.md §4.5)
    The map is resized to the image size with bilinear interpolation (``cv2.INTER_LINEAR``, half-pixel centres,
    float32: the interpolation of this package's extractors), min-max normalised (a constant map becomes 0), and
    thresholded as ``map >= τ`` on a τ grid of step 0.01; boxes are the bounding boxes of 8-connected components,
    half-open (a box covers columns ``x0 .. x1-1``), IoU clamped at 0. The ``largest`` component (pixel count) gives
    GT-known loc, Top-1 loc and MaxBoxAcc (V1); the best of all components gives MaxBoxAccV2.
``wsolevaluation`` (clovaai/wsolevaluation's ``BoxEvaluator``, to compare with published WSOL tables)
    The map (float64) is resized with ``cv2.INTER_CUBIC`` when it is not at the image size, min-max normalised
    (constant → 0), quantised to ``uint8`` as ``int(map · 255)``, and thresholded as ``value > int(τ · max)``
    (``cv2.threshold``) for τ in ``np.arange(0, 1, 0.001)``; boxes are ``cv2.boundingRect`` of every contour that
    ``cv2.findContours(RETR_TREE)`` returns, holes included, read as ``(x, y, x + w, y + h)`` clipped to
    ``width - 1`` / ``height - 1``; IoU with inclusive ``+1`` areas. V1 takes the contour of largest
    ``cv2.contourArea``; an empty mask gives the box ``(0, 0, 0, 0)``. ``resize_length=224`` also rescales the GT
    boxes to a ``224 × 224`` image as it does (coordinates truncated to integers). Unlike its
    ``normalize_scoremap``, a map with NaN is refused rather than zeroed.

Where τ comes from
------------------
* ``tau=0.2``: fixed; every split is scored at it.
* ``held_out="val"``: chosen on the images whose split is ``"val"`` (V1: one τ; V2: one τ per IoU threshold; the
  first best τ on ties) and applied to every split; the table says where τ came from (``tau_from``).
* neither, with ``protocol="wsolevaluation"``: the max over τ on the scored split itself, as ``BoxEvaluator`` does.
  ``protocol="ours"`` refuses this (the test split would choose its own τ, docs/paper.md B17).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from softmax_mi.localisation.boxes import normalise_maps
from softmax_mi.localisation.protocols import (
    IOU_THRESHOLDS_V2,
    box_accuracy,
    maxboxacc,
    maxboxacc_v2,
    paper_localisation,
    threshold_grid,
)
from softmax_mi.localisation.tau_sweep import boxes_at_threshold, sweep
from softmax_mi.registry import BOX_CONVENTIONS

PROTOCOLS = BOX_CONVENTIONS
DEFAULT_STEP = {"ours": 0.01, "wsolevaluation": 0.001}  # wsolevaluation: config.py's cam_curve_interval
V1_IOU = 0.5

TABLE_COLUMNS = {
    "protocol": "scoring protocol: ours or wsolevaluation",
    "split": "the images scored (the split column of the boxes; 'all' when there is none)",
    "metric": "gt_known_loc, top1_loc, maxboxacc (V1) or maxboxacc_v2 (per IoU threshold; iou empty = their mean)",
    "iou": "IoU threshold of a hit (empty for the mean over IoU thresholds)",
    "threshold": "map threshold τ used, on the min-max normalised map (empty for the mean)",
    "tau_from": "where τ came from: 'fixed', or the split it was chosen on",
    "value": "fraction of the split's images localised (fraction 0–1)",
    "n_images": "images in the split",
}


@dataclass(frozen=True)
class WSOLScores:
    """The result of :func:`score_maps`.

    ``table``: one row per split × metric × IoU threshold (columns :data:`TABLE_COLUMNS`, values are fractions).
    ``curves``: box accuracy at every τ of the grid, per split, for the ``largest`` box (IoU 0.5) and for ``all``
    boxes (every IoU threshold): columns split, boxes, iou, threshold, value.
    """

    table: pd.DataFrame
    curves: pd.DataFrame

    def value(self, metric: str, *, split: str | None = None, iou: float | None = None) -> float:
        """One number of ``table``: ``scores.value("maxboxacc_v2")`` is the mean over IoU thresholds,
        ``scores.value("maxboxacc_v2", iou=0.7)`` one of them. ``split`` may be left out when there is one."""
        rows = self.table[self.table.metric == metric]
        if split is None:
            splits = rows.split.unique()
            if len(splits) != 1:
                raise ValueError(f"several splits {list(splits)}: pass split=...")
            split = splits[0]
        rows = rows[rows.split == split]
        rows = rows[rows.iou.isna()] if iou is None and metric == "maxboxacc_v2" else rows
        rows = rows if iou is None else rows[np.isclose(rows.iou, iou)]
        if len(rows) != 1:
            raise KeyError(f"no single row for metric={metric!r}, split={split!r}, iou={iou}")
        return float(rows.value.iloc[0])

    def per_iou(self, split: str | None = None) -> dict[float, float]:
        """MaxBoxAccV2 per IoU threshold, ``{0.3: …, 0.5: …, 0.7: …}``."""
        rows = self.table[(self.table.metric == "maxboxacc_v2") & self.table.iou.notna()]
        split = split if split is not None else rows.split.iloc[0]
        rows = rows[rows.split == split]
        return {float(d): float(v) for d, v in zip(rows.iou, rows.value)}

    def __str__(self) -> str:
        """:meth:`summary` as text (``print(scores)``)."""
        return self.summary().to_string(float_format=lambda v: f"{v:.2f}")

    def summary(self) -> pd.DataFrame:
        """A readable wide table: one row per split, one column per metric (in %), plus the τ used."""
        table = self.table
        name = table.metric + np.where(table.iou.isna(), "", "@" + table.iou.map("{:g}".format))
        name = name.where(~((table.metric == "maxboxacc_v2") & table.iou.isna()), "maxboxacc_v2 (mean)")
        wide = (table.assign(name=name, value=100 * table.value)
                .pivot_table(index="split", columns="name", values="value", sort=False))
        first = table.drop_duplicates("split").set_index("split")
        wide.insert(0, "n_images", first.n_images)
        wide["tau (V1)"] = table[table.metric == "maxboxacc"].set_index("split").threshold
        wide["tau from"] = first.tau_from
        return wide.rename_axis(columns=None)


# ------------------------------------------------------------------------------------------------------ inputs
def _to_numpy(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):  # a torch tensor, without importing torch
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def _as_map_list(maps: Any) -> list[np.ndarray]:
    if isinstance(maps, (list, tuple)):
        out = [_to_numpy(m) for m in maps]
    else:
        array = _to_numpy(maps)
        if array.ndim == 4 and array.shape[1] == 1:  # [N, 1, h, w]
            array = array[:, 0]
        if array.ndim != 3:
            raise ValueError(f"maps must be [N, h, w] (or a list of 2-D maps), got shape {array.shape}")
        out = list(array)
    for i, m in enumerate(out):
        if m.ndim != 2 or 0 in m.shape:
            raise ValueError(f"map {i} must be a non-empty 2-D array (h, w), got shape {m.shape}")
        if not np.isfinite(m).all():
            raise ValueError(f"map {i} contains NaN or inf")
    return out


def _as_box_list(boxes: Any, n: int) -> list[np.ndarray]:
    if not isinstance(boxes, (list, tuple)):
        boxes = list(_to_numpy(boxes))
    if len(boxes) != n:
        raise ValueError(f"{len(boxes)} boxes for {n} maps: give one [4] box or a [k, 4] array per map")
    out = []
    for i, b in enumerate(boxes):
        b = np.asarray(_to_numpy(b), dtype=np.float64).reshape(-1, 4) if np.size(b) else np.zeros((0, 4))
        if len(b) == 0:
            raise ValueError(f"image {i} has no GT box")
        out.append(b)
    return out


def _check_boxes(boxes: list[np.ndarray], sizes: np.ndarray) -> None:
    for i, (b, (h, w)) in enumerate(zip(boxes, sizes)):
        bad = (b[:, 0] < 0) | (b[:, 1] < 0) | (b[:, 2] < b[:, 0]) | (b[:, 3] < b[:, 1]) | (b[:, 2] > w) | (b[:, 3] > h)
        if bad.any():
            raise ValueError(f"image {i}: box {b[bad][0].tolist()} is not inside its {w} × {h} image "
                             "(need 0 <= x0 <= x1 <= width, 0 <= y0 <= y1 <= height)")


def _resize(m: np.ndarray, size: tuple[int, int], interpolation: int) -> np.ndarray:
    if m.shape == tuple(size):
        return m
    import cv2

    return cv2.resize(m, (int(size[1]), int(size[0])), interpolation=interpolation)


# ------------------------------------------------------------------------------------------------------ protocols
def _ious_ours(maps, boxes, sizes, thresholds) -> tuple[np.ndarray, np.ndarray]:
    """Per image and τ: IoU of the largest component's box and the best IoU over all components' boxes."""
    import cv2

    n, t_count = len(maps), len(thresholds)
    largest, best = np.zeros((n, t_count)), np.zeros((n, t_count))
    groups: dict[tuple[int, int], list[int]] = {}
    for i, size in enumerate(map(tuple, sizes)):
        groups.setdefault(size, []).append(i)
    for size, index in groups.items():
        stack = normalise_maps(np.stack([_resize(maps[i].astype(np.float32), size, cv2.INTER_LINEAR) for i in index]))
        g = max(len(boxes[i]) for i in index)
        gt = np.zeros((len(index), g, 4))
        for row, i in enumerate(index):
            gt[row, : len(boxes[i])] = boxes[i]
        gt = gt[:, 0] if g == 1 else gt
        result = boxes_at_threshold(stack, thresholds[0], gt) if t_count == 1 else sweep(stack, thresholds, gt)
        largest[index], best[index] = result.largest_iou, result.best_iou
    return largest, best


def wsolevaluation_normalise(scoremap: np.ndarray) -> np.ndarray:
    """wsolevaluation's ``normalize_scoremap``: min-max to [0, 1] in float64; a constant map becomes zeros."""
    scoremap = np.array(scoremap, dtype=np.float64)
    if scoremap.min() == scoremap.max():
        return np.zeros_like(scoremap)
    scoremap -= scoremap.min()
    scoremap /= scoremap.max()
    return scoremap


def inclusive_iou(boxes: np.ndarray, gt_boxes: np.ndarray) -> np.ndarray:
    """IoU ``[k, g]`` with wsolevaluation's inclusive-pixel convention: area ``(x1 - x0 + 1) · (y1 - y0 + 1)``,
    intersection clamped at 0, and 0 where the union is not positive."""
    a, b = np.asarray(boxes, np.float64)[:, None, :], np.asarray(gt_boxes, np.float64)[None, :, :]
    inter = (np.maximum(0, np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]) + 1)
             * np.maximum(0, np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]) + 1))
    area_a = (a[..., 2] - a[..., 0] + 1) * (a[..., 3] - a[..., 1] + 1)
    area_b = (b[..., 2] - b[..., 0] + 1) * (b[..., 3] - b[..., 1] + 1)
    union = area_a + area_b - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def wsolevaluation_boxes(quantised: np.ndarray, cut: int) -> tuple[np.ndarray, int]:
    """Boxes ``[k, 4]`` of every contour of ``quantised > cut`` (wsolevaluation's box rule) and the index of the
    contour of largest ``cv2.contourArea`` (its V1 box); an empty mask gives ``[[0, 0, 0, 0]]``."""
    import cv2

    height, width = quantised.shape
    _, mask = cv2.threshold(quantised, cut, 255, cv2.THRESH_BINARY)
    contours = cv2.findContours(mask, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE)[0]
    if len(contours) == 0:
        return np.zeros((1, 4), np.int64), 0
    areas = [cv2.contourArea(c) for c in contours]
    rects = np.array([cv2.boundingRect(c) for c in contours], np.int64).reshape(-1, 4)
    x0, y0 = rects[:, 0], rects[:, 1]
    x1 = np.minimum(x0 + rects[:, 2], width - 1)
    y1 = np.minimum(y0 + rects[:, 3], height - 1)
    return np.stack([x0, y0, x1, y1], axis=1), int(np.argmax(areas))  # argmax: the first largest, as max() does


def _ious_wsolevaluation(maps, boxes, sizes, thresholds) -> tuple[np.ndarray, np.ndarray]:
    """Per image and τ: IoU of the largest contour's box and the best IoU over all contours' boxes (one OpenCV
    contour search per distinct integer cut: at most 255 per map, whatever the τ grid)."""
    import cv2

    from softmax_mi.runtime import progress

    n, t_count = len(maps), len(thresholds)
    largest, best = np.zeros((n, t_count)), np.zeros((n, t_count))
    quiet = n <= 200 or bool(os.environ.get("SOFTMAX_MI_QUIET"))  # else: a bar on a terminal (None: not on a pipe)
    bar = progress(range(n), desc="wsolevaluation boxes", unit="map", disable=True if quiet else None)
    for i in bar:
        scoremap = wsolevaluation_normalise(_resize(maps[i].astype(np.float64), sizes[i], cv2.INTER_CUBIC))
        quantised = (scoremap * 255).astype(np.uint8)
        cuts = (thresholds * float(quantised.max())).astype(np.int64)  # int(τ · max), τ ≥ 0
        for cut in np.unique(cuts):
            found, top = wsolevaluation_boxes(quantised, int(cut))
            ious = inclusive_iou(found, boxes[i]).max(axis=1)
            at = cuts == cut
            largest[i, at], best[i, at] = ious[top], ious.max()
    return largest, best


def _resize_boxes(boxes: list[np.ndarray], sizes: np.ndarray, length: int) -> list[np.ndarray]:
    """wsolevaluation's ``resize_bbox``: each coordinate scaled to a ``length × length`` image, then truncated."""
    out = []
    for b, (h, w) in zip(boxes, sizes):
        scale = np.array([length, length, length, length], np.float64)
        size = np.array([w, h, w, h], np.float64)
        out.append(np.trunc(b * scale / size))  # (coordinate · new size) / old size, as its float expression
    return out


# ------------------------------------------------------------------------------------------------------ the scorer
def score_maps(
    maps: Any,
    boxes: Any,
    *,
    image_sizes: Any = None,
    splits: Sequence[str] | None = None,
    labels: Sequence[int] | None = None,
    predictions: Sequence[int] | None = None,
    protocol: str = "ours",
    tau: float | None = None,
    held_out: str | None = None,
    threshold_step: float | None = None,
    iou_thresholds: Sequence[float] = IOU_THRESHOLDS_V2,
    resize_length: int | None = None,
) -> WSOLScores:
    """Score the localisation of score maps against GT boxes (module docstring: the protocols and τ choices).

    Args:
        maps: ``[N, h, w]`` array or tensor, or a list of N 2-D maps (sizes may differ), one per image, for the
            class to localise (usually the GT class). Any real values: each map is min-max normalised.
        boxes: per image one ``(x0, y0, x1, y1)`` box or a ``[k, 4]`` array of boxes, in the image's pixels.
        image_sizes: ``[N, 2]`` ``(height, width)`` per image; default: each map's own size (maps at image size).
            A map of another size is resized to its image size.
        splits: a split name per image (e.g. ``"val"`` / ``"test"``); default: all images in split ``"all"``.
        labels, predictions: class labels and predicted (top-1) classes, both or neither; with them the table
            also has ``top1_loc`` (a hit also needs ``prediction == label``).
        protocol: ``"ours"`` (default) or ``"wsolevaluation"``.
        tau: a fixed threshold (no choice of τ); excludes ``held_out``.
        held_out: the split on which τ is chosen, then applied to every split.
        threshold_step: the τ grid step (default 0.01 for ``ours``, 0.001 for ``wsolevaluation``).
        iou_thresholds: MaxBoxAccV2's IoU thresholds.
        resize_length: ``wsolevaluation`` only: score on a ``length × length`` image as it does (224), boxes
            rescaled from ``image_sizes`` and truncated.

    Returns:
        :class:`WSOLScores` (``.table``, ``.curves``, ``.value(...)``, ``.per_iou()``, ``.summary()``).

    Example:
        >>> import numpy as np
        >>> from softmax_mi import score_maps
        >>> maps = np.zeros((2, 32, 32)); maps[0, 8:20, 8:20] = 1; maps[1, 0:10, 20:30] = 1
        >>> boxes = [(8, 8, 20, 20), (20, 0, 30, 10)]
        >>> scores = score_maps(maps, boxes, tau=0.5)
        >>> scores.value("gt_known_loc"), scores.value("maxboxacc_v2", iou=0.7)
        (1.0, 1.0)
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
    if tau is not None and held_out is not None:
        raise ValueError("give either tau (a fixed threshold) or held_out (the split τ is chosen on), not both")
    if tau is not None and not 0 <= tau < 1:
        raise ValueError(f"tau must be in [0, 1), got {tau}")
    if tau is None and held_out is None and protocol == "ours":
        raise ValueError("protocol 'ours' needs tau=... (fixed) or held_out=... (the split τ is chosen on, e.g. "
                         "'val'); protocol='wsolevaluation' takes the max over τ on each split itself")
    if (labels is None) != (predictions is None):
        raise ValueError("Top-1 loc needs both labels and predictions (or neither)")
    if resize_length is not None and protocol != "wsolevaluation":
        raise ValueError("resize_length belongs to protocol='wsolevaluation'")
    map_list = _as_map_list(maps)
    n = len(map_list)
    box_list = _as_box_list(boxes, n)
    sizes = (np.array([m.shape for m in map_list]) if image_sizes is None
             else np.asarray(_to_numpy(image_sizes), dtype=np.int64).reshape(-1, 2))
    if len(sizes) != n:
        raise ValueError(f"{len(sizes)} image sizes for {n} maps")
    _check_boxes(box_list, sizes)
    split_names = np.array(["all"] * n if splits is None else [str(s) for s in splits], dtype=object)
    if len(split_names) != n:
        raise ValueError(f"{len(split_names)} split names for {n} maps")
    if held_out is not None and held_out not in set(split_names):
        raise ValueError(f"held_out={held_out!r} names no images; the splits are {sorted(set(split_names))}")
    correct = None
    if labels is not None:
        labels_, predictions_ = np.asarray(labels).ravel(), np.asarray(predictions).ravel()
        if len(labels_) != n or len(predictions_) != n:
            raise ValueError(f"{len(labels_)} labels and {len(predictions_)} predictions for {n} maps")
        correct = labels_ == predictions_

    step = DEFAULT_STEP[protocol] if threshold_step is None else threshold_step
    if tau is not None:
        thresholds = np.array([float(tau)])
    elif protocol == "wsolevaluation":
        thresholds = np.arange(0, 1, step)  # exactly its list(np.arange(0, 1, cam_curve_interval))
    else:
        thresholds = threshold_grid(step)
    if protocol == "ours":
        largest, best = _ious_ours(map_list, box_list, sizes, thresholds)
    else:
        if resize_length is not None:
            box_list = _resize_boxes(box_list, sizes, resize_length)
            sizes = np.full((n, 2), resize_length)
        largest, best = _ious_wsolevaluation(map_list, box_list, sizes, thresholds)
    return _summarise(protocol, thresholds, largest, best, split_names, correct, tuple(iou_thresholds),
                      fixed=tau is not None, held_out=held_out)


def _summarise(protocol, thresholds, largest, best, splits, correct, deltas, *, fixed, held_out) -> WSOLScores:
    """The table, from the pipeline's own protocol functions (``maxboxacc``, ``maxboxacc_v2``,
    ``paper_localisation`` of :mod:`softmax_mi.localisation.protocols`): per split, τ chosen on ``held_out`` (or on
    the split itself; a fixed τ is a one-point grid)."""
    names = list(dict.fromkeys(splits))
    has_top1 = correct is not None
    correct = np.ones(len(splits), bool) if correct is None else correct
    rows, curves = [], []
    for s in names:
        rows_s, chooser = splits == s, splits == (held_out or s)
        base = {"protocol": protocol, "split": s, "tau_from": "fixed" if fixed else (held_out or s),
                "n_images": int(rows_s.sum())}
        v1 = maxboxacc(largest[chooser], thresholds, V1_IOU)
        loc = paper_localisation(largest[rows_s, v1.chosen_index], correct[rows_s], V1_IOU)
        for metric in ("gt_known_loc", "top1_loc", "maxboxacc"):
            if metric != "top1_loc" or has_top1:
                rows.append({**base, "metric": metric, "iou": V1_IOU, "threshold": v1.chosen_threshold,
                             "value": loc["top1_loc" if metric == "top1_loc" else "gt_known_loc"]})
        v2 = maxboxacc_v2(best[chooser], best[rows_s], thresholds, deltas)
        for delta, tau_d, value in zip(deltas, v2.chosen_threshold, v2.test_accuracy):
            rows.append({**base, "metric": "maxboxacc_v2", "iou": delta, "threshold": float(tau_d), "value": value})
        rows.append({**base, "metric": "maxboxacc_v2", "iou": math.nan, "threshold": math.nan,
                     "value": v2.test_mean})
        curve_v1 = box_accuracy(largest[rows_s], (V1_IOU,))
        for boxes, deltas_here, curve in (("largest", (V1_IOU,), curve_v1), ("all", deltas, v2.test_curve)):
            for delta, values in zip(deltas_here, curve):
                curves.append(pd.DataFrame({"split": s, "boxes": boxes, "iou": delta, "threshold": thresholds,
                                            "value": values}))
    table = pd.DataFrame(rows)[list(TABLE_COLUMNS)]
    table["value"] = table["value"].astype(np.float64)
    return WSOLScores(table=table, curves=pd.concat(curves, ignore_index=True))
