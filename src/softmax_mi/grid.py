"""The experiment grid: which jobs the workflow runs and the settings each one gets, from the validated parameters.

Torch-free (the Snakefile imports it at parse time). Every function takes the validated ``params`` (Snakemake's
``config``) and, where a job is meant, its wildcards' values as plain arguments, and returns plain data; the rule
files turn it into paths and print the notices it returns. Names come from :mod:`softmax_mi.registry`.
Each job's settings are only the part of ``params`` that job depends on: Snakemake records them, so changing one
setting reruns exactly the jobs that use it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from softmax_mi import registry
from softmax_mi.data.mnist import fashion_mnist_folder
from softmax_mi.data.raw import DATASETS as RAW_DATASETS
from softmax_mi.data.raw import notice, raw_source, switch
from softmax_mi.params import deep_merge

Params = Mapping[str, Any]

# ------------------------------------------------------------------------------------ synthetic (docs/paper.md §2)


def synthetic_settings(params: Params) -> list[tuple[str, int, str]]:
    """(task, dim, balance) of every configured synthetic setting."""
    synthetic = params["synthetic"]
    settings = [("gaussian", dim, balance) for dim in synthetic["gaussian"]["dims"]
                for balance in synthetic["gaussian"]["class_counts"]]
    if synthetic["uniform"]["enabled"]:
        settings.append(("uniform", 1, "balanced"))
    return settings


def synthetic_estimators(params: Params, dim: int) -> list[str]:
    """The configured estimators that apply at dimension ``dim``."""
    # scikit-learn's mutual_info_classif estimates per-feature MI: it answers the joint question only for d = 1.
    return [name for name in params["synthetic"]["estimators"] if name != "sklearn_knn" or dim == 1]


def synthetic_estimator_settings(params: Params, dim: int) -> dict[str, dict[str, Any]]:
    """Estimator name → its settings (:func:`estimator_settings`), for every estimator that applies at ``dim``: what
    one setting's job runs, in the configured order."""
    return {name: estimator_settings(params, name) for name in synthetic_estimators(params, dim)}


def synthetic_trains(params: Params, dim: int) -> bool:
    """Whether the job of a setting at dimension ``dim`` trains a network (then it may ask for a GPU)."""
    return any(name in registry.NEURAL_ESTIMATORS for name in synthetic_estimators(params, dim))


def synthetic_task(params: Params, task: str, dim: int | str, balance: str) -> dict[str, Any]:
    """The definition of one synthetic task (softmax_mi.data.synthetic) from a job's wildcards."""
    synthetic = params["synthetic"]
    if task == "uniform":
        counts = [synthetic["uniform"]["n_per_class"]] * synthetic["uniform"]["n_classes"]
        return {"kind": "uniform", "dim": 1, "class_counts": counts}
    return {
        "kind": "gaussian",
        "dim": int(dim),
        "class_counts": synthetic["gaussian"]["class_counts"][balance],
        "mean_unit": synthetic["gaussian"]["mean_unit"],
    }


def estimator_settings(params: Params, estimator: str) -> dict[str, Any]:
    """One estimator's settings: the shared `neural` training settings (neural estimators) + its own section."""
    synthetic = params["synthetic"]
    shared = synthetic["neural"] if estimator in registry.NEURAL_ESTIMATORS else {}
    return {**shared, **synthetic.get(estimator, {})}


# ------------------------------------------------------------------------------ discrete-label MI benchmark (issue 16)

BENCHMARK_MNIST = "data/mnist/mnist/arrays.npz"  # the classification part's prepared MNIST (classification_prepare)


def benchmark_seeds(params: Params) -> list[int]:
    """The benchmark's base seeds: the first ``benchmark.n_seeds`` of ``seeds``."""
    return params["seeds"][: params["benchmark"]["n_seeds"]]


def benchmark_runs(params: Params) -> list[tuple[dict[str, Any], list[int]]]:
    """(task spec, rows per class) of every task: ``n_per_class``, plus the sweep's sizes for the sweep's tasks."""
    benchmark = params["benchmark"]
    sweep = set(benchmark["sweep"]["tasks"])
    runs = []
    for spec in benchmark["tasks"]:
        sizes = set(benchmark["n_per_class"])
        if spec["name"] in sweep:
            sizes |= set(benchmark["sweep"]["n_per_class"])
        runs.append((dict(spec), sorted(sizes)))
    return runs


