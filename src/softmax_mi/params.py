"""Load, merge and validate ``params.yaml`` (the single source of every knob).

The pipeline reads ``params.yaml`` and optional named overlays from ``params/`` merged on top of it
(``snakemake --configfile params/smoke.yaml``), then ``--config KEY=VALUE`` overrides. Every file is read strictly
(a YAML syntax error or a key given twice fails with file:line:column) and validation runs when the DAG is parsed,
so a bad value fails before any job starts, with a message that names the file, the key, the value and the fix.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import jsonschema
import yaml

SCHEMA_RELATIVE = Path("workflow") / "schemas" / "params.schema.yaml"
# The schema belongs to the workflow, not the library: the checkout this module sits in (an editable install), else
# the working directory (the pipeline run from a checkout with softmax-mi installed from a wheel).
_SOURCE_ROOT = Path(__file__).resolve().parents[2]
REPO_ROOT = _SOURCE_ROOT if (_SOURCE_ROOT / SCHEMA_RELATIVE).is_file() else Path.cwd()
SCHEMA_PATH = REPO_ROOT / SCHEMA_RELATIVE
MERGE_TAG = "tag:yaml.org,2002:merge"


class ParamsError(ValueError):
    """A parameter file is not valid YAML or does not match the schema."""


def deep_merge(base: Mapping[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``base`` with ``overlay`` merged in recursively (overlay wins; lists are replaced whole)."""
    merged = copy.deepcopy(dict(base))
    for key, value in overlay.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _dotted(path: Sequence[Any]) -> str:
    return ".".join(map(str, path)) or "<top level>"


def _syntax_error(error: yaml.YAMLError, source: str) -> ParamsError:
    """file:line:column, what is wrong and where the construct it belongs to opened."""
    mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
    if mark and source.startswith("--config"):  # one line: the column within the value
        where = f"{source}, column {mark.column + 1} of the value"
    else:
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
    problem = getattr(error, "problem", None) or str(error)
    context, opened = getattr(error, "context", None), getattr(error, "context_mark", None)
    if context and opened:
        problem += f" ({context}, opened at line {opened.line + 1}, column {opened.column + 1})"
    hint = "indent with spaces, never tabs" if "'\\t'" in problem else \
        "check the brackets, quotes, colons and indentation there and on the line above"
    return ParamsError(f"{where}: not valid YAML: {problem} (fix: {hint})")


def _refuse_duplicate_keys(loader: yaml.SafeLoader, node: yaml.Node, source: str, path: tuple = (),
                           seen_nodes: set[int] | None = None) -> None:
    """Raise if a mapping, at any depth, gives a key twice (YAML loaders silently keep the last)."""
    seen_nodes = set() if seen_nodes is None else seen_nodes
    if id(node) in seen_nodes:  # an alias: its node was checked where it was anchored
        return
    seen_nodes.add(id(node))
    if isinstance(node, yaml.MappingNode):
        lines: dict[Any, int] = {}
        for key_node, value_node in node.value:
            if key_node.tag == MERGE_TAG:
                continue
            key = loader.construct_object(key_node, deep=True) if isinstance(key_node, yaml.ScalarNode) else \
                f"<{key_node.id} at line {key_node.start_mark.line + 1}>"
            line = key_node.start_mark.line + 1
            if key in lines:
                raise ParamsError(f"{source}:{line}: key {_dotted(path + (key,))} is given twice, on line {lines[key]} "
                                  f"and line {line} (fix: keep one; YAML would silently use the last)")
            lines[key] = line
            _refuse_duplicate_keys(loader, value_node, source, path + (key,), seen_nodes)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _refuse_duplicate_keys(loader, item, source, path + (index,), seen_nodes)


def parse_yaml(text: str, source: str) -> Any:
    """Parse one YAML document strictly: a syntax error or a duplicate key raises :class:`ParamsError`
    naming ``source`` (a file name) with the line and column."""
    loader = yaml.SafeLoader(text)
    loader.name = source
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _refuse_duplicate_keys(loader, node, source)
        return loader.construct_document(node)
    except yaml.YAMLError as error:
        raise _syntax_error(error, source) from None
    finally:
        loader.dispose()


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read one parameter file strictly (see :func:`parse_yaml`); it must hold a mapping."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ParamsError(f"{path}: cannot read the parameter file ({error})") from None
    loaded = parse_yaml(text, str(path))
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ParamsError(f"{path}: expected a mapping at the top level, found {type(loaded).__name__}")
    return loaded


