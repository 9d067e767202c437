"""Class activation maps for GAP + linear classifiers, batched from one forward pass (docs/paper.md §1.5–1.6).

One forward pass gives the logits and the last feature map ``F`` (B×C×h×w, captured by a forward hook on the layer
that feeds global average pooling). Every map is then a *weight rule* ``v`` (B×C) applied to ``F`` —
``M = Σ_c v_c F_c`` (no bias, no ReLU, as in the original) — optionally followed by a k×k region *sum*:

============================  ====================================================================================
method                        weight vector v and spatial step
============================  ====================================================================================
``cam``                       v = w_y (Zhou et al. 2016)
``infocam``                   v = w_y − mean_{j≠y} w_j (``--sub-oth-cams``: PMI of y against the average other
                              class, docs/paper.md §1.5) + k×k region sum with **centred** zero padding (size of F)
``infocam_full``              same v + k×k region sum with the original's **full** padding (k−1 each side; the
                              (h+k−1)² map is stretched over the image, docs/paper.md B18 — kept for comparability)
``infocam_noregion``          the infoCAM weight rule without the region sum (= K/(K−1) · CAM with mean-centred w)
``infocam_leastlikely``       v = w_y − w_{argmin logits} + centred region sum (``--max-cam``; the original takes the
                              200th-ranked class, B16). This *may* be the paper's "infoCAM+" — unverified
                              (docs/paper.md §1.6), so it is named by what it computes
``gradcam``                   outside baseline: Grad-CAM from ``pytorch-grad-cam`` on the same layer (ReLU'd,
                              normalised, at the input size; needs a second, gradient-enabled pass)
============================  ====================================================================================

``y`` is the ground-truth class (GT-known) or the predicted class (Top-1); both come from the same features.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from softmax_mi import registry

WEIGHT_METHODS = registry.WEIGHT_METHODS  # the weight rules of the table above, listed once
PADDINGS = ("centred", "full")


def cam_layers(model: nn.Module) -> tuple[nn.Module, nn.Linear]:
    """The module whose output is the pre-GAP feature map, and the final linear layer.

    Models of :mod:`softmax_mi.models` name them ``cam_layer`` and ``fc``; torchvision ResNets use ``layer4``/``fc``.
    """
    if hasattr(model, "cam_layer") and isinstance(getattr(model, "fc", None), nn.Linear):
        return model.cam_layer, model.fc
    if hasattr(model, "layer4") and isinstance(getattr(model, "fc", None), nn.Linear):
        return model.layer4, model.fc
    raise TypeError(f"{type(model).__name__}: cannot find the pre-GAP layer and the linear classifier")


@dataclass
class Activations:
    """What one forward pass yields: logits [B, K], features [B, C, h, w], classifier weights [K, C]."""

    logits: torch.Tensor
    features: torch.Tensor
    weight: torch.Tensor

    @property
    def predicted(self) -> torch.Tensor:
        return self.logits.argmax(dim=1)


class FeatureExtractor:
    """Wraps a GAP classifier; calling it runs ONE forward pass and returns :class:`Activations`.

    A context manager (``with FeatureExtractor(model) as extract: ...``) so the hook is always removed.
    """

    def __init__(self, model: nn.Module, layer: nn.Module | None = None, fc: nn.Linear | None = None):
        default_layer, default_fc = cam_layers(model) if layer is None or fc is None else (layer, fc)
        self.model, self.layer, self.fc = model, layer or default_layer, fc or default_fc
        self._features: torch.Tensor | None = None
        self._handle = self.layer.register_forward_hook(self._keep)

    def _keep(self, _module, _inputs, output) -> None:
        self._features = output

    def __call__(self, images: torch.Tensor) -> Activations:
        logits = self.model(images)
        features, self._features = self._features, None
        if features is None:
            raise RuntimeError("the feature hook did not fire: is the layer part of the forward pass?")
        return Activations(logits=logits, features=features, weight=self.fc.weight)

    def remove(self) -> None:
        self._handle.remove()

    def __enter__(self) -> FeatureExtractor:
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


def weight_vectors(method: str, weight: torch.Tensor, logits: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
    """The per-sample weight vector v [B, C] of a weight rule (see the module table)."""
    target = weight[classes]
    if method == "cam":
        return target
    if method in ("infocam", "infocam_full", "infocam_noregion"):
        n_classes = weight.shape[0]
        return target - (weight.sum(dim=0, keepdim=True) - target) / (n_classes - 1)
    if method == "infocam_leastlikely":
        return target - weight[logits.argmin(dim=1)]
    raise ValueError(f"unknown weight rule {method!r}; choose one of {WEIGHT_METHODS}")


def region_sum(maps: torch.Tensor, k: int, padding: str = "centred") -> torch.Tensor:
    """Sum of each k×k window of ``maps`` [B, h, w] with zero padding: ``centred`` keeps h×w (window rows
    i−(k−1)//2 … i+k//2), ``full`` pads k−1 on every side and returns (h+k−1)×(w+k−1) (the original)."""
    if k < 1:
        raise ValueError(f"region size k must be >= 1, got {k}")
    if padding == "full":
        pads = (k - 1, k - 1, k - 1, k - 1)
    elif padding == "centred":
        pads = ((k - 1) // 2, k // 2, (k - 1) // 2, k // 2)
    else:
        raise ValueError(f"padding must be one of {PADDINGS}, not {padding!r}")
    padded = F.pad(maps.unsqueeze(1), pads)
    return F.avg_pool2d(padded, k, stride=1).squeeze(1) * (k * k)


def class_maps(
    activations: Activations, method: str, classes: torch.Tensor, *, region_k: int = 3
) -> torch.Tensor:
    """Maps [B, h', w'] at the feature resolution for one weight rule and one class per sample."""
    v = weight_vectors(method, activations.weight, activations.logits, classes)
    maps = torch.einsum("bc,bchw->bhw", v.to(activations.features.dtype), activations.features)
    if method in ("infocam", "infocam_leastlikely"):
        maps = region_sum(maps, region_k, "centred")
    elif method == "infocam_full":
        maps = region_sum(maps, region_k, "full")
    return maps


def upsample(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of maps [B, h, w] onto the image grid (the whole map is stretched over the image)."""
    return F.interpolate(maps.unsqueeze(1), size=size, mode="bilinear", align_corners=False).squeeze(1)


def normalise(maps: torch.Tensor) -> torch.Tensor:
    """Min-max normalise each map to [0, 1] (a constant map becomes 0)."""
    flat = maps.flatten(1)
    low = flat.min(dim=1).values[:, None, None]
    span = (flat.max(dim=1).values[:, None, None] - low)
    return torch.where(span > 0, (maps - low) / span.clamp_min(torch.finfo(maps.dtype).tiny), torch.zeros_like(maps))


def gradcam_maps(
    model: nn.Module, layer: nn.Module, images: torch.Tensor, classes: Sequence[int] | torch.Tensor
) -> torch.Tensor:
    """Grad-CAM from ``pytorch-grad-cam`` (outside baseline): [B, H, W] at the input size, ReLU'd, in [0, 1]."""
    from softmax_mi.extras import optional_import

    GradCAM = optional_import("pytorch_grad_cam", "method 'gradcam'").GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
    targets = [ClassifierOutputTarget(int(c)) for c in classes]
    with GradCAM(model=model, target_layers=[layer]) as explainer:
        maps = explainer(input_tensor=images, targets=targets)
    return torch.as_tensor(maps)


@torch.no_grad()
def all_maps(
    extractor: FeatureExtractor,
    images: torch.Tensor,
    classes: torch.Tensor,
    methods: Sequence[str],
    *,
    region_k: int = 3,
    size: tuple[int, int] | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Logits and, per weight-rule method, maps for ``classes`` — all from ONE forward pass.

    With ``size`` the maps are resized to it and min-max normalised (ready for :mod:`softmax_mi.localisation`).
    """
    activations = extractor(images)
    out = {}
    for method in methods:
        maps = class_maps(activations, method, classes, region_k=region_k)
        out[method] = normalise(upsample(maps, size)) if size is not None else maps
    return activations.logits, out
