"""Pipeline stages of the WSOL experiment (paper §4, E6 + E8), on any dataset in the :mod:`softmax_mi.data.wsol`
format: the embedded cluttered MNIST (default), and CUB-200-2011 / Tiny-ImageNet when the user supplies them (E6, E7).

dataset → train (:func:`softmax_mi.wsol.train_wsol`: one GAP classifier per dataset × backbone × ADL × seed,
checkpoint chosen on val_fullsup accuracy) → evaluate (:func:`softmax_mi.localisation.evaluate.evaluate_wsol`:
`paper`, `maxboxacc` and `maxboxacc_v2` protocols, τ chosen on val_fullsup only and applied to test and to the faithful
derived splits ``test_half`` (CUB, B12) and ``test_faithful_boxes`` (Tiny-ImageNet, B13); leaf tables per run) →
gather (metrics.parquet, curves.parquet, metrics.json) → figures (one set per dataset).

Torch-using library modules are imported inside the stage functions: the Snakefile imports this module at parse time.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from softmax_mi.data import wsol
from softmax_mi.io import atomic_path, load_checkpoint, read_json, read_table, write_json, write_table
from softmax_mi.provenance import AGGREGATE_PROVENANCE_COLUMNS, PROVENANCE_COLUMNS, provenance
from softmax_mi.runtime import derive_seed, resolve_device, seed_everything
from softmax_mi.summaries import LOCALISATION_KEYS, SEED_COLUMNS, localisation_headline, summarise_localisation

log = logging.getLogger(__name__)

METRICS_COLUMNS = {
    "dataset": "WSOL dataset: cluttered_mnist (embedded, softmax_mi.data.cluttered), cub or tiny_imagenet "
    "(user-supplied, softmax_mi.data.cub / tiny_imagenet)",
    "backbone": "classifier backbone (softmax_mi.models.backbones)",
    "adl": "whether ADL (attention-based dropout) was active in training",
    "method": "map (softmax_mi.cam: cam, infocam, …, gradcam), centre_box (fixed central box baseline) or classifier",
    "protocol": "paper (fixed τ, largest component) | maxboxacc (τ chosen on val_fullsup, largest component) | "
    "maxboxacc_v2 (τ per IoU threshold chosen on val_fullsup, all components) | classification",
    "split": "val_fullsup (where τ / checkpoint were chosen), test, or a faithful split of the original code: "
    "test_half (CUB: every other test image per class, B12), test_faithful_boxes (Tiny-ImageNet: misread boxes, B13)",
    "threshold": "τ on the min-max normalised map, fraction of its range (NaN where not applicable)",
    "iou": "IoU threshold δ, fraction (NaN for a mean over δ or for classification)",
    "metric": "gt_known_loc | top1_loc | box_acc | maxboxacc_v2 (mean over δ of box_acc) | top1_acc",
    "value": "accuracy, fraction 0–1",
    "seed": "base seed from params.yaml (training seed derives from it)",
    "n_test": "images the value is computed on (of the split in `split`)",
    **PROVENANCE_COLUMNS,
}

CURVES_COLUMNS = {
    "dataset": METRICS_COLUMNS["dataset"],
    "backbone": METRICS_COLUMNS["backbone"],
    "adl": METRICS_COLUMNS["adl"],
    "method": METRICS_COLUMNS["method"],
    "seed": METRICS_COLUMNS["seed"],
    "split": METRICS_COLUMNS["split"],
    "boxes": "largest (largest connected component) | all (best of all components, MaxBoxAccV2)",
    "iou": "IoU threshold δ, fraction",
    "threshold": "τ on the min-max normalised map, fraction of its range",
    "value": "box accuracy at (τ, δ): fraction of images with IoU ≥ δ, 0–1",
    **PROVENANCE_COLUMNS,
}

SUMMARY_COLUMNS = {
    **{key: METRICS_COLUMNS[key] for key in LOCALISATION_KEYS},
    **SEED_COLUMNS,
    "mean": "mean of value over seeds, fraction 0–1",
    "std": "sample standard deviation of value over seeds, fraction (NaN for one seed)",
    **AGGREGATE_PROVENANCE_COLUMNS,
}


def wsol_seed(seed: int, purpose: str, dataset: str, backbone: str, adl: bool) -> int:
    """The seed of one WSOL run (dataset × backbone × ADL × seed) for ``purpose`` (wsol_train, wsol_evaluate)."""
    return derive_seed(seed, purpose, dataset, backbone, adl)


def dataset(*, data: dict, outputs: dict) -> None:
    """Render the cluttered-MNIST WSOL dataset (deterministic from ``data.seed``)."""
    from softmax_mi.data import cluttered  # torch: imported by the job, not at parse time

    config = cluttered.ClutterConfig.from_params(data)
    images, frame = cluttered.build(data["counts"], config, data["seed"])
    cluttered.save(images, frame, Path(outputs["images"]).parent)
    log.info("cluttered MNIST: %s images %s; splits %s", len(images), images.shape[1:], data["counts"])


def _network(split: wsol.WSOLSplit, backbone: str, adl: bool, settings: dict, device: str, inputs: dict, *, trained: bool):
    """The run's GAP classifier (``trained``: the checkpoint's weights, in eval mode) and its input pipeline."""
    from softmax_mi.models.backbones import build_backbone  # torch: imported by the job, not at parse time
    from softmax_mi.wsol import InputPipeline, image_channels  # torch: as above

    channels = image_channels(split.images)
    model = build_backbone(
        backbone, wsol.n_classes(inputs["boxes"]), in_channels=channels,
        pretrained="none" if trained else settings["pretrained"], adl=settings["adl_settings"] if adl else None,
        widths=tuple(settings["gap_cnn"]["widths"]),
    )
    if trained:
        model.load_state_dict(load_checkpoint(inputs["checkpoint"], fix="delete it and rerun: snakemake --cores all"))
        model.eval()
    return model.to(device), InputPipeline(channels, backbone, settings["input_size"], device)


def train(*, dataset: str, backbone: str, adl: bool, settings: dict, seed: int, device: str, inputs: dict,
          outputs: dict) -> None:
    """Train one GAP classifier on the train split's labels; keep the epoch with the best val_fullsup accuracy."""
    import torch  # torch: imported by the job, not at parse time

    from softmax_mi.wsol import WSOLTrainConfig, train_wsol  # torch: as above

    device = resolve_device(device)
    run_seed = wsol_seed(seed, "wsol_train", dataset, backbone, adl)
    seed_everything(run_seed)  # before the model is built: its initial weights draw from the global generator
    config = WSOLTrainConfig.from_params(settings["training"])
    train_split = wsol.load(inputs["images"], inputs["boxes"], "train")
    val_split = wsol.load(inputs["images"], inputs["boxes"], "val_fullsup")
    model, to_input = _network(train_split, backbone, adl, settings, device, inputs, trained=False)
    result = train_wsol(model, train_split, val_split, to_input, config, seed=run_seed)
    with atomic_path(outputs["checkpoint"]) as tmp:
        torch.save(result.best_state, tmp)
    write_json(
        {"history": result.history, "best_epoch": result.best_epoch, "val_fullsup_acc": result.best_val_acc,
         "seconds": result.seconds, "run_seed": run_seed, "device": device},
        outputs["summary"],
    )


