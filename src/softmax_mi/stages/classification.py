"""Pipeline stages of the PC-softmax classification experiments (paper §3.1, E4) with the long-tail controls.

prepare (uint8 arrays) → split (indices per setting) → train (one job per dataset × setting × loss; its seeds
trained together as one stacked LeNet, resumable) → evaluate (one leaf per job) → gather → summarise.

Run seeds: run ``seed`` initialises its LeNet and draws its data order from seeds derived from
(seed, dataset, setting), *not* from the loss, so the softmax and PC-softmax runs of one seed start from the same
weights and see the same batches (paired comparison). The test split never selects anything: every run is trained
for the fixed number of epochs and its last epoch is reported, as in the original.
"""

from __future__ import annotations

import logging
import math
import os
import time

import numpy as np
import pandas as pd
import torch

from softmax_mi.data.mnist import (
    FASHION_CLASSES,
    ImageDataset,
    Split,
    faithful_split,
    fashion_mnist_folder,
    load_idx_dataset,
    load_mnist_pickle,
    standard_split,
)
from softmax_mi.io import atomic_path, load_checkpoint, read_table, write_json, write_table
from softmax_mi.losses import log_pc_softmax, log_prior_from_counts, posthoc_adjusted_logits
from softmax_mi.models.lenet import StackedLeNet
from softmax_mi.multirun import RunSpec, SGDConfig, predict_logits, train_runs
from softmax_mi.provenance import AGGREGATE_PROVENANCE_COLUMNS, PROVENANCE_COLUMNS, provenance
from softmax_mi.runtime import derive_seed, resolve_device
from softmax_mi.summaries import SEED_COLUMNS, summarise_classification

log = logging.getLogger(__name__)

N_CLASSES = 10

SPLIT_COLUMNS = {
    "index": "row in the official array named by `source`",
    "source": "official array the index points into: 'train' (60k) or 'test' (10k)",
    "split": "role in this setting: train | val | test",
    "label": "class label 0–9",
}

METRICS_COLUMNS = {
    "dataset": "mnist | fashion_mnist",
    "protocol": "faithful (original: both splits cut from the official train file) | standard (long-tail: "
    "imbalanced train, held-out val, official balanced test)",
    "setting": "setting id: faithful-imbalanced, faithful-balanced, step-r10, exponential-r100, ...",
    "profile": "imbalance profile of the training split: step | exponential | balanced",
    "imbalance_ratio": "largest / smallest training class count, ρ (1 for balanced)",
    "loss": "training loss (softmax, pc_softmax, logit_adjusted, class_balanced, ldam_drw) or the post-hoc "
    "rule posthoc_la (a softmax-trained model predicting with f − τ·log π)",
    "tau": "τ of logit_adjusted / posthoc_la (NaN for the other losses)",
    "seed": "base seed from params.yaml; initialisation and data order derive from it (shared across losses)",
    "split": "evaluation split: test (faithful: train-file rows 40,000–49,999; standard: official test) | val",
    "n_train": "training examples",
    "n_test": "examples in the evaluated split (the `split` column: test, or val)",
    "epochs": "training epochs (the last epoch is reported; nothing is selected)",
    "micro_acc": "accuracy over all examples of the split, fraction 0–1",
    "macro_acc": "mean per-class accuracy (mean recall), fraction 0–1",
    "minority_acc": "mean accuracy over the classes whose training count is below the largest count (CUB: below "
    "the midpoint of the smallest and largest, i.e. the 10-image classes), fraction 0–1 (NaN when balanced)",
    "mi_estimate": "classifier's MI estimate on the split: mean of log PC_y(x) of its decision logits with the "
    "training prior π (PC-softmax read-out), nats",
    "mi_softmax_estimate": "balanced-assumption read-out: mean of log softmax_y(x) + log K, nats",
    "entropy_y": "H(Y) of the split's label distribution, nats (upper bound on I(X;Y))",
    "cross_entropy": "mean −log softmax_y of the decision logits on the split, nats",
    "train_loss": "training objective averaged over the last epoch",
    "train_seconds": "wall time of the training job (all runs stacked in it), seconds",
    "device": "torch device the job trained on",
    **PROVENANCE_COLUMNS,
}

PER_CLASS_COLUMNS = {
    **{key: METRICS_COLUMNS[key] for key in ("dataset", "protocol", "setting", "profile", "imbalance_ratio", "loss",
                                              "tau", "seed", "split")},
    "class": "class label 0–9",
    "class_name": "class name (digit or Fashion-MNIST category)",
    "n_train": "training examples of this class",
    "n_test": "examples of this class in the evaluation split",
    "accuracy": "accuracy (recall) on this class, fraction 0–1",
    **PROVENANCE_COLUMNS,
}

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


