"""Raw-data intake (issue 5): checksums, safe extraction, the CUB / Tiny-ImageNet parsers and splits on the
official-format fixtures, availability switches, and the dataset rules end to end through Snakemake."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from helpers import REPO, make_workdir, snakemake
from softmax_mi.data import cub, fixtures, tiny_imagenet
from softmax_mi.data.archive import ArchiveError, safe_extract, verify_checksum
from softmax_mi.data.images import resize_boxes
from softmax_mi.data.raw import AnnotationError, RawDataMissing, availability, open_raw
from softmax_mi.io import column_descriptions

CUB_SETTINGS = {"image_size": 32, "val_per_class": 2, "seed": 0,
                "pc_split": {"train_per_class": [10, 30], "test_per_class": [5, 15]}}


@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> dict[str, str]:
    return fixtures.write_all(tmp_path_factory.mktemp("raw"))


# ------------------------------------------------------------------------------------------------- checksums, archives
def test_checksum_mismatch_is_refused_before_extraction(raw, tmp_path):
    assert verify_checksum(raw["cub_archive"], raw["cub_md5"]) == raw["cub_md5"]
    assert verify_checksum(raw["cub_archive"], ["0" * 32, raw["cub_md5"]]) == raw["cub_md5"]  # any accepted value
    with pytest.raises(ArchiveError, match=r"CUB_200_2011\.tgz: md5 is .* expected 0{32}"):
        verify_checksum(raw["cub_archive"], "0" * 32)
    with pytest.raises(ArchiveError, match="neither an md5"):
        verify_checksum(raw["cub_archive"], "abc")
    with pytest.raises(ArchiveError, match="md5 is"):
        with open_raw(raw["cub_archive"], "cub", "0" * 32, tmp_path):
            pass
    assert list(tmp_path.iterdir()) == []  # nothing was extracted


@pytest.mark.parametrize("kind", ["dotdot", "absolute", "symlink", "hardlink", "device",
                                  "zip_dotdot", "zip_absolute", "zip_symlink"])
def test_malicious_archive_is_refused_and_leaves_nothing(tmp_path, kind):
    archive = fixtures.write_malicious_archives(tmp_path / "archives")[kind]
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(ArchiveError, match=rf"{archive.name}: refusing to extract member '[^']+'"):
        safe_extract(archive, work / "target")
    assert list(work.iterdir()) == []  # neither the target nor a partial folder
    assert not (tmp_path / "evil.txt").exists() and not Path("/tmp/softmax_mi_evil.txt").exists()


def test_open_raw_finds_the_dataset_folder_and_cleans_up(raw, tmp_path):
    with open_raw(raw["tiny_imagenet_archive"], "tiny_imagenet", raw["tiny_imagenet_md5"], tmp_path) as root:
        assert root.name == "tiny-imagenet-200" and (root / "wnids.txt").is_file()
    assert list(tmp_path.iterdir()) == []
    with open_raw(raw["cub_folder"], "cub", None, tmp_path) as root:
        assert root == Path(raw["cub_folder"])
    with open_raw(Path(raw["cub_folder"]).parent, "cub", None, tmp_path) as root:  # the folder's parent works too
        assert root == Path(raw["cub_folder"])


def test_safe_extract_is_atomic_and_complete(raw, tmp_path):
    target = safe_extract(raw["tiny_imagenet_archive"], tmp_path / "tiny")
    wnids = (Path(raw["tiny_imagenet_folder"]) / "wnids.txt").read_text()
    assert (target / "tiny-imagenet-200" / "wnids.txt").read_text() == wnids
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny"]
    with pytest.raises(ArchiveError, match="already exists"):
        safe_extract(raw["tiny_imagenet_archive"], target)
    cub_target = safe_extract(raw["cub_archive"], tmp_path / "cub")
    assert (cub_target / "attributes.txt").is_file() and (cub_target / "CUB_200_2011" / "images.txt").is_file()


def test_fixtures_are_deterministic_and_pinned_in_params(raw, tmp_path):
    again = fixtures.write_all(tmp_path)
    assert (again["cub_md5"], again["tiny_imagenet_md5"]) == (raw["cub_md5"], raw["tiny_imagenet_md5"])
    # params.yaml accepts the official archive and the fixture (so `snakemake --cores all` runs on the fixtures)
    defaults = yaml.safe_load((REPO / "params.yaml").read_text())["datasets"]
    assert defaults["cub"]["md5"] == ["97eceeb196236b17998738112f37df78", raw["cub_md5"]], \
        "regenerated fixture: update params.yaml datasets.cub.md5"
    assert defaults["tiny_imagenet"]["md5"] == ["90528d7ca1a48142e341f4ef8d21d0de", raw["tiny_imagenet_md5"]], \
        "regenerated fixture: update params.yaml datasets.tiny_imagenet.md5"


# ---------------------------------------------------------------------------------------------------------------- CUB
def test_cub_splits_follow_the_rules(raw):
    annotations = cub.read_annotations(raw["cub_folder"])
    counts = fixtures.CUB_COUNTS
    assert len(annotations) == sum(a + b for a, b in counts)
    sizes = np.full((len(annotations), 2), 100)  # the splits do not depend on the sizes (≥ the 60–90 px images)
    frame = cub.build_table(annotations, sizes, CUB_SETTINGS)
    per_class = frame.groupby(["label", "pc_split"]).size().unstack(fill_value=0)
    # [even, odd] caps 10/30 train and 5/15 test; class 3 has only 29 train and 12 test images
    assert per_class["train"].tolist() == [10, 30, 10, 29]
    assert per_class["test"].tolist() == [5, 15, 5, 12]
    assert (frame["pc_split"] == "train").sum() == 79 and (frame["pc_split"] == "test").sum() == 37
    # the caps take the *first* images of the class in images.txt order
    for label in range(4):
        rows = frame[(frame["label"] == label) & (frame["official_split"] == "train")]
        n = per_class["train"][label]
        assert (rows["pc_split"].iloc[:n] == "train").all() and (rows["pc_split"].iloc[n:] == "unused").all()
    wsol = frame.groupby(["label", "split"]).size().unstack(fill_value=0)
    assert wsol["val_fullsup"].tolist() == [2] * 4
    assert wsol["train"].tolist() == [a - 2 for a, _ in counts]
    assert wsol["test"].tolist() == [b for _, b in counts]
    assert (frame.loc[frame["split"] == "val_fullsup", "official_split"] == "train").all()
    half = frame[frame["faithful_half_test"]]
    assert len(half) == sum(b // 2 for _, b in counts) == 20 and (half["official_split"] == "test").all()
    first_test = frame[frame["official_split"] == "test"].groupby("label").head(2)
    assert first_test["faithful_half_test"].tolist() == [False, True] * 4  # positions 0, 1 of each class
    # seeded: same seed same draw, another seed another draw
    again = cub.build_table(annotations, sizes, CUB_SETTINGS)
    other = cub.build_table(annotations, sizes, {**CUB_SETTINGS, "seed": 1})
    assert frame["split"].equals(again["split"]) and not frame["split"].equals(other["split"])


def test_pc_split_rule_by_hand():
    labels = np.array([0, 0, 0, 1, 1, 1, 1, 0])
    is_train = np.array([1, 0, 1, 1, 1, 0, 1, 1], bool)
    out = cub.pc_split(labels, is_train, train_per_class=[1, 2], test_per_class=[1, 0])
    assert out.tolist() == ["train", "test", "unused", "train", "train", "unused", "unused", "unused"]


def test_box_mapping_is_exact():
    # 80×60 image, box x=10 y=5 w=30 h=20 → edges 10, 5, 40, 25 → ×64/80 (x) and ×64/60 (y), rounded to edges
    boxes = resize_boxes(np.array([[10.0, 5.0, 40.0, 25.0]]), np.array([80]), np.array([60]), 64)
    assert boxes.tolist() == [[8, 5, 32, 27]]  # 8.0, 5.33, 32.0, 26.67
    # halves round up, edges clip to the image, a box never collapses below one pixel
    boxes = resize_boxes(np.array([[1.0, 0.0, 3.0, 200.0], [99.9, 50.0, 100.0, 50.0]]), np.array([8, 100]),
                         np.array([100, 100]), 4)
    assert boxes.tolist() == [[1, 0, 2, 4], [3, 2, 4, 3]]  # 0.5→1, 1.5→2; 200→clip 4; empty → 1 px


def test_cub_prepare_writes_the_contract_format(raw, tmp_path):
    frame = cub.prepare(raw["cub_folder"], tmp_path / "images.npy", tmp_path / "images.parquet", CUB_SETTINGS)
    images = np.load(tmp_path / "images.npy")
    assert images.shape == (len(frame), 3, 32, 32) and images.dtype == np.uint8
    table = pd.read_parquet(tmp_path / "images.parquet")
    assert list(table.columns) == list(cub.CUB_COLUMNS)
    assert column_descriptions(tmp_path / "images.parquet").keys() == cub.CUB_COLUMNS.keys()
    first = table.iloc[0]
    x, y, w, h = first[["box_x", "box_y", "box_w", "box_h"]]
    expected = np.floor(np.array([x, y, x + w, y + h]) * 32 / np.array([first.orig_w, first.orig_h] * 2) + 0.5)
    assert first[["x0", "y0", "x1", "y1"]].tolist() == expected.astype(int).tolist()
    # the object (class colour, red for class 0) fills its box: the box centre is red
    cx, cy = (first.x0 + first.x1) // 2, (first.y0 + first.y1) // 2
    r, g, b = images[0, :, cy, cx].astype(int)
    assert r > 150 and g < 110 and b < 110
    gray = table.index[table["path"].str.endswith("_0003_3.jpg")][0]  # saved as a grayscale JPEG
    assert np.array_equal(images[gray, 0], images[gray, 1])


def test_cub_annotation_errors_name_file_line_and_fix(raw, tmp_path):
    root = Path(shutil.copytree(raw["cub_folder"], tmp_path / "CUB_200_2011"))
    boxes = root / "bounding_boxes.txt"
    lines = boxes.read_text().splitlines()
    boxes.write_text("\n".join([lines[0], "2 1.0 2.0 x 4.0", *lines[2:]]) + "\n")
    with pytest.raises(AnnotationError, match=r"bounding_boxes.txt line 2: field width is 'x'.*fix:"):
        cub.read_annotations(root)
    boxes.write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(AnnotationError, match=r"bounding_boxes.txt: no line for 1 image_id.*fix:"):
        cub.read_annotations(root)


# ------------------------------------------------------------------------------------------------------ Tiny-ImageNet
def test_tiny_imagenet_roles_and_box_readings(raw, tmp_path):
    frame = tiny_imagenet.prepare(raw["tiny_imagenet_folder"], tmp_path / "images.npy", tmp_path / "images.parquet",
                                  {"image_size": 64})
    n_train, n_val = 3 * fixtures.TINY_TRAIN_PER_CLASS, 3 * fixtures.TINY_VAL_PER_CLASS
    assert len(frame) == n_train + n_val
    assert np.load(tmp_path / "images.npy").shape == (n_train + n_val, 3, 64, 64)  # grayscale JPEGs became RGB
    assert list(pd.read_parquet(tmp_path / "images.parquet").columns) == list(tiny_imagenet.TINY_COLUMNS)
    assert frame["label"].tolist()[:n_train] == np.repeat([0, 1, 2], fixtures.TINY_TRAIN_PER_CLASS).tolist()
    assert (frame["split"][:n_train] == "train").all()
    val = frame[frame["source"] == "val"]
    assert val.groupby(["label", "split"]).size().tolist() == [2] * 6  # 2 val_fullsup + 2 test per class
    lines = (Path(raw["tiny_imagenet_folder"]) / "val/val_annotations.txt").read_text().splitlines()
    for line, (_, row) in zip(lines, val.iterrows()):
        name, wnid, x_min, y_min, x_max, y_max = line.split("\t")
        x_min, y_min, x_max, y_max = map(int, (x_min, y_min, x_max, y_max))
        assert row.path == f"val/images/{name}" and row.wnid == wnid
        # correct: inclusive x_min..x_max → half-open [x_min, x_max + 1)
        assert [row.x0, row.y0, row.x1, row.y1] == [x_min, y_min, x_max + 1, y_max + 1]
        # the original's misreading: x, y, w, h → (x_min, y_min, x_min + x_max, y_min + y_max), clipped to 64
        assert [row.fx0, row.fy0, row.fx1, row.fy1] == [x_min, y_min, min(x_min + x_max + 1, 64),
                                                        min(y_min + y_max + 1, 64)]
    assert (frame["fx1"] == 64).any()  # some misread boxes leave the image and are clipped
    order = val.groupby("label").cumcount()
    assert (val["split"] == np.where(order % 2 == 0, "val_fullsup", "test")).all()


def test_tiny_box_mapping_at_another_size():
    inclusive = np.array([[22, 25, 44, 58]])
    correct = resize_boxes(tiny_imagenet.correct_boxes(inclusive), np.array([64]), np.array([64]), 32)
    assert correct.tolist() == [[11, 13, 23, 30]]  # 11, 12.5→13, 22.5→23, 29.5→30
    faithful = tiny_imagenet.faithful_boxes(inclusive, np.array([64]), np.array([64]))
    assert faithful.tolist() == [[22, 25, 64, 64]]  # 22+44+1 = 67 and 25+58+1 = 84, clipped


def test_tiny_annotation_errors(raw, tmp_path):
    root = Path(shutil.copytree(raw["tiny_imagenet_folder"], tmp_path / "tiny-imagenet-200"))
    annotations = root / "val/val_annotations.txt"
    lines = annotations.read_text().splitlines()
    annotations.write_text("\n".join([lines[0].replace("n0", "n9", 1), *lines[1:]]) + "\n")
    with pytest.raises(AnnotationError, match=r"val_annotations.txt line 1: wnid n9.* is not in wnids.txt"):
        tiny_imagenet.read_annotations(root)


# ------------------------------------------------------------------------------------------------------- availability
def _params(cub_mode="auto", tiny_mode="auto") -> dict:
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["datasets"]["cub"]["enabled"] = cub_mode
    params["datasets"]["tiny_imagenet"]["enabled"] = tiny_mode
    return params


def test_availability_switches(raw, tmp_path):
    params = _params()
    result = availability(params, root=tmp_path)
    assert [run for run, _ in result.values()] == [False, False]
    notice = result["cub"][1]
    assert "CUB_200_2011.tgz" in notice and "97eceeb196236b17998738112f37df78" in notice and "data/raw/" in notice
    assert "\n" not in notice and "tiny-imagenet-200.zip" in result["tiny_imagenet"][1]
    assert availability(_params("off", False), root=tmp_path) == {"cub": (False, None),
                                                                           "tiny_imagenet": (False, None)}
    for on in ("on", True):
        with pytest.raises(RawDataMissing) as error:
            availability(_params(on, "off"), root=tmp_path)
        assert str(error.value) == notice
    raw_dir = tmp_path / "data/raw"
    raw_dir.mkdir(parents=True)
    shutil.copy(raw["cub_archive"], raw_dir)  # an archive …
    shutil.copytree(raw["tiny_imagenet_folder"], raw_dir / "tiny-imagenet-200")  # … or a folder
    expected = {"cub": (True, None), "tiny_imagenet": (True, None)}
    assert availability(params, root=tmp_path) == expected
    assert availability(_params("on", "on"), root=tmp_path) == expected
    assert availability(_params("off", "auto"), root=tmp_path) == {"cub": (False, None),
                                                                             "tiny_imagenet": (True, None)}


# ------------------------------------------------------------------------------------------------ Snakemake, end to end
def _workdir(path: Path, raw: dict | None = None, sources: dict[str, str] | None = None, **enabled) -> Path:
    """A pipeline copy (smoke parameters); ``sources``: dataset → "archive" | "folder" copied into data/raw."""
    workdir = make_workdir(path)
    params = yaml.safe_load((workdir / "params.yaml").read_text())
    for name, mode in enabled.items():
        params["datasets"][name]["enabled"] = mode
    for name, kind in (sources or {}).items():
        params["datasets"][name]["md5"] = raw[f"{name}_md5"]  # independent of the values pinned in params/smoke.yaml
        _add_source(workdir, raw, name, kind)
    (workdir / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return workdir


def _add_source(workdir: Path, raw: dict, name: str, kind: str) -> None:
    source = Path(raw[f"{name}_{kind}"])
    target = workdir / "data/raw" / source.name
    target.parent.mkdir(parents=True, exist_ok=True)
    (shutil.copytree if kind == "folder" else shutil.copy)(source, target)


def _image_size(workdir: Path, name: str) -> int:
    return yaml.safe_load((workdir / "params.yaml").read_text())["datasets"][name]["image_size"]


def _check_cub(workdir: Path) -> None:
    table = pd.read_parquet(workdir / "data/prepared/cub/images.parquet")
    assert len(table) == 126 and table["pc_split"].value_counts().to_dict() == {"unused": 10, "train": 79, "test": 37}
    assert table["faithful_half_test"].sum() == 20
    size = _image_size(workdir, "cub")
    assert np.load(workdir / "data/prepared/cub/images.npy", mmap_mode="r").shape == (126, 3, size, size)
    assert column_descriptions(workdir / "data/prepared/cub/images.parquet").keys() == cub.CUB_COLUMNS.keys()


def _check_tiny(workdir: Path) -> None:
    table = pd.read_parquet(workdir / "data/prepared/tiny_imagenet/images.parquet")
    assert table["split"].value_counts().to_dict() == {"train": 18, "val_fullsup": 6, "test": 6}
    size = _image_size(workdir, "tiny_imagenet")
    assert np.load(workdir / "data/prepared/tiny_imagenet/images.npy", mmap_mode="r").shape == (30, 3, size, size)
    docs = column_descriptions(workdir / "data/prepared/tiny_imagenet/images.parquet")
    assert docs.keys() == tiny_imagenet.TINY_COLUMNS.keys()


NOTICES = {"cub": "CUB-200-2011 not found:", "tiny_imagenet": "Tiny-ImageNet-200 not found:"}


@pytest.mark.slow
def test_snakemake_prepares_an_archive_and_a_folder(raw, tmp_path):
    workdir = _workdir(tmp_path, raw, {"cub": "archive", "tiny_imagenet": "folder"})
    result = snakemake(workdir, "--cores", "2", "datasets_all")
    assert "not found" not in result.stderr
    _check_cub(workdir)
    _check_tiny(workdir)
    assert not list((workdir / "data/prepared").glob(".*"))  # the extraction scratch folder is gone
    assert "Nothing to be done" in snakemake(workdir, "--cores", "2", "datasets_all", "--dry-run").stdout


@pytest.mark.slow
def test_snakemake_prepares_a_folder_and_notices_the_missing_dataset_once(raw, tmp_path):
    workdir = _workdir(tmp_path, raw, {"cub": "folder"})
    result = snakemake(workdir, "--cores", "2", "datasets_all")  # a job runs: the notice still appears once
    assert result.stderr.count(NOTICES["tiny_imagenet"]) == 1 and NOTICES["cub"] not in result.stderr
    _check_cub(workdir)
    assert not (workdir / "data/prepared/tiny_imagenet").exists()


@pytest.mark.slow
def test_snakemake_without_data(tmp_path):
    workdir = _workdir(tmp_path / "auto")
    dry = snakemake(workdir, "--cores", "2", "--dry-run")  # the whole DAG: the rest still runs
    for line in NOTICES.values():
        assert (dry.stdout + dry.stderr).count(line) == 1, dry.stderr
    explicit = snakemake(workdir, "--cores", "1", "cub_prepare", check=False)
    assert explicit.returncode != 0 and "put the official CUB_200_2011.tgz" in explicit.stdout + explicit.stderr
    strict = _workdir(tmp_path / "on", cub="on", tiny_imagenet="off")
    failed = snakemake(strict, "--dry-run", "datasets_all", check=False)
    output = failed.stdout + failed.stderr
    assert failed.returncode != 0 and "put the official CUB_200_2011.tgz" in output
    assert NOTICES["tiny_imagenet"] not in output  # off: silent