def evaluate(*, dataset: str, backbone: str, adl: bool, settings: dict, seed: int, device: str, inputs: dict,
             outputs: dict) -> None:
    """Score every method under the three protocols; τ is chosen on val_fullsup and applied to the test splits."""
    from softmax_mi.localisation.evaluate import WSOLEvalConfig, evaluate_wsol  # torch: imported by the job

    device = resolve_device(device)
    seed_everything(wsol_seed(seed, "wsol_evaluate", dataset, backbone, adl))
    names = wsol.evaluation_splits(read_table(inputs["boxes"]))
    first = wsol.load(inputs["images"], inputs["boxes"], "val_fullsup")
    model, to_input = _network(first, backbone, adl, settings, device, inputs, trained=True)
    splits = ((name, first if name == "val_fullsup" else wsol.load(inputs["images"], inputs["boxes"], name))
              for name in names)  # loaded one at a time, as they are scored
    tags = {"dataset": dataset, "backbone": backbone, "adl": adl, "seed": seed}
    metrics, curves = evaluate_wsol(model, splits, to_input, WSOLEvalConfig.from_params(settings), tags=tags)
    origin = provenance({"settings": settings, "dataset": dataset, "backbone": backbone, "adl": adl, "seed": seed})
    write_table(metrics.assign(**origin), outputs["metrics"], column_docs=METRICS_COLUMNS)
    write_table(curves.assign(**origin), outputs["curves"], column_docs=CURVES_COLUMNS)


