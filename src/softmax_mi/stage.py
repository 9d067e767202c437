"""Bridge between a Snakemake rule and one stage function of the package.

A rule names its stage function as a Python object (``stage_params(synthetic_stage.estimate, task=..., ...)`` in
``workflow/rules/*.smk``): grep, an IDE and the parse-time check below all see the same name. Its shell command is
``python -m softmax_mi.stage '<json>'``, where the JSON (``call_spec``) names the function (``"module:function"``)
and its keyword arguments: the rule's settings from ``params.yaml``, ``inputs`` and ``outputs`` (name -> path, or
name -> list of paths for every input or output the rule declares as a list, even a list of one) and ``threads``,
each only to the functions that take it. Keeping every job a separate process gives each its own torch thread pool, device
and log file.

Contract of a stage function: keyword-only parameters, one per setting, plus any of ``inputs``, ``outputs`` and
``threads`` it uses (the bridge passes those it declares); no ``**kwargs``. ``check_settings`` refuses a rule whose settings the function does not
take, or that leaves one of its required settings out, when the Snakefile is parsed, before any job runs.
"""

from __future__ import annotations

import importlib
import inspect
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Mapping

from softmax_mi.runtime import configure_logging, set_threads

log = logging.getLogger("softmax_mi.stage")

FILES = ("inputs", "outputs")  # passed by the bridge to the functions that declare them, never settings
THREADS = "threads"


class StageSettingsError(TypeError):
    """A rule's settings do not match its stage function's parameters."""


def entry(function: Callable) -> str:
    """``"module:function"``: how the job's JSON spec names ``function``."""
    return f"{function.__module__}:{function.__qualname__}"


def check_settings(function: Callable, settings: Mapping[str, object], rule: str = "") -> None:
    """Raise StageSettingsError naming the setting when ``settings`` are not exactly what ``function`` takes."""
    where = f"rule {rule}: " if rule else ""
    parameters = inspect.signature(function).parameters
    if any(p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL) for p in parameters.values()):
        raise StageSettingsError(f"{where}stage function {entry(function)} takes **kwargs or *args: declare every "
                                 "setting as a keyword-only parameter")
    takes = [name for name in parameters if name not in (*FILES, THREADS)]
    for name in settings:
        if name not in takes:
            raise StageSettingsError(
                f"{where}stage function {entry(function)} takes no setting {name!r} (it takes: "
                f"{', '.join(takes) or 'none'}); fix the name in the rule's stage_params(...)"
            )
    for name in takes:
        if name not in settings and parameters[name].default is inspect.Parameter.empty:
            raise StageSettingsError(f"{where}stage function {entry(function)} needs the setting {name!r}: "
                                     "add it to the rule's stage_params(...)")


def files(named: Mapping[str, object]) -> dict[str, str | list[str]]:
    """A rule's named inputs or outputs in one shape: a path, or a list of paths for those declared as lists."""
    return {name: [str(p) for p in value] if isinstance(value, list) else str(value) for name, value in named.items()}


def call_spec(function: Callable, settings: Mapping[str, object], inputs: Mapping[str, object],
              outputs: Mapping[str, object], threads: int) -> str:
    """The JSON spec of one job: the function and every keyword argument it takes."""
    passed = {"inputs": files(inputs), "outputs": files(outputs), THREADS: threads}
    parameters = inspect.signature(function).parameters
    kwargs = {**settings, **{name: value for name, value in passed.items() if name in parameters}}
    return json.dumps({"entry": entry(function), "threads": threads, "kwargs": kwargs}, sort_keys=True)


def run(spec: dict) -> None:
    module_name, _, function_name = spec["entry"].partition(":")
    function = getattr(importlib.import_module(module_name), function_name)
    kwargs = spec["kwargs"]
    set_threads(spec["threads"])
    started = time.perf_counter()
    log.info("%s(%s)", spec["entry"], json.dumps(kwargs, sort_keys=True))
    function(**kwargs)
    used = os.times()  # CPU since the interpreter started, imports and child processes (bmi's runner) included
    log.info("%s finished in %.1f s (the job: %.1f s CPU)", spec["entry"], time.perf_counter() - started,
             used.user + used.system + used.children_user + used.children_system)  # the job's budget figure


def main() -> None:
    configure_logging()
    if len(sys.argv) != 2:
        raise SystemExit("usage: python -m softmax_mi.stage '<json spec>'")
    run(json.loads(sys.argv[1]))


if __name__ == "__main__":
    main()
