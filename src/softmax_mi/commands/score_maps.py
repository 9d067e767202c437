"""``softmax-mi score-maps``: WSOL scores of maps read from files (:func:`softmax_mi.localisation.score.score_maps`).

File formats
------------
Maps (``--maps``), one 2-D map per image, any size (resized to the image size), any real values:

* ``maps.npy``: a ``[N, h, w]`` stack, with ``--ids ids.txt`` (one image id per line, in the stack's order);
* ``maps.npz``: one array per image, the key is the image id;
* a directory: ``DIR/<image_id>.npy`` per image (wsolevaluation's score-map folder; ids may contain ``/``).

Boxes (``--boxes``, CSV or Parquet): columns ``image_id, x0, y0, x1, y1`` (pixels of the image), optional
``width, height`` (the image size; default the map's size), ``split`` (e.g. val / test) and ``label`` (class).
Several rows with one image id are several GT boxes. The images scored are those of this file, in its order.

Predictions (``--predictions``, CSV or Parquet): ``image_id, predicted``; labels come from the boxes' ``label``
column or from ``--labels`` (``image_id, label``). With both, the table has Top-1 loc.
"""

from __future__ import annotations

from pathlib import Path

from softmax_mi.cli import CLIError
from softmax_mi.commands import add_command, read_frame

EPILOG = """examples:
  # wsolevaluation's MaxBoxAccV2 (max over τ on the scored split, as in published WSOL tables)
  softmax-mi score-maps --maps scoremaps/ --boxes boxes.csv --protocol wsolevaluation --resize-length 224

  # our convention, τ chosen on the val rows and applied to test; Top-1 loc from predictions
  softmax-mi score-maps --maps maps.npz --boxes boxes.parquet --held-out val \\
      --predictions predictions.csv -o scores.parquet

  # a fixed threshold on a [N, h, w] stack
  softmax-mi score-maps --maps cams.npy --ids ids.txt --boxes boxes.csv --tau 0.2

files: maps .npy [N, h, w] (+ --ids) | .npz (key = image id) | DIR/<image_id>.npy;
boxes CSV/Parquet: image_id, x0, y0, x1, y1 [, width, height, split, label] (several rows = several boxes);
predictions CSV/Parquet: image_id, predicted. Output Parquet columns: protocol, split, metric, iou, threshold,
tau_from, value (fraction), n_images.
"""

BOX_COLUMNS = ("image_id", "x0", "y0", "x1", "y1")
OPTIONAL_BOX_COLUMNS = ("width", "height", "split", "label")


def register(sub) -> None:
    parser = add_command(
        sub, "score-maps", help="WSOL scores (GT-known / Top-1 loc, MaxBoxAcc, MaxBoxAccV2) of score maps from files",
        description="Score localisation maps against GT boxes: GT-known loc, Top-1 loc, MaxBoxAcc (V1) and "
                    "MaxBoxAccV2 per IoU threshold, under our convention or wsolevaluation's.",
        epilog=EPILOG)
    parser.add_argument("--maps", required=True, metavar="FILE|DIR", help=".npy stack, .npz, or a folder of .npy")
    parser.add_argument("--ids", metavar="FILE", help="image ids of a .npy stack, one per line")
    parser.add_argument("--boxes", required=True, metavar="FILE", help="GT boxes, CSV or Parquet")
    parser.add_argument("--labels", metavar="FILE", help="image_id, label (CSV/Parquet; or a label column in --boxes)")
    parser.add_argument("--predictions", metavar="FILE", help="image_id, predicted (CSV/Parquet)")
    parser.add_argument("--protocol", choices=("ours", "wsolevaluation"), default="ours",
                        help="box convention (default: ours)")
    choice = parser.add_mutually_exclusive_group()
    choice.add_argument("--tau", type=float, help="fixed threshold τ on the normalised map")
    choice.add_argument("--held-out", metavar="SPLIT", help="choose τ on the images of this split (e.g. val)")
    parser.add_argument("--step", type=float, help="τ grid step (default 0.01 ours, 0.001 wsolevaluation)")
    parser.add_argument("--resize-length", type=int, metavar="L",
                        help="wsolevaluation: score on an L × L image as it does (224)")
    parser.add_argument("--output", "-o", metavar="OUT.parquet", help="write the table as Parquet")
    parser.set_defaults(func=run)


