"""The one call shape shared by every estimator: ``estimator.fit(train).estimate(test)`` → nats."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field

from softmax_mi.samples import LabeledSample

__all__ = ["LabeledSample", "MIEstimate", "MIEstimator"]  # LabeledSample: re-exported from its own module


@dataclass
class MIEstimate:
    """An estimate of I(X;Y) in nats, with whatever diagnostics the estimator has (accuracies, steps, ...)."""

    value: float
    details: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.value = float(self.value)
        if math.isnan(self.value):
            raise FloatingPointError("MI estimate is NaN; the estimator diverged (try a smaller learning rate)")


class MIEstimator(ABC):
    """Estimates I(X;Y) for continuous X and discrete Y. ``fit`` may learn from ``train``; ``estimate`` must
    only evaluate on its argument (held-out data), never select anything on it."""

    name: str = "estimator"

    def fit(self, train: LabeledSample) -> MIEstimator:
        return self

    @abstractmethod
    def estimate(self, test: LabeledSample) -> MIEstimate: ...

    def fit_estimate(self, train: LabeledSample, test: LabeledSample) -> MIEstimate:
        return self.fit(train).estimate(test)
