# Defined before every rule file and shared by all of them (this file holds no rules) — the validated parameters, the
# one way a rule calls the package (stage_params), job resources, which user datasets run, and the rule files' input
# functions (Snakemake's conventions, as `snakemake --lint` checks them, keep functions out of rule files).
# The grid itself is softmax_mi.grid, the names softmax_mi.registry; no rule file reads another's globals.
import json
import sys

from softmax_mi import grid, registry
from softmax_mi.data.raw import RawDataMissing, availability, raw_source
from softmax_mi.params import ParamsError, load_workflow_params, remove_empty_output_folders
from softmax_mi.stage import StageSettingsError, call_spec, check_settings, entry


# Snakemake merges params.yaml, the --configfile overlays and --config last-wins, --config values as strings:
# the same parameters are rebuilt with the strict loader and validated, and replace `config`.
try:
    _params = load_workflow_params(workflow)
except ParamsError as error:
    remove_empty_output_folders()
    raise WorkflowError(str(error)) from None
config.clear()
config.update(_params)

PYTHON = sys.executable
SEEDS = config["seeds"]
DEVICE = config["device"]
RESOURCES = config["resources"]

# Every job is `python -m softmax_mi.stage '<json>'`, its stdout and stderr (progress bars) in the rule's log.
STAGE = f"{PYTHON} -m softmax_mi.stage {{params.call:q}} > {{log}} 2>&1"


def stage_params(function, **settings):
    """The `params:` of a rule that calls a stage function.

    Use as `params: **stage_params(module.function, ...)`.

    The function is the object itself, imported at the top of the rule file, so that grep and an IDE follow the
    rule to its code; a setting it does not take, or a required one left out, fails here, at parse time, with
    the setting's name (softmax_mi.stage.check_settings). The entries:
    - `settings`: the function's name and its settings (values may be functions of the wildcards), as JSON.
      Snakemake records it, so changing one setting reruns exactly the jobs that use it.
    - `call`: the whole JSON spec for `softmax_mi.stage`: the settings plus the named inputs/outputs (a list for
      every one the rule declares as a list) and threads. Snakemake does not record params derived from
      inputs/outputs, hence the two entries.
    """
    try:
        check_settings(function, settings)
    except StageSettingsError as error:
        raise WorkflowError(str(error)) from None

    def resolved(wildcards):
        return {name: (value(wildcards) if callable(value) else value) for name, value in settings.items()}

    def recorded(wildcards):
        return json.dumps({"entry": entry(function), "settings": resolved(wildcards)}, sort_keys=True)

    def call(wildcards, input, output, threads):
        return call_spec(function, resolved(wildcards), input, output, threads)

    return {"settings": recorded, "call": call}


def job_resources(rule_name, gpu_when=None):
    """The `resources:` of a heavy rule, from params.yaml `resources.<rule_name>` (use as
    `resources: **job_resources("name")`, with `threads: RESOURCES["name"]["threads"]`).

    - `gpu_when`: a function of the wildcards; jobs for which it is false ask for no GPU (e.g. the kNN jobs of a
      rule whose other jobs train networks), so they never wait for the GPU a scheduler is throttling.
    Resources are not recorded: changing them reruns nothing.
    """
    spec = RESOURCES[rule_name]
    gpu = spec["gpu"]
    if gpu_when is not None and gpu:
        gpu = lambda wildcards: spec["gpu"] if gpu_when(wildcards) else 0
    return {"mem_mb": spec["mem_mb"], "runtime": spec["runtime"], "gpu": gpu}


# After `kill -9` Snakemake's locks outlive their run. The main process removes them when no live run holds this
# folder and marks itself live until it exits (softmax_mi.workflow_lock), so the plain rerun resumes; two live
# runs on the same files are still kept apart. Jobs that re-parse the Snakefile (cluster jobs) take no part.
if workflow.is_main_process:
    from softmax_mi.workflow_lock import hold

    _stale_locks = hold(".snakemake").notice()
    if _stale_locks:
        print(_stale_locks, file=sys.stderr)


# User-supplied CUB-200-2011 / Tiny-ImageNet, decided once from params.yaml `datasets` and the files in raw_dir
# (softmax_mi.data.raw.availability): auto → their rules run only when present (datasets.smk prints the notice),
# on → always (absent: a WorkflowError with the same line), off → never.
try:
    DATASET_AVAILABILITY = availability(config)
