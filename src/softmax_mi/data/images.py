"""Decode image files into one uint8 ``[N, 3, S, S]`` array, and map boxes into the resized frame.

Images are decoded with PIL, converted to RGB (the real datasets hold grayscale and CMYK JPEGs) and resized to
S × S directly, without a crop (the wsolevaluation protocol), with bilinear filtering (PIL's resize is
antialiased when shrinking). EXIF orientation is ignored on purpose: the datasets' boxes refer to the stored pixel
grid. Decoding runs in a process pool (``threads`` workers) and is written straight into a memory-mapped .npy,
so memory stays bounded for the 11,788 CUB images at 224 px (1.8 GB).
"""

from __future__ import annotations

import multiprocessing
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from softmax_mi.data.raw import AnnotationError
from softmax_mi.io import atomic_path
from softmax_mi.runtime import progress

CHUNK = 32  # images per pool task: large enough to amortise pickling, small enough for a smooth progress bar
#: how far (pixels) a box's right / bottom edge may pass its image's and still be clipped to it (with a log line) rather
#: than refused: off-by-one edge conventions (inclusive vs exclusive, 1-based) in real annotations give 1 px
BOX_OVERHANG = 2


class ImageError(OSError):
    """An image file cannot be decoded (damaged, not an image, or a decompression bomb)."""


def decode_resized(path: str, size: int) -> tuple[np.ndarray, int, int]:
    """One image as uint8 [3, size, size] RGB plus its original width and height.

    Any failure to decode, including PIL's decompression-bomb guard (images past ``Image.MAX_IMAGE_PIXELS``, about
    89 megapixels; the datasets' images are under one), raises :class:`ImageError` naming the file and the fix."""
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                width, height = image.size
                rgb = image.convert("RGB")
                if rgb.size != (size, size):
                    rgb = rgb.resize((size, size), Image.Resampling.BILINEAR)
                return np.asarray(rgb, dtype=np.uint8).transpose(2, 0, 1), width, height
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise ImageError(f"{path}: refusing to decode a decompression bomb ({error}) (fix: this is not an image of "
                         "the dataset; restore the file from the official archive)") from None
    except Exception as error:  # PIL raises OSError, ValueError, SyntaxError, EOFError, struct.error … on bad files
        raise ImageError(f"{path}: cannot decode the image ({type(error).__name__}: {error}) "
                         "(fix: restore it from the official archive)") from None


def _decode_chunk(task: tuple[Sequence[str], int]) -> tuple[np.ndarray, np.ndarray]:
    paths, size = task
    images = np.empty((len(paths), 3, size, size), np.uint8)
    sizes = np.empty((len(paths), 2), np.int64)
    for i, path in enumerate(paths):
        images[i], sizes[i, 0], sizes[i, 1] = decode_resized(path, size)
    return images, sizes


def decode_to_npy(paths: Sequence[str | Path], size: int, target: str | Path, *, threads: int = 1,
                  desc: str = "decode") -> np.ndarray:
    """Decode ``paths`` in order into ``target`` (uint8 [N, 3, size, size], written atomically).

    Returns the original sizes, int64 [N, 2] (width, height)."""
    paths = [str(p) for p in paths]
    tasks = [(paths[i : i + CHUNK], size) for i in range(0, len(paths), CHUNK)]
    sizes = np.empty((len(paths), 2), np.int64)
    with atomic_path(target) as tmp:
        array = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(len(paths), 3, size, size))
        with progress(total=len(paths), desc=desc, unit="img") as bar:
            if threads > 1 and len(tasks) > 1:
                # spawn: workers start clean (no inherited torch/OpenMP state); they only need numpy and PIL
                with multiprocessing.get_context("spawn").Pool(min(threads, len(tasks))) as pool:
                    results = pool.imap(_decode_chunk, tasks)
                    _collect(results, array, sizes, bar)
            else:
                _collect(map(_decode_chunk, tasks), array, sizes, bar)
        array.flush()
        del array
    return sizes


def _collect(results, array: np.ndarray, sizes: np.ndarray, bar) -> None:
    start = 0
    for images, chunk_sizes in results:
        array[start : start + len(images)] = images
        sizes[start : start + len(images)] = chunk_sizes
        start += len(images)
        bar.update(len(images))


def resize_boxes(boxes: np.ndarray, orig_w: np.ndarray, orig_h: np.ndarray, size: int) -> np.ndarray:
    """Half-open pixel-edge boxes [N, 4] (x0, y0, x1, y1, float, original pixels) → int64 boxes in S × S.

    Each edge is scaled by S / W (x) or S / H (y) and rounded to the nearest pixel edge (halves up); boxes are
    clipped to the image and keep at least one pixel, so every GT box has a positive area."""
    boxes = np.asarray(boxes, dtype=np.float64)
    extent = np.stack([orig_w, orig_h, orig_w, orig_h], axis=1).astype(np.float64)
    # (x·S) / W in this order: exact for the integer coordinates of the official files, so ties round predictably
    scaled = np.floor(boxes * size / extent + 0.5)
    out = np.clip(scaled, 0, size).astype(np.int64)
    out[:, 0] = np.minimum(out[:, 0], size - 1)
    out[:, 1] = np.minimum(out[:, 1], size - 1)
    out[:, 2] = np.maximum(out[:, 2], out[:, 0] + 1)
    out[:, 3] = np.maximum(out[:, 3], out[:, 1] + 1)
    return out


def check_boxes(boxes: np.ndarray, orig_w: np.ndarray, orig_h: np.ndarray, describe: Callable[[int], str],
                fix: str, overhang: int = BOX_OVERHANG) -> int:
    """Check half-open boxes [N, 4] (x0, y0, x1, y1, original pixels) against their images' sizes.

    A box must be finite, start inside its image (0 ≤ x0 < W, 0 ≤ y0 < H), have a positive size and end at most
    ``overhang`` pixels past the right / bottom edge; otherwise :class:`AnnotationError` says which (``describe(i)``
    names the file, line and box of row i). Returns how many boxes overhang (within the tolerance): the caller logs
    that count, :func:`resize_boxes` clips them to the image."""
    b = np.asarray(boxes, dtype=np.float64)
    w, h = np.asarray(orig_w, np.float64), np.asarray(orig_h, np.float64)
    problems = [
        (~np.isfinite(b).all(axis=1), "is not finite"),
        ((b[:, 0] < 0) | (b[:, 1] < 0), "has a negative coordinate"),
        ((b[:, 2] <= b[:, 0]) | (b[:, 3] <= b[:, 1]), "has no area (width or height ≤ 0)"),
        ((b[:, 0] >= w) | (b[:, 1] >= h), "starts outside the image"),
        ((b[:, 2] > w + overhang) | (b[:, 3] > h + overhang),
         f"ends more than {overhang} px (the most that is clipped) past the image's right or bottom edge"),
    ]
    for bad, what in problems:
        rows = np.flatnonzero(bad)
        if len(rows):
            i = rows[0]
            more = f"; {len(rows) - 1} more box(es) likewise" if len(rows) > 1 else ""
            raise AnnotationError(f"{describe(i)}: the box {what}; the image is {w[i]:g}×{h[i]:g} px{more} "
                                  f"(fix: {fix})")
    return int(((b[:, 2] > w) | (b[:, 3] > h)).sum())