def benchmark_bmi_runs(params: Params) -> list[tuple[dict[str, Any], list[int]]]:
    """The runs of :func:`benchmark_runs` on bmi's tasks (``benchmark.bmi.tasks``; null: every task)."""
    chosen = params["benchmark"]["bmi"]["tasks"]
    return [(spec, sizes) for spec, sizes in benchmark_runs(params) if chosen is None or spec["name"] in chosen]


def benchmark_estimator_settings(params: Params, estimator: str) -> dict[str, Any]:
    """One benchmark estimator's settings: the shared `benchmark.neural` (trained estimators) + its own section."""
    benchmark = params["benchmark"]
    shared = benchmark["neural"] if estimator in registry.BENCHMARK_NEURAL_ESTIMATORS else {}
    return {**shared, **benchmark.get(estimator, {})}


def benchmark_folds(params: Params, estimator: str) -> int:
    """One benchmark estimator's folds: ``benchmark.crossfit.folds`` when it cross-fits, else 1 (one split)."""
    crossfit = params["benchmark"]["crossfit"]
    return crossfit["folds"] if estimator in crossfit["estimators"] else 1


def benchmark_extrapolation(params: Params, estimator: str) -> float | None:
    """One benchmark estimator's learning-curve rate: ``benchmark.extrapolate.rate`` when it extrapolates, else
    None (off)."""
    extrapolate = params["benchmark"]["extrapolate"]
    return extrapolate["rate"] if estimator in extrapolate["estimators"] else None


def benchmark_mnist_input(params: Params, runs: list | None = None) -> list[str]:
    """The prepared MNIST arrays when a benchmark task (of ``runs``, default every task) is an MNIST one."""
    specs = [spec for spec, _ in runs] if runs is not None else params["benchmark"]["tasks"]
    return [BENCHMARK_MNIST] if any(spec["family"] == "mnist" for spec in specs) else []


# ------------------------------------------------------------------------------- classification (docs/paper.md §3)


def cls_datasets(params: Params) -> tuple[list[str], str | None]:
    """The MNIST-family datasets in use and a notice when Fashion-MNIST is asked for but its IDX files are absent
    (it is then left out)."""
    classification = params["classification"]
    wanted = set(classification["faithful"]["datasets"]) | set(classification["standard"]["datasets"])
    message = None
    if "fashion_mnist" in wanted and fashion_mnist_folder(classification["fashion_mnist_dir"]) is None:
        message = ("classification: Fashion-MNIST IDX files not found (apt-get install dataset-fashion-mnist, or set "
                   "classification.fashion_mnist_dir / $SOFTMAX_MI_FASHION_MNIST); skipping Fashion-MNIST.")
        wanted.discard("fashion_mnist")
    return sorted(wanted), message


def cls_faithful_jobs(params: Params, datasets: list[str]) -> list[tuple[str, str, str]]:
    """(dataset, setting, loss) of every faithful-protocol training job (one loss, its seeds stacked);
    ``datasets``: those in use (cls_datasets)."""
    faithful = params["classification"]["faithful"]
    return [
        (dataset, f"faithful-{setting}", loss)
        for dataset in faithful["datasets"] if dataset in datasets
        for setting in faithful["settings"]
        for loss in faithful["losses"]
    ]


def cls_standard_settings(params: Params) -> list[str]:
    """The standard protocol's settings: every profile × ratio, then the balanced reference when it has losses."""
    standard = params["classification"]["standard"]
    settings = [f"{profile}-r{ratio:g}" for profile in standard["profiles"] for ratio in standard["ratios"]]
    return settings + ([registry.STANDARD_BALANCED] if standard["balanced_losses"] else [])


def cls_standard_jobs(params: Params, datasets: list[str]) -> list[tuple[str, str]]:
    """(dataset, setting) of every standard-protocol job: it trains every loss × τ × seed of the setting as one
    stacked model and evaluates it; ``datasets``: those in use (cls_datasets)."""
    standard = params["classification"]["standard"]
    return [(dataset, setting) for dataset in standard["datasets"] if dataset in datasets
            for setting in cls_standard_settings(params)]


