"""A small GAP-CNN that trains on a CPU in about a minute: the default WSOL backbone for the embedded dataset.

A 3×3 stride-2 conv block, a conv block and a 2×2 max-pool, two more conv blocks (3×3, BN, ReLU) → feature map
[C, H/4, W/4] (``cam_layer``) → global average pooling → ``fc``. Optional ADL after the pool and after the last
block (training only).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from softmax_mi.models.adl import ADL


def _block(c_in: int, c_out: int, stride: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True)]


class GapCNN(nn.Module):
    def __init__(
        self,
        n_classes: int = 10,
        in_channels: int = 1,
        widths: Sequence[int] = (16, 32, 64, 64),
        adl: dict | None = None,
    ):
        super().__init__()
        if len(widths) != 4:
            raise ValueError("GapCNN: widths must list 4 channel counts")
        w1, w2, w3, w4 = widths
        layers: list[nn.Module] = [*_block(in_channels, w1, stride=2), *_block(w1, w2), nn.MaxPool2d(2)]
        if adl:
            layers.append(ADL(**adl))
        layers += [*_block(w2, w3), *_block(w3, w4)]
        if adl:
            layers.append(ADL(**adl))
        self.features = nn.Sequential(*layers)
        self.cam_layer = self.features  # its output is the map that GAP averages
        self.fc = nn.Linear(w4, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x).mean(dim=(2, 3)))
