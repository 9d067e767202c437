"""Overlay PNGs for :mod:`softmax_mi.localise`: per method a panel of the photo under the top-1 class's map, its box
and a caption."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from softmax_mi.localise import Localisation

__all__ = ["overlay_names", "render_overlay"]


def _colour_table() -> np.ndarray:
    from matplotlib import colormaps

    return (colormaps["jet"](np.linspace(0.0, 1.0, 256))[:, :3] * 255).astype(np.uint8)


_COLOURS: np.ndarray | None = None


def render_overlay(image, result: Localisation, index: int, class_names: Sequence[str], *,
                   max_side: int = 480, alpha: float = 0.5):
    """One PNG-ready ``PIL.Image`` for image ``index`` of ``result``: a panel per method, side by side, each the
    photo under the top-1 class's normalised map (jet colours), its box (white, black outline) and a caption
    ``method: class name (probability)``. ``image`` is the original RGB ``PIL.Image``; panels are at most
    ``max_side`` pixels on their long side."""
    from PIL import Image, ImageDraw, ImageFont

    global _COLOURS
    if _COLOURS is None:
        _COLOURS = _colour_table()
    width, height = image.size
    scale = min(1.0, max_side / max(width, height))
    panel_size = (max(1, round(width * scale)), max(1, round(height * scale)))
    photo = np.asarray(image.resize(panel_size, Image.BILINEAR), dtype=np.float32)
    methods = list(result.maps)
    canvas = Image.new("RGB", (panel_size[0] * len(methods) + 4 * (len(methods) - 1), panel_size[1]), "white")
    font = ImageFont.load_default(size=max(11, panel_size[0] // 28))
    class_index = int(result.classes[index, 0])
    caption_class = f"{class_names[class_index]} ({float(result.probabilities[index, 0]):.0%})"
    for panel, method in enumerate(methods):
        raw = result.maps[method][index, 0].float().numpy()
        span = raw.max() - raw.min()
        unit = (raw - raw.min()) / span if span > 0 else np.zeros_like(raw)
        heat = np.asarray(Image.fromarray(unit.astype(np.float32), mode="F").resize(panel_size, Image.BILINEAR))
        colours = _COLOURS[np.clip(heat * 255, 0, 255).astype(np.uint8)].astype(np.float32)
        blended = Image.fromarray(((1 - alpha) * photo + alpha * colours).astype(np.uint8))
        draw = ImageDraw.Draw(blended)
        boxes = result.boxes.get(method)
        if boxes is not None and boxes.shape[1] and (boxes[index, 0, 2:] > boxes[index, 0, :2]).all():
            x0, y0, x1, y1 = (boxes[index, 0] * scale).tolist()
            line = max(2, panel_size[0] // 160)
            draw.rectangle((x0, y0, x1 - 1, y1 - 1), outline="black", width=line + 2)
            draw.rectangle((x0 + 1, y0 + 1, x1 - 2, y1 - 2), outline="white", width=line)
        text = f"{method}: {caption_class}"
        left, top, right, bottom = draw.textbbox((4, 4), text, font=font)
        draw.rectangle((0, 0, right + 4, bottom + 4), fill="black")
        draw.text((4, 4), text, fill="white", font=font)
        canvas.paste(blended, (panel * (panel_size[0] + 4), 0))
    return canvas


def overlay_names(paths: Sequence[str]) -> list[str]:
    """``<stem>.png`` per path, with ``-2``, ``-3``, … added when stems repeat (a/x.jpg and b/x.png)."""
    seen: dict[str, int] = {}
    names = []
    for path in paths:
        stem = Path(path).stem
        seen[stem] = seen.get(stem, 0) + 1
        names.append(f"{stem}.png" if seen[stem] == 1 else f"{stem}-{seen[stem]}.png")
    return names
