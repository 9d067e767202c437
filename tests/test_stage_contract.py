"""The rule -> stage function contract (softmax_mi.stage): a misspelt or missing setting fails when the Snakefile is
parsed, naming it; a stage function cannot swallow settings (**kwargs); files and threads arrive in one shape."""

from __future__ import annotations

import ast
import json

import pytest

from softmax_mi.stage import StageSettingsError, call_spec, check_settings

from helpers import REPO, make_workdir, snakemake
from test_dvc_deps import module_file, smk_imports


def sample(*, task: dict, seed: int, test_ratio: float = 0.2, outputs: dict) -> None:
    """A stage function of the contract's shape."""


def swallowing(*, task: dict, **_) -> None:
    """Takes any setting: refused."""


def positional(task, *args) -> None:
    """Takes positional extras: refused."""


def test_a_misspelt_setting_is_named():
    with pytest.raises(StageSettingsError, match=r"takes no setting 'test_ration'.*test_ratio"):
        check_settings(sample, {"task": {}, "seed": 0, "test_ration": 0.2}, rule="synthetic_sample")


def test_a_missing_required_setting_is_named():
    with pytest.raises(StageSettingsError, match="needs the setting 'seed'"):
        check_settings(sample, {"task": {}})
    check_settings(sample, {"task": {}, "seed": 0})  # test_ratio has a default; outputs come from the bridge


@pytest.mark.parametrize("function", [swallowing, positional])
def test_a_stage_function_taking_kwargs_or_args_is_refused(function):
    with pytest.raises(StageSettingsError, match=r"\*\*kwargs or \*args"):
        check_settings(function, {"task": {}})


def test_the_bridge_passes_files_and_threads_only_to_functions_that_take_them():
    spec = json.loads(call_spec(sample, {"task": {}, "seed": 1}, {"data": "in.parquet"},
                                {"rows": ["a.parquet"]}, threads=3))
    assert spec["entry"] == f"{__name__}:sample" and spec["threads"] == 3
    assert spec["kwargs"] == {"task": {}, "seed": 1, "outputs": {"rows": ["a.parquet"]}}  # a list stays a list


def test_no_stage_function_takes_kwargs():
    """Every public function of the modules the rule files import (the stage modules, the report stage) declares
    its settings (no `**_`)."""
    rule_files = [REPO / "workflow" / "Snakefile", *(REPO / "workflow" / "rules").glob("*.smk")]
    paths = {module_file(name) for path in rule_files for name in smk_imports(path)}
    assert REPO / "src" / "softmax_mi" / "stages" / "synthetic.py" in paths
    offenders = [f"{path.name}:{node.name}" for path in paths for node in ast.parse(path.read_text()).body
                 if isinstance(node, ast.FunctionDef) and not node.name.startswith("_") and node.args.kwarg]
    assert not offenders


@pytest.mark.parametrize("rule_file, setting, misspelt", [
    ("synthetic.smk", "test_ratio=SYNTHETIC", "test_ration=SYNTHETIC"),
    ("localisation.smk", "data=LOCALISATION", "dataa=LOCALISATION"),
])
def test_a_misspelt_setting_in_a_rule_fails_at_parse_time(tmp_path, rule_file, setting, misspelt):
    workdir = make_workdir(tmp_path, overlay=None)
    path = workdir / "workflow" / "rules" / rule_file
    text = path.read_text()
    assert text.count(setting) == 1
    path.write_text(text.replace(setting, misspelt))
    result = snakemake(workdir, "-n", "--quiet", "all", check=False)
    assert result.returncode != 0
    name = misspelt.partition("=")[0]
    assert f"takes no setting {name!r}" in result.stderr + result.stdout
    assert not (workdir / "logs").exists() and not (workdir / "results").exists()  # before any job
