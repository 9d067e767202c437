"""dvc.yaml's code deps cannot drift: each DVC stage lists every rule file and every module of src/softmax_mi its
Snakemake target runs, computed from the code.

A stage's rules are those whose outputs its `outs` own (from `snakemake --summary all`, with the user datasets
present, so that every rule is in the DAG); its rule files are the files defining them, plus the Snakefile and
common.smk. Its modules are the transitive import closure (every `import` anywhere in a module, function bodies
included: stage modules import the torch-dependent library inside their functions) of the modules those rule files
import, plus the bridge and the grid (`softmax_mi.stage`, `params`, `grid`, `registry`). A failure names the module
and the import chain that reaches it: add the file (or a folder above it) to the stage's deps in dvc.yaml.
"""

from __future__ import annotations

import ast
import re
from collections import deque
from pathlib import Path, PurePosixPath

import pytest
import yaml

from helpers import REPO, make_workdir, snakemake

SRC = REPO / "src"
PACKAGE = "softmax_mi"
ALWAYS = ("softmax_mi.stage", "softmax_mi.params", "softmax_mi.grid", "softmax_mi.registry")
ALWAYS_RULE_FILES = ("workflow/Snakefile", "workflow/rules/common.smk")
SMK_IMPORT = re.compile(
    r"^\s*(?:from\s+(softmax_mi[\w.]*)\s+import\s+([\w\s,]+?)\s*(?:#.*)?$|import\s+(softmax_mi[\w.]*))", re.M
)


def module_file(name: str) -> Path | None:
    base = SRC.joinpath(*name.split("."))
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    return None


def is_code(path: Path) -> bool:
    """A package's __init__.py holding only its docstring is no code (it cannot change a result)."""
    body = ast.parse(path.read_text()).body
    return not (path.name == "__init__.py" and all(
        isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) for node in body))


def lazy_exports(path: Path) -> dict[str, str]:
    """A package's lazy re-exports (`_LOCATIONS = {name: submodule}`, resolved by its module __getattr__)."""
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "_LOCATIONS" for t in node.targets):
            return ast.literal_eval(node.value)
    return {}


def resolve(base: str, names: list[str]) -> set[str]:
    """The package modules that `from base import names` loads: base and its parents, each name that is a
    submodule (or a lazy re-export of one)."""
    found = {".".join(base.split(".")[:i]) for i in range(1, base.count(".") + 2)}
    package = module_file(base)
    lazy = lazy_exports(package) if package is not None and package.name == "__init__.py" else {}
    for name in names:
        if module_file(f"{base}.{name}") is not None:
            found.add(f"{base}.{name}")
        elif name in lazy:
            found.add(f"{base}.{lazy[name]}")
    return {name for name in found if name.startswith(PACKAGE) and module_file(name) is not None}


def imports_of(name: str) -> set[str]:
    """Every softmax_mi module that importing ``name`` can load, anywhere in its body."""
    path = module_file(name)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found |= resolve(alias.name, [])
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            found |= resolve(base, [alias.name for alias in node.names])
    return found


def smk_imports(path: Path) -> set[str]:
    found: set[str] = set()
    for base, names, plain in SMK_IMPORT.findall(path.read_text()):
        if plain:
            found |= resolve(plain, [])
        else:
            found |= resolve(base, [n.split(" as ")[0].strip() for n in names.split(",") if n.strip()])
    return found


def closure(roots: set[str]) -> dict[str, str | None]:
    """module -> the module that imported it (None: a root), for every module reachable from ``roots``."""
    via: dict[str, str | None] = dict.fromkeys(roots)
    queue = deque(sorted(roots))
    while queue:
        name = queue.popleft()
        for found in sorted(imports_of(name)):
            if found not in via:
                via[found] = name
                queue.append(found)
    return via


def chain(via: dict[str, str | None], name: str) -> str:
    steps = [name]
    while via[steps[-1]] is not None:
        steps.append(via[steps[-1]])
    return " <- ".join(steps)


def relative(path: Path) -> str:
    return path.relative_to(REPO).as_posix()


def covered(path: str, deps: list[str]) -> bool:
    return any(path == dep or PurePosixPath(dep) in PurePosixPath(path).parents for dep in deps)


def rule_files() -> dict[str, str]:
    """rule name -> the file that defines it."""
    files = [REPO / "workflow" / "Snakefile", *sorted((REPO / "workflow" / "rules").glob("*.smk"))]
    return {rule: relative(path) for path in files for rule in re.findall(r"^rule (\w+):", path.read_text(), re.M)}


@pytest.fixture(scope="module")
def stages():
    return yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]


@pytest.fixture(scope="module")
def rules_of_outputs(tmp_path_factory):
    """output file -> rule, for `snakemake all` with both user datasets present (every rule in the DAG)."""
    workdir = make_workdir(tmp_path_factory.mktemp("dvc_deps"), overlay=None)
    for folder in ("CUB_200_2011", "tiny-imagenet-200"):
        (workdir / "data" / "raw" / folder).mkdir(parents=True, exist_ok=True)
    lines = snakemake(workdir, "--summary", "all").stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("output_file"))
    return dict(line.split("\t")[:3:2] for line in lines[header + 1:] if line.strip())


def stage_code(stage: dict, rules_of_outputs: dict[str, str]) -> tuple[set[str], dict[str, str | None]]:
    """The rule files and the module closure (module -> importer) of one DVC stage."""
    outs = [next(iter(entry)) if isinstance(entry, dict) else entry
            for section in ("outs", "metrics", "plots") for entry in stage.get(section, [])]
    defined_in = rule_files()
    files = {defined_in[rule] for path, rule in rules_of_outputs.items() if covered(path, outs)}
    files |= set(ALWAYS_RULE_FILES)
    roots = set(ALWAYS).union(*(smk_imports(REPO / file) for file in files))
    return files, closure(roots)


def test_closure_follows_imports_in_function_bodies_and_lazy_exports():
    via = closure({"softmax_mi.stages.synthetic"})
    assert "softmax_mi.models.mlp" in via  # estimators.variational: `from softmax_mi.models import MLP` (lazy)
    assert "softmax_mi.estimators.knn" in via
    assert "softmax_mi.stages.classification" not in via
    assert chain(via, "softmax_mi.models.mlp").endswith("softmax_mi.stages.synthetic")


def test_every_dvc_stage_lists_its_rule_files_and_modules(stages, rules_of_outputs):
    problems = []
    for name, stage in stages.items():
        deps = [str(dep) for dep in stage.get("deps", [])]
        files, via = stage_code(stage, rules_of_outputs)
        for file in sorted(files):
            if not covered(file, deps):
                problems.append(f"dvc stage {name!r} misses the rule file {file}")
        needed = set()
        for module in sorted(via):
            path = module_file(module)
            if not is_code(path):
                continue
            needed.add(relative(path))
            if not covered(relative(path), deps):
                problems.append(f"dvc stage {name!r} misses {relative(path)} (imported: {chain(via, module)})")
        for dep in deps:
            if dep.startswith("src/") and not any(covered(path, [dep]) for path in needed):
                problems.append(f"dvc stage {name!r} lists {dep}, which its code no longer imports (remove it)")
    assert not problems, "fix dvc.yaml:\n" + "\n".join(problems)
