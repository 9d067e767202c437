"""Issue 11: user-supplied CUB-200-2011 / Tiny-ImageNet intake refuses bad boxes (14), damaged archives without a
checksum (15), archives past the extraction limits (16), accepts zips whose members carry no file-type bits (17),
and names the file and the fix for decompression-bomb images and undecodable annotation files (18)."""

from __future__ import annotations

import io
import logging
import shutil
import stat
import struct
import tarfile
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
import yaml

from helpers import REPO
from softmax_mi.data import cub, fixtures, tiny_imagenet
from softmax_mi.data.archive import ArchiveError, ExtractLimits, safe_extract
from softmax_mi.data.images import ImageError, check_boxes, decode_resized
from softmax_mi.data.raw import AnnotationError, open_raw
from softmax_mi.stages.datasets import cub_prepare

CUB_SETTINGS = {"image_size": 32, "val_per_class": 2, "seed": 0,
                "pc_split": {"train_per_class": [10, 30], "test_per_class": [5, 15]}}


@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> dict[str, str]:
    return fixtures.write_all(tmp_path_factory.mktemp("raw"))


def _copy(raw: dict, name: str, tmp_path: Path) -> Path:
    folder = Path(raw[f"{name}_folder"])
    return Path(shutil.copytree(folder, tmp_path / folder.name))


def _replace_line(path: Path, lineno: int, text: str) -> str:
    """Put ``text`` on line ``lineno`` (1-based) of ``path``; returns the line it replaced."""
    lines = path.read_text().splitlines()
    old, lines[lineno - 1] = lines[lineno - 1], text
    path.write_text("\n".join(lines) + "\n")
    return old


def _tgz(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)  # str name: external_attr 0o600 << 16, no file-type bits
    return path


