"""What a classification run is (docs/paper.md §3.1–3.2, E4–E5): settings, seeds, the run identity and the tables.

Torch-free, so that the pipeline can read it at parse time. The trainer is :mod:`softmax_mi.multirun`; the metrics
and the rows of the tables are :mod:`softmax_mi.classification_metrics`.

Run seeds: run ``seed`` initialises its model and draws its data order from seeds derived from
(seed, dataset, setting), *not* from the loss, so the losses of one seed start from the same weights and see the
same batches (a paired comparison).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from softmax_mi.data.mnist import (
    ImageDataset,
    Split,
    faithful_split,
    fashion_mnist_folder,
    load_idx_dataset,
    load_mnist_pickle,
    standard_split,
)
from softmax_mi.provenance import PROVENANCE_COLUMNS
from softmax_mi.registry import STANDARD_BALANCED
from softmax_mi.runtime import derive_seed

TAU_LOSSES = ("logit_adjusted", "posthoc_la")
"""The losses / decision rules that have a τ (every other run's ``tau`` is ``None``, NaN in the tables)."""


@dataclass(frozen=True)
class RunId:
    """Which run a model, a checkpoint entry or a table row belongs to. Stored with the checkpoint as a plain dict
    (:meth:`as_dict`, loadable with ``weights_only=True``) and written to the tables as its own columns
    (:meth:`columns`); never a string to be parsed back."""

    dataset: str
    setting: str
    loss: str
    tau: float | None
    seed: int

    def __post_init__(self) -> None:
        if (self.tau is None) == (self.loss in TAU_LOSSES):
            raise ValueError(f"{self.loss}: tau must be {'a number' if self.loss in TAU_LOSSES else 'None'}, "
                             f"not {self.tau!r}")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> RunId:
        """The inverse of :meth:`as_dict`; a clear error for anything else."""
        if not isinstance(data, Mapping) or set(data) != {"dataset", "setting", "loss", "tau", "seed"}:
            raise ValueError(f"not a run identity: {data!r}")
        return cls(**data)

    def columns(self) -> dict[str, Any]:
        """The run's columns of a table (``tau`` NaN for losses without τ)."""
        return {**self.as_dict(), "tau": math.nan if self.tau is None else self.tau}

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> RunId:
        """The run of a table row (the inverse of :meth:`columns`)."""
        tau = row["tau"]
        return cls(str(row["dataset"]), str(row["setting"]), str(row["loss"]),
                   None if tau is None or tau != tau else float(tau), int(row["seed"]))

    def posthoc(self, tau: float) -> RunId:
        """This (softmax) run read out with post-hoc logit adjustment f − τ·log π."""
        return replace(self, loss="posthoc_la", tau=tau)


def runs_of_checkpoint(state: Mapping[str, Any], path: Any) -> list[RunId]:
    """The run identities a model file stores (``state["runs"]``: one :meth:`RunId.as_dict` per stacked run)."""
    try:
        return [RunId.from_dict(run) for run in state["runs"]]
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"{path}: no run identities in this model file ({error}); it was written by an older "
                         "softmax-mi, which stored run names as strings (fix: delete it and rerun: snakemake "
                         "--cores all)") from None


# --------------------------------------------------------------------------------------------- settings and seeds


def parse_setting(setting: str) -> tuple[str, str, float]:
    """Setting id → (protocol, profile, ρ): ``step-r10`` → (standard, step, 10.0), ``balanced`` → (standard,
    balanced, 1.0); faithful ρ is read from counts."""
    if setting.startswith("faithful-"):
        return "faithful", ("balanced" if setting == "faithful-balanced" else "step"), math.nan
    if setting == STANDARD_BALANCED:
        return "standard", "balanced", 1.0
    profile, _, ratio = setting.rpartition("-r")
    return "standard", profile, float(ratio)


