"""Pipeline stages of the PC-softmax classification experiments (docs/paper.md §3.1, E4) with the long-tail controls:
prepare (uint8 arrays) → split (indices per setting) → faithful protocol: train (one job per dataset × setting ×
loss; its seeds trained together as one stacked LeNet, resumable) → evaluate (one leaf per job); standard protocol:
one job per dataset × setting trains every loss × τ × seed as one stacked LeNet and evaluates it (leaves, learning
curve, logits) → gather → summarise.

Settings, seeds, the run identity and the tables: :mod:`softmax_mi.classification`; the trainer:
:mod:`softmax_mi.multirun`; metrics and rows: :mod:`softmax_mi.classification_metrics`. The test split never
selects anything: every run is trained for the fixed number of epochs and its last epoch is reported (the standard
recipe was chosen on the balanced validation split: the learning curve).
"""

from __future__ import annotations

import logging
import math
import os
import time
from typing import TYPE_CHECKING

import pandas as pd

from softmax_mi.classification import CURVE_COLUMNS, METRICS_COLUMNS, PER_CLASS_COLUMNS, SPLIT_COLUMNS, RunId
from softmax_mi.classification import RunLogits, describe_setting, load_dataset, make_split, runs_of_checkpoint
from softmax_mi.classification import split_arrays, split_table
from softmax_mi.data.mnist import FASHION_CLASSES, ImageDataset
from softmax_mi.io import load_checkpoint, read_table, write_json, write_table
from softmax_mi.provenance import AGGREGATE_PROVENANCE_COLUMNS, provenance
from softmax_mi.runtime import resolve_device
from softmax_mi.summaries import SEED_COLUMNS, classification_headline, summarise_classification

if TYPE_CHECKING:
    import torch

    from softmax_mi.classification_metrics import TrainedJob

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


def train_lenets(runs: list, images: torch.Tensor, labels: torch.Tensor, training: dict, *, device: str, model: str,
                 validation: tuple[torch.Tensor, torch.Tensor] | None = None) -> tuple[torch.nn.Module, list[dict]]:
    """Train ``runs`` as one stacked LeNet on uint8 ``images``, resumable per epoch (``model`` + ``.partial``), and
    write ``model``; returns the model (in eval mode) and its per-epoch log (with ``validation``: its accuracy)."""
    import torch  # torch: imported by the job, not at parse time

    from softmax_mi.models.lenet import normalise  # torch
    from softmax_mi.multirun import SGDConfig, init_models, save_runs, train_stacked  # torch

    started = time.perf_counter()
    partial = model + ".partial"
    stacked = init_models(runs, N_CLASSES)
    history = train_stacked(stacked, images, labels, runs, SGDConfig(**training), n_classes=N_CLASSES,
                            transform=normalise, device=device, checkpoint=partial, validation=validation)
    seconds = time.perf_counter() - started
    save_runs(model, runs, stacked, history, counts=torch.bincount(labels, minlength=N_CLASSES), seconds=seconds,
              device=device)
    os.remove(partial)  # the finished model supersedes the per-epoch resume state
    log.info("%d runs in %.1f s on %s", len(runs), seconds, device)
    return stacked, history


def train(*, dataset: str, setting: str, loss: str, seeds: list[int], options: dict, training: dict, device: str,
          inputs: dict, outputs: dict) -> None:
    """Train every seed (and τ) of one loss on one setting as one stacked LeNet; resumable per epoch."""
    from softmax_mi.multirun import run_specs  # torch: imported by the job, not at parse time

    device = resolve_device(device)
    images, labels = split_tensors(ImageDataset.load(inputs["arrays"]), read_table(inputs["split"]), "train")
    runs = run_specs(dataset=dataset, setting=setting, loss=loss, seeds=seeds, options=options,
                     epochs=training["epochs"], drw_epoch=options.get("ldam_drw", {}).get("drw_epoch"))
    train_lenets(runs, images, labels, training, device=device, model=outputs["model"])


# --------------------------------------------------------------------------------------------- evaluation


