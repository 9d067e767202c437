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
