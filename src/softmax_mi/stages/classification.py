"""Pipeline stages of the PC-softmax classification experiments (docs/paper.md §3.1, E4) with the long-tail controls:
prepare (uint8 arrays) → split (indices per setting) → train (one job per dataset × setting × loss; its seeds
trained together as one stacked LeNet, resumable) → evaluate (one leaf per job) → gather → summarise.

Settings, seeds, the run identity and the tables: :mod:`softmax_mi.classification`; the trainer:
:mod:`softmax_mi.multirun`; metrics and rows: :mod:`softmax_mi.classification_metrics`. The test split never
selects anything: every run is trained for the fixed number of epochs and its last epoch is reported.
"""

from __future__ import annotations

import logging
import os
import time
from typing import TYPE_CHECKING

import pandas as pd

from softmax_mi.classification import METRICS_COLUMNS, PER_CLASS_COLUMNS, SPLIT_COLUMNS, load_dataset, make_split
from softmax_mi.classification import describe_setting, runs_of_checkpoint, split_arrays, split_table
from softmax_mi.data.mnist import FASHION_CLASSES, ImageDataset
from softmax_mi.io import load_checkpoint, read_table, write_json, write_table
from softmax_mi.provenance import AGGREGATE_PROVENANCE_COLUMNS
from softmax_mi.runtime import resolve_device
from softmax_mi.summaries import SEED_COLUMNS, classification_headline, summarise_classification

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

N_CLASSES = 10

SUMMARY_COLUMNS = {
    **{key: METRICS_COLUMNS[key] for key in ("dataset", "protocol", "setting", "profile", "imbalance_ratio", "loss",
                                              "tau", "split")},
    **SEED_COLUMNS,
    "micro_acc_mean": "mean micro accuracy over seeds, fraction 0–1",
    "micro_acc_std": "sample std of micro accuracy over seeds, fraction (NaN for one seed)",
    "macro_acc_mean": "mean macro accuracy over seeds, fraction 0–1",
    "macro_acc_std": "sample std of macro accuracy over seeds, fraction (NaN for one seed)",
    "minority_acc_mean": "mean minority-class accuracy over seeds, fraction 0–1",
    "mi_estimate_mean": "mean of mi_estimate over seeds, nats",
    "mi_softmax_estimate_mean": "mean of mi_softmax_estimate over seeds, nats",
    "entropy_y": METRICS_COLUMNS["entropy_y"],
    **AGGREGATE_PROVENANCE_COLUMNS,
}



# --------------------------------------------------------------------------------------------- data


def prepare(*, dataset: str, fashion_dir: str | None = None, outputs: dict) -> None:
    """Read the raw source once (checksummed MNIST pickle / IDX files) and store uint8 arrays."""
    data = load_dataset(dataset, fashion_dir)
    data.save(outputs["arrays"])
    log.info("%s: train %s, test %s", dataset, data.x_train.shape, data.x_test.shape)


def split(*, dataset: str, setting: str, faithful: dict, standard: dict, seed: int, inputs: dict, outputs: dict) -> None:
    """Indices of one setting's train / val / test examples (one row per example)."""
    data = ImageDataset.load(inputs["arrays"])
    chosen = make_split(data, dataset=dataset, setting=setting, faithful=faithful, standard=standard, seed=seed)
    write_table(split_table(data, chosen), outputs["split"], column_docs=SPLIT_COLUMNS, table_doc=f"{dataset} {setting} split")
    counts = chosen.counts(data.y_train, data.y_test)
    log.info("%s %s: train %s (%d), test %s (%d)", dataset, setting, counts["train"].tolist(), counts["train"].sum(),
             counts["test"].tolist(), counts["test"].sum())


