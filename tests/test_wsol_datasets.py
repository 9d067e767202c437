"""WSOL on any dataset in the softmax_mi.data.wsol format: RGB images, the faithful derived splits (CUB's half test
set, Tiny-ImageNet's misread boxes), per-dataset settings, and train → evaluate on a tiny RGB dataset."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from softmax_mi.data import wsol
from softmax_mi.grid import wsol_settings
from softmax_mi.io import write_table
from softmax_mi.params import load_params
from softmax_mi.stages import localisation as stage
from softmax_mi.wsol import IMAGENET_MEAN_STD, InputPipeline, random_flip

from helpers import REPO


def rgb_dataset(folder, *, n_per_split=(24, 12, 12), size=32, n_classes=3, seed=0):
    """A square of a class colour at a random place on noise; the box is the square (exact by construction)."""
    rng = np.random.default_rng(seed)
    rows, images = [], []
    colours = np.array([[230, 40, 40], [40, 230, 40], [40, 40, 230]], np.uint8)
    for split, count in zip(wsol.SPLITS, n_per_split):
        for _ in range(count):
            label = int(rng.integers(n_classes))
            side = int(rng.integers(8, 16))
            x0, y0 = (int(v) for v in rng.integers(0, size - side, 2))
            image = rng.integers(0, 80, (3, size, size)).astype(np.uint8)
            image[:, y0 : y0 + side, x0 : x0 + side] = colours[label][:, None, None]
            images.append(image)
            rows.append({"index": len(rows), "split": split, "label": label, "x0": x0, "y0": y0,
                         "x1": x0 + side, "y1": y0 + side})
    frame = pd.DataFrame(rows)
    test = frame["split"] == "test"
    frame["faithful_half_test"] = test & (frame.groupby("split").cumcount() % 2 == 1)
    # the original's Tiny-ImageNet reading: (x_min, y_min, x_max, y_max) taken as (x, y, w, h), clipped
    frame["fx0"], frame["fy0"] = frame["x0"], frame["y0"]
    frame["fx1"] = np.minimum(frame["x0"] + frame["x1"] - 1, size)
    frame["fy1"] = np.minimum(frame["y0"] + frame["y1"] - 1, size)
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "images.npy", np.stack(images))
    write_table(frame, folder / "images.parquet", column_docs={c: c for c in frame.columns})
    return {"images": str(folder / "images.npy"), "boxes": str(folder / "images.parquet")}


def test_derived_splits_follow_the_columns(tmp_path):
    paths = rgb_dataset(tmp_path)
    table = pd.read_parquet(paths["boxes"])
    assert wsol.evaluation_splits(table) == ["val_fullsup", "test", "test_half", "test_faithful_boxes"]
    assert wsol.evaluation_splits(table.drop(columns=["faithful_half_test", "fx0"])) == ["val_fullsup", "test"]
    test = wsol.load(paths["images"], paths["boxes"], "test")
    half = wsol.load(paths["images"], paths["boxes"], "test_half")
    faithful = wsol.load(paths["images"], paths["boxes"], "test_faithful_boxes")
    assert len(test) == 12 and len(half) == 6 and np.array_equal(half.images, test.images[1::2])
    assert np.array_equal(faithful.images, test.images) and np.array_equal(faithful.labels, test.labels)
    assert (faithful.boxes[:, 2:] >= test.boxes[:, 2:]).all() and (faithful.boxes != test.boxes).any()
    assert test.images.shape[1:] == (3, 32, 32) and test.size == (32, 32)
    assert wsol.n_classes(paths["boxes"]) == 3
    with pytest.raises(ValueError, match="unknown split"):
        wsol.load(paths["images"], paths["boxes"], "validation")


def test_input_pipeline_normalises_per_batch():
    grey = np.full((2, 8, 8), 255, np.uint8)
    x = InputPipeline(1, "gap_cnn", None, "cpu")(grey)
    assert x.shape == (2, 1, 8, 8) and torch.allclose(x, torch.ones_like(x))  # (1 − 0.5) / 0.5
    rgb = np.zeros((2, 3, 8, 8), np.uint8)
    x = InputPipeline(3, "vgg16_gap", 16, "cpu")(rgb)
    assert x.shape == (2, 3, 16, 16)
    mean, std = (torch.tensor(v) for v in IMAGENET_MEAN_STD)
    assert torch.allclose(x[0, :, 0, 0], -mean / std)
    assert InputPipeline(1, "resnet50", None, "cpu")(grey).shape == (2, 3, 8, 8)


def test_random_flip_mirrors_about_half_of_the_batch():
    images = torch.arange(64 * 4, dtype=torch.float32).view(64, 1, 1, 4)
    flipped = random_flip(images, torch.Generator().manual_seed(0))
    mirrored = (flipped == images.flip(-1)).all(dim=(1, 2, 3))
    kept = (flipped == images).all(dim=(1, 2, 3))
    assert (mirrored | kept).all() and 16 < int(mirrored.sum()) < 48


def test_settings_merge_dataset_then_backbone():
    params = load_params(REPO / "params.yaml", REPO / "params/paper.yaml")
    section = params["localisation"]
    vgg = wsol_settings(section, "cub", "vgg16_gap")
    assert vgg["training"]["optimizer"] == "sgd" and vgg["training"]["lr"] == 0.001 and vgg["training"]["batch_size"] == 30
    assert vgg["adl_settings"]["gamma"] == 0.8 and "overrides" not in vgg
    resnet = wsol_settings(section, "cub", "resnet50")
    assert resnet["training"]["lr"] == 0.01 and resnet["adl_settings"]["gamma"] == 0.9
    assert wsol_settings(section, "cluttered_mnist", "vgg16_gap")["training"]["optimizer"] == "adamw"
    assert wsol_settings(section, "tiny_imagenet")["input_size"] is None


@pytest.mark.parametrize("optimizer", ["adamw", "sgd"])
def test_train_and_evaluate_on_an_rgb_dataset(tmp_path, optimizer):
    paths = rgb_dataset(tmp_path / "data")
    params = load_params(REPO / "params.yaml", REPO / "params/smoke.yaml")
    settings = wsol_settings(params["localisation"], "cub", "gap_cnn")
    settings["training"].update(epochs=2, batch_size=8, eval_batch_size=5, optimizer=optimizer, head_lr_ratio=10)
    settings["gap_cnn"]["widths"] = [4, 8, 8, 8]
    model_paths = {"checkpoint": str(tmp_path / "model.pt"), "summary": str(tmp_path / "training.json")}
    run = dict(dataset="cub", backbone="gap_cnn", adl=False, seed=0, device="cpu")
    stage.train(**run, settings=settings, inputs=paths, outputs=model_paths)
    state = torch.load(model_paths["checkpoint"], weights_only=True)
    assert state["fc.weight"].shape[0] == 3 and state["features.0.weight"].shape[1] == 3  # 3 classes, RGB input
    outputs = {"metrics": str(tmp_path / "metrics.parquet"), "curves": str(tmp_path / "curves.parquet")}
    stage.evaluate(**run, settings=settings, inputs={**paths, **model_paths}, outputs=outputs)
    metrics = pd.read_parquet(outputs["metrics"])
    assert set(metrics["split"]) == {"val_fullsup", "test", "test_half", "test_faithful_boxes"}
    assert metrics["value"].between(0, 1).all() and (metrics["dataset"] == "cub").all()
    n_test = metrics[metrics["protocol"] == "paper"].groupby("split")["n_test"].first()
    assert n_test.to_dict() == {"test": 12, "test_half": 6, "test_faithful_boxes": 12, "val_fullsup": 12}
    # the τ of maxboxacc is chosen once on val_fullsup and shared by every split
    chosen = metrics[(metrics["protocol"] == "maxboxacc") & (metrics["method"] == "cam")]
    assert chosen["threshold"].nunique() == 1
    # chunked evaluation (5 images a chunk) gives the same numbers as one chunk
    settings["training"]["eval_batch_size"] = 100
    whole = {"metrics": str(tmp_path / "whole.parquet"), "curves": str(tmp_path / "whole_curves.parquet")}
    stage.evaluate(**run, settings=settings, inputs={**paths, **model_paths}, outputs=whole)
    pd.testing.assert_frame_equal(metrics.drop(columns="params_hash"),
                                  pd.read_parquet(whole["metrics"]).drop(columns="params_hash"), atol=1e-6)
