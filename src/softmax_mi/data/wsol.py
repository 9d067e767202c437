"""The one on-disk format every WSOL dataset is read from, and the evaluation splits it offers.

A WSOL dataset is a folder with two files, written by its preparation stage:

``images.npy``
    uint8, ``[N, H, W]`` (grey: the embedded cluttered MNIST) or ``[N, 3, H, W]`` (RGB: CUB-200-2011,
    Tiny-ImageNet, resized to a square by their preparation stages).
a table (``boxes.parquet`` / ``images.parquet``)
    one row per image: ``index`` (row in images.npy), ``split`` (train | val_fullsup | test), ``label`` (0-based),
    ``x0, y0, x1, y1`` (the ground-truth box, half-open pixel-edge coordinates, see :mod:`softmax_mi.localisation`),
    plus dataset-specific columns. Two of those add *derived* evaluation splits, so faithful and corrected
    protocols are scored side by side on one model:

    - ``faithful_half_test`` (CUB): the original repository evaluates on every other test image of each class
      (2,878 of 5,794; docs/paper.md B12) → split ``test_half``;
    - ``fx0, fy0, fx1, fy1`` (Tiny-ImageNet): the original's misreading of the box files (x_min y_min x_max y_max
      read as x y w h; docs/paper.md B13) → split ``test_faithful_boxes`` (the test images, scored against them).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from softmax_mi.io import read_table

SPLITS = ("train", "val_fullsup", "test")
BOX_COLUMNS = ["x0", "y0", "x1", "y1"]
FAITHFUL_BOX_COLUMNS = ["fx0", "fy0", "fx1", "fy1"]

#: derived split → (stored split it is cut from, what it means)
DERIVED_SPLITS = {
    "test_half": ("test", "the original repository's half test set (every other test image per class, B12)"),
    "test_faithful_boxes": ("test", "test images scored against the original's misread boxes (B13)"),
}


@dataclass
class WSOLSplit:
    images: np.ndarray  # uint8 [n, H, W] or [n, 3, H, W]
    labels: np.ndarray  # int64 [n]
    boxes: np.ndarray  # int64 [n, 4] half-open

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def size(self) -> tuple[int, int]:
        """(H, W) of the images: the grid the maps are scored on."""
        return tuple(self.images.shape[-2:])

    def subset(self, index: np.ndarray) -> WSOLSplit:
        return WSOLSplit(self.images[index], self.labels[index], self.boxes[index])


def evaluation_splits(table: pd.DataFrame) -> list[str]:
    """The splits scored for this dataset: val_fullsup, test, and the derived splits its columns allow."""
    splits = ["val_fullsup", "test"]
    if "faithful_half_test" in table.columns:
        splits.append("test_half")
    if set(FAITHFUL_BOX_COLUMNS) <= set(table.columns):
        splits.append("test_faithful_boxes")
    return splits


def _rows(table: pd.DataFrame, split: str, source: str | Path) -> tuple[pd.DataFrame, list[str]]:
    boxes = BOX_COLUMNS
    if split in SPLITS:
        rows = table[table["split"] == split]
    elif split == "test_half":
        rows = table[(table["split"] == "test") & table["faithful_half_test"].astype(bool)]
    elif split == "test_faithful_boxes":
        rows, boxes = table[table["split"] == "test"], FAITHFUL_BOX_COLUMNS
    else:
        raise ValueError(f"{source}: unknown split {split!r}; choose one of {[*SPLITS, *DERIVED_SPLITS]}")
    missing = [c for c in ("index", "label", *boxes) if c not in table.columns]
    if missing:
        raise ValueError(f"{source}: columns {missing} are missing for split {split!r}; re-run the dataset's "
                         "preparation stage (the format is described in softmax_mi.data.wsol)")
    return rows, boxes


def load(images_path: str | Path, table_path: str | Path, split: str) -> WSOLSplit:
    """One split of a WSOL dataset folder (images memory-mapped, then copied for the split)."""
    rows, boxes = _rows(read_table(table_path), split, table_path)
    images = np.load(images_path, mmap_mode="r")
    if images.ndim not in (3, 4):
        raise ValueError(f"{images_path}: expected uint8 [N, H, W] or [N, 3, H, W], got shape {images.shape}")
    return WSOLSplit(
        images=np.ascontiguousarray(images[rows["index"].to_numpy()]),
        labels=np.array(rows["label"], dtype=np.int64),  # writable copies: torch.from_numpy shares them
        boxes=np.array(rows[boxes], dtype=np.int64),
    )


def n_classes(table_path: str | Path) -> int:
    return int(pd.read_parquet(table_path, columns=["label"])["label"].max()) + 1
