# Paper §3.2 (E5): softmax vs PC-softmax (+ the long-tail controls) on CUB-200-2011, as a linear head on frozen
# backbone features. features (once per backbone, cached: the backbone is frozen) → head (one job per setting × loss:
# its seeds and τs trained together, then evaluated) → rows in results/classification/{metrics,per_class}.parquet
# through classification_gather (classification.smk asks cub_cls_leaves for them). Runs only when CUB is
# available: DATASET_RUN["cub"] from workflow/rules/datasets.smk (datasets.cub.enabled: auto | on | off).
from softmax_mi.stages import cub_classification as cub_stage
from softmax_mi.data.raw import notice as cub_notice

CUB_CLS = CLASSIFICATION["cub"]
CUB_FEATURES = "models/classification/cub/features/{backbone}"  # a DVC out that exists with or without CUB
CUB_HEAD_RUN = "cub/{cub_setting}/{cub_loss}"
CUB_HEAD_TRAINING = ("epochs", "batch_size", "lr", "momentum", "weight_decay", "lr_decay_epochs", "lr_decay_factor")


def cub_cls_jobs():
    """(setting, loss) of every head job; none when CUB is not available (its notice comes from datasets.smk)."""
    if not DATASET_RUN["cub"]:
        return []
    return [(setting, loss) for setting in CUB_CLS["settings"] for loss in CUB_CLS["losses"]]


def cub_cls_leaves(kind):
    """The per-job `kind` tables (metrics | per_class) that classification_gather concatenates with MNIST's."""
    return [f"results/classification/runs/cub/{setting}/{loss}/{kind}.parquet" for setting, loss in cub_cls_jobs()]


def cub_loss_options(wildcards):
    """Only this loss's options, so that changing one retrains only the heads that use it."""
    options = {key: CLASSIFICATION[key] for key in {
        "logit_adjusted": ["logit_adjusted"], "class_balanced": ["class_balanced"],
        "ldam_drw": ["ldam_drw", "class_balanced"]}.get(wildcards.cub_loss, [])}
    if wildcards.cub_loss == "ldam_drw":  # CUB's own DRW epoch, not MNIST's
        options["ldam_drw"] = {k: v for k, v in options["ldam_drw"].items() if k != "drw_epoch"}
        options["drw_epoch"] = CUB_CLS["drw_epoch"]
    return options


def cub_cls_requested(wildcards):
    """Asked for by name without CUB: the same one line as the notice, as an error."""
    if not DATASET_RUN["cub"]:
        enabled = str(DATASETS["cub"]["enabled"])
        raise WorkflowError("CUB-200-2011 is switched off (params.yaml datasets.cub.enabled)" if enabled in
                            ("off", "False") else cub_notice(config, "cub"))
    return cub_cls_leaves("metrics") + cub_cls_leaves("per_class")


rule cub_features:
    input:
        images=DATASET_FILES["cub"]["images"],  # not the table: new splits reuse the cached features
    output:
        features=f"{CUB_FEATURES}.npy",
        info=f"{CUB_FEATURES}.json",
    wildcard_constraints:
        backbone="efficientnet_lite0|resnet50|inception_v3",
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
        features=CUB_FEATURES.format(backbone=CUB_CLS["backbone"]) + ".npy",
        info=CUB_FEATURES.format(backbone=CUB_CLS["backbone"]) + ".json",
    output:
        model=f"models/classification/{CUB_HEAD_RUN}.pt",
        metrics=f"results/classification/runs/{CUB_HEAD_RUN}/metrics.parquet",
        per_class=f"results/classification/runs/{CUB_HEAD_RUN}/per_class.parquet",
    wildcard_constraints:
        cub_setting="imbalanced|balanced",
        cub_loss="softmax|pc_softmax|logit_adjusted|class_balanced|ldam_drw",
    threads: RESOURCES["cub_classification_head"]["threads"]
    resources:
        **job_resources("cub_classification_head"),
    params:
        **stage_params(
            cub_stage.head,
            setting=lambda wc: wc.cub_setting,
            loss=lambda wc: wc.cub_loss,
            seeds=SEEDS[: CUB_CLS["n_seeds"]],
            options=cub_loss_options,
            training={key: CUB_CLS[key] for key in CUB_HEAD_TRAINING},
            posthoc_taus=lambda wc: CLASSIFICATION["posthoc_la"]["taus"] if wc.cub_loss == "softmax" else [],
            device=DEVICE,
        ),
    log:
        f"logs/classification/{CUB_HEAD_RUN}/head.log",
    shell:
        STAGE


rule cub_classification_all:
    input:
        cub_cls_requested,
