# Paper §3.2 (E5): softmax vs PC-softmax (+ the long-tail controls) on CUB-200-2011, as a linear head on frozen
# backbone features. features (once per backbone, cached: the backbone is frozen) → head (one job per setting × loss:
# its seeds and τs trained together, then evaluated) → rows in results/classification/{metrics,per_class}.parquet
# through classification_gather (its inputs: softmax_mi.grid.cls_leaves). Runs only when CUB is available:
# DATASET_RUN["cub"] from common.smk (datasets.cub.enabled: auto | on | off).
from softmax_mi.stages import cub_classification as cub_stage

CUB_CLS = config["classification"]["cub"]
CUB_FEATURES = "models/classification/cub/features/{backbone}"  # a DVC out that exists with or without CUB
CUB_HEAD_RUN = "cub/{cub_setting}/{cub_loss}"
CUB_HEAD_TRAINING = ("epochs", "batch_size", "lr", "momentum", "weight_decay", "lr_decay_epochs", "lr_decay_factor")


rule cub_features:
    input:
        images=DATASET_FILES["cub"]["images"],  # not the table: new splits reuse the cached features
    output:
        features=f"{CUB_FEATURES}.npy",
        info=f"{CUB_FEATURES}.json",
    wildcard_constraints:
        backbone=registry.alternatives(registry.FEATURE_BACKBONES),
    threads: RESOURCES["cub_features"]["threads"]
    resources:
        **job_resources("cub_features"),
    params:
        **stage_params(
            cub_stage.features,
            backbone=lambda wc: wc.backbone,
            weights=CUB_CLS["weights"],
            image_size=CUB_CLS["image_size"],
            batch_size=CUB_CLS["feature_batch_size"],
            device=DEVICE,
        ),
    log:
        "logs/classification/cub/features-{backbone}.log",
    shell:
        STAGE


rule cub_classification_head:
    input:
        table=DATASET_FILES["cub"]["table"],
        features=f"{CUB_FEATURES}.npy".format(backbone=CUB_CLS["backbone"]),
        info=f"{CUB_FEATURES}.json".format(backbone=CUB_CLS["backbone"]),
    output:
        model=f"models/classification/{CUB_HEAD_RUN}.pt",
        metrics=f"results/classification/runs/{CUB_HEAD_RUN}/metrics.parquet",
        per_class=f"results/classification/runs/{CUB_HEAD_RUN}/per_class.parquet",
    wildcard_constraints:
        cub_setting=registry.alternatives(registry.CLS_SETTINGS),
        cub_loss=registry.alternatives(registry.LOSSES),
    threads: RESOURCES["cub_classification_head"]["threads"]
    resources:
        **job_resources("cub_classification_head"),
    params:
        **stage_params(
            cub_stage.head,
            setting=lambda wc: wc.cub_setting,
            loss=lambda wc: wc.cub_loss,
            seeds=SEEDS[: CUB_CLS["n_seeds"]],
            options=lambda wc: grid.loss_options(config, wc.cub_loss, drw_epoch=CUB_CLS["drw_epoch"]),
            training={key: CUB_CLS[key] for key in CUB_HEAD_TRAINING},
            posthoc_taus=lambda wc: config["classification"]["posthoc_la"]["taus"] if wc.cub_loss == "softmax" else [],
            device=DEVICE,
        ),
    log:
        f"logs/classification/{CUB_HEAD_RUN}/head.log",
    shell:
        STAGE


rule cub_classification_all:
    input:
        cub_cls_requested,
