"""Figures written by the pipeline (matplotlib, Agg backend, atomic writes)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from softmax_mi.io import atomic_path  # noqa: E402


def save_figure(figure, target: str | Path) -> None:
    with atomic_path(target) as tmp:
        figure.savefig(tmp, format=Path(target).suffix.lstrip(".") or "png", dpi=120, bbox_inches="tight")
    plt.close(figure)


def plot_mi_vs_truth(summary: pd.DataFrame, target: str | Path) -> None:
    """One panel per (task, balance): each estimator's mean ± std over seeds against d, truth and H(Y) as lines."""
    panels = list(summary.groupby(["dataset", "balance"], sort=True))
    figure, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4.2), squeeze=False)
    for axis, ((task, balance), frame) in zip(axes[0], panels):
        truth = frame.drop_duplicates("dim").sort_values("dim")
        axis.plot(truth["dim"], truth["mi_true"], "k-", marker="_", ms=22, mew=2.5, lw=2.5, label="true MI", zorder=3)
        axis.plot(truth["dim"], truth["entropy_y"], "k:", lw=1, label="H(Y)")
        for estimator, rows in frame.groupby("estimator", sort=True):
            rows = rows.sort_values("dim")
            axis.errorbar(
                rows["dim"], rows["mean"], yerr=rows["std"].fillna(0), marker="o", ms=4, capsize=3,
                lw=1.2, label=estimator, alpha=0.85,
            )
        axis.set_xscale("log")
        axis.set_xticks(truth["dim"], [str(d) for d in truth["dim"]])
        axis.set_xlabel("dimension d")
        axis.set_ylabel("I(X;Y) [nats]")
        axis.set_title(f"{task}, {balance}")
        axis.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=8, loc="lower right")
    figure.suptitle("MI estimates (mean ± std over seeds) vs ground truth")
    save_figure(figure, target)


MAX_CLASS_BARS = 20


def plot_per_class_accuracy(per_class: pd.DataFrame, target: str | Path) -> None:
    """Per-class test accuracy (mean ± std over seeds), softmax vs PC-softmax, one panel per (dataset, setting)."""
    rows = per_class[(per_class["split"] == "test") & per_class["loss"].isin(["softmax", "pc_softmax"])]
    panels = list(rows.groupby(["dataset", "setting"], sort=True))
    figure, axes = plt.subplots(1, max(len(panels), 1), figsize=(5.0 * max(len(panels), 1), 3.8), squeeze=False)
    for axis, ((dataset, setting), frame) in zip(axes[0], panels):
        grouped = frame["class"].nunique() > MAX_CLASS_BARS  # e.g. CUB's 200: one bar per training count instead
        if grouped:
            frame = frame.assign(**{"class": frame["n_train"]})
        stats = frame.groupby(["loss", "class"]).agg(mean=("accuracy", "mean"), std=("accuracy", "std"),
                                                      n_train=("n_train", "first")).reset_index()
        for offset, (loss, colour) in zip((-0.2, 0.2), (("softmax", "tab:gray"), ("pc_softmax", "tab:blue"))):
            part = stats[stats["loss"] == loss].sort_values("class")
            axis.bar(part["class"] + offset, 100 * part["mean"], width=0.4, yerr=100 * part["std"].fillna(0),
                     color=colour, label=loss, capsize=2)
        counts = stats.drop_duplicates("class").sort_values("class")
        axis.set_xticks(counts["class"], [f"{c}\n{n}" for c, n in zip(counts["class"], counts["n_train"])], fontsize=7)
        axis.set_ylim(max(0, 100 * stats["mean"].min() - 10), 100.5)
        axis.set_xlabel("classes with this training count (mean)" if grouped else "class (training count)")
        axis.set_ylabel("test accuracy [%]")
        axis.set_title(f"{dataset}, {setting}", fontsize=9)
        axis.grid(axis="y", alpha=0.3)
    axes[0][0].legend(fontsize=8, loc="lower left")
    figure.suptitle("Per-class accuracy, softmax vs PC-softmax (mean ± std over seeds)")
    save_figure(figure, target)


def plot_accuracy_vs_imbalance(summary: pd.DataFrame, target: str | Path) -> None:
    """Test macro accuracy against the imbalance ratio ρ, one line per loss, one panel per (dataset, profile)."""
    rows = summary[(summary["split"] == "test") & (summary["protocol"] == "standard")]
    if rows.empty:
        rows = summary[summary["split"] == "test"]
    panels = list(rows.groupby(["dataset", "profile"], sort=True))
    figure, axes = plt.subplots(1, max(len(panels), 1), figsize=(5.0 * max(len(panels), 1), 3.8), squeeze=False)
    for axis, ((dataset, profile), frame) in zip(axes[0], panels):
        for (loss, tau), part in frame.groupby(["loss", "tau"], sort=True, dropna=False):
            part = part.sort_values("imbalance_ratio")
            label = loss if tau != tau else f"{loss} τ={tau:g}"
            axis.errorbar(part["imbalance_ratio"], 100 * part["macro_acc_mean"],
                          yerr=100 * part["macro_acc_std"].fillna(0), marker="o", ms=4, capsize=3, label=label)
        axis.set_xscale("log")
        axis.set_xlabel("imbalance ratio ρ")
        axis.set_ylabel("test macro accuracy [%]")
        axis.set_title(f"{dataset}, {profile}", fontsize=9)
        axis.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=7, loc="lower left")
    figure.suptitle("Balanced accuracy vs training imbalance (mean ± std over seeds)")
    save_figure(figure, target)
