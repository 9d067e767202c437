from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class MLP(nn.Sequential):
    """Fully connected ReLU network; the paper's synthetic classifier is ``MLP(d, 5, hidden=(100, 100, 100))``."""

    def __init__(self, in_features: int, out_features: int, *, hidden: Sequence[int] = (100, 100, 100)):
        widths = [in_features, *hidden]
        layers: list[nn.Module] = []
        for fan_in, fan_out in zip(widths[:-1], widths[1:]):
            layers += [nn.Linear(fan_in, fan_out), nn.ReLU()]
        layers.append(nn.Linear(widths[-1], out_features))
        super().__init__(*layers)

