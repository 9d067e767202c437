"""ResNet50 with a stride-1 layer4 (map 14×14 at 224 px, 4×4 at 64 px), GAP and fc (docs/paper.md §4.2). ADL after
layer3 block 0 and layer4 blocks 0 and 2 (``"30 40 42"``) when ``adl`` is given. ``cam_layer`` = layer4.
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models import resnet50

from softmax_mi.models.adl import ADL
from softmax_mi.models.pretrained import load_backbone_weights


class ResNet50GAP(nn.Module):
    def __init__(self, n_classes: int, *, pretrained: str = "none", adl: dict | None = None):
        super().__init__()
        base = resnet50(weights=None)
        load_backbone_weights(base, "resnet50", pretrained)
        first = base.layer4[0]
        first.conv2.stride = (1, 1)  # torchvision's Bottleneck strides in conv2
        first.downsample[0].stride = (1, 1)
        if adl:
            base.layer3[0] = nn.Sequential(base.layer3[0], ADL(**adl))
            base.layer4[0] = nn.Sequential(base.layer4[0], ADL(**adl))
            base.layer4[2] = nn.Sequential(base.layer4[2], ADL(**adl))
        self.stem = nn.Sequential(base.conv1, base.bn1, base.relu, base.maxpool)
        self.layer1, self.layer2, self.layer3, self.layer4 = base.layer1, base.layer2, base.layer3, base.layer4
        self.cam_layer = self.layer4
        self.fc = nn.Linear(2048, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer4(self.layer3(self.layer2(self.layer1(self.stem(x)))))
        return self.fc(x.mean(dim=(2, 3)))
