"""Checksums and safe extraction of user-supplied dataset archives (.tgz / .tar.gz / .tar / .zip).

Every member is checked before anything is written: a member is refused (with an error naming the archive and the
member) when its name is empty or absolute, has a ``..`` component, is a symlink or hardlink whose target leaves the
extraction folder, is a device / FIFO / socket or a sparse tar member, or is an encrypted zip member or one with an
unsupported compression method. Tar archives are additionally extracted with ``filter="data"`` (PEP 706), so a check
this module missed would still be caught by the standard library.

Integrity without a checksum: a compressed tar stream is read to its very end (gzip, bzip2 and xz check their CRC
and length only there) and every zip member is read whole (zipfile checks its CRC-32 then), so a damaged archive is
refused even with ``md5: null``.

Size (:class:`ExtractLimits`): the member count, the total bytes of member contents and that total over the
archive's size are bounded. They are checked on the sizes the archive declares before anything is written, and again
on the bytes actually written while extracting: zip members are streamed and counted chunk by chunk, tar members are
copied by tarfile exactly ``size`` bytes each (sparse members, whose map could write more, are refused).

Extraction goes into a temporary sibling of the target folder, which is renamed onto the target only once every
member is written; on any refusal or error that folder is removed, so the target either is complete or does not
exist (a killed process may leave a ``.<name>.partial-*`` folder, never a folder that looks complete).
"""

from __future__ import annotations

import lzma
import os
import shutil
import stat
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from softmax_mi.io import file_digest

_ALGORITHMS = {32: "md5", 64: "sha256"}
_CHUNK = 1 << 20
_MAX_TRAILING = 16 << 20  # decompressed bytes after a tar's last member (its padding: ≤ 10 KiB from tar / tarfile)
_ZIP_METHODS = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}
_MEMBER_FIX = ("(fix: use the official archive; this one may be crafted to write outside its folder, or holds what "
               "this extractor does not support)")
# what reading a damaged archive raises (gzip's CRC / length errors are OSErrors, zlib's and lzma's are not)
_READ_ERRORS = (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError, zlib.error, lzma.LZMAError,
                NotImplementedError)


class ArchiveError(ValueError):
    """An archive is corrupt, has the wrong checksum, or holds a member that may not be extracted."""


@dataclass(frozen=True)
class ExtractLimits:
    """Bounds on what extracting one archive may write; past any of them the archive is refused, nothing is kept.

    The defaults fit both official archives with room to spare (CUB_200_2011.tgz: 1.15 GB → about 1.2 GB in about
    12,000 members; tiny-imagenet-200.zip: 248 MB → about 250 MB in about 120,600 members; JPEGs do not compress,
    so both expand about 1×) and stop a decompression bomb (hundreds to millions ×) long before it fills a disk.
    ``setting`` names where the limits are set, so a refusal can say what to raise."""

    max_bytes: int = 4_000_000_000  # member contents written, in total
    max_members: int = 300_000  # files, folders and links
    max_ratio: float = 10.0  # member contents written / archive file size
    setting: str = "ExtractLimits"


class _Budget:
    """Running totals of one pass over an archive, refused as soon as one passes its limit."""

    def __init__(self, archive: Path, limits: ExtractLimits):
        self.archive, self.limits = archive, limits
        self.archive_size = archive.stat().st_size
        self.members = 0
        self.bytes = 0

    def member(self) -> None:
        self.members += 1
        if self.members > self.limits.max_members:
            self._refuse("max_members", f"it holds more than {self.limits.max_members:,} members")

    def add(self, n_bytes: int, name: str) -> None:
        """Count ``n_bytes`` more of member ``name`` (call before writing them)."""
        self.bytes += n_bytes
        if self.bytes > self.limits.max_bytes:
            self._refuse("max_bytes", f"its contents pass {self.limits.max_bytes:,} bytes at member {name!r}")
        if self.bytes > self.limits.max_ratio * max(self.archive_size, 1):
            self._refuse("max_ratio", f"its contents pass {self.limits.max_ratio:g} × its own size "
                                      f"({self.archive_size:,} bytes) at member {name!r}")

    def _refuse(self, key: str, what: str) -> None:
        where = f"{self.limits.setting}.{key}"
        raise ArchiveError(
            f"{self.archive}: refusing to extract: {what} (limit {where}) (fix: the official archive stays well "
            f"inside it, so this file is probably not the dataset or is a decompression bomb: use the official "
            f"archive; if it is a genuine larger copy, raise {where})"
        )


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
        elif member.issparse():
            problem = "it is a sparse file (not supported: its map may write more than its declared size)"
        elif not (member.isfile() or member.isdir() or member.issym() or member.islnk()):
            problem = f"it has an unsupported member type {member.type!r}"
    if problem:
        raise ArchiveError(f"{archive}: refusing to extract member {member.name!r}: {problem} {_MEMBER_FIX}")