def describe_setting(setting: str, train_counts: Any) -> tuple[str, str, float]:
    """(protocol, profile, ρ) of an MNIST-family setting; a faithful setting's profile and ρ come from its training
    class counts (a tensor: ρ = max / min as torch divides them)."""
    protocol, profile, ratio = parse_setting(setting)
    if protocol == "faithful":
        ratio = float(train_counts.max() / train_counts.min())
        profile = "balanced" if ratio == 1 else "step"
    return protocol, profile, ratio


def setting_seed(seed: int, purpose: str, dataset: str, setting: str) -> int:
    """The seed of one (dataset, setting, seed) for ``purpose`` (split, init, order): shared by every loss, so the
    losses of a setting are compared on the same split, initialisation and data order."""
    return derive_seed(seed, purpose, dataset, setting)


def default_drw_epoch(epochs: int) -> int:
    """LDAM-DRW re-weights from this epoch when none is configured: the last quarter of training."""
    return max(1, epochs * 3 // 4 + 1)


def load_dataset(dataset: str, fashion_dir: str | None = None) -> ImageDataset:
    """The official train / test arrays of ``mnist`` (checksummed pickle) or ``fashion_mnist`` (IDX files)."""
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


def make_split(data: ImageDataset, *, dataset: str, setting: str, faithful: dict, standard: dict, seed: int) -> Split:
    """The train / val / test indices of one setting (faithful: the original's cut; standard: seeded)."""
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
        test_per_class=standard.get("test_per_class"),
    )


def split_table(data: ImageDataset, chosen: Split) -> pd.DataFrame:
    """One row per example of a setting's split (columns :data:`SPLIT_COLUMNS`): train, val, then test."""
    labels = {"train": data.y_train, "test": data.y_test}
    frames = []
    for role, source in (("train", chosen.train_source), ("val", chosen.train_source), ("test", chosen.test_source)):
        index = getattr(chosen, role).astype(np.int64)
        frames.append(pd.DataFrame({"index": index, "source": source, "split": role, "label": labels[source][index]}))
    return pd.concat(frames, ignore_index=True)


def split_arrays(arrays: Mapping[str, tuple[np.ndarray, np.ndarray]], frame: pd.DataFrame,
                 role: str) -> tuple[np.ndarray, np.ndarray]:
    """(images, labels) of one role (train | val | test) of a split table, from ``arrays`` (source → (x, y))."""
    rows = frame[frame["split"] == role]
    images, labels = [], []
    for source, part in rows.groupby("source", sort=True):
        x, y = arrays[source]
        images.append(x[part["index"].to_numpy()])
        labels.append(y[part["index"].to_numpy()])
    if not images:
        return np.empty((0, 28, 28), dtype=np.uint8), np.empty(0, dtype=np.int64)
    return np.concatenate(images), np.concatenate(labels)


# --------------------------------------------------------------------------------------------- tables


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

KEY_COLUMNS = ("dataset", "protocol", "setting", "profile", "imbalance_ratio", "loss", "tau", "seed", "split")
"""The columns that identify a row of the metrics table: the run (:class:`RunId`), its setting's description and
the evaluation split."""

PER_CLASS_COLUMNS = {
    **{key: METRICS_COLUMNS[key] for key in KEY_COLUMNS},
    "class": "class label 0–9",
    "class_name": "class name (digit or Fashion-MNIST category)",
    "n_train": "training examples of this class",
    "n_test": "examples of this class in the evaluation split",
    "accuracy": "accuracy (recall) on this class, fraction 0–1",
    **PROVENANCE_COLUMNS,
}

CURVE_COLUMNS = {
    **{key: METRICS_COLUMNS[key] for key in ("dataset", "protocol", "setting", "profile", "imbalance_ratio", "loss",
                                              "tau", "seed")},
    "epoch": "training epoch, counted from 1",
    "lr": "learning rate of the epoch",
    "train_loss": "training objective averaged over the epoch",
    "val_acc": "accuracy on the balanced validation split after the epoch, fraction 0–1 (micro = macro: every "
    "class has val_per_class examples)",
    **PROVENANCE_COLUMNS,
}
"""The learning curve of the standard protocol (results/classification/convergence.parquet): one row per run ×
epoch."""


