"""Every name the settings, the rules and the tables use, listed once (torch-free: the Snakefile imports it).

Library modules take their lists from here (``losses.CLASSIFICATION_LOSSES``, ``cam.WEIGHT_METHODS``,
``models.backbones.BACKBONES``), the rules build their wildcard constraints from it (:func:`alternatives`), and
``tests/test_registry.py`` checks the enums of ``workflow/schemas/params.schema.yaml`` and the library's own
tables (``estimators.ESTIMATORS``, the loss functions, the CAM weight rules, the backbone factories) against it.
"""

from __future__ import annotations

from collections.abc import Iterable

# MI estimators (docs/paper.md §2): neural ones train a network (and may use the GPU), the others do not
NEURAL_ESTIMATORS = ("softmax", "pc_softmax", "mine", "infonce", "nwj")
NONPARAMETRIC_ESTIMATORS = ("knn", "sklearn_knn")
ESTIMATORS = (*NEURAL_ESTIMATORS, *NONPARAMETRIC_ESTIMATORS)
SYNTHETIC_TASKS = ("gaussian", "uniform")
BALANCES = ("balanced", "imbalanced")  # the synthetic task's class-count profiles

# discrete-label MI benchmark (issue 16, docs/benchmark.md): task families (softmax_mi.benchmark.tasks.TASK_FAMILIES)
# and estimators (softmax_mi.benchmark.estimators.ESTIMATORS)
BENCHMARK_FAMILIES = ("gaussian", "student_t", "bijection", "independent", "saturated", "gao", "mnist")
BENCHMARK_ESTIMATORS = ("softmax", "pc_softmax", "logloss", "mine", "infonce", "nwj", "knn")
BENCHMARK_NEURAL_ESTIMATORS = ("softmax", "pc_softmax", "logloss", "mine", "infonce", "nwj")
BMI_ESTIMATORS = ("ksg", "infonce", "mine", "nwj")  # bmi's own, run in .venv-bmi (softmax_mi.benchmark.bmi)

# classification (docs/paper.md §3): losses, and which params.yaml `classification` sections each loss reads
LOSSES = ("softmax", "pc_softmax", "logit_adjusted", "class_balanced", "ldam_drw")
LOSS_OPTIONS = {"logit_adjusted": ("logit_adjusted",), "class_balanced": ("class_balanced",),
                "ldam_drw": ("ldam_drw", "class_balanced")}
CLS_SETTINGS = ("imbalanced", "balanced")  # the faithful protocol's and CUB's settings
IMBALANCE_PROFILES = ("step", "exponential")  # the standard long-tail protocol's
STANDARD_BALANCED = "balanced"  # the standard protocol's balanced reference setting (every class at n_max)
MNIST_DATASETS = ("mnist", "fashion_mnist")
FEATURE_BACKBONES = ("efficientnet_lite0", "resnet50", "inception_v3")  # frozen CUB feature extractors

# label shift (issue 15): test priors and decision rules (softmax_mi.label_shift)
SHIFT_PROFILES = ("forward", "uniform", "backward")
SHIFT_DECAYS = ("step", "exponential")
SHIFT_RULES = ("argmax", "known_q", "em", "bbse", "posthoc_la")

# weakly-supervised localisation (docs/paper.md §4)
WEIGHT_METHODS = ("cam", "infocam", "infocam_full", "infocam_noregion", "infocam_leastlikely")
CAM_METHODS = (*WEIGHT_METHODS, "gradcam")
WSOL_PROTOCOLS = ("paper", "maxboxacc", "maxboxacc_v2")
BOX_CONVENTIONS = ("ours", "wsolevaluation")  # score_maps(protocol=...): how maps become boxes and IoUs
WSOL_BACKBONES = ("gap_cnn", "vgg16_gap", "resnet50")
EMBEDDED_WSOL_DATASETS = ("cluttered_mnist",)  # built by the workflow
USER_DATASETS = ("cub", "tiny_imagenet")  # supplied by the user (softmax_mi.data.raw), never downloaded
WSOL_DATASETS = (*EMBEDDED_WSOL_DATASETS, *USER_DATASETS)


def alternatives(names: Iterable[str]) -> str:
    """A wildcard constraint (regular expression) matching exactly one of ``names``."""
    return "|".join(names)