def lenet_job(dataset: str, setting: str, state: dict, *, settings: dict, posthoc_taus: list[float]) -> TrainedJob:
    """What every row of one MNIST-family job shares, from its model file's contents (``state``)."""
    from softmax_mi.classification_metrics import TrainedJob  # torch: imported by the job, not at parse time
    from softmax_mi.multirun import last_train_loss  # torch

    protocol, profile, ratio = describe_setting(setting, state["counts"])
    return TrainedJob(
        protocol=protocol, profile=profile, imbalance_ratio=ratio, train_counts=state["counts"],
        epochs=max(h["epoch"] for h in state["history"]), train_loss=last_train_loss(state["history"]),
        train_seconds=state["seconds"], device=state["device"],
        class_names=[str(c) for c in range(N_CLASSES)] if dataset == "mnist" else list(FASHION_CLASSES),
        settings=settings, posthoc_taus=posthoc_taus,
    )


def write_rows(job: TrainedJob, runs: list[RunId], evaluated: dict[str, tuple[torch.Tensor, torch.Tensor]],
               outputs: dict) -> None:
    """The metrics and per-class leaves of ``runs`` from their logits on each split (``evaluated``: split →
    (G × N × K logits, labels); a split without examples has no rows)."""
    rows, class_rows = [], []
    for role, (logits, labels) in evaluated.items():
        if len(labels):
            metrics, per_class = job.rows(runs, logits, labels, role)
            rows += metrics
            class_rows += per_class
    write_table(pd.DataFrame(rows)[list(METRICS_COLUMNS)], outputs["metrics"], column_docs=METRICS_COLUMNS)
    write_table(pd.DataFrame(class_rows)[list(PER_CLASS_COLUMNS)], outputs["per_class"], column_docs=PER_CLASS_COLUMNS)


def evaluate(*, dataset: str, setting: str, loss: str, posthoc_taus: list[float], training: dict, device: str,
             inputs: dict, outputs: dict) -> None:
    """One metrics row per (run, split) and one per-class row per (run, split, class); softmax jobs also emit the
    post-hoc logit-adjusted rows."""
    from softmax_mi.models.lenet import StackedLeNet, normalise  # torch: imported by the job, not at parse time
    from softmax_mi.multirun import predict_logits  # torch

    device = resolve_device(device)
    state = load_checkpoint(inputs["model"], fix="delete it and rerun: snakemake --cores all")
    runs = runs_of_checkpoint(state, inputs["model"])
    model = StackedLeNet(len(runs), N_CLASSES)
    model.load_state_dict(state["model"])
    model.to(device)
    job = lenet_job(dataset, setting, state, settings={"training": training}, posthoc_taus=posthoc_taus)
    data, frame = ImageDataset.load(inputs["arrays"]), read_table(inputs["split"])
    evaluated = {}
    for role in ("test", "val"):
        images, labels = split_tensors(data, frame, role)
        evaluated[role] = (predict_logits(model, images, transform=normalise).cpu() if len(labels) else None, labels)
    write_rows(job, runs, evaluated, outputs)


# --------------------------------------------------------------------------------------------- standard protocol


