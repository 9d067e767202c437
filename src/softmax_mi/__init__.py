"""softmax-mi: a classifier trained with softmax cross-entropy, read as a mutual-information estimator.

Library entry points (usable without the pipeline):

- :mod:`softmax_mi.losses`      softmax / PC-softmax losses in stable log-sum-exp form
- :mod:`softmax_mi.loss_modules` the same losses as ``nn.Module`` wrappers built from the class counts:
  ``PCSoftmaxLoss``, ``LogitAdjustedLoss``, ``ClassBalancedLoss``, ``LDAMLoss`` (``nn.CrossEntropyLoss`` is plain
  softmax); also importable from :mod:`softmax_mi.losses` and from ``softmax_mi`` itself
- :mod:`softmax_mi.estimators`  MI estimators with one call shape (``fit(train).estimate(test)`` in nats)
- :mod:`softmax_mi.mi`          MI from a trained classifier's held-out logits, with a confidence interval
  (``mi_from_logits``); ``MIEstimate``, the result type of every estimator
- :mod:`softmax_mi.estimators.held_out` ``mi_from_features``: MI from features and labels (an estimator fitted on a
  seeded split), with the same interval
- :mod:`softmax_mi.data`        synthetic tasks with known mutual information
- :mod:`softmax_mi.extractors`  torchcam-style map extractors ``CAM``, ``InfoCAM``, ``InfoCAMLeastLikely`` for any
  GAP + linear classifier (hooks, context manager; the same numbers as :mod:`softmax_mi.cam`)
- :mod:`softmax_mi.localisation.score` ``score_maps``: WSOL scores (GT-known / Top-1 loc, MaxBoxAcc, MaxBoxAccV2) of
  any maps, under this project's convention or clovaai/wsolevaluation's (``protocol="wsolevaluation"``)
- :mod:`softmax_mi.label_shift`  label shift: test priors q ≠ π, shifted subsets, the decision rules under q (known,
  EM- or BBSE-estimated, post-hoc logit adjustment), their metrics and the MI read-out under q; the exact truth of
  the synthetic Gaussian task under any q
- :mod:`softmax_mi.localise`    ``Localiser``: top-k classes, CAM / infoCAM maps, boxes and overlays for image files,
  with the shipped EfficientNet-Lite0 ImageNet weights, a torchvision ResNet checkpoint or any GAP classifier

Top-level names (``from softmax_mi import mi_from_logits``) are loaded lazily: importing the package stays torch-free.
"""

import importlib

__version__ = "0.1.0"

# Top-level names, imported on first use so that `import softmax_mi` stays torch-free.
_LOCATIONS = {
    "CAM": "extractors",
    "ClassBalancedLoss": "loss_modules",
    "GaussianShiftTruth": "label_shift.gaussian",
    "InfoCAM": "extractors",
    "InMemoryClassifier": "label_shift.gaussian",
    "InfoCAMLeastLikely": "extractors",
    "LDAMLoss": "loss_modules",
    "Localiser": "localise",
    "LogitAdjustedLoss": "loss_modules",
    "MIEstimate": "mi",
    "PCSoftmaxLoss": "loss_modules",
    "WSOLScores": "localisation.score",
    "bbse_prior": "label_shift.rules",
    "em_prior": "label_shift.rules",
    "evaluate_gaussian_shift": "label_shift.gaussian",
    "evaluate_shift": "label_shift.evaluate",
    "mi_from_features": "estimators.held_out",
    "mi_from_logits": "mi",
    "prior_weight": "label_shift.rules",
    "score_maps": "localisation.score",
    "shifted_prior": "label_shift.priors",
    "shifted_subset": "label_shift.priors",
}

__all__ = sorted(_LOCATIONS)


def lazy_attribute(package: str, locations: dict[str, str], name: str):
    """A package's lazy re-export: ``name`` from its submodule ``locations[name]``, imported on first use (the
    body of a package's module ``__getattr__``; test_dvc_deps reads the ``_LOCATIONS`` dict of each package)."""
    if name not in locations:
        raise AttributeError(f"module {package!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{package}.{locations[name]}"), name)


def __getattr__(name: str):
    return lazy_attribute(__name__, _LOCATIONS, name)