# --------------------------------------------------------------------------------------------- logits


LOGITS_ARRAYS = {
    "val_logits": (np.float32, 3, "G × Nv × K decision logits of every run on the balanced validation split"),
    "val_labels": (np.int64, 1, "Nv labels of the validation split"),
    "test_logits": (np.float32, 3, "G × Nt × K decision logits of every run on the test set"),
    "test_labels": (np.int64, 1, "Nt labels of the test set"),
    "train_counts": (np.int64, 1, "K training examples per class (the prior π of the PC-softmax read-out)"),
}
"""The arrays of a logits file (:class:`RunLogits`), with their dtype, rank and meaning; ``runs`` (a JSON list of
:meth:`RunId.as_dict`, one per run g) comes with them."""


@dataclass(frozen=True)
class RunLogits:
    """Every run of one standard-protocol setting read out on its balanced validation split and the test set: what a
    decision rule or a prior-shift correction needs, without the models (``models/classification/{dataset}/{setting}/
    logits.npz``). Run g of ``runs`` owns ``val_logits[g]`` and ``test_logits[g]``."""

    runs: list[RunId]
    val_logits: np.ndarray
    val_labels: np.ndarray
    test_logits: np.ndarray
    test_labels: np.ndarray
    train_counts: np.ndarray

    def __post_init__(self) -> None:
        g, k = len(self.runs), len(self.train_counts)
        for split in ("val", "test"):
            logits, labels = getattr(self, f"{split}_logits"), getattr(self, f"{split}_labels")
            if logits.shape != (g, len(labels), k):
                raise ValueError(f"{split}_logits has shape {logits.shape}, expected (runs {g}, {split}_labels "
                                 f"{len(labels)}, classes {k})")

    def save(self, target: str | Path) -> None:
        """One uncompressed ``.npz``, written atomically (``runs`` as a JSON string: no pickle)."""
        from softmax_mi.io import atomic_path

        arrays = {key: np.asarray(getattr(self, key), dtype=dtype) for key, (dtype, _, _) in LOGITS_ARRAYS.items()}
        with atomic_path(target) as tmp:
            with open(tmp, "wb") as handle:
                np.savez(handle, runs=np.array(json.dumps([run.as_dict() for run in self.runs])), **arrays)


def load_logits(path: str | Path) -> RunLogits:
    """Read a logits file written by the standard protocol's jobs (:meth:`RunLogits.save`); a missing file, a
    missing key or an array of the wrong dtype or rank is a one-line error naming the file, the key and the fix."""
    fix = "fix: rerun its job, e.g. snakemake --cores all " + str(path)
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise ValueError(f"{path}: not a readable logits file ({error}); {fix}") from None
    with archive:
        missing = sorted({"runs", *LOGITS_ARRAYS} - set(archive.files))
        if missing:
            raise ValueError(f"{path}: no {', '.join(missing)} in this logits file (it has {', '.join(archive.files)})"
                             f"; {fix}")
        arrays = {}
        for key, (dtype, ndim, meaning) in LOGITS_ARRAYS.items():
            array = archive[key]
            if array.dtype != dtype or array.ndim != ndim:
                raise ValueError(f"{path}: {key} is {array.dtype} of rank {array.ndim}, expected {np.dtype(dtype)} "
                                 f"of rank {ndim} ({meaning}); {fix}")
            arrays[key] = array
        try:
            runs = [RunId.from_dict(run) for run in json.loads(str(archive["runs"]))]
            return RunLogits(runs=runs, **arrays)
        except (TypeError, ValueError) as error:
            raise ValueError(f"{path}: {error}; {fix}") from None