def standard(*, dataset: str, setting: str, losses: list[str], seeds: list[int], options: dict, training: dict,
             posthoc_taus: list[float], device: str, inputs: dict, outputs: dict) -> None:
    """One standard-protocol setting in one job: train every loss × τ × seed as one stacked LeNet (resumable per
    epoch; each run's balanced-validation accuracy logged after every epoch), then evaluate it on the validation
    split and the test set. Writes the model, the metrics / per-class leaves, the learning curve and every run's
    logits (:class:`softmax_mi.classification.RunLogits`)."""
    from softmax_mi.models.lenet import normalise  # torch: imported by the job, not at parse time
    from softmax_mi.multirun import EVAL_BATCH, predict_logits, run_specs  # torch

    device = resolve_device(device)
    data, frame = ImageDataset.load(inputs["arrays"]), read_table(inputs["split"])
    (images, labels), val, test = (split_tensors(data, frame, role) for role in ("train", "val", "test"))
    runs = [spec for loss in losses
            for spec in run_specs(dataset=dataset, setting=setting, loss=loss, seeds=seeds, options=options,
                                  epochs=training["epochs"], drw_epoch=options.get("drw_epoch"))]
    model, history = train_lenets(runs, images, labels, training, device=device, model=outputs["model"],
                                  validation=val)
    state = load_checkpoint(outputs["model"], fix="delete it and rerun: snakemake --cores all")
    job = lenet_job(dataset, setting, state, settings={"training": training, "options": options},
                    posthoc_taus=posthoc_taus)
    ids = [run.id for run in runs]
    evaluated = {role: (predict_logits(model, images, transform=normalise, batch_size=EVAL_BATCH).cpu(), labels)
                 for role, (images, labels) in (("test", test), ("val", val))}
    write_rows(job, ids, evaluated, outputs)
    curve = curve_table(job, history)
    write_table(curve, outputs["curve"], column_docs=CURVE_COLUMNS,
                table_doc=f"{dataset} {setting}: balanced-validation accuracy per run and epoch")
    RunLogits(runs=ids, val_logits=evaluated["val"][0].numpy(), val_labels=val[1].numpy(),
              test_logits=evaluated["test"][0].numpy(), test_labels=test[1].numpy(),
              train_counts=job.train_counts.numpy()).save(outputs["logits"])
    last = curve[curve["epoch"] == curve["epoch"].max()].groupby("loss")["val_acc"].mean()
    log.info("%s %s: validation accuracy after the last epoch, mean over seeds:\n%s", dataset, setting, last)


def curve_table(job: TrainedJob, history: list[dict]) -> pd.DataFrame:
    """The learning curve of a job's runs (columns :data:`CURVE_COLUMNS`) from its training log."""
    rows = []
    for entry in history:
        run = RunId.from_dict(entry["run"])
        key = {**run.columns(), "protocol": job.protocol, "profile": job.profile,
               "imbalance_ratio": job.imbalance_ratio}
        rows.append({**key, "epoch": entry["epoch"], "lr": entry["lr"], "train_loss": entry["train_loss"],
                     "val_acc": entry.get("val_acc", math.nan), **provenance({**key, **job.settings})})
    return pd.DataFrame(rows)[list(CURVE_COLUMNS)]


# --------------------------------------------------------------------------------------------- tables


SORT_KEYS = ["dataset", "protocol", "setting", "loss", "tau", "seed", "split"]


def gather(*, inputs: dict, outputs: dict) -> None:
    """Concatenate the per-job leaves into metrics.parquet and per_class.parquet, and the standard protocol's
    learning curves into convergence.parquet."""
    for key, columns, doc, sort in (
        ("metrics", METRICS_COLUMNS, "one row per classification run × evaluation split", SORT_KEYS),
        ("per_class", PER_CLASS_COLUMNS, "one row per classification run × evaluation split × class",
         [*SORT_KEYS, "class"]),
        ("curve", CURVE_COLUMNS, "one row per standard-protocol run × epoch: the learning curve", CURVE_SORT_KEYS),
    ):
        parts = [read_table(p) for p in inputs[key]]
        table = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=list(columns))
        table = table.sort_values(sort, ignore_index=True, na_position="first")
        write_table(table, outputs[key], column_docs=columns, table_doc=doc)


CURVE_SORT_KEYS = ["dataset", "setting", "loss", "tau", "seed", "epoch"]


def summarise(*, inputs: dict, outputs: dict) -> None:
    from softmax_mi.plots import plot_accuracy_vs_imbalance, plot_convergence, plot_per_class_accuracy

    table = read_table(inputs["metrics"])
    summary = summarise_classification(table)[list(SUMMARY_COLUMNS)]
    write_table(summary, outputs["summary"], column_docs=SUMMARY_COLUMNS, table_doc="classification, mean over seeds")
    write_json(classification_headline(summary), outputs["metrics_json"])
    plot_per_class_accuracy(read_table(inputs["per_class"]), outputs["per_class_figure"])
    plot_accuracy_vs_imbalance(summary, outputs["imbalance_figure"])
    plot_convergence(read_table(inputs["curve"]), outputs["convergence_figure"])
