"""Figures written by the pipeline (matplotlib, Agg backend, atomic writes).

Every figure is drawn for the width it is shown at: the report (softmax_mi.report.render) shows figures at most
about 1170 px wide, which at ``DPI`` is ``PAGE_WIDTH`` inches, so a figure that wide is shown at its natural size
and its fonts keep their point sizes. Panels go in a grid of at most ``COLUMNS`` columns, legends outside the data.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from softmax_mi.io import atomic_path  # noqa: E402

DPI = 120
PAGE_WIDTH = 9.6  # inches: ≈ 1150 px at DPI, the width of the report's text column
COLUMNS = 3


def save_figure(figure, target: str | Path) -> None:
    with atomic_path(target) as tmp:
        figure.savefig(tmp, format=Path(target).suffix.lstrip(".") or "png", dpi=DPI, bbox_inches="tight")
    plt.close(figure)


def panel_grid(count: int, *, panel_height: float, columns: int = COLUMNS, **subplots) -> tuple:
    """A page-wide figure with ``count`` panels in rows of at most ``columns``; returns (figure, flat axes list).

    Unused cells of the last row are removed; the layout is matplotlib's constrained one, so that titles, labels
    and a legend placed with ``loc="outside ..."`` never overlap."""
    count = max(count, 1)
    columns = min(columns, count)
    rows = math.ceil(count / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(PAGE_WIDTH, panel_height * rows), squeeze=False,
                                layout="constrained", **subplots)
    for axis in axes.ravel()[count:]:
        axis.remove()
    return figure, list(axes.ravel()[:count])


def outside_legend(figure, axes: list, *, loc: str = "outside lower center", ncols: int = 4,
                   fontsize: float = 8) -> None:
    """One legend for the whole figure (the labelled artists of all ``axes``, each label once), outside every panel."""
    entries = {}
    for axis in axes:
        for handle, label in zip(*axis.get_legend_handles_labels()):
            entries.setdefault(label, handle)
    if entries:
        figure.legend(list(entries.values()), list(entries), loc=loc, ncols=min(ncols, len(entries)),
                      fontsize=fontsize, frameon=False)


def style_panel(axis, *, xlabel: str, ylabel: str, title: str, fontsize: float = 9) -> None:
    """A panel's axis labels, title and light grid."""
    axis.set_xlabel(xlabel)
    axis.set_ylabel(ylabel)
    axis.set_title(title, fontsize=fontsize)
    axis.grid(alpha=0.3)


def loss_label(loss: str, tau: float) -> str:
    """A classification run's legend label: the loss, with its τ when it has one (``tau`` NaN otherwise)."""
    return loss if tau != tau else f"{loss} τ={tau:g}"


def plot_mi_vs_truth(summary: pd.DataFrame, target: str | Path) -> None:
    """One panel per (task, balance): each estimator's mean ± std over seeds against d; the true MI (thick black)
    and H(Y) (dotted) as reference lines, drawn across the whole panel where the panel has a single d."""
    panels = list(summary.groupby(["dataset", "balance"], sort=True))
    figure, axes = panel_grid(len(panels), panel_height=3.4)
    for axis, ((task, balance), frame) in zip(axes, panels):
        truth = frame.drop_duplicates("dim").sort_values("dim")
        for column, style, label in (("mi_true", dict(color="k", lw=2.5, zorder=3), "true MI"),
                                     ("entropy_y", dict(color="k", ls=":", lw=1), "H(Y)")):
            if len(truth) == 1 or truth[column].nunique() == 1:  # one value: a line across the panel
                axis.axhline(truth[column].iloc[0], label=label, **style)
            else:
                axis.plot(truth["dim"], truth[column], label=label, **style)
        for estimator, rows in frame.groupby("estimator", sort=True):
            rows = rows.sort_values("dim")
            axis.errorbar(
                rows["dim"], rows["mean"], yerr=rows["std"].fillna(0), marker="o", ms=4, capsize=3,
                lw=1.2, label=estimator, alpha=0.85,
            )
        axis.set_xscale("log")
        axis.set_xticks(truth["dim"], [str(d) for d in truth["dim"]])
        axis.minorticks_off()
        style_panel(axis, xlabel="dimension d", ylabel="I(X;Y) [nats]", title=f"{task}, {balance}", fontsize=10)
    outside_legend(figure, axes, ncols=5)
    figure.suptitle("MI estimates (mean ± std over seeds) vs ground truth")
    save_figure(figure, target)


MAX_CLASS_BARS = 20


def clipped_error(mean: pd.Series, std: pd.Series, low: float = 0.0, high: float = 100.0) -> np.ndarray:
    """``yerr`` for ``mean ± std`` with both ends clipped to [low, high] (an accuracy bar never passes 100 %)."""
    std = std.fillna(0).to_numpy()
    mean = mean.to_numpy()
    return np.stack([np.minimum(std, mean - low), np.minimum(std, high - mean)])


def count_label(n: float) -> str:
    """A training count in at most four characters: 30, 300, 3k, 12.5k (tick labels of ten classes side by side)."""
    return f"{n / 1000:.3g}k" if n >= 1000 else f"{n:.0f}"


