"""Tiny-ImageNet-200: parse the official files, split the WSOL roles and write the prepared format
(``data/prepared/tiny_imagenet/images.npy`` + ``images.parquet``, see :data:`TINY_COLUMNS`).

Input: the official ``tiny-imagenet-200.zip`` (md5 90528d7ca1a48142e341f4ef8d21d0de, 248,100,043 bytes — the value
several public loaders pin, e.g. avalanche's; holds ``tiny-imagenet-200/…``) or the extracted folder. Files read:
``wnids.txt`` (one wnid per line: label = line order), ``words.txt`` (wnid TAB names), for each wnid
``train/<wnid>/images/*.JPEG`` and ``train/<wnid>/<wnid>_boxes.txt`` (file, x_min, y_min, x_max, y_max; TAB
separated), ``val/images/*.JPEG`` and ``val/val_annotations.txt`` (file, wnid, x_min, y_min, x_max, y_max). The
unlabelled ``test/`` folder is not used. Some JPEGs are grayscale: every image is converted to RGB.

Boxes
-----
The files give **inclusive** pixel bounds (x_max ≤ 63 on 64-px images), read correctly as the half-open box
``[x_min, x_max + 1) × [y_min, y_max + 1)`` (columns x0..y1). The original infoCAM code read them as x, y, w, h
(docs/paper.md B13): its box is (x_min, y_min, x_min + x_max, y_min + y_max), with the same inclusive convention; that
misreading is kept in columns fx0..fy1 (half-open, clipped to the image), for the explicit ``faithful`` flag only.
A box must lie in its image; one whose half-open edge ends at most 2 px past the right / bottom edge is clipped and
counted in the log (:func:`~softmax_mi.data.images.check_boxes`), one further out is refused.

WSOL roles (``split``)
----------------------
``train`` = the official train set (100,000; labels only, its boxes are stored but never used for training).
The official val set (10,000, with boxes) is split per class alternately in val_annotations.txt order: even
positions (0-based) → ``val_fullsup``, odd → ``test`` (25 + 25 per class), mirroring the original's val.txt /
test.txt halves (5,000 each; the original's exact membership is unverified, the rule is the same alternating one it
used for CUB).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd

from softmax_mi.data.cub import rank_within_class
from softmax_mi.data.images import BOX_OVERHANG, check_boxes, decode_to_npy, resize_boxes
from softmax_mi.data.raw import AnnotationError, parse_number, read_fields, read_lines
from softmax_mi.io import write_table

log = logging.getLogger(__name__)

TINY_COLUMNS = {
    "index": "row of this image in images.npy",
    "label": "class, 0-based in wnids.txt order",
    "x0": "GT box left edge in the S×S image, pixels (inclusive column)",
    "y0": "GT box top edge in the S×S image, pixels (inclusive row)",
    "x1": "GT box right edge in the S×S image, pixels (exclusive: x_max + 1, scaled)",
    "y1": "GT box bottom edge in the S×S image, pixels (exclusive: y_max + 1, scaled)",
    "split": "WSOL role: train (official train, labels only) | val_fullsup (even positions per class of the official "
             "val set) | test (odd positions)",
    "source": "official part the image comes from: train | val",
    "fx0": "original repo's misread box (x, y, w, h reading, docs/paper.md B13), left edge in the S×S image, pixels",
    "fy0": "original repo's misread box, top edge in the S×S image, pixels",
    "fx1": "original repo's misread box, right edge (exclusive, clipped to the image), pixels",
    "fy1": "original repo's misread box, bottom edge (exclusive, clipped to the image), pixels",
    "wnid": "WordNet id of the class (wnids.txt)",
    "class_name": "class names from words.txt",
    "path": "image file relative to the tiny-imagenet-200 folder",
    "orig_w": "original image width, pixels",
    "orig_h": "original image height, pixels",
    "box_x_min": "annotation x_min (inclusive), original pixels",
    "box_y_min": "annotation y_min (inclusive), original pixels",
    "box_x_max": "annotation x_max (inclusive), original pixels",
    "box_y_max": "annotation y_max (inclusive), original pixels",
}

FIX = "restore tiny-imagenet-200 from the official archive"


def _box(values, path, lineno) -> list[int]:
    box = [parse_number(v, int, path, lineno, f, FIX) for v, f in zip(values, ("x_min", "y_min", "x_max", "y_max"))]
    if not (0 <= box[0] <= box[2] and 0 <= box[1] <= box[3]):
        raise AnnotationError(f"{path} line {lineno}: box {values} must satisfy 0 <= x_min <= x_max and "
                              f"0 <= y_min <= y_max (fix: {FIX})")
    return box


def _listing(folder: Path) -> set[str]:
    return set(os.listdir(folder)) if folder.is_dir() else set()


def read_annotations(root: str | Path) -> pd.DataFrame:
    """One row per labelled image (train in wnids.txt then boxes-file order, then val in val_annotations.txt
    order): path, source, wnid, label, class_name, the inclusive box and the annotation line (for messages)."""
    root = Path(root)
    wnids: list[str] = []
    for lineno, (wnid,) in read_fields(root / "wnids.txt", "<wnid>", FIX):
        if wnid in wnids:
            raise AnnotationError(f"{root / 'wnids.txt'} line {lineno}: {wnid} repeats (fix: {FIX})")
        wnids.append(wnid)
    label_of = {wnid: i for i, wnid in enumerate(wnids)}
    names = _read_words(root / "words.txt", set(wnids))

    rows = []  # (path, source, wnid, x_min, y_min, x_max, y_max, annotation file, line)
    for wnid in wnids:
        boxes_file = root / "train" / wnid / f"{wnid}_boxes.txt"
        images = _listing(root / "train" / wnid / "images")
        seen = set()
        for lineno, (name, *values) in read_fields(boxes_file, "<file> <x_min> <y_min> <x_max> <y_max>", FIX):
            if name not in images:
                raise AnnotationError(f"{boxes_file} line {lineno}: {name} is not in {boxes_file.parent / 'images'} "
                                      f"(fix: {FIX})")
            if name in seen:
                raise AnnotationError(f"{boxes_file} line {lineno}: {name} repeats (fix: {FIX})")
            seen.add(name)
            rows.append((f"train/{wnid}/images/{name}", "train", wnid, *_box(values, boxes_file, lineno),
                         str(boxes_file), lineno))
        unboxed = sorted(images - seen)
        if unboxed:
            raise AnnotationError(f"{boxes_file}: no line for {len(unboxed)} image(s) of {boxes_file.parent / 'images'}"
                                  f", e.g. {unboxed[:3]} (fix: {FIX})")

    annotations = root / "val" / "val_annotations.txt"
    val_images = _listing(root / "val" / "images")
    seen = set()
    for lineno, (name, wnid, *values) in read_fields(annotations, "<file> <wnid> <x_min> <y_min> <x_max> <y_max>", FIX):
        if wnid not in label_of:
            raise AnnotationError(f"{annotations} line {lineno}: wnid {wnid} is not in wnids.txt (fix: {FIX})")
        if name not in val_images:
            raise AnnotationError(f"{annotations} line {lineno}: {name} is not in {root / 'val' / 'images'} "
                                  f"(fix: {FIX})")
        if name in seen:
            raise AnnotationError(f"{annotations} line {lineno}: {name} repeats (fix: {FIX})")
        seen.add(name)
        rows.append((f"val/images/{name}", "val", wnid, *_box(values, annotations, lineno), str(annotations), lineno))
    unlabelled = sorted(val_images - seen)
    if unlabelled:
        raise AnnotationError(f"{annotations}: no line for {len(unlabelled)} image(s) of {root / 'val' / 'images'}, "
                              f"e.g. {unlabelled[:3]} (fix: {FIX})")

    frame = pd.DataFrame(rows, columns=["path", "source", "wnid", "box_x_min", "box_y_min", "box_x_max", "box_y_max",
                                        "annotation_file", "annotation_line"])
    frame["label"] = frame["wnid"].map(label_of).astype(np.int64)
    frame["class_name"] = frame["wnid"].map(names)
    return frame


def _read_words(path: Path, wnids: set[str]) -> dict[str, str]:
    """wnid → names for the dataset's wnids (words.txt covers all of WordNet's 82k; names may hold spaces)."""
    names = {}
    for _, line in read_lines(path, "<wnid> TAB <names>", FIX):
        wnid, _, words = line.partition("\t")
        if wnid in wnids:
            names[wnid] = words.strip()
    missing = sorted(wnids - set(names))
    if missing:
        raise AnnotationError(f"{path}: no line for wnid(s) {missing[:3]} of wnids.txt (fix: {FIX})")
    return names


def correct_boxes(inclusive: np.ndarray) -> np.ndarray:
    """Inclusive [x_min, y_min, x_max, y_max] → half-open (x0, y0, x1, y1), original pixels."""
    return np.asarray(inclusive, np.float64) + np.array([0, 0, 1, 1])


def faithful_boxes(inclusive: np.ndarray, orig_w: np.ndarray, orig_h: np.ndarray) -> np.ndarray:
    """The original's misreading (x, y, w, h → x1 + x2, y1 + y2; docs/paper.md B13), half-open, clipped to image."""
    b = np.asarray(inclusive, np.float64)
    misread = np.stack([b[:, 0], b[:, 1], b[:, 0] + b[:, 2] + 1, b[:, 1] + b[:, 3] + 1], axis=1)
    return np.minimum(misread, np.stack([orig_w, orig_h, orig_w, orig_h], axis=1))


