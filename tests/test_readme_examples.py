"""Every example of the README's "Use it on your own model" section runs as written, in order, in one folder.

```python blocks run with exec (each in a fresh namespace); ```bash blocks run each `softmax-mi …` line through the
CLI's main (in-process) and must exit 0. A block that uses the reader's own data (``x_train``) is shown, not run.
Files a block writes (maps.npz, boxes.csv, …) are there for the blocks after it.
"""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
SECTION = "## Use it on your own model"


def section_blocks() -> list[tuple[str, str]]:
    text = README.read_text()
    start = text.index(SECTION)
    end = text.find("\n## ", start + len(SECTION))
    return re.findall(r"```(python|bash)\n(.*?)```", text[start:end], flags=re.S)


BLOCKS = [(kind, code) for kind, code in section_blocks() if "x_train" not in code]


def commands(code: str) -> list[list[str]]:
    """The `softmax-mi …` commands of a bash block (continuation lines joined, comments dropped)."""
    joined = re.sub(r"\\\n\s*", " ", code)
    lines = [line.split(" #")[0].strip() for line in joined.splitlines()]
    return [shlex.split(line)[1:] for line in lines if line.startswith("softmax-mi ")]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("readme")


def test_the_section_has_examples_of_every_kind():
    kinds = {kind for kind, _ in BLOCKS}
    assert kinds == {"python", "bash"}, f"{SECTION!r} should have runnable python and bash blocks, has {kinds}"


@pytest.mark.parametrize("index", range(len(BLOCKS)), ids=lambda i: f"{BLOCKS[i][0]}-{i}")
def test_readme_example_runs(index, folder, capsys, monkeypatch):
    from softmax_mi.cli import main

    kind, code = BLOCKS[index]
    monkeypatch.chdir(folder)
    monkeypatch.setenv("SOFTMAX_MI_QUIET", "1")
    if kind == "python":
        exec(compile(code, f"README.md block {index}", "exec"), {"__name__": "__readme__"})
        return
    for argv in commands(code):
        assert main(argv) == 0, f"softmax-mi {' '.join(argv)} failed:\n{capsys.readouterr().err}"


# ------------------------------------------------------------------------- numbers the section quotes from a file
COVERAGE_CSV = README.parent / "docs" / "mi_coverage.csv"


def coverage_table(csv: Path) -> str:
    """The README's coverage table from ``bench/mi_coverage.py``'s output (rows of the plain CLT interval)."""
    import pandas as pd

    rows = pd.read_csv(csv)
    rows = rows[rows.interval == "clt"]
    lines = ["| task | read-out | seeds | 8 epochs | 40 epochs |", "|---|---|---|---|---|"]
    for (task, readout), group in rows.groupby(["task", "readout"], sort=False):
        cells = []
        for epochs in (8, 40):
            row = group[group.epochs == epochs].iloc[0]
            cells.append(f"{100 * row.coverage:.0f} % ({100 * row.coverage_model:.0f} %; gap {row.mean_gap:+.3f})")
        lines.append(f"| {task} | {readout} | {int(group.seeds.iloc[0])} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines)


def test_the_coverage_table_is_the_one_in_docs_mi_coverage_csv():
    text = README.read_text()
    start = text.index("<!-- generated from docs/mi_coverage.csv")
    block = text[text.index("\n", start) + 1:text.index("<!-- end of generated table -->")].strip()
    expected = coverage_table(COVERAGE_CSV)
    assert block == expected, f"README's coverage table is not docs/mi_coverage.csv's; paste:\n{expected}"
