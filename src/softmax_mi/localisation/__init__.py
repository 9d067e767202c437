"""Boxes from score maps, IoU, the τ sweep and the WSOL scoring protocols (docs/paper.md §4.5, docs/peers.md §3).

Conventions
-----------
* A **box** is ``(x0, y0, x1, y1)`` in pixel-edge coordinates of the scored image, half-open: it covers pixel
  columns ``x0 .. x1-1`` and rows ``y0 .. y1-1``; its area is ``(x1-x0)·(y1-y0)``. This equals the original code's
  inclusive ``+1`` convention, but the intersection is clamped at 0, so disjoint boxes have IoU 0 (fixes B15).
* A **map** is min-max normalised per image (:func:`normalise_maps`) and scored at the image resolution. The mask at
  threshold τ is ``map >= τ``; components are 8-connected (as traced by OpenCV contours).
* ``largest`` = the bounding box of the largest connected component (pixel count; ties go to the component whose
  first pixel comes first in raster order, as ``scipy.ndimage.label`` numbers them); ``all`` (MaxBoxAccV2) = the best
  IoU over the bounding boxes of all components. No component → IoU 0.

Modules
-------
* :mod:`~softmax_mi.localisation.boxes`: boxes, IoU, map normalisation, the centre-box baseline map.
* :mod:`~softmax_mi.localisation.tau_sweep`: every threshold of a grid scored in one pass (:func:`sweep`).
* :mod:`~softmax_mi.localisation.protocols`: the ``paper`` protocol and the MaxBoxAcc V1 / V2 τ choices.
* :mod:`~softmax_mi.localisation.score`: :func:`~softmax_mi.localisation.score.score_maps`, the public scorer of any
  maps (our convention or clovaai/wsolevaluation's); it needs pandas and OpenCV, so it is not imported here either.
* :mod:`~softmax_mi.localisation.evaluate`: maps of a model and the whole evaluation loop over splits. It needs torch,
  so it is not imported here: ``from softmax_mi.localisation.evaluate import evaluate_wsol``.

This package (without ``evaluate`` and ``score``) needs only NumPy and SciPy.
"""

from softmax_mi.localisation.boxes import (
    EIGHT_CONNECTED,
    box_area,
    centre_box_map,
    iou,
    mask_boxes,
    normalise_maps,
)
from softmax_mi.localisation.protocols import (
    IOU_THRESHOLDS_V2,
    MaxBoxAcc,
    MaxBoxAccV2,
    box_accuracy,
    choose_thresholds,
    maxboxacc,
    maxboxacc_v2,
    paper_localisation,
    threshold_grid,
)
from softmax_mi.localisation.tau_sweep import Sweep, boxes_at_threshold, concat_sweeps, sweep, sweep_reference

__all__ = [
    "EIGHT_CONNECTED",
    "IOU_THRESHOLDS_V2",
    "MaxBoxAcc",
    "MaxBoxAccV2",
    "Sweep",
    "box_accuracy",
    "box_area",
    "boxes_at_threshold",
    "centre_box_map",
    "choose_thresholds",
    "concat_sweeps",
    "iou",
    "mask_boxes",
    "maxboxacc",
    "maxboxacc_v2",
    "normalise_maps",
    "paper_localisation",
    "sweep",
    "sweep_reference",
    "threshold_grid",
]
