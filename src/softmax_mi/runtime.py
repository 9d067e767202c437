"""Process-level concerns shared by every stage: device choice, seeding, threads, logging, progress bars."""

from __future__ import annotations

import logging
import os
import random
import sys
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


def derive_seed(*parts: Any) -> int:
    """A 32-bit seed derived deterministically from a base seed and any labels (task, dim, estimator, ...).

    32 bits because some consumers (scikit-learn's ``random_state``, NumPy's legacy seeding) accept no more."""
    entropy = [int.from_bytes(str(p).encode(), "little") % 2**64 for p in parts]
    return int(np.random.SeedSequence(entropy).generate_state(1, dtype=np.uint32)[0])


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
