"""Figures of the label-shift study: accuracy against the test-prior ratio (one line per rule), estimated vs true q."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from softmax_mi.label_shift.verdicts import figure_setting
from softmax_mi.plots import outside_legend, panel_grid, save_figure

RULE_LABELS = {
    "argmax": "plain argmax f",
    "known_q": "known q: g + log q",
    "em": "EM-estimated q̂",
    "bbse": "BBSE-estimated q̂",
    "posthoc_la": "post-hoc LA f − τ·log π",
}
LOSSES = ("softmax", "pc_softmax")


def plot_accuracy_vs_ratio(summary: pd.DataFrame, target: str | Path) -> None:
    """Micro accuracy against the test prior (backward 1/ρ … uniform 1 … forward ρ, log axis), one line per rule,
    one panel per dataset × loss (softmax and PC-softmax, else the first two losses) on the dataset's most
    imbalanced setting; the exact Bayes accuracy dashed where known (synthetic)."""
    panels = []
    for dataset, frame in summary.groupby("dataset", sort=True):
        setting = figure_setting(sorted(frame["setting"].unique()))
        frame = frame[frame["setting"] == setting]
        runs = [(loss, tau) for (loss, tau), _ in frame.groupby(["loss", "tau"], sort=True, dropna=False)]
        shown = [run for run in runs if run[0] in LOSSES and run[1] != run[1]] or runs[:2]  # softmax, PC-softmax
        panels += [((dataset, setting, loss if tau != tau else f"{loss} τ={tau:g}"),
                    frame[(frame["loss"] == loss) & (frame["tau"].isna() if tau != tau else frame["tau"] == tau)])
                   for loss, tau in shown]
    figure, axes = panel_grid(len(panels), panel_height=2.8)
    for axis, ((dataset, setting, loss), frame) in zip(axes, panels):
        for rule, part in frame.groupby("rule", sort=False):
            part = part.sort_values("signed_ratio")
            axis.errorbar(part["signed_ratio"], 100 * part["micro_acc_mean"],
                          yerr=100 * part["micro_acc_std"].fillna(0), marker="o", ms=3, capsize=2,
                          label=RULE_LABELS.get(rule, rule))
        exact = frame.drop_duplicates("signed_ratio").sort_values("signed_ratio")
        if exact["bayes_acc_mean"].notna().any():
            axis.plot(exact["signed_ratio"], 100 * exact["bayes_acc_mean"], "k--", lw=1, label="exact Bayes")
        ticks = sorted(frame["signed_ratio"].unique())
        axis.set_xscale("log")
        axis.set_xticks(ticks, [f"1/{1 / t:g}" if t < 1 else f"{t:g}" for t in ticks], fontsize=7)
        axis.minorticks_off()
        axis.set_xlabel("test prior: backward 1/ρ … uniform … forward ρ", fontsize=8)
        axis.set_ylabel("micro accuracy [%]", fontsize=8)
        axis.set_title(f"{dataset} {setting}, {loss}", fontsize=9)
        axis.grid(alpha=0.3)
    outside_legend(figure, axes, ncols=3)
    figure.suptitle("Accuracy under label shift (mean ± std over seeds)")
    save_figure(figure, target)


def plot_prior_estimates(table: pd.DataFrame, target: str | Path) -> None:
    """Estimated q̂_y against the true q_y (log-log, every class, prior, softmax/PC-softmax model and draw), one panel
    per dataset, EM and BBSE in two colours."""
    rows = table[table["rule"].isin(["em", "bbse"]) & table["loss"].isin(LOSSES)]
    panels = list(rows.groupby("dataset", sort=True))
    figure, axes = panel_grid(len(panels), panel_height=3.0)
    for axis, (dataset, frame) in zip(axes, panels):
        for rule, part in frame.groupby("rule", sort=True):
            true = np.concatenate(part["q_true"].map(np.asarray).to_numpy())
            estimated = np.concatenate(part["q_estimated"].map(np.asarray).to_numpy())
            axis.scatter(true, estimated, s=4, alpha=0.35,
                         label=f"{RULE_LABELS[rule]} (mean L1 {part['q_l1'].mean():.3f})")
        low = max(1e-4, float(np.nanmin(np.concatenate(frame["q_true"].map(np.asarray).to_numpy()))) / 3)
        axis.plot([low, 1], [low, 1], "k--", lw=1)
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xlim(low, 1)
        axis.set_ylim(low, 1)
        axis.set_xlabel("true q_y", fontsize=8)
        axis.set_ylabel("estimated q̂_y", fontsize=8)
        axis.set_title(dataset, fontsize=9)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7, loc="upper left")
    figure.suptitle("Estimated vs true test prior")
    save_figure(figure, target)