def load_dataset(dataset: str, fashion_dir: str | None = None) -> ImageDataset:
    if dataset == "mnist":
        return load_mnist_pickle()
    if dataset == "fashion_mnist":
        folder = fashion_mnist_folder(fashion_dir)
        if folder is None:
            raise FileNotFoundError(
                "Fashion-MNIST IDX files not found (fix: apt-get install dataset-fashion-mnist, or set "
                "classification.fashion_mnist_dir / $SOFTMAX_MI_FASHION_MNIST)"
            )
        return load_idx_dataset(folder)
    raise ValueError(f"unknown dataset {dataset!r}")


def prepare(*, dataset: str, fashion_dir: str | None = None, outputs: dict) -> None:
    """Read the raw source once (checksummed MNIST pickle / IDX files) and store uint8 arrays."""
    data = load_dataset(dataset, fashion_dir)
    data.save(outputs["arrays"])
    log.info("%s: train %s, test %s", dataset, data.x_train.shape, data.x_test.shape)


def parse_setting(setting: str) -> tuple[str, str, float]:
    """Setting id → (protocol, profile, ρ): ``step-r10`` → (standard, step, 10.0); faithful ρ is read from counts."""
    if setting.startswith("faithful-"):
        return "faithful", ("balanced" if setting == "faithful-balanced" else "step"), math.nan
    profile, _, ratio = setting.rpartition("-r")
    return "standard", profile, float(ratio)


def setting_seed(seed: int, purpose: str, dataset: str, setting: str) -> int:
    """The seed of one (dataset, setting, seed) for ``purpose`` (split, init, order): shared by every loss, so the
    losses of a setting are compared on the same split, initialisation and data order."""
    return derive_seed(seed, purpose, dataset, setting)


def make_split(data: ImageDataset, *, dataset: str, setting: str, faithful: dict, standard: dict, seed: int) -> Split:
    protocol, profile, ratio = parse_setting(setting)
    if protocol == "faithful":
        return faithful_split(
            data.y_train,
            balanced=setting == "faithful-balanced",
            minority_classes=faithful["minority_classes"],
            minority_cap=faithful["minority_cap"],
            majority_cap=faithful["majority_cap"],
        )
    return standard_split(
        data.y_train,
        data.y_test,
        profile=profile,
        ratio=ratio,
        n_max=standard["n_max"],
        val_per_class=standard["val_per_class"],
        seed=setting_seed(seed, "split", dataset, setting),
    )


def split(*, dataset: str, setting: str, faithful: dict, standard: dict, seed: int, inputs: dict, outputs: dict) -> None:
    """Indices of one setting's train / val / test examples (one row per example)."""
    data = ImageDataset.load(inputs["arrays"])
    chosen = make_split(data, dataset=dataset, setting=setting, faithful=faithful, standard=standard, seed=seed)
    labels = {"train": data.y_train, "test": data.y_test}
    frames = []
    for role, source in (("train", chosen.train_source), ("val", chosen.train_source), ("test", chosen.test_source)):
        index = getattr(chosen, role).astype(np.int64)
        frames.append(pd.DataFrame({"index": index, "source": source, "split": role, "label": labels[source][index]}))
    frame = pd.concat(frames, ignore_index=True)
    write_table(frame, outputs["split"], column_docs=SPLIT_COLUMNS, table_doc=f"{dataset} {setting} split")
    counts = chosen.counts(data.y_train, data.y_test)
    log.info("%s %s: train %s (%d), test %s (%d)", dataset, setting, counts["train"].tolist(), counts["train"].sum(),
             counts["test"].tolist(), counts["test"].sum())


def split_tensors(data: ImageDataset, frame: pd.DataFrame, role: str) -> tuple[torch.Tensor, torch.Tensor]:
    rows = frame[frame["split"] == role]
    arrays = {"train": (data.x_train, data.y_train), "test": (data.x_test, data.y_test)}
    images, labels = [], []
    for source, part in rows.groupby("source", sort=True):
        x, y = arrays[source]
        images.append(x[part["index"].to_numpy()])
        labels.append(y[part["index"].to_numpy()])
    if not images:
        return torch.empty(0, 28, 28, dtype=torch.uint8), torch.empty(0, dtype=torch.int64)
    return torch.from_numpy(np.concatenate(images)), torch.from_numpy(np.concatenate(labels)).long()


# --------------------------------------------------------------------------------------------- training


