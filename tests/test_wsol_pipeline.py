"""The WSOL part of the real DAG on the smoke parameters (shares the session's `smoke_run` of `rule all`)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from softmax_mi.io import column_descriptions
from softmax_mi.stages.localisation import CURVES_COLUMNS, METRICS_COLUMNS

pytestmark = pytest.mark.slow

REQUIRED = ["dataset", "backbone", "adl", "method", "protocol", "threshold", "iou", "metric", "value", "seed"]


@pytest.fixture(scope="module")
def params(smoke_run):
    return yaml.safe_load((smoke_run / "params.yaml").read_text())


@pytest.fixture(scope="module")
def metrics(smoke_run):
    return pd.read_parquet(smoke_run / "results/localisation/metrics.parquet")


def test_dataset_on_disk(smoke_run, params):
    folder = smoke_run / "data/wsol/cluttered_mnist"
    images = np.load(folder / "images.npy")
    boxes = pd.read_parquet(folder / "boxes.parquet")
    counts = params["localisation"]["data"]["counts"]
    assert images.dtype == np.uint8 and images.shape == (sum(counts.values()), 64, 64)
    assert boxes["split"].value_counts().to_dict() == counts
    assert set(column_descriptions(folder / "boxes.parquet")) == set(boxes.columns)
    # no MNIST digit is used by two splits
    assert not boxes.duplicated(["mnist_split", "mnist_index"]).any()


def test_metrics_table(smoke_run, params, metrics):
    assert set(REQUIRED) <= set(metrics.columns)
    assert column_descriptions(smoke_run / "results/localisation/metrics.parquet").keys() == METRICS_COLUMNS.keys()
    assert metrics["value"].between(0, 1).all()
    assert sorted(metrics["seed"].unique()) == sorted(params["seeds"])
    maps = set(params["localisation"]["methods"]) | {"centre_box"}
    for protocol in ("paper", "maxboxacc", "maxboxacc_v2"):
        assert set(metrics.loc[metrics["protocol"] == protocol, "method"]) == maps
    assert (metrics["protocol"] == "classification").sum() == 2 * len(params["seeds"])  # val + test per run
    v2 = metrics[(metrics["protocol"] == "maxboxacc_v2") & (metrics["split"] == "test")]
    assert set(v2["metric"]) == {"box_acc", "maxboxacc_v2"}
    assert set(v2["iou"].dropna()) == set(params["localisation"]["iou_thresholds"])


def test_threshold_is_chosen_on_val_fullsup(smoke_run, metrics):
    chosen = metrics[metrics["protocol"].isin(["maxboxacc", "maxboxacc_v2"]) & metrics["threshold"].notna()]
    keys = ["backbone", "adl", "method", "protocol", "metric", "iou", "seed"]
    pivot = chosen.pivot_table(index=keys, columns="split", values="threshold")
    np.testing.assert_array_equal(pivot["val_fullsup"], pivot["test"])
    # and it is the first best τ of the val_fullsup curve (GT-known, largest component)
    curves = pd.read_parquet(smoke_run / "results/localisation/curves.parquet")
    val = curves[(curves["split"] == "val_fullsup") & (curves["boxes"] == "largest")]
    best = val.loc[val.groupby(["method", "seed"])["value"].idxmax(), ["method", "seed", "threshold"]]
    reported = metrics[(metrics["protocol"] == "maxboxacc") & (metrics["metric"] == "gt_known_loc")
                       & (metrics["split"] == "test")][["method", "seed", "threshold"]]
    merged = best.merge(reported, on=["method", "seed"], suffixes=("_val_curve", "_reported"))
    assert len(merged) == len(reported)
    np.testing.assert_allclose(merged["threshold_val_curve"], merged["threshold_reported"])
    assert metrics.loc[metrics["protocol"] == "paper", "threshold"].eq(0.2).all()


def test_curves_json_figures_checkpoints(smoke_run, params):
    curves = pd.read_parquet(smoke_run / "results/localisation/curves.parquet")
    assert column_descriptions(smoke_run / "results/localisation/curves.parquet").keys() == CURVES_COLUMNS.keys()
    n_thresholds = round(1 / params["localisation"]["threshold_step"])
    assert curves.groupby(["method", "seed", "split", "boxes", "iou"]).size().eq(n_thresholds).all()
    summary = json.loads((smoke_run / "results/localisation/metrics.json").read_text())
    assert "cam" in summary["localisation"]["cluttered_mnist/gap_cnn"]
    for name in ("heatmaps.png", "threshold_curves.png"):
        assert (smoke_run / "results/localisation/figures/cluttered_mnist" / name).stat().st_size > 10_000
    checkpoints = sorted((smoke_run / "models/localisation").rglob("model.pt"))
    assert len(checkpoints) == len(params["seeds"])
    state = torch.load(checkpoints[0], map_location="cpu", weights_only=True)
    assert "fc.weight" in state
