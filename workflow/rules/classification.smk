# Paper §3.1 (E4): PC-softmax vs softmax on imbalanced MNIST (+ Fashion-MNIST) with the long-tail controls.
# prepare (uint8 arrays) → split (per setting) → train (one job per dataset × setting × loss, its seeds stacked
# into one model) → evaluate (one leaf per job) → gather → summarise.
from softmax_mi.stages import classification as classification_stage
from softmax_mi.data.mnist import fashion_mnist_folder

CLASSIFICATION = config["classification"]
CLS_RUN = "{dataset}/{setting}/{loss}"


def cls_datasets():
    """Datasets in use: Fashion-MNIST only when its IDX files are found (else a message, and it is skipped)."""
    wanted = set(CLASSIFICATION["faithful"]["datasets"]) | set(CLASSIFICATION["standard"]["datasets"])
    if "fashion_mnist" in wanted and fashion_mnist_folder(CLASSIFICATION["fashion_mnist_dir"]) is None:
        print(
            "classification: Fashion-MNIST IDX files not found (apt-get install dataset-fashion-mnist, or set "
            "classification.fashion_mnist_dir / $SOFTMAX_MI_FASHION_MNIST); skipping Fashion-MNIST.",
            file=sys.stderr,
        )
        wanted.discard("fashion_mnist")
    return sorted(wanted)


def cls_jobs():
    """(dataset, setting, loss) of every training job of the configured grid."""
    datasets = cls_datasets()
    faithful, standard = CLASSIFICATION["faithful"], CLASSIFICATION["standard"]
    jobs = [
        (dataset, f"faithful-{setting}", loss)
        for dataset in faithful["datasets"] if dataset in datasets
        for setting in faithful["settings"]
        for loss in faithful["losses"]
    ]
    jobs += [
        (dataset, f"{profile}-r{ratio:g}", loss)
        for dataset in standard["datasets"] if dataset in datasets
        for profile in standard["profiles"]
        for ratio in standard["ratios"]
        for loss in standard["losses"]
    ]
    return jobs


def cls_seeds(wildcards):
    """Faithful: the setting's own seed list (null: `seeds`); standard: the first n of `seeds`."""
    if wildcards.setting.startswith("faithful-"):
        return CLASSIFICATION["faithful"]["seeds"][wildcards.setting.removeprefix("faithful-")] or SEEDS
    return SEEDS[: CLASSIFICATION["standard"]["n_seeds"]]


def cls_loss_options(wildcards):
    """Only the options of this job's loss (so changing one loss's option retrains only that loss)."""
    keys = {"logit_adjusted": ["logit_adjusted"], "class_balanced": ["class_balanced"],
            "ldam_drw": ["ldam_drw", "class_balanced"]}.get(wildcards.loss, [])
    return {key: CLASSIFICATION[key] for key in keys}


wildcard_constraints:
    dataset="mnist|fashion_mnist",
    setting=r"faithful-(imbalanced|balanced)|(step|exponential)-r[0-9.]+",
    loss="softmax|pc_softmax|logit_adjusted|class_balanced|ldam_drw",


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
            standard={k: CLASSIFICATION["standard"][k] for k in ("n_max", "val_per_class")},
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
    threads: RESOURCES["classification_train"]["threads"]
    resources:
        **job_resources("classification_train"),
    params:
        **stage_params(
            classification_stage.train,
            dataset=lambda wc: wc.dataset,
            setting=lambda wc: wc.setting,
            loss=lambda wc: wc.loss,
            seeds=cls_seeds,
            options=cls_loss_options,
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


rule classification_gather:
    input:  # + the CUB rows when CUB is available (cub_classification.smk, read when the DAG is built)
        metrics=lambda wc: [f"results/classification/runs/{d}/{s}/{l}/metrics.parquet" for d, s, l in cls_jobs()]
        + cub_cls_leaves("metrics"),
        per_class=lambda wc: [f"results/classification/runs/{d}/{s}/{l}/per_class.parquet" for d, s, l in cls_jobs()]
        + cub_cls_leaves("per_class"),
    output:
        metrics="results/classification/metrics.parquet",
        per_class="results/classification/per_class.parquet",
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
    output:
        summary="results/classification/summary.parquet",
        metrics_json="results/classification/metrics.json",
        per_class_figure=report("results/classification/per_class_accuracy.png", category="2. Classification (paper §3)"),
        imbalance_figure=report("results/classification/accuracy_vs_imbalance.png", category="2. Classification (paper §3)"),
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
