# Issue 5 (E5–E7): user-supplied CUB-200-2011 / Tiny-ImageNet → data/prepared/<name>/{images.npy, images.parquet}.
# Whether each dataset's rules run is decided here, once, from params.yaml `datasets` and the files in raw_dir
# (softmax_mi.data.raw.availability): auto → only when present (else one notice line on stderr), on → always
# (absent: a WorkflowError with the same line), off → never. Other rule files use DATASET_RUN and DATASET_FILES.
from softmax_mi.stages import datasets as datasets_stage
import sys

from softmax_mi.data.raw import RawDataMissing, availability, raw_source

DATASETS = config["datasets"]

try:
    _DATASET_AVAILABILITY = availability(config)
except RawDataMissing as error:
    raise WorkflowError(str(error)) from None

DATASET_RUN = {name: run for name, (run, _) in _DATASET_AVAILABILITY.items()}
DATASET_FILES = {
    name: {"images": f"data/prepared/{name}/images.npy", "table": f"data/prepared/{name}/images.parquet"}
    for name in DATASET_RUN
}

# Parse time, not onstart: onstart handlers do not run on --dry-run. Only the main process prints, so jobs that
# re-parse the Snakefile (cluster / subprocess execution) stay quiet.
if workflow.is_main_process:
    for _name, (_run, _notice) in _DATASET_AVAILABILITY.items():
        if _notice:
            print(_notice, file=sys.stderr)


def dataset_raw_input(name):
    """Input function: the archive if present, else the folder; absent → the notice as the error."""

    def source(wildcards):
        found = raw_source(config, name)
        if found is None:
            raise WorkflowError(_DATASET_AVAILABILITY[name][1] or f"{name}: no raw data")
        return str(found)

    return source


def dataset_settings(name):
    """The settings the prepared data depends on (switch and file names only choose the input)."""
    return {key: value for key, value in DATASETS[name].items() if key not in ("enabled", "archive", "folder")}


rule cub_prepare:
    input:
        raw=dataset_raw_input("cub"),
    output:
        images=DATASET_FILES["cub"]["images"],
        table=DATASET_FILES["cub"]["table"],
    params:
        **stage_params(datasets_stage.cub_prepare, settings=dataset_settings("cub")),
    threads: DATASETS["threads"]
    log:
        "logs/datasets/cub_prepare.log",
    shell:
        STAGE


rule tiny_imagenet_prepare:
    input:
        raw=dataset_raw_input("tiny_imagenet"),
    output:
        images=DATASET_FILES["tiny_imagenet"]["images"],
        table=DATASET_FILES["tiny_imagenet"]["table"],
    params:
        **stage_params(datasets_stage.tiny_imagenet_prepare, settings=dataset_settings("tiny_imagenet")),
    threads: DATASETS["threads"]
    log:
        "logs/datasets/tiny_imagenet_prepare.log",
    shell:
        STAGE


rule datasets_manifest:
    output:
        manifest="data/prepared/manifest.json",
    params:
        **stage_params(
            datasets_stage.manifest,
            found={
                name: {"run": run, "notice": notice, "source": str(raw_source(config, name) or "")}
                for name, (run, notice) in _DATASET_AVAILABILITY.items()
            },
        ),
    log:
        "logs/datasets/manifest.log",
    shell:
        STAGE


rule datasets_all:
    input:
        rules.datasets_manifest.output.manifest,
        [path for name, run in DATASET_RUN.items() if run for path in DATASET_FILES[name].values()],
