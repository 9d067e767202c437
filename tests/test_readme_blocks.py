"""The README's result blocks are generated (`softmax-mi readme`, softmax_mi.report.readme): on the smoke run's
results every block of a copy of README.md is filled and its figures copied, `--check` then passes; a stale block
makes `--check` exit 1 naming it; an unknown block name is an error naming it and the known ones."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from softmax_mi.cli import main
from softmax_mi.report.readme import BLOCKS, FIGURES, ReadmeError, find_blocks

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.fixture(scope="module")
def filled(smoke_run, tmp_path_factory) -> Path:
    """A copy of README.md with every block written from the smoke results (and its figures beside it)."""
    folder = tmp_path_factory.mktemp("readme-blocks")
    shutil.copy(README, folder / "README.md")
    assert main(["readme", "--results", str(smoke_run / "results"), "--write", str(folder / "README.md")]) == 0
    return folder


def test_the_readme_uses_every_block_once_in_a_well_formed_pair():
    names = [block.name for block in find_blocks(README.read_text(encoding="utf-8"))]
    assert sorted(names) == sorted(BLOCKS), f"README.md blocks {names}; the registry has {list(BLOCKS)}"


def test_write_fills_every_block_and_copies_the_figures(filled, smoke_run, capsys):
    text = (filled / "README.md").read_text(encoding="utf-8")
    blocks = find_blocks(text)
    assert {block.name for block in blocks} == set(BLOCKS)
    for block in blocks:
        body = text[block.start:block.stop].strip()
        assert body and "nan" not in body.split(), f"block {block.name!r} is empty or has NaN:\n{body}"
    assert "| C1 |" in text and "seeds, nats" in text
    for target in FIGURES:
        assert (filled / target).is_file(), f"{target} was not copied"
    results = str(smoke_run / "results")
    assert main(["readme", "--results", results, "--check", str(filled / "README.md")]) == 0, capsys.readouterr().err


def test_check_names_a_stale_block_and_a_stale_figure(filled, smoke_run, tmp_path, capsys):
    stale = tmp_path / "README.md"
    shutil.copytree(filled / "docs", tmp_path / "docs")
    text = (filled / "README.md").read_text(encoding="utf-8")
    block = next(b for b in find_blocks(text) if b.name == "part3-table")
    stale.write_text(text[:block.start] + "\n| CAM | 80.2 |\n\n" + text[block.stop:], encoding="utf-8")
    (tmp_path / "docs/figures/heatmaps.png").write_bytes(b"old")
    status = main(["readme", "--results", str(smoke_run / "results"), "--check", str(stale)])
    err = capsys.readouterr().err
    assert status == 1
    assert "block 'part3-table' is stale" in err and "80.2" in err and "heatmaps.png" in err
    assert "part1-table" not in err and "softmax-mi readme" in err  # only the stale ones, and the fix


def test_an_unknown_block_is_an_error_naming_it_and_the_known_ones(smoke_run, tmp_path, capsys):
    readme = tmp_path / "README.md"
    readme.write_text("# x\n<!-- BEGIN generated: part9-table -->\n<!-- END generated: part9-table -->\n")
    assert main(["readme", "--results", str(smoke_run / "results"), "--write", str(readme), "--no-figures"]) == 2
    err = capsys.readouterr().err
    assert "README.md:2: unknown generated block 'part9-table'" in err and ", ".join(BLOCKS) in err


@pytest.mark.parametrize("text, message", [
    ("<!-- BEGIN generated: verdicts -->\n", "has no <!-- END generated: verdicts -->"),
    ("<!-- END generated: verdicts -->\n", "without its BEGIN marker"),
    ("<!-- BEGIN generated: verdicts -->\n<!-- END generated: verdicts -->\n" * 2, "appears twice"),
])
def test_unpaired_markers_are_errors(text, message):
    with pytest.raises(ReadmeError, match=message):
        find_blocks(text)


LINK = re.compile(r"\]\(([^)\s]+)\)")


@pytest.mark.parametrize("document", ["README.md", "bench/README.md", "docs/changes.md", "docs/other-runs.md",
                                      "docs/user-data.md"])
def test_every_link_of_the_guide_resolves(document):
    """README.md and the pages it sends readers to: each relative link names a file of the repository, and each
    #anchor a heading of its target (GitHub's anchors)."""
    from test_docs_references import anchors

    source = README.parent / document
    broken = []
    for target in LINK.findall(source.read_text(encoding="utf-8")):
        if target.startswith(("http://", "https://")):
            continue
        path, _, anchor = target.partition("#")
        file = (source.parent / path).resolve() if path else source
        if not file.is_file():
            broken.append(f"{target}: no file {file}")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file.read_text(encoding="utf-8")):
            broken.append(f"{target}: no heading with anchor #{anchor} in {file.name}")
    assert not broken, f"{document} has broken links:\n" + "\n".join(broken)
