"""Mutual-information estimators for continuous X and discrete Y, all with one call shape and all in nats::

    from softmax_mi.estimators import build_estimator, LabeledSample
    train = LabeledSample.from_arrays(x_train, y_train)
    test = LabeledSample.from_arrays(x_test, y_test, n_classes=train.n_classes)
    estimate = build_estimator("pc_softmax", seed=0).fit(train).estimate(test)
    estimate.value   # nats

| name          | what it reports                                               | family                         |
|---------------|---------------------------------------------------------------|--------------------------------|
| softmax       | log K − CE of a softmax classifier on held-out data           | Barber–Agakov, uniform prior   |
| pc_softmax    | mean log PC_y(x) of a PC-softmax classifier                   | Barber–Agakov, true prior      |
| mine          | Donsker–Varadhan bound, EMA-corrected gradients               | critic T(x, y) = g(x)_y        |
| infonce       | InfoNCE (CPC) bound, in-batch negatives                       | same critic                    |
| nwj           | NWJ / f-divergence bound                                      | same critic                    |
| knn           | Ross (2014) kNN estimator of the joint I(X;Y), any d          | non-parametric                 |
| sklearn_knn   | scikit-learn ``mutual_info_classif``; valid for d = 1 only    | non-parametric, per feature    |
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from softmax_mi.estimators.base import LabeledSample, MIEstimate, MIEstimator
from softmax_mi.estimators.classifier import PCSoftmaxMI, SoftmaxMI
from softmax_mi.estimators.knn import KNNMI, SklearnKNNMI
from softmax_mi.estimators.variational import MINE, NWJ, InfoNCE
from softmax_mi.training import TrainConfig

NEURAL = {"softmax": SoftmaxMI, "pc_softmax": PCSoftmaxMI, "mine": MINE, "infonce": InfoNCE, "nwj": NWJ}
NONPARAMETRIC = {"knn": KNNMI, "sklearn_knn": SklearnKNNMI}
ESTIMATORS = {**NEURAL, **NONPARAMETRIC}
TRAIN_KEYS = tuple(name for name in TrainConfig.__dataclass_fields__ if name not in ("seed", "device"))
"""The settings keys a neural estimator passes to :class:`~softmax_mi.training.TrainConfig`."""


def build_estimator(
    name: str, *, settings: Mapping[str, Any] | None = None, seed: int = 0, device: str = "cpu"
) -> MIEstimator:
    """Instantiate estimator ``name`` from a flat settings mapping (a section of ``params.yaml``).

    Neural estimators take ``hidden`` plus the :class:`~softmax_mi.training.TrainConfig` fields
    (epochs, batch_size, lr, val_fraction, select, and the stopping rule's min_steps, max_epochs, patience,
    min_delta) and any estimator-specific keys; kNN ones take ``k`` etc.
    """
    if name not in ESTIMATORS:
        raise KeyError(f"unknown estimator {name!r}; choose one of {sorted(ESTIMATORS)}")
    settings = dict(settings or {})
    if name in NEURAL:
        train_keys = set(TRAIN_KEYS)
        train_config = TrainConfig(
            **{k: settings.pop(k) for k in train_keys & settings.keys()}, seed=seed, device=device
        )
        return NEURAL[name](train_config=train_config, **settings)
    return NONPARAMETRIC[name](seed=seed, **settings)


__all__ = [
    "ESTIMATORS",
    "LabeledSample",
    "MIEstimate",
    "MIEstimator",
    "build_estimator",
    "SoftmaxMI",
    "PCSoftmaxMI",
    "MINE",
    "InfoNCE",
    "NWJ",
    "KNNMI",
    "SklearnKNNMI",
]
