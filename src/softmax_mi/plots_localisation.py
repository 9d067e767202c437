"""Figures of the WSOL experiment: heatmap grid (paper F1 style) and box accuracy vs τ (E8)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from softmax_mi.plots import PAGE_WIDTH, outside_legend, plt, save_figure

LABELS = {
    "cam": "CAM",
    "infocam": "infoCAM (centred region sum)",
    "infocam_full": "infoCAM (original full padding)",
    "infocam_noregion": "infoCAM (no region sum)",
    "infocam_leastlikely": "least-likely variant (infoCAM+? unverified)",
    "gradcam": "Grad-CAM (pytorch-grad-cam)",
    "centre_box": "centre box (baseline)",
}


def _box(axis, box, colour) -> None:
    x0, y0, x1, y1 = box
    axis.add_patch(plt.Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, color=colour, lw=1.5))


def plot_heatmaps(split, maps: dict, predicted: dict, taus: dict, predicted_class, target: str | Path) -> None:
    """Rows: images; columns: the image, then one heatmap per method. GT box red, predicted box green."""
    methods = list(maps)
    n = len(split)
    cell = 1.6  # inches per image: the grid fills the figure, no margins around it
    figure, axes = plt.subplots(n, 1 + len(methods), figsize=(cell * (1 + len(methods)), cell * n + 0.6),
                                squeeze=False, layout="constrained")
    figure.get_layout_engine().set(w_pad=0.02, h_pad=0.02, wspace=0.02, hspace=0.02)
    # grey [n, H, W] or RGB [n, 3, H, W] → what imshow takes
    pictures = split.images if split.images.ndim == 3 else split.images.transpose(0, 2, 3, 1)
    for i in range(n):
        axes[i, 0].imshow(pictures[i], cmap="gray", vmin=0, vmax=255)
        _box(axes[i, 0], split.boxes[i], "red")
        axes[i, 0].set_title(f"label {split.labels[i]}, pred {predicted_class[i]}", fontsize=8)
        for j, method in enumerate(methods, start=1):
            axes[i, j].imshow(pictures[i], cmap="gray", vmin=0, vmax=255)
            axes[i, j].imshow(maps[method][i], cmap="jet", alpha=0.5, vmin=0, vmax=1)
            _box(axes[i, j], split.boxes[i], "red")
            _box(axes[i, j], predicted[method][i], "lime")
            if i == 0:
                axes[i, j].set_title(f"{LABELS.get(method, method)}\nτ={taus[method]:.2f} (val)", fontsize=8)
    for axis in axes.ravel():
        axis.set_xticks([])
        axis.set_yticks([])
    figure.suptitle("GT-class maps on test images\nGT box red; predicted box green (largest component, τ from val)",
                    fontsize=9)
    save_figure(figure, target)


def plot_threshold_curves(curves: pd.DataFrame, metrics: pd.DataFrame, target: str | Path) -> None:
    """Test box accuracy vs τ (mean ± std over seeds): GT-known (largest component, IoU 0.5) and MaxBoxAccV2's
    mean over δ (all components), one panel per (backbone, ADL); dotted lines mark the τ chosen on val_fullsup."""
    test = curves[curves["split"] == "test"]
    runs = list(test.groupby(["backbone", "adl"], sort=True).groups)
    figure, axes = plt.subplots(len(runs), 2, figsize=(PAGE_WIDTH, 3.4 * len(runs)), squeeze=False,
                                layout="constrained")
    for row, (backbone, adl) in enumerate(runs):
        run = test[(test["backbone"] == backbone) & (test["adl"] == adl)]
        for col, (boxes, title) in enumerate((("largest", "GT-known loc (largest component, IoU ≥ 0.5)"),
                                              ("all", "MaxBoxAccV2 curve: mean over δ of box acc (all comps)"))):
            axis = axes[row, col]
            part = run[run["boxes"] == boxes]
            per_seed = part.groupby(["method", "seed", "threshold"], sort=True)["value"].mean().reset_index()
            for index, (method, frame) in enumerate(per_seed.groupby("method", sort=True)):
                stats = frame.groupby("threshold")["value"].agg(["mean", "std"]).reset_index()
                colour = f"C{index}"
                style = "--" if method == "centre_box" else "-"
                axis.plot(stats["threshold"], stats["mean"], style, color=colour, label=LABELS.get(method, method))
                axis.fill_between(stats["threshold"], stats["mean"] - stats["std"].fillna(0),
                                  stats["mean"] + stats["std"].fillna(0), color=colour, alpha=0.15)
                if boxes == "largest":
                    chosen = metrics[(metrics["protocol"] == "maxboxacc") & (metrics["method"] == method)
                                     & (metrics["backbone"] == backbone) & (metrics["adl"] == adl)]["threshold"]
                    if len(chosen):
                        axis.axvline(float(np.mean(chosen)), color=colour, ls=":", lw=1)
            axis.axvline(0.2, color="k", ls="--", lw=0.8, label="paper's fixed τ = 0.2")
            axis.set_xlabel("τ (fraction of the normalised map)")
            axis.set_ylabel("box accuracy (test)")
            axis.set_ylim(0, 1)
            axis.grid(alpha=0.3)
            axis.set_title(f"{backbone}{' + ADL' if adl else ''}: {title}", fontsize=9)
    outside_legend(figure, list(axes.ravel()), ncols=3)
    figure.suptitle("Box accuracy vs threshold on test (mean ± std over seeds); dotted: τ chosen on val_fullsup",
                    fontsize=10)
    save_figure(figure, target)
