"""The WSOL scoring protocols on the per-image IoUs of a τ sweep (docs/paper.md §4.5, B6, B14, B17).

* ``paper``: τ fixed, largest component, GT-known loc = IoU ≥ 0.5, Top-1 loc = GT-known and the top-1 class correct
  (:func:`paper_localisation`; plain final ratios, B14 fixed).
* ``maxboxacc`` (V1, :func:`maxboxacc`): ONE τ, the best box accuracy at IoU ≥ 0.5 of the largest component on
  ``val_fullsup``; GT-known / Top-1 loc are then read at that τ on every split.
* ``maxboxacc_v2`` (Choe et al. 2020, :func:`maxboxacc_v2`): for each IoU threshold δ ∈ {0.3, 0.5, 0.7} the τ with
  the best box accuracy over all components on ``val_fullsup``, applied to ``test``; the metric is the mean over δ.

Both choose τ with :func:`choose_thresholds` (first best τ on ties) on ``val_fullsup`` only: test never influences
the choice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

IOU_THRESHOLDS_V2 = (0.3, 0.5, 0.7)


def threshold_grid(step: float) -> np.ndarray:
    """τ ∈ [0, 1) on a regular grid (wsolevaluation's ``cam_curve_interval``)."""
    count = int(round(1.0 / step))
    return np.arange(count, dtype=np.float64) * step


def box_accuracy(ious: np.ndarray, iou_thresholds: Sequence[float] = IOU_THRESHOLDS_V2) -> np.ndarray:
    """Fraction of images with IoU ≥ δ, ``[len(δ), T]`` for ``ious`` of shape ``[N, T]``."""
    ious = np.asarray(ious)
    return np.stack([(ious >= delta).mean(axis=0) for delta in iou_thresholds])


def choose_thresholds(val_curve: np.ndarray) -> np.ndarray:
    """The τ index of the best box accuracy per row of ``val_curve`` ``[len(δ), T]`` (the first best on ties)."""
    return val_curve.argmax(axis=1)


def paper_localisation(
    largest_iou: np.ndarray, class_correct: np.ndarray, iou_threshold: float = 0.5
) -> dict[str, float]:
    """GT-known loc (IoU ≥ 0.5) and Top-1 loc (also top-1 class correct), as plain final ratios (B14 fixed)."""
    hit = np.asarray(largest_iou) >= iou_threshold
    return {
        "gt_known_loc": float(hit.mean()),
        "top1_loc": float((hit & np.asarray(class_correct, bool)).mean()),
    }


# ------------------------------------------------------------------------------------ the two τ choices, side by side
@dataclass
class MaxBoxAcc:
    """MaxBoxAcc (V1): one τ for the largest component at one IoU threshold, chosen on val_fullsup."""

    iou_threshold: float
    chosen_index: int  # threshold index chosen on val_fullsup
    chosen_threshold: float
    val_accuracy: float  # at the chosen τ
    val_curve: np.ndarray  # [T]


def maxboxacc(val_largest_iou: np.ndarray, thresholds: np.ndarray, iou_threshold: float = 0.5) -> MaxBoxAcc:
    """Choose τ on val_fullsup: the best fraction of images whose largest component has IoU ≥ ``iou_threshold``.
    Read GT-known / Top-1 loc of any split at ``chosen_index`` (:func:`paper_localisation` of that column)."""
    val_curve = box_accuracy(val_largest_iou, (iou_threshold,))
    chosen = int(choose_thresholds(val_curve)[0])
    return MaxBoxAcc(
        iou_threshold=iou_threshold,
        chosen_index=chosen,
        chosen_threshold=float(np.asarray(thresholds)[chosen]),
        val_accuracy=float(val_curve[0, chosen]),
        val_curve=val_curve[0],
    )


@dataclass
class MaxBoxAccV2:
    """MaxBoxAccV2: one τ per IoU threshold δ for the best of all components, chosen on val_fullsup."""

    iou_thresholds: tuple[float, ...]
    chosen_index: np.ndarray  # [len(δ)] threshold index chosen on val_fullsup
    chosen_threshold: np.ndarray  # [len(δ)]
    val_accuracy: np.ndarray  # [len(δ)] at the chosen τ
    test_accuracy: np.ndarray  # [len(δ)] at the chosen τ
    val_curve: np.ndarray  # [len(δ), T]
    test_curve: np.ndarray  # [len(δ), T]

    @property
    def test_mean(self) -> float:
        return float(self.test_accuracy.mean())


def maxboxacc_v2(
    val_ious: np.ndarray,
    test_ious: np.ndarray,
    thresholds: np.ndarray,
    iou_thresholds: Sequence[float] = IOU_THRESHOLDS_V2,
) -> MaxBoxAccV2:
    """Choose τ per δ on val_fullsup (first best τ on ties), apply it to test. Test never influences the choice."""
    val_curve = box_accuracy(val_ious, iou_thresholds)
    test_curve = box_accuracy(test_ious, iou_thresholds)
    chosen = choose_thresholds(val_curve)
    rows = np.arange(len(iou_thresholds))
    return MaxBoxAccV2(
        iou_thresholds=tuple(iou_thresholds),
        chosen_index=chosen,
        chosen_threshold=np.asarray(thresholds)[chosen],
        val_accuracy=val_curve[rows, chosen],
        test_accuracy=test_curve[rows, chosen],
        val_curve=val_curve,
        test_curve=test_curve,
    )
