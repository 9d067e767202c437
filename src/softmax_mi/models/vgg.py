"""VGG16-GAP as in the infoCAM / ADL code (docs/paper.md §4.2): VGG16 conv1_1…conv5_3 without the last max-pool,
conv6 512→1024 3×3 + ReLU (``cam_layer``), global average pooling, fc 1024→K. ADL after pool3, pool4 and conv5_3
(``"3M 4M 53"``) when ``adl`` is given.
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models import vgg16

from softmax_mi.models.adl import ADL
from softmax_mi.models.pretrained import load_backbone_weights

# indices in torchvision's vgg16().features: pool3 = 16, pool4 = 23, conv5_3's ReLU = 29, pool5 = 30 (dropped)
_ADL_AFTER = (16, 23, 29)


class VGG16GAP(nn.Module):
    def __init__(self, n_classes: int, *, pretrained: str = "none", adl: dict | None = None):
        super().__init__()
        base = vgg16(weights=None)
        load_backbone_weights(base, "vgg16", pretrained)
        layers: list[nn.Module] = []
        for index, layer in enumerate(list(base.features)[:30]):
            layers.append(layer)
            if adl and index in _ADL_AFTER:
                layers.append(ADL(**adl))
        self.features = nn.Sequential(*layers)
        self.conv6 = nn.Sequential(nn.Conv2d(512, 1024, 3, padding=1), nn.ReLU(inplace=True))
        self.cam_layer = self.conv6
        self.fc = nn.Linear(1024, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv6(self.features(x)).mean(dim=(2, 3)))