def cls_standard_losses(params: Params, setting: str) -> list[str]:
    """The losses one standard-protocol setting trains (the balanced reference: `balanced_losses`)."""
    standard = params["classification"]["standard"]
    return list(standard["balanced_losses"] if setting == registry.STANDARD_BALANCED else standard["losses"])


def cls_standard_options(params: Params, setting: str) -> dict[str, Any]:
    """The loss options the losses of one standard-protocol setting read, LDAM-DRW's re-weighting epoch being the
    standard recipe's (`standard.drw_epoch`)."""
    options: dict[str, Any] = {}
    for loss in cls_standard_losses(params, setting):
        options.update(loss_options(params, loss, drw_epoch=params["classification"]["standard"]["drw_epoch"]))
    return options


def cls_seeds(params: Params, setting: str) -> list[int]:
    """Faithful: the setting's own seed list (null: `seeds`); standard: the first n of `seeds`."""
    classification = params["classification"]
    if setting.startswith("faithful-"):
        return classification["faithful"]["seeds"][setting.removeprefix("faithful-")] or params["seeds"]
    return params["seeds"][: classification["standard"]["n_seeds"]]


def loss_options(params: Params, loss: str, *, drw_epoch: int | None = None) -> dict[str, Any]:
    """Only the `classification` sections ``loss`` reads (so changing one loss's option retrains only that loss).

    ``drw_epoch``: a part's own LDAM-DRW re-weighting epoch (CUB's), replacing the MNIST one of `ldam_drw`."""
    classification = params["classification"]
    options = {key: classification[key] for key in registry.LOSS_OPTIONS.get(loss, ())}
    if drw_epoch is not None and "ldam_drw" in options:
        options["ldam_drw"] = {key: value for key, value in options["ldam_drw"].items() if key != "drw_epoch"}
        options["drw_epoch"] = drw_epoch
    return options


def cub_head_jobs(params: Params, cub_runs: bool) -> list[tuple[str, str]]:
    """(setting, loss) of every CUB linear-head job; none when CUB is not available."""
    if not cub_runs:
        return []
    cub = params["classification"]["cub"]
    return [(setting, loss) for setting in cub["settings"] for loss in cub["losses"]]


def cls_leaves(params: Params, datasets: list[str], cub_runs: bool) -> list[str]:
    """The folders under results/classification/runs/ whose tables the classification tables gather: faithful
    ``dataset/setting/loss``, standard ``dataset/setting``, then CUB's ``cub/setting/loss``."""
    return ([f"{d}/{s}/{loss}" for d, s, loss in cls_faithful_jobs(params, datasets)]
            + [f"{d}/{s}" for d, s in cls_standard_jobs(params, datasets)]
            + [f"cub/{s}/{loss}" for s, loss in cub_head_jobs(params, cub_runs)])


def cls_curve_leaves(params: Params, datasets: list[str]) -> list[str]:
    """The folders under results/classification/runs/ with a learning curve: the standard protocol's."""
    return [f"{d}/{s}" for d, s in cls_standard_jobs(params, datasets)]


# ------------------------------------------------------------------------------------------ label shift (issue 15)


def label_shift_logits(params: Params, datasets: list[str]) -> list[tuple[str, str]]:
    """(dataset, setting) of every standard-protocol setting whose test logits the label-shift study reads
    (``datasets``: those in use, cls_datasets)."""
    standard = params["classification"]["standard"]
    return [(dataset, f"{profile}-r{ratio:g}") for dataset in standard["datasets"] if dataset in datasets
            for profile in standard["profiles"] for ratio in standard["ratios"]]


def label_shift_synthetic(params: Params) -> list[dict[str, Any]]:
    """The Gaussian settings whose classifiers the label-shift study reads: ``label_shift.synthetic`` dims and
    balances that Part 1 also runs with both classifier estimators; each ``{"setting", "task"}``."""
    shift, gaussian = params["label_shift"]["synthetic"], params["synthetic"]["gaussian"]
    if not {"softmax", "pc_softmax"} <= set(params["synthetic"]["estimators"]):
        return []
    return [{"setting": f"d{dim}-{balance}", "task": synthetic_task(params, "gaussian", dim, balance)}
            for dim in shift["dims"] if dim in gaussian["dims"]
            for balance in shift["balances"] if balance in gaussian["class_counts"]]


