"""Seeds and resumption: distinct settings draw from distinct seeds; a resumed or damaged checkpoint never changes
what a job delivers; the WSOL figure shows one run (its maps and its τ)."""

from __future__ import annotations

import json
import logging
import shlex
from collections.abc import Iterator

import pandas as pd
import pytest
import torch
import yaml

from helpers import make_workdir, run_spec, snakemake, tiny_training_data, train_lenets
from softmax_mi.classification import setting_seed
from softmax_mi.multirun import SGDConfig, run_specs
from softmax_mi.runtime import derive_seed
from softmax_mi.stages import localisation, synthetic

# ----------------------------------------------------------------------------------------------- derive_seed


def test_labels_that_share_a_prefix_get_different_seeds():
    # the old derivation kept only the first 8 bytes of each label: these pairs collided
    assert derive_seed(0, "init", "mnist", "faithful-imbalanced") != derive_seed(0, "init", "mnist", "faithful-balanced")
    assert derive_seed(0, "init", "mnist", "step-r10") != derive_seed(0, "init", "mnist", "step-r100")
    assert derive_seed(0, "order", "mnist", "exponential-r10") != derive_seed(0, "order", "mnist", "exponential-r100")
    assert derive_seed("ab", "c") != derive_seed("a", "bc")  # label boundaries count
    assert derive_seed({"dim": 2, "kind": "gaussian"}) == derive_seed({"kind": "gaussian", "dim": 2})  # canonical


def test_derived_seeds_are_stable_32_bit_integers():
    # pinned: a change of derivation changes every number of the project, and must be a deliberate one
    assert derive_seed(0, "init", "mnist", "faithful-imbalanced") == 2953867391
    seeds = [derive_seed(seed, "x") for seed in range(1000)]
    assert all(0 <= s < 2**32 for s in seeds) and len(set(seeds)) == 1000


def _dry_run_jobs(workdir) -> Iterator[dict]:
    """The stage call of every job of the DAG (`snakemake -n -p` prints each job's command with its JSON spec)."""
    printed = snakemake(workdir, "-n", "-p", "--cores", "1", "--forceall").stdout
    for line in printed.splitlines():
        if "-m softmax_mi.stage " in line:
            yield json.loads(shlex.split(line.split("-m softmax_mi.stage ", 1)[1])[0])


def _job_seeds(entry: str, kw: dict) -> Iterator[tuple[tuple, int]]:
    """(what the seed is for, the seed) of every seed a job derives, through the stages' own functions."""
    if entry == "softmax_mi.stages.synthetic:estimate":  # one job per setting: its data, truth and every run
        task = json.dumps(kw["task"], sort_keys=True)
        yield ("truth", task, kw["truth_seed"]), synthetic.task_seed(kw["truth_seed"], "truth", kw["task"])
        for seed in kw["seeds"]:
            yield ("sample", task, seed), synthetic.task_seed(seed, "sample", kw["task"])
            for estimator in kw["estimators"]:
                yield ("estimate", estimator, task, seed), synthetic.task_seed(seed, "estimate", kw["task"], estimator)
    elif entry == "softmax_mi.stages.classification:split":
        yield ("split", kw["dataset"], kw["setting"], kw["seed"]), setting_seed(
            kw["seed"], "split", kw["dataset"], kw["setting"])
    elif entry == "softmax_mi.stages.classification:train":
        runs = run_specs(dataset=kw["dataset"], setting=kw["setting"], loss=kw["loss"], seeds=kw["seeds"],
                         options=kw["options"], epochs=kw["training"]["epochs"])
        for run in runs:  # every loss of a setting shares its seed's init and order (a paired comparison)
            yield ("init", kw["dataset"], kw["setting"], run.id.seed), run.init_seed
            yield ("order", kw["dataset"], kw["setting"], run.id.seed), run.order_seed
    elif entry in ("softmax_mi.stages.localisation:train", "softmax_mi.stages.localisation:evaluate"):
        purpose = "wsol_" + entry.rpartition(":")[2]
        yield (purpose, kw["dataset"], kw["backbone"], kw["adl"], kw["seed"]), localisation.wsol_seed(
            kw["seed"], purpose, kw["dataset"], kw["backbone"], kw["adl"])


@pytest.mark.parametrize("overlay", [None, "params/paper.yaml"])
def test_every_setting_of_the_default_and_paper_runs_gets_its_own_seed(tmp_path, overlay):
    workdir = make_workdir(tmp_path, overlay=overlay)
    seeds: dict[tuple, int] = {}
    for job in _dry_run_jobs(workdir):
        for key, seed in _job_seeds(job["entry"], job["kwargs"]):
            assert seeds.setdefault(key, seed) == seed, f"{key} derived two seeds"
    purposes = {key[0] for key in seeds}
    assert {"sample", "truth", "estimate", "split", "init", "order", "wsol_train", "wsol_evaluate"} <= purposes
    assert len(seeds) > 200
    clashes = pd.Series(list(seeds)).groupby(pd.Series(list(seeds.values()))).apply(list)
    clashes = clashes[clashes.map(len) > 1]
    assert clashes.empty, f"{len(clashes)} seed(s) shared by distinct settings, e.g. {clashes.iloc[0]}"


