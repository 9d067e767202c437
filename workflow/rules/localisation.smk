# Paper §4 (E6, E7, E8): WSOL datasets (the embedded cluttered MNIST, + CUB-200-2011 / Tiny-ImageNet when supplied)
# → one classifier per (dataset, backbone, ADL, seed) → CAM / infoCAM / variants / Grad-CAM / centre-box scored under
# the `paper`, `maxboxacc` and `maxboxacc_v2` protocols → tables and figures.
from softmax_mi.stages import localisation as localisation_stage

LOCALISATION = config["localisation"]
EMBEDDED_WSOL = LOCALISATION["data"]["name"]
WSOL_DATASETS = grid.wsol_datasets(config, DATASET_RUN)
WSOL_RUN = "{dataset}/{backbone}/{adl}/seed{seed}"
WSOL_FIGURES = "results/localisation/figures/{dataset}/{figure}.png"


# `dataset` is constrained per rule: a global constraint would replace classification.smk's for its rules
WSOL_DATASET = registry.alternatives(WSOL_DATASETS)


wildcard_constraints:
    backbone=registry.alternatives(registry.WSOL_BACKBONES),
    adl="adl|noadl",


rule localisation_dataset:
    output:
        **wsol_data(EMBEDDED_WSOL),
    params:
        **stage_params(localisation_stage.dataset, data=LOCALISATION["data"]),
    priority: 10  # feeds the training jobs: a job's priority does not reach its inputs' jobs
    log:
        "logs/localisation/dataset.log",
    shell:
        STAGE


rule localisation_train:
    wildcard_constraints:
        dataset=WSOL_DATASET,
    input:
        unpack(lambda wildcards: wsol_data(wildcards.dataset)),
    output:
        checkpoint=f"models/localisation/{WSOL_RUN}/model.pt",
        summary=f"models/localisation/{WSOL_RUN}/training.json",
    params:
        **stage_params(
            localisation_stage.train,
            dataset=lambda wc: wc.dataset,
            backbone=lambda wc: wc.backbone,
            adl=lambda wc: wc.adl == "adl",
            settings=lambda wc: grid.wsol_train_settings(config, wc.dataset, wc.backbone),
            seed=lambda wc: int(wc.seed),
            device=DEVICE,
        ),
    threads: RESOURCES["localisation_train"]["threads"]
    resources:
        **job_resources("localisation_train"),
    priority: 10  # start the longest jobs first, so the many short ones fill the cores at the end
    log:
        f"logs/localisation/{WSOL_RUN}/train.log",
    shell:
        STAGE


rule localisation_evaluate:
    wildcard_constraints:
        dataset=WSOL_DATASET,
    input:
        unpack(lambda wildcards: wsol_data(wildcards.dataset)),
        checkpoint=rules.localisation_train.output.checkpoint,
    output:
        metrics=f"results/localisation/runs/{WSOL_RUN}/metrics.parquet",
        curves=f"results/localisation/runs/{WSOL_RUN}/curves.parquet",
    threads: RESOURCES["localisation_evaluate"]["threads"]
    resources:
        **job_resources("localisation_evaluate"),
    params:
        **stage_params(
            localisation_stage.evaluate,
            dataset=lambda wc: wc.dataset,
            backbone=lambda wc: wc.backbone,
            adl=lambda wc: wc.adl == "adl",
            settings=lambda wc: grid.wsol_evaluate_settings(config, wc.dataset, wc.backbone),
            seed=lambda wc: int(wc.seed),
            device=DEVICE,
        ),
    log:
        f"logs/localisation/{WSOL_RUN}/evaluate.log",
    shell:
        STAGE


rule localisation_gather:
    input:
        metrics=wsol_leaves(f"results/localisation/runs/{WSOL_RUN}/metrics.parquet"),
        curves=wsol_leaves(f"results/localisation/runs/{WSOL_RUN}/curves.parquet"),
        summaries=wsol_leaves(f"models/localisation/{WSOL_RUN}/training.json"),
    output:
        metrics="results/localisation/metrics.parquet",
        curves="results/localisation/curves.parquet",
        summary="results/localisation/summary.parquet",
        json="results/localisation/metrics.json",
    params:
        **stage_params(localisation_stage.gather),
    log:
        "logs/localisation/gather.log",
    shell:
        STAGE


rule localisation_figures:
    wildcard_constraints:
        dataset=WSOL_DATASET,
    input:
        unpack(lambda wildcards: wsol_data(wildcards.dataset)),
        metrics=rules.localisation_gather.output.metrics,
        curves=rules.localisation_gather.output.curves,
        checkpoint=lambda wc: f"models/localisation/{WSOL_RUN}/model.pt".format(
            dataset=wc.dataset, **wsol_figure_run(wc)
        ),
    output:
        heatmaps="results/localisation/figures/{dataset}/heatmaps.png",
        curves_figure="results/localisation/figures/{dataset}/threshold_curves.png",
    params:
        **stage_params(
            localisation_stage.figures,
            dataset=lambda wc: wc.dataset,
            backbone=lambda wc: wsol_figure_run(wc)["backbone"],
            adl=lambda wc: wsol_figure_run(wc)["adl"] == "adl",
            seed=lambda wc: wsol_figure_run(wc)["seed"],
            settings=lambda wc: grid.wsol_figure_settings(config, wc.dataset),
            device=DEVICE,
        ),
    log:
        "logs/localisation/figures_{dataset}.log",
    shell:
        STAGE


rule localisation_all:
    input:
        rules.localisation_gather.output,
        # plain paths (report.smk takes them): expanding the rule's output objects fails under a storage provider
        figures=expand(WSOL_FIGURES, dataset=WSOL_DATASETS, figure=["heatmaps", "threshold_curves"]),
