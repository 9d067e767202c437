"""Issue 5 acceptance: with the CUB-200-2011 and Tiny-ImageNet fixtures (exact official formats) in data/raw,
`snakemake --cores all` runs every CUB and Tiny rule and their rows land in the shared tables; without them the
rest finishes and the one-line notice is printed once per dataset."""

from __future__ import annotations

import re
import shutil

import pandas as pd
import pytest

from helpers import make_workdir, snakemake
from softmax_mi.data import fixtures
from softmax_mi.data.raw import notice
from softmax_mi.params import load_params

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def fixture_run(smoke_run, tmp_path_factory):
    """The finished smoke run, copied, with the fixtures added to data/raw, then `snakemake --cores 2` again: only
    the jobs the new data brings (and the gathers downstream) run."""
    workdir = tmp_path_factory.mktemp("user_data")
    shutil.copytree(smoke_run, workdir, dirs_exist_ok=True, symlinks=True)
    shutil.rmtree(workdir / ".dvc", ignore_errors=True)  # another test may have initialised DVC there
    fixtures.write_all(workdir / "data/raw")
    result = snakemake(workdir, "--cores", "2")
    return workdir, result.stdout + result.stderr


def test_every_cub_and_tiny_rule_runs_on_the_fixtures(fixture_run):
    workdir, log = fixture_run
    for rule in ("cub_prepare", "tiny_imagenet_prepare", "cub_features", "cub_classification_head",
                 "localisation_train", "localisation_evaluate", "localisation_figures"):
        assert f"rule {rule}:" in log, f"{rule} did not run"
    assert not re.search(r"^\S+ not found: put the official", log, flags=re.MULTILINE)  # no notice printed
    assert "rule synthetic_estimate:" not in log  # the finished parts were not redone


def test_user_dataset_rows_land_in_the_shared_tables(fixture_run):
    workdir, _ = fixture_run
    classification = pd.read_parquet(workdir / "results/classification/metrics.parquet")
    cub = classification[classification["dataset"] == "cub"]
    assert set(cub["setting"]) == {"imbalanced", "balanced"} and set(cub["loss"]) >= {"softmax", "pc_softmax"}
    assert cub["macro_acc"].between(0, 1).all() and {"mnist"} <= set(classification["dataset"])
    localisation = pd.read_parquet(workdir / "results/localisation/metrics.parquet")
    splits = localisation.groupby("dataset")["split"].agg(set).to_dict()
    assert splits["cub"] == {"val_fullsup", "test", "test_half"}  # + the original's half test set (B12)
    assert splits["tiny_imagenet"] == {"val_fullsup", "test", "test_faithful_boxes"}  # + its misread boxes (B13)
    assert splits["cluttered_mnist"] == {"val_fullsup", "test"}
    for dataset in ("cub", "tiny_imagenet"):
        figures = workdir / "results/localisation/figures" / dataset
        assert (figures / "heatmaps.png").stat().st_size > 10_000
        assert (figures / "threshold_curves.png").stat().st_size > 10_000
    report = (workdir / "results/report.md").read_text()
    assert "cub" in report and "tiny_imagenet" in report
    manifest = (workdir / "data/prepared/manifest.json").read_text()
    assert "CUB_200_2011.tgz" in manifest and "tiny-imagenet-200.zip" in manifest


def test_without_the_data_the_rest_runs_and_the_notice_appears_once(tmp_path):
    workdir = make_workdir(tmp_path)
    result = snakemake(workdir, "-n", "--cores", "2")
    log = result.stdout + result.stderr
    params = load_params(workdir / "params.yaml")
    for name in ("cub", "tiny_imagenet"):
        assert log.count(notice(params, name)) == 1, f"the {name} notice is not printed exactly once"
    assert "rule cub_prepare:" not in log and "rule localisation_train:" in log
