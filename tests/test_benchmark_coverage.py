"""The coverage study's computation (softmax_mi.benchmark.coverage) on rows whose coverage is known by construction."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from softmax_mi.benchmark.coverage import (
    best_by_regime,
    binomial_interval,
    coverage_summary,
    mark_coverage,
    meets_band,
)


def rows(bias: float, n_seeds: int = 400, se: float = 0.01, truth_se: float = 0.0, estimator: str = "pc_softmax"):
    """One cell: values ~ N(truth + bias, se²), 95 % normal intervals."""
    value = 1.0 + bias + se * np.random.default_rng(0).standard_normal(n_seeds)
    return pd.DataFrame({"dataset": "gauss", "estimator": estimator, "seed": np.arange(n_seeds), "truth": 1.0,
                         "truth_se": truth_se, "value": value, "low": value - 1.96 * se, "high": value + 1.96 * se})


def test_unbiased_intervals_cover_95_percent_and_biased_ones_fall_in_the_other_regime():
    table = pd.concat([rows(0.0), rows(0.2, estimator="nwj")], ignore_index=True)
    summary = coverage_summary(table).set_index(["estimator", "regime"])
    unbiased = summary.loc[("pc_softmax", "bias < width")]
    assert unbiased["coverage_low"] <= 0.95 <= unbiased["coverage_high"] and unbiased["rows"] == 400
    assert summary.loc[("nwj", "bias ≥ width"), "coverage"] == 0.0
    assert ("nwj", "bias < width") not in summary.index
    assert summary.loc[("nwj", "all"), "mean_abs_bias"] == pytest.approx(0.2, abs=0.002)
    verdict = meets_band(coverage_summary(table))
    assert verdict["estimator"].tolist() == ["pc_softmax"] and verdict["in_band"].all()


def test_the_truths_uncertainty_widens_the_interval_and_rows_without_one_are_left_out():
    table = rows(0.03, n_seeds=50, se=0.001)  # 30 standard errors off: never covered with an exact truth
    assert not mark_coverage(table)["covered"].any()
    assert mark_coverage(table.assign(truth_se=0.02))["covered"].all()  # ±0.039 from the truth's uncertainty
    assert len(mark_coverage(table.assign(low=np.nan))) == 0
    as_scored = table.rename(columns={"value": "estimate"}).drop(columns="truth_se")  # the pipeline's scored runs
    assert mark_coverage(as_scored.assign(truth_low=1.0, truth_high=1.05))["covered"].all()


def test_clopper_pearson_and_the_missing_column_message():
    low, high = binomial_interval([0, 10, 5], [10, 10, 10])
    assert low[0] == 0 and high[0] == pytest.approx(0.3085, abs=1e-4) and high[1] == 1
    assert (low[2], high[2]) == pytest.approx((0.1871, 0.8129), abs=1e-4)
    with pytest.raises(ValueError, match=r"lack the columns \['truth_se'\]"):
        coverage_summary(rows(0.0).drop(columns="truth_se"))


def test_best_by_regime_marks_the_lowest_error_and_those_within_the_tolerance():
    table = pd.concat([rows(0.0, n_seeds=20).assign(seconds=2.0), rows(0.005, n_seeds=20, estimator="knn"),
                       rows(0.2, n_seeds=20, estimator="nwj")], ignore_index=True).assign(family="gauss")
    best = best_by_regime(table).set_index("estimator")
    assert best["best"].tolist() == [True, False, False] and best.index[0] == "pc_softmax"
    assert best["near_best"].to_dict() == {"pc_softmax": True, "knn": True, "nwj": False}
    assert best.loc["pc_softmax", "seconds"] == 2.0 and best.loc["nwj", "coverage"] == 0.0


def test_training_spread_beyond_the_intervals_is_estimated_and_widens_them():
    table = rows(0.0, n_seeds=400)
    table["value"] += 0.03 * np.random.default_rng(2).standard_normal(400)  # seed-to-seed noise the se ignores
    table[["low", "high"]] = np.c_[table["value"] - 0.0196, table["value"] + 0.0196]
    marked = mark_coverage(table)
    assert marked["training_sd"].iloc[0] == pytest.approx(0.03, rel=0.1)
    summary = coverage_summary(table).set_index("regime").loc["all"]
    assert summary["coverage"] < 0.6 and summary["coverage_with_training"] == pytest.approx(0.95, abs=0.03)


def test_coverage_of_the_own_expectation_separates_honest_noise_from_bias():
    """A biased estimator with honest intervals covers its own expectation ≈ 95 % and the truth never; one whose
    intervals ignore half its noise covers neither; a cell of one seed has no expectation to cover."""
    biased = coverage_summary(rows(0.1, n_seeds=400)).set_index("regime").loc["all"]
    assert biased["coverage"] == 0.0 and biased["coverage_of_expectation"] == pytest.approx(0.95, abs=0.03)
    narrow = rows(0.0, n_seeds=400)
    narrow[["low", "high"]] = np.c_[narrow["value"] - 0.0098, narrow["value"] + 0.0098]
    summary = coverage_summary(narrow).set_index("regime").loc["all"]
    assert summary["coverage_of_expectation"] == pytest.approx(0.68, abs=0.05)
    assert mark_coverage(rows(0.0, n_seeds=1))["covered_expectation"].isna().all()


def test_asymmetric_intervals_are_judged_on_the_side_of_the_truth_and_of_the_other_seeds():
    """A bracket-like interval [value − 0.0196, value + 0.2]: a truth above the value within 0.2 is covered, with and
    without the training spread; the other seeds' mean above the value is held by the upper part alone."""
    table = rows(-0.1, n_seeds=400)  # values 0.1 below the truth
    table[["low", "high"]] = np.c_[table["value"] - 0.0196, table["value"] + 0.2]
    marked = mark_coverage(table)
    assert marked["covered"].mean() > 0.99 and marked["covered_with_training"].dropna().mean() > 0.99
    low_side = table.assign(low=table["value"] - 0.2, high=table["value"] + 0.0196)
    assert mark_coverage(low_side)["covered"].mean() < 0.01
    assert mark_coverage(low_side)["covered_with_training"].dropna().mean() < 0.01