def strict_configfile(path: str | Path) -> str | Path:
    """``configfile: strict_configfile("params.yaml")``: read ``path`` strictly first, so a syntax error or a
    duplicate key fails with file:line:column instead of Snakemake's "not valid JSON or YAML"; returns ``path``."""
    from snakemake.exceptions import WorkflowError

    if Path(path).exists():  # a missing file: Snakemake's own message (or the --configfile overlays) apply
        try:
            read_yaml(path)
        except ParamsError as error:
            raise WorkflowError(str(error)) from None
    return path


def parse_overrides(entries: Sequence[str]) -> dict[str, Any]:
    """``KEY=VALUE`` overrides (Snakemake's ``--config``), each VALUE read as YAML like a parameter file, so
    ``seeds=[0,1]`` is a list of integers and ``classification={training: {epochs: 2}}`` a mapping (merged into
    the section by :func:`load_params`, not replacing it)."""
    overrides: dict[str, Any] = {}
    for entry in entries:
        key, sep, value = entry.partition("=")
        if not sep or not key:
            raise ParamsError(f"--config {entry!r}: expected KEY=VALUE, e.g. --config 'seeds=[0, 1]'")
        parsed = parse_yaml(value, f"--config {key}") if value.strip() else None
        overrides = deep_merge(overrides, {key: parsed})
    return overrides


OVERLAY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")


def overlay_names(folder: str | Path) -> list[str]:
    """The named overlays in ``folder`` (``params/``): the stems of its ``*.yaml`` files, sorted."""
    return sorted(path.stem for path in Path(folder).glob("*.yaml"))


def named_overlay(name: Any, folder: str | Path, *, source: str) -> tuple[str, dict[str, Any]] | None:
    """The file and mapping of the overlay that the ``overlay`` key names (``params/<name>.yaml``), or None for
    null (or a value the schema refuses: :func:`validate` names it). ``source``: the file that named it."""
    if not isinstance(name, str) or not OVERLAY_NAME.fullmatch(name):
        return None
    path = Path(folder) / f"{name}.yaml"
    if not path.is_file():
        available = ", ".join(overlay_names(folder)) or "none found"
        raise ParamsError(f"{source}: overlay: {name!r} names no file {path.as_posix()} (fix: use one of: "
                          f"{available}; or null for none)")
    overlay = read_yaml(path)
    if "overlay" in overlay:
        raise ParamsError(f"{path.as_posix()}: overlay: an overlay cannot name another overlay (fix: remove the key "
                          f"from {path.as_posix()})")
    return path.as_posix(), overlay


def _leaves(mapping: Mapping[str, Any], path: tuple = ()) -> Iterator[tuple[tuple, Any]]:
    for key, value in mapping.items():
        if isinstance(value, Mapping) and value:
            yield from _leaves(value, path + (key,))
        else:
            yield path + (key,), value


def _lookup(mapping: Any, path: tuple) -> tuple[bool, Any]:
    for key in path:
        if not isinstance(mapping, Mapping) or key not in mapping:
            return False, None
        mapping = mapping[key]
    return True, mapping


def overlay_shadowing(params_file: str | Path, lock_file: str | Path = "dvc.lock") -> list[str]:
    """The values of ``params_file`` changed since DVC recorded them (``lock_file``) that its named overlay also
    sets: the overlay is merged over params.yaml, so such a change (``dvc exp run -S KEY=VALUE`` with
    ``overlay: smoke``) would be silently unused. One message per value, with the command that does take effect.

    Example::

        problems = overlay_shadowing("params.yaml")  # [] when nothing set in params.yaml is hidden
    """
    params = read_yaml(params_file)
    name = params.get("overlay")
    if not isinstance(name, str) or not Path(lock_file).is_file():
        return []
    found = named_overlay(name, Path(params_file).parent / "params", source=str(params_file))
    if found is None:
        return []
    overlay_path, overlay = found
    recorded: dict[str, Any] = {}
    for stage in ((yaml.safe_load(Path(lock_file).read_text()) or {}).get("stages") or {}).values():
        recorded = deep_merge(recorded, ((stage or {}).get("params") or {}).get(Path(params_file).name) or {})
    problems = []
    for path, value in _leaves(overlay):
        was_recorded, before = _lookup(recorded, path)
        present, now = _lookup(params, path)
        if was_recorded and present and now != before:
            key, text = _dotted(path), json.dumps(now)
            problems.append(f"{params_file}: {key}: {text} (was {json.dumps(before)}) would not be used: the overlay "
                            f"{overlay_path} sets it to {json.dumps(value)} and is merged over {params_file} (fix: "
                            f"put it back to {json.dumps(before)} in {params_file} and set it in the overlay: "
                            f"`dvc exp run -S {overlay_path}:{key}={text.replace(' ', '')}`)")
    return problems


