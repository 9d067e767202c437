# Issue 5 (E5–E7): user-supplied CUB-200-2011 / Tiny-ImageNet → data/prepared/<name>/{images.npy, images.parquet}.
# Whether each dataset's rules run is decided once in common.smk (DATASET_RUN, DATASET_FILES; params.yaml
# `datasets`: auto → only when present, else one notice line on stderr; on → always; off → never).
from softmax_mi.stages import datasets as datasets_stage

# Parse time, not onstart: onstart handlers do not run on --dry-run. Only the main process prints, so jobs that
# re-parse the Snakefile (cluster / subprocess execution) stay quiet.
if workflow.is_main_process:
    for _name, (_run, _notice) in DATASET_AVAILABILITY.items():
        if _notice:
            print(_notice, file=sys.stderr)


rule cub_prepare:
    input:
        raw=dataset_raw_input("cub"),
    output:
        images=DATASET_FILES["cub"]["images"],
        table=DATASET_FILES["cub"]["table"],
    params:
        **stage_params(datasets_stage.cub_prepare, settings=grid.dataset_settings(config, "cub")),
    threads: config["datasets"]["threads"]
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
        **stage_params(datasets_stage.tiny_imagenet_prepare, settings=grid.dataset_settings(config, "tiny_imagenet")),
    threads: config["datasets"]["threads"]
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
            found=grid.datasets_found(config, DATASET_AVAILABILITY),
        ),
    log:
        "logs/datasets/manifest.log",
    shell:
        STAGE


rule datasets_all:
    input:
        rules.datasets_manifest.output.manifest,
        [path for name, run in DATASET_RUN.items() if run for path in DATASET_FILES[name].values()],
