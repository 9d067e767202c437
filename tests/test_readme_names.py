"""Every table the README names exists: each `softmax-mi tables|show|query` command of the README runs against the
smoke run's results, and each `results/<part>/<stem>.parquet` path it mentions is a file of that run (the tables of
user-supplied data aside: the smoke run has none)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
OWN_MODEL = "## Use it on your own model"  # its commands run on their own files (tests/test_readme_examples.py)
QUERY_COMMANDS = ("tables", "show", "query")


def readme_without_own_model_section() -> str:
    text = README.read_text()
    start = text.index(OWN_MODEL)
    return text[:start] + text[text.index("\n## ", start + len(OWN_MODEL)):]


def table_commands() -> list[list[str]]:
    commands = []
    for line in readme_without_own_model_section().splitlines():
        found = re.search(r"softmax-mi (tables|show|query)\b(.*)", line)
        if found and not line.lstrip().startswith(("pip ", "#")):
            argv = shlex.split(f"{found.group(1)}{found.group(2)}".split(" #")[0].rstrip("`").rstrip())
            commands.append(argv)
    return commands


COMMANDS = table_commands()
PATHS = sorted(set(re.findall(r"results/[a-z_]+/[a-z_]+\.parquet", readme_without_own_model_section())))


def test_the_readme_has_table_commands_and_paths():
    assert {argv[0] for argv in COMMANDS} == set(QUERY_COMMANDS) and PATHS


@pytest.mark.parametrize("argv", COMMANDS, ids=lambda argv: " ".join(argv)[:60])
def test_every_readme_table_command_runs_on_the_smoke_results(argv, smoke_run, tmp_path, monkeypatch, capsys):
    from softmax_mi.cli import main

    monkeypatch.chdir(tmp_path)  # commands that write (-o summary.csv) write here
    status = main([*argv, "--results", str(smoke_run / "results")])
    assert status == 0, f"README: softmax-mi {' '.join(argv)} fails: {capsys.readouterr().err}"


@pytest.mark.parametrize("path", PATHS)
def test_every_results_path_of_the_readme_exists(path, smoke_run):
    assert (smoke_run / path).is_file(), f"README names {path}, which the pipeline does not write"
