"""``softmax-mi mi``: the estimate of softmax_mi.mi_from_logits / mi_from_features from files (.npy, .npz, .csv,
.parquet), text and JSON output, and one line naming the option, the file and the fix for every bad input (exit 2)."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from softmax_mi.cli import main
from softmax_mi.estimators.held_out import mi_from_features
from softmax_mi.mi import mi_from_logits

COUNTS = [100, 200, 300]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("mi")
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 300)
    logits = rng.normal(size=(300, 3)) + 2 * np.eye(3)[labels]
    features = rng.normal(2.0 * labels, 1.0)[:, None]
    np.save(root / "logits.npy", logits)
    np.save(root / "labels.npy", labels)
    np.savez(root / "features.npz", x=features)
    np.savez(root / "two.npz", a=logits, b=logits)
    pd.DataFrame(logits, columns=["f0", "f1", "f2"]).to_csv(root / "logits.csv", index=False)
    pd.DataFrame(logits, columns=["f0", "f1", "f2"]).to_parquet(root / "logits.parquet")
    pd.DataFrame({"id": np.arange(300), "label": labels}).to_csv(root / "labels.csv", index=False)
    pd.DataFrame({"count": COUNTS}).to_parquet(root / "counts.parquet")
    np.save(root / "float_labels.npy", labels + 0.5)
    np.save(root / "short.npy", labels[:-1])
    np.save(root / "big.npy", labels + 3)
    bad = logits.copy()
    bad[7, 1] = math.nan
    np.save(root / "nan.npy", bad)
    (root / "logits.txt").write_text("1 2 3\n")
    return root, logits, labels, features


def cli(capsys, *args):
    code = main(["mi", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def test_logits_in_every_format_give_the_library_estimate(files, capsys):
    root, logits, labels, _ = files
    expected = mi_from_logits(logits, labels, class_counts=COUNTS)
    for logit_file, label_file, counts in (("logits.npy", "labels.npy", "100,200,300"),
                                           ("logits.csv", "labels.csv", root / "counts.parquet"),
                                           ("logits.parquet", "labels.npy", "100,200,300")):
        code, out, err = cli(capsys, "--logits", root / logit_file, "--labels", root / label_file,
                             "--class-counts", counts, "--json")
        assert (code, err) == (0, "")
        record = json.loads(out)
        assert (record["value"], record["low"], record["high"]) == (expected.value, expected.low, expected.high)
        assert (record["readout"], record["unit"], record["n"]) == ("pc_softmax", "nats", 300)
    code, out, _ = cli(capsys, "--logits", root / "logits.npy", "--labels", root / "labels.npy",
                       "--class-counts", "100,200,300")
    assert (code, out) == (0, f"I(X;Y) = {expected}, readout pc_softmax\n")


def test_softmax_readout_bits_and_output_file(files, capsys, tmp_path):
    root, logits, labels, _ = files
    expected = mi_from_logits(logits, labels, readout="softmax").to_bits()
    code, out, _ = cli(capsys, "--logits", root / "logits.npy", "--labels", root / "labels.npy", "--bits",
                       "--level", "0.9", "-o", tmp_path / "mi.json")
    assert code == 0 and out.startswith("I(X;Y) = ") and "bits" in out and "90 % CI" in out
    record = json.loads((tmp_path / "mi.json").read_text())
    assert (record["readout"], record["unit"], record["level"]) == ("softmax", "bits", 0.9)
    assert record["value"] == pytest.approx(expected.value, rel=1e-12)


def test_features_path(files, capsys):
    root, _, labels, features = files
    code, out, err = cli(capsys, "--features", root / "features.npz", "--labels", root / "labels.npy",
                         "--estimator", "knn", "--seed", 3, "--json")
    assert (code, err) == (0, "")
    record = json.loads(out)
    expected = mi_from_features(features, labels, estimator="knn", seed=3)
    assert record["value"] == expected.value and record["low"] is None and record["n"] == 60
    assert (record["estimator"], record["seed"], record["details"]["n_train"]) == ("knn", 3, 240)


@pytest.mark.parametrize("args, message", [
    (("--logits", "{root}/short.npy", "--labels", "{root}/labels.npy"),
     "--logits {root}/short.npy: logits must be 2-D (n_examples × n_classes), got shape (299,)"),
    (("--logits", "{root}/logits.npy", "--labels", "{root}/short.npy"),
     "--labels {root}/short.npy: labels must be 1-D with one entry per row of logits (300)"),
    (("--logits", "{root}/nan.npy", "--labels", "{root}/labels.npy"),
     "--logits {root}/nan.npy: logits has non-finite entries (NaN or ±inf) in rows [7]"),
    (("--logits", "{root}/logits.npy", "--labels", "{root}/big.npy"),
     r"--labels {root}/big.npy: labels must lie in [0, 2] (logits has 3 columns), got values in [3, 5]"),
    (("--logits", "{root}/logits.npy", "--labels", "{root}/float_labels.npy"),
     "--labels {root}/float_labels.npy: labels must be integer class indices 0..K-1, got dtype float64"),
    (("--logits", "{root}/logits.npy", "--labels", "{root}/labels.npy", "--class-counts", "100,0,300"),
     "--class-counts 100,0,300: class_counts must be positive and finite; classes [1] have [0.0]"),
    (("--logits", "{root}/logits.npy", "--labels", "{root}/labels.npy", "--class-counts=-1,2,3"),
     "--class-counts -1,2,3: class_counts must be positive and finite; classes [0] have [-1.0]"),
    (("--logits", "{root}/logits.npy", "--labels", "{root}/labels.npy", "--class-counts", "100,200"),
     "--class-counts 100,200: class_counts must be 1-D with one entry per class (3"),
    (("--logits", "{root}/logits.npy", "--labels", "{root}/labels.npy", "--class-counts", "a,b"),
     "--class-counts a,b: not a file and not a comma-separated list of numbers"),
    (("--logits", "{root}/logits.npy", "--labels", "{root}/labels.npy", "--readout", "pc_softmax"),
     "--readout pc_softmax needs --class-counts"),
    (("--logits", "{root}/two.npz", "--labels", "{root}/labels.npy"),
     "--logits {root}/two.npz: the archive holds 2 arrays (a, b); save exactly one"),
    (("--logits", "{root}/logits.txt", "--labels", "{root}/labels.npy"),
     "--logits {root}/logits.txt: unknown format .txt; use .npy, .npz, .csv or .parquet"),
    (("--logits", "{root}/missing.npy", "--labels", "{root}/labels.npy"),
     "--logits {root}/missing.npy: no such file"),
    (("--logits", "{root}/logits.npy", "--labels", "{root}/logits.csv"),
     "--labels {root}/logits.csv: 3 columns; give one column, or name the one to use label or labels or y"),
    (("--features", "{root}/features.npz", "--labels", "{root}/labels.npy", "--estimator", "mutual"),
     "--estimator mutual: unknown estimator; use one of softmax, pc_softmax"),
    (("--features", "{root}/features.npz", "--labels", "{root}/labels.npy", "--test-fraction", "1.5"),
     "--test-fraction 1.5: test_fraction must be a number in (0, 1)"),
    (("--features", "{root}/features.npz", "--labels", "{root}/labels.npy", "--class-counts", "1,2,3"),
     "--readout and --class-counts go with --logits"),
    (("--logits", "{root}/logits.npy", "--labels", "{root}/labels.npy", "--level", "95"),
     "--level 95.0: the confidence level must lie in (0, 1)"),
])
def test_bad_inputs_are_one_line_naming_file_field_and_fix(files, capsys, args, message):
    root = files[0]
    code, out, err = cli(capsys, *(a.format(root=root) for a in args))
    assert code == 2 and out == ""
    assert err.startswith(f"softmax-mi mi: {message.format(root=root)}"), err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_help_has_examples(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["mi", "--help"])
    text = capsys.readouterr().out
    assert exit_.value.code == 0
    assert "examples:" in text and "softmax-mi mi --logits" in text and "softmax-mi mi --features" in text
