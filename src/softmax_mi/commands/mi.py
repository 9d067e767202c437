"""``softmax-mi mi``: I(X;Y) with a confidence interval, from a trained classifier's held-out logits or from features.

Thin: reads the files, calls :func:`softmax_mi.mi_from_logits` / :func:`softmax_mi.mi_from_features`, prints or
writes the estimate. File formats (chosen by the suffix):

- ``.npy``: one array; ``.npz``: an archive holding exactly one array;
- ``.csv`` (with a header row) and ``.parquet``: every column is one logit / feature column, in order; a labels or
  class-counts table has one column (or a column named ``label``, ``labels``, ``y`` / ``count``, ``counts``).

Logits and features are n × K (n × d) numbers, labels n integers in [0, K), class counts K positive numbers (the
training examples per class), given as a file or inline as ``500,50,5``.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

from softmax_mi.cli import CLIError
from softmax_mi.commands import add_command, read_frame

EXAMPLES = """\
examples:
  # a trained model's held-out logits + labels, PC-softmax read-out with the training class counts
  softmax-mi mi --logits test_logits.npy --labels test_labels.npy --class-counts 5000,10000,15000,20000,25000
  # softmax read-out (assumes balanced labels), in bits, machine-readable
  softmax-mi mi --logits logits.csv --labels labels.csv --readout softmax --bits --json
  # from features: train a PC-softmax classifier on 80 % (seeded), estimate on the held-out 20 %
  softmax-mi mi --features features.parquet --labels labels.npy --estimator pc_softmax --seed 0 -o mi.json

formats: .npy, .npz (one array), .csv (header row), .parquet; each column of a logits/features table is one
column of the array; a labels table has one column (or one named label/labels/y). Results are in nats unless
--bits. The interval: a central-limit interval over the held-out per-example terms (softmax_mi.mi_from_logits);
the kNN and critic estimators (--features) report no interval."""

LABEL_COLUMNS = ("label", "labels", "y")
COUNT_COLUMNS = ("count", "counts", "class_counts")
OPTION = {"logits": "--logits", "labels": "--labels", "features": "--features", "class_counts": "--class-counts",
          "prior": "--class-counts", "level": "--level", "test_fraction": "--test-fraction"}


def register(sub) -> None:
    parser = add_command(
        sub, "mi", help="I(X;Y) with a 95 %% interval from a classifier's logits or from features",
        description="Estimate the mutual information I(X;Y) between inputs and labels, with a confidence interval:\n"
                    "from a trained classifier's logits on held-out data (--logits), or by training an estimator\n"
                    "on a seeded split of features (--features).",
        epilog=EXAMPLES)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--logits", metavar="FILE", help="n × K held-out logits of the trained model")
    source.add_argument("--features", metavar="FILE", help="n × d features (all examples; split here)")
    parser.add_argument("--labels", metavar="FILE", required=True, help="n integer labels in [0, K)")
    parser.add_argument("--class-counts", metavar="FILE|c1,c2,…",
                        help="training examples per class (K numbers), for the PC-softmax read-out of --logits")
    parser.add_argument("--readout", choices=("pc_softmax", "softmax"),
                        help="--logits read-out (default: pc_softmax with --class-counts, else softmax)")
    parser.add_argument("--estimator", default="pc_softmax", metavar="NAME",
                        help="--features estimator: pc_softmax (default), softmax, mine, infonce, nwj, knn, "
                             "sklearn_knn")
    parser.add_argument("--seed", type=int, default=0, help="--features: seed of the split and the training (0)")
    parser.add_argument("--test-fraction", type=float, default=0.2,
                        help="--features: held-out share of each class (0.2)")
    parser.add_argument("--level", type=float, default=0.95, help="confidence level of the interval (0.95)")
    parser.add_argument("--bits", action="store_true", help="report bits instead of nats")
    parser.add_argument("--json", action="store_true", help="print a JSON record instead of the text line")
    parser.add_argument("-o", "--output", metavar="FILE", help="also write the JSON record to FILE")
    parser.set_defaults(func=run)


def read_array(path: str, option: str, columns: tuple[str, ...] = ()):
    """The array stored in ``path`` (.npy, .npz with one array, .csv with a header row, .parquet) as numpy."""
    import numpy as np

    file = Path(path)
    if not file.is_file():
        raise CLIError(f"{option} {path}: no such file (check the path)")
    suffix = file.suffix.lower()
    try:
        if suffix == ".npy":
            return np.load(file, allow_pickle=False)
        if suffix == ".npz":
            with np.load(file, allow_pickle=False) as archive:
                if len(archive.files) != 1:
                    raise CLIError(f"{option} {path}: the archive holds {len(archive.files)} arrays "
                                   f"({', '.join(archive.files) or 'none'}); save exactly one (np.savez(f, x))")
                return archive[archive.files[0]]
        if suffix in (".csv", ".parquet"):
            frame = read_frame(path, option)
            named = [c for c in frame.columns if str(c).lower() in columns]
            if columns and len(frame.columns) > 1:
                if len(named) != 1:
                    raise CLIError(f"{option} {path}: {len(frame.columns)} columns; give one column, or name the "
                                   f"one to use {' or '.join(columns)}")
                frame = frame[named]
            values = frame.to_numpy(copy=True)
            return values[:, 0] if columns else values
    except CLIError:
        raise
    except Exception as error:  # unreadable or corrupt file: numpy, pandas and pyarrow raise many kinds
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CLIError(f"{option} {path}: cannot read it ({first}); write it with numpy.save or as CSV/Parquet") \
            from None
    raise CLIError(f"{option} {path}: unknown format {suffix or '(no suffix)'}; use .npy, .npz, .csv or .parquet")


def read_counts(value: str):
    """Class counts from a file or from an inline list ``c1,c2,…``."""
    import numpy as np

    if Path(value).suffix.lower() in (".npy", ".npz", ".csv", ".parquet") or Path(value).is_file():
        return read_array(value, "--class-counts", COUNT_COLUMNS)
    try:
        return np.array([float(part) for part in value.split(",")])
    except ValueError:
        raise CLIError(f"--class-counts {value}: not a file and not a comma-separated list of numbers; give the "
                       "training examples per class, e.g. --class-counts 500,50,5") from None


def integer_labels(labels, path: str):
    """Labels as int64: integral floats (CSV) are accepted, anything else is refused naming the file."""
    import numpy as np

    labels = np.asarray(labels)
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.dtype.kind == "f" and labels.size and np.isfinite(labels).all() and (labels == np.round(labels)).all():
        labels = labels.astype(np.int64)
    if labels.dtype.kind not in "iu":
        raise CLIError(f"--labels {path}: labels must be integer class indices 0..K-1, got dtype {labels.dtype}; "
                       "write them as integers")
    return labels.astype(np.int64)


def blame(error: Exception, files: dict[str, str]) -> CLIError:
    """The library's one-line error, prefixed with the option and file it is about (its first word names the field)."""
    message = str(error).splitlines()[0]
    field = message.split(" ", 1)[0].rstrip(":")
    if field in OPTION and OPTION[field] in files:
        return CLIError(f"{OPTION[field]} {files[OPTION[field]]}: {message}")
    return CLIError(message)