def wsol_split(labels: np.ndarray, source: np.ndarray) -> np.ndarray:
    """train for official train; official val alternately per class (row order) → val_fullsup (even) / test (odd)."""
    is_val = np.asarray(source) == "val"
    rank = rank_within_class(labels, is_val)
    out = np.full(len(labels), "train", dtype=object)
    out[is_val & (rank % 2 == 0)] = "val_fullsup"
    out[is_val & (rank % 2 == 1)] = "test"
    return out


def build_table(annotations: pd.DataFrame, sizes: np.ndarray, settings: dict) -> pd.DataFrame:
    a = annotations
    size = settings["image_size"]
    inclusive = a[["box_x_min", "box_y_min", "box_x_max", "box_y_max"]].to_numpy(np.int64)

    def describe(i: int) -> str:
        row = a.iloc[i]
        return (f"{row['annotation_file']} line {row['annotation_line']}: x_min y_min x_max y_max "
                f"{' '.join(map(str, inclusive[i].tolist()))} for {row['path']}")

    corrected = correct_boxes(inclusive)
    clipped = check_boxes(corrected, sizes[:, 0], sizes[:, 1], describe, FIX)
    if clipped:
        log.warning("Tiny-ImageNet: %d box(es) end at most %d px past their image's edge and were clipped to it",
                    clipped, BOX_OVERHANG)
    boxes = resize_boxes(corrected, sizes[:, 0], sizes[:, 1], size)
    faithful = resize_boxes(faithful_boxes(inclusive, sizes[:, 0], sizes[:, 1]), sizes[:, 0], sizes[:, 1], size)
    labels = a["label"].to_numpy(np.int64)
    frame = pd.DataFrame({
        "index": np.arange(len(a), dtype=np.int64),
        "label": labels,
        "x0": boxes[:, 0], "y0": boxes[:, 1], "x1": boxes[:, 2], "y1": boxes[:, 3],
        "split": wsol_split(labels, a["source"].to_numpy()).astype(str),
        "source": a["source"],
        "fx0": faithful[:, 0], "fy0": faithful[:, 1], "fx1": faithful[:, 2], "fy1": faithful[:, 3],
        "wnid": a["wnid"], "class_name": a["class_name"], "path": a["path"],
        "orig_w": sizes[:, 0], "orig_h": sizes[:, 1],
        "box_x_min": inclusive[:, 0], "box_y_min": inclusive[:, 1],
        "box_x_max": inclusive[:, 2], "box_y_max": inclusive[:, 3],
    })
    return frame[list(TINY_COLUMNS)]


def prepare(root: str | Path, images_out: str | Path, table_out: str | Path, settings: dict,
            threads: int = 1) -> pd.DataFrame:
    """Parse the dataset folder ``root``, decode every labelled image and write images.npy + images.parquet."""
    root = Path(root)
    annotations = read_annotations(root)
    log.info("Tiny-ImageNet: %d labelled images, %d classes", len(annotations), annotations["label"].nunique())
    size = settings["image_size"]
    sizes = decode_to_npy([root / p for p in annotations["path"]], size, images_out, threads=threads,
                          desc="Tiny-ImageNet images")
    frame = build_table(annotations, sizes, settings)
    write_table(frame, table_out, column_docs=TINY_COLUMNS,
                table_doc=f"Tiny-ImageNet-200 prepared at {size}×{size} (softmax_mi.data.tiny_imagenet)")
    log.info("Tiny-ImageNet splits: %s", frame["split"].value_counts().to_dict())
    return frame
