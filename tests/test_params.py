"""params.yaml and its overlays validate; bad values fail with a message naming the key."""

from __future__ import annotations

import copy
from types import SimpleNamespace

import pytest
import yaml

from softmax_mi.params import (ParamsError, deep_merge, load_params, load_workflow_params, overlay_shadowing,
                               params_hash, read_yaml, validate)

from helpers import REPO, make_workdir, snakemake


@pytest.mark.parametrize("overlay", [None] + sorted(p.relative_to(REPO).as_posix() for p in (REPO / "params").glob("*.yaml")))
def test_shipped_parameter_sets_are_valid(overlay):
    paths = [REPO / "params.yaml"] + ([REPO / overlay] if overlay else [])
    assert load_params(*paths)["seeds"]


def test_overlay_merges_recursively_and_replaces_lists():
    base = {"a": {"b": 1, "c": [1, 2]}, "d": 0}
    merged = deep_merge(base, {"a": {"c": [3]}})
    assert merged == {"a": {"b": 1, "c": [3]}, "d": 0}
    assert base["a"]["c"] == [1, 2]


@pytest.mark.parametrize(
    ("mutate", "key", "hint"),
    [
        (lambda p: p["synthetic"]["neural"].__setitem__("epochs", "ten"), "synthetic.neural.epochs", "integer"),
        (lambda p: p["synthetic"]["knn"].__setitem__("kk", 3), "synthetic.knn.kk", "use one of: k, max_samples"),
        (lambda p: p.__setitem__("device", "tpu"), "device", "auto, cpu, cuda"),
        (lambda p: p["synthetic"].__setitem__("estimators", ["softmax", "mien"]), "synthetic.estimators.1", "mine"),
        (lambda p: p.__setitem__("seeds", []), "seeds", "non-negative integers"),
        (lambda p: p["classification"]["faithful"]["seeds"].__setitem__("balanced", [1, 1]),
         "classification.faithful.seeds.balanced", "distinct base seeds"),
        (lambda p: p["classification"]["standard"].__setitem__("n_seeds", 4), "classification.standard.n_seeds",
         "list more seeds"),
    ],
)
def test_bad_values_name_the_key_and_the_fix(mutate, key, hint):
    params = copy.deepcopy(read_yaml(REPO / "params.yaml"))
    mutate(params)
    with pytest.raises(ParamsError) as error:
        validate(params)
    assert f"- {key}:" in str(error.value)
    assert hint in str(error.value)


def test_overlay_key_merges_its_file_after_params_yaml():
    """`overlay: smoke` (what `dvc exp run -S overlay=smoke` writes) equals --configfile params/smoke.yaml; later
    files and --config values still win over it."""
    named = load_params(REPO / "params.yaml", overrides=["overlay=smoke"])
    explicit = load_params(REPO / "params.yaml", REPO / "params/smoke.yaml")
    assert {**named, "overlay": None} == explicit
    assert load_params(REPO / "params.yaml", overrides=["overlay=smoke", "seeds=[7, 8]"])["seeds"] == [7, 8]


@pytest.mark.parametrize(("value", "message"), [
    ("smok", "overlay: 'smok' names no file /params/smok.yaml (fix: use one of: benchmark, faithful10, paper, smoke; or null"),
    ("../smoke", "overlay: '../smoke' does not match"),
    ("[smoke]", "overlay: ['smoke'] is not of type 'null', 'string'"),
])
def test_a_bad_overlay_name_says_which_exist(value, message):
    with pytest.raises(ParamsError, match=r"\A--config overlay=|invalid parameters") as error:
        load_params(REPO / "params.yaml", overrides=[f"overlay={value}"])
    assert message in str(error.value).replace(REPO.as_posix(), "")


def test_an_overlay_cannot_name_another(tmp_path):
    (tmp_path / "params").mkdir()
    (tmp_path / "params.yaml").write_text((REPO / "params.yaml").read_text().replace("overlay: null", "overlay: a"))
    (tmp_path / "params" / "a.yaml").write_text("overlay: b\n")
    with pytest.raises(ParamsError, match="a.yaml: overlay: an overlay cannot name another overlay"):
        load_params(tmp_path / "params.yaml")


