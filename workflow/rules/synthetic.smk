# Paper §2 (E1–E3): tasks with known MI → one job per (task, dim, balance): every estimator × seed → tables.
from softmax_mi.stages import synthetic as synthetic_stage

SYNTHETIC = config["synthetic"]


SETTING = "{task}/d{dim}-{balance}"

wildcard_constraints:
    task=registry.alternatives(registry.SYNTHETIC_TASKS),
    dim=r"\d+",
    balance=registry.alternatives(registry.BALANCES),


# One job per setting draws every seed's data, computes the truth and runs every estimator on every seed: a job
# pays ~3 s of process start and imports, which at one job per (setting, estimator) plus separate sampling and
# truth jobs (75 jobs) took a third of the part's CPU time. The price: changing one estimator's settings reruns
# its whole setting (all estimators), not only that estimator. The job asks for the GPU when it trains a network
# (any neural estimator configured); its kNN runs stay on the CPU inside it.
rule synthetic_estimate:
    output:
        rows=f"results/synthetic/runs/{SETTING}.parquet",
        classifiers=f"models/synthetic/{SETTING}/classifiers.pt",
    threads: RESOURCES["synthetic_estimate"]["threads"]
    resources:
        **job_resources("synthetic_estimate", gpu_when=lambda wc: grid.synthetic_trains(config, int(wc.dim))),
    params:
        **stage_params(
            synthetic_stage.estimate,
            task=synthetic_task,
            test_ratio=SYNTHETIC["test_ratio"],
            mc_samples=SYNTHETIC["truth_mc_samples"],
            truth_seed=SEEDS[0],
            seeds=SEEDS,
            estimators=lambda wc: grid.synthetic_estimator_settings(config, int(wc.dim)),
            device=DEVICE,
        ),
    log:
        f"logs/synthetic/{SETTING}/estimate.log",
    shell:
        STAGE


rule synthetic_gather:
    input:
        rows=[f"results/synthetic/runs/{task}/d{dim}-{balance}.parquet"
              for task, dim, balance in grid.synthetic_settings(config)],
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
