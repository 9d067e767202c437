"""Repository hygiene: the licence and the citation file say what pyproject.toml says, and .gitignore leaves a
pipeline run's `git status` showing only what a DVC user commits.

The pipeline's files are faked from dvc.yaml (test_dag_consistency checks that its outs own every file of the
Snakemake DAG), so no pipeline runs here."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

from helpers import REPO

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
# The keys CFF 1.2.0 allows at the top level and in a reference (https://citation-file-format.github.io/1.2.0/)
CFF_KEYS = {"abstract", "authors", "cff-version", "commit", "contact", "date-released", "doi", "identifiers",
            "keywords", "license", "license-url", "message", "preferred-citation", "references", "repository",
            "repository-artifact", "repository-code", "title", "type", "url", "version"}
DOI = re.compile(r"^10\.\d{4,9}(\.\d+)?/\S+$")


def test_license_is_the_mit_licence_pyproject_names():
    text = (REPO / "LICENSE").read_text()
    assert PYPROJECT["license"] in ({"text": "MIT"}, "MIT")
    assert text.startswith("MIT License\n\nCopyright (c) 2026 the softmax-mi authors\n")
    assert 'THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND' in text


def check_person(person: dict, where: str) -> None:
    assert isinstance(person, dict) and (person.get("family-names") or person.get("name")), f"{where}: {person}"
    assert set(person) <= {"family-names", "given-names", "name", "name-particle", "name-suffix", "affiliation",
                           "email", "orcid", "website", "alias"}, f"{where}: {sorted(person)}"


def test_citation_cff_is_cff_1_2_0_citing_the_paper_and_this_version():
    cff = yaml.safe_load((REPO / "CITATION.cff").read_text())
    assert cff["cff-version"] == "1.2.0" and {"authors", "message", "title"} <= set(cff)
    assert set(cff) <= CFF_KEYS, sorted(set(cff) - CFF_KEYS)
    assert cff["type"] == "software" and cff["version"] == PYPROJECT["version"] and cff["license"] == "MIT"
    for person in cff["authors"]:
        check_person(person, "authors")
    paper = cff["preferred-citation"]
    assert {"type", "title", "authors"} <= set(paper) and paper["type"] == "article"
    assert paper["title"].startswith("Rethinking Softmax with Cross-Entropy")
    for person in paper["authors"]:
        check_person(person, "preferred-citation.authors")
    assert [p["family-names"] for p in paper["authors"]] == ["Qin", "Kim", "Gedeon"]
    assert paper["year"] == 2019 and isinstance(paper["month"], int) and DOI.match(paper["doi"])
    assert "1911.10688" in paper["doi"] and paper["url"] == "https://arxiv.org/abs/1911.10688"


def dvc_outs() -> dict[str, bool]:
    """Every out / metric / plot file or folder of dvc.yaml's stages -> whether DVC caches it."""
    outs = {}
    for stage in yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"].values():
        for section in ("outs", "metrics", "plots"):
            for entry in stage.get(section, []):
                path, options = (entry, None) if isinstance(entry, str) else next(iter(entry.items()))
                outs[path] = (options or {}).get("cache", True)
    return outs


def files_of(out: str) -> list[str]:
    """Files a run writes for one out: itself, or (a folder) a nested file in it."""
    return [out] if Path(out).suffix else [f"{out}/cluttered_mnist/images.npy", f"{out}/gaussian/d1/seed0.parquet"]


@pytest.fixture
def run_tree(tmp_path):
    """A git repository holding the project's ignore files and the files a Snakemake-only (then DVC) run leaves."""
    root = tmp_path / "repo"
    for name in (".gitignore", ".dvc/.gitignore"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, root / name)
    env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}  # no user-wide excludes
    subprocess.run(["git", "init", "-q", str(root)], check=True, env=env)
    subprocess.run(["git", "add", ".gitignore", ".dvc/.gitignore"], cwd=root, check=True, env=env)
    leftovers = ["logs/synthetic/gaussian/d1-balanced/estimate.log", ".snakemake/log/run.snakemake.log",
                 ".snakemake/metadata/cmVzdWx0cw", "dvc_plots/index.html", ".dvc/tmp/lock", ".dvc/cache/files/md5/x",
                 "data/raw/fashion-mnist/train-images-idx3-ubyte.gz", "build/lib/x.py", "dist/softmax_mi.whl",
                 "src/softmax_mi/__pycache__/cli.cpython-311.pyc"]
    committed = ["dvc.lock", "data/raw/CUB_200_2011.tgz.dvc"]  # what `dvc repro` / `dvc add` ask to commit
    for path in [f for out in dvc_outs() for f in files_of(out)] + leftovers + committed:
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(b"")
    return root, env, committed


def test_a_run_leaves_only_dvc_lock_and_the_uncached_outs_to_commit(run_tree):
    root, env, committed = run_tree
    status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=root, env=env,
                            capture_output=True, text=True, check=True).stdout.splitlines()
    untracked = {line[3:] for line in status if line.startswith("?? ")}
    expected = {f for out, cached in dvc_outs().items() if not cached for f in files_of(out)} | set(committed)
    assert not untracked - expected, f".gitignore misses run outputs: {sorted(untracked - expected)[:5]}"
    assert not expected - untracked, f".gitignore hides files DVC users commit: {sorted(expected - untracked)[:5]}"


def test_dvc_finds_every_cached_out_ignored_so_it_writes_no_gitignore(run_tree):
    from scmrepo.git import Git  # what `dvc repro` asks before adding an entry (scmrepo's Git.ignore)

    root, _, _ = run_tree
    scm = Git(str(root))
    try:
        ignored = {out: scm.is_ignored(str(root / out)) for out in dvc_outs()}
        assert ignored == dvc_outs(), "a cached out DVC sees as not ignored (or an uncached one it sees as ignored)"
        assert not scm.is_ignored(str(root / "data/raw/CUB_200_2011.tgz"))  # `dvc add` ignores it beside itself
    finally:
        scm.close()
