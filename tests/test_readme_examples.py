"""Every ```python block of the README's "Use the library without the pipeline" section that names no undefined
user data runs as written (the first block uses the reader's own x_train/y_train and is shown, not run)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
SECTION = "### Use the library without the pipeline"


def section_blocks() -> list[str]:
    text = README.read_text()
    start = text.index(SECTION)
    end = text.find("\n## ", start)
    return re.findall(r"```python\n(.*?)```", text[start:end], flags=re.S)


RUNNABLE = [block for block in section_blocks() if "x_train" not in block]


def test_the_section_has_a_runnable_example():
    assert RUNNABLE, f"no self-contained python block under {SECTION!r}"


@pytest.mark.parametrize("block", RUNNABLE, ids=lambda b: b.splitlines()[1][:40])
def test_readme_example_runs(block, capsys):
    exec(compile(block, "README.md", "exec"), {})
    printed = capsys.readouterr().out
    assert re.search(r"nats \[\S+, \S+\] \(95 % CI, n=620\)", printed), printed
