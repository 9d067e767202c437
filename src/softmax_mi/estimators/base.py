"""The one call shape shared by every estimator: ``estimator.fit(train).estimate(test)`` → nats."""

from __future__ import annotations

from abc import ABC, abstractmethod

from softmax_mi.mi import MIEstimate
from softmax_mi.samples import LabeledSample

# LabeledSample and MIEstimate (the package's one result type, softmax_mi.MIEstimate): re-exported from their modules
__all__ = ["LabeledSample", "MIEstimate", "MIEstimator"]


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
