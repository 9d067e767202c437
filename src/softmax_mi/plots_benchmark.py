"""Figures of the discrete-label MI benchmark (issue 16): bias against K, ρ, d and n, and interval coverage."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from softmax_mi.plots import outside_legend, panel_grid, plt, save_figure

# (column, axis label, rows): Gaussian-mixture rows at the main sizes for K, ρ, d; the sweep's tasks for n
AXES = (
    ("n_classes", "number of classes K", "gaussian"),
    ("rho", "imbalance ρ (1 = uniform)", "gaussian"),
    ("dim", "dimension d", "gaussian"),
    ("n", "sample size n (rows)", "sweep"),
)


def axis_rows(estimates: pd.DataFrame, rows: str) -> pd.DataFrame:
    """``gaussian``: the Gaussian-mixture runs at the main sizes; ``sweep``: every size of the sweep's tasks."""
    if rows == "gaussian":
        return estimates[(estimates["family"] == "gaussian") & ~estimates["sweep"]]
    return estimates[estimates["dataset"].isin(estimates.loc[estimates["sweep"], "dataset"].unique())]


def plot_bias(estimates: pd.DataFrame, target: str | Path) -> None:
    """Mean estimate − truth (over the runs at each value, other axes pooled) against K, ρ, d and n, one line per
    estimator; a last panel: wall time against n."""
    figure, axes = panel_grid(len(AXES) + 1, panel_height=3.0)
    for axis, (column, label, rows) in zip(axes, AXES):
        frame = axis_rows(estimates, rows)
        for estimator, part in frame.groupby("estimator", sort=True):
            mean = part.groupby(column)["error"].mean()
            axis.plot(mean.index, mean.to_numpy(), marker="o", ms=4, lw=1.2, label=estimator, alpha=0.85)
        axis.axhline(0.0, color="k", lw=1)
        values = np.sort(frame[column].unique())
        if len(values) > 1 and values.min() > 0:
            axis.set_xscale("log")
        if 0 < len(values) <= 8:
            axis.set_xticks(values, [f"{v:g}" for v in values])
            axis.minorticks_off()
        axis.set_xlabel(label)
        axis.set_ylabel("bias [nats]")
        axis.set_title(f"bias vs {label.split(' (')[0]}" + (" (no variation)" if frame[column].nunique() < 2 else ""),
                       fontsize=10)
        axis.grid(alpha=0.3)
    timing, frame = axes[-1], axis_rows(estimates, "sweep")
    for estimator, part in frame.groupby("estimator", sort=True):
        mean = part.groupby("n")["seconds"].mean()
        timing.plot(mean.index, mean.to_numpy(), marker="o", ms=4, lw=1.2, label=estimator, alpha=0.85)
    if len(frame):
        timing.set_xscale("log")
        timing.set_yscale("log")
        sizes = np.sort(frame["n"].unique())
        if len(sizes) <= 8:
            timing.set_xticks(sizes, [f"{v:g}" for v in sizes])
            timing.minorticks_off()
    timing.set_xlabel("sample size n (rows)")
    timing.set_ylabel("seconds per estimate")
    timing.set_title("wall time vs n", fontsize=10)
    timing.grid(alpha=0.3)
    outside_legend(figure, axes, ncols=7)
    figure.suptitle("Benchmark: bias (estimate − truth, mean over runs) against each axis")
    save_figure(figure, target)


def plot_coverage(summary: pd.DataFrame, target: str | Path, level: float = 0.95) -> None:
    """Interval coverage per estimator (rows) × family (columns), as a grid of numbers coloured by the distance
    from the nominal ``level``."""
    table = summary.pivot(index="estimator", columns="family", values="coverage")
    figure, (axis,) = panel_grid(1, panel_height=0.45 * len(table) + 1.6, columns=1)
    values = table.to_numpy(dtype=float)
    image = axis.imshow(np.abs(values - level), cmap="RdYlGn_r", vmin=0.0, vmax=0.5, aspect="auto")
    for (row, column), value in np.ndenumerate(values):
        axis.text(column, row, "—" if np.isnan(value) else f"{100 * value:.0f} %", ha="center", va="center",
                  fontsize=9)
    axis.set_xticks(range(table.shape[1]), table.columns, fontsize=9)
    axis.set_yticks(range(table.shape[0]), table.index, fontsize=9)
    figure.colorbar(image, ax=axis, label=f"|coverage − {level:.0%}|", shrink=0.8)
    axis.set_title(f"Share of runs whose {level:.0%} interval meets the truth", fontsize=10)
    save_figure(figure, target)
    plt.close("all")