except RawDataMissing as error:
    raise WorkflowError(str(error)) from None

DATASET_RUN = {name: run for name, (run, _) in DATASET_AVAILABILITY.items()}
DATASET_FILES = {  # prepared by datasets.smk, read by the CUB head and WSOL rules
    name: {"images": f"data/prepared/{name}/images.npy", "table": f"data/prepared/{name}/images.parquet"}
    for name in DATASET_RUN
}


# Input functions of the rule files, in the order of the Snakefile's includes. Each reads only `config` and the names
# above, never a rule file's constants.


def dataset_raw_input(name):
    """datasets.smk: the archive if present, else the folder; absent → the notice as the error."""

    def source(wildcards):
        found = raw_source(config, name)
        if found is None:
            raise WorkflowError(DATASET_AVAILABILITY[name][1] or f"{name}: no raw data")
        return str(found)

    return source


def synthetic_task(wildcards):
    """synthetic.smk: the job's task definition (the grid: softmax_mi.grid)."""
    return grid.synthetic_task(config, wildcards.task, wildcards.dim, wildcards.balance)


def cls_gathered(kind):
    """classification.smk: every leaf's `kind` table (metrics | per_class: MNIST's jobs, then CUB's heads
    (cub_classification.smk) when CUB is available; curve: the standard protocol's jobs); Fashion-MNIST without
    its files: a notice, and it is skipped."""

    def tables(wildcards):
        datasets, notice = grid.cls_datasets(config)
        if notice and kind == "metrics":
            print(notice, file=sys.stderr)
        if kind == "curve":
            leaves = grid.cls_curve_leaves(config, datasets)
        else:
            leaves = grid.cls_leaves(config, datasets, DATASET_RUN["cub"])
        return [f"results/classification/runs/{leaf}/{kind}.parquet" for leaf in leaves]

    return tables


def cub_cls_requested(wildcards):
    """cub_classification.smk: asked for by name without CUB, the same one line as the notice, as an error."""
    if not DATASET_RUN["cub"]:
        raise WorkflowError(grid.dataset_unavailable(config, "cub"))
    leaves = [f"results/classification/runs/cub/{s}/{l}" for s, l in grid.cub_head_jobs(config, DATASET_RUN["cub"])]
    return [f"{leaf}/metrics.parquet" for leaf in leaves] + [f"{leaf}/per_class.parquet" for leaf in leaves]


def label_shift_input(kind):
    """label_shift.smk: the standard protocol's logits files (kind "logits") or Part 1's saved Gaussian classifiers
    (kind "classifiers", in the order of grid.label_shift_synthetic)."""

    def files(wildcards):
        if kind == "classifiers":
            return [f"models/synthetic/gaussian/{entry['setting']}/classifiers.pt"
                    for entry in grid.label_shift_synthetic(config)]
        datasets, _ = grid.cls_datasets(config)
        return [f"models/classification/{d}/{s}/logits.npz" for d, s in grid.label_shift_logits(config, datasets)]

    return files


def wsol_data(dataset):
    """localisation.smk: the dataset's folder in the softmax_mi.data.wsol format (images + one row per image)."""
    if dataset == config["localisation"]["data"]["name"]:  # the embedded one, built by localisation_dataset
        folder = f"data/wsol/{dataset}"
        return {"images": f"{folder}/images.npy", "boxes": f"{folder}/boxes.parquet"}
    return {"images": DATASET_FILES[dataset]["images"], "boxes": DATASET_FILES[dataset]["table"]}


def wsol_leaves(pattern):
    """localisation.smk: ``pattern`` filled in for every WSOL (dataset, backbone, adl, seed) job."""
    jobs = grid.wsol_jobs(config, grid.wsol_datasets(config, DATASET_RUN))
    return [pattern.format(dataset=d, backbone=b, adl=a, seed=s) for d, b, a, s in jobs]


def wsol_figure_run(wildcards):
    """localisation.smk: the run whose maps and τ the dataset's figure shows (softmax_mi.grid.wsol_figure_run)."""
    return grid.wsol_figure_run(config, wildcards.dataset)
