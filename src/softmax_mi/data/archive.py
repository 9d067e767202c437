"""Checksums and safe extraction of user-supplied dataset archives (.tgz / .tar.gz / .tar / .zip).

Every member is checked before anything is written: a member is refused (with an error naming the archive and the
member) when its name is absolute, has a ``..`` component, is a symlink or hardlink whose target leaves the
extraction folder, or is a device / FIFO. Tar archives are additionally extracted with ``filter="data"`` (PEP 706),
so a check this module missed would still be caught by the standard library.

Extraction goes into a temporary sibling of the target folder, which is renamed onto the target only once every
member is written: an interrupted run leaves a ``.<name>.partial-*`` folder (removed on the next attempt's failure
path or by hand), never a folder that looks complete.
"""

from __future__ import annotations

import os
import shutil
import stat
import tarfile
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from softmax_mi.io import file_digest

_ALGORITHMS = {32: "md5", 64: "sha256"}


class ArchiveError(ValueError):
    """An archive is corrupt, has the wrong checksum, or holds a member that may not be extracted."""


def verify_checksum(path: str | Path, expected: str | Sequence[str], *, source: str = "params.yaml") -> str:
    """Raise :class:`ArchiveError` unless ``path`` has (one of) the ``expected`` digest(s); returns the digest.

    Each expected value is an md5 (32 hex digits) or sha256 (64), optionally prefixed ``md5:`` / ``sha256:``."""
    wanted: dict[str, list[str]] = {}
    for item in [expected] if isinstance(expected, str) else list(expected):
        algorithm, _, value = str(item).strip().lower().rpartition(":")
        algorithm = algorithm or _ALGORITHMS.get(len(value), "")
        if algorithm not in {"md5", "sha256"} or len(value) != {"md5": 32, "sha256": 64}[algorithm]:
            raise ArchiveError(
                f"{source}: checksum {item!r} for {path} is neither an md5 (32 hex digits) nor a sha256 (64) "
                "(fix: copy the checksum published with the dataset)"
            )
        wanted.setdefault(algorithm, []).append(value)
    if not wanted:
        raise ArchiveError(f"{source}: no checksum given for {path} (fix: give the published md5, or null to skip)")
    actual = {algorithm: file_digest(path, algorithm) for algorithm in wanted}
    for algorithm, values in wanted.items():
        if actual[algorithm] in values:
            return actual[algorithm]
    shown = "; ".join(f"{a} is {actual[a]}, expected {' or '.join(v)}" for a, v in wanted.items())
    raise ArchiveError(
        f"{path}: {shown} ({source}). The file is incomplete, corrupt or not the official archive (fix: download it "
        "again from the official source; if it is a copy you built yourself on purpose, put its checksum in params)"
    )


# ------------------------------------------------------------------------------------------------------- member checks
def _unsafe_name(name: str) -> str | None:
    """Why a member name may not be extracted (None if it may)."""
    if "\x00" in name:
        return "its name contains a NUL byte"
    posix = name.replace("\\", "/")  # a backslash is a separator on Windows: judge the name as Windows would
    if posix.startswith("/") or (len(posix) > 1 and posix[1] == ":"):
        return "its path is absolute"
    if ".." in PurePosixPath(posix).parts:
        return "its path has a '..' component"
    return None


def _escapes(link_target: str, base: PurePosixPath) -> bool:
    """Whether ``link_target`` (relative to folder ``base`` inside the extraction root) leaves the root."""
    target = link_target.replace("\\", "/")
    if target.startswith("/") or (len(target) > 1 and target[1] == ":"):
        return True
    depth = len(base.parts)
    for part in PurePosixPath(target).parts:
        if part == "..":
            depth -= 1
            if depth < 0:
                return True
        elif part != ".":
            depth += 1
    return False


def _check_tar_member(member: tarfile.TarInfo, archive: Path) -> None:
    problem = _unsafe_name(member.name)
    if problem is None:
        if member.issym() and _escapes(member.linkname, PurePosixPath(member.name).parent):
            problem = f"it is a symlink to {member.linkname!r}, outside the extraction folder"
        elif member.islnk() and (_unsafe_name(member.linkname) or _escapes(member.linkname, PurePosixPath())):
            problem = f"it is a hardlink to {member.linkname!r}, outside the extraction folder"
        elif member.ischr() or member.isblk() or member.isfifo():
            problem = "it is a device or FIFO"
        elif not (member.isfile() or member.isdir() or member.issym() or member.islnk()):
            problem = f"it has an unsupported member type {member.type!r}"
    if problem:
        raise ArchiveError(f"{archive}: refusing to extract member {member.name!r}: {problem} (fix: use the official "
                           "archive; this one may be crafted to write outside its folder)")


def _check_zip_member(info: zipfile.ZipInfo, archive: Path) -> None:
    problem = _unsafe_name(info.filename)
    mode = info.external_attr >> 16
    if problem is None and stat.S_ISLNK(mode):
        problem = "it is a symlink (zip symlinks are not supported)"
    elif problem is None and mode and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        problem = "it is a device, FIFO or socket"
    if problem:
        raise ArchiveError(f"{archive}: refusing to extract member {info.filename!r}: {problem} (fix: use the official "
                           "archive; this one may be crafted to write outside its folder)")


def archive_kind(path: str | Path) -> str:
    """``tar`` or ``zip`` by file name (.tgz, .tar.gz, .tar, .zip)."""
    name = Path(path).name.lower()
    if name.endswith((".tgz", ".tar.gz", ".tar")):
        return "tar"
    if name.endswith(".zip"):
        return "zip"
    raise ArchiveError(f"{path}: unknown archive type (fix: give a .tgz, .tar.gz, .tar or .zip file)")


def list_members(archive: str | Path) -> list[str]:
    """Member names, after every member passed the safety checks (raises :class:`ArchiveError` otherwise)."""
    archive = Path(archive)
    try:
        if archive_kind(archive) == "tar":
            with tarfile.open(archive) as tar:
                members = tar.getmembers()
                for member in members:
                    _check_tar_member(member, archive)
                return [m.name for m in members]
        with zipfile.ZipFile(archive) as zf:
            infos = zf.infolist()
            for info in infos:
                _check_zip_member(info, archive)
            return [i.filename for i in infos]
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as error:
        raise ArchiveError(f"{archive}: cannot read the archive ({error}) (fix: download it again)") from error


# ----------------------------------------------------------------------------------------------------------- extraction
def safe_extract(archive: str | Path, target: str | Path) -> Path:
    """Extract every member of ``archive`` into the folder ``target`` (which must not exist yet), atomically.

    All members are checked first; then they are written to a temporary sibling folder that is renamed onto
    ``target``. On any error the temporary folder is removed and ``target`` is not created."""
    archive, target = Path(archive), Path(target)
    if target.exists():
        raise ArchiveError(f"{target}: already exists (fix: remove it, or use it directly instead of {archive.name})")
    kind = archive_kind(archive)
    list_members(archive)  # every member is checked before a byte is written
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
    try:
        if kind == "tar":
            with tarfile.open(archive) as tar:
                tar.extractall(partial, filter="data")
        else:
            with zipfile.ZipFile(archive) as zf:
                zf.extractall(partial)
        if target.exists():
            raise ArchiveError(f"{target}: appeared while extracting (another job?) (fix: remove it and run again)")
        os.rename(partial, target)
    except BaseException as error:
        shutil.rmtree(partial, ignore_errors=True)
        if isinstance(error, (tarfile.TarError, zipfile.BadZipFile, EOFError)):
            raise ArchiveError(f"{archive}: extraction failed ({error}) (fix: download it again)") from error
        raise
    return target
