"""docs/api.md is generated from the docstrings and in step with them; every public name is in it exactly once."""

from __future__ import annotations

import difflib
from collections import Counter
from pathlib import Path

import pytest

import softmax_mi
from softmax_mi import apidoc

API_MD = Path(__file__).resolve().parents[1] / "docs" / "api.md"


def test_every_public_name_is_placed_once():
    placed = Counter(apidoc.placed_names())
    assert not [name for name, count in placed.items() if count > 1], "a name is in two sections"
    assert set(placed) == set(softmax_mi.__all__), (
        f"put {sorted(set(softmax_mi.__all__) - set(placed))} in a section of softmax_mi.apidoc.SECTIONS; "
        f"{sorted(set(placed) - set(softmax_mi.__all__))} are not public names")


def test_every_public_name_and_method_has_a_docstring():
    text = apidoc.render()
    assert "(no docstring)" not in text, "a public name or method has no docstring"


def test_the_reference_names_only_registered_commands():
    from softmax_mi.commands import MODULES

    assert set(apidoc.COMMANDS) == {name.replace("_", "-") for name in MODULES}


def test_docs_api_md_is_up_to_date():
    expected = apidoc.render()
    current = API_MD.read_text() if API_MD.exists() else ""
    if current != expected:
        diff = "\n".join(difflib.unified_diff(current.splitlines(), expected.splitlines(), "docs/api.md", "generated",
                                              lineterm="", n=1))
        pytest.fail("docs/api.md is out of date; regenerate it with\n  python -m softmax_mi.apidoc --write docs/api.md\n"
                    + diff[:4000])


def test_check_mode_names_the_fix(tmp_path, capsys):
    stale = tmp_path / "api.md"
    stale.write_text("old\n")
    assert apidoc.main(["--check", str(stale)]) == 2
    assert "python -m softmax_mi.apidoc --write" in capsys.readouterr().err
    assert apidoc.main(["--write", str(stale)]) == 0 and apidoc.main(["--check", str(stale)]) == 0
