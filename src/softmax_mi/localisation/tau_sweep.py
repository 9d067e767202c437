"""The τ sweep: boxes and IoUs of a batch of maps at every threshold of a grid, in one pass.

Thresholds are visited from high to low, pixels join the masks level by level (all images at once), and a union-find
over component labels keeps each component's box, area and first pixel. Work is O(pixels · 8 + thresholds) instead of
O(pixels · thresholds); :func:`sweep_reference` is the straightforward per-threshold ``scipy.ndimage.label`` loop with
identical results (the tests and ``bench/cam.py`` check both). Conventions: :mod:`softmax_mi.localisation`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.ndimage as ndi
from scipy.sparse import csr_array
from scipy.sparse.csgraph import connected_components

from softmax_mi.localisation.boxes import iou, mask_boxes


@dataclass
class Sweep:
    """Per (image, threshold) results of :func:`sweep` (``N`` maps × ``T`` thresholds)."""

    thresholds: np.ndarray  # [T], ascending
    largest_box: np.ndarray  # [N, T, 4] int64, box of the largest component ((0,0,0,0) if the mask is empty)
    largest_iou: np.ndarray  # [N, T] float64, IoU of that box with the GT box (the best over several)
    best_iou: np.ndarray  # [N, T] float64, best IoU over all components' boxes (MaxBoxAccV2)
    n_components: np.ndarray  # [N, T] int64


def concat_sweeps(parts: Sequence[Sweep]) -> Sweep:
    """One :class:`Sweep` from sweeps of consecutive chunks of images (same thresholds)."""
    return Sweep(parts[0].thresholds, *(np.concatenate([getattr(p, field) for p in parts])
                                        for field in ("largest_box", "largest_iou", "best_iou", "n_components")))


def _check_inputs(maps: np.ndarray, thresholds: Sequence[float], gt_boxes: np.ndarray):
    maps = np.asarray(maps)
    if maps.ndim != 3:
        raise ValueError(f"maps must be [N, H, W], got shape {maps.shape}")
    if not np.isfinite(maps).all():
        raise ValueError("maps contain NaN or inf")
    thresholds = np.asarray(thresholds, dtype=maps.dtype if maps.dtype.kind == "f" else np.float64)
    if thresholds.ndim != 1 or len(thresholds) == 0 or np.any(np.diff(thresholds) <= 0):
        raise ValueError("thresholds must be a non-empty, strictly increasing 1-D sequence")
    gt_boxes = np.asarray(gt_boxes, dtype=np.float64)
    if gt_boxes.shape[:1] + gt_boxes.shape[-1:] != (len(maps), 4) or gt_boxes.ndim not in (2, 3):
        raise ValueError(f"gt_boxes must be [N, 4] or [N, G, 4] with N = {len(maps)}, got {gt_boxes.shape}")
    return maps, thresholds, gt_boxes


def _gt_iou(boxes: np.ndarray, gt_boxes: np.ndarray) -> np.ndarray:
    """IoU of each box ``[k, 4]`` with its image's GT ``[k, 4]``, or the best over its GT boxes ``[k, G, 4]`` (pad
    with empty boxes such as ``(0, 0, 0, 0)``: IoU 0)."""
    if gt_boxes.ndim == 2:
        return iou(boxes, gt_boxes)
    return iou(boxes[:, None, :], gt_boxes).max(axis=1, initial=0.0)


def _find(parent: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Root label of each label (vectorised union-find lookup with path halving)."""
    roots = labels
    while True:
        up = parent[roots]
        moving = up != roots
        if not moving.any():
            return roots
        parent[roots] = parent[up]
        roots = np.where(moving, parent[roots], roots)