# ------------------------------------------------------------------------------------------------------ reading
def _read_boxes(path: str):
    import numpy as np
    import pandas as pd

    frame = read_frame(path, "--boxes")
    missing = [c for c in BOX_COLUMNS if c not in frame.columns]
    if missing:
        raise CLIError(f"{path}: missing column(s) {', '.join(missing)} (need {', '.join(BOX_COLUMNS)})")
    unknown = [c for c in frame.columns if c not in BOX_COLUMNS + OPTIONAL_BOX_COLUMNS]
    if unknown:
        raise CLIError(f"{path}: unknown column(s) {', '.join(unknown)} "
                     f"(allowed: {', '.join(BOX_COLUMNS + OPTIONAL_BOX_COLUMNS)}; rename or drop them)")
    if len(frame) == 0:
        raise CLIError(f"{path}: no rows (one row per GT box)")
    frame["image_id"] = frame["image_id"].astype(str)
    for column in ("x0", "y0", "x1", "y1", "width", "height"):
        if column in frame.columns:
            values = pd.to_numeric(frame[column], errors="coerce")
            bad = values.isna()
            if bad.any():
                row = int(np.flatnonzero(bad.to_numpy())[0])
                raise CLIError(f"{path}: column {column}, row {row + 2}: {frame[column].iloc[row]!r} is not a number "
                             "(pixel coordinates)")
            frame[column] = values
    for column in ("width", "height", "split", "label"):
        if column in frame.columns:
            varying = frame.groupby("image_id", sort=False)[column].nunique()
            if (varying > 1).any():
                raise CLIError(f"{path}: column {column}: image {varying[varying > 1].index[0]!r} has different "
                             f"values on its rows (one {column} per image)")
    return frame


def _read_by_id(path: str, flag: str, column: str, ids: list[str]) -> list:
    frame = read_frame(path, flag)
    for needed in ("image_id", column):
        if needed not in frame.columns:
            raise CLIError(f"{path}: missing column {needed} (need image_id, {column})")
    values = dict(zip(frame["image_id"].astype(str), frame[column]))
    missing = [i for i in ids if i not in values]
    if missing:
        raise CLIError(f"{path}: no {column} for image {missing[0]!r} (add a row for every image of --boxes)")
    return [values[i] for i in ids]


def _read_maps(path: str, ids_file: str | None, ids: list[str]) -> list:
    import numpy as np

    source = Path(path)
    if source.is_dir():
        maps = []
        for image_id in ids:
            file = source / f"{image_id}.npy"
            if not file.is_file():
                raise CLIError(f"{file}: missing (the map of image {image_id!r}; the folder holds <image_id>.npy)")
            maps.append(_load(file, np.load))
        names = [str(source / f"{i}.npy") for i in ids]
    elif source.suffix == ".npz":
        if not source.is_file():
            raise CLIError(f"{path}: no such file")
        with np.load(source, allow_pickle=False) as archive:
            stored = set(archive.files)
            missing = [i for i in ids if i not in stored]
            if missing:
                raise CLIError(f"{path}: no map for image {missing[0]!r} (the keys are image ids; "
                             f"{len(missing)} of {len(ids)} missing)")
            maps = [archive[i] for i in ids]
        names = [f"{path}[{i}]" for i in ids]
    elif source.suffix == ".npy":
        if not source.is_file():
            raise CLIError(f"{path}: no such file")
        if ids_file is None:
            raise CLIError(f"{path}: a [N, h, w] stack needs --ids FILE (one image id per line, in the stack's order)")
        stack = _load(source, np.load)
        if stack.ndim != 3:
            raise CLIError(f"{path}: shape {stack.shape}: need [N, h, w] (one 2-D map per image)")
        stack_ids = [line.strip() for line in Path(ids_file).read_text().splitlines() if line.strip()]
        if len(stack_ids) != len(stack):
            raise CLIError(f"{ids_file}: {len(stack_ids)} ids for {len(stack)} maps in {path} (one id per line)")
        position = {image_id: k for k, image_id in enumerate(stack_ids)}
        missing = [i for i in ids if i not in position]
        if missing:
            raise CLIError(f"{ids_file}: no map for image {missing[0]!r} of the boxes (list every image's id)")
        maps = [stack[position[i]] for i in ids]
        names = [f"{path}[{position[i]}] ({i})" for i in ids]
    else:
        raise CLIError(f"{path}: not a .npy, .npz or folder (--maps)")
    for name, m in zip(names, maps):
        if m.ndim != 2 or 0 in m.shape:
            raise CLIError(f"{name}: shape {m.shape}: need a non-empty 2-D map (h, w)")
        if m.dtype.kind not in "fiub":
            raise CLIError(f"{name}: dtype {m.dtype}: need numbers")
        if not np.isfinite(m).all():
            raise CLIError(f"{name}: contains NaN or inf (replace them, e.g. np.nan_to_num)")
    return maps


