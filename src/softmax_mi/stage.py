"""Bridge between a Snakemake rule and one stage function of the package.

A rule's shell command is ``python -m softmax_mi.stage '<json>'`` where the JSON (built by ``stage_params`` in
``workflow/rules/common.smk``) names the function (``"module:function"``) and its keyword arguments:
``inputs`` and ``outputs`` (name -> path), ``threads``, and the rule's settings taken from ``params.yaml``.
Keeping every job a separate process gives each its own torch thread pool, device and log file.
"""

from __future__ import annotations

import importlib
import json
import logging
import sys
import time

from softmax_mi.runtime import configure_logging, set_threads

log = logging.getLogger("softmax_mi.stage")


def run(spec: dict) -> None:
    module_name, _, function_name = spec["entry"].partition(":")
    function = getattr(importlib.import_module(module_name), function_name)
    kwargs = spec["kwargs"]
    set_threads(kwargs.get("threads", 1))
    started = time.perf_counter()
    log.info("%s(%s)", spec["entry"], json.dumps(kwargs, sort_keys=True))
    function(**kwargs)
    log.info("%s finished in %.1f s", spec["entry"], time.perf_counter() - started)


def main() -> None:
    configure_logging()
    if len(sys.argv) != 2:
        raise SystemExit("usage: python -m softmax_mi.stage '<json spec>'")
    run(json.loads(sys.argv[1]))


if __name__ == "__main__":
    main()
