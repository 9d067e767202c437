# Issue 16: a discrete-label MI benchmark. truth (every task, one job) + estimate (one job per estimator, every task ×
# n × seed in it: a job costs ≈ 3 s of process start, so few jobs) → summary (estimates table, summary, figures).
from softmax_mi.stages import benchmark as benchmark_stage

BENCHMARK = config["benchmark"]
BENCH_ROWS = "results/benchmark/runs/{bench_estimator}.parquet"  # one leaf per estimator
try:  # task names, the families' parameters, the sweep's task names: checked at parse time, before any job runs
    benchmark_stage.check_tasks(BENCHMARK)
except ValueError as error:
    raise WorkflowError(str(error)) from None


wildcard_constraints:
    bench_estimator=registry.alternatives(registry.BENCHMARK_ESTIMATORS),


rule benchmark_truth:
    input:
        mnist=grid.benchmark_mnist_input(config),  # the prepared MNIST arrays, when an MNIST task is listed
    output:
        truths="results/benchmark/truths.parquet",
    params:
        **stage_params(
            benchmark_stage.truth,
            tasks=BENCHMARK["tasks"],
            seed=SEEDS[0],
            truth_se_target=BENCHMARK["truth_se_target"],
        ),
    log:
        "logs/benchmark/truth.log",
    shell:
        STAGE


# Every estimator sees the same samples (their seeds derive from the base seed, the task and n only); changing one
# estimator's settings reruns only its job.
rule benchmark_estimate:
    input:
        mnist=grid.benchmark_mnist_input(config),
    output:
        rows=BENCH_ROWS,
    threads: RESOURCES["benchmark_estimate"]["threads"]
    resources:
        **job_resources("benchmark_estimate",
                        gpu_when=lambda wc: wc.bench_estimator in registry.BENCHMARK_NEURAL_ESTIMATORS),
    params:
        **stage_params(
            benchmark_stage.estimate,
            runs=grid.benchmark_runs(config),
            estimator=lambda wc: wc.bench_estimator,
            settings=lambda wc: grid.benchmark_estimator_settings(config, wc.bench_estimator),
            seeds=grid.benchmark_seeds(config),
            main_sizes=BENCHMARK["n_per_class"],
            folds=lambda wc: grid.benchmark_folds(config, wc.bench_estimator),
            extrapolate=lambda wc: grid.benchmark_extrapolation(config, wc.bench_estimator),
            test_fraction=BENCHMARK["test_fraction"],
            level=BENCHMARK["level"],
            device=DEVICE,
        ),
    log:
        "logs/benchmark/{bench_estimator}.log",
    shell:
        STAGE


# bmi's own estimators (benchmark-mi, in .venv-bmi: `make bmi-env`) on the same samples, rows bmi_<name>; one job
# (each sample is one subprocess that imports jax). Not in the DAG when benchmark.bmi.estimators is [] (nothing asks
# for its output then: params/smoke.yaml, CI).
BMI_ROWS = ["results/benchmark/runs/bmi.parquet"] if BENCHMARK["bmi"]["estimators"] else []


rule benchmark_bmi:
    input:
        mnist=grid.benchmark_mnist_input(config, grid.benchmark_bmi_runs(config)),
    output:
        rows="results/benchmark/runs/bmi.parquet",
    params:
        **stage_params(
            benchmark_stage.estimate_bmi,
            runs=grid.benchmark_bmi_runs(config),
            estimators=BENCHMARK["bmi"]["estimators"],
            settings=BENCHMARK["bmi"]["settings"],
            encoding=BENCHMARK["bmi"]["encoding"],
            noise=BENCHMARK["bmi"]["noise"],
            seeds=grid.benchmark_seeds(config),
            main_sizes=BENCHMARK["n_per_class"],
            level=BENCHMARK["level"],
        ),
    log:
        "logs/benchmark/bmi.log",
    shell:
        STAGE


rule benchmark_summary:
    input:
        truths=rules.benchmark_truth.output.truths,
        rows=expand(BENCH_ROWS, bench_estimator=BENCHMARK["estimators"]) + BMI_ROWS,  # a plain pattern: a remote
        # storage provider (the cluster path) wraps rules.*.output in storage objects, which expand() refuses
    output:
        estimates="results/benchmark/estimates.parquet",
        summary="results/benchmark/summary.parquet",
        metrics="results/benchmark/metrics.json",
        bias_figure="results/benchmark/bias.png",
        coverage_figure="results/benchmark/coverage.png",
    params:
        **stage_params(benchmark_stage.summarise, tasks=BENCHMARK["tasks"], level=BENCHMARK["level"]),
    log:
        "logs/benchmark/summary.log",
    shell:
        STAGE


rule benchmark_all:
    input:
        rules.benchmark_summary.output,
