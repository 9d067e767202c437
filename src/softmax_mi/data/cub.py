"""CUB-200-2011: parse the official annotation files, derive every split the paper's protocols use, and write the
prepared format (``data/prepared/cub/images.npy`` + ``images.parquet``, see :data:`CUB_COLUMNS`).

Input: the official ``CUB_200_2011.tgz`` (MD5 97eceeb196236b17998738112f37df78; it holds ``CUB_200_2011/…`` and a
top-level ``attributes.txt``) or the extracted ``CUB_200_2011/`` folder, whose files are read:
``images.txt`` (image_id, path under images/), ``classes.txt`` (class_id, ``NNN.Name``), ``image_class_labels.txt``
(image_id, class_id), ``train_test_split.txt`` (image_id, is_training 1/0) and ``bounding_boxes.txt``
(image_id, x, y, width, height: floats, original pixels). Labels are 0-based in classes.txt order. A box must be
finite, have a positive size and lie in its image; one ending at most 2 px past the right / bottom edge is clipped
and counted in the log (:func:`~softmax_mi.data.images.check_boxes`, once the image sizes are known).

Splits (all deterministic; "per class in images.txt order" = the order of the image ids within a class)
-------------------------------------------------------------------------------------------------------
``official_split``
    the standard balanced split (5,994 train / 5,794 test on the real data).
``pc_split`` — the paper's imbalanced PC-softmax split (docs/paper.md §3.2), reproduced by rule
    per class, ``train`` = the first 10 (even 0-based label) or 30 (odd label) of its official train images and
    ``test`` = the first 5 / 15 of its official test images; the rest is ``unused``. The counts come from
    ``pc_split.train_per_class`` / ``test_per_class`` ([even, odd]). On the real data the rule gives 3,997 train
    / 1,996 test, the sizes of the original's ``data/cub_200/{train,val}.txt`` (three odd classes have only 29
    official train images, one has only 11 official test images).
``split`` — the WSOL roles
    ``val_fullsup`` = ``val_per_class`` official train images per class, drawn with a seed (held out with boxes,
    for the threshold τ and model selection — never the test set, docs/paper.md B6); ``train`` = the rest of official
    train (labels only); ``test`` = the full official test set (5,794).
``faithful_half_test``
    the original infoCAM repo's ``test.txt`` (docs/paper.md B12): the official test images split alternately per class
    in images.txt order, the odd positions (0-based) kept — 2,878 images on the real data. Report both.

Images are resized to S × S directly (no crop) and boxes mapped to that frame (:func:`resize_boxes`); the original
size (orig_w, orig_h) and the original box (box_x … box_h) are kept, so the mapping can be undone.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd

from softmax_mi.data.images import BOX_OVERHANG, check_boxes, decode_to_npy, resize_boxes
from softmax_mi.data.raw import AnnotationError, parse_number, read_fields
from softmax_mi.io import write_table
from softmax_mi.runtime import derive_seed

log = logging.getLogger(__name__)

CUB_COLUMNS = {
    "index": "row of this image in images.npy",
    "label": "class, 0-based in classes.txt order (class_id − 1 on the official files)",
    "x0": "GT box left edge in the S×S image, pixels (inclusive column)",
    "y0": "GT box top edge in the S×S image, pixels (inclusive row)",
    "x1": "GT box right edge in the S×S image, pixels (exclusive: last column + 1)",
    "y1": "GT box bottom edge in the S×S image, pixels (exclusive: last row + 1)",
    "split": "WSOL role: train (labels only) | val_fullsup (seeded val_per_class per class from official train; "
             "boxes choose τ / checkpoint) | test (the full official test set)",
    "official_split": "standard balanced split from train_test_split.txt: train | test",
    "pc_split": "the paper's imbalanced PC-softmax split: train (first 10 / 30 official train images per even / odd "
                "label) | test (first 5 / 15 official test images) | unused",
    "faithful_half_test": "in the original infoCAM repo's half test list (odd positions per class of the official "
                          "test images; docs/paper.md B12)",
    "image_id": "image_id in images.txt",
    "class_name": "class folder name from classes.txt (NNN.Name)",
    "path": "image file relative to the CUB_200_2011 folder",
    "orig_w": "original image width, pixels",
    "orig_h": "original image height, pixels",
    "box_x": "bounding_boxes.txt x (left edge), original pixels",
    "box_y": "bounding_boxes.txt y (top edge), original pixels",
    "box_w": "bounding_boxes.txt width, original pixels",
    "box_h": "bounding_boxes.txt height, original pixels",
}

FIX = "restore CUB_200_2011 from the official archive"


# ------------------------------------------------------------------------------------------------------------ parsing
def _by_id(rows, path: Path, layout: str, ids: np.ndarray) -> dict[int, tuple[int, list[str]]]:
    """``{image_id: (line, fields)}`` of a per-image file, checked to cover exactly the ids of images.txt once."""
    table: dict[int, tuple[int, list[str]]] = {}
    for lineno, fields in rows:
        image_id = parse_number(fields[0], int, path, lineno, "image_id", FIX)
        if image_id in table:
            raise AnnotationError(f"{path} line {lineno}: image_id {image_id} repeats line {table[image_id][0]} "
                                  f"(fix: {FIX})")
        table[image_id] = (lineno, fields[1:])
    known = set(ids.tolist())
    extra = sorted(set(table) - known)
    if extra:
        lineno = table[extra[0]][0]
        raise AnnotationError(f"{path} line {lineno}: image_id {extra[0]} is not in images.txt (fix: {FIX})")
    missing = [i for i in ids.tolist() if i not in table]
    if missing:
        raise AnnotationError(
            f"{path}: no line for {len(missing)} image_id(s) of images.txt, e.g. {missing[:3]} "
            f"(expected '{layout}' for every image) (fix: {FIX})"
        )
    return table


def read_annotations(root: str | Path) -> pd.DataFrame:
    """One row per image in images.txt order: image_id, path, class_id, label, class_name, is_train, box_x…box_h
    and where the box is written (box_file, box_line: for messages)."""
    root = Path(root)
    image_rows = read_fields(root / "images.txt", "<image_id> <path>", FIX)
    ids, paths, seen = [], [], {}
    for lineno, (image_id, path) in image_rows:
        image_id = parse_number(image_id, int, root / "images.txt", lineno, "image_id", FIX)
        if image_id in seen:
            raise AnnotationError(f"{root / 'images.txt'} line {lineno}: image_id {image_id} repeats line "
                                  f"{seen[image_id]} (fix: {FIX})")
        seen[image_id] = lineno
        ids.append(image_id)
        paths.append(path)
    ids = np.asarray(ids, np.int64)

    classes = {}
    for lineno, (class_id, name) in read_fields(root / "classes.txt", "<class_id> <class_name>", FIX):
        class_id = parse_number(class_id, int, root / "classes.txt", lineno, "class_id", FIX)
        if class_id in classes:
            raise AnnotationError(f"{root / 'classes.txt'} line {lineno}: class_id {class_id} repeats (fix: {FIX})")
        classes[class_id] = name
    class_ids = sorted(classes)
    if class_ids != list(range(1, len(class_ids) + 1)):
        raise AnnotationError(f"{root / 'classes.txt'}: class ids must be 1..{len(class_ids)} without gaps, found "
                              f"{class_ids[:5]}… (fix: {FIX})")

    layout = "<image_id> <class_id>"
    labels = _by_id(read_fields(root / "image_class_labels.txt", layout, FIX), root / "image_class_labels.txt",
                    layout, ids)
    layout_split = "<image_id> <is_training_image>"
    split = _by_id(read_fields(root / "train_test_split.txt", layout_split, FIX), root / "train_test_split.txt",
                   layout_split, ids)
    layout_box = "<image_id> <x> <y> <width> <height>"
    boxes = _by_id(read_fields(root / "bounding_boxes.txt", layout_box, FIX), root / "bounding_boxes.txt",
                   layout_box, ids)

    class_of = np.empty(len(ids), np.int64)
    is_train = np.empty(len(ids), bool)
    box = np.empty((len(ids), 4), np.float64)
    box_line = np.empty(len(ids), np.int64)
    for i, image_id in enumerate(ids.tolist()):
        lineno, (class_id,) = labels[image_id]
        class_of[i] = parse_number(class_id, int, root / "image_class_labels.txt", lineno, "class_id", FIX)
        if class_of[i] not in classes:
            raise AnnotationError(f"{root / 'image_class_labels.txt'} line {lineno}: class_id {class_of[i]} is not in "
                                  f"classes.txt (fix: {FIX})")
        lineno, (flag,) = split[image_id]
        if flag not in {"0", "1"}:
            raise AnnotationError(f"{root / 'train_test_split.txt'} line {lineno}: is_training_image is {flag!r}, "
                                  f"expected 1 or 0 (fix: {FIX})")
        is_train[i] = flag == "1"
        lineno, values = boxes[image_id]
        box_line[i] = lineno
        box[i] = [parse_number(v, float, root / "bounding_boxes.txt", lineno, f, FIX)
                  for v, f in zip(values, ("x", "y", "width", "height"))]
        if box[i, 2] <= 0 or box[i, 3] <= 0 or box[i, 0] < 0 or box[i, 1] < 0:
            raise AnnotationError(f"{root / 'bounding_boxes.txt'} line {lineno}: box {values} must have x, y >= 0 "
                                  f"and width, height > 0 (fix: {FIX})")
        folder = paths[i].split("/", 1)[0]
        if folder != classes[class_of[i]]:
            raise AnnotationError(
                f"{root / 'images.txt'} line {seen[image_id]}: {paths[i]} is labelled class {class_of[i]} "
                f"({classes[class_of[i]]}) in image_class_labels.txt but lies in folder {folder} (fix: {FIX})"
            )

    return pd.DataFrame({
        "image_id": ids,
        "path": [f"images/{p}" for p in paths],
        "class_id": class_of,
        "label": class_of - 1,
        "class_name": [classes[c] for c in class_of.tolist()],
        "is_train": is_train,
        "box_x": box[:, 0], "box_y": box[:, 1], "box_w": box[:, 2], "box_h": box[:, 3],
        "box_file": str(root / "bounding_boxes.txt"), "box_line": box_line,
    })


# ------------------------------------------------------------------------------------------------------------- splits
def rank_within_class(labels: np.ndarray, member: np.ndarray) -> np.ndarray:
    """For each row, its 0-based position among the ``member`` rows of its class (in row order); −1 elsewhere."""
    labels = np.asarray(labels)
    ranks = np.full(len(labels), -1, np.int64)
    rows = np.flatnonzero(member)
    ranks[rows] = pd.Series(labels[rows]).groupby(labels[rows], sort=False).cumcount().to_numpy()
    return ranks


def pc_split(labels: np.ndarray, is_train: np.ndarray, train_per_class=(10, 30), test_per_class=(5, 15)) -> np.ndarray:
    """The imbalanced PC-softmax split: train | test | unused (caps indexed by label parity: [even, odd])."""
    labels, is_train = np.asarray(labels), np.asarray(is_train, bool)
    parity = labels % 2
    train_rank = rank_within_class(labels, is_train)
    test_rank = rank_within_class(labels, ~is_train)
    out = np.full(len(labels), "unused", dtype=object)
    out[is_train & (train_rank < np.asarray(train_per_class)[parity])] = "train"
    out[~is_train & (test_rank < np.asarray(test_per_class)[parity])] = "test"
    return out


def wsol_split(labels: np.ndarray, is_train: np.ndarray, val_per_class: int, seed: int) -> np.ndarray:
    """train | val_fullsup | test: ``val_per_class`` seeded official-train images per class held out with boxes."""
    labels, is_train = np.asarray(labels), np.asarray(is_train, bool)
    n_train = np.bincount(labels[is_train], minlength=labels.max() + 1)
    short = np.flatnonzero((n_train <= val_per_class) & (np.bincount(labels, minlength=len(n_train)) > 0))
    if len(short):
        raise ValueError(
            f"params.yaml datasets.cub.val_per_class = {val_per_class} leaves no training image for class(es) "
            f"{short[:5].tolist()} (they have {n_train[short[:5]].tolist()} official train images) "
            "(fix: lower val_per_class)"
        )
    # a seeded random order of all rows; within each class the first val_per_class train rows in it are held out
    perm = np.random.default_rng(derive_seed(seed, "cub", "val_fullsup")).permutation(len(labels))
    rank = np.empty(len(labels), np.int64)
    rank[perm] = rank_within_class(labels[perm], is_train[perm])
    out = np.where(is_train, "train", "test").astype(object)
    out[is_train & (rank < val_per_class)] = "val_fullsup"
    return out


def faithful_half_test(labels: np.ndarray, is_train: np.ndarray) -> np.ndarray:
    """The original's half test list: official test images at odd positions within their class."""
    rank = rank_within_class(labels, ~np.asarray(is_train, bool))
    return (rank >= 0) & (rank % 2 == 1)


