# Paper §4 (E6, E8): embedded WSOL dataset → one classifier per (backbone, ADL, seed) → CAM / infoCAM / variants /
# Grad-CAM / centre-box scored under the `paper`, `maxboxacc` and `maxboxacc_v2` protocols → tables and figures.
LOCALISATION = config["localisation"]
WSOL_DATA = f"data/wsol/{LOCALISATION['data']['name']}"
WSOL_RUN = "{backbone}/{adl}/seed{seed}"


def wsol_runs():
    """(backbone, adl tag) pairs of the configured grid."""
    return [(b, "adl" if a else "noadl") for b in LOCALISATION["backbones"] for a in LOCALISATION["adl"]]


def wsol_train_settings():
    """The part of the section that training depends on (so changing e.g. the methods does not retrain)."""
    keys = ("adl_settings", "pretrained", "input_size", "gap_cnn", "training")
    return {key: LOCALISATION[key] for key in keys}


wildcard_constraints:
    backbone="gap_cnn|vgg16_gap|resnet50",
    adl="adl|noadl",


rule localisation_dataset:
    output:
        images=f"{WSOL_DATA}/images.npy",
        boxes=f"{WSOL_DATA}/boxes.parquet",
    params:
        **stage_params("softmax_mi.stages.localisation:dataset", data=LOCALISATION["data"]),
    log:
        "logs/localisation/dataset.log",
    shell:
        STAGE


rule localisation_train:
    input:
        images=rules.localisation_dataset.output.images,
        boxes=rules.localisation_dataset.output.boxes,
    output:
        checkpoint=f"models/localisation/{WSOL_RUN}/model.pt",
        summary=f"models/localisation/{WSOL_RUN}/training.json",
    params:
        **stage_params(
            "softmax_mi.stages.localisation:train",
            backbone=lambda wc: wc.backbone,
            adl=lambda wc: wc.adl == "adl",
            settings=wsol_train_settings(),
            seed=lambda wc: int(wc.seed),
            device=DEVICE,
        ),
    priority: 10  # start the longest jobs first, so the many short ones fill the cores at the end
    log:
        f"logs/localisation/{WSOL_RUN}/train.log",
    shell:
        STAGE


rule localisation_evaluate:
    input:
        images=rules.localisation_dataset.output.images,
        boxes=rules.localisation_dataset.output.boxes,
        checkpoint=rules.localisation_train.output.checkpoint,
    output:
        metrics=f"results/localisation/runs/{WSOL_RUN}/metrics.parquet",
        curves=f"results/localisation/runs/{WSOL_RUN}/curves.parquet",
    params:
        **stage_params(
            "softmax_mi.stages.localisation:evaluate",
            backbone=lambda wc: wc.backbone,
            adl=lambda wc: wc.adl == "adl",
            settings={k: v for k, v in LOCALISATION.items() if k not in ("figure_images",)},
            seed=lambda wc: int(wc.seed),
            device=DEVICE,
        ),
    log:
        f"logs/localisation/{WSOL_RUN}/evaluate.log",
    shell:
        STAGE


rule localisation_gather:
    input:
        metrics=[f"results/localisation/runs/{b}/{a}/seed{s}/metrics.parquet" for b, a in wsol_runs() for s in SEEDS],
        curves=[f"results/localisation/runs/{b}/{a}/seed{s}/curves.parquet" for b, a in wsol_runs() for s in SEEDS],
        summaries=[f"models/localisation/{b}/{a}/seed{s}/training.json" for b, a in wsol_runs() for s in SEEDS],
    output:
        metrics="results/localisation/metrics.parquet",
        curves="results/localisation/curves.parquet",
        json="results/localisation/metrics.json",
    params:
        **stage_params("softmax_mi.stages.localisation:gather"),
    log:
        "logs/localisation/gather.log",
    shell:
        STAGE


rule localisation_figures:
    input:
        images=rules.localisation_dataset.output.images,
        boxes=rules.localisation_dataset.output.boxes,
        metrics=rules.localisation_gather.output.metrics,
        curves=rules.localisation_gather.output.curves,
        checkpoint=f"models/localisation/{wsol_runs()[0][0]}/{wsol_runs()[0][1]}/seed{SEEDS[0]}/model.pt",
    output:
        heatmaps=report("results/localisation/heatmaps.png", category="3. Localisation (paper §4)"),
        curves_figure=report("results/localisation/threshold_curves.png", category="3. Localisation (paper §4)"),
    params:
        **stage_params(
            "softmax_mi.stages.localisation:figures",
            backbone=wsol_runs()[0][0],
            adl=wsol_runs()[0][1] == "adl",
            settings=LOCALISATION,
            device=DEVICE,
        ),
    log:
        "logs/localisation/figures.log",
    shell:
        STAGE


rule localisation_all:
    input:
        rules.localisation_gather.output,
        rules.localisation_figures.output,
