"""Load, merge and validate ``params.yaml`` (the single source of every knob).

The pipeline reads ``params.yaml`` and optional named overlays from ``params/`` merged on top of it
(``snakemake --configfile params/smoke.yaml``). Validation runs when the DAG is parsed, so a bad value
fails before any job starts, with a message that names the key and the file.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
SCHEMA_PATH = REPO_ROOT / "workflow" / "schemas" / "params.schema.yaml"


class ParamsError(ValueError):
    """A parameter file does not match the schema."""


def deep_merge(base: Mapping[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``base`` with ``overlay`` merged in recursively (overlay wins; lists are replaced whole)."""
    merged = copy.deepcopy(dict(base))
    for key, value in overlay.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def read_yaml(path: str | Path) -> dict[str, Any]:
    with open(path) as handle:
        loaded = yaml.safe_load(handle)
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ParamsError(f"{path}: expected a mapping at the top level, found {type(loaded).__name__}")
    return loaded


def load_params(*paths: str | Path) -> dict[str, Any]:
    """Merge the given YAML files in order (later ones win) and validate the result."""
    merged: dict[str, Any] = {}
    for path in paths:
        merged = deep_merge(merged, read_yaml(path))
    validate(merged, source=" + ".join(str(p) for p in paths))
    return merged


def _key_path(error: jsonschema.ValidationError) -> str:
    parts = [str(p) for p in error.absolute_path]
    if error.validator == "additionalProperties":
        # jsonschema reports the parent; name the offending key itself.
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        parts.append(extra[0] if extra else "?")
    return ".".join(parts) or "<top level>"


def _fix_hint(error: jsonschema.ValidationError) -> str:
    if error.validator == "additionalProperties":
        allowed = ", ".join(sorted(error.schema.get("properties", {})))
        return f"remove it or use one of: {allowed}"
    if error.validator == "enum":
        return "use one of: " + ", ".join(map(str, error.validator_value))
    if error.validator == "type":
        return f"give a value of type {error.validator_value}"
    description = error.schema.get("description")
    return description or f"see {SCHEMA_PATH.relative_to(REPO_ROOT)}"


def validate(params: Mapping[str, Any], *, source: str = "params.yaml") -> None:
    """Raise :class:`ParamsError` naming every offending key, its value and how to fix it."""
    with open(SCHEMA_PATH) as handle:
        schema = yaml.safe_load(handle)
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(dict(params)), key=lambda e: list(map(str, e.absolute_path)))
    # cross-field checks only on a structurally valid mapping
    problems = [f"{_key_path(error)}: {error.message} (fix: {_fix_hint(error)})" for error in errors] or \
        _seed_count_problems(params)
    if problems:
        lines = [f"{source}: invalid parameters ({len(problems)} problem{'s' * (len(problems) > 1)}):"]
        lines += [f"  - {problem}" for problem in problems]
        raise ParamsError("\n".join(lines))


def _seed_count_problems(params: Mapping[str, Any]) -> list[str]:
    """``n_seeds`` takes the first n of ``seeds``: asking for more than there are would silently run fewer."""
    classification, available = params.get("classification", {}), len(params.get("seeds", []))
    problems = []
    for section in ("standard", "cub"):
        wanted = classification.get(section, {}).get("n_seeds", 0)
        if wanted > available:
            problems.append(f"classification.{section}.n_seeds: {wanted} is more than the {available} listed in "
                            f"`seeds` (fix: lower it, or list more seeds)")
    return problems


def wsol_settings(section: Mapping[str, Any], dataset: str, backbone: str | None = None) -> dict[str, Any]:
    """The ``localisation`` settings of one dataset (and backbone): ``overrides[dataset]`` then
    ``overrides[dataset/backbone]`` merged over the section; the result has no ``overrides`` key."""
    overrides = section.get("overrides") or {}
    settings = {key: value for key, value in section.items() if key != "overrides"}
    for key in (dataset, f"{dataset}/{backbone}" if backbone else None):
        if key in overrides:
            settings = deep_merge(settings, overrides[key])
    return settings


def params_hash(params: Mapping[str, Any]) -> str:
    """Short, stable hash of a parameter mapping (recorded beside every result row)."""
    canonical = json.dumps(params, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def main(argv: list[str] | None = None) -> None:
    """``python -m softmax_mi.params FILE [OVERLAY ...]``: print the merged, validated parameters as YAML."""
    import sys

    paths = sys.argv[1:] if argv is None else argv
    if not paths:
        raise SystemExit("usage: python -m softmax_mi.params params.yaml [params/smoke.yaml ...]")
    try:
        merged = load_params(*paths)
    except ParamsError as error:
        raise SystemExit(str(error)) from None
    sys.stdout.write(yaml.safe_dump(merged, sort_keys=False))


if __name__ == "__main__":
    main()