# -------------------------------------------------------------------------------------------------------------- build
def build_table(annotations: pd.DataFrame, sizes: np.ndarray, settings: dict) -> pd.DataFrame:
    """The images.parquet frame from the annotations and the decoded sizes (int64 [N, 2]: width, height)."""
    a = annotations
    labels, is_train = a["label"].to_numpy(), a["is_train"].to_numpy()
    orig = np.stack([a["box_x"], a["box_y"], a["box_x"] + a["box_w"], a["box_y"] + a["box_h"]], axis=1)

    def describe(i: int) -> str:
        row = a.iloc[i]
        where = f"{row['box_file']} line {row['box_line']}" if "box_line" in a else "bounding_boxes.txt"
        return (f"{where}: x {row['box_x']:g}, y {row['box_y']:g}, width {row['box_w']:g}, height {row['box_h']:g} "
                f"for {row['path']}")

    clipped = check_boxes(orig, sizes[:, 0], sizes[:, 1], describe, FIX)
    if clipped:
        log.warning("CUB: %d box(es) end at most %d px past their image's edge and were clipped to it",
                    clipped, BOX_OVERHANG)
    boxes = resize_boxes(orig, sizes[:, 0], sizes[:, 1], settings["image_size"])
    pc = settings["pc_split"]
    frame = pd.DataFrame({
        "index": np.arange(len(a), dtype=np.int64),
        "label": labels.astype(np.int64),
        "x0": boxes[:, 0], "y0": boxes[:, 1], "x1": boxes[:, 2], "y1": boxes[:, 3],
        "split": wsol_split(labels, is_train, settings["val_per_class"], settings["seed"]),
        "official_split": np.where(is_train, "train", "test"),
        "pc_split": pc_split(labels, is_train, pc["train_per_class"], pc["test_per_class"]),
        "faithful_half_test": faithful_half_test(labels, is_train),
        "image_id": a["image_id"].to_numpy(np.int64),
        "class_name": a["class_name"],
        "path": a["path"],
        "orig_w": sizes[:, 0], "orig_h": sizes[:, 1],
        "box_x": a["box_x"], "box_y": a["box_y"], "box_w": a["box_w"], "box_h": a["box_h"],
    })
    for column in ("split", "official_split", "pc_split"):
        frame[column] = frame[column].astype(str)
    return frame[list(CUB_COLUMNS)]


