"""Shared fixtures. The end-to-end tests run the real DAG once, on the `smoke` parameter set, and share that run."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import make_workdir, snakemake


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory) -> Path:
    """The whole default DAG (`snakemake --cores 2`) run once on the smoke parameters; returns its folder."""
    workdir = make_workdir(tmp_path_factory.mktemp("smoke"))
    snakemake(workdir, "--cores", "2")
    return workdir


@pytest.fixture(scope="module")
def resnet18():
    """A torchvision ResNet-18 (random weights, seed 0, 7 classes, eval mode) for the CAM tests."""
    import torch
    import torchvision

    torch.manual_seed(0)
    return torchvision.models.resnet18(weights=None, num_classes=7).eval()


@pytest.fixture(scope="module")
def images():
    """Four random 96×96 RGB images (seed 1) for the CAM tests."""
    import torch

    return torch.randn(4, 3, 96, 96, generator=torch.Generator().manual_seed(1))
