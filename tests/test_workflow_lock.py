"""softmax_mi.workflow_lock: Snakemake's locks are removed only when no live run holds the folder.

Each "run" here is a real process calling `hold`, as the main Snakemake process does at parse time; a SIGKILL'd
one must stop counting as live, whatever it was doing.
"""

from __future__ import annotations

import errno
import json
import signal
import subprocess
import sys
from pathlib import Path

from softmax_mi import workflow_lock
from softmax_mi.workflow_lock import LIVENESS_FILE, hold

# A run: hold the folder, print what was removed, then (with "keep") stay alive until stdin closes.
RUN = """
import json, sys
from softmax_mi.workflow_lock import hold
held = hold(sys.argv[1])
print(json.dumps({"live": held.live, "removed": [p.name for p in held.removed]}), flush=True)
if sys.argv[2] == "keep":
    sys.stdin.read()
"""


def start_run(snakemake_dir: Path) -> tuple[subprocess.Popen, dict]:
    process = subprocess.Popen([sys.executable, "-c", RUN, str(snakemake_dir), "keep"], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True)
    return process, json.loads(process.stdout.readline())


def run_once(snakemake_dir: Path) -> dict:
    result = subprocess.run([sys.executable, "-c", RUN, str(snakemake_dir), "exit"], capture_output=True, text=True,
                            check=True, timeout=60)
    return json.loads(result.stdout)


def snakemake_locks(snakemake_dir: Path) -> list[str]:
    """What a running Snakemake leaves in .snakemake/locks/ (persistence/file.py `_write_locks`)."""
    (snakemake_dir / "locks").mkdir(parents=True, exist_ok=True)
    (snakemake_dir / "locks" / "0.input.lock").write_text("data/a.parquet\n")
    (snakemake_dir / "locks" / "0.output.lock").write_text("results/b.parquet\n")
    return ["0.input.lock", "0.output.lock"]


def test_locks_of_a_killed_run_are_removed_and_a_live_runs_kept(tmp_path):
    snakemake_dir = tmp_path / ".snakemake"
    live, first = start_run(snakemake_dir)
    try:
        assert first == {"live": True, "removed": []}
        locks = snakemake_locks(snakemake_dir)  # written by the live run
        assert run_once(snakemake_dir) == {"live": True, "removed": []}  # a second run leaves them alone
        assert sorted(p.name for p in (snakemake_dir / "locks").iterdir()) == locks
    finally:
        live.send_signal(signal.SIGKILL)  # kill -9: no clean-up runs in the process
        live.wait(timeout=30)
    assert sorted(p.name for p in (snakemake_dir / "locks").iterdir()) == locks  # left behind, as by Snakemake
    assert run_once(snakemake_dir) == {"live": True, "removed": locks}
    assert (snakemake_dir / "locks").is_dir() and not any((snakemake_dir / "locks").iterdir())


def test_two_live_runs_both_count_as_live(tmp_path):
    """Shared holds: while either of two runs is alive, a third removes nothing."""
    snakemake_dir = tmp_path / ".snakemake"
    first, _ = start_run(snakemake_dir)
    second, _ = start_run(snakemake_dir)
    locks = snakemake_locks(snakemake_dir)
    try:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
        assert run_once(snakemake_dir)["removed"] == []
    finally:
        second.send_signal(signal.SIGKILL)
        second.wait(timeout=30)
    assert run_once(snakemake_dir)["removed"] == locks


def test_notice_names_the_folder_and_a_fresh_folder_is_created(tmp_path):
    snakemake_dir = tmp_path / "fresh" / ".snakemake"
    snakemake_locks(snakemake_dir)
    held = hold(snakemake_dir)
    assert held.live and held.path == snakemake_dir / LIVENESS_FILE and held.path.is_file()
    assert [p.name for p in held.removed] == ["0.input.lock", "0.output.lock"]
    assert str(snakemake_dir / "locks") in held.notice() and "killed" in held.notice()
    # Once per process: a second call (Snakemake never parses twice, but be safe) neither removes nor blocks.
    snakemake_locks(snakemake_dir)
    again = hold(snakemake_dir)
    assert again.live and again.removed == () and again.notice() is None
    assert hold(tmp_path / "empty" / ".snakemake").notice() is None  # nothing stale: nothing to say


def test_without_flock_nothing_is_removed(tmp_path, monkeypatch):
    """File systems without flock (ENOLCK): Snakemake's behaviour unchanged, its locks stay."""

    def no_flock(fd, operation):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(workflow_lock.fcntl, "flock", no_flock)
    snakemake_dir = tmp_path / ".snakemake"
    locks = snakemake_locks(snakemake_dir)
    held = hold(snakemake_dir)
    assert not held.live and held.removed == () and held.notice() is None
    assert sorted(p.name for p in (snakemake_dir / "locks").iterdir()) == locks