def _left_behind(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


# --------------------------------------------------------------------------------------------------------- 14: boxes
def test_check_boxes_refuses_each_kind_of_bad_box_and_counts_the_overhang():
    sizes = np.array([[75, 60]] * 2)

    def check(box):
        return check_boxes(np.array([[0, 0, 10, 10], box], float), sizes[:, 0], sizes[:, 1],
                           lambda i: f"boxes.txt line {i + 1}", "restore it")

    for box, problem in [([np.nan, 0, 10, 10], "is not finite"), ([0, 0, np.inf, 10], "is not finite"),
                         ([-3, 0, 10, 10], "has a negative coordinate"), ([5, 5, 5, 9], "has no area"),
                         ([9, 5, 4, 9], "has no area"), ([5000, 0, 5010, 10], "starts outside the image"),
                         ([0, 60, 10, 61], "starts outside the image"),
                         ([10, 10, 77.5, 20], "ends more than 2 px"), ([10, 10, 20, 63], "ends more than 2 px")]:
        with pytest.raises(AnnotationError, match=rf"boxes.txt line 2: the box {problem}.*75×60 px.*fix: restore it"):
            check(box)
    assert check([10, 10, 77, 20]) == 1 and check([0, 0, 75, 62]) == 1 and check([0, 0, 75, 60]) == 0


@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-inf", "1e999"])
def test_cub_non_finite_box_value_is_refused_with_file_line_and_fix(raw, tmp_path, value):
    root = _copy(raw, "cub", tmp_path)
    _replace_line(root / "bounding_boxes.txt", 2, f"2 {value} 2.0 30.0 20.0")
    with pytest.raises(AnnotationError, match=rf"bounding_boxes.txt line 2: field x is '{value}', not a finite "
                                              r"number \(fix: restore CUB_200_2011"):
        cub.read_annotations(root)


def test_cub_box_outside_its_image_is_refused_when_it_meets_the_image(raw, tmp_path):
    root = _copy(raw, "cub", tmp_path)
    _replace_line(root / "bounding_boxes.txt", 3, "3 5000.0 2.0 30.0 20.0")
    with pytest.raises(AnnotationError, match=r"bounding_boxes.txt line 3: x 5000, y 2, width 30, height 20 for "
                                              r"images/\S+\.jpg: the box starts outside the image; the image is "
                                              r"\d+×\d+ px \(fix: restore CUB_200_2011"):
        cub.prepare(root, tmp_path / "images.npy", tmp_path / "images.parquet", CUB_SETTINGS)
    assert not (tmp_path / "images.parquet").exists()


def test_cub_box_overhanging_by_a_pixel_or_two_is_clipped_and_logged(raw, tmp_path, caplog):
    root = _copy(raw, "cub", tmp_path)
    annotations = cub.read_annotations(root)
    from PIL import Image

    widths = [Image.open(root / p).size[0] for p in annotations["path"][:2]]
    boxes = root / "bounding_boxes.txt"
    _replace_line(boxes, 1, f"1 10.0 5.0 {widths[0] - 10 + 1.5:.1f} 20.0")  # right edge 1.5 px past the image
    _replace_line(boxes, 2, f"2 10.0 5.0 {widths[1] - 10 + 2:.1f} 20.0")  # exactly the 2 px tolerated
    with caplog.at_level(logging.WARNING, logger="softmax_mi.data.cub"):
        frame = cub.prepare(root, tmp_path / "images.npy", tmp_path / "images.parquet", CUB_SETTINGS)
    assert frame["x1"].iloc[:2].tolist() == [32, 32]  # clipped to the S×S frame
    assert "CUB: 2 box(es) end at most 2 px past their image's edge and were clipped to it" in caplog.text
    _replace_line(boxes, 2, f"2 10.0 5.0 {widths[1] - 10 + 2.5:.1f} 20.0")  # 2.5 px: refused
    with pytest.raises(AnnotationError, match=r"bounding_boxes.txt line 2: .*ends more than 2 px"):
        cub.prepare(root, tmp_path / "images.npy", tmp_path / "images.parquet", CUB_SETTINGS)


def test_tiny_boxes_outside_the_image_are_refused_and_a_small_overhang_clipped(raw, tmp_path, caplog):
    root = _copy(raw, "tiny_imagenet", tmp_path)
    annotations = root / "val/val_annotations.txt"
    name, wnid, *_ = _replace_line(annotations, 2, "").split("\t")

    def prepare(box: str):
        _replace_line(annotations, 2, "\t".join([name, wnid, *box.split()]))
        return tiny_imagenet.prepare(root, tmp_path / "images.npy", tmp_path / "images.parquet", {"image_size": 64})

    with pytest.raises(AnnotationError, match=r"val_annotations.txt line 2: x_min y_min x_max y_max 5 5 70 20 for "
                                              r"val/images/\S+: the box ends more than 2 px.*64×64 px"):
        prepare("5 5 70 20")
    with pytest.raises(AnnotationError, match=r"val_annotations.txt line 2: x_min y_min x_max y_max 64 5 66 20 .*"
                                              r"starts outside the image"):
        prepare("64 5 66 20")
    with pytest.raises(AnnotationError, match=r"val_annotations.txt line 2: box \['-1', .* must satisfy"):
        prepare("-1 5 30 20")
    with pytest.raises(AnnotationError, match=r"val_annotations.txt line 2: field x_max is 'nan'"):
        prepare("5 5 nan 20")
    with caplog.at_level(logging.WARNING, logger="softmax_mi.data.tiny_imagenet"):
        frame = prepare("5 5 65 20")  # inclusive x_max 65: the exclusive edge 66 is 2 px past 64
    assert "Tiny-ImageNet: 1 box(es) end at most 2 px past" in caplog.text
    row = frame[frame["path"] == f"val/images/{name}"].iloc[0]
    assert [row.x0, row.y0, row.x1, row.y1] == [5, 5, 64, 21]


# ---------------------------------------------------------------------------------- 15: integrity without a checksum
def _random_tgz(path: Path) -> tuple[Path, bytes]:
    payload = np.random.default_rng(0).integers(0, 256, 60_000, dtype=np.uint8).tobytes()  # gzip stores it as is
    return _tgz(path, {"payload/random.bin": payload, "payload/images.txt": b"1 a.jpg\n"}), payload


@pytest.mark.parametrize("damage", ["flipped_byte", "truncated_trailer"])
def test_damaged_tgz_is_refused_without_a_checksum_and_leaves_nothing(tmp_path, damage):
    archive, payload = _random_tgz(tmp_path / "data.tgz")
    data = bytearray(archive.read_bytes())
    if damage == "flipped_byte":
        data[len(data) // 2] ^= 0xFF  # inside the stored block: decompresses without complaint, only the CRC differs
    else:
        del data[-8:]  # CRC-32 and length gone
    archive.write_bytes(bytes(data))
    work = tmp_path / "work"
    with pytest.raises(ArchiveError, match=r"data.tgz: cannot read the archive \(.*(CRC|end-of-stream).*\) "
                                           r"\(fix: download it again\)"):
        with open_raw(archive, "cub", None, work):  # md5: null
            pass
    assert _left_behind(work) == []


def test_damaged_zip_member_is_refused(tmp_path):
    payload = np.random.default_rng(1).integers(0, 256, 20_000, dtype=np.uint8).tobytes()
    archive = tmp_path / "data.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("payload/random.bin", payload)
    data = bytearray(archive.read_bytes())
    data[data.index(payload[:64]) + 10_000] ^= 0xFF
    archive.write_bytes(bytes(data))
    with pytest.raises(ArchiveError, match=r"data.zip: extraction failed \(BadZipFile: Bad CRC-32"):
        safe_extract(archive, tmp_path / "work" / "target")
    assert _left_behind(tmp_path / "work") == []


# ------------------------------------------------------------------------------------------------ 16: extraction limits
BOMB = bytes(300_000)  # 300 kB of zeros: about 300 bytes compressed (ratio about 1,000)


@pytest.mark.parametrize("kind", ["tgz", "zip"])
@pytest.mark.parametrize("limits, key", [
    (ExtractLimits(max_bytes=100_000, max_ratio=1e9), "max_bytes"),
    (ExtractLimits(max_ratio=50), "max_ratio"),
    (ExtractLimits(max_members=3), "max_members"),
])
def test_archive_past_a_limit_is_refused_and_leaves_nothing(tmp_path, kind, limits, key):
    members = {f"payload/small_{i}.txt": b"ok\n" for i in range(4)} | {"payload/zeros.bin": BOMB}
    archive = (_tgz if kind == "tgz" else _zip)(tmp_path / f"bomb.{kind}", members)
    work = tmp_path / "work"
    with pytest.raises(ArchiveError, match=rf"bomb.{kind}: refusing to extract: .* \(limit ExtractLimits.{key}\) "
                                           rf"\(fix: .*decompression bomb.*raise ExtractLimits.{key}\)"):
        safe_extract(archive, work / "target", limits)
    assert _left_behind(work) == []


def test_limits_are_counted_on_the_bytes_written(tmp_path):
    """The declared sizes are checked first; extraction counts again what it writes (a zip member is streamed and
    counted chunk by chunk, the count is checked before each write), so the limits hold exactly."""
    archive = _zip(tmp_path / "exact.zip", {"a.bin": bytes(600), "b.bin": bytes(400)})
    safe_extract(archive, tmp_path / "ok", ExtractLimits(max_bytes=1000, max_members=2, max_ratio=1e9))
    assert (tmp_path / "ok/b.bin").stat().st_size == 400
    with pytest.raises(ArchiveError, match=r"its contents pass 999 bytes at member 'b.bin'"):
        safe_extract(archive, tmp_path / "refused", ExtractLimits(max_bytes=999, max_ratio=1e9))


def test_a_lying_zip_size_does_not_bypass_the_limits(tmp_path):
    archive = _zip(tmp_path / "lying.zip", {"payload/zeros.bin": BOMB})
    data = bytearray(archive.read_bytes())
    struct.pack_into("<I", data, 22, 10)  # local header: uncompressed size 10
    struct.pack_into("<I", data, data.index(b"PK\x01\x02") + 24, 10)  # central directory: 10
    archive.write_bytes(bytes(data))
    work = tmp_path / "work"
    with pytest.raises(ArchiveError, match=r"lying.zip: extraction failed \(BadZipFile: Bad CRC-32"):
        safe_extract(archive, work / "target", ExtractLimits(max_bytes=1000, max_ratio=1e9))
    assert _left_behind(work) == []


def test_a_sparse_tar_member_whose_map_writes_past_its_size_is_refused(tmp_path):
    info = tarfile.TarInfo("payload/sparse.bin")
    info.size = len(BOMB)  # stored data; the pax header declares 10 bytes but maps 300 kB of writes
    info.pax_headers = {"GNU.sparse.map": ",".join(f"{i * 10_000},10000" for i in range(30)), "GNU.sparse.size": "10"}
    archive = tmp_path / "sparse.tgz"
    with tarfile.open(archive, "w:gz", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(info, io.BytesIO(BOMB))
    with pytest.raises(ArchiveError, match=r"refusing to extract member 'payload/sparse.bin': it is a sparse file"):
        safe_extract(archive, tmp_path / "work" / "target", ExtractLimits(max_bytes=1000, max_ratio=1e9))
    assert _left_behind(tmp_path / "work") == []


def test_a_tar_of_the_folder_made_with_dot_members_still_extracts(raw, tmp_path):
    """``tar -czf x.tgz -C CUB_200_2011/.. .`` writes './' and './CUB_200_2011/…': harmless, accepted."""
    folder = Path(raw["cub_folder"])
    archive = fixtures.write_tgz(tmp_path / "CUB_200_2011.tgz",
                                 [(folder.parent, "."), *fixtures._members(folder, "./CUB_200_2011")])
    with open_raw(archive, "cub", None, tmp_path / "scratch") as root:
        assert (root / "images.txt").read_text() == (folder / "images.txt").read_text()


def test_the_stage_refuses_past_the_params_limits_and_says_what_to_raise(raw, tmp_path):
    settings = {**CUB_SETTINGS, "md5": raw["cub_md5"], "extract_limits": {"max_bytes": 4_000_000_000,
                                                                          "max_members": 100, "max_ratio": 10}}
    outputs = {"images": str(tmp_path / "prepared/cub/images.npy"),
               "table": str(tmp_path / "prepared/cub/images.parquet")}
    with pytest.raises(ArchiveError, match=r"CUB_200_2011.tgz: refusing to extract: it holds more than 100 members "
                                           r"\(limit params.yaml datasets.cub.extract_limits.max_members\).*raise "
                                           r"params.yaml datasets.cub.extract_limits.max_members\)"):
        cub_prepare(inputs={"raw": raw["cub_archive"]}, outputs=outputs, threads=1, settings=settings)
    assert _left_behind(tmp_path / "prepared") == []  # no scratch folder, no output


def test_default_and_params_limits_accept_the_fixtures(raw, tmp_path):
    params = yaml.safe_load((REPO / "params.yaml").read_text())["datasets"]
    for name in ("cub", "tiny_imagenet"):
        archive = raw[f"{name}_archive"]
        assert (tmp_path / name / "target") == safe_extract(archive, tmp_path / name / "target")  # ExtractLimits()
        with open_raw(archive, name, None, tmp_path / "scratch", params[name]["extract_limits"]) as root:
            assert (root / {"cub": "images.txt", "tiny_imagenet": "wnids.txt"}[name]).is_file()
    # the shipped limits leave the real archives (1.2 GB / about 12,000 members; about 250 MB / 120,600) room
    assert params["cub"]["extract_limits"]["max_bytes"] >= 3 * 1_200_000_000
    assert params["tiny_imagenet"]["extract_limits"]["max_members"] >= 2 * 120_600


# ----------------------------------------------------------------------------------------- 17: zip without type bits
def test_zip_members_without_file_type_bits_are_regular_files(raw, tmp_path):
    folder = Path(raw["tiny_imagenet_folder"])
    archive = tmp_path / "tiny-imagenet-200.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:  # as a script using writestr would build it
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zf.writestr(f"tiny-imagenet-200/{path.relative_to(folder).as_posix()}", path.read_bytes())
        assert {stat.S_IFMT(i.external_attr >> 16) for i in zf.infolist()} == {0}
    with open_raw(archive, "tiny_imagenet", None, tmp_path / "scratch") as root:
        frame = tiny_imagenet.prepare(root, tmp_path / "a.npy", tmp_path / "a.parquet", {"image_size": 64})
    expected = tiny_imagenet.prepare(folder, tmp_path / "b.npy", tmp_path / "b.parquet", {"image_size": 64})
    assert frame.equals(expected) and np.array_equal(np.load(tmp_path / "a.npy"), np.load(tmp_path / "b.npy"))


@pytest.mark.parametrize("file_type", [stat.S_IFCHR, stat.S_IFBLK, stat.S_IFIFO, stat.S_IFSOCK])
def test_zip_members_typed_as_special_files_are_still_refused(tmp_path, file_type):
    info = zipfile.ZipInfo("payload/special")
    info.external_attr = (file_type | 0o644) << 16
    archive = tmp_path / "special.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr(info, b"")
    with pytest.raises(ArchiveError, match=r"refusing to extract member 'payload/special': it is a device, FIFO"):
        safe_extract(archive, tmp_path / "target")


# ------------------------------------------------------------------------------- 18: bad files name the file and fix
def _png_bomb(width: int = 30_000, height: int = 30_000) -> bytes:
    """A 100-byte PNG declaring width × height 1-bit pixels (900 megapixels by default)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 16))
            + chunk(b"IEND", b""))


def test_decompression_bomb_image_is_refused_with_its_name(tmp_path):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(_png_bomb())
    with pytest.raises(ImageError, match=r"bomb.png: refusing to decode a decompression bomb .*fix: .*official"):
        decode_resized(str(bomb), 32)
    bomb.write_bytes(_png_bomb(10_000, 10_000))  # 100 megapixels: PIL only warns; still no image of these datasets
    with pytest.raises(ImageError, match=r"bomb.png: refusing to decode a decompression bomb"):
        decode_resized(str(bomb), 32)
    bomb.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)  # damaged: still the file name and the fix
    with pytest.raises(ImageError, match=r"bomb.png: cannot decode the image .*fix: restore it"):
        decode_resized(str(bomb), 32)


def test_decompression_bomb_in_the_dataset_names_the_file_through_the_worker_pool(raw, tmp_path):
    root = _copy(raw, "cub", tmp_path)
    victim = root / "images" / cub.read_annotations(root)["path"].iloc[40].removeprefix("images/")
    victim.write_bytes(_png_bomb())  # a bomb with the official file name
    with pytest.raises(OSError, match=rf"{victim.name}: refusing to decode a decompression bomb"):
        cub.prepare(root, tmp_path / "images.npy", tmp_path / "images.parquet", CUB_SETTINGS, threads=2)
    assert not (tmp_path / "images.npy").exists()


@pytest.mark.parametrize("name", ["images.txt", "classes.txt", "image_class_labels.txt", "train_test_split.txt",
                                  "bounding_boxes.txt"])
def test_undecodable_cub_annotation_file_names_the_file_line_and_fix(raw, tmp_path, name):
    root = _copy(raw, "cub", tmp_path)
    jpeg = next((root / "images").rglob("*.jpg")).read_bytes()  # a binary file saved under the annotation's name
    (root / name).write_bytes(jpeg)
    with pytest.raises(AnnotationError, match=rf"{name} line 1: byte 1 \(b'\\xff'\) is not UTF-8 text: the file is "
                                              r"binary or damaged \(expected lines '<.*fix: restore CUB_200_2011"):
        cub.read_annotations(root)


@pytest.mark.parametrize("name", ["wnids.txt", "words.txt", "val/val_annotations.txt",
                                  "train/n01629819/n01629819_boxes.txt"])
def test_undecodable_tiny_annotation_file_names_the_file_line_and_fix(raw, tmp_path, name):
    root = _copy(raw, "tiny_imagenet", tmp_path)
    path = root / name
    path.write_bytes(b"\xff\xfe" + path.read_bytes())  # a UTF-16 byte-order mark: not UTF-8
    with pytest.raises(AnnotationError, match=rf"{Path(name).name} line 1: byte 1 \(b'\\xff'\) is not UTF-8 text"
                                              r".*fix: restore tiny-imagenet-200"):
        tiny_imagenet.read_annotations(root)
