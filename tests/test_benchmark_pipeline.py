"""The benchmark's pipeline pieces without running the DAG: the grid, the parse-time task checks, the per-run row of
a failed estimate, and the scoring (error, coverage against point and interval truths, invariance shifts)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from softmax_mi import grid
from softmax_mi.benchmark.scoring import invariance_shifts, score_runs, summarise_estimates
from softmax_mi.benchmark.tasks import pool_images
from softmax_mi.params import load_params
from softmax_mi.stages.benchmark import check_tasks, run_row, with_se_target

from helpers import REPO

BASE = {"family": "gaussian", "classes": 3, "d": 2, "separation": 2.0}
SPECS = [
    {"name": "plain", "family": "gaussian", "params": {k: v for k, v in BASE.items() if k != "family"}},
    {"name": "mapped", "family": "bijection", "params": {"map": "asinh", "base": BASE}},
    {"name": "digits", "family": "mnist", "params": {"epsilon": 0.1}},
]


def test_default_slice_covers_every_family_and_the_full_grid_is_large_enough():
    from softmax_mi import registry

    default = load_params(REPO / "params.yaml")["benchmark"]
    assert {spec["family"] for spec in default["tasks"]} == set(registry.BENCHMARK_FAMILIES)
    assert set(default["estimators"]) == set(registry.BENCHMARK_ESTIMATORS)
    full = load_params(REPO / "params.yaml", REPO / "params" / "benchmark.yaml")
    assert len(full["benchmark"]["tasks"]) >= 25 and len(grid.benchmark_seeds(full)) >= 3
    sweep = full["benchmark"]["sweep"]["n_per_class"]
    assert min(sweep) <= 100 and max(sweep) >= 10_000
    check_tasks(default)
    check_tasks(full["benchmark"])


def test_grid_adds_the_sweep_sizes_to_the_sweep_tasks_only():
    params = {"seeds": [4, 5, 6], "benchmark": {"n_seeds": 2, "n_per_class": [200], "tasks": SPECS,
                                                 "sweep": {"tasks": ["plain"], "n_per_class": [50, 200, 1000]}}}
    runs = {spec["name"]: sizes for spec, sizes in grid.benchmark_runs(params)}
    assert runs == {"plain": [50, 200, 1000], "mapped": [200], "digits": [200]}
    assert grid.benchmark_seeds(params) == [4, 5]
    assert grid.benchmark_mnist_input(params) == [grid.BENCHMARK_MNIST]


@pytest.mark.parametrize(("change", "message"), [
    (lambda b: b["tasks"].append(dict(SPECS[0])), r"benchmark.tasks.3.name: 'plain' is given twice"),
    (lambda b: b["tasks"][0]["params"].update(sep=1), r"benchmark.tasks.0: task 'plain'.*no parameter 'sep'"),
    (lambda b: b["sweep"]["tasks"].append("nope"), r"benchmark.sweep.tasks: 'nope' is not a task"),
])
def test_bad_task_lists_are_refused_with_the_key(change, message):
    benchmark = {"tasks": [dict(s, params=dict(s["params"])) for s in SPECS], "sweep": {"tasks": [], "n_per_class": []}}
    change(benchmark)
    with pytest.raises(ValueError, match=message):
        check_tasks(benchmark)


def test_monte_carlo_target_reaches_student_t_tasks_and_their_bijections():
    spec = {"name": "t", "family": "student_t", "params": {"nu": 1}}
    assert with_se_target(spec, 0.003)["params"]["se_target"] == 0.003
    mapped = {"name": "m", "family": "bijection", "params": {"map": "asinh", "base": {"family": "student_t"}}}
    assert with_se_target(mapped, 0.003)["params"]["base"]["se_target"] == 0.003
    assert with_se_target(SPECS[0], 0.003) == SPECS[0]


def test_a_diverged_estimate_is_a_row_not_a_failed_job():
    class Diverging:
        def estimate(self, x, y, *, seed):
            raise FloatingPointError("MI estimate is NaN; the estimator diverged")

    row = run_row(Diverging(), np.zeros((4, 1)), np.zeros(4, dtype=np.int64), 0)
    assert row["status"].startswith("failed: MI estimate is NaN") and math.isnan(row["estimate"])


def runs_table() -> pd.DataFrame:
    rows = []
    for task, estimates in (("plain", [0.50, 0.70]), ("mapped", [0.55, np.nan]), ("digits", [1.50, 1.00])):
        for seed, value in enumerate(estimates):
            rows.append({"dataset": task, "estimator": "e", "seed": seed, "n": 100, "estimate": value,
                         "low": value - 0.1, "high": value + 0.1, "at_ceiling": False, "seconds": 1.0,
                         "status": "ok" if np.isfinite(value) else "failed: diverged",
                         "params_hash": "h", "package_version": "v"})
    return pd.DataFrame(rows)


def test_scoring_against_point_and_interval_truths():
    truths = pd.DataFrame({"dataset": ["plain", "mapped", "digits"], "family": ["gaussian", "bijection", "mnist"],
                           "truth": [0.6, 0.6, 1.6], "truth_low": [0.6, 0.6, 1.3], "truth_high": [0.6, 0.6, 1.6]})
    scored = score_runs(runs_table(), truths)
    assert scored["covered"].tolist() == [True, True, True, pd.NA, True, False]  # [0.9, 1.1] misses [1.3, 1.6]
    assert scored["error"].round(6).tolist()[:2] == [-0.1, 0.1]
    shifts = invariance_shifts(scored, SPECS)
    assert shifts["shift"].round(6).tolist()[0] == 0.05 and shifts["base_dataset"].unique().tolist() == ["plain"]
    summary = summarise_estimates(scored, shifts).set_index("family")
    assert summary.loc["bijection", "failure_rate"] == 0.5 and summary.loc["bijection", "coverage"] == 1.0
    assert summary.loc["bijection", "invariance_shift"] == pytest.approx(0.05)
    assert summary.loc["mnist", "coverage"] == 0.5 and np.isnan(summary.loc["gaussian", "invariance_shift"])
    with pytest.raises(ValueError, match="no truth for the task"):
        score_runs(runs_table(), truths.iloc[:2])


def test_pooling_averages_blocks():
    images = np.random.default_rng(0).integers(0, 256, (3, 28, 28), dtype=np.uint8)
    expected = images.reshape(3, 14, 2, 14, 2).astype(np.float64).mean(axis=(2, 4)).reshape(3, -1) / 255
    assert np.allclose(pool_images(images, 2), expected, atol=1e-6)
    assert pool_images(images, 1).shape == (3, 784)


def write_benchmark_results(results, gaps: dict[str, float], covered: bool) -> None:
    """estimates + summary of Part 1's d = 5 task at 10,000 rows: estimate = truth + gap[estimator] per seed, the
    interval ±0.05 wide around it, or (``covered`` False) around a point far away."""
    from softmax_mi.io import write_table
    from softmax_mi.stages.benchmark import ESTIMATES_COLUMNS, SUMMARY_COLUMNS

    truth = 1.554
    rows = []
    for estimator, gap in gaps.items():
        for seed in range(3):
            centre = truth + gap if covered else truth + 1.0
            rows.append({"dataset": "part1-d5", "estimator": estimator, "seed": seed, "n_per_class": 2000, "n": 10_000,
                         "sweep": False, "status": "ok", "n_train": 8000, "estimate": truth + gap,
                         "low": centre - 0.05, "high": centre + 0.05, "se": 0.025, "ceiling": math.nan,
                         "at_ceiling": False, "interval": "clt_terms", "in_sample": math.nan,
                         "extrapolated": math.nan, "seconds": 1.0,
                         "cpu_seconds": 1.0, "train_steps": 100, "device": "cpu", "params_hash": "h", "package_version": "v"})
    truths = pd.DataFrame([{"dataset": "part1-d5", "family": "gaussian", "n_classes": 5, "dim": 5, "prior": "uniform",
                            "rho": 1.0, "separation": 4.4721, "nu": math.nan, "map": "none", "epsilon": math.nan,
                            "entropy_y": math.log(5), "truth": truth, "truth_se": 0.0, "truth_low": truth,
                            "truth_high": truth, "truth_method": "quadrature"}])
    estimates = score_runs(pd.DataFrame(rows), truths)[list(ESTIMATES_COLUMNS)]
    write_table(estimates, results / "benchmark/estimates.parquet", column_docs=ESTIMATES_COLUMNS)
    summary = summarise_estimates(estimates)[list(SUMMARY_COLUMNS)]
    write_table(summary, results / "benchmark/summary.parquet", column_docs=SUMMARY_COLUMNS)


@pytest.mark.parametrize(("gaps", "covered", "expected"), [
    ({"pc_softmax": 0.004, "knn": -0.002, "softmax": 0.03}, True, ("reproduced", "reproduced")),  # 3/3 covered
    ({"pc_softmax": 0.02, "knn": -0.002}, True, ("not reproduced", "reproduced")),
    ({"pc_softmax": 0.004, "knn": -0.002}, False, ("reproduced", "not reproduced")),  # 0/3 covered
    ({"pc_softmax": 0.3, "knn": 0.295}, True, ("reproduced", "not run")),  # |bias| ≥ width: no eligible setting
])
def test_benchmark_verdicts_follow_the_data(tmp_path, gaps, covered, expected):
    import re

    from softmax_mi.report import build_report

    write_benchmark_results(tmp_path, gaps, covered)
    report = build_report(tmp_path, markdown=tmp_path / "report.md")
    verdicts = {c.key: c.verdict for c in report.claims}
    assert (verdicts["BM1"], verdicts["BM2"]) == expected
    text = (tmp_path / "report.md").read_text()
    assert "## 5. A discrete-label MI benchmark" in text and not re.search(r"\bnan\b", text, flags=re.IGNORECASE)
