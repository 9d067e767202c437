"""Attention-based Dropout Layer (Choe & Shim, CVPR 2019), as in the original infoCAM fork (docs/paper.md §4.2).

Training only: attention = channel mean A; importance map = sigmoid(A); drop mask = [A < γ · max A] (per sample);
one uniform draw per forward pass picks the drop mask with probability ``drop_rate``, else the importance map; the
features are multiplied by it. Identity at evaluation. The draw uses torch's global generator (seeded per run).
"""

from __future__ import annotations

import torch
from torch import nn


class ADL(nn.Module):
    def __init__(self, gamma: float = 0.9, drop_rate: float = 0.75):
        super().__init__()
        if not 0.0 <= gamma <= 1.0 or not 0.0 <= drop_rate <= 1.0:
            raise ValueError(f"ADL: gamma and drop_rate must lie in [0, 1], got {gamma}, {drop_rate}")
        self.gamma, self.drop_rate = gamma, drop_rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return x
        attention = x.mean(dim=1, keepdim=True)
        if float(torch.rand(())) < self.drop_rate:
            peak = attention.flatten(1).max(dim=1).values[:, None, None, None]
            selected = (attention < self.gamma * peak).to(x.dtype)
        else:
            selected = torch.sigmoid(attention)
        return x * selected

    def extra_repr(self) -> str:
        return f"gamma={self.gamma}, drop_rate={self.drop_rate}"
