"""The verdict on each claim of the paper (docs/paper.md §0.3), computed from the parts' summaries, never typed by
hand:

C1  balanced data: log K − CE ≈ I(X;Y) (softmax estimate within ``TOLERANCE`` nats of the truth at every d)
C2  imbalanced data: PC-softmax unbiased (|bias| ≤ TOLERANCE) while softmax over-estimates by log K − H(Y)
    (± TOLERANCE)
C3  PC-softmax lifts macro (per-class) accuracy on imbalanced MNIST (and CUB when present)
C4  infoCAM localises better than CAM

A claim whose part did not run (or whose rows are absent) is "not run", with the reason.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from softmax_mi.report.document import Claim
from softmax_mi.report.reference import PAPER_MNIST

TOLERANCE = 0.03  # nats, for C1 and C2

REPRODUCED, NOT_REPRODUCED, NOT_RUN = "reproduced", "not reproduced", "not run"

STATEMENTS = {
    "C1": "balanced data: log K − CE ≈ I(X;Y)",
    "C2": "imbalanced data: PC-softmax unbiased, softmax biased by log K − H(Y)",
    "C3": "PC-softmax lifts macro (per-class) accuracy on imbalanced data",
    "C4": "infoCAM localises better than CAM",
}


def not_run(key: str, reason: str) -> Claim:
    return Claim(key, STATEMENTS[key], NOT_RUN, reason)


def decided(key: str, ok: bool, reason: str, numbers: dict) -> Claim:
    return Claim(key, STATEMENTS[key], REPRODUCED if ok else NOT_REPRODUCED, reason, numbers)


def c1(gauss: pd.DataFrame, source: str) -> Claim:
    """``gauss``: the synthetic summary's Gaussian rows (balance, dim, estimator, bias = mean − truth)."""
    sm = gauss[(gauss["balance"] == "balanced") & (gauss["estimator"] == "softmax")].sort_values("dim")
    if sm.empty:
        return not_run("C1", f"no softmax rows on balanced Gaussian data in {source}")
    err = sm["bias"].to_numpy()
    worst = int(np.argmax(np.abs(err)))
    ok = bool(np.all(np.abs(err) <= TOLERANCE))
    return decided(
        "C1", ok,
        f"softmax estimate − truth at d = {', '.join(map(str, sm['dim']))}: "
        f"{', '.join(f'{e:+.3f}' for e in err)} nats; max |error| {abs(err[worst]):.3f} at d = "
        f"{sm['dim'].iloc[worst]} ({'within' if ok else 'outside'} the {TOLERANCE} tolerance)",
        {"max_abs_error_nats": round(float(abs(err[worst])), 4)},
    )


def c2(gauss: pd.DataFrame, source: str) -> Claim:
    """``gauss``: the synthetic summary's Gaussian rows (… and n_classes, entropy_y for log K − H(Y))."""
    imb = gauss[gauss["balance"] == "imbalanced"]
    pc = imb[imb["estimator"] == "pc_softmax"].sort_values("dim")
    sm = imb[imb["estimator"] == "softmax"].sort_values("dim")
    if pc.empty or sm.empty:
        missing = " and ".join(n for n, f in (("pc_softmax", pc), ("softmax", sm)) if f.empty)
        return not_run("C2", f"no {missing} rows on imbalanced Gaussian data in {source}")
    pc_bias = pc["bias"].to_numpy()
    expected = (np.log(sm["n_classes"].astype(float)) - sm["entropy_y"]).to_numpy()
    sm_bias = sm["bias"].to_numpy()
    pc_ok = bool(np.all(np.abs(pc_bias) <= TOLERANCE))
    sm_ok = bool(np.all(np.abs(sm_bias - expected) <= TOLERANCE))
    return decided(
        "C2", pc_ok and sm_ok,
        f"PC-softmax bias {', '.join(f'{b:+.3f}' for b in pc_bias)} nats (|bias| ≤ {TOLERANCE}: "
        f"{'yes' if pc_ok else 'no'}); softmax bias {', '.join(f'{b:+.3f}' for b in sm_bias)} vs "
        f"log K − H(Y) = {expected[0]:.3f} (± {TOLERANCE}: {'yes' if sm_ok else 'no'}); "
        f"d = {', '.join(map(str, pc['dim']))}",
        {"pc_softmax_max_abs_bias_nats": round(float(np.max(np.abs(pc_bias))), 4),
         "softmax_mean_bias_nats": round(float(np.mean(sm_bias)), 4),
         "log_k_minus_h_y_nats": round(float(expected[0]), 4)},
    )