def _unique(values: np.ndarray, slot: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(values, return_inverse=True)`` in O(n) (unsorted), using a scratch array ``slot`` of -1s."""
    order = np.arange(len(values))
    slot[values] = order
    representative = slot[values]
    canonical = representative == order
    slot[values] = -1
    return values[canonical], (np.cumsum(canonical) - 1)[representative]


def sweep(
    maps: np.ndarray, thresholds: Sequence[float], gt_boxes: np.ndarray, *, large_level: int = 32
) -> Sweep:
    """Boxes and IoUs of every map at every threshold, in one pass (see the module docstring).

    ``gt_boxes``: ``[N, 4]``, or ``[N, G, 4]`` for several GT boxes per image (IoU = the best over them; pad with
    ``(0, 0, 0, 0)``).

    ``large_level``: a threshold level holding more than 1/large_level of all pixels is labelled with one
    ``scipy.ndimage.label`` pass instead of a neighbour graph (same result, faster on plateaus)."""
    maps, thresholds, gt_boxes = _check_inputs(maps, thresholds, gt_boxes)
    n, h, w = maps.shape
    t_count = len(thresholds)
    hp, wp = h + 2, w + 2  # one inactive pixel of padding around each map: no component crosses images
    level = np.full((n, hp, wp), -1, dtype=np.int64)
    # level = number of thresholds <= value: the pixel is in the mask at threshold index t iff level > t
    level[:, 1:-1, 1:-1] = np.searchsorted(thresholds, maps, side="right")
    level = level.ravel()
    pixels = np.flatnonzero(level > 0)
    sort_key = (t_count - level[pixels]).astype(np.int16 if t_count < 2**15 else np.int64)
    pixels = pixels[np.argsort(sort_key, kind="stable")]  # descending level (a radix sort for int16 keys)
    levels_sorted = level[pixels]
    image_of = pixels // (hp * wp)
    row_of = (pixels % (hp * wp)) // wp - 1
    col_of = pixels % wp - 1
    offsets = np.array([-wp - 1, -wp, -wp + 1, -1, 1, wp - 1, wp, wp + 1], dtype=np.int64)

    capacity = len(pixels) + 1
    parent = np.arange(capacity, dtype=np.int64)
    lab_img = np.zeros(capacity, np.int64)
    lab_x0 = np.zeros(capacity, np.int64)
    lab_y0 = np.zeros(capacity, np.int64)
    lab_x1 = np.zeros(capacity, np.int64)  # inclusive while sweeping
    lab_y1 = np.zeros(capacity, np.int64)
    lab_area = np.zeros(capacity, np.int64)
    lab_first = np.zeros(capacity, np.int64)
    lab_hi = np.zeros(capacity, np.int64)  # highest threshold index at which the label is a component
    lab_lo = np.zeros(capacity, np.int64)  # lowest one (set when it is absorbed)
    label_of = np.full(level.shape, -1, dtype=np.int64)
    position = np.full(level.shape, -1, dtype=np.int64)
    slot = np.full(capacity, -1, dtype=np.int64)  # scratch for an O(n) unique over label ids
    n_labels = 0

    # boundaries of the groups of pixels sharing a level (descending)
    starts = np.flatnonzero(np.r_[True, levels_sorted[1:] != levels_sorted[:-1]])
    ends = np.r_[starts[1:], len(pixels)]
    in_plane = np.zeros((3, 3, 3), bool)
    in_plane[1] = True
    for start, end in zip(starts.tolist(), ends.tolist()):
        t = int(levels_sorted[start]) - 1  # the new pixels are in the masks of thresholds 0..t
        new = pixels[start:end]
        k = len(new)
        if k * large_level > level.size:
            # a large level (plateaus: ReLU'd maps, the centre box): the new pixels' own components come from
            # one scipy.ndimage.label pass; only new pixels touching old ones need the neighbour lookups
            new_mask = np.zeros(level.size, bool)
            new_mask[new] = True
            own, n_own = ndi.label(new_mask.reshape(n, hp, wp), structure=in_plane)
            own = own.ravel()
            touching = ndi.binary_dilation((label_of >= 0).reshape(n, hp, wp), structure=in_plane).ravel()
            edge_pixels = np.flatnonzero(touching & new_mask)
            del new_mask, touching
            neighbours = edge_pixels[:, None] + offsets[None, :]
            nb_lab = label_of[neighbours]
            src_no, col_no = np.nonzero(nb_lab >= 0)
            roots, old_pixels = _find(parent, nb_lab[src_no, col_no]), neighbours[src_no, col_no]
            label_of[old_pixels] = roots
            old_roots, old_index = _unique(roots, slot)
            u = len(old_roots)
            rows = own[edge_pixels[src_no]] - 1
            graph = csr_array(
                (np.ones(len(rows), np.int8), (rows, n_own + old_index)), shape=(n_own + u, n_own + u)
            )
            n_comp, comp = connected_components(graph, directed=True, connection="weak")
            comp_new, comp_old = comp[own[new] - 1], comp[n_own:]
        else:
            position[new] = np.arange(k)
            neighbours = new[:, None] + offsets[None, :]
            # out-edges of each new pixel (row-major, so already a CSR layout): to new neighbours and to old roots
            nb_pos = position[neighbours]
            nb_lab = label_of[neighbours]
            position[new] = -1
            src_no, col_no = np.nonzero(nb_lab >= 0)
            roots, old_pixels = _find(parent, nb_lab[src_no, col_no]), neighbours[src_no, col_no]
            label_of[old_pixels] = roots
            old_roots, old_index = _unique(roots, slot)
            u = len(old_roots)
            targets = np.where(nb_pos >= 0, nb_pos, -1)
            targets[src_no, col_no] = k + old_index
            valid = targets >= 0
            indptr = np.zeros(k + u + 1, np.int64)
            np.cumsum(valid.sum(axis=1), out=indptr[1 : k + 1])
            indptr[k + 1 :] = indptr[k]
            indices = targets[valid]
            graph = csr_array((np.ones(len(indices), np.int8), indices, indptr), shape=(k + u, k + u))
            n_comp, comp = connected_components(graph, directed=True, connection="weak")
            comp_new, comp_old = comp[:k], comp[k:]
        ids = n_labels + np.arange(n_comp)
        n_labels += n_comp
        # attributes of the new labels: new pixels ∪ absorbed old components
        sel = slice(start, end)
        lab_img[ids[comp_new]] = image_of[sel]
        x0 = np.full(n_comp, np.iinfo(np.int64).max)
        y0 = x0.copy()
        first = x0.copy()
        x1 = np.full(n_comp, -1, np.int64)
        y1 = x1.copy()
        area = np.zeros(n_comp, np.int64)
        np.minimum.at(x0, comp_new, col_of[sel])
        np.minimum.at(y0, comp_new, row_of[sel])
        np.maximum.at(x1, comp_new, col_of[sel])
        np.maximum.at(y1, comp_new, row_of[sel])
        np.minimum.at(first, comp_new, row_of[sel] * w + col_of[sel])
        np.add.at(area, comp_new, 1)
        if u:
            np.minimum.at(x0, comp_old, lab_x0[old_roots])
            np.minimum.at(y0, comp_old, lab_y0[old_roots])
            np.maximum.at(x1, comp_old, lab_x1[old_roots])
            np.maximum.at(y1, comp_old, lab_y1[old_roots])
            np.minimum.at(first, comp_old, lab_first[old_roots])
            np.add.at(area, comp_old, lab_area[old_roots])
            parent[old_roots] = ids[comp_old]
            lab_lo[old_roots] = t + 1
        lab_x0[ids], lab_y0[ids], lab_x1[ids], lab_y1[ids] = x0, y0, x1, y1
        lab_first[ids], lab_area[ids], lab_hi[ids], lab_lo[ids] = first, area, t, 0
        label_of[new] = ids[comp_new]

    return _score_labels(
        n, t_count, thresholds, gt_boxes,
        img=lab_img[:n_labels], lo=lab_lo[:n_labels], hi=lab_hi[:n_labels], area=lab_area[:n_labels],
        first=lab_first[:n_labels],
        boxes=np.stack([lab_x0[:n_labels], lab_y0[:n_labels], lab_x1[:n_labels] + 1, lab_y1[:n_labels] + 1], axis=1),
        pixels_per_map=h * w,
    )


def _score_labels(n, t_count, thresholds, gt_boxes, *, img, lo, hi, area, first, boxes, pixels_per_map) -> Sweep:
    """Expand each component label over the thresholds at which it exists and reduce per (image, threshold)."""
    label_iou = _gt_iou(boxes, gt_boxes[img])
    repeat = hi - lo + 1
    label = np.repeat(np.arange(len(img)), repeat)
    offset = np.arange(len(label)) - np.repeat(np.cumsum(repeat) - repeat, repeat)
    cell = img[label] * t_count + lo[label] + offset
    best = np.zeros(n * t_count)
    np.maximum.at(best, cell, label_iou[label])
    count = np.bincount(cell, minlength=n * t_count)
    # largest component: the max of one integer key (area, then earliest first pixel) per cell
    key = area[label] * (pixels_per_map + 1) + (pixels_per_map - first[label])
    top = np.full(n * t_count, -1, np.int64)
    np.maximum.at(top, cell, key)
    winner = top[cell] == key
    largest_box = np.zeros((n * t_count, 4), np.int64)
    largest_iou = np.zeros(n * t_count)
    largest_box[cell[winner]] = boxes[label[winner]]
    largest_iou[cell[winner]] = label_iou[label[winner]]
    return Sweep(
        thresholds=np.asarray(thresholds),
        largest_box=largest_box.reshape(n, t_count, 4),
        largest_iou=largest_iou.reshape(n, t_count),
        best_iou=best.reshape(n, t_count),
        n_components=count.reshape(n, t_count),
    )


def sweep_reference(maps: np.ndarray, thresholds: Sequence[float], gt_boxes: np.ndarray) -> Sweep:
    """The straightforward loop: one ``scipy.ndimage.label`` per image and threshold (for tests and benchmarks)."""
    maps, thresholds, gt_boxes = _check_inputs(maps, thresholds, gt_boxes)
    n, t_count = len(maps), len(thresholds)
    largest_box = np.zeros((n, t_count, 4), np.int64)
    largest_iou = np.zeros((n, t_count))
    best_iou = np.zeros((n, t_count))
    n_components = np.zeros((n, t_count), np.int64)
    for i in range(n):
        for t, tau in enumerate(thresholds):
            boxes, sizes = mask_boxes(maps[i] >= tau)
            if len(sizes) == 0:
                continue
            ious = _gt_iou(boxes, np.broadcast_to(gt_boxes[i], (len(boxes), *gt_boxes.shape[1:])))
            j = int(np.argmax(sizes))
            largest_box[i, t], largest_iou[i, t] = boxes[j], ious[j]
            best_iou[i, t], n_components[i, t] = ious.max(), len(sizes)
    return Sweep(np.asarray(thresholds), largest_box, largest_iou, best_iou, n_components)


def boxes_at_threshold(maps: np.ndarray, threshold: float, gt_boxes: np.ndarray) -> Sweep:
    """:func:`sweep` for one threshold, done as one ``scipy.ndimage.label`` call over the whole stack (components
    connected within each image only); same results, faster when only one τ is needed (the ``paper`` protocol)."""
    maps, thresholds, gt_boxes = _check_inputs(maps, [threshold], gt_boxes)
    n, h, w = maps.shape
    structure = np.zeros((3, 3, 3), bool)
    structure[1] = True
    labels, count = ndi.label(maps >= thresholds[0], structure=structure)
    if count == 0:
        return _score_labels(n, 1, thresholds, gt_boxes, img=np.zeros(0, np.int64), lo=np.zeros(0, np.int64),
                             hi=np.zeros(0, np.int64), area=np.zeros(0, np.int64), first=np.zeros(0, np.int64),
                             boxes=np.zeros((0, 4), np.int64), pixels_per_map=h * w)
    slices = ndi.find_objects(labels)
    bounds = np.array([[s[0].start, s[2].start, s[1].start, s[2].stop, s[1].stop] for s in slices], np.int64)
    flat = labels.reshape(n, -1)
    # first pixel (raster order) of each label: the minimum flat index within its image
    nonzero = np.flatnonzero(flat.ravel())
    first = np.full(count + 1, np.iinfo(np.int64).max)
    np.minimum.at(first, flat.ravel()[nonzero], nonzero % (h * w))
    return _score_labels(
        n, 1, thresholds, gt_boxes, img=bounds[:, 0], lo=np.zeros(count, np.int64), hi=np.zeros(count, np.int64),
        area=np.bincount(flat.ravel(), minlength=count + 1)[1:], first=first[1:], boxes=bounds[:, 1:],
        pixels_per_map=h * w,
    )
