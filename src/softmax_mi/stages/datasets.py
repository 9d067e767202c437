"""Raw-data intake (issue 5): a user-supplied CUB-200-2011 / Tiny-ImageNet archive or folder → the prepared format
``data/prepared/<name>/{images.npy, images.parquet}`` (see :mod:`softmax_mi.data.cub`,
:mod:`softmax_mi.data.tiny_imagenet`). Called by ``workflow/rules/datasets.smk`` through :mod:`softmax_mi.stage`.
"""

from __future__ import annotations

import logging
from pathlib import Path

from softmax_mi.data import cub, tiny_imagenet
from softmax_mi.data.raw import open_raw
from softmax_mi.io import write_json

log = logging.getLogger(__name__)


def _prepare(name: str, module, inputs: dict, outputs: dict, threads: int, settings: dict) -> None:
    source = inputs["raw"]
    log.info("%s: reading %s", name, source)
    # the extraction scratch folder lives beside the output folder: same file system, removed afterwards
    scratch = Path(outputs["images"]).parent.parent
    with open_raw(source, name, settings["md5"], scratch, settings.get("extract_limits")) as root:
        module.prepare(root, outputs["images"], outputs["table"], settings, threads=threads)


def cub_prepare(inputs: dict, outputs: dict, threads: int, settings: dict) -> None:
    """``datasets.cub`` settings: md5, extract_limits, image_size, val_per_class, pc_split, seed."""
    _prepare("cub", cub, inputs, outputs, threads, settings)


def tiny_imagenet_prepare(inputs: dict, outputs: dict, threads: int, settings: dict) -> None:
    """``datasets.tiny_imagenet`` settings: md5, extract_limits, image_size."""
    _prepare("tiny_imagenet", tiny_imagenet, inputs, outputs, threads, settings)


def manifest(*, found: dict, outputs: dict) -> None:
    """``data/prepared/manifest.json``: which user-supplied datasets this run found (and from which file), or the
    notice saying what to put where. Always written, so the prepared-data folder exists whether or not the user
    supplied anything (DVC tracks it as the `datasets` stage's output)."""
    write_json(found, outputs["manifest"])
    for name, entry in found.items():
        log.info("%s: %s", name, f"prepared from {entry['source']}" if entry["run"] else entry["notice"] or "off")
