# The reproduction report (issue 6): paper numbers beside ours, a verdict per claim computed from the parts'
# summaries, every figure embedded. Inputs are the parts' summary tables and figures; the report itself reads the
# results folder, so a part missing from the DAG is reported as "not run" rather than failing the rule.
from softmax_mi.report import stage as report_stage


rule report:
    input:
        synthetic=rules.synthetic_summary.output.summary,
        synthetic_figure=rules.synthetic_summary.output.figure,
        classification=rules.classification_summary.output.summary,
        classification_figures=[
            rules.classification_summary.output.per_class_figure,
            rules.classification_summary.output.imbalance_figure,
            rules.classification_summary.output.convergence_figure,
        ],
        localisation=rules.localisation_gather.output.summary,
        localisation_figures=rules.localisation_all.input.figures,
        benchmark=rules.benchmark_summary.output.estimates,
        benchmark_figures=[rules.benchmark_summary.output.bias_figure, rules.benchmark_summary.output.coverage_figure],
        label_shift=rules.label_shift.output.summary,
        label_shift_figures=[rules.label_shift.output.accuracy_figure, rules.label_shift.output.prior_figure],
    output:
        markdown="results/report.md",
        html=report("results/report.html", category="Reproduction report",
                    caption="../report/report.rst"),
        metrics="results/report.json",
    params:
        **stage_params(report_stage.write),
    log:
        "logs/report.log",
    shell:
        STAGE
