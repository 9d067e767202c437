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


# ------------------------------------------------------------------ headline metrics (`dvc metrics show`) and plots


def synthetic_headline(summary: pd.DataFrame) -> dict:
    """Bias and RMSE (nats) per synthetic setting and estimator, from the synthetic summary."""
    metrics: dict = {}
    for row in summary.itertuples(index=False):
        setting = f"{row.dataset}_d{row.dim}_{row.balance}"
        metrics.setdefault(setting, {})[row.estimator] = {"bias": round(float(row.bias), 4),
                                                          "rmse": round(float(row.rmse), 4)}
    return metrics


def synthetic_plot_data(summary: pd.DataFrame) -> pd.DataFrame:
    """Wide table for `dvc plots show`: one row per d of the Gaussian task, the mean estimate of each estimator and
    the truth per label prior, as columns `<balance>_<estimator>` / `<balance>_truth` (nats)."""
    gauss = summary[summary["dataset"] == "gaussian"]
    wide = gauss.pivot_table(index="dim", columns=["balance", "estimator"], values="mean")
    wide.columns = [f"{balance}_{estimator}" for balance, estimator in wide.columns]
    truth = gauss.drop_duplicates(["balance", "dim"]).pivot(index="dim", columns="balance", values="mi_true")
    truth.columns = [f"{balance}_truth" for balance in truth.columns]
    return truth.join(wide).round(5).reset_index()


def classification_headline(summary: pd.DataFrame) -> dict:
    """Test macro/micro accuracy and MI read-out per dataset, setting and loss (τ in the name), from the
    classification summary."""
    metrics: dict = {}
    for row in summary[summary["split"] == "test"].itertuples(index=False):
        label = row.loss if np.isnan(row.tau) else f"{row.loss}_tau{row.tau:g}"
        metrics.setdefault(row.dataset, {}).setdefault(row.setting, {})[label] = {
            "macro_acc": round(float(row.macro_acc_mean), 4),
            "micro_acc": round(float(row.micro_acc_mean), 4),
            "mi_estimate": round(float(row.mi_estimate_mean), 4),
            "n_seeds": int(row.n_seeds),
        }
    return metrics


LOCALISATION_HEADLINE = {("classification", "top1_acc"), ("paper", "gt_known_loc"), ("paper", "top1_loc"),
                         ("maxboxacc", "gt_known_loc"), ("maxboxacc_v2", "maxboxacc_v2")}


def localisation_headline(summary: pd.DataFrame) -> dict:
    """Test mean ± std over seeds of the headline WSOL metrics per dataset/backbone[-adl] and method, from the
    localisation summary."""
    metrics: dict = {}
    for row in summary[summary["split"] == "test"].itertuples(index=False):
        if (row.protocol, row.metric) not in LOCALISATION_HEADLINE:
            continue
        run = f"{row.dataset}/{row.backbone}{'-adl' if row.adl else ''}"
        metrics.setdefault(run, {}).setdefault(row.method, {})[f"{row.protocol}.{row.metric}"] = {
            "mean": round(float(row.mean), 4),
            "std": None if np.isnan(row.std) else round(float(row.std), 4),
            "n_seeds": int(row.n_seeds),
        }
    return metrics
