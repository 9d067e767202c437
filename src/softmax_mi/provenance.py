"""What produced a result row: package version, a hash of the settings, the device."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from softmax_mi import __version__
from softmax_mi.params import params_hash


def provenance(settings: Mapping[str, Any]) -> dict[str, str]:
    return {"params_hash": params_hash(settings), "package_version": __version__}


PROVENANCE_COLUMNS = {
    "params_hash": "sha256 prefix of the settings that produced the row (see softmax_mi.params.params_hash)",
    "package_version": "softmax-mi version that produced the row",
}

AGGREGATE_PROVENANCE_COLUMNS = {
    "params_hash": "sha256 prefix of the sorted params_hash values of the runs aggregated in the row",
    "package_version": "softmax-mi version(s) that produced the runs aggregated in the row",
}


def aggregate_provenance() -> dict[str, tuple[str, Callable]]:
    """Named aggregations for ``DataFrameGroupBy.agg``: an aggregate row's provenance is that of all its runs."""
    return {
        "params_hash": ("params_hash", lambda hashes: params_hash(sorted(set(hashes)))),
        "package_version": ("package_version", lambda versions: ",".join(sorted(set(versions)))),
    }
