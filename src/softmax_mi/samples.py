"""Paired draws of a continuous x and a discrete label y: the data every estimator and trainer consumes."""

from __future__ import annotations

from dataclasses import dataclass

import torch


def label_entropy(labels: torch.Tensor) -> float:
    """Plug-in entropy H(Y) of integer ``labels`` (any device), in nats: −Σ_k p̂_k log p̂_k over the observed
    classes."""
    counts = torch.bincount(labels.reshape(-1).cpu()).double()
    p = counts[counts > 0] / counts.sum()
    return float(-(p * p.log()).sum())


@dataclass(frozen=True)
class LabeledSample:
    """Paired draws of a continuous ``x`` (n × d, float32) and a discrete label ``y`` (n, int64 in 0..K−1)."""

    x: torch.Tensor
    y: torch.Tensor
    n_classes: int

    def __post_init__(self) -> None:
        if self.x.ndim != 2:
            raise ValueError(f"x must be 2-D (n × d), got shape {tuple(self.x.shape)}")
        if self.y.ndim != 1 or len(self.y) != len(self.x):
            raise ValueError(f"y must be 1-D with len(x) = {len(self.x)} entries, got shape {tuple(self.y.shape)}")
        if len(self.y) and (int(self.y.min()) < 0 or int(self.y.max()) >= self.n_classes):
            raise ValueError(f"labels must lie in 0..{self.n_classes - 1}")

    @classmethod
    def from_arrays(cls, x, y, n_classes: int | None = None) -> LabeledSample:
        x = torch.as_tensor(x, dtype=torch.float32)
        x = x.reshape(len(x), -1)
        y = torch.as_tensor(y, dtype=torch.int64)
        return cls(x, y, int(y.max()) + 1 if n_classes is None else n_classes)

    def __len__(self) -> int:
        return len(self.y)

    @property
    def dim(self) -> int:
        return self.x.shape[1]

    def class_counts(self) -> torch.Tensor:
        return torch.bincount(self.y, minlength=self.n_classes)

    def label_entropy(self) -> float:
        """Plug-in H(Y) of this sample's labels, in nats."""
        return label_entropy(self.y)

    def to(self, device: str | torch.device) -> LabeledSample:
        return LabeledSample(self.x.to(device), self.y.to(device), self.n_classes)

    def subset(self, index: torch.Tensor) -> LabeledSample:
        return LabeledSample(self.x[index], self.y[index], self.n_classes)

    def split(self, fraction: float, *, seed: int) -> tuple[LabeledSample, LabeledSample]:
        """Random (1 − fraction, fraction) split, stratified by nothing; used to hold out a validation set."""
        generator = torch.Generator().manual_seed(seed)
        order = torch.randperm(len(self), generator=generator).to(self.y.device)
        n_held = int(round(fraction * len(self)))
        return self.subset(order[n_held:]), self.subset(order[:n_held])