def plot_per_class_accuracy(per_class: pd.DataFrame, target: str | Path) -> None:
    """Per-class test accuracy (mean ± std over seeds), softmax vs PC-softmax, one panel per (dataset, setting).

    Bars start at 0 on a shared 0–100 % axis (no truncated axis exaggerates a gap); error bars are clipped to
    0–100 %; the legend sits below the panels."""
    rows = per_class[(per_class["split"] == "test") & per_class["loss"].isin(["softmax", "pc_softmax"])]
    panels = list(rows.groupby(["dataset", "setting"], sort=True))
    figure, axes = panel_grid(len(panels), panel_height=2.6, sharey=True)
    for axis, ((dataset, setting), frame) in zip(axes, panels):
        grouped = frame["class"].nunique() > MAX_CLASS_BARS  # e.g. CUB's 200: one bar per training count instead
        if grouped:
            frame = frame.assign(**{"class": frame["n_train"]})
        stats = frame.groupby(["loss", "class"]).agg(mean=("accuracy", "mean"), std=("accuracy", "std"),
                                                      n_train=("n_train", "first")).reset_index()
        for offset, (loss, colour) in zip((-0.2, 0.2), (("softmax", "tab:gray"), ("pc_softmax", "tab:blue"))):
            part = stats[stats["loss"] == loss].sort_values("class")
            axis.bar(part["class"] + offset, 100 * part["mean"], width=0.4, color=colour, label=loss,
                     yerr=clipped_error(100 * part["mean"], 100 * part["std"]), capsize=1.5,
                     error_kw=dict(lw=0.8))
        counts = stats.drop_duplicates("class").sort_values("class")
        axis.set_xticks(counts["class"], [f"{c}\n{count_label(n)}" for c, n in zip(counts["class"], counts["n_train"])],
                        fontsize=7)
        axis.set_ylim(0, 100)
        axis.set_xlabel("classes with this training count (mean)" if grouped else "class / training count",
                        fontsize=8)
        axis.set_title(f"{dataset}, {setting}", fontsize=9)
        axis.grid(axis="y", alpha=0.3)
    for axis in axes:
        if axis.get_subplotspec().is_first_col():
            axis.set_ylabel("test accuracy [%]")
    outside_legend(figure, axes)
    figure.suptitle("Per-class test accuracy, softmax vs PC-softmax (mean ± std over seeds, clipped to 0–100 %)",
                    fontsize=11)
    save_figure(figure, target)


def plot_accuracy_vs_imbalance(summary: pd.DataFrame, target: str | Path) -> None:
    """Test macro accuracy against the imbalance ratio ρ, one line per loss, one panel per (dataset, profile)."""
    rows = summary[(summary["split"] == "test") & (summary["protocol"] == "standard")]
    if rows.empty:
        rows = summary[summary["split"] == "test"]
    reference = rows[rows["profile"] == "balanced"]  # the standard protocol's balanced reference: a level per dataset
    rows = rows[rows["profile"] != "balanced"] if len(rows) > len(reference) else rows
    panels = list(rows.groupby(["dataset", "profile"], sort=True))
    figure, axes = panel_grid(len(panels), panel_height=3.0)
    for axis, ((dataset, profile), frame) in zip(axes, panels):
        for r in reference[reference["dataset"] == dataset].itertuples(index=False):
            axis.axhline(100 * r.macro_acc_mean, color="0.4", ls="--", lw=1, label=f"balanced training set ({r.loss})")
        for (loss, tau), part in frame.groupby(["loss", "tau"], sort=True, dropna=False):
            part = part.sort_values("imbalance_ratio")
            axis.errorbar(part["imbalance_ratio"], 100 * part["macro_acc_mean"],
                          yerr=100 * part["macro_acc_std"].fillna(0), marker="o", ms=4, capsize=3,
                          label=loss_label(loss, tau))
        axis.set_xscale("log")
        ratios = sorted(frame["imbalance_ratio"].unique())
        axis.set_xticks(ratios, [f"{r:g}" for r in ratios])
        axis.minorticks_off()
        style_panel(axis, xlabel="imbalance ratio ρ", ylabel="test macro accuracy [%]", title=f"{dataset}, {profile}")
    outside_legend(figure, axes)
    figure.suptitle("Balanced accuracy vs training imbalance (mean ± std over seeds)")
    save_figure(figure, target)


def plot_convergence(curve: pd.DataFrame, target: str | Path) -> None:
    """Balanced-validation accuracy against the epoch, one line per loss (mean over seeds, band: min–max), one panel
    per (dataset, setting): has training converged?"""
    panels = list(curve.groupby(["dataset", "setting"], sort=True))
    labels = sorted({loss_label(loss, tau) for loss, tau in zip(curve["loss"], curve["tau"])})
    colours = {label: f"C{i % 10}" for i, label in enumerate(labels)}  # one colour per loss in every panel
    figure, axes = panel_grid(len(panels), panel_height=2.6, columns=4 if len(panels) > 6 else COLUMNS)
    for axis, ((dataset, setting), frame) in zip(axes, panels):
        for (loss, tau), part in frame.groupby(["loss", "tau"], sort=True, dropna=False):
            by_epoch = part.groupby("epoch")["val_acc"]
            mean, label = by_epoch.mean(), loss_label(loss, tau)
            axis.plot(mean.index, 100 * mean, marker="o", ms=2.5, lw=1.2, label=label, color=colours[label])
            axis.fill_between(mean.index, 100 * by_epoch.min(), 100 * by_epoch.max(), color=colours[label],
                              alpha=0.15, lw=0)
        style_panel(axis, xlabel="epoch", ylabel="val accuracy [%]", title=f"{dataset}, {setting}")
    outside_legend(figure, axes, ncols=6)
    figure.suptitle("Standard protocol: balanced-validation accuracy per epoch (mean over seeds, band: min–max)")
    save_figure(figure, target)
