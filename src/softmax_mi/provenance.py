"""What produced a result row: package version, a hash of the settings, the device."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from softmax_mi import __version__
from softmax_mi.params import params_hash


def provenance(settings: Mapping[str, Any]) -> dict[str, str]:
    return {"params_hash": params_hash(settings), "package_version": __version__}


PROVENANCE_COLUMNS = {
    "params_hash": "sha256 prefix of the settings that produced the row (see softmax_mi.params.params_hash)",
    "package_version": "softmax-mi version that produced the row",
}
