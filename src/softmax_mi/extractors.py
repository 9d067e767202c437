"""torchcam-style map extractors for any GAP + linear classifier: :class:`CAM`, :class:`InfoCAM`,
:class:`InfoCAMLeastLikely` (one small class per weight rule of :mod:`softmax_mi.cam`, on a shared hook base).

Usage::

    with InfoCAM(model) as extractor:          # layers found automatically, or given by name / module
        logits = model(images)                 # the hooks keep the last feature map and logits
        maps = extractor(class_idx=None, logits=logits, size="input")   # None: the predicted class

Models: torchvision ResNets (``layer4``/``fc``), the project's VGG-GAP and GAP CNNs (``cam_layer``/``fc``), the
EfficientNet-Lite models of ``efficientnet_lite_pytorch`` and any model with an ``nn.AdaptiveAvgPool2d(1)`` module
followed by an ``nn.Linear``: there the feature map is taken as the *input* of the pooling module (a forward
pre-hook), which is exactly what global average pooling averages, even when the last activation is applied
functionally in ``forward`` (EfficientNet's head swish is). A ``target_layer`` that is itself a global-average-pooling
module is read the same way; any other layer is read at its output.

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
    """The layer that gives the pre-pooling feature map, and the final linear layer.

    Rules, in order: ``cam_layer``/``fc`` (models of :mod:`softmax_mi.models`) or ``layer4``/``fc`` (torchvision
    ResNets), read at their output; else the last ``nn.AdaptiveAvgPool2d(1)`` with an ``nn.Linear`` registered after
    it (the last one): the pooling module itself is returned, and the extractors read the map at its *input*
    (``conv → AdaptiveAvgPool2d → Flatten → Linear`` in a ``Sequential``, torchvision-style ``avgpool``/``fc``
    attributes, EfficientNet's ``_avg_pooling``/``_fc``). Pass ``target_layer`` and ``fc_layer`` when the model
    follows none of these (e.g. it pools with ``x.mean((2, 3))``).

    Example::

        >>> import torchvision
        >>> model = torchvision.models.resnet18(weights=None)
        >>> find_layers(model) == (model.layer4, model.fc)
        True
    """
    try:
        return cam_layers(model)
    except TypeError:
        pass
    named = list(model.named_modules())
    pools = [i for i, (_, module) in enumerate(named) if _is_gap(module)]
    linears = [i for i, (_, module) in enumerate(named) if isinstance(module, nn.Linear)]
    if pools and linears and linears[-1] > pools[-1]:
        return named[pools[-1]][1], named[linears[-1]][1]
    raise TypeError(
        f"{type(model).__name__}: no global-average-pooling + nn.Linear head found (looked for cam_layer/fc, "
        "layer4/fc, and an nn.AdaptiveAvgPool2d(1) followed by an nn.Linear); pass target_layer= and fc_layer="
    )


class _MapExtractor:
    """Shared hook base: keeps the last feature map (the target layer's output, or its input when it is a
    global-average-pooling module), the logits (fc output) and the input size."""

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
        self.reads_input = _is_gap(self.target_layer)  # the map GAP averages is its input
        self._handles = [
            self.target_layer.register_forward_pre_hook(self._keep_pooled_input) if self.reads_input
            else self.target_layer.register_forward_hook(self._keep_features),
            self.fc_layer.register_forward_hook(self._keep_logits),
            model.register_forward_pre_hook(self._keep_input_size),
        ]

    def _keep_features(self, _module, _inputs, output) -> None:
        self._features = output.detach()

    def _keep_pooled_input(self, _module, inputs) -> None:
        self._features = inputs[0].detach()

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
        """Maps of the last forward pass, one per sample and class.

        Args:
            class_idx: ``None`` (the predicted class), one int for the whole batch, one class per sample (``[B]``:
                e.g. the ground truth), or several per sample (``[B, k]``: e.g. ``logits.topk(k).indices``).
            logits: default the hooked fc output of the last forward pass.
            size: ``None`` (the feature size h×w), ``"input"`` (the model input's H×W) or ``(height, width)``;
                bilinear upsampling stretches the whole map over the image.
            normalized: min-max normalise each map to [0, 1] (after resizing), as torchcam does.

        Returns:
            ``[B, h, w]`` maps, or ``[B, k, h, w]`` for a 2-D ``class_idx``; on the model's device.
        """
        features = self._features
        if features is None and self._logits is not None:
            raise RuntimeError(f"fc_layer ran but the target layer ({type(self.target_layer).__name__}) did not run in "
                               "the forward pass: pass target_layer= (a module, or its name) that forward calls")
        if features is None:
            raise RuntimeError("no feature map stored: run the model forward inside the extractor first")
        if features.dim() != 4 or features.shape[1] != self.fc_layer.in_features:
            read = "input" if self.reads_input else "output"
            raise RuntimeError(f"target layer {read} {tuple(features.shape)} is not a B×C×h×w map with "
                               f"C = fc in_features ({self.fc_layer.in_features})")
        logits = (self._logits if logits is None else logits.detach()).to(features.device)
        batch = len(features)
        if class_idx is None:
            classes = logits.argmax(dim=1)
        else:
            classes = torch.as_tensor(class_idx, device=features.device).long()
            classes = classes.expand(batch) if classes.numel() == 1 else classes
        per_sample = classes.dim() == 2
        classes = classes if per_sample else classes.reshape(-1, 1)
        if classes.dim() != 2 or len(classes) != batch:
            raise ValueError(f"{len(classes)} classes for a batch of {batch} (give one class per sample, [B], or "
                             "[B, k])")
        activations = Activations(logits, features, self.fc_layer.weight.detach())
        # one batched map computation per column of classes (k of them, not one per sample)
        maps = torch.stack([self._maps(activations, column) for column in classes.unbind(dim=1)], dim=1)
        flat = maps.flatten(0, 1)
        if size is not None:
            if size == "input":
                if self._input_size is None:
                    raise RuntimeError("input size unknown: the model's forward was not given an image tensor")
                size = self._input_size
            flat = upsample(flat, tuple(size))
        if normalized:
            flat = normalise(flat)
        maps = flat.view(batch, classes.shape[1], *flat.shape[-2:])
        return maps if per_sample else maps[:, 0]

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
        read = "input" if self.reads_input else "output"
        return (f"{type(self).__name__}(target_layer={type(self.target_layer).__name__} ({read}), "
                f"fc_layer={self.fc_layer})")


class CAM(_MapExtractor):
    """Class activation map (Zhou et al. 2016): ``Σ_c w_{y,c} F_c`` (no bias, no ReLU).

    Args:
        model: a classifier whose head is global average pooling + ``nn.Linear``.
        target_layer: the feature layer (module or name; a GAP module is read at its input); found when ``None``.
        fc_layer: the final ``nn.Linear`` (module or name); found when ``None``.

    Example::

        >>> import torch, torchvision
        >>> model = torchvision.models.resnet18(weights=None, num_classes=10).eval()
        >>> with CAM(model) as cam:
        ...     logits = model(torch.randn(2, 3, 64, 64))
        ...     maps = cam(logits.argmax(1), size="input")      # [2, 64, 64], the predicted classes
        >>> tuple(maps.shape)
        (2, 64, 64)
    """

    rule = "cam"


class InfoCAM(_MapExtractor):
    """infoCAM: weights ``w_y − mean_{j≠y} w_j`` then a k×k region sum; ``padding="centred"`` keeps the feature
    size, ``"full"`` is the original code's (h+k−1)² map (see :mod:`softmax_mi.cam`).

    Example::

        >>> import torch, torchvision
        >>> model = torchvision.models.resnet18(weights=None, num_classes=10).eval()
        >>> with InfoCAM(model, k=3) as info:
        ...     _ = model(torch.randn(2, 3, 64, 64))
        ...     maps = info(torch.tensor([3, 7]))               # ground-truth classes, feature size
        >>> tuple(maps.shape)
        (2, 2, 2)
    """

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
    (``--max-cam`` in the original code; possibly the paper's "infoCAM+", unverified).

    Example::

        >>> import torch, torchvision
        >>> model = torchvision.models.resnet18(weights=None, num_classes=10).eval()
        >>> with InfoCAMLeastLikely(model) as least:
        ...     logits = model(torch.randn(2, 3, 64, 64))
        ...     maps = least(logits.topk(3).indices, normalized=True)   # [2, 3, 2, 2]: the top-3 classes
    """

    rule = "infocam_leastlikely"

    def _maps(self, activations: Activations, classes: torch.Tensor) -> torch.Tensor:
        if self.padding == "centred":
            return class_maps(activations, self.rule, classes, region_k=self.k)
        return region_sum(class_maps(activations, self.rule, classes, region_k=1), self.k, "full")