def test_a_change_the_overlay_hides_is_named_with_the_command_that_counts(tmp_path, monkeypatch):
    """`dvc exp run -S synthetic.neural.epochs=5` with `overlay: smoke`: params/smoke.yaml sets that key and wins."""
    (tmp_path / "params").mkdir()
    (tmp_path / "params" / "smoke.yaml").write_text("synthetic: {neural: {epochs: 3}}\n")
    params = read_yaml(REPO / "params.yaml")
    lock = {"stages": {"synthetic": {"params": {"params.yaml": {"seeds": params["seeds"],
                                                                "synthetic": params["synthetic"]}}}}}
    (tmp_path / "dvc.lock").write_text(yaml.safe_dump(lock))
    params["overlay"] = "smoke"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    assert overlay_shadowing(tmp_path / "params.yaml", tmp_path / "dvc.lock") == []  # switching the overlay on
    was, params["synthetic"]["neural"]["epochs"] = params["synthetic"]["neural"]["epochs"], 5
    params["synthetic"]["knn"]["k"] = 4  # not in the overlay: it counts
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    (problem,) = overlay_shadowing(tmp_path / "params.yaml", tmp_path / "dvc.lock")
    assert f"synthetic.neural.epochs: 5 (was {was}) would not be used" in problem
    assert "`dvc exp run -S " in problem and "params/smoke.yaml:synthetic.neural.epochs=5`" in problem
    # what the Snakefile runs: refused as a DVC stage only (DVC_STAGE set), where -S makes the mistake easy
    workflow = SimpleNamespace(overwrite_configfiles=[], configfiles=["params.yaml"],
                               config_settings=SimpleNamespace(replace_workflow_config=False, config_args=None))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DVC_STAGE", raising=False)
    assert load_workflow_params(workflow)["synthetic"]["neural"]["epochs"] == 3
    monkeypatch.setenv("DVC_STAGE", "synthetic")
    with pytest.raises(ParamsError, match="synthetic.neural.epochs: 5 "):
        load_workflow_params(workflow)


def test_the_readme_set_params_apply_to_params_yaml_and_the_overlay(tmp_path):
    """`dvc exp run -S overlay=smoke` and `-S params/smoke.yaml:synthetic.neural.epochs=5` (DVC applies -S with
    Hydra's override grammar, refusing a key the file lacks) give the intended parameters."""
    from dvc.utils.hydra import apply_overrides

    (tmp_path / "params").mkdir()
    for name in ("params.yaml", "params/smoke.yaml"):
        (tmp_path / name).write_text((REPO / name).read_text())
    apply_overrides(tmp_path / "params.yaml", ["overlay=smoke"])
    apply_overrides(tmp_path / "params" / "smoke.yaml", ["synthetic.neural.epochs=5"])
    params = load_params(tmp_path / "params.yaml")
    assert (params["overlay"], params["seeds"], params["synthetic"]["neural"]["epochs"]) == ("smoke", [0, 1], 5)


def test_params_hash_is_stable_and_order_free():
    assert params_hash({"a": 1, "b": [1, 2]}) == params_hash({"b": [1, 2], "a": 1})
    assert params_hash({"a": 1}) != params_hash({"a": 2})


@pytest.mark.slow
def test_snakemake_refuses_bad_params_before_any_job(tmp_path):
    workdir = make_workdir(tmp_path)
    text = (workdir / "params.yaml").read_text().replace("select: best_val", "select: best_vall")
    (workdir / "params.yaml").write_text(text + "\nunknown_section: 1\n")
    result = snakemake(workdir, "--cores", "1", check=False)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "synthetic.neural.select" in output and "unknown_section" in output
    assert not (workdir / "data").exists() and not (workdir / "results").exists()
