"""The report as data: a list of blocks (headings, paragraphs, tables, figures, claims) that
softmax_mi.report.render turns into Markdown or HTML, and the number formats of its cells."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Claim:
    key: str
    statement: str
    verdict: str
    reason: str
    numbers: dict = field(default_factory=dict)  # headline numbers for `dvc metrics` / `dvc exp show`


@dataclass
class Report:
    # ("h1"|"h2"|"h3"|"p", text) | ("table", head, rows) | ("figure", relpath, caption) | ("claim", Claim)
    blocks: list = field(default_factory=list)
    claims: list = field(default_factory=list)

    def add(self, kind: str, *content) -> None:
        self.blocks.append((kind, *content))

    def claim(self, claim: Claim) -> None:
        self.claims.append(claim)
        self.blocks.append(("claim", claim))


def finite(value) -> bool:
    return value is not None and isinstance(value, (int, float, np.floating, np.integer)) and math.isfinite(value)


def fmt(value, digits: int = 3) -> str:
    return f"{value:.{digits}f}" if finite(value) else "—"


def pm(mean, std, digits: int = 3, scale: float = 1.0) -> str:
    """'mean ± std' (just 'mean' for a single seed; '—' when absent)."""
    if not finite(mean):
        return "—"
    text = f"{scale * mean:.{digits}f}"
    return text + (f" ± {scale * std:.{digits}f}" if finite(std) else "")