# ---------------------------------------------------------------------------------------------- gather + summary
def gather(*, inputs: dict, outputs: dict) -> None:
    """The runs' metrics and curves in one table each, their summary over seeds, and the headline metrics."""
    metrics = pd.concat([read_table(p) for p in inputs["metrics"]], ignore_index=True).sort_values(
        ["dataset", "backbone", "adl", "method", "protocol", "split", "metric", "iou", "seed"], ignore_index=True
    )
    curves = pd.concat([read_table(p) for p in inputs["curves"]], ignore_index=True)
    write_table(metrics, outputs["metrics"], column_docs=METRICS_COLUMNS,
                table_doc="WSOL metrics, one row per run × method × protocol × split × metric")
    write_table(curves, outputs["curves"], column_docs=CURVES_COLUMNS,
                table_doc="WSOL box accuracy vs τ, per run × method × split × box rule × δ")
    summary = summarise_localisation(metrics)[list(SUMMARY_COLUMNS)]
    write_table(summary, outputs["summary"], column_docs=SUMMARY_COLUMNS, table_doc="WSOL metrics, mean over seeds "
                "per run × method × protocol × split × metric × δ")
    training_seconds = [read_json(p)["seconds"] for p in inputs["summaries"]]
    write_json({"localisation": localisation_headline(summary),
                "training_seconds_mean": round(float(np.mean(training_seconds)), 1)}, outputs["json"])


# ------------------------------------------------------------------------------------------------------- figures
def run_thresholds(metrics: pd.DataFrame, *, backbone: str, adl: bool, seed: int, methods: list[str],
                   source: str = "metrics") -> dict[str, float]:
    """The MaxBoxAcc τ of each method in one run (one dataset's rows; chosen on val_fullsup, stored on test rows)."""
    run = metrics[(metrics["protocol"] == "maxboxacc") & (metrics["split"] == "test")
                  & (metrics["backbone"] == backbone) & (metrics["adl"] == adl)
                  & (metrics["seed"] == seed) & (metrics["metric"] == "gt_known_loc")]
    missing = [m for m in methods if not (run["method"] == m).any()]
    if missing:
        raise ValueError(f"{source}: no maxboxacc test row for {backbone}/adl={adl}/seed{seed} and method(s) "
                         f"{', '.join(missing)} (fix: rerun localisation_evaluate / localisation_gather)")
    return {m: float(run.loc[run["method"] == m, "threshold"].iloc[0]) for m in methods}


def figures(
    *, dataset: str, backbone: str, adl: bool, seed: int, settings: dict, device: str, inputs: dict, outputs: dict
) -> None:
    """Heatmap grid (CAM vs infoCAM, GT box red, predicted box green) and accuracy-vs-τ curves of one dataset.

    The maps are those of ``inputs["checkpoint"]``, the model of run ``seed``; the boxes use that run's τ."""
    from softmax_mi.localisation.evaluate import maps_with_boxes  # torch: imported by the job, not at parse time
    from softmax_mi.plots_localisation import plot_heatmaps, plot_threshold_curves  # matplotlib: only this job

    device = resolve_device(device)
    metrics = read_table(inputs["metrics"])
    metrics = metrics[metrics["dataset"] == dataset]
    curves = read_table(inputs["curves"])
    plot_threshold_curves(curves[curves["dataset"] == dataset], metrics, outputs["curves_figure"])
    split = wsol.load(inputs["images"], inputs["boxes"], "test")
    model, to_input = _network(split, backbone, adl, settings, device, inputs, trained=True)
    count = min(settings["figure_images"], len(split))
    index = np.random.default_rng(derive_seed("figure", dataset)).choice(len(split), size=count, replace=False)
    subset = split.subset(index)
    methods = [m for m in ("cam", "infocam") if m in settings["methods"]]
    taus = run_thresholds(metrics, backbone=backbone, adl=adl, seed=seed, methods=methods, source=inputs["metrics"])
    predicted_classes, maps, boxes = maps_with_boxes(model, subset, to_input, taus, region_k=settings["region_k"])
    plot_heatmaps(subset, maps, boxes, taus, predicted_classes, outputs["heatmaps"])