def _check_zip_member(info: zipfile.ZipInfo, archive: Path) -> None:
    problem = _unsafe_name(info.filename)
    # the upper 16 bits hold a Unix mode when the writer sets one; without file-type bits (S_IFMT 0: what
    # ZipFile.writestr and many tools write, or no mode at all) the member is a plain file or, named with '/', a folder
    file_type = stat.S_IFMT(info.external_attr >> 16)
    if problem is None and file_type == stat.S_IFLNK:
        problem = "it is a symlink (zip symlinks are not supported)"
    elif problem is None and file_type not in (0, stat.S_IFREG, stat.S_IFDIR):
        problem = "it is a device, FIFO or socket"
    elif problem is None and not info.is_dir() and not PurePosixPath(info.filename).parts:
        problem = "it is a file without a name"
    elif problem is None and info.flag_bits & 0x1:
        problem = "it is encrypted"
    elif problem is None and info.compress_type not in _ZIP_METHODS:
        problem = f"its compression method {info.compress_type} is not supported"
    if problem:
        raise ArchiveError(f"{archive}: refusing to extract member {info.filename!r}: {problem} {_MEMBER_FIX}")


def archive_kind(path: str | Path) -> str:
    """``tar`` or ``zip`` by file name (.tgz, .tar.gz, .tar, .zip)."""
    name = Path(path).name.lower()
    if name.endswith((".tgz", ".tar.gz", ".tar")):
        return "tar"
    if name.endswith(".zip"):
        return "zip"
    raise ArchiveError(f"{path}: unknown archive type (fix: give a .tgz, .tar.gz, .tar or .zip file)")


def list_members(archive: str | Path, limits: ExtractLimits | None = None) -> list[str]:
    """Member names, once every member passed the safety checks, the declared sizes passed ``limits`` (default
    :class:`ExtractLimits`) and a compressed tar stream its CRC check (raises :class:`ArchiveError` otherwise)."""
    archive, limits = Path(archive), limits or ExtractLimits()
    kind = archive_kind(archive)
    names = []
    try:
        budget = _Budget(archive, limits)
        if kind == "tar":
            with tarfile.open(archive) as tar:
                for member in tar:  # checked one by one: a bomb's first member stops the scan before its data
                    _check_tar_member(member, archive)
                    budget.member()
                    if member.isreg():
                        budget.add(member.size, member.name)
                    names.append(member.name)
                _read_to_end(tar.fileobj, archive)
            return names
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                _check_zip_member(info, archive)
                budget.member()
                if not info.is_dir():
                    budget.add(info.file_size, info.filename)
                names.append(info.filename)
        return names
    except _READ_ERRORS as error:
        raise ArchiveError(f"{archive}: cannot read the archive ({error}) (fix: download it again)") from error


def _read_to_end(stream: BinaryIO, archive: Path) -> None:
    """Read what follows a tar's last member: a gzip / bzip2 / xz stream checks its CRC and length at its end."""
    trailing = 0
    while chunk := stream.read(_CHUNK):
        trailing += len(chunk)
        if trailing > _MAX_TRAILING:
            raise ArchiveError(f"{archive}: more than {_MAX_TRAILING >> 20} MiB of data follow the last member of the "
                               "tar archive (fix: use the official archive)")


# ----------------------------------------------------------------------------------------------------------- extraction
def safe_extract(archive: str | Path, target: str | Path, limits: ExtractLimits | None = None) -> Path:
    """Extract every member of ``archive`` into the folder ``target`` (which must not exist yet), atomically.

    All members are checked first (names, types, declared sizes against ``limits``); then they are written to a
    temporary sibling folder, counting the bytes written against ``limits`` again, and the folder is renamed onto
    ``target``. On any error the temporary folder is removed and ``target`` is not created."""
    archive, target, limits = Path(archive), Path(target), limits or ExtractLimits()
    if target.exists():
        raise ArchiveError(f"{target}: already exists (fix: remove it, or use it directly instead of {archive.name})")
    kind = archive_kind(archive)
    list_members(archive, limits)  # every member is checked before a byte is written
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
    try:
        budget = _Budget(archive, limits)
        if kind == "tar":
            _extract_tar(archive, partial, budget)
        else:
            _extract_zip(archive, partial, budget)
        if target.exists():
            raise ArchiveError(f"{target}: appeared while extracting (another job?) (fix: remove it and run again)")
        os.rename(partial, target)
    except BaseException as error:
        shutil.rmtree(partial, ignore_errors=True)
        if isinstance(error, _READ_ERRORS):
            raise ArchiveError(f"{archive}: extraction failed ({type(error).__name__}: {error}) (fix: download it "
                               f"again; if the disk is full, free space under {target.parent})") from error
        raise
    return target


def _extract_tar(archive: Path, partial: Path, budget: _Budget) -> None:
    def checked(member: tarfile.TarInfo, path: str) -> tarfile.TarInfo:
        _check_tar_member(member, archive)  # again: the file may have changed since the first pass
        budget.member()
        member = tarfile.data_filter(member, path)
        if member.isreg():  # tarfile writes exactly member.size bytes for it (sparse members are refused)
            budget.add(member.size, member.name)
        return member

    with tarfile.open(archive) as tar:
        tar.extractall(partial, filter=checked)
        _read_to_end(tar.fileobj, archive)


def _extract_zip(archive: Path, partial: Path, budget: _Budget) -> None:
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            _check_zip_member(info, archive)
            budget.member()
            path = partial.joinpath(*PurePosixPath(info.filename).parts)  # no '..', not absolute: inside partial
            if info.is_dir():
                path.mkdir(parents=True, exist_ok=True)
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            # read whole (zipfile checks the CRC-32 at the member's end) and counted before each write
            with zf.open(info) as source, open(path, "wb") as sink:
                while chunk := source.read(_CHUNK):
                    budget.add(len(chunk), info.filename)
                    sink.write(chunk)