def c3(test: pd.DataFrame, source: str) -> Claim:
    """Macro lift of PC-softmax over softmax on every imbalanced setting where both ran; decided on faithful
    imbalanced MNIST and every CUB setting. ``test``: the classification summary's test rows."""
    imbalanced = test[~test["setting"].isin(["faithful-balanced", "balanced"])]  # MNIST's and CUB's balanced
    untuned = imbalanced[imbalanced["tau"].isna()]

    def macro(loss: str) -> pd.Series:
        return untuned[untuned["loss"] == loss].set_index(["dataset", "setting"])["macro_acc_mean"]

    base, pcs = macro("softmax"), macro("pc_softmax")
    both = base.index.intersection(pcs.index)
    diff, base, pcs = pcs[both] - base[both], base[both], pcs[both]
    mnist_faithful = ("mnist", "faithful-imbalanced")
    parts, numbers = [], {}
    for key in diff.index:
        parts.append(f"{key[0]} {key[1]}: {100 * base[key]:.2f} → {100 * pcs[key]:.2f} ({100 * diff[key]:+.2f} pts)")
        numbers[f"{key[0]}_{key[1]}_macro_lift_pts"] = round(float(100 * diff[key]), 3)
    cub_keys = [k for k in diff.index if k[0].startswith("cub")]
    if mnist_faithful not in diff.index:
        return not_run("C3", f"no softmax and pc_softmax rows for mnist faithful-imbalanced in {source}"
                       + (f"; {'; '.join(parts)}" if parts else ""))
    decisive = [mnist_faithful, *cub_keys]
    return decided(
        "C3", all(diff[k] > 0 for k in decisive),
        "macro accuracy softmax → PC-softmax: " + "; ".join(parts)
        + f" (paper re-run mnist faithful-imbalanced: {PAPER_MNIST[('faithful-imbalanced', 'softmax')][1]} → "
          f"{PAPER_MNIST[('faithful-imbalanced', 'pc_softmax')][1]}); verdict on "
        + ", ".join(f"{k[0]} {k[1]}" for k in decisive) + ("" if cub_keys else "; CUB: not run (no CUB rows)"),
        numbers,
    )


def c4(comparisons: list[tuple], source: str) -> Claim:
    """``comparisons``: (run, protocol, metric, cam, infocam) per trained model and protocol, run = (dataset,
    backbone, adl); reproduced only if infoCAM is higher in every one."""
    if not comparisons:
        return not_run("C4", f"no cam and infocam test rows in {source}")
    numbers = {}
    for run, protocol, metric, cam, info in comparisons:
        name = f"{run[0]}_{run[1]}{'_adl' if run[2] else ''}_{protocol}_{metric}"
        numbers[f"{name}_cam"] = round(float(cam), 4)
        numbers[f"{name}_infocam"] = round(float(info), 4)
    return decided(
        "C4", all(info > cam for *_, cam, info in comparisons),
        "CAM → infoCAM: " + "; ".join(
            f"{run[0]} {run[1]}{'+ADL' if run[2] else ''} {protocol} {metric} {100 * cam:.2f} → {100 * info:.2f}"
            for run, protocol, metric, cam, info in comparisons)
        + " (reproduced only if infoCAM is higher in every row, faithful and corrected protocols)",
        numbers,
    )


def headline(claims: list[Claim]) -> dict:
    """Small mapping for `dvc metrics show` / `dvc exp show`: per claim 1/0 (omitted when not run) + numbers."""
    out = {}
    for claim in claims:
        entry = dict(claim.numbers)
        if claim.verdict != NOT_RUN:
            entry["reproduced"] = int(claim.verdict == REPRODUCED)
        out[claim.key] = entry
    return out
