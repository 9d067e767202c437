# Paper §3.1 (E4): PC-softmax vs softmax on imbalanced MNIST (+ Fashion-MNIST) with the long-tail controls.
# prepare (uint8 arrays) → split (per setting) → faithful protocol: train (one job per dataset × setting × loss, its
# seeds stacked into one model) → evaluate (one leaf per job); standard protocol: one job per dataset × setting
# trains every loss × τ × seed as one stacked model and evaluates it → gather → summarise.
from softmax_mi.stages import classification as classification_stage

CLASSIFICATION = config["classification"]
STANDARD = CLASSIFICATION["standard"]
CLS_RUN = "{dataset}/{setting}/{loss}"  # faithful: one job per loss
CLS_SETTING = "{dataset}/{setting}"  # standard: one job per setting
FAITHFUL_SETTING = f"faithful-({registry.alternatives(registry.CLS_SETTINGS)})"
STANDARD_SETTING = f"({registry.alternatives(registry.IMBALANCE_PROFILES)})-r[0-9.]+|{registry.STANDARD_BALANCED}"


wildcard_constraints:
    dataset=registry.alternatives(registry.MNIST_DATASETS),
    setting=f"{FAITHFUL_SETTING}|{STANDARD_SETTING}",
    loss=registry.alternatives(registry.LOSSES),


rule classification_prepare:
    output:
        arrays="data/mnist/{dataset}/arrays.npz",  # the MNIST family, under one DVC out
    params:
        **stage_params(
            classification_stage.prepare,
            dataset=lambda wc: wc.dataset,
            fashion_dir=CLASSIFICATION["fashion_mnist_dir"],
        ),
    priority: 20  # feeds the training jobs: a job's priority does not reach its inputs' jobs
    log:
        "logs/classification/{dataset}/prepare.log",
    shell:
        STAGE


rule classification_split:
    input:
        arrays=rules.classification_prepare.output.arrays,
    output:
        split="data/mnist/{dataset}/splits/{setting}.parquet",
    params:
        **stage_params(
            classification_stage.split,
            dataset=lambda wc: wc.dataset,
            setting=lambda wc: wc.setting,
            faithful={k: v for k, v in CLASSIFICATION["faithful"].items() if k.endswith(("_cap", "_classes"))},
            standard={k: STANDARD[k] for k in ("n_max", "val_per_class", "test_per_class")},
            seed=SEEDS[0],
        ),
    priority: 20  # feeds the training jobs: a job's priority does not reach its inputs' jobs
    log:
        "logs/classification/{dataset}/split-{setting}.log",
    shell:
        STAGE


rule classification_train:
    input:
        arrays=rules.classification_prepare.output.arrays,
        split=rules.classification_split.output.split,
    output:
        model=f"models/classification/{CLS_RUN}.pt",
    wildcard_constraints:
        setting=FAITHFUL_SETTING,
    threads: RESOURCES["classification_train"]["threads"]
    resources:
        **job_resources("classification_train"),
    params:
        **stage_params(
            classification_stage.train,
            dataset=lambda wc: wc.dataset,
            setting=lambda wc: wc.setting,
            loss=lambda wc: wc.loss,
            seeds=lambda wc: grid.cls_seeds(config, wc.setting),
            options=lambda wc: grid.loss_options(config, wc.loss),
            training=CLASSIFICATION["training"],
            device=DEVICE,
        ),
    priority: 20  # start the longest jobs first, so the many short ones fill the cores at the end
    log:
        f"logs/classification/{CLS_RUN}/train.log",
    shell:
        STAGE


rule classification_evaluate:
    input:
        arrays=rules.classification_prepare.output.arrays,
        split=rules.classification_split.output.split,
        model=rules.classification_train.output.model,
    output:
        metrics=f"results/classification/runs/{CLS_RUN}/metrics.parquet",
        per_class=f"results/classification/runs/{CLS_RUN}/per_class.parquet",
    wildcard_constraints:
        setting=FAITHFUL_SETTING,
    threads: RESOURCES["classification_evaluate"]["threads"]
    resources:
        **job_resources("classification_evaluate"),
    params:
        **stage_params(
            classification_stage.evaluate,
            dataset=lambda wc: wc.dataset,
            setting=lambda wc: wc.setting,
            loss=lambda wc: wc.loss,
            posthoc_taus=CLASSIFICATION["posthoc_la"]["taus"],
            training=CLASSIFICATION["training"],
            device=DEVICE,
        ),
    log:
        f"logs/classification/{CLS_RUN}/evaluate.log",
    shell:
        STAGE


rule classification_standard:
    input:
        arrays=rules.classification_prepare.output.arrays,
        split=rules.classification_split.output.split,
    output:
        model=f"models/classification/{CLS_SETTING}/model.pt",
        logits=f"models/classification/{CLS_SETTING}/logits.npz",
        metrics=f"results/classification/runs/{CLS_SETTING}/metrics.parquet",
        per_class=f"results/classification/runs/{CLS_SETTING}/per_class.parquet",
        curve=f"results/classification/runs/{CLS_SETTING}/curve.parquet",
    wildcard_constraints:
        setting=STANDARD_SETTING,
    threads: RESOURCES["classification_train"]["threads"]  # a training job, with its evaluation
    resources:
        **job_resources("classification_train"),
    params:
        **stage_params(
            classification_stage.standard,
            dataset=lambda wc: wc.dataset,
            setting=lambda wc: wc.setting,
            losses=lambda wc: grid.cls_standard_losses(config, wc.setting),
            seeds=lambda wc: grid.cls_seeds(config, wc.setting),
            options=lambda wc: grid.cls_standard_options(config, wc.setting),
            training=STANDARD["training"],
            posthoc_taus=lambda wc: (
                [] if wc.setting == registry.STANDARD_BALANCED else CLASSIFICATION["posthoc_la"]["taus"]
            ),  # on the balanced reference, f − τ·log π is f
            device=DEVICE,
        ),
    priority: 20  # start the longest jobs first, so the many short ones fill the cores at the end
    log:
        f"logs/classification/{CLS_SETTING}/standard.log",
    shell:
        STAGE


rule classification_gather:
    input:
        metrics=cls_gathered("metrics"),
        per_class=cls_gathered("per_class"),
        curve=cls_gathered("curve"),
    output:
        metrics="results/classification/metrics.parquet",
        per_class="results/classification/per_class.parquet",
        curve="results/classification/convergence.parquet",
    params:
        **stage_params(classification_stage.gather),
    log:
        "logs/classification/gather.log",
    shell:
        STAGE


rule classification_summary:
    input:
        metrics=rules.classification_gather.output.metrics,
        per_class=rules.classification_gather.output.per_class,
        curve=rules.classification_gather.output.curve,
    output:
        summary="results/classification/summary.parquet",
        metrics_json="results/classification/metrics.json",
        per_class_figure="results/classification/per_class_accuracy.png",
        imbalance_figure="results/classification/accuracy_vs_imbalance.png",
        convergence_figure="results/classification/convergence.png",
    params:
        **stage_params(classification_stage.summarise),
    log:
        "logs/classification/summary.log",
    shell:
        STAGE


rule classification_all:
    input:
        rules.classification_gather.output,
        rules.classification_summary.output,
