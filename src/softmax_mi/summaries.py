"""Summaries over seeds: one row per setting of a part, the tables the stages write as
``results/<part>/summary.parquet`` and the reproduction report reads (softmax_mi.report).

Each summary groups a part's per-seed table by its setting keys (sorted; a NaN key, e.g. the τ of a loss without
one, is a group of its own) and aggregates the seeds with pandas' own group reductions, so a mean here is
bit-for-bit the mean any other ``groupby`` over the same rows computes. Every summary carries ``n_seeds``,
``seed_list`` (the seeds aggregated) and the aggregate provenance of its runs. The column meanings are documented
beside each stage's table (``SUMMARY_COLUMNS`` in softmax_mi.stages.*) and in docs/results.md.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from softmax_mi.provenance import aggregate_provenance

SEED_COLUMNS = {
    "n_seeds": "number of seeds aggregated",
    "seed_list": "the base seeds aggregated in the row, ascending",
}

SYNTHETIC_KEYS = ["dataset", "dim", "balance", "estimator"]
CLASSIFICATION_KEYS = ["dataset", "protocol", "setting", "profile", "imbalance_ratio", "loss", "tau", "split"]
LOCALISATION_KEYS = ["dataset", "backbone", "adl", "method", "protocol", "split", "metric", "iou"]


def seed_list(seeds: pd.Series) -> list[int]:
    """The distinct seeds of a group, ascending (an aggregation for ``DataFrameGroupBy.agg``)."""
    return sorted(set(seeds.tolist()))


def over_seeds(table: pd.DataFrame, keys: list[str], **aggregations: tuple) -> pd.DataFrame:
    """One row per distinct ``keys``: the named ``aggregations`` plus ``n_seeds``, ``seed_list`` and provenance."""
    return table.groupby(keys, sort=True, dropna=False).agg(
        n_seeds=("seed", "nunique"),
        seed_list=("seed", seed_list),
        **aggregations,
        **aggregate_provenance(),
    ).reset_index()


def summarise_synthetic(table: pd.DataFrame) -> pd.DataFrame:
    """Synthetic MI (``mi_estimates``): mean, spread, bias and RMSE of the estimate per (task, d, balance,
    estimator), with the setting's truth, H(Y) and K."""
    table = table.assign(squared_error=(table["mi_estimate"] - table["mi_true"]) ** 2)
    summary = over_seeds(
        table, SYNTHETIC_KEYS,
        n_classes=("n_classes", "first"),
        mi_true=("mi_true", "first"),
        entropy_y=("entropy_y", "first"),
        mean=("mi_estimate", "mean"),
        std=("mi_estimate", "std"),
        mean_seconds=("seconds", "mean"),
        mean_squared_error=("squared_error", "mean"),
    )
    summary["bias"] = summary["mean"] - summary["mi_true"]
    summary["rmse"] = np.sqrt(summary["mean_squared_error"])
    return summary


def summarise_classification(table: pd.DataFrame) -> pd.DataFrame:
    """Classification (``metrics``): accuracies and MI read-outs over seeds per (dataset, setting, loss, τ, split)."""
    means = ("micro_acc", "macro_acc", "minority_acc", "mi_estimate", "mi_softmax_estimate")
    return over_seeds(
        table, CLASSIFICATION_KEYS,
        **{f"{column}_mean": (column, "mean") for column in means},
        **{f"{column}_std": (column, "std") for column in ("micro_acc", "macro_acc")},
        entropy_y=("entropy_y", "first"),
    )


def summarise_localisation(table: pd.DataFrame) -> pd.DataFrame:
    """WSOL (``metrics``): mean ± std of ``value`` over seeds per (run, method, protocol, split, metric, IoU δ),
    every split (the faithful splits too)."""
    return over_seeds(table, LOCALISATION_KEYS, mean=("value", "mean"), std=("value", "std"))
