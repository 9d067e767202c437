"""Resuming after a hard kill: Snakemake's stale locks are removed when no live run holds the folder.

Snakemake locks a working directory by writing the files a run will read and write to ``.snakemake/locks/``
(snakemake 9.27.1: ``persistence.PersistenceBase.lock`` and ``persistence/file.py``) and deletes them when the run
ends. The lock files name no process, so a run killed with ``kill -9`` (or a power loss) leaves them behind and
every later run stops with "Directory cannot be locked" until ``snakemake --unlock``. This module adds the
liveness signal they lack: an OS-level ``flock`` on ``.snakemake/softmax-mi.lock``, which the kernel releases when
its process exits, however it exits.

The main Snakemake process of every run calls :func:`hold` while it parses the Snakefile, which is before
Snakemake checks or writes its own locks (``api.WorkflowApi._workflow`` parses; ``Workflow.execute`` then builds
the DAG and enters ``persistence.lock()``). :func:`hold` first tries for an *exclusive* flock: it gets it only when
no other live run holds the folder, so any Snakemake lock found there is stale, and it removes them, as
``snakemake --unlock`` would. It then keeps a *shared* flock until the process exits, so that no later run
mistakes this one's locks for stale ones. When another run is alive, nothing is removed and Snakemake's own locks
keep two runs that would write the same files apart, as before.

Job processes that re-parse the Snakefile (cluster jobs, ``--mode subprocess``) must not call it: they are parts
of a run, not runs. Where the file system offers no ``flock`` (some network file systems), nothing is removed and
the way out stays ``snakemake --unlock``. This module is imported when the Snakefile is parsed: standard library
only.
"""

from __future__ import annotations

import fcntl
import os
from dataclasses import dataclass
from pathlib import Path

LIVENESS_FILE = "softmax-mi.lock"  # in .snakemake/, beside Snakemake's locks/ (which `snakemake --unlock` deletes)

_held: dict[Path, int] = {}  # liveness file → descriptor holding its shared flock, open until the process exits


@dataclass(frozen=True)
class Hold:
    path: Path  # the liveness file
    live: bool  # whether this process holds its shared flock (False: the file system has no flock)
    removed: tuple[Path, ...]  # stale Snakemake lock files removed

    def notice(self) -> str | None:
        """One line for the console when stale locks were removed, else None."""
        if not self.removed:
            return None
        return (f"Removed {len(self.removed)} stale Snakemake lock file(s) in {self.removed[0].parent}: a run in this "
                f"folder was killed before it could unlock (no live run holds {self.path}); carrying on.")


def hold(snakemake_dir: str | Path = ".snakemake") -> Hold:
    """Remove Snakemake's locks in ``snakemake_dir`` if no live run holds it, then mark this process as live.

    Call it once per main Snakemake process, at parse time; the mark lasts until the process exits. A second call
    in the same process removes nothing and returns at once.
    """
    snakemake_dir = Path(snakemake_dir).absolute()
    path = snakemake_dir / LIVENESS_FILE
    if path in _held:
        return Hold(path, live=True, removed=())
    snakemake_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    removed: tuple[Path, ...] = ()
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pass  # another run is alive: its locks are not stale
        else:
            removed = _remove_snakemake_locks(snakemake_dir / "locks")
        # Converting exclusive → shared, or waiting while another run removes stale locks (milliseconds).
        fcntl.flock(fd, fcntl.LOCK_SH)
    except OSError:  # no flock on this file system (ENOLCK, ENOSYS, EINVAL): Snakemake's behaviour, unchanged
        os.close(fd)
        return Hold(path, live=False, removed=removed)
    _held[path] = fd
    return Hold(path, live=True, removed=removed)


def _remove_snakemake_locks(lock_dir: Path) -> tuple[Path, ...]:
    """Delete the lock files Snakemake writes (``<n>.input.lock``, ``<n>.output.lock``) in ``lock_dir``."""
    removed = []
    for lock in sorted(lock_dir.glob("*.lock")) if lock_dir.is_dir() else []:
        try:
            lock.unlink()
        except FileNotFoundError:
            continue
        removed.append(lock)
    return tuple(removed)
