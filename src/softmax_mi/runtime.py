"""Process-level concerns shared by every stage: device choice, seeding, threads, logging, progress bars."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import sys
from collections.abc import Mapping
from typing import Any

import numpy as np

log = logging.getLogger("softmax_mi")


def resolve_device(requested: str = "auto") -> str:
    """``auto`` picks CUDA when a GPU is visible, else the CPU; ``cuda`` without a GPU is an error."""
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("params.yaml: device is 'cuda' but no GPU is visible (fix: set device: auto or cpu)")
    if requested not in {"cpu", "cuda"}:
        raise ValueError(f"params.yaml: device must be auto, cpu or cuda, not {requested!r}")
    return requested


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) from one integer."""
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _label_bytes(label: Any) -> bytes:
    """A label's bytes: mappings and sequences as canonical JSON (so a whole task spec can be a label), else str()."""
    if isinstance(label, (Mapping, list, tuple)):
        return json.dumps(label, sort_keys=True, separators=(",", ":"), default=str).encode()
    return str(label).encode()


def derive_seed(*labels: Any) -> int:
    """A 32-bit seed derived from a base seed and any labels (purpose, dataset, setting, a task spec, ...).

    Every byte of every label counts: the labels are SHA-256 hashed, each prefixed by its length, so
    ``("ab", "c")`` and ``("a", "bc")`` differ too. Stable across platforms, Python and NumPy versions.
    32 bits because some consumers (scikit-learn's ``random_state``, NumPy's legacy seeding) accept no more."""
    digest = hashlib.sha256()
    for label in labels:
        data = _label_bytes(label)
        digest.update(len(data).to_bytes(8, "little") + data)
    return int.from_bytes(digest.digest()[:4], "little")


def set_threads(threads: int) -> None:
    """Bound intra-op parallelism to the cores Snakemake granted this job."""
    import torch

    threads = max(1, int(threads))
    torch.set_num_threads(threads)
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))


def configure_logging(level: int = logging.INFO) -> None:
    """Log to stderr, which every rule redirects into its log file."""
    logging.basicConfig(
        level=level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=True,
    )


def progress(iterable=None, **kwargs):
    """A tqdm bar on stderr (ends up in the rule's log); silent when SOFTMAX_MI_QUIET is set."""
    from tqdm.auto import tqdm

    kwargs.setdefault("mininterval", 2.0)
    kwargs.setdefault("disable", bool(os.environ.get("SOFTMAX_MI_QUIET")))
    return tqdm(iterable, file=sys.stderr, **kwargs)
