"""Helpers for the end-to-end tests: run the real pipeline in a copy of its files under a temporary folder."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from softmax_mi.params import load_params

REPO = Path(__file__).resolve().parents[1]
PIPELINE_FILES = ["dvc.yaml", "params.yaml", "params", "workflow", "src", "requirements-bmi.lock"]  # src and
# requirements-bmi.lock: DVC hashes them as dependencies (the benchmark stage's bmi rows depend on the pinned env)
BIN = Path(sys.executable).parent


def pipeline_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"  # snakemake / dvc of this venv, also inside dvc's cmd
    env["DVC_NO_ANALYTICS"] = "1"
    env["SOFTMAX_MI_QUIET"] = "1"
    return env


def make_workdir(target: Path, overlay: str | None = "params/smoke.yaml") -> Path:
    """Copy the pipeline into ``target``; with an overlay, params.yaml becomes the merged parameter set."""
    target.mkdir(parents=True, exist_ok=True)
    for name in PIPELINE_FILES:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, target / name, dirs_exist_ok=True)
        else:
            shutil.copy2(source, target / name)
    if overlay:
        merged = load_params(REPO / "params.yaml", REPO / overlay)
        (target / "params.yaml").write_text(yaml.safe_dump(merged, sort_keys=False))
    return target


def run(command: list[str], cwd: Path, check: bool = True, timeout: int = 2400) -> subprocess.CompletedProcess:
    result = subprocess.run(command, cwd=cwd, env=pipeline_env(), capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def snakemake(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return run([str(BIN / "snakemake"), *args], cwd=cwd, check=check)


def tiny_training_data(n: int = 320, seed: int = 0):
    """Random uint8 28×28 "images" and labels (every class at least 3 times) for fast training tests."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 28, 28), dtype=torch.uint8, generator=generator)
    labels = torch.cat([torch.arange(10).repeat(3), torch.randint(0, 10, (n - 30,), generator=generator)])
    return images, labels


def run_spec(loss: str, init_seed: int, order_seed: int, *, tau: float | None = None, seed: int = 0, **training):
    """A :class:`~softmax_mi.multirun.RunSpec` of a test run (``tau`` counts only for logit_adjusted, default 1)."""
    from softmax_mi.classification import RunId
    from softmax_mi.multirun import RunSpec

    tau = (1.0 if tau is None else tau) if loss == "logit_adjusted" else None
    return RunSpec(RunId("test", "test", loss, tau, seed), init_seed, order_seed, **training)


def train_lenets(images, labels, runs, config, checkpoint=None):
    """The MNIST job's training (stacked LeNets, uint8 images normalised per batch): (model, history)."""
    from softmax_mi.models.lenet import normalise
    from softmax_mi.multirun import init_models, train_stacked

    model = init_models(runs)
    history = train_stacked(model, images, labels, runs, config, n_classes=10, transform=normalise,
                            checkpoint=checkpoint)
    return model, history
