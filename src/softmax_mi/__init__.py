"""softmax-mi: a classifier trained with softmax cross-entropy, read as a mutual-information estimator.

Library entry points (usable without the pipeline):

- :mod:`softmax_mi.losses`      softmax / PC-softmax losses in stable log-sum-exp form
- :mod:`softmax_mi.estimators`  MI estimators with one call shape (``fit(train).estimate(test)`` in nats)
- :mod:`softmax_mi.mi`          MI from a trained classifier's held-out logits, with a confidence interval
- :mod:`softmax_mi.data`        synthetic tasks with known mutual information

Top-level names (``from softmax_mi import mi_from_logits``) are loaded lazily: importing the package stays torch-free.
"""

import importlib

__version__ = "0.1.0"

_LOCATIONS = {"MIEstimate": "mi", "mi_from_logits": "mi"}


def __getattr__(name: str):
    if name in _LOCATIONS:
        return getattr(importlib.import_module(f"softmax_mi.{_LOCATIONS[name]}"), name)
    raise AttributeError(f"module 'softmax_mi' has no attribute {name!r}")
