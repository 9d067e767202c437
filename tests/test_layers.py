"""The three layers import downwards only: the library never imports a stage, the report, the CLI or the bridge;
stages never import the CLI; nothing imports upward by a lazy import inside a function either (every import in a
module's source counts)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "softmax_mi"


def module_name(path: Path, src: Path = SRC) -> str:
    parts = path.relative_to(src.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, src: Path = SRC) -> set[str]:
    """Every softmax_mi module ``path`` imports (module level and inside functions; relative imports resolved)."""
    found = set()
    name = module_name(path, src)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            found |= {base} | {f"{base}.{alias.name}" for alias in node.names}
    return {name for name in found if name.startswith("softmax_mi")}


def layer(name: str) -> int:
    """0: library, 1: stages and the bridge, 2: report, 3: catalogue, CLI, its commands and the API reference."""
    if name.startswith(("softmax_mi.cli", "softmax_mi.catalogue", "softmax_mi.commands", "softmax_mi.apidoc")):
        return 3
    if name.startswith("softmax_mi.report"):
        return 2
    if name == "softmax_mi.stage" or name.startswith("softmax_mi.stages"):
        return 1
    return 0


MODULES = sorted(SRC.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: module_name(p))
def test_no_module_imports_a_higher_layer(path):
    own = layer(module_name(path))
    upward = sorted(name for name in imports(path) if layer(name) > own)
    assert not upward, f"{module_name(path)} (layer {own}) imports {upward}: move the shared code down into the library"


def test_the_scan_sees_lazy_and_relative_imports(tmp_path):
    assert "softmax_mi.estimators" in imports(SRC / "stages" / "synthetic.py")  # inside estimate_one
    package = tmp_path / "softmax_mi"
    (package / "stages").mkdir(parents=True)
    upward = package / "summaries.py"
    upward.write_text("def f():\n    from .stages import synthetic\n")
    assert layer(module_name(upward, package)) == 0
    assert {name for name in imports(upward, package) if layer(name) > 0} == {"softmax_mi.stages", "softmax_mi.stages.synthetic"}
