"""Issue 11: strict parameter files (syntax errors, duplicate keys), finite numbers, integers that are integers,
upper bounds on size knobs, --config overrides with YAML values, and nothing written when validation fails."""

from __future__ import annotations

import copy
import math
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from softmax_mi.params import ParamsError, load_params, parse_overrides, read_yaml, validate

from helpers import BIN, REPO, make_workdir, run, snakemake


def default_params() -> dict:
    return copy.deepcopy(read_yaml(REPO / "params.yaml"))


def problems(params: dict) -> str:
    with pytest.raises(ParamsError) as error:
        validate(params)
    return str(error.value)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize(("section", "key"), [(("synthetic", "neural"), "lr"), (("localisation", "data"), "noise_std"),
                                              (("synthetic", "gaussian"), "mean_unit")])
def test_non_finite_numbers_are_refused(section, key, bad):
    params = default_params()
    target = params
    for name in section:
        target = target[name]
    target[key] = bad
    message = problems(params)
    assert f"- {'.'.join(section)}.{key}: {bad} is not a finite number" in message and "fix:" in message


def test_non_finite_numbers_in_lists_and_overrides_are_refused():
    params = default_params()
    params["localisation"]["iou_thresholds"] = [0.3, math.nan]
    params["localisation"]["overrides"]["cub"]["training"]["lr"] = math.inf
    message = problems(params)
    assert "- localisation.iou_thresholds.1: nan is not a finite number" in message
    assert "- localisation.overrides.cub.training.lr: inf is not a finite number" in message


def test_yaml_nan_and_inf_in_a_file_are_refused(tmp_path):
    overlay = tmp_path / "overlay.yaml"
    overlay.write_text("synthetic:\n  neural:\n    lr: .nan\nclassification:\n  training:\n    lr: .inf\n")
    with pytest.raises(ParamsError) as error:
        load_params(REPO / "params.yaml", overlay)
    assert "synthetic.neural.lr: nan is not a finite number" in str(error.value)
    assert "classification.training.lr: inf is not a finite number" in str(error.value)


@pytest.mark.parametrize(
    ("mutate", "key"),
    [
        (lambda p: p.__setitem__("seeds", [0, 1.0]), "seeds.1"),
        (lambda p: p["synthetic"]["neural"].__setitem__("epochs", 3.0), "synthetic.neural.epochs"),
        (lambda p: p["classification"]["faithful"]["seeds"].__setitem__("balanced", [0, 2.0]),
         "classification.faithful.seeds.balanced"),
        (lambda p: p["resources"]["classification_train"].__setitem__("gpu", 0.0), "resources.classification_train.gpu"),
        (lambda p: p["localisation"]["data"]["counts"].__setitem__("test", 100.0), "localisation.data.counts.test"),
        (lambda p: p.__setitem__("seeds", [0, True]), "seeds.1"),
    ],
)
def test_integers_are_integers(mutate, key):
    params = default_params()
    mutate(params)
    message = problems(params)
    assert f"- {key}" in message
    if "True" not in message:
        assert "not of type 'integer'" in message or "distinct base seeds" in message


def test_float_seed_hint_says_how_to_write_it():
    params = default_params()
    params["seeds"] = [0, 1.0]
    assert "write 1, not 1.0" in problems(params)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("synthetic", "neural", "epochs"), 10**12),
        (("synthetic", "truth_mc_samples"), 10**13),
        (("synthetic", "neural", "batch_size"), 10**9),
        (("synthetic", "neural", "hidden"), [10**7]),
        (("synthetic", "gaussian", "dims"), [1, 10**6]),
        (("synthetic", "gaussian", "class_counts", "balanced"), [10**9, 10**9]),
        (("synthetic", "uniform", "n_per_class"), 10**9),
        (("synthetic", "knn", "max_samples"), 10**12),
        (("localisation", "training", "epochs"), 10**6),
        (("localisation", "gap_cnn", "widths"), [8, 16, 32, 10**6]),
        (("localisation", "data", "canvas"), 10**5),
        (("classification", "training", "epochs"), 10**12),
        (("classification", "standard", "n_max"), 10**9),
        (("classification", "cub", "epochs"), 10**5),
        (("classification", "cub", "feature_batch_size"), 10**8),
        (("datasets", "cub", "image_size"), 10**5),
        (("seeds",), list(range(1000))),
    ],
)
def test_size_knobs_have_an_upper_bound_with_a_reason(path, value):
    params = default_params()
    target = params
    for name in path[:-1]:
        target = target[name]
    target[path[-1]] = value
    message = problems(params)
    assert f"- {'.'.join(path)}" in message
    assert "greater than the maximum" in message or "is too long" in message
    assert "at most" in message or "raise `maximum`" in message  # the fix says why, and how to go beyond


