"""A stand-in batch system, so the cluster path can be tested without a cluster (see tests/test_cluster.py).

Snakemake's generic cluster executor calls it the way it would call `sbatch` / `squeue` / `scancel`:

    snakemake --executor cluster-generic \\
        --cluster-generic-submit-cmd "python tests/local_cluster.py submit --state S --sources W" \\
        --cluster-generic-status-cmd "python tests/local_cluster.py status --state S" \\
        --cluster-generic-cancel-cmd "python tests/local_cluster.py cancel --state S"

- ``submit JOBSCRIPT``: makes a fresh folder ``S/<id>/work`` holding only the workflow's sources (copied from W: the
  parts a real cluster finds on its shared file system), starts the jobscript there as its own detached process
  (its own session, its own working directory, nothing inherited but the environment) and prints ``<id>``.
  A rule that read a file it did not declare would not find it there: its declared inputs arrive only through
  the storage provider the workflow is run with.
- ``status ID``: prints ``running``, ``success`` or ``failed`` (from the exit code the job leaves in ``S/<id>``).
- ``cancel ID...``: sends SIGTERM to the process group of each job it started.
- ``rsync --recursive --times --copy-links SRC DST``: the one rsync call snakemake-storage-plugin-fs makes, for
  machines without rsync (the test puts an ``rsync`` that runs this first on PATH only when none is installed).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

# What a job may see of the workflow: the sources a cluster shares between nodes (no data, results or models).
SOURCES = ["params.yaml", "params", "workflow"]

# The job's exit code goes to a temporary name first, so `status` never reads a half-written file.
RUNNER = 'sh "$1"; echo $? > "$2.part"; mv "$2.part" "$2"'


def new_job_folder(state: Path) -> tuple[str, Path]:
    state.mkdir(parents=True, exist_ok=True)
    number = len(list(state.iterdir())) + 1
    while True:  # mkdir is atomic: two submits at once never share an id
        job_id = f"local-{number}"
        try:
            (state / job_id).mkdir()
            return job_id, state / job_id
        except FileExistsError:
            number += 1


def submit(state: Path, sources: Path, jobscript: Path) -> None:
    job_id, folder = new_job_folder(state)
    work = folder / "work"
    work.mkdir()
    for name in SOURCES:
        source = sources / name
        if source.is_dir():
            shutil.copytree(source, work / name)
        elif source.exists():
            shutil.copy2(source, work / name)
    # Snakemake deletes its jobscripts when it finishes: keep our own copy for the post-mortem.
    script = folder / "jobscript.sh"
    shutil.copy2(jobscript, script)
    with open(folder / "job.log", "wb") as log:
        process = subprocess.Popen(
            ["/bin/sh", "-c", RUNNER, "sh", str(script), str(folder / "exitcode")],
            cwd=work,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    (folder / "pid").write_text(str(process.pid))
    print(job_id)


def status(state: Path, job_id: str) -> None:
    exitcode = state / job_id / "exitcode"
    if not (state / job_id).is_dir():
        print(f"local_cluster: no job {job_id!r} under {state}", file=sys.stderr)
        print("failed")
    elif not exitcode.exists():
        print("running")
    else:
        print("success" if exitcode.read_text().strip() == "0" else "failed")


def cancel(state: Path, job_ids: list[str]) -> None:
    for job_id in job_ids:
        pid_file = state / job_id / "pid"
        if pid_file.exists() and not (state / job_id / "exitcode").exists():
            try:
                os.killpg(int(pid_file.read_text()), signal.SIGTERM)
            except ProcessLookupError:
                pass


def rsync(source: str, destination: str) -> None:
    """Copy like `rsync --recursive --times --copy-links`: "dir/" copies the folder's contents, "dir" the folder."""
    target = Path(destination)
    if os.path.isdir(source):
        if not source.endswith("/"):
            target = target / Path(source).name
        shutil.copytree(source, target, dirs_exist_ok=True)  # copy2 keeps mtimes; symlinks are followed
    else:
        if target.is_dir():
            target = target / Path(source).name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("submit", "status", "cancel"):
        command = commands.add_parser(name)
        command.add_argument("--state", type=Path, required=True, help="folder holding one subfolder per job")
        if name == "submit":
            command.add_argument("--sources", type=Path, required=True, help="workflow folder to take sources from")
            command.add_argument("jobscript", type=Path)
        elif name == "status":
            command.add_argument("job_id")
        else:
            command.add_argument("job_ids", nargs="+")
    copy = commands.add_parser("rsync")
    for flag in ("--recursive", "--times", "--copy-links"):
        copy.add_argument(flag, action="store_true")
    copy.add_argument("source")
    copy.add_argument("destination")
    args = parser.parse_args(argv)
    if args.command == "rsync":
        if not (args.recursive and args.times and args.copy_links):
            parser.error("rsync: only --recursive --times --copy-links (what snakemake-storage-plugin-fs uses) is supported")
        rsync(args.source, args.destination)
        return
    if args.command == "submit":
        submit(args.state.resolve(), args.sources.resolve(), args.jobscript.resolve())
    elif args.command == "status":
        status(args.state.resolve(), args.job_id)
    else:
        cancel(args.state.resolve(), args.job_ids)


if __name__ == "__main__":
    main()