def _load(file: Path, loader):
    try:
        return loader(file, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise CLIError(f"{file}: cannot be read as .npy ({error})") from None


# ------------------------------------------------------------------------------------------------------ command
def run(args) -> None:
    import numpy as np

    from softmax_mi.io import write_table
    from softmax_mi.localisation.score import TABLE_COLUMNS, score_maps

    if args.tau is not None and not 0 <= args.tau < 1:
        raise CLIError(f"--tau {args.tau}: must be in [0, 1) (a threshold on the min-max normalised map)")
    if args.step is not None and not 0 < args.step < 1:
        raise CLIError(f"--step {args.step}: must be in (0, 1) (e.g. 0.01)")
    boxes = _read_boxes(args.boxes)
    groups = boxes.groupby("image_id", sort=False)
    ids = list(groups.groups)
    maps = _read_maps(args.maps, args.ids, ids)
    first = groups.first()
    box_lists = [g[["x0", "y0", "x1", "y1"]].to_numpy(np.float64) for _, g in groups]
    sizes = []
    for image_id, m, b in zip(ids, maps, box_lists):
        h, w = (int(first.at[image_id, "height"]), int(first.at[image_id, "width"])) if {"width", "height"} <= set(
            boxes.columns) else m.shape
        outside = (b[:, 0] < 0) | (b[:, 1] < 0) | (b[:, 2] < b[:, 0]) | (b[:, 3] < b[:, 1]) | (b[:, 2] > w) | (
            b[:, 3] > h)
        if outside.any():
            raise CLIError(f"{args.boxes}: image {image_id!r}: box {b[outside][0].tolist()} is outside its {w} × {h} "
                         "image (need 0 <= x0 <= x1 <= width, 0 <= y0 <= y1 <= height; give width/height columns "
                         "when the maps are smaller than the images)")
        sizes.append((h, w))
    splits = first["split"].astype(str).tolist() if "split" in boxes.columns else None
    if args.held_out is not None and (splits is None or args.held_out not in splits):
        raise CLIError(f"{args.boxes}: column split: no rows of split {args.held_out!r} to choose τ on "
                     "(add a split column, or pass --tau)")
    if args.tau is None and args.held_out is None and args.protocol == "ours":
        raise CLIError("--protocol ours chooses τ on held-out images: pass --held-out SPLIT (e.g. val) or --tau 0.2")
    labels = predictions = None
    if args.predictions:
        predictions = _read_by_id(args.predictions, "--predictions", "predicted", ids)
        if args.labels:
            labels = _read_by_id(args.labels, "--labels", "label", ids)
        elif "label" in boxes.columns:
            labels = first["label"].tolist()
        else:
            raise CLIError(f"{args.boxes}: Top-1 loc needs labels: add a label column or pass --labels FILE")
    scores = score_maps(maps, box_lists, image_sizes=sizes, splits=splits, labels=labels, predictions=predictions,
                        protocol=args.protocol, tau=args.tau, held_out=args.held_out, threshold_step=args.step,
                        resize_length=args.resize_length)
    print(f"{args.protocol} protocol, {len(ids)} images; accuracies in %")
    print(scores)
    if args.output:
        write_table(scores.table, args.output, column_docs=TABLE_COLUMNS,
                    table_doc="WSOL scores of score maps (softmax-mi score-maps)")
        print(f"wrote {args.output}")
