"""What the Snakefile imports at parse time stays light: no torch, no matplotlib.

Every snakemake call (a dry run, `--summary`, each cluster job re-parsing the Snakefile) imports the rule files'
modules; torch alone costs ~2–3 s of it. So the grid, the registry, the parameters and every stage module (and any
other module a rule file imports) import torch or matplotlib only inside the functions that need them. One case
per module, each in a fresh interpreter, so that a failure names every offender."""

from __future__ import annotations

import subprocess
import sys

import pytest

from helpers import REPO
from test_dvc_deps import smk_imports

HEAVY = ("torch", "matplotlib")


def parse_time_modules() -> list[str]:
    stages = sorted(f"softmax_mi.stages.{path.stem}" for path in (REPO / "src" / "softmax_mi" / "stages").glob("*.py")
                    if path.stem != "__init__")
    rule_files = [REPO / "workflow" / "Snakefile", *sorted((REPO / "workflow" / "rules").glob("*.smk"))]
    imported = set().union(*(smk_imports(path) for path in rule_files))
    listed = ["softmax_mi.grid", "softmax_mi.registry", "softmax_mi.params", "softmax_mi.stage", *stages]
    return listed + sorted(imported - set(listed))


def test_the_list_holds_the_stage_modules_and_what_the_rules_import():
    modules = parse_time_modules()
    assert {"softmax_mi.stages.synthetic", "softmax_mi.stages.localisation", "softmax_mi.report"} <= set(modules)


@pytest.mark.parametrize("module", parse_time_modules())
def test_module_imports_neither_torch_nor_matplotlib(module):
    code = (f"import sys, {module}; "
            f"print(' '.join(name for name in {HEAVY!r} if name in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    heavy = result.stdout.split()
    assert not heavy, (f"importing {module} imports {', '.join(heavy)}: import it inside the function that needs it "
                       "(`# torch: imported by the job, not at parse time`)")
