"""Job resources come from params.yaml `resources:` and reach every job of the heavy rules; the cluster and GPU
workflow profiles parse and name only rules that exist."""

from __future__ import annotations

import importlib.util
import re

import pytest
import yaml

from softmax_mi import registry

from helpers import REPO, make_workdir, snakemake
from softmax_mi.params import load_params

PROFILES = REPO / "workflow" / "profiles"
# Rules whose names say they train or evaluate a model must have an entry in `resources:`.
HEAVY_RULE = re.compile(r"_(train|evaluate|estimate)$")
ALWAYS_IN_DAG = {"synthetic_estimate", "classification_train", "classification_evaluate", "localisation_train",
                 "localisation_evaluate"}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return make_workdir(tmp_path_factory.mktemp("resources"))


@pytest.fixture(scope="module")
def rule_names(workdir):
    return set(snakemake(workdir, "--list-rules").stdout.split())


def dry_run_jobs(workdir, *args: str) -> list[dict]:
    """Each job of a dry run: its rule, wildcards, threads and resources, parsed from Snakemake's job listing."""
    text = snakemake(workdir, "--dry-run", *args).stdout
    jobs = []
    for block in re.split(r"\n(?=(?:local)?rule \w+:\n)", text):
        header = re.match(r"(?:local)?rule (\w+):\n", block)
        if not header:
            continue
        fields = dict(re.findall(r"^    (\w+): (.*)$", block, flags=re.M))
        resources = dict(item.split("=", 1) for item in fields.get("resources", "").split(", ") if "=" in item)
        wildcards = dict(item.split("=", 1) for item in fields.get("wildcards", "").split(", ") if "=" in item)
        jobs.append({"rule": header.group(1), "threads": int(fields.get("threads", 1)), "resources": resources,
                     "wildcards": wildcards})
    return jobs


def test_every_training_rule_has_a_resources_entry(rule_names):
    params = load_params(REPO / "params.yaml")
    assert set(params["resources"]) <= rule_names, "resources: names a rule that does not exist"
    heavy = {name for name in rule_names if HEAVY_RULE.search(name)}
    assert heavy <= set(params["resources"]), f"no resources entry for {sorted(heavy - set(params['resources']))}"


def test_paper_parameters_ask_for_one_gpu_per_training_job():
    default, paper = load_params(REPO / "params.yaml"), load_params(REPO / "params.yaml", REPO / "params/paper.yaml")
    assert all(spec["gpu"] == 0 for spec in default["resources"].values()), "CPU machines must not ask for GPUs"
    assert all(spec["gpu"] == 1 for spec in paper["resources"].values())


def test_every_job_of_a_heavy_rule_gets_its_threads_and_resources_from_params(workdir, tmp_path):
    """Distinctive values in an overlay must reach every job of every rule named in `resources:`."""
    params = load_params(workdir / "params.yaml")
    overlay = {"resources": {name: {"threads": 3, "mem_mb": 1234, "runtime": 56, "gpu": 1}
                             for name in params["resources"]}}
    overlay_file = tmp_path / "resources.yaml"
    overlay_file.write_text(yaml.safe_dump(overlay))
    jobs = dry_run_jobs(workdir, "--cores", "4", "--configfile", str(overlay_file))
    seen = set()
    for job in jobs:
        if job["rule"] not in params["resources"]:
            continue
        seen.add(job["rule"])
        # every synthetic_estimate job here trains networks (a kNN-only setting asks for none: tests/test_grid.py)
        assert job["threads"] == 3, job
        # a benchmark job of a non-neural estimator (kNN) asks for no GPU, whatever the overlay says
        cpu_only = job["rule"] == "benchmark_estimate" and \
            job["wildcards"].get("bench_estimator") not in registry.BENCHMARK_NEURAL_ESTIMATORS
        assert (job["resources"].get("mem_mb"), job["resources"].get("runtime"), job["resources"].get("gpu")) == (
            "1234", "56", "0" if cpu_only else "1"), job
    # The CUB / Tiny-ImageNet rules have no jobs here (their data is absent); the others must all be seen.
    assert ALWAYS_IN_DAG <= seen, f"no job of {sorted(ALWAYS_IN_DAG - seen)} in the smoke DAG"


@pytest.mark.slow
def test_changing_resources_reruns_nothing(smoke_run, tmp_path):
    overlay = tmp_path / "resources.yaml"
    overlay.write_text(yaml.safe_dump({"resources": {"classification_train": {"threads": 2, "mem_mb": 999,
                                                                              "runtime": 5, "gpu": 0}}}))
    plan = snakemake(smoke_run, "--cores", "2", "--dry-run", "--configfile", str(overlay)).stdout
    assert "Nothing to be done" in plan


def test_slurm_profile_names_only_existing_rules_and_keys_the_plugin_reads(rule_names):
    profile = yaml.safe_load((PROFILES / "slurm" / "config.yaml").read_text())
    assert profile["executor"] == "slurm"
    assert "mtime" not in profile["rerun-triggers"]  # files restored by `dvc pull` carry new timestamps
    assert {"mem_mb", "runtime"} <= set(profile["default-resources"])
    assert set(profile["set-resources"]) <= rule_names
    plugin_keys = {"slurm_partition", "slurm_account", "slurm_extra", "gpu", "gpu_model", "gres", "cpus_per_gpu",
                   "cpus_per_task", "mem_mb", "mem", "runtime", "constraint", "tasks_per_gpu"}
    for rule, settings in profile["set-resources"].items():
        assert set(settings) <= plugin_keys, f"{rule}: {set(settings) - plugin_keys}"
        assert not ({"gres"} <= set(settings) and {"gpu"} <= set(settings)), f"{rule}: gpu and gres exclude each other"


def test_gpu_profile_throttles_gpu_jobs_to_one(workdir):
    profile = yaml.safe_load((PROFILES / "gpu" / "config.yaml").read_text())
    assert profile["cores"] == "all" and "gpu=1" in profile["resources"]
    assert "mtime" not in profile["rerun-triggers"]
    # The profile is accepted as it stands (a dry run reads every key).
    assert snakemake(workdir, "--dry-run", "--workflow-profile", str(PROFILES / "gpu")).returncode == 0


@pytest.mark.skipif(importlib.util.find_spec("snakemake_executor_plugin_slurm") is None,
                    reason="snakemake-executor-plugin-slurm not installed (pip install -e '.[cluster]')")
def test_slurm_profile_is_accepted_by_snakemake(workdir):
    result = snakemake(workdir, "--dry-run", "--workflow-profile", str(PROFILES / "slurm"),
                       "--configfile", str(REPO / "params/paper.yaml"))
    assert "slurm_partition=gpu" in result.stdout
