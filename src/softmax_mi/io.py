"""Atomic file writes and typed tables.

Every writer goes through :func:`atomic_path`: the data is written to a temporary file beside the target and
renamed into place, so an interrupted job never leaves a half-written file that looks complete.
"""

from __future__ import annotations

import hashlib

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq


@contextlib.contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; rename it onto ``target`` only if the block succeeds."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; give the file the permissions open() would
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_json(data: Any, target: str | Path) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=_json_default) + "\n")


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy / torch scalars
        return value.item()
    raise TypeError(f"cannot serialise {type(value).__name__} to JSON")


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text())


def write_table(
    frame: pd.DataFrame,
    target: str | Path,
    *,
    column_docs: Mapping[str, str] | None = None,
    table_doc: str | None = None,
    column_units: Mapping[str, str] | None = None,
) -> None:
    """Write ``frame`` as Parquet, with the meaning (``description``) and unit (``unit``: from ``column_units``,
    else inferred from the description by :func:`infer_unit`) of each documented column as field metadata."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    column_docs = column_docs or {}
    column_units = column_units or {}
    fields = [
        field.with_metadata({
            "description": column_docs[field.name],
            "unit": column_units.get(field.name, infer_unit(column_docs[field.name])),
        }) if field.name in column_docs else field
        for field in table.schema
    ]
    metadata = dict(table.schema.metadata or {})
    if table_doc:
        metadata[b"softmax_mi.description"] = table_doc.encode()
    table = table.cast(pa.schema(fields, metadata=metadata))
    with atomic_path(target) as tmp:
        pq.write_table(table, tmp)


_UNIT_PATTERNS = (  # first match wins; searched in the column description
    (r"\bnats?\b", "nats"),
    (r"\bseconds?\b", "s"),
    (r"\bfraction\b", "fraction 0–1"),
    (r"\bpercent\b|%", "%"),
    (r"\bpixels?\b", "px"),
)


def infer_unit(description: str) -> str:
    """The unit a column description names ('…, nats' → 'nats'); '' for counts, labels and identifiers."""
    import re

    for pattern, unit in _UNIT_PATTERNS:
        if re.search(pattern, description, flags=re.IGNORECASE):
            return unit
    return ""


def file_digest(path: str | Path, algorithm: str = "sha256") -> str:
    """Hex digest of a file, read in 1 MiB chunks (archives are GBs; never load them whole)."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_table(path: str | Path) -> pd.DataFrame:
    return pd.read_parquet(path)


def column_descriptions(path: str | Path) -> dict[str, str]:
    """The per-column descriptions stored in a Parquet file by :func:`write_table`."""
    schema = pq.read_schema(path)
    return {
        field.name: field.metadata[b"description"].decode()
        for field in schema
        if field.metadata and b"description" in field.metadata
    }


class CheckpointError(ValueError):
    """A checkpoint or weights file cannot be read: the message names the file, the problem and the fix."""


def load_checkpoint(path: str | Path, *, fix: str, map_location: str = "cpu") -> Any:
    """``torch.load(path, weights_only=True)`` with one clear error for every way a file can be unreadable
    (missing, empty, truncated, altered — every zip member's CRC is checked —, not a torch file, or holding objects
    the safe loader refuses)."""
    import pickle
    import zipfile

    import torch

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint (fix: {fix})")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: the checkpoint is empty, probably cut short by a crash (fix: {fix})")
    damaged = None
    if zipfile.is_zipfile(path):  # torch's format since 1.6: check every member's CRC first
        try:
            with zipfile.ZipFile(path) as archive:
                damaged = archive.testzip()
        except (zipfile.BadZipFile, OSError, ValueError, UnicodeDecodeError):
            damaged = "the archive's directory"
    if damaged:
        raise CheckpointError(f"{path}: damaged checkpoint ({damaged} fails its checksum or cannot be read; the "
                              f"file was truncated or altered) (fix: {fix})")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:
        # torch's own message suggests weights_only=False, which would run whatever code the file holds: never that
        raise CheckpointError(f"{path}: refused: it holds objects other than tensors and plain containers, so it is "
                              f"not a checkpoint this package wrote, or it was tampered with (fix: {fix})") from None
    except (EOFError, RuntimeError, zipfile.BadZipFile, OSError, ValueError, KeyError, AttributeError) as error:
        first_line = (str(error).strip().splitlines() or [""])[0][:200]
        raise CheckpointError(f"{path}: not a readable torch checkpoint ({type(error).__name__}: {first_line}) "
                              f"(fix: {fix})") from None
