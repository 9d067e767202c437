"""The plain commands load the workflow profile, and a run killed with SIGKILL is resumed by the plain command.

Cheap targets only (the smoke set's synthetic jobs, one per setting, ~5 s each); results are compared with the
shared uninterrupted smoke run. Measured: 35 s for the file on 2 cores shared with other work (load average ≈ 5),
beside the smoke run the suite makes anyway.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from helpers import BIN, REPO, make_workdir, pipeline_env, snakemake
from softmax_mi.workflow_lock import LIVENESS_FILE

pytestmark = pytest.mark.slow

RUNS = "results/synthetic/runs"
SAMPLES = [f"{RUNS}/gaussian/d1-balanced.parquet", f"{RUNS}/gaussian/d1-imbalanced.parquet",
           f"{RUNS}/uniform/d1-balanced.parquet"]  # three independent jobs
TIMING = ["seconds"]  # the one column that differs between two runs of a job
PROFILE_LINE = "Using workflow specific profile workflow/profiles/default"


def start(workdir: Path, *targets: str) -> subprocess.Popen:
    """`snakemake --cores 1 <targets>` in the background, in its own process group (as a terminal would run it)."""
    return subprocess.Popen([str(BIN / "snakemake"), "--cores", "1", *targets], cwd=workdir, env=pipeline_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)


def wait_for(condition, what: str, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None:
            raise AssertionError(f"the run ended before {what}:\n{process.stdout.read()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} after {timeout} s")
        time.sleep(0.05)


def job_started(workdir: Path) -> bool:
    """A job's shell has opened its log (`> {log}`) while Snakemake holds its locks."""
    return any((workdir / "logs").rglob("*.log")) and any((workdir / ".snakemake/locks").glob("*.lock"))


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def assert_same_samples(workdir: Path, reference: Path, paths: list[str]) -> None:
    for path in paths:
        pd.testing.assert_frame_equal(pd.read_parquet(workdir / path).drop(columns=TIMING),
                                      pd.read_parquet(reference / path).drop(columns=TIMING))


def test_the_workflow_profile_shows_a_failed_jobs_error(tmp_path):
    """`snakemake --cores all` from the repository root loads workflow/profiles/default (show-failed-logs: the
    failed job's log, not only its path, reaches the console)."""
    workdir = make_workdir(tmp_path / "w")
    target = "results/synthetic/mi_estimates.parquet"
    for path in SAMPLES:  # inputs present but unreadable: the gather job (only) runs, and fails
        (workdir / path).parent.mkdir(parents=True, exist_ok=True)
        (workdir / path).write_text("not a table\n")
    result = snakemake(workdir, "--cores", "1", target, check=False)
    console = result.stdout + result.stderr
    assert result.returncode != 0
    assert PROFILE_LINE in console
    log = (workdir / "logs/synthetic/gather.log").read_text().strip().splitlines()
    assert log and log[-1] in console, f"the error {log[-1:]} is not on the console:\n{console[-3000:]}"


def test_named_profiles_repeat_the_default_profile():
    """Naming gpu/slurm with --workflow-profile replaces the default profile; with --profile both apply and the
    default's values win where both set a key. Either way the same settings result only if each named profile
    repeats every key of the default one with the same value."""
    profiles = REPO / "workflow/profiles"
    default = yaml.safe_load((profiles / "default/config.yaml").read_text())
    assert default["show-failed-logs"] is True and default["rerun-incomplete"] is True
    for name in ("gpu", "slurm"):
        named = yaml.safe_load((profiles / name / "config.yaml").read_text())
        assert {key: named.get(key) for key in default} == default, name


def test_kill_9_then_the_plain_command_resumes(tmp_path, smoke_run):
    """A second run is locked out while the first is alive; after `kill -9` of the first (its whole process group:
    Snakemake and its job), the plain command finishes without --unlock, and the
    files equal those of the uninterrupted run."""
    workdir = make_workdir(tmp_path / "w")
    targets = SAMPLES[:2]  # two jobs, one at a time: the first run is still busy when the second one starts
    first = start(workdir, *targets)
    try:
        wait_for(lambda: job_started(workdir), "job start", first)
        second = snakemake(workdir, "--cores", "1", *targets, check=False)
        assert second.returncode != 0 and "Directory cannot be locked" in second.stdout + second.stderr
        assert first.poll() is None, "the first run ended before the second one tried: the lockout was not tested"
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=30)
    finally:
        if group_alive(first.pid):
            os.killpg(first.pid, signal.SIGKILL)
    assert any((workdir / ".snakemake/locks").iterdir()), "the killed run should have left its locks"
    resumed = snakemake(workdir, "--cores", "2", *targets)
    assert "stale Snakemake lock" in resumed.stderr
    assert_same_samples(workdir, smoke_run, targets)


def test_a_job_killed_after_its_output_appeared_is_rerun(tmp_path, smoke_run):
    """`kill -9` of Snakemake alone: its job finishes on its own and writes its output, which Snakemake had marked
    incomplete. The plain command reruns that job (rerun-incomplete in the workflow profile) instead of stopping
    with IncompleteFilesException."""
    workdir = make_workdir(tmp_path / "w")
    target = SAMPLES[0]
    run = start(workdir, target)
    try:
        wait_for(lambda: job_started(workdir), "job start", run)
        os.kill(run.pid, signal.SIGKILL)  # the main process only: the job's processes go on
        run.wait(timeout=30)
        deadline = time.monotonic() + 120
        while group_alive(run.pid) and time.monotonic() < deadline:  # the orphaned job, until it has finished
            time.sleep(0.05)
    finally:
        if group_alive(run.pid):
            os.killpg(run.pid, signal.SIGKILL)
    assert (workdir / target).is_file(), "the orphaned job should have written its output"
    assert any((workdir / ".snakemake/incomplete").iterdir()), "Snakemake should have left it marked incomplete"
    resumed = snakemake(workdir, "--cores", "2", target)
    assert "1 of 1 steps (100%) done" in resumed.stderr  # rerun, not taken as complete
    assert_same_samples(workdir, smoke_run, [target])


def test_only_the_main_process_marks_the_folder_live(tmp_path):
    """Cluster jobs re-parse the Snakefile in `--mode remote`: they are parts of a run and must not hold the
    folder (nor remove locks); the main process does."""
    workdir = make_workdir(tmp_path / "w")
    liveness = workdir / ".snakemake" / LIVENESS_FILE
    snakemake(workdir, "--mode", "remote", "--cores", "1", "--dry-run", SAMPLES[2])
    assert not liveness.exists()
    snakemake(workdir, "--cores", "1", "--dry-run", SAMPLES[2])
    assert liveness.is_file()
