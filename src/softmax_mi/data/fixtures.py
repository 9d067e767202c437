"""Tiny CUB-200-2011 and Tiny-ImageNet-200 datasets in the exact official formats, their archives, and malicious
archives for the extraction tests.

``python -m softmax_mi.data.fixtures OUT_DIR`` writes ``CUB_200_2011/`` + ``CUB_200_2011.tgz`` (+ the top-level
``attributes.txt`` the official archive also holds) and ``tiny-imagenet-200/`` + ``tiny-imagenet-200.zip``, and
prints the archives' md5s. Put them into ``data/raw/`` to run the dataset rules on them (``params/smoke.yaml``
pins these md5s). Everything is a deterministic function of the code: same bytes on every run (fixed seeds,
zeroed timestamps and owners in the archives).

CUB fixture: 4 classes with the official class folder names; per class (official train, official test) images
= (12, 7), (32, 17), (11, 6), (29, 12), so the paper's PC-softmax caps (10 / 30 train, 5 / 15 test for even / odd
labels) bite in classes 0–2 and fall short in class 3 (as three real classes have only 29 train images). The rules
therefore give pc_split train 10 + 30 + 10 + 29 = 79, test 5 + 15 + 5 + 12 = 37; faithful_half_test
3 + 8 + 3 + 6 = 20. Images are 60–90 px JPEGs (one grayscale) showing a class-coloured ellipse filling its box on a
textured background, so a small CNN can learn both the class and the location.

Tiny-ImageNet fixture: 3 wnids, 6 train images each (64 × 64 JPEGs, one grayscale), 12 val images (4 per class,
classes interleaved in val_annotations.txt), 2 unlabelled test images; words.txt also lists wnids outside the set,
as the real one does. Some boxes reach far enough right/down that the original's misreading leaves the image.
"""

from __future__ import annotations

import gzip
import io
import stat
import sys
import tarfile
import zipfile
from pathlib import Path

import numpy as np

from softmax_mi.io import file_digest

CUB_CLASSES = ["001.Black_footed_Albatross", "002.Laysan_Albatross", "003.Sooty_Albatross", "004.Groove_billed_Ani"]
CUB_COUNTS = [(12, 7), (32, 17), (11, 6), (29, 12)]  # (official train, official test) per class
TINY_WNIDS = {
    "n01443537": "goldfish, Carassius auratus",
    "n01629819": "European fire salamander, Salamandra salamandra",
    "n01641577": "bullfrog, Rana catesbeiana",
}
TINY_TRAIN_PER_CLASS = 6
TINY_VAL_PER_CLASS = 4
COLOURS = np.array([[220, 40, 40], [40, 180, 60], [50, 80, 230], [235, 200, 30]], np.float64)
SEED = 20241123