def test_paper_values_are_well_within_the_bounds():
    paper = load_params(REPO / "params.yaml", REPO / "params/paper.yaml")
    assert paper["synthetic"]["neural"]["epochs"] * 5 <= 1000
    assert paper["localisation"]["overrides"]["cub"]["training"]["epochs"] * 5 <= 1000


def test_duplicate_keys_are_refused_with_path_lines_and_file(tmp_path):
    overlay = tmp_path / "dup.yaml"
    overlay.write_text("device: auto\nseeds: [0]\ndevice: cpu\n")
    with pytest.raises(ParamsError) as error:
        read_yaml(overlay)
    assert f"{overlay}:3: key device is given twice, on line 1 and line 3" in str(error.value)
    overlay.write_text("classification:\n  training:\n    epochs: 2\n    lr: 0.1\n    epochs: 3\n")
    with pytest.raises(ParamsError) as error:
        load_params(REPO / "params.yaml", overlay)
    assert f"{overlay}:5: key classification.training.epochs is given twice, on line 3 and line 5" in str(error.value)


def test_same_key_in_different_mappings_is_fine(tmp_path):
    overlay = tmp_path / "ok.yaml"
    overlay.write_text("classification:\n  training: {epochs: 2}\n  cub: {epochs: 2}\n")
    assert load_params(REPO / "params.yaml", overlay)["classification"]["cub"]["epochs"] == 2


@pytest.mark.parametrize(
    ("text", "where", "what"),
    [
        ("seeds: [0, 1\ndevice: cpu\n", ":2:7:", "expected ',' or ']'"),
        ("seeds:\n\t- 1\n", ":2:1:", "indent with spaces"),
        ("device: cpu\n  seeds: [0]\n", ":2:8:", "mapping values are not allowed here"),
    ],
)
def test_yaml_syntax_errors_give_file_line_and_column(tmp_path, text, where, what):
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    with pytest.raises(ParamsError) as error:
        read_yaml(bad)
    assert str(error.value).startswith(f"{bad}{where} not valid YAML") and what in str(error.value)


def test_cli_precheck_is_strict(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("seeds: [0, 1\n")
    result = subprocess.run([str(BIN / "python"), "-m", "softmax_mi.params", str(REPO / "params.yaml"), str(bad)],
                            capture_output=True, text=True)
    assert result.returncode != 0 and f"{bad}:2:1: not valid YAML" in result.stderr


def test_overrides_are_read_as_yaml_and_merge_into_sections():
    assert parse_overrides(["seeds=[0,1]", "classification={training: {epochs: 2}}", "device=cpu"]) == {
        "seeds": [0, 1], "classification": {"training": {"epochs": 2}}, "device": "cpu"}
    merged = load_params(REPO / "params.yaml", overrides=["classification={training: {epochs: 2}}"])
    default = read_yaml(REPO / "params.yaml")["classification"]
    assert merged["classification"]["training"] == {**default["training"], "epochs": 2}
    assert merged["classification"]["cub"] == default["cub"]
    with pytest.raises(ParamsError, match=r"--config seeds, column 5 of the value: not valid YAML"):
        parse_overrides(["seeds=[0,1"])


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return make_workdir(tmp_path_factory.mktemp("strict"))


def files(folder: Path, skip: tuple[str, ...] = (".git",)) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.relative_to(folder).parts[0] not in skip)