def run(args) -> None:
    from softmax_mi.estimators.held_out import mi_from_features
    from softmax_mi.mi import mi_from_logits
    from softmax_mi.registry import ESTIMATORS

    files = {"--labels": args.labels}
    if not 0 < args.level < 1:
        raise CLIError(f"--level {args.level}: the confidence level must lie in (0, 1), e.g. 0.95")
    labels = integer_labels(read_array(args.labels, "--labels", LABEL_COLUMNS), args.labels)
    if args.logits is not None:
        if args.estimator != "pc_softmax" or args.test_fraction != 0.2 or args.seed != 0:
            raise CLIError("--estimator, --seed and --test-fraction go with --features; --logits are already "
                           "held-out outputs of a trained model")
        files["--logits"] = args.logits
        readout = args.readout or ("pc_softmax" if args.class_counts else "softmax")
        kwargs = {}
        if readout == "pc_softmax":
            if not args.class_counts:
                raise CLIError("--readout pc_softmax needs --class-counts (the training examples per class, a file "
                               "or c1,c2,…); or use --readout softmax (assumes balanced labels)")
            files["--class-counts"] = args.class_counts
            kwargs["class_counts"] = read_counts(args.class_counts)
        elif args.class_counts:
            raise CLIError("--readout softmax uses no class counts (it assumes balanced labels): drop "
                           "--class-counts, or use --readout pc_softmax")
        logits = read_array(args.logits, "--logits")
        try:
            estimate = mi_from_logits(logits, labels, readout=readout, level=args.level, **kwargs)
        except (ValueError, TypeError) as error:
            raise blame(error, files) from None
        record = {"source": "logits", "readout": readout, "logits": args.logits, "labels": args.labels}
    else:
        if args.readout or args.class_counts:
            raise CLIError("--readout and --class-counts go with --logits; with --features the estimator trains on "
                           "a split and takes the class counts from it")
        if args.estimator not in ESTIMATORS:
            raise CLIError(f"--estimator {args.estimator}: unknown estimator; use one of {', '.join(ESTIMATORS)}")
        files["--features"], files["--test-fraction"] = args.features, str(args.test_fraction)
        features = read_array(args.features, "--features")
        try:
            estimate = mi_from_features(features, labels, estimator=args.estimator, test_fraction=args.test_fraction,
                                        seed=args.seed, level=args.level)
        except (ValueError, TypeError) as error:
            raise blame(error, files) from None
        record = {"source": "features", "estimator": args.estimator, "seed": args.seed,
                  "test_fraction": args.test_fraction, "features": args.features, "labels": args.labels}
    if args.bits:
        estimate = estimate.to_bits()
    record = {**estimate.as_record(), **record,
              "details": {k: v for k, v in estimate.details.items() if not (isinstance(v, float) and math.isnan(v))}}
    if args.output:
        from softmax_mi.io import write_json

        write_json(record, args.output)
    if args.json:
        sys.stdout.write(json.dumps(record, indent=1) + "\n")
    else:
        how = f"readout {record['readout']}" if "readout" in record else f"estimator {record['estimator']}"
        print(f"I(X;Y) = {estimate}, {how}")
