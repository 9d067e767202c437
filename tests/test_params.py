"""params.yaml and its overlays validate; bad values fail with a message naming the key."""

from __future__ import annotations

import copy

import pytest

from softmax_mi.params import ParamsError, deep_merge, load_params, params_hash, read_yaml, validate

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
