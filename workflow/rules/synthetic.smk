# Paper §2 (E1–E3): sample tasks with known MI → one estimate per (task, dim, balance, estimator, seed) → tables.
from softmax_mi.stages import synthetic as synthetic_stage

SYNTHETIC = config["synthetic"]


SETTING = "{task}/d{dim}-{balance}"

wildcard_constraints:
    task=registry.alternatives(registry.SYNTHETIC_TASKS),
    dim=r"\d+",
    balance=registry.alternatives(registry.BALANCES),
    seed=r"\d+",
    estimator=registry.alternatives(registry.ESTIMATORS),


# One job per setting draws every seed's data (each seed's draw depends on its seed and the task only): the seeds
# share one process start instead of paying one each.
rule synthetic_sample:
    output:
        data=expand(f"data/synthetic/{SETTING}/seed{{seed}}.parquet", seed=SEEDS, allow_missing=True),
    params:
        **stage_params(
            synthetic_stage.sample,
            task=synthetic_task,
            test_ratio=SYNTHETIC["test_ratio"],
            seeds=SEEDS,
        ),
    log:
        f"logs/synthetic/{SETTING}/sample.log",
    shell:
        STAGE


rule synthetic_truth:
    output:
        truth=f"data/synthetic/{SETTING}/truth.json",
    params:
        **stage_params(
            synthetic_stage.truth,
            task=synthetic_task,
            mc_samples=SYNTHETIC["truth_mc_samples"],
            seed=SEEDS[0],
        ),
    log:
        f"logs/synthetic/{SETTING}/truth.log",
    shell:
        STAGE


# One job per (setting, estimator) runs every seed: a job costs ~2.5 s of process start and imports, which at one
# job per seed would take a quarter of the CPU budget. Rows stay one per seed; changing one estimator's settings
# still reruns only that estimator's jobs.
rule synthetic_estimate:
    input:
        data=expand(f"data/synthetic/{SETTING}/seed{{seed}}.parquet", seed=SEEDS, allow_missing=True),
        truth=rules.synthetic_truth.output.truth,
    output:
        rows=f"results/synthetic/runs/{SETTING}/{{estimator}}.parquet",
    threads: RESOURCES["synthetic_estimate"]["threads"]
    resources:
        **job_resources("synthetic_estimate", gpu_when=lambda wc: wc.estimator in registry.NEURAL_ESTIMATORS),
    params:
        **stage_params(
            synthetic_stage.estimate,
            task=synthetic_task,
            estimator=lambda wc: wc.estimator,
            settings=lambda wc: grid.estimator_settings(config, wc.estimator),
            seeds=SEEDS,
            device=DEVICE,
        ),
    log:
        f"logs/synthetic/{SETTING}/{{estimator}}.log",
    shell:
        STAGE


rule synthetic_gather:
    input:
        rows=[
            f"results/synthetic/runs/{task}/d{dim}-{balance}/{estimator}.parquet"
            for task, dim, balance, estimator in grid.synthetic_jobs(config)
        ],
    output:
        table="results/synthetic/mi_estimates.parquet",
    params:
        **stage_params(synthetic_stage.gather),
    log:
        "logs/synthetic/gather.log",
    shell:
        STAGE


rule synthetic_summary:
    input:
        table=rules.synthetic_gather.output.table,
    output:
        summary="results/synthetic/summary.parquet",
        metrics="results/synthetic/metrics.json",
        plot_data="results/synthetic/mi_vs_dim.csv",
        figure="results/synthetic/mi_vs_truth.png",
    params:
        **stage_params(synthetic_stage.summarise),
    log:
        "logs/synthetic/summary.log",
    shell:
        STAGE


rule synthetic_all:
    input:
        rules.synthetic_gather.output,
        rules.synthetic_summary.output,
