"""Where the user-supplied datasets are, whether their rules run, and the one-line notice when they are absent.

CUB-200-2011 and Tiny-ImageNet cannot be downloaded by this project: the user puts the official archive (or the
folder it extracts to) into ``datasets.raw_dir`` (``data/raw/``). ``datasets.<name>.enabled`` decides what happens:

* ``auto``: the dataset's rules run when the archive or the folder is present; otherwise they are skipped and
  :func:`availability` returns a one-line notice saying exactly what to put where;
* ``on``: the rules always run; when the data is absent, :func:`availability` raises :class:`RawDataMissing`
  with the same notice (the Snakefile turns it into a WorkflowError at parse time);
* ``off``: skipped silently.

When both the archive and the folder are present the archive wins (its checksum is verified; the folder may be
a stale or partial extraction), so the rule's input does not change between runs. This module is imported when the
Snakefile is parsed: it uses the standard library only.
"""

from __future__ import annotations

import contextlib
import math
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class RawDataset:
    title: str
    marker: str  # a file at the top of the dataset folder: identifies the folder inside an archive


DATASETS = {
    "cub": RawDataset(title="CUB-200-2011", marker="images.txt"),
    "tiny_imagenet": RawDataset(title="Tiny-ImageNet-200", marker="wnids.txt"),
}


class RawDataMissing(FileNotFoundError):
    """A dataset is switched ``on`` but neither its archive nor its folder is present."""


def _paths(params: Mapping[str, Any], name: str, root: str | Path) -> tuple[Path, Path]:
    section = params["datasets"]
    raw_dir = Path(root) / section["raw_dir"]
    return raw_dir / section[name]["archive"], raw_dir / section[name]["folder"]


def raw_source(params: Mapping[str, Any], name: str, root: str | Path = ".") -> Path | None:
    """The archive if present, else the folder if present, else None (paths as given: relative to ``root``)."""
    archive, folder = _paths(params, name, root)
    if archive.is_file():
        return archive
    if folder.is_dir():
        return folder
    return None


def notice(params: Mapping[str, Any], name: str) -> str:
    """One line: what to put where so that the dataset's rules run."""
    section = params["datasets"]
    settings = section[name]
    raw_dir = section["raw_dir"].rstrip("/")
    md5 = settings.get("md5")
    md5 = md5[0] if isinstance(md5, list) and md5 else md5  # an overlay may accept several: the first is the official
    checksum = f", md5 {md5}" if md5 else ""
    return (
        f"{DATASETS[name].title} not found: put the official {settings['archive']}{checksum} (or the "
        f"{settings['folder']}/ folder it extracts to) into {raw_dir}/ to run its rules "
        f"(params.yaml datasets.{name}.enabled: auto skips them until then, off silences this line)."
    )


