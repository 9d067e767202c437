"""The paper's MNIST LeNet, and the same network stacked G times so that G independent runs train as one model.

``LeNet`` is the PyTorch-examples network of the original MNIST experiment (docs/paper.md §3.1): conv 1→20 5×5 →
ReLU → max-pool 2 → conv 20→50 5×5 → ReLU → max-pool 2 → fc 800→500 → ReLU → fc 500→10.

``StackedLeNet`` holds G LeNets as stacked parameters (leading dimension G) and runs them with grouped
convolutions and batched matrix products. Run g sees only its own input slice and its own weights, so the forward
pass, the gradients and an element-wise optimiser (SGD with momentum) are exactly those of G separate LeNets; only
the shape of the work changes (one kernel call per layer for all runs instead of G). ``from_models``/``to_models``
convert both ways, so each run can be initialised exactly as a plain ``LeNet`` built from its own seed.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

MNIST_MEAN, MNIST_STD = 0.1307, 0.3081


def normalise(images: torch.Tensor, mean: float = MNIST_MEAN, std: float = MNIST_STD) -> torch.Tensor:
    """uint8 images (… × 28 × 28) → float (x/255 − mean)/std: torchvision's ToTensor + Normalize, on a batch."""
    return (images.float() / 255.0 - mean) / std


class LeNet(nn.Module):
    def __init__(self, n_classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 20, 5, 1)
        self.conv2 = nn.Conv2d(20, 50, 5, 1)
        self.fc1 = nn.Linear(4 * 4 * 50, 500)
        self.fc2 = nn.Linear(500, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: float (B × 1 × 28 × 28) → logits (B × K)."""
        x = F.max_pool2d(F.relu(self.conv1(x)), 2, 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2, 2)
        x = F.relu(self.fc1(x.flatten(1)))
        return self.fc2(x)


class StackedLeNet(nn.Module):
    """G independent LeNets. Input (G × B × 28 × 28) float, one batch per run; output logits (G × B × K)."""

    def __init__(self, n_models: int, n_classes: int = 10):
        super().__init__()
        self.n_models, self.n_classes = n_models, n_classes
        g = n_models
        self.conv1_weight = nn.Parameter(torch.empty(g * 20, 1, 5, 5))
        self.conv1_bias = nn.Parameter(torch.empty(g * 20))
        self.conv2_weight = nn.Parameter(torch.empty(g * 50, 20, 5, 5))
        self.conv2_bias = nn.Parameter(torch.empty(g * 50))
        self.fc1_weight = nn.Parameter(torch.empty(g, 800, 500))  # transposed: x @ W
        self.fc1_bias = nn.Parameter(torch.empty(g, 1, 500))
        self.fc2_weight = nn.Parameter(torch.empty(g, 500, n_classes))
        self.fc2_bias = nn.Parameter(torch.empty(g, 1, n_classes))

    @classmethod
    def from_models(cls, models: Sequence[LeNet]) -> StackedLeNet:
        stacked = cls(len(models), models[0].fc2.out_features)
        with torch.no_grad():
            stacked.conv1_weight.copy_(torch.cat([m.conv1.weight for m in models]))
            stacked.conv1_bias.copy_(torch.cat([m.conv1.bias for m in models]))
            stacked.conv2_weight.copy_(torch.cat([m.conv2.weight for m in models]))
            stacked.conv2_bias.copy_(torch.cat([m.conv2.bias for m in models]))
            stacked.fc1_weight.copy_(torch.stack([m.fc1.weight.T for m in models]))
            stacked.fc1_bias.copy_(torch.stack([m.fc1.bias[None] for m in models]))
            stacked.fc2_weight.copy_(torch.stack([m.fc2.weight.T for m in models]))
            stacked.fc2_bias.copy_(torch.stack([m.fc2.bias[None] for m in models]))
        return stacked

    def to_models(self) -> list[LeNet]:
        """Unstack into G plain LeNets (copies)."""
        models = []
        with torch.no_grad():
            for g in range(self.n_models):
                m = LeNet(self.n_classes).to(self.fc1_weight.device)
                m.conv1.weight.copy_(self.conv1_weight[g * 20 : (g + 1) * 20])
                m.conv1.bias.copy_(self.conv1_bias[g * 20 : (g + 1) * 20])
                m.conv2.weight.copy_(self.conv2_weight[g * 50 : (g + 1) * 50])
                m.conv2.bias.copy_(self.conv2_bias[g * 50 : (g + 1) * 50])
                m.fc1.weight.copy_(self.fc1_weight[g].T)
                m.fc1.bias.copy_(self.fc1_bias[g, 0])
                m.fc2.weight.copy_(self.fc2_weight[g].T)
                m.fc2.bias.copy_(self.fc2_bias[g, 0])
                models.append(m)
        return models

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g, b = x.shape[0], x.shape[1]
        if g != self.n_models:
            raise ValueError(f"expected {self.n_models} input batches, got {g}")
        # B × G × 28 × 28, run g = input channel g; channels-last makes oneDNN's max-pool ~4× faster on CPU
        h = x.reshape(g, b, 28, 28).transpose(0, 1).contiguous(memory_format=torch.channels_last)
        # max-pool and ReLU commute exactly (ReLU is monotone), values and gradients alike; pooling first lets the
        # ReLU and its backward touch 4× fewer values
        # B × 20G × 24 × 24; with one run (one input channel, whose layout is ambiguous) conv1 answers in NCHW and
        # max-pool would take its slow path (a one-run step: 40.8 ms instead of 28.1, bench/lenet_stack.py): keep it
        # channels-last (a no-op for G ≥ 2, so their results are unchanged bit for bit)
        h = F.conv2d(h, self.conv1_weight, self.conv1_bias, groups=g).contiguous(memory_format=torch.channels_last)
        h = F.relu(F.max_pool2d(h, 2, 2))
        h = F.conv2d(h, self.conv2_weight, self.conv2_bias, groups=g)  # B × 50G × 8 × 8
        h = F.relu(F.max_pool2d(h, 2, 2))  # B × 50G × 4 × 4
        h = h.contiguous().reshape(b, g, 800).transpose(0, 1)  # G × B × 800, each run's (C, H, W) flatten order
        h = F.relu(torch.baddbmm(self.fc1_bias, h, self.fc1_weight))
        return torch.baddbmm(self.fc2_bias, h, self.fc2_weight)