def test_snakemake_takes_nested_and_list_config_overrides(workdir):
    plan = snakemake(workdir, "-n", "--config", "seeds=[0,1,2]", "classification={training: {epochs: 2}}",
                     "localisation={n_seeds: 3}").stdout
    assert "seed2" in plan  # a third seed: the list arrived as integers (and the nested n_seeds took it)
    refused = snakemake(workdir, "-n", "--config", "seeds=[0,1.0]", check=False)
    assert refused.returncode != 0 and "seeds.1: 1.0 is not of type 'integer'" in refused.stdout + refused.stderr


def test_snakemake_refuses_duplicate_keys_in_params_and_overlays(workdir, tmp_path):
    overlay = tmp_path / "dup.yaml"
    overlay.write_text("classification:\n  training:\n    epochs: 2\n    epochs: 3\n")
    result = snakemake(workdir, "-n", "--configfile", str(overlay), check=False)
    assert result.returncode != 0
    assert f"{overlay}:4: key classification.training.epochs is given twice" in result.stdout + result.stderr


@pytest.mark.parametrize(("extra", "expected"), [("device: cpu\n", "params.yaml:{n}: key device is given twice"),
                                                 ("oops: [1, 2\n", "params.yaml:{m}:1: not valid YAML")])
def test_snakemake_names_file_line_for_a_broken_params_yaml(tmp_path, extra, expected):
    workdir = make_workdir(tmp_path / "w")
    text = (workdir / "params.yaml").read_text()
    (workdir / "params.yaml").write_text(text + extra)
    n = text.count("\n") + 1
    result = snakemake(workdir, "-n", check=False)
    assert result.returncode != 0 and expected.format(n=n, m=n + 1) in result.stdout + result.stderr


def test_bad_value_writes_nothing(tmp_path):
    workdir = make_workdir(tmp_path / "w")
    params = yaml.safe_load((workdir / "params.yaml").read_text())
    params["classification"]["training"]["epochs"] = 10**12
    (workdir / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    before = files(workdir)
    dry = snakemake(workdir, "-n", check=False)
    assert dry.returncode != 0 and files(workdir) == before
    real = snakemake(workdir, "--cores", "1", check=False)
    assert real.returncode != 0 and "classification.training.epochs" in real.stdout + real.stderr
    assert files(workdir, skip=(".snakemake",)) == before  # Snakemake opens its own run log before reading anything


@pytest.mark.skipif(not (BIN / "dvc").exists() or not shutil.which("git"), reason="needs dvc and git")
def test_dvc_exp_run_with_a_bad_value_leaves_no_folders(tmp_path):
    """`dvc exp run` checks out every out before running a stage, creating their parent folders: a refused
    parameter set removes them again (only where empty)."""
    workdir = make_workdir(tmp_path / "w")
    (workdir / "data" / "raw").mkdir(parents=True)
    (workdir / "data" / "raw" / "README.md").write_text("user data\n")
    git = ["git", "-c", "user.email=t@example.org", "-c", "user.name=t"]
    run(git + ["init", "-q"], cwd=workdir)
    run(["dvc", "init", "-q"], cwd=workdir)
    run(git + ["add", "-A"], cwd=workdir)
    run(git + ["commit", "-qm", "init"], cwd=workdir)
    before = files(workdir, skip=(".git", ".dvc", ".snakemake"))
    result = run(["dvc", "exp", "run", "-S", "classification.training.epochs=-1"], cwd=workdir, check=False)
    assert result.returncode != 0 and "classification.training.epochs" in result.stdout + result.stderr
    assert files(workdir, skip=(".git", ".dvc", ".snakemake")) == before


def test_early_stopping_without_a_cap_is_refused_with_the_fix():
    params = default_params()
    params["synthetic"]["neural"].update(patience=3, max_epochs=None)
    assert "synthetic.neural.max_epochs: null, but patience is 3 (fix: give max_epochs" in problems(params)
    params["synthetic"]["neural"]["patience"] = None
    validate(params)  # no early stopping: no cap needed
