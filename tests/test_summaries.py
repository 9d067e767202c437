"""Summaries over seeds (softmax_mi.summaries): one row per setting, the seeds it aggregates, NaN keys kept, and
means that are bit-for-bit those of a plain groupby over the same rows (the report reads these numbers)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from softmax_mi.summaries import summarise_classification, summarise_localisation, summarise_synthetic

PROVENANCE = {"params_hash": "abc", "package_version": "0.0"}


def synthetic_table(rng: np.random.Generator) -> pd.DataFrame:
    rows = [{"dataset": dataset, "dim": dim, "balance": balance, "estimator": estimator, "seed": seed,
             "n_classes": 5, "mi_true": 1.0 + dim / 10, "entropy_y": 1.5, "mi_estimate": rng.normal(1.0, 0.1),
             "seconds": 1.0, **PROVENANCE}
            for dataset in ("gaussian", "uniform") for dim in (1, 10) for balance in ("balanced", "imbalanced")
            for estimator in ("softmax", "knn") for seed in (2, 0, 1)]
    return pd.DataFrame(rows).sample(frac=1.0, random_state=0, ignore_index=True)  # any row order


def test_synthetic_summary_is_the_groupby_of_each_setting():
    table = synthetic_table(np.random.default_rng(0))
    summary = summarise_synthetic(table)
    assert len(summary) == 16 and (summary["n_seeds"] == 3).all()
    assert all(list(seeds) == [0, 1, 2] for seeds in summary["seed_list"])
    gauss = table[table["dataset"] == "gaussian"]
    direct = gauss.groupby(["balance", "dim", "estimator"])["mi_estimate"].agg(["mean", "std"])
    for row in summary[summary["dataset"] == "gaussian"].itertuples(index=False):
        mean, std = direct.loc[(row.balance, row.dim, row.estimator)]
        assert row.mean == mean and row.std == std  # bit-identical, not approximately
        assert row.bias == row.mean - row.mi_true
        runs = gauss[(gauss["balance"] == row.balance) & (gauss["dim"] == row.dim)
                     & (gauss["estimator"] == row.estimator)]
        assert math.isclose(row.rmse, float(np.sqrt(((runs["mi_estimate"] - runs["mi_true"]) ** 2).mean())))
    assert summary["n_classes"].eq(5).all()


def test_classification_summary_keeps_a_missing_tau_as_its_own_setting():
    rows = [{"dataset": "mnist", "protocol": "standard", "setting": "step-r10", "profile": "step",
             "imbalance_ratio": 10.0, "loss": loss, "tau": tau, "split": "test", "seed": seed, "micro_acc": 0.9,
             "macro_acc": 0.8 + seed / 100, "minority_acc": 0.7, "mi_estimate": 1.0, "mi_softmax_estimate": 1.1,
             "entropy_y": 2.0, **PROVENANCE}
            for loss, tau in (("softmax", math.nan), ("logit_adjusted", 1.0)) for seed in (0, 1)]
    summary = summarise_classification(pd.DataFrame(rows))
    assert list(summary["loss"]) == ["logit_adjusted", "softmax"] and summary["tau"].isna().tolist() == [False, True]
    assert summary["macro_acc_mean"].tolist() == [0.805, 0.805] and summary["n_seeds"].tolist() == [2, 2]


def test_localisation_summary_covers_every_split():
    rows = [{"dataset": "cluttered_mnist", "backbone": "gap_cnn", "adl": False, "method": "cam", "protocol": "paper",
             "split": split, "metric": "top1_loc", "iou": 0.5, "seed": seed, "value": 0.4 + seed / 10, **PROVENANCE}
            for split in ("val_fullsup", "test", "test_half") for seed in (0, 1, 2)]
    summary = summarise_localisation(pd.DataFrame(rows))
    assert summary["split"].tolist() == ["test", "test_half", "val_fullsup"]
    assert np.allclose(summary["mean"], 0.5) and np.allclose(summary["std"], 0.1)
    assert summary["n_seeds"].tolist() == [3, 3, 3]