def split_tensors(data: ImageDataset, frame: pd.DataFrame, role: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(uint8 images, int64 labels) of one role (train | val | test) of a split table."""
    import torch  # torch: imported by the job, not at parse time

    arrays = {"train": (data.x_train, data.y_train), "test": (data.x_test, data.y_test)}
    images, labels = split_arrays(arrays, frame, role)
    return torch.from_numpy(images), torch.from_numpy(labels).long()


# --------------------------------------------------------------------------------------------- training


def train(*, dataset: str, setting: str, loss: str, seeds: list[int], options: dict, training: dict, device: str,
          inputs: dict, outputs: dict) -> None:
    """Train every seed (and τ) of one loss on one setting as one stacked LeNet; resumable per epoch."""
    import torch  # torch: imported by the job, not at parse time

    from softmax_mi.models.lenet import normalise  # torch
    from softmax_mi.multirun import SGDConfig, init_models, run_specs, save_runs, train_stacked  # torch

    device = resolve_device(device)
    images, labels = split_tensors(ImageDataset.load(inputs["arrays"]), read_table(inputs["split"]), "train")
    config = SGDConfig(**training)
    runs = run_specs(dataset=dataset, setting=setting, loss=loss, seeds=seeds, options=options, epochs=config.epochs,
                     drw_epoch=options.get("ldam_drw", {}).get("drw_epoch"))
    started = time.perf_counter()
    partial = outputs["model"] + ".partial"
    model = init_models(runs, N_CLASSES)
    history = train_stacked(model, images, labels, runs, config, n_classes=N_CLASSES, transform=normalise,
                            device=device, checkpoint=partial)
    seconds = time.perf_counter() - started
    save_runs(outputs["model"], runs, model, history, counts=torch.bincount(labels, minlength=N_CLASSES),
              seconds=seconds, device=device)
    os.remove(partial)  # the finished model supersedes the per-epoch resume state
    log.info("%s %s %s: %d runs in %.1f s on %s", dataset, setting, loss, len(runs), seconds, device)


# --------------------------------------------------------------------------------------------- evaluation


def evaluate(*, dataset: str, setting: str, loss: str, posthoc_taus: list[float], training: dict, device: str,
             inputs: dict, outputs: dict) -> None:
    """One metrics row per (run, split) and one per-class row per (run, split, class); softmax jobs also emit the
    post-hoc logit-adjusted rows."""
    from softmax_mi.classification_metrics import TrainedJob  # torch: imported by the job, not at parse time
    from softmax_mi.models.lenet import StackedLeNet, normalise  # torch
    from softmax_mi.multirun import last_train_loss, predict_logits  # torch

    device = resolve_device(device)
    state = load_checkpoint(inputs["model"], fix="delete it and rerun: snakemake --cores all")
    runs = runs_of_checkpoint(state, inputs["model"])
    model = StackedLeNet(len(runs), N_CLASSES)
    model.load_state_dict(state["model"])
    model.to(device)
    protocol, profile, ratio = describe_setting(setting, state["counts"])
    job = TrainedJob(
        protocol=protocol, profile=profile, imbalance_ratio=ratio, train_counts=state["counts"],
        epochs=max(h["epoch"] for h in state["history"]), train_loss=last_train_loss(state["history"]),
        train_seconds=state["seconds"], device=state["device"],
        class_names=[str(c) for c in range(N_CLASSES)] if dataset == "mnist" else list(FASHION_CLASSES),
        settings={"training": training}, posthoc_taus=posthoc_taus,
    )
    data, frame = ImageDataset.load(inputs["arrays"]), read_table(inputs["split"])
    rows, class_rows = [], []
    for role in ("test", "val"):
        images, labels = split_tensors(data, frame, role)
        if len(labels):
            metrics, per_class = job.rows(runs, predict_logits(model, images, transform=normalise).cpu(), labels, role)
            rows += metrics
            class_rows += per_class
    write_table(pd.DataFrame(rows)[list(METRICS_COLUMNS)], outputs["metrics"], column_docs=METRICS_COLUMNS)
    write_table(pd.DataFrame(class_rows)[list(PER_CLASS_COLUMNS)], outputs["per_class"], column_docs=PER_CLASS_COLUMNS)


# --------------------------------------------------------------------------------------------- tables


SORT_KEYS = ["dataset", "protocol", "setting", "loss", "tau", "seed", "split"]


def gather(*, inputs: dict, outputs: dict) -> None:
    """Concatenate the per-job leaves into metrics.parquet and per_class.parquet."""
    for key, columns, doc in (
        ("metrics", METRICS_COLUMNS, "one row per classification run × evaluation split"),
        ("per_class", PER_CLASS_COLUMNS, "one row per classification run × evaluation split × class"),
    ):
        table = pd.concat([read_table(p) for p in inputs[key]], ignore_index=True)
        sort = SORT_KEYS + (["class"] if key == "per_class" else [])
        table = table.sort_values(sort, ignore_index=True, na_position="first")
        write_table(table, outputs[key], column_docs=columns, table_doc=doc)


def summarise(*, inputs: dict, outputs: dict) -> None:
    from softmax_mi.plots import plot_accuracy_vs_imbalance, plot_per_class_accuracy

    table = read_table(inputs["metrics"])
    summary = summarise_classification(table)[list(SUMMARY_COLUMNS)]
    write_table(summary, outputs["summary"], column_docs=SUMMARY_COLUMNS, table_doc="classification, mean over seeds")
    write_json(classification_headline(summary), outputs["metrics_json"])
    plot_per_class_accuracy(read_table(inputs["per_class"]), outputs["per_class_figure"])
    plot_accuracy_vs_imbalance(summary, outputs["imbalance_figure"])
