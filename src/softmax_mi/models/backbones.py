"""Factory for the WSOL backbones: ``gap_cnn`` (default, CPU), ``vgg16_gap``, ``resnet50`` (paper, GPU)."""

from __future__ import annotations

from torch import nn

from softmax_mi import registry
from softmax_mi.models.gap_cnn import GapCNN

BACKBONES = registry.WSOL_BACKBONES  # the names build_backbone builds, listed once


def build_backbone(
    name: str, n_classes: int, *, in_channels: int = 1, pretrained: str = "none", adl: dict | None = None,
    widths: tuple[int, ...] = (16, 32, 64, 64),
) -> nn.Module:
    """A GAP classifier with ``cam_layer`` and ``fc``. VGG/ResNet take 3-channel input (grey images are repeated)."""
    if name == "gap_cnn":
        return GapCNN(n_classes, in_channels=in_channels, widths=widths, adl=adl)
    if name == "vgg16_gap":
        from softmax_mi.models.vgg import VGG16GAP  # torchvision imports in ~1.5 s: only when needed

        return VGG16GAP(n_classes, pretrained=pretrained, adl=adl)
    if name == "resnet50":
        from softmax_mi.models.resnet import ResNet50GAP

        return ResNet50GAP(n_classes, pretrained=pretrained, adl=adl)
    raise ValueError(f"unknown backbone {name!r}; choose one of {BACKBONES}")


def input_channels(name: str) -> int:
    return 1 if name == "gap_cnn" else 3
