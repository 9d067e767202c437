"""Snakemake and DVC declare the same DAG: every output of each part's Snakemake target is owned by that part's
DVC stage, every DVC out is produced by Snakemake, and the stages together cover `rule all`."""

from __future__ import annotations

from pathlib import PurePosixPath

import pytest
import yaml

from helpers import REPO, make_workdir, snakemake


def snakemake_outputs(workdir, target: str | None = None) -> set[str]:
    """Every file the DAG of ``target`` (default: rule all) would produce, from `snakemake --summary`."""
    lines = snakemake(workdir, "--summary", *([target] if target else [])).stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("output_file"))
    return {line.split("\t")[0] for line in lines[header + 1 :] if line.strip()}


def dvc_paths(stage: dict) -> list[str]:
    paths = []
    for section in ("outs", "metrics", "plots"):
        for entry in stage.get(section, []):
            paths.append(next(iter(entry)) if isinstance(entry, dict) else entry)
    return paths


def covered(path: str, owners: list[str]) -> bool:
    return any(path == owner or PurePosixPath(owner) in PurePosixPath(path).parents for owner in owners)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return make_workdir(tmp_path_factory.mktemp("dag"), overlay=None)  # the default parameter set


@pytest.fixture(scope="module")
def stages():
    return yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]


def test_each_dvc_stage_owns_its_snakemake_target(workdir, stages):
    for name, stage in stages.items():
        target = stage["cmd"].split()[-1]
        assert stage["cmd"].startswith("snakemake "), f"dvc stage {name} must run a Snakemake target"
        outputs = snakemake_outputs(workdir, target)
        owners = dvc_paths(stage)
        assert outputs, f"{target} produces nothing"
        # the DAG of a stage that reads other stages' outputs (the report) includes their jobs: those files are theirs
        upstream = [path for other, upstream_stage in stages.items() if other != name
                    and any(covered(dep, dvc_paths(upstream_stage)) for dep in stage.get("deps", []))
                    for path in dvc_paths(upstream_stage)]
        outputs = {p for p in outputs if not covered(p, upstream)}
        missing = sorted(p for p in outputs if not covered(p, owners))
        assert not missing, f"dvc stage {name!r} does not declare: {missing[:5]}"
        unused = [owner for owner in owners if not any(covered(p, [owner]) for p in outputs)]
        assert not unused, f"dvc stage {name!r} declares outs Snakemake never writes: {unused}"


def test_dvc_stages_cover_rule_all(workdir, stages):
    owners = [path for stage in stages.values() for path in dvc_paths(stage)]
    missing = sorted(p for p in snakemake_outputs(workdir) if not covered(p, owners))
    assert not missing, f"outputs of rule all owned by no dvc stage: {missing[:5]}"


def test_dvc_params_sections_exist(stages):
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    for name, stage in stages.items():
        for key in stage.get("params", []):
            if isinstance(key, str):
                assert key in params, f"dvc stage {name} depends on params key {key!r}, absent from params.yaml"


def test_dvc_stages_track_their_sections_of_every_overlay(stages):
    """`overlay: smoke` merges params/smoke.yaml over params.yaml: a stage tracks the `overlay` key and, in each
    overlay file, exactly the sections it tracks in params.yaml (a key DVC tracks must exist in the file)."""
    overlays = {path.relative_to(REPO).as_posix(): yaml.safe_load(path.read_text())
                for path in sorted((REPO / "params").glob("*.yaml"))}
    for name, stage in stages.items():
        entries = stage.get("params", [])
        sections = [key for key in entries if isinstance(key, str) and key != "overlay"]
        tracked = {file: keys for entry in entries if isinstance(entry, dict) for file, keys in entry.items()}
        expected = {file: [key for key in sections if key in overlay] for file, overlay in overlays.items()}
        expected = {file: keys for file, keys in expected.items() if keys}
        assert ("overlay" in entries) == bool(sections), f"dvc stage {name}: add `overlay` to its params"
        assert tracked == expected, f"dvc stage {name}: params of the overlays should be {expected}"