# ----------------------------------------------------------------------------- user datasets (CUB, Tiny-ImageNet)


def dataset_settings(params: Params, name: str) -> dict[str, Any]:
    """The settings a prepared dataset depends on (the switch and the file names only choose the input)."""
    section = params["datasets"][name]
    return {key: value for key, value in section.items() if key not in ("enabled", "archive", "folder")}


def datasets_found(params: Params, availability: Mapping[str, tuple[bool, str | None]]) -> dict[str, dict[str, Any]]:
    """What the manifest records per dataset: whether its rules run, the notice, the raw source found."""
    return {name: {"run": run, "notice": message, "source": str(raw_source(params, name) or "")}
            for name, (run, message) in availability.items()}


def dataset_unavailable(params: Params, name: str) -> str:
    """Why a user dataset's rules do not run: switched off, or the notice saying what to put where."""
    if switch(params["datasets"][name]["enabled"]) == "off":
        return f"{RAW_DATASETS[name].title} is switched off (params.yaml datasets.{name}.enabled)"
    return notice(params, name)


# ----------------------------------------------------------------------------- localisation (docs/paper.md §4)


def wsol_settings(section: Mapping[str, Any], dataset: str, backbone: str | None = None) -> dict[str, Any]:
    """The ``localisation`` settings of one dataset (and backbone): ``overrides[dataset]`` then
    ``overrides[dataset/backbone]`` merged over the section; the result has no ``overrides`` key."""
    overrides = section.get("overrides") or {}
    settings = {key: value for key, value in section.items() if key != "overrides"}
    for key in (dataset, f"{dataset}/{backbone}" if backbone else None):
        if key in overrides:
            settings = deep_merge(settings, overrides[key])
    return settings


def wsol_datasets(params: Params, dataset_runs: Mapping[str, bool]) -> list[str]:
    """The embedded dataset, then each user dataset whose rules run (``dataset_runs``: name -> runs)."""
    return [params["localisation"]["data"]["name"]] + [name for name in registry.USER_DATASETS if dataset_runs[name]]


def wsol_runs(params: Params, dataset: str) -> list[tuple[str, str]]:
    """(backbone, adl tag) pairs of one dataset's grid; the tag is ``adl`` or ``noadl``."""
    settings = wsol_settings(params["localisation"], dataset)
    return [(backbone, "adl" if adl else "noadl") for backbone in settings["backbones"] for adl in settings["adl"]]


def wsol_jobs(params: Params, datasets: list[str]) -> list[tuple[str, str, str, int]]:
    """(dataset, backbone, adl tag, seed) of every WSOL training (and evaluation) job."""
    return [(dataset, backbone, adl, seed) for dataset in datasets for backbone, adl in wsol_runs(params, dataset)
            for seed in params["seeds"][: params["localisation"]["n_seeds"]]]


def wsol_train_settings(params: Params, dataset: str, backbone: str) -> dict[str, Any]:
    """The part of the settings that training depends on (so changing e.g. the methods does not retrain)."""
    settings = wsol_settings(params["localisation"], dataset, backbone)
    return {key: settings[key] for key in ("adl_settings", "pretrained", "input_size", "gap_cnn", "training")}


def wsol_evaluate_settings(params: Params, dataset: str, backbone: str) -> dict[str, Any]:
    """Every setting but the data recipe and the figure's."""
    settings = wsol_settings(params["localisation"], dataset, backbone)
    return {key: value for key, value in settings.items() if key not in ("data", "figure_images")}


def wsol_figure_run(params: Params, dataset: str) -> dict[str, Any]:
    """The run whose maps and τ the figure shows: the dataset's first backbone / ADL setting, first listed seed
    (the stage gets this seed explicitly and reads the τ of this run only)."""
    backbone, adl = wsol_runs(params, dataset)[0]
    return {"backbone": backbone, "adl": adl, "seed": params["seeds"][0]}


def wsol_figure_settings(params: Params, dataset: str) -> dict[str, Any]:
    """The settings of the figure's run (its dataset and backbone)."""
    return wsol_settings(params["localisation"], dataset, wsol_figure_run(params, dataset)["backbone"])