def check_files(root: Path, paths: list[str]) -> None:
    listed = {str(Path(p)) for p in paths}
    present = {os.path.relpath(os.path.join(d, f), root) for d, _, files in os.walk(root / "images") for f in files}
    missing = sorted(listed - present)
    if missing:
        raise AnnotationError(f"{root / 'images.txt'}: {len(missing)} listed image(s) are missing under {root}, e.g. "
                              f"{missing[:3]} (fix: {FIX})")


def prepare(root: str | Path, images_out: str | Path, table_out: str | Path, settings: dict,
            threads: int = 1) -> pd.DataFrame:
    """Parse the dataset folder ``root``, decode every image and write images.npy + images.parquet."""
    root = Path(root)
    annotations = read_annotations(root)
    check_files(root, annotations["path"].tolist())
    log.info("CUB: %d images, %d classes, %d official train", len(annotations), annotations["label"].nunique(),
             int(annotations["is_train"].sum()))
    size = settings["image_size"]
    sizes = decode_to_npy([root / p for p in annotations["path"]], size, images_out, threads=threads, desc="CUB images")
    frame = build_table(annotations, sizes, settings)
    write_table(frame, table_out, column_docs=CUB_COLUMNS,
                table_doc=f"CUB-200-2011 prepared at {size}×{size} (softmax_mi.data.cub)")
    counts = {col: frame[col].value_counts().to_dict() for col in ("split", "official_split", "pc_split")}
    log.info("CUB splits: %s; faithful half test %d", counts, int(frame["faithful_half_test"].sum()))
    return frame
