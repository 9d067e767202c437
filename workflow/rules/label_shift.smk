# Issue 15: the trained models under test label priors q unlike the training prior π. No training: one job reads the
# standard protocol's logits (one logits.npz per dataset × setting) and Part 1's Gaussian classifiers, draws the
# shifted test sets, applies every decision rule, then summarises and draws the figures (one process start, not two).
from softmax_mi.stages import label_shift as label_shift_stage


rule label_shift:
    input:
        logits=label_shift_input("logits"),
        classifiers=label_shift_input("classifiers"),
    output:
        rows="results/label_shift/shifts.parquet",
        summary="results/label_shift/summary.parquet",
        metrics="results/label_shift/metrics.json",
        accuracy_figure="results/label_shift/accuracy_vs_ratio.png",
        prior_figure="results/label_shift/prior_estimates.png",
    params:
        **stage_params(
            label_shift_stage.run,
            study=config["label_shift"],
            seed=SEEDS[0],
            synthetic_tasks=grid.label_shift_synthetic(config),
        ),
    log:
        "logs/label_shift/run.log",
    shell:
        STAGE


rule label_shift_all:
    input:
        rules.label_shift.output,
