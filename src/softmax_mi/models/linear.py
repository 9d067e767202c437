"""G independent linear heads (``nn.Linear(dim, k)`` each) stacked into one module, for heads on cached features."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn


class StackedLinear(nn.Module):
    """G linear heads: weight G × D × K (transposed: x @ W), bias G × K. Input G × B × D (each run its own rows)
    or B × D (shared by every run); output logits G × B × K."""

    def __init__(self, n_models: int, dim: int, n_classes: int):
        super().__init__()
        self.n_models, self.n_classes = n_models, n_classes
        self.weight = nn.Parameter(torch.empty(n_models, dim, n_classes))
        self.bias = nn.Parameter(torch.empty(n_models, n_classes))

    @classmethod
    def from_seeds(cls, seeds: Sequence[int], dim: int, n_classes: int) -> StackedLinear:
        """Head g initialised as ``nn.Linear(dim, n_classes)`` does (U(±1/√dim), weight then bias), from a generator
        seeded with ``seeds[g]`` (the global RNG is left untouched)."""
        bound = 1.0 / math.sqrt(dim)
        weights, biases = [], []
        for seed in seeds:
            generator = torch.Generator().manual_seed(seed)
            weights.append((torch.rand(n_classes, dim, generator=generator) * 2 - 1) * bound)
            biases.append((torch.rand(n_classes, generator=generator) * 2 - 1) * bound)
        heads = cls(len(seeds), dim, n_classes)
        with torch.no_grad():
            heads.weight.copy_(torch.stack(weights).transpose(1, 2))
            heads.bias.copy_(torch.stack(biases))
        return heads

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim == 2:
            x = x.expand(self.n_models, *x.shape)
        return torch.baddbmm(self.bias[:, None, :], x, self.weight)