def _render(rng: np.random.Generator, width: int, height: int, box: tuple[float, float, float, float],
            colour: np.ndarray) -> np.ndarray:
    """uint8 [H, W, 3]: a textured background with a filled ellipse inscribed in the half-open box (x0, y0, x1, y1)."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64) + 0.5
    freq, phase = rng.uniform(0.15, 0.5, size=2), rng.uniform(0, 2 * np.pi, size=2)
    base = 110 + 35 * np.sin(freq[0] * xx + phase[0]) * np.cos(freq[1] * yy + phase[1])
    image = base[..., None] + rng.normal(0, 18, size=(height, width, 3)) + rng.uniform(-20, 20, size=3)
    x0, y0, x1, y1 = box
    cx, cy, rx, ry = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2, (y1 - y0) / 2
    inside = ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1.0
    image[inside] = colour + rng.normal(0, 12, size=(int(inside.sum()), 3))
    return np.clip(image, 0, 255).astype(np.uint8)


def _save_jpeg(array: np.ndarray, path: Path, grayscale: bool = False) -> None:
    from PIL import Image

    image = Image.fromarray(array)
    if grayscale:
        image = image.convert("L")
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format="JPEG", quality=85)


def write_cub(out_dir: str | Path) -> Path:
    """The ``CUB_200_2011/`` folder (and the sibling ``attributes.txt``) under ``out_dir``; returns the folder."""
    root = Path(out_dir) / "CUB_200_2011"
    rng = np.random.default_rng(SEED)
    images, labels, split, boxes = [], [], [], []
    image_id = 0
    for class_index, (folder, (n_train, n_test)) in enumerate(zip(CUB_CLASSES, CUB_COUNTS)):
        stem = folder.split(".", 1)[1].title()  # the official file names are title-cased
        flags = rng.permutation(np.r_[np.ones(n_train, int), np.zeros(n_test, int)])  # train / test interleaved
        for k, flag in enumerate(flags):
            image_id += 1
            width, height = (int(v) for v in rng.integers(60, 91, size=2))
            bw, bh = int(rng.integers(width * 0.35, width * 0.7)), int(rng.integers(height * 0.35, height * 0.7))
            bx, by = int(rng.integers(0, width - bw + 1)), int(rng.integers(0, height - bh + 1))
            name = f"{folder}/{stem}_{k + 1:04d}_{image_id}.jpg"
            pixels = _render(rng, width, height, (bx, by, bx + bw, by + bh), COLOURS[class_index])
            _save_jpeg(pixels, root / "images" / name, grayscale=(class_index == 0 and k == 2))
            images.append(name)
            labels.append(class_index + 1)
            split.append(int(flag))
            boxes.append((bx, by, bw, bh))
    ids = range(1, image_id + 1)
    _write_lines(root / "images.txt", [f"{i} {p}" for i, p in zip(ids, images)])
    _write_lines(root / "classes.txt", [f"{i + 1} {c}" for i, c in enumerate(CUB_CLASSES)])
    _write_lines(root / "image_class_labels.txt", [f"{i} {c}" for i, c in zip(ids, labels)])
    _write_lines(root / "train_test_split.txt", [f"{i} {s}" for i, s in zip(ids, split)])
    _write_lines(root / "bounding_boxes.txt",
                 [f"{i} {x:.1f} {y:.1f} {w:.1f} {h:.1f}" for i, (x, y, w, h) in zip(ids, boxes)])
    (root / "README").write_text("A fixture in the CUB-200-2011 format by softmax_mi.data.fixtures (not real data).\n")
    _write_lines(Path(out_dir) / "attributes.txt",
                 ["1 has_bill_shape::curved_(up_or_down)", "2 has_bill_shape::dagger"])
    return root


def write_tiny_imagenet(out_dir: str | Path) -> Path:
    """The ``tiny-imagenet-200/`` folder under ``out_dir``; returns it."""
    root = Path(out_dir) / "tiny-imagenet-200"
    rng = np.random.default_rng(SEED + 1)
    wnids = list(TINY_WNIDS)

    def draw(class_index: int, grayscale: bool, path: Path) -> tuple[int, int, int, int]:
        x_min, y_min = (int(v) for v in rng.integers(0, 30, size=2))
        x_max, y_max = (int(v) for v in rng.integers(np.array([x_min, y_min]) + 12, 64, size=2))
        pixels = _render(rng, 64, 64, (x_min, y_min, x_max + 1, y_max + 1), COLOURS[class_index])
        _save_jpeg(pixels, path, grayscale=grayscale)
        return x_min, y_min, x_max, y_max

    for c, wnid in enumerate(wnids):
        lines = []
        for k in range(TINY_TRAIN_PER_CLASS):
            name = f"{wnid}_{k}.JPEG"
            box = draw(c, c == 1 and k == 0, root / "train" / wnid / "images" / name)
            lines.append("\t".join([name, *map(str, box)]))
        _write_lines(root / "train" / wnid / f"{wnid}_boxes.txt", lines)
    val_classes = rng.permutation(np.repeat(np.arange(len(wnids)), TINY_VAL_PER_CLASS))
    lines = []
    for k, c in enumerate(val_classes.tolist()):
        name = f"val_{k}.JPEG"
        box = draw(c, k == 3, root / "val" / "images" / name)
        lines.append("\t".join([name, wnids[c], *map(str, box)]))
    _write_lines(root / "val" / "val_annotations.txt", lines)
    for k in range(2):
        _save_jpeg(_render(rng, 64, 64, (10, 10, 40, 40), COLOURS[3]), root / "test" / "images" / f"test_{k}.JPEG")
    _write_lines(root / "wnids.txt", wnids)
    words = {"n00001740": "entity", **TINY_WNIDS, "n15299783": "time interval, interval"}
    _write_lines(root / "words.txt", [f"{w}\t{n}" for w, n in words.items()])
    return root


def _write_lines(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{line}\n" for line in lines))


# ------------------------------------------------------------------------------------------------------------ archives
def _members(root: Path, arc_root: str) -> list[tuple[Path, str]]:
    """(path, archive name) of ``root`` and everything under it, in a fixed order (directories before contents)."""
    found = [(root, arc_root)]
    for path in sorted(root.rglob("*")):
        found.append((path, f"{arc_root}/{path.relative_to(root).as_posix()}"))
    return found


def write_tgz(target: Path, entries: list[tuple[Path, str]]) -> Path:
    """A reproducible .tgz: zero timestamps and owners, gzip header without name or time."""
    with open(target, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as gz:
        with tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for path, name in entries:
                info = tarfile.TarInfo(name)
                info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
                if path.is_dir():
                    info.type, info.mode = tarfile.DIRTYPE, 0o755
                    tar.addfile(info)
                else:
                    data = path.read_bytes()
                    info.size, info.mode = len(data), 0o644
                    tar.addfile(info, io.BytesIO(data))
    return target


def write_zip(target: Path, entries: list[tuple[Path, str]]) -> Path:
    """A reproducible .zip (fixed 1980-01-01 timestamps)."""
    with zipfile.ZipFile(target, "w") as zf:
        for path, name in entries:
            if path.is_dir():
                info = zipfile.ZipInfo(name + "/", date_time=(1980, 1, 1, 0, 0, 0))
                info.external_attr = ((stat.S_IFDIR | 0o755) << 16) | 0x10
                zf.writestr(info, b"")
            else:
                info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
                info.external_attr = (stat.S_IFREG | 0o644) << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                zf.writestr(info, path.read_bytes())
    return target


def write_all(out_dir: str | Path) -> dict[str, str]:
    """Both fixture folders and archives under ``out_dir``; returns their paths and the archives' md5s."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cub = write_cub(out_dir)
    cub_archive = write_tgz(out_dir / "CUB_200_2011.tgz",
                            [(out_dir / "attributes.txt", "attributes.txt"), *_members(cub, "CUB_200_2011")])
    tiny = write_tiny_imagenet(out_dir)
    tiny_archive = write_zip(out_dir / "tiny-imagenet-200.zip", _members(tiny, "tiny-imagenet-200"))
    return {
        "cub_folder": str(cub), "cub_archive": str(cub_archive), "cub_md5": file_digest(cub_archive, "md5"),
        "tiny_imagenet_folder": str(tiny), "tiny_imagenet_archive": str(tiny_archive),
        "tiny_imagenet_md5": file_digest(tiny_archive, "md5"),
    }


