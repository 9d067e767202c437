"""The study's three verdicts, computed from its summary table (results/label_shift/summary.parquet), never typed:

- ``bayes``: on the synthetic task, does the known-q rule (f + log q − log π for softmax, f + log q for PC-softmax)
  reach the exact Bayes-optimal accuracy under every q? |mean over seeds of accuracy − exact| ≤ ``ACC_TOLERANCE``.
- ``mi``: on the synthetic task, is the PC-softmax MI read-out under q within ``MI_TOLERANCE`` nats of the exact
  I(X;Y) under q, for every q? (Reported for softmax converted with −log π + log q too, and the shift-blind bias.)
- ``prior``: do EM and BBSE recover q well enough to matter? Per dataset and estimator: the share of the known-q
  rule's accuracy gain over plain argmax that the estimated-q rule keeps, mean over the shifted priors (ratio > 1)
  and the softmax / PC-softmax models; it matters when that share is ≥ ``RECOVERY_SHARE``.
"""

from __future__ import annotations

import math
import re

import pandas as pd

ACC_TOLERANCE = 0.005  # fraction (0.5 points)
MI_TOLERANCE = 0.03  # nats
RECOVERY_SHARE = 0.5
PC_LOSSES = ("softmax", "pc_softmax")


def _rounded(value: float, digits: int = 4) -> float | None:
    return None if value is None or not math.isfinite(value) else round(float(value), digits)


def bayes_verdict(summary: pd.DataFrame) -> dict:
    """Known-q accuracy against the exact Bayes accuracy on the synthetic rows, per loss: the worst |gap| (points)."""
    rows = summary[summary["bayes_acc_mean"].notna() & (summary["rule"] == "known_q")
                   & summary["loss"].isin(PC_LOSSES)]
    if rows.empty:
        return {"ran": False}
    gap = (rows["micro_acc_mean"] - rows["bayes_acc_mean"]).abs()
    worst = rows.loc[gap.idxmax()]
    out = {"ran": True, "ok": bool((gap <= ACC_TOLERANCE).all()), "tolerance_pts": 100 * ACC_TOLERANCE,
           "n_cells": int(len(rows)), "min_seeds": int(rows["n_seeds"].min()),
           "worst_gap_pts": _rounded(100 * gap.max(), 3),
           "worst_cell": f"{worst['setting']} {worst['loss']} {worst['profile']} ρ={worst['ratio']:g}"}
    for loss in PC_LOSSES:
        part = gap[rows["loss"] == loss]
        out[f"{loss}_max_gap_pts"] = _rounded(100 * part.max(), 3) if len(part) else None
        out[f"{loss}_mean_gap_pts"] = _rounded(100 * (rows.loc[part.index, "micro_acc_mean"]
                                                      - rows.loc[part.index, "bayes_acc_mean"]).mean(), 3)
    return out


def mi_verdict(summary: pd.DataFrame) -> dict:
    """MI read-out under q against the exact I(X;Y) under q on the synthetic rows (nats)."""
    synthetic = summary[summary["mi_true_mean"].notna()]
    pc = synthetic[(synthetic["rule"] == "known_q") & (synthetic["loss"] == "pc_softmax")]
    if pc.empty:
        return {"ran": False}
    error = pc["mi_error_mean"]
    out = {"ran": True, "ok": bool((error.abs() <= MI_TOLERANCE).all()), "tolerance_nats": MI_TOLERANCE,
           "n_cells": int(len(pc)), "pc_softmax_max_abs_error": _rounded(error.abs().max()),
           "pc_softmax_mean_error": _rounded(error.mean())}
    converted = synthetic[(synthetic["rule"] == "known_q") & (synthetic["loss"] == "softmax")]["mi_error_mean"]
    out["softmax_converted_max_abs_error"] = _rounded(converted.abs().max()) if len(converted) else None
    for loss in PC_LOSSES:
        blind = synthetic[(synthetic["rule"] == "argmax") & (synthetic["loss"] == loss)]
        if len(blind):
            out[f"{loss}_blind_bias_range"] = [_rounded(blind["mi_error_mean"].min()),
                                               _rounded(blind["mi_error_mean"].max())]
            out[f"{loss}_blind_bias_vs_predicted_max_abs"] = _rounded(
                (blind["mi_error_mean"] - blind["blind_bias_mean"]).abs().max())
    return out


def prior_verdict(summary: pd.DataFrame) -> dict:
    """Per dataset and estimator (em, bbse): mean L1 error of q̂ and the share of the known-q gain it keeps."""
    shifted = summary[(summary["ratio"] > 1) & summary["loss"].isin(PC_LOSSES)]
    keys = ["dataset", "setting", "loss", "profile", "ratio", "decay"]
    accuracy = shifted.pivot_table(index=keys, columns="rule", values="micro_acc_mean", dropna=False)
    l1 = shifted.pivot_table(index=keys, columns="rule", values="q_l1_mean", dropna=False)
    out: dict = {"ran": False}
    if not {"argmax", "known_q"} <= set(accuracy.columns):
        return out
    gain = accuracy["known_q"] - accuracy["argmax"]
    for estimator in ("em", "bbse"):
        if estimator not in accuracy.columns:
            continue
        for dataset, index in accuracy.groupby(level="dataset").groups.items():
            usable = gain.loc[index] > 1e-3  # priors where knowing q helps at all
            if not usable.any():
                continue
            share = ((accuracy.loc[index, estimator] - accuracy.loc[index, "argmax"]) / gain.loc[index])[usable]
            out.setdefault(estimator, {})[dataset] = {
                "mean_q_l1": _rounded(l1.loc[index, estimator].mean()),
                "gain_share": _rounded(share.mean(), 3),
                "mean_acc_loss_vs_known_pts": _rounded(100 * (accuracy.loc[index, "known_q"]
                                                              - accuracy.loc[index, estimator]).mean(), 3),
                "matters": bool(share.mean() >= RECOVERY_SHARE)}
            out["ran"] = True
    return out


def verdicts(summary: pd.DataFrame) -> dict:
    """The three verdicts (module docstring) as a JSON-ready mapping."""
    return {"bayes": bayes_verdict(summary), "mi": mi_verdict(summary), "prior": prior_verdict(summary),
            "tolerances": {"accuracy_pts": 100 * ACC_TOLERANCE, "mi_nats": MI_TOLERANCE,
                           "recovery_share": RECOVERY_SHARE}}


def figure_setting(settings: list[str]) -> str:
    """The training setting a dataset's panels show: the most imbalanced (largest -r ratio; synthetic: the
    imbalanced setting of the smallest dimension), else the first."""
    def key(setting: str) -> tuple:
        ratio = re.search(r"-r(\d+(?:\.\d+)?)", setting)
        dim = re.match(r"d(\d+)-", setting)
        return ("imbalanced" in setting or ratio is not None, float(ratio.group(1)) if ratio else 0.0,
                -int(dim.group(1)) if dim else 0, setting)

    return max(settings, key=key)