# ------------------------------------------------------------------------------------------------ resumption


# LDAM-DRW's reweighting epoch depends on the epoch count (3/4 of it): the case the old resume got wrong
RUNS = [run_spec("ldam_drw", 5, 6, drw_epoch=2), run_spec("softmax", 7, 8)]


def _assert_same_model(a, b):
    for x, y in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(x, y, rtol=0, atol=0)


def test_a_checkpoint_past_the_requested_epochs_is_discarded(tmp_path, caplog):
    images, labels = tiny_training_data(192)
    straight, _ = train_lenets(images, labels, RUNS, SGDConfig(epochs=2))
    checkpoint = tmp_path / "model.pt.partial"
    train_lenets(images, labels, RUNS, SGDConfig(epochs=3), checkpoint=checkpoint)  # killed after epoch 3 of 5, say
    with caplog.at_level(logging.WARNING, logger="softmax_mi.multirun"):
        model, history = train_lenets(images, labels, RUNS, SGDConfig(epochs=2), checkpoint=checkpoint)
    assert max(h["epoch"] for h in history) == 2
    _assert_same_model(model, straight)
    assert "holds epoch 3, but 2 epoch(s) are asked for" in caplog.text


def test_a_checkpoint_of_the_last_epoch_finishes_without_training(tmp_path):
    images, labels = tiny_training_data(192)
    checkpoint = tmp_path / "model.pt.partial"
    first, _ = train_lenets(images, labels, RUNS, SGDConfig(epochs=2), checkpoint=checkpoint)  # killed before the save
    again, history = train_lenets(images, labels, RUNS, SGDConfig(epochs=2), checkpoint=checkpoint)
    assert [h["epoch"] for h in history] == [1, 1, 2, 2]
    _assert_same_model(first, again)


def _damaged_files(good: bytes) -> dict[str, bytes]:
    flipped = bytearray(good)
    flipped[len(good) // 2] ^= 0xFF  # inside the tensor data: torch itself would load it without complaint
    import io
    import os

    class Evil:
        def __reduce__(self):
            return os.system, ("echo should never run",)

    evil = io.BytesIO()
    torch.save({"meta": Evil()}, evil)
    return {"empty": b"", "truncated": good[: len(good) // 3], "flipped": bytes(flipped),
            "not torch": b"\x00garbage" * 50, "foreign pickle": evil.getvalue()}


@pytest.mark.parametrize("damage", ["empty", "truncated", "flipped", "not torch", "foreign pickle"])
def test_an_unreadable_checkpoint_is_discarded_and_named(tmp_path, caplog, damage):
    images, labels = tiny_training_data(192)
    checkpoint = tmp_path / "model.pt.partial"
    straight, _ = train_lenets(images, labels, RUNS, SGDConfig(epochs=2), checkpoint=checkpoint)
    checkpoint.write_bytes(_damaged_files(checkpoint.read_bytes())[damage])
    with caplog.at_level(logging.WARNING, logger="softmax_mi.multirun"):
        model, _ = train_lenets(images, labels, RUNS, SGDConfig(epochs=2), checkpoint=checkpoint)
    _assert_same_model(model, straight)
    assert str(checkpoint) in caplog.text and "training from scratch" in caplog.text
    assert "weights_only=False" not in caplog.text  # never advise loading untrusted pickles
    torch.load(checkpoint, weights_only=True)  # replaced by a good one


# --------------------------------------------------------------------------------------------- WSOL figure


def test_the_figure_takes_the_threshold_of_its_own_run():
    rows = [{"protocol": "maxboxacc", "split": "test", "backbone": "gap_cnn", "adl": False, "seed": seed,
             "metric": "gt_known_loc", "method": method, "threshold": tau}
            for seed, tau in ((3, 0.30), (1, 0.10), (2, 0.20)) for method in ("cam", "infocam")]
    metrics = pd.DataFrame(rows)
    assert localisation.run_thresholds(metrics, backbone="gap_cnn", adl=False, seed=3, methods=["cam"]) == {"cam": 0.3}
    with pytest.raises(ValueError, match="seed7"):
        localisation.run_thresholds(metrics, backbone="gap_cnn", adl=False, seed=7, methods=["cam"])


def test_the_figure_job_draws_one_seed(tmp_path):
    workdir = make_workdir(tmp_path)
    params = yaml.safe_load((workdir / "params.yaml").read_text())
    params["seeds"] = [3, 1, 2]
    (workdir / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    jobs = [job for job in _dry_run_jobs(workdir) if job["entry"] == "softmax_mi.stages.localisation:figures"]
    assert jobs
    for job in jobs:
        assert job["kwargs"]["seed"] == 3
        assert "/seed3/" in job["kwargs"]["inputs"]["checkpoint"]
