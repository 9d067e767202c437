"""Image files for :mod:`softmax_mi.localise`: expand files / folders / globs, decode (EXIF orientation, RGB), resize
as a whole into a uint8 batch; a file that cannot be read becomes one error line naming it."""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

__all__ = ["IMAGE_SUFFIXES", "ImageBatch", "ImageReadError", "expand_inputs", "load_images", "read_image"]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


class ImageReadError(ValueError):
    """A file that cannot be decoded as an image; the message names the file and the reason."""


def read_image(path: str | Path):
    """The image at ``path`` as an RGB ``PIL.Image`` (EXIF orientation applied); :class:`ImageReadError` when the file
    is missing, unreadable or not an image."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image = ImageOps.exif_transpose(image)
            return image.convert("RGB")
    except UnidentifiedImageError:
        raise ImageReadError(f"{path}: not an image (no image format recognised)") from None
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ImageReadError(f"{path}: cannot read the image ({reason})") from None


def expand_inputs(inputs: Iterable[str]) -> tuple[list[str], list[str]]:
    """Files from ``inputs`` (files, folders, glob patterns), in order, without repeats; and one error line per input
    that matched nothing. A folder contributes its image files (by suffix, recursively, sorted)."""
    files: dict[str, None] = {}
    errors = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = sorted(str(p) for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                errors.append(f"{item}: no image files in this folder (suffixes {', '.join(IMAGE_SUFFIXES)})")
        elif path.exists():
            found = [item]
        elif glob.has_magic(item):
            found = sorted(p for p in glob.glob(item, recursive=True) if os.path.isfile(p))
            if not found:
                errors.append(f"{item}: the pattern matches no file")
        else:
            found = []
            errors.append(f"{item}: no such file or folder")
        files.update(dict.fromkeys(found))
    return list(files), errors


@dataclass
class ImageBatch:
    """Decoded images: ``pixels`` uint8 ``[B, 3, S, S]`` (resized as a whole), ``sizes`` ``[B, 2]`` original
    (width, height), the ``paths`` and the RGB originals (``images``, for overlays)."""

    paths: list[str]
    pixels: torch.Tensor
    sizes: np.ndarray
    images: list


def load_images(paths: Sequence[str | Path], image_size: int) -> tuple[ImageBatch, list[str]]:
    """Decode and resize ``paths``; the readable ones form the batch, each other one gives an error line."""
    import torch
    from PIL import Image

    kept, images, arrays, errors = [], [], [], []
    for path in paths:
        try:
            image = read_image(path)
        except ImageReadError as error:
            errors.append(str(error))
            continue
        kept.append(str(path))
        images.append(image)
        arrays.append(np.asarray(image.resize((image_size, image_size), Image.BILINEAR)))
    pixels = (torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous() if arrays
              else torch.zeros((0, 3, image_size, image_size), dtype=torch.uint8))
    sizes = np.array([image.size for image in images], dtype=np.int64).reshape(-1, 2)
    return ImageBatch(kept, pixels, sizes, images), errors
