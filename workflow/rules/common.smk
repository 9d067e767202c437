# Helpers shared by every rule file: parameter validation, and the one way a rule calls the package.
import json
import sys

from softmax_mi.params import ParamsError, validate

try:
    validate(config, source="params.yaml (+ --configfile overlays)")
except ParamsError as error:
    raise WorkflowError(str(error)) from None

PYTHON = sys.executable
SEEDS = config["seeds"]
DEVICE = config["device"]

# Every job is `python -m softmax_mi.stage '<json>'`, its stdout and stderr (progress bars) in the rule's log.
STAGE = PYTHON + " -m softmax_mi.stage {params.call:q} > {log} 2>&1"


def stage_call(entry, **settings):
    """A `params:` function giving the JSON spec for `softmax_mi.stage`: the function to call ("module:name")
    and its keyword arguments: named inputs/outputs, threads, and `settings` (values may be functions of the
    wildcards). Because the settings sit in `params`, changing one reruns exactly the jobs that use it."""

    def spec(wildcards, input, output, threads):
        kwargs = {name: (value(wildcards) if callable(value) else value) for name, value in settings.items()}
        kwargs.update(inputs=dict(input.items()), outputs=dict(output.items()), threads=threads)
        return json.dumps({"entry": entry, "kwargs": kwargs}, sort_keys=True)

    return spec
