"""Boxes, IoU and maps at the image resolution (conventions: :mod:`softmax_mi.localisation`)."""

from __future__ import annotations

import numpy as np
import scipy.ndimage as ndi

EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)


def box_area(boxes: np.ndarray) -> np.ndarray:
    boxes = np.asarray(boxes, dtype=np.float64)
    return np.clip(boxes[..., 2] - boxes[..., 0], 0, None) * np.clip(boxes[..., 3] - boxes[..., 1], 0, None)


def iou(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """Element-wise (broadcast) IoU of half-open boxes ``[..., 4]``; disjoint or empty boxes give 0."""
    a = np.asarray(boxes_a, dtype=np.float64)
    b = np.asarray(boxes_b, dtype=np.float64)
    width = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    height = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = width * height
    union = box_area(a) + box_area(b) - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def normalise_maps(maps: np.ndarray) -> np.ndarray:
    """Min-max normalise each map ``[N, H, W]`` to [0, 1] (a constant map becomes all zeros), float32."""
    maps = np.asarray(maps, dtype=np.float32)
    low = maps.min(axis=(1, 2), keepdims=True)
    span = maps.max(axis=(1, 2), keepdims=True) - low
    return np.divide(maps - low, span, out=np.zeros_like(maps), where=span > 0)


def mask_boxes(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Boxes ``[k, 4]`` and pixel counts ``[k]`` of the 8-connected components of one 2-D mask (raster label order)."""
    labels, count = ndi.label(mask, structure=EIGHT_CONNECTED)
    if count == 0:
        return np.zeros((0, 4), np.int64), np.zeros(0, np.int64)
    slices = ndi.find_objects(labels)
    boxes = np.array([[s[1].start, s[0].start, s[1].stop, s[0].stop] for s in slices], dtype=np.int64)
    return boxes, np.bincount(labels.ravel(), minlength=count + 1)[1:]


def centre_box_map(height: int, width: int) -> np.ndarray:
    """A pyramid peaking at the image centre: thresholding it at τ gives a central box of side ≈ (1 − τ) × image.

    Scored like any other map, it is the centre-box baseline (a fixed central box whose size is chosen the same way
    as a method's τ), the floor every localisation number is compared with."""
    ys = (np.arange(height) + 0.5) / height - 0.5
    xs = (np.arange(width) + 0.5) / width - 0.5
    return (1.0 - 2.0 * np.maximum(np.abs(ys)[:, None], np.abs(xs)[None, :])).astype(np.float32)


def largest_component_boxes(masks: np.ndarray) -> np.ndarray:
    """The box ``[N, 4]`` (int64, half-open) of the largest 8-connected component of each mask ``[N, H, W]``, in one
    ``scipy.ndimage.label`` call over the stack; ``(0, 0, 0, 0)`` for an empty mask.

    Ties go to the component whose first pixel comes first in raster order: the same boxes as
    :func:`~softmax_mi.localisation.tau_sweep.boxes_at_threshold`'s ``largest_box``, without its IoU bookkeeping.

    Example::

        >>> mask = np.zeros((1, 4, 6), bool); mask[0, 1:3, 2:5] = True; mask[0, 0, 0] = True
        >>> largest_component_boxes(mask).tolist()
        [[2, 1, 5, 3]]
    """
    masks = np.asarray(masks, dtype=bool)
    if masks.ndim != 3:
        raise ValueError(f"masks must be [N, H, W], got shape {masks.shape}")
    n, h, w = masks.shape
    boxes = np.zeros((n, 4), np.int64)
    structure = np.zeros((3, 3, 3), bool)
    structure[1] = EIGHT_CONNECTED  # components never cross from one mask to the next
    labels, count = ndi.label(masks, structure=structure)
    if count == 0:
        return boxes
    flat = labels.reshape(n, -1)
    # labels are numbered in raster order over the stack: mask i holds labels first[i] .. last[i]
    last = np.maximum.accumulate(flat.max(axis=1))
    first = np.r_[0, last[:-1]] + 1
    used = np.flatnonzero(last >= first)
    sizes = np.bincount(labels.ravel(), minlength=count + 1)
    sizes[0] = 0
    label_ids = np.arange(count + 1)
    key = sizes * (count + 1) + (count - label_ids)  # the largest, then the lowest label (first in raster order)
    winner = count - np.maximum.reduceat(key, first[used]) % (count + 1)
    component = flat[used] == winner[:, None]
    rows = component.reshape(-1, h, w).any(axis=2)
    cols = component.reshape(-1, h, w).any(axis=1)
    boxes[used] = np.stack([cols.argmax(axis=1), rows.argmax(axis=1),
                            w - cols[:, ::-1].argmax(axis=1), h - rows[:, ::-1].argmax(axis=1)], axis=1)
    return boxes