def run_specs(*, dataset: str, setting: str, loss: str, seeds: list[int], options: dict, epochs: int) -> list[RunSpec]:
    """The runs of one training job: every (τ, seed) of ``loss``; init/order seeds do not depend on the loss."""
    taus = options.get("logit_adjusted", {}).get("taus", [1.0]) if loss == "logit_adjusted" else [1.0]
    ldam = options.get("ldam_drw", {})
    specs = []
    for tau in taus:
        for seed in seeds:
            specs.append(
                RunSpec(
                    name=f"{loss}/tau{tau:g}/seed{seed}",
                    loss=loss,
                    init_seed=setting_seed(seed, "init", dataset, setting),
                    order_seed=setting_seed(seed, "order", dataset, setting),
                    tau=float(tau),
                    beta=float(options.get("class_balanced", {}).get("beta", 0.9999)),
                    ldam_max_margin=float(ldam.get("max_margin", 0.5)),
                    ldam_scale=float(ldam.get("scale", 1.0)),
                    drw_epoch=int(ldam.get("drw_epoch", max(1, epochs * 3 // 4 + 1))),
                )
            )
    return specs


def train(
    *, dataset: str, setting: str, loss: str, seeds: list[int], options: dict, training: dict, device: str,
    inputs: dict, outputs: dict
) -> None:
    """Train every seed (and τ) of one loss on one setting as one stacked LeNet; resumable per epoch."""
    device = resolve_device(device)
    data = ImageDataset.load(inputs["arrays"])
    frame = read_table(inputs["split"])
    images, labels = split_tensors(data, frame, "train")
    config = SGDConfig(**training)
    runs = run_specs(dataset=dataset, setting=setting, loss=loss, seeds=seeds, options=options, epochs=config.epochs)
    started = time.perf_counter()
    partial = outputs["model"] + ".partial"
    model, history = train_runs(images, labels, runs, config, device=device, checkpoint=partial)
    seconds = time.perf_counter() - started
    state = {
        "runs": [run.name for run in runs],
        "model": {k: v.cpu() for k, v in model.state_dict().items()},
        "history": history,
        "seconds": seconds,
        "device": device,
        "counts": torch.bincount(labels, minlength=N_CLASSES),
    }
    with atomic_path(outputs["model"]) as tmp:
        torch.save(state, tmp)
    os.remove(partial)  # the finished model supersedes the per-epoch resume state
    log.info("%s %s %s: %d runs in %.1f s on %s", dataset, setting, loss, len(runs), seconds, device)


# --------------------------------------------------------------------------------------------- evaluation


def entropy_of(labels: torch.Tensor) -> float:
    p = torch.bincount(labels, minlength=N_CLASSES).double()
    p = p[p > 0] / p.sum()
    return float(-(p * p.log()).sum())


def classification_metrics(logits: torch.Tensor, labels: torch.Tensor, log_prior: torch.Tensor,
                           train_counts: torch.Tensor, minority: np.ndarray | None = None) -> tuple[dict, np.ndarray]:
    """Metrics of one model's decision logits (N × K) on a split; also its per-class accuracy. ``minority``: the
    classes of ``minority_acc`` (default: training count below the largest; CUB passes its own, see
    softmax_mi.stages.cub_classification.minority_mask)."""
    predicted = logits.argmax(-1)
    correct = (predicted == labels).double()
    per_class = np.array([
        float(correct[labels == c].mean()) if bool((labels == c).any()) else math.nan for c in range(logits.shape[-1])
    ])
    if minority is None:
        minority = (train_counts < train_counts.max()).numpy()
    log_pc = log_pc_softmax(logits, log_prior).gather(1, labels[:, None])
    log_sm = torch.log_softmax(logits, -1).gather(1, labels[:, None])
    metrics = {
        "micro_acc": float(correct.mean()),
        "macro_acc": float(np.nanmean(per_class)),
        "minority_acc": float(np.nanmean(per_class[minority])) if minority.any() else math.nan,
        "mi_estimate": float(log_pc.double().mean()),
        "mi_softmax_estimate": float(log_sm.double().mean() + math.log(logits.shape[-1])),
        "entropy_y": entropy_of(labels),
        "cross_entropy": float(-log_sm.double().mean()),
    }
    return metrics, per_class


def evaluate(*, dataset: str, setting: str, loss: str, posthoc_taus: list[float], training: dict, device: str,
             inputs: dict, outputs: dict) -> None:
    """One metrics row per (run, split) and one per-class row per (run, split, class); softmax jobs also emit the
    post-hoc logit-adjusted rows."""
    device = resolve_device(device)
    data = ImageDataset.load(inputs["arrays"])
    frame = read_table(inputs["split"])
    state = load_checkpoint(inputs["model"], fix="delete it and rerun: snakemake --cores all")
    model = StackedLeNet(len(state["runs"]), N_CLASSES)
    model.load_state_dict(state["model"])
    model.to(device)
    train_counts = state["counts"]
    log_prior = log_prior_from_counts(train_counts)
    last_epoch = max(h["epoch"] for h in state["history"])
    train_loss = {h["run"]: h["train_loss"] for h in state["history"] if h["epoch"] == last_epoch}
    protocol, profile, ratio = parse_setting(setting)
    if protocol == "faithful":
        ratio = float(train_counts.max() / train_counts.min())
        profile = "balanced" if ratio == 1 else "step"
    names = [str(c) for c in range(N_CLASSES)] if dataset == "mnist" else list(FASHION_CLASSES)
    rows, class_rows = [], []
    for role in ("test", "val"):
        images, labels = split_tensors(data, frame, role)
        if len(labels) == 0:
            continue
        all_logits = predict_logits(model, images).cpu()
        for g, run_name in enumerate(state["runs"]):
            _, tau_part, seed_part = run_name.split("/")
            tau, seed = float(tau_part.removeprefix("tau")), int(seed_part.removeprefix("seed"))
            variants = [(loss, tau if loss == "logit_adjusted" else math.nan, all_logits[g])]
            if loss == "softmax":
                variants += [
                    ("posthoc_la", t, posthoc_adjusted_logits(all_logits[g], log_prior, t)) for t in posthoc_taus
                ]
            for variant, variant_tau, logits in variants:
                metrics, per_class = classification_metrics(logits, labels, log_prior, train_counts)
                key = {
                    "dataset": dataset, "protocol": protocol, "setting": setting, "profile": profile,
                    "imbalance_ratio": ratio, "loss": variant, "tau": variant_tau, "seed": seed, "split": role,
                }
                origin = provenance({**key, "training": training})
                rows.append({
                    **key, "n_train": int(train_counts.sum()), "n_test": len(labels), "epochs": last_epoch,
                    **metrics, "train_loss": train_loss[run_name], "train_seconds": float(state["seconds"]),
                    "device": state["device"], **origin,
                })
                eval_counts = torch.bincount(labels, minlength=N_CLASSES)
                class_rows += [
                    {**key, "class": c, "class_name": names[c], "n_train": int(train_counts[c]),
                     "n_test": int(eval_counts[c]), "accuracy": float(per_class[c]), **origin}
                    for c in range(N_CLASSES)
                ]
    write_table(pd.DataFrame(rows), outputs["metrics"], column_docs=METRICS_COLUMNS)
    write_table(pd.DataFrame(class_rows), outputs["per_class"], column_docs=PER_CLASS_COLUMNS)


# --------------------------------------------------------------------------------------------- tables


SORT_KEYS = ["dataset", "protocol", "setting", "loss", "tau", "seed", "split"]


def gather(*, inputs: dict, outputs: dict) -> None:
    """Concatenate the per-job leaves into metrics.parquet and per_class.parquet."""
    for key, columns, doc in (
        ("metrics", METRICS_COLUMNS, "one row per classification run × evaluation split"),
        ("per_class", PER_CLASS_COLUMNS, "one row per classification run × evaluation split × class"),
    ):
        paths = inputs[key]
        paths = [paths] if isinstance(paths, str) else paths
        table = pd.concat([read_table(p) for p in paths], ignore_index=True)
        sort = SORT_KEYS + (["class"] if key == "per_class" else [])
        table = table.sort_values(sort, ignore_index=True, na_position="first")
        write_table(table, outputs[key], column_docs=columns, table_doc=doc)


def loss_label(loss: str, tau: float) -> str:
    return loss if tau != tau else f"{loss}_tau{tau:g}"  # NaN check


def headline_metrics(summary: pd.DataFrame) -> dict:
    """Small nested mapping for ``dvc metrics show``: test macro/micro accuracy (%) per setting and loss."""
    metrics: dict = {}
    for row in summary[summary["split"] == "test"].itertuples(index=False):
        entry = metrics.setdefault(row.dataset, {}).setdefault(row.setting, {})
        entry[loss_label(row.loss, row.tau)] = {
            "macro_acc": round(float(row.macro_acc_mean), 4),
            "micro_acc": round(float(row.micro_acc_mean), 4),
            "mi_estimate": round(float(row.mi_estimate_mean), 4),
            "n_seeds": int(row.n_seeds),
        }
    return metrics


def summarise(*, inputs: dict, outputs: dict) -> None:
    from softmax_mi.plots import plot_accuracy_vs_imbalance, plot_per_class_accuracy

    table = read_table(inputs["metrics"])
    summary = summarise_classification(table)[list(SUMMARY_COLUMNS)]
    write_table(summary, outputs["summary"], column_docs=SUMMARY_COLUMNS, table_doc="classification, mean over seeds")
    write_json(headline_metrics(summary), outputs["metrics_json"])
    plot_per_class_accuracy(read_table(inputs["per_class"]), outputs["per_class_figure"])
    plot_accuracy_vs_imbalance(summary, outputs["imbalance_figure"])