# --------------------------------------------------------------------------------------------------- malicious archives
def write_malicious_archives(out_dir: str | Path) -> dict[str, Path]:
    """Archives that a safe extractor must refuse: ``{kind: path}`` for kinds dotdot, absolute, symlink (escaping),
    hardlink (escaping), device (.tgz each) and zip_dotdot, zip_absolute, zip_symlink (.zip)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    def tar_with(name: str, members: list[tarfile.TarInfo]) -> Path:
        path = out_dir / name
        with tarfile.open(path, "w:gz") as tar:
            good = tarfile.TarInfo("payload/good.txt")
            good.size = 3
            tar.addfile(good, io.BytesIO(b"ok\n"))
            for member in members:
                data = b"evil\n" if member.isfile() else None
                if data is not None:
                    member.size = len(data)
                tar.addfile(member, io.BytesIO(data) if data is not None else None)
        return path

    def info(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
        member = tarfile.TarInfo(name)
        member.type, member.linkname = kind, link
        return member

    def zip_with(name: str, member: zipfile.ZipInfo, data: bytes = b"evil\n") -> Path:
        path = out_dir / name
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr("payload/good.txt", b"ok\n")
            zf.writestr(member, data)
        return path

    link = zipfile.ZipInfo("payload/link")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    return {
        "dotdot": tar_with("dotdot.tgz", [info("payload/../../evil.txt")]),
        "absolute": tar_with("absolute.tgz", [info("/tmp/softmax_mi_evil.txt")]),
        "symlink": tar_with("symlink.tgz", [info("payload/link", tarfile.SYMTYPE, "../../outside"),
                                            info("payload/link/evil.txt")]),
        "hardlink": tar_with("hardlink.tgz", [info("payload/hard", tarfile.LNKTYPE, "../outside.txt")]),
        "device": tar_with("device.tgz", [info("payload/null", tarfile.CHRTYPE)]),
        "zip_dotdot": zip_with("dotdot.zip", zipfile.ZipInfo("../evil.txt")),
        "zip_absolute": zip_with("absolute.zip", zipfile.ZipInfo("/tmp/softmax_mi_evil.txt")),
        "zip_symlink": zip_with("symlink.zip", link, b"../../outside"),
    }


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        raise SystemExit("usage: python -m softmax_mi.data.fixtures OUT_DIR")
    written = write_all(args[0])
    for key, value in written.items():
        print(f"{key}: {value}")


if __name__ == "__main__":
    main()
