"""Rule files hold only rules: none reads another rule file's globals (functions, constants, imported names), only
what common.smk defines before them, softmax_mi modules and Snakemake's own `rules.<name>` (so the include order
of the Snakefile carries no hidden dependency)."""

from __future__ import annotations

import io
import re
import tokenize

from helpers import REPO

RULES = REPO / "workflow" / "rules"
DEFINITION = re.compile(r"^(?:def (\w+)|(\w+)\s*=|from .* import .*\bas (\w+)\s*$|from .* import ([\w, ]+)$)", re.M)


def defined(text: str) -> set[str]:
    names = set()
    for groups in DEFINITION.findall(text):
        for group in groups:
            names |= {name.strip() for name in group.split(",") if name.strip()}
    return names


def used(text: str) -> set[str]:
    """Names in the code (not in strings or comments)."""
    tokens = tokenize.generate_tokens(io.StringIO(text).readline)
    return {token.string for token in tokens if token.type == tokenize.NAME}


def test_rule_files_read_no_other_rule_files_globals():
    files = {path.name: path.read_text() for path in sorted(RULES.glob("*.smk")) if path.name != "common.smk"}
    assert {"synthetic.smk", "localisation.smk", "report.smk"} <= set(files)
    shared = defined((RULES / "common.smk").read_text())
    assert {"stage_params", "DATASET_RUN", "DATASET_FILES", "grid", "registry"} <= shared
    problems = []
    for name, text in files.items():
        for other, other_text in files.items():
            borrowed = sorted((defined(other_text) - shared - defined(text)) & used(text)) if other != name else []
            if borrowed:
                problems.append(f"{name} uses {', '.join(borrowed)} from {other}")
    assert not problems, problems


def test_the_check_sees_a_borrowed_global():
    lender, borrower = "def cub_cls_leaves(kind):\n    return []\n", "x = lambda wc: cub_cls_leaves('metrics')\n"
    assert (defined(lender) - defined(borrower)) & used(borrower) == {"cub_cls_leaves"}
