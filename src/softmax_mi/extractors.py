"""torchcam-style map extractors for any GAP + linear classifier: :class:`CAM`, :class:`InfoCAM`,
:class:`InfoCAMLeastLikely` (one small class per weight rule of :mod:`softmax_mi.cam`, on a shared hook base).

Usage::

    with InfoCAM(model) as extractor:          # layers found automatically, or given by name / module
        logits = model(images)                 # the hooks keep the last feature map and logits
        maps = extractor(class_idx=None, logits=logits, size="input")   # None: the predicted class

The maps are the same numbers the pipeline uses (:func:`softmax_mi.cam.class_maps`): raw (no ReLU, no
normalisation) at the feature size unless ``size`` (``"input"`` or ``(h, w)``: bilinear upsampling) or
``normalized=True`` (per-map min-max to [0, 1], as torchcam's default) is asked for. The hooks are removed on
``__exit__`` or by :meth:`remove`, and the stored tensors are dropped with them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import torch
from torch import nn

from softmax_mi.cam import PADDINGS, Activations, cam_layers, class_maps, normalise, region_sum, upsample

__all__ = ["CAM", "InfoCAM", "InfoCAMLeastLikely", "find_layers"]


def _resolve(model: nn.Module, layer: nn.Module | str, role: str) -> nn.Module:
    if isinstance(layer, nn.Module):
        return layer
    modules = dict(model.named_modules())
    if layer not in modules:
        raise ValueError(f"{role} {layer!r} is not a submodule of {type(model).__name__}; "
                         f"names look like {sorted(n for n in modules if n)[:8]}")
    return modules[layer]


def _is_gap(module: nn.Module) -> bool:
    size = getattr(module, "output_size", None)
    return isinstance(module, nn.AdaptiveAvgPool2d) and size in (1, (1, 1))


def find_layers(model: nn.Module) -> tuple[nn.Module, nn.Linear]:
    """The module whose output global average pooling averages, and the final linear layer.

    Rules, in order: ``cam_layer``/``fc`` (models of :mod:`softmax_mi.models`) or ``layer4``/``fc`` (torchvision
    ResNets); else the last ``nn.AdaptiveAvgPool2d(1)`` and the last ``nn.Linear`` registered after it, the feature
    layer being the sibling module registered just before the pool (``conv → AdaptiveAvgPool2d → Flatten → Linear``
    in a ``Sequential``, or ``features``/``avgpool``/``fc`` attributes). Pass ``target_layer`` and ``fc_layer`` when
    the model follows none of these.
    """
    try:
        return cam_layers(model)
    except TypeError:
        pass
    named = list(model.named_modules())
    pools = [i for i, (_, module) in enumerate(named) if _is_gap(module)]
    linears = [i for i, (_, module) in enumerate(named) if isinstance(module, nn.Linear)]
    if pools and linears and linears[-1] > pools[-1]:
        pool_name = named[pools[-1]][0]
        parent_name, _, child = pool_name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        siblings = list(parent.named_children())
        index = [name for name, _ in siblings].index(child)
        if index > 0:
            return siblings[index - 1][1], named[linears[-1]][1]
    raise TypeError(
        f"{type(model).__name__}: no global-average-pooling + nn.Linear head found (looked for cam_layer/fc, "
        "layer4/fc, and an nn.AdaptiveAvgPool2d(1) followed by an nn.Linear); pass target_layer= and fc_layer="
    )


class _MapExtractor:
    """Shared hook base: keeps the last feature map (target layer output), logits (fc output) and input size."""

    rule: ClassVar[str]  # a weight rule of softmax_mi.cam

    def __init__(self, model: nn.Module, target_layer: nn.Module | str | None = None,
                 fc_layer: nn.Linear | str | None = None):
        found = find_layers(model) if target_layer is None or fc_layer is None else (None, None)
        self.model = model
        self.target_layer = found[0] if target_layer is None else _resolve(model, target_layer, "target_layer")
        self.fc_layer = found[1] if fc_layer is None else _resolve(model, fc_layer, "fc_layer")
        if not isinstance(self.fc_layer, nn.Linear):
            raise TypeError(f"fc_layer must be an nn.Linear, not {type(self.fc_layer).__name__}")
        self._features: torch.Tensor | None = None
        self._logits: torch.Tensor | None = None
        self._input_size: tuple[int, int] | None = None
        self._handles = [
            self.target_layer.register_forward_hook(self._keep_features),
            self.fc_layer.register_forward_hook(self._keep_logits),
            model.register_forward_pre_hook(self._keep_input_size),
        ]

    def _keep_features(self, _module, _inputs, output) -> None:
        self._features = output.detach()

    def _keep_logits(self, _module, _inputs, output) -> None:
        self._logits = output.detach()

    def _keep_input_size(self, _module, inputs) -> None:
        if inputs and isinstance(inputs[0], torch.Tensor) and inputs[0].dim() >= 3:
            self._input_size = tuple(inputs[0].shape[-2:])

    def _maps(self, activations: Activations, classes: torch.Tensor) -> torch.Tensor:
        return class_maps(activations, self.rule, classes)

    @torch.no_grad()
    def __call__(self, class_idx: int | Sequence[int] | torch.Tensor | None = None,
                 logits: torch.Tensor | None = None, size: str | tuple[int, int] | None = None,
                 normalized: bool = False) -> torch.Tensor:
        """Maps [B, h, w] of the last forward pass for ``class_idx`` (one int for all, one per sample, or None for
        the predicted class); ``logits`` default to the hooked fc output."""
        features = self._features
        if features is None:
            raise RuntimeError("no feature map stored: run the model forward inside the extractor first")
        if features.dim() != 4 or features.shape[1] != self.fc_layer.in_features:
            raise RuntimeError(f"target layer output {tuple(features.shape)} is not a B×C×h×w map with "
                               f"C = fc in_features ({self.fc_layer.in_features})")
        logits = (self._logits if logits is None else logits.detach()).to(features.device)
        if class_idx is None:
            classes = logits.argmax(dim=1)
        else:
            classes = torch.as_tensor(class_idx, device=features.device).long().reshape(-1)
            classes = classes.expand(len(features)) if classes.numel() == 1 else classes
        if len(classes) != len(features):
            raise ValueError(f"{len(classes)} classes for a batch of {len(features)}")
        maps = self._maps(Activations(logits, features, self.fc_layer.weight.detach()), classes)
        if size is not None:
            if size == "input":
                if self._input_size is None:
                    raise RuntimeError("input size unknown: the model's forward was not given an image tensor")
                size = self._input_size
            maps = upsample(maps, tuple(size))
        return normalise(maps) if normalized else maps

    def remove(self) -> None:
        """Remove the hooks and drop the stored tensors (safe to call twice)."""
        for handle in self._handles:
            handle.remove()
        self._handles = []
        self._features = self._logits = self._input_size = None

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.remove()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(target_layer={type(self.target_layer).__name__}, fc_layer={self.fc_layer})"


class CAM(_MapExtractor):
    """Class activation map (Zhou et al. 2016): ``Σ_c w_{y,c} F_c``."""

    rule = "cam"


class InfoCAM(_MapExtractor):
    """infoCAM: weights ``w_y − mean_{j≠y} w_j`` then a k×k region sum; ``padding="centred"`` keeps the feature
    size, ``"full"`` is the original code's (h+k−1)² map (see :mod:`softmax_mi.cam`)."""

    def __init__(self, model: nn.Module, target_layer: nn.Module | str | None = None,
                 fc_layer: nn.Linear | str | None = None, k: int = 3, padding: str = "centred"):
        if padding not in PADDINGS:
            raise ValueError(f"padding must be one of {PADDINGS}, not {padding!r}")
        if k < 1:
            raise ValueError(f"region size k must be >= 1, got {k}")
        super().__init__(model, target_layer, fc_layer)
        self.k, self.padding = k, padding

    @property
    def rule(self) -> str:
        return "infocam_full" if self.padding == "full" else "infocam"

    def _maps(self, activations: Activations, classes: torch.Tensor) -> torch.Tensor:
        return class_maps(activations, self.rule, classes, region_k=self.k)


class InfoCAMLeastLikely(InfoCAM):
    """infoCAM against the least likely class: weights ``w_y − w_{argmin logits}`` then the k×k region sum
    (``--max-cam`` in the original code; possibly the paper's "infoCAM+", unverified)."""

    rule = "infocam_leastlikely"

    def _maps(self, activations: Activations, classes: torch.Tensor) -> torch.Tensor:
        if self.padding == "centred":
            return class_maps(activations, self.rule, classes, region_k=self.k)
        return region_sum(class_maps(activations, self.rule, classes, region_k=1), self.k, "full")
