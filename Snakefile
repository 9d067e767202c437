# softmax-mi: every result of the paper reimplementation, rebuilt by `snakemake --cores all`.
# Parameters come from params.yaml (+ overlays: --configfile params/smoke.yaml); logic lives in src/softmax_mi,
# the rules in workflow/rules only wire files to it.

from snakemake.utils import min_version

min_version("9.0")


from softmax_mi.params import strict_configfile


configfile: strict_configfile("params.yaml")  # strict: a YAML error fails with file:line:column


include: "workflow/rules/common.smk"
include: "workflow/rules/datasets.smk"
include: "workflow/rules/synthetic.smk"
include: "workflow/rules/classification.smk"
include: "workflow/rules/cub_classification.smk"
include: "workflow/rules/localisation.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        rules.datasets_all.input,
        rules.synthetic_all.input,
        rules.classification_all.input,
        rules.localisation_all.input,
        rules.report.output,