def load_params(*paths: str | Path, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """Merge the given YAML files in order (later ones win), then ``KEY=VALUE`` overrides, and validate.

    The ``overlay`` key (last given wins) names a file of ``params/`` beside the first file, merged right after it:
    ``overlay: smoke`` in params.yaml equals ``load_params("params.yaml", "params/smoke.yaml")``, so later files and
    the overrides still win over the overlay.

    Example::

        params = load_params("params.yaml", overrides=["overlay=smoke", "seeds=[0]"])
    """
    layers = [(str(path), read_yaml(path)) for path in paths]
    if overrides:
        layers.append(("--config " + " ".join(overrides), parse_overrides(overrides)))
    named = [(source, layer["overlay"]) for source, layer in layers if "overlay" in layer]
    if named and paths:
        source, name = named[-1]
        found = named_overlay(name, Path(paths[0]).parent / "params", source=source)
        if found is not None:
            layers.insert(1, found)
    merged: dict[str, Any] = {}
    for _, layer in layers:
        merged = deep_merge(merged, layer)
    validate(merged, source=" + ".join(source for source, _ in layers))
    return merged


def load_workflow_params(workflow: Any) -> dict[str, Any]:
    """The parameters of a Snakemake run, read strictly: its ``configfile:`` files (unless
    ``--replace-workflow-config``), then its ``--configfile`` overlays, then its ``--config`` values (as YAML).

    Snakemake merges the same sources itself, but last-wins on duplicate keys and with ``--config`` values as
    strings; this rebuilds them with :func:`load_params` (which validates) from what Snakemake recorded. Run as a
    DVC stage (``DVC_STAGE`` set), a params.yaml value changed since ``dvc.lock`` that the named overlay hides fails
    (:func:`overlay_shadowing`)."""
    import os

    overlays = [os.path.relpath(path) if Path(path).is_relative_to(Path.cwd()) else str(path)
                for path in workflow.overwrite_configfiles]
    settings = workflow.config_settings
    base = [] if settings.replace_workflow_config else [
        path for path in workflow.configfiles if Path(path).absolute() not in {Path(o).absolute() for o in overlays}]
    params = load_params(*base, *overlays, overrides=settings.config_args or ())
    if os.environ.get("DVC_STAGE") and base:  # a stage of `dvc repro` / `dvc exp run`: its -S values must count
        problems = overlay_shadowing(base[0])
        if problems:
            raise ParamsError("\n".join(problems))
    return params


def _is_integer(checker: jsonschema.TypeChecker, instance: Any) -> bool:
    """JSON Schema counts 1.0 as an integer; a seed or a count of 1.0 becomes "1.0" in a file name, so it is not."""
    return isinstance(instance, int) and not isinstance(instance, bool)


StrictValidator = jsonschema.validators.extend(
    jsonschema.Draft202012Validator,
    type_checker=jsonschema.Draft202012Validator.TYPE_CHECKER.redefine("integer", _is_integer))


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
        if error.validator_value == "integer" and isinstance(error.instance, float) and error.instance.is_integer():
            return f"write {int(error.instance)}, not {error.instance}: integers are written without a decimal point"
        if error.validator_value in ("array", "object") and isinstance(error.instance, str):
            return "give a YAML list, e.g. [0, 1]" if error.validator_value == "array" else \
                "give a YAML mapping, e.g. {key: value}"
        return f"give a value of type {error.validator_value}"
    if error.validator == "minimum":
        return f"give at least {error.validator_value}"
    if error.validator == "exclusiveMinimum":
        return f"give more than {error.validator_value}"
    description = error.schema.get("description")  # for a bound: why it is there and how to raise it
    return description or f"see {SCHEMA_RELATIVE}"


def _non_finite(value: Any, path: tuple = ()) -> Iterator[tuple[tuple, float]]:
    """Every NaN / ±inf in a parameter mapping, with its key path (JSON Schema's `number` admits them)."""
    if isinstance(value, float) and not math.isfinite(value):
        yield path, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _non_finite(item, path + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _non_finite(item, path + (index,))


def validate(params: Mapping[str, Any], *, source: str = "params.yaml") -> None:
    """Raise :class:`ParamsError` naming every offending key, its value and how to fix it."""
    if not SCHEMA_PATH.is_file():
        raise ParamsError(f"{SCHEMA_PATH}: the parameter schema is missing (fix: run the pipeline from the project's "
                          f"root folder, which holds {SCHEMA_RELATIVE})")
    with open(SCHEMA_PATH) as handle:
        schema = yaml.safe_load(handle)
    non_finite = dict(_non_finite(dict(params)))
    problems = [(list(map(str, path)), f"{_dotted(path)}: {value} is not a finite number (fix: give a finite "
                 f"number; .nan and .inf are never valid parameters)") for path, value in non_finite.items()]
    for error in StrictValidator(schema).iter_errors(dict(params)):
        if tuple(error.absolute_path) in non_finite:  # already named above
            continue
        message, hint = error.message, _fix_hint(error)
        causes = [e for e in error.context or () if e.validator != "type"]  # not "is not of type 'null'"
        if error.validator in ("oneOf", "anyOf") and causes:  # "not valid under any": say what is wrong
            message = causes[0].message
            if causes[0].validator != "uniqueItems" or "description" not in error.schema:
                hint = _fix_hint(causes[0])
        problems.append((list(map(str, error.absolute_path)), f"{_key_path(error)}: {message} (fix: {hint})"))
    # cross-field checks only on a structurally valid mapping
    messages = [message for _, message in sorted(problems, key=lambda item: item[0])] or (
        _seed_count_problems(params) + _stopping_problems(params))
    if messages:
        lines = [f"{source}: invalid parameters ({len(messages)} problem{'s' * (len(messages) > 1)}):"]
        lines += [f"  - {message}" for message in messages]
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
    for section in ("benchmark", "localisation"):
        wanted = params.get(section, {}).get("n_seeds", 0)
        if wanted > available:
            problems.append(f"{section}.n_seeds: {wanted} is more than the {available} listed in `seeds` (fix: lower "
                            "it, or list more seeds)")
    return problems


def _stopping_problems(params: Mapping[str, Any]) -> list[str]:
    """Early stopping (``patience``) needs a cap on the epochs it may run to (softmax_mi.training.TrainConfig)."""
    neural = params.get("synthetic", {}).get("neural", {})
    if neural.get("patience") is not None and neural.get("max_epochs") is None:
        return [f"synthetic.neural.max_epochs: null, but patience is {neural['patience']} (fix: give max_epochs, the "
                "most epochs early stopping may run to, or set patience: null)"]
    return []


def params_hash(params: Mapping[str, Any]) -> str:
    """Short, stable hash of a parameter mapping (recorded beside every result row)."""
    canonical = json.dumps(params, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def remove_empty_output_folders(dvc_yaml: str | Path = "dvc.yaml") -> None:
    """Undo the folders ``dvc exp run`` creates before any stage runs (it checks out every stage's outs, which makes
    their parent folders — models/, results/<part>/, data/… — even when nothing was ever committed), so that
    parameters refused by validation leave nothing behind. Only empty folders are removed, deepest first."""
    import os

    if not Path(dvc_yaml).is_file():
        return
    stages = (yaml.safe_load(Path(dvc_yaml).read_text()) or {}).get("stages", {})
    parents = set()
    for stage in stages.values():
        for kind in ("outs", "metrics", "plots"):
            for out in stage.get(kind, []):
                for path in (out if isinstance(out, dict) else {out: None}):
                    parents.update(str(parent) for parent in Path(path).parents if str(parent) != ".")
    for folder in sorted(parents, key=lambda p: -p.count("/")):
        try:
            os.rmdir(folder)
        except OSError:  # absent or not empty: leave it
            pass


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