def switch(value: str | bool) -> str:
    """``auto`` | ``on`` | ``off`` (YAML 1.1 reads a bare on / off as true / false: both spellings mean the same)."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if value not in {"auto", "on", "off"}:
        raise ValueError(f"params.yaml datasets.*.enabled is {value!r} (fix: use auto, on or off)")
    return value


def availability(params: Mapping[str, Any], root: str | Path = ".") -> dict[str, tuple[bool, str | None]]:
    """``{name: (run, notice)}`` for every dataset; ``notice`` is set only when ``auto`` finds no data.

    Raises :class:`RawDataMissing` (message: the notice) for a dataset switched ``on`` whose data is absent."""
    result: dict[str, tuple[bool, str | None]] = {}
    for name in DATASETS:
        enabled = switch(params["datasets"][name]["enabled"])
        if enabled == "off":
            result[name] = (False, None)
            continue
        present = raw_source(params, name, root) is not None
        if enabled == "on" and not present:
            raise RawDataMissing(notice(params, name))
        result[name] = (present, None if present else notice(params, name))
    return result


def find_root(folder: str | Path, marker: str) -> Path:
    """The dataset folder: ``folder`` itself when it holds ``marker``, else its one subfolder that does."""
    folder = Path(folder)
    if (folder / marker).is_file():
        return folder
    candidates = sorted(p.parent for p in folder.glob(f"*/{marker}"))
    if len(candidates) == 1:
        return candidates[0]
    found = ", ".join(str(c) for c in candidates) or "none"
    raise FileNotFoundError(
        f"{folder}: expected exactly one dataset folder holding {marker} (found: {found}) "
        "(fix: supply the official archive unchanged, or the folder it extracts to)"
    )


@contextlib.contextmanager
def open_raw(source: str | Path, name: str, md5: str | list[str] | None, scratch: str | Path,
             limits: Mapping[str, int | float] | None = None) -> Iterator[Path]:
    """Yield the dataset folder of ``source`` (an archive or a folder).

    An archive has its checksum verified (``md5``: one value or a list of accepted ones; null skips the check)
    and is extracted safely, within ``limits`` (params.yaml ``datasets.<name>.extract_limits``: max_bytes,
    max_members, max_ratio; absent keys keep :class:`~softmax_mi.data.archive.ExtractLimits`' defaults), into a
    temporary folder under ``scratch``, removed afterwards: the prepared arrays are the product, the extraction
    is not kept."""
    from softmax_mi.data.archive import ExtractLimits, safe_extract, verify_checksum

    source = Path(source)
    marker = DATASETS[name].marker
    if source.is_dir():
        yield find_root(source, marker)
        return
    if md5:
        verify_checksum(source, md5, source=f"params.yaml datasets.{name}.md5")
    Path(scratch).mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{name}-extract-", dir=scratch))
    try:
        bounds = ExtractLimits(**(limits or {}), setting=f"params.yaml datasets.{name}.extract_limits")
        yield find_root(safe_extract(source, work / "archive", bounds), marker)
    finally:
        shutil.rmtree(work, ignore_errors=True)


# ------------------------------------------------------------------------------- reading the official annotation files
class AnnotationError(ValueError):
    """An annotation file of a dataset does not have its official format or contents."""


def read_lines(path: str | Path, layout: str,
               fix: str = "restore the file from the official archive") -> Iterator[tuple[int, str]]:
    """``(line number, text)`` of every line of a UTF-8 text file (line ends as Python's universal newlines).

    A missing or unreadable file, or a line that is not UTF-8 (a binary or damaged file), raises
    :class:`AnnotationError` naming the file, the line, the expected ``layout`` and ``fix``."""
    path = Path(path)
    if not path.is_file():
        raise AnnotationError(f"{path}: missing (expected lines '{layout}') (fix: {fix})")
    try:
        data = path.read_bytes()
    except OSError as error:
        raise AnnotationError(f"{path}: cannot be read ({error}) (fix: {fix})") from None
    for lineno, raw in enumerate(data.splitlines(), start=1):
        try:
            yield lineno, raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise AnnotationError(
                f"{path} line {lineno}: byte {error.start + 1} ({raw[error.start:error.start + 1]!r}) is not UTF-8 "
                f"text: the file is binary or damaged (expected lines '{layout}') (fix: {fix})"
            ) from None


def read_fields(path: str | Path, layout: str,
                fix: str = "restore the file from the official archive") -> list[tuple[int, list[str]]]:
    """``(line number, fields)`` of every non-blank line of a whitespace-separated file.

    ``layout`` names the fields (e.g. ``"<image_id> <x> <y> <width> <height>"``); a line with another number of
    fields (or a file that is not UTF-8 text, see :func:`read_lines`) raises :class:`AnnotationError` naming the
    file, the line, the expected layout and ``fix``."""
    n_fields = len(layout.split())
    rows = []
    for lineno, line in read_lines(path, layout, fix):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != n_fields:
            raise AnnotationError(f"{path} line {lineno}: expected '{layout}', found {line.strip()!r} (fix: {fix})")
        rows.append((lineno, fields))
    if not rows:
        raise AnnotationError(f"{path}: empty (expected lines '{layout}') (fix: {fix})")
    return rows


def parse_number(value: str, kind: type, path: str | Path, lineno: int, field: str,
                 fix: str = "restore the file from the official archive") -> int | float:
    """``int(value)`` / ``float(value)``, or an :class:`AnnotationError` naming the file, line and field (a float
    must be finite: ``nan`` and ``inf`` are refused)."""
    try:
        number = kind(value)
    except ValueError:
        number = None
    if number is None or not math.isfinite(number):
        raise AnnotationError(
            f"{path} line {lineno}: field {field} is {value!r}, not a "
            f"{'finite number' if kind is float else 'whole number'} (fix: {fix})"
        )
    return number
