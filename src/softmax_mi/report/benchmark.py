"""The report's benchmark section (issue 16): how far off each estimator is, how it degrades with K, ρ, d and n,
how fast it is, whether its interval can be believed, its invariance to bijections of x, and which estimator to use
for which family; every sentence computed from results/benchmark/estimates.parquet and summary.parquet.

Verdicts (the issue's acceptance criteria, computed):

BM1  with 10,000 rows of Part 1's d = 5 task, PC-softmax is within ``BM1_TOLERANCE`` nats of the best estimator
BM2  the classifier estimators' intervals cover 90–98 % of runs where their bias is below the interval width
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from softmax_mi.benchmark.coverage import REGIMES, coverage_summary
from softmax_mi.report.claims import NOT_REPRODUCED, NOT_RUN, REPRODUCED
from softmax_mi.report.document import Claim, Report, finite, fmt

ESTIMATES = "benchmark/estimates.parquet"
SUMMARY = "benchmark/summary.parquet"
FIGURES = (("benchmark/bias.png", "Bias (estimate − truth) against K, ρ, d (Gaussian tasks) and n (sweep tasks); "
                                  "wall time against n"),
           ("benchmark/coverage.png", "Share of runs whose interval meets the truth, per estimator × family"))
CLASSIFIERS = ("softmax", "pc_softmax", "logloss")
BM1_TOLERANCE = 0.01  # nats
BM1_ROWS = 10_000
COVERAGE_RANGE = (0.90, 0.98)
PART1_SEPARATION = 2 * math.sqrt(5)  # Part 1's means (0, ±2, ±4)·1 in d = 5: neighbours 2√5 apart

STATEMENTS = {
    "BM1": f"benchmark: with {BM1_ROWS:,} rows of Part 1's d = 5 task, PC-softmax is within {BM1_TOLERANCE} nats of the "
          "best estimator",
    "BM2": "benchmark: the classifier estimators' 95 % intervals cover 90–98 % of runs where their bias is below the "
          "interval width (within the binomial uncertainty of the run count)",
}


def percent(value) -> str:
    return f"{100 * value:.0f} %" if finite(value) else "—"


def claim(key: str, verdict: str, reason: str, numbers: dict | None = None) -> Claim:
    return Claim(key, STATEMENTS[key], verdict, reason, numbers or {})


def bm1(estimates: pd.DataFrame) -> Claim:
    """PC-softmax's mean |error| minus the best estimator's on Part 1's d = 5 task at 10,000 rows."""
    rows = estimates[(estimates["family"] == "gaussian") & (estimates["n_classes"] == 5) & (estimates["dim"] == 5)
                     & (estimates["prior"] == "uniform") & ((estimates["separation"] - PART1_SEPARATION).abs() < 1e-3)
                     & (estimates["n"] == BM1_ROWS)]
    if rows.empty or "pc_softmax" not in set(rows["estimator"]):
        return claim("BM1", NOT_RUN, f"no pc_softmax run of Part 1's d = 5 task (K = 5, s = 2√5) with {BM1_ROWS:,} rows")
    errors = rows.groupby("estimator")["abs_error"].mean().sort_values()
    gap = float(errors["pc_softmax"] - errors.iloc[0])
    ok = gap <= BM1_TOLERANCE
    return claim("BM1", REPRODUCED if ok else NOT_REPRODUCED,
                 f"mean |error| over {rows['seed'].nunique()} seed(s): "
                 + ", ".join(f"{name} {value:.4f}" for name, value in errors.items())
                 + f" nats; PC-softmax − best = {gap:.4f} ({'≤' if ok else '>'} {BM1_TOLERANCE})",
                 {"pc_softmax_gap_nats": round(gap, 4), "best_estimator": str(errors.index[0])})


def bm2(estimates: pd.DataFrame) -> Claim:
    """Reproduced when, for every classifier estimator, the Clopper–Pearson interval of its coverage over the runs
    in the ``bias < width`` regime (:mod:`softmax_mi.benchmark.coverage`: settings whose |mean error| is below
    their mean interval width) meets [90 %, 98 %]: a coverage consistent with the range."""
    classifiers = estimates[estimates["estimator"].isin(CLASSIFIERS)]
    summary = coverage_summary(classifiers) if len(classifiers) else pd.DataFrame(columns=["estimator", "regime"])
    chosen = summary[summary["regime"] == REGIMES[0]].set_index("estimator")
    if chosen.empty:
        return claim("BM2", NOT_RUN, "no classifier-estimator setting with |bias| below its interval width")
    low, high = COVERAGE_RANGE
    ok = bool(((chosen["coverage_low"] <= high) & (chosen["coverage_high"] >= low)).all())
    methods = interval_names(classifiers)
    return claim("BM2", REPRODUCED if ok else NOT_REPRODUCED,
                 "; ".join(f"{name} ({methods.get(name, '')}): {100 * row.coverage:.0f} % of {int(row.rows)} runs "
                           f"(95 % Clopper–Pearson {100 * row.coverage_low:.0f}–{100 * row.coverage_high:.0f} %; "
                           f"its own expectation: {percent(row.coverage_of_expectation)})"
                           for name, row in chosen.iterrows())
                 + f" (required: consistent with {100 * low:.0f}–{100 * high:.0f} %). 'Its own expectation': runs whose "
                 "interval holds the other seeds' mean, which the bias does not move: near 95 %, the interval is "
                 "honest about the noise and the bias is what keeps it off the truth",
                 {f"{name}_coverage": round(float(row.coverage), 4) for name, row in chosen.iterrows()})


def interval_names(estimates: pd.DataFrame) -> pd.Series:
    """estimator → the interval methods of its runs, comma-separated (e.g. ``crossfit_5``)."""
    return estimates.groupby("estimator")["interval"].agg(lambda names: ", ".join(sorted(set(names) - {""})))


def coverage_table(estimates: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    """Coverage per estimator and bias regime (:func:`softmax_mi.benchmark.coverage.coverage_summary`)."""
    summary = coverage_summary(estimates)
    summary = summary[summary["regime"] != "all"]
    methods = interval_names(estimates)
    head = ["estimator (interval)", "regime", "runs", "covers the truth", "Clopper–Pearson 95 %",
            "+ training spread", "own expectation", "mean width", "mean |bias|"]
    rows = [[f"{r.estimator} ({methods.get(r.estimator) or '—'})", r.regime, str(int(r.rows)), percent(r.coverage),
             f"{percent(r.coverage_low)}–{percent(r.coverage_high)}", percent(r.coverage_with_training),
             percent(r.coverage_of_expectation), fmt(r.mean_width), fmt(r.mean_abs_bias)]
            for r in summary.itertuples()]
    return head, rows


def overall_table(estimates: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    per = estimates.groupby("estimator").agg(
        med=("abs_error", "median"), mae=("abs_error", "mean"), bias=("error", "mean"),
        coverage=("covered", "mean"), width=("width", "mean"), ceiling=("at_ceiling", "mean"),
        failed=("status", lambda status: (status != "ok").mean()), seconds=("seconds", "mean"),
        runs=("estimate", "size"),
    ).sort_values("med")
    head = ["estimator", "median |error|", "mean |error|", "bias", "coverage", "mean width", "at ceiling", "failed",
            "s / estimate", "runs"]
    rows = [[name, fmt(r.med), fmt(r.mae), fmt(r.bias), percent(r.coverage), fmt(r.width), percent(r.ceiling),
             percent(r.failed), fmt(r.seconds, 2), str(int(r.runs))] for name, r in per.iterrows()]
    return head, rows


def family_table(summary: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    """Median |error| per family (rows) × estimator (columns), and the best estimator of each family."""
    table = summary.pivot(index="family", columns="estimator", values="median_abs_error")
    head = ["family", *table.columns, "best"]
    rows = [[family, *(fmt(v) for v in row), str(row.idxmin())] for family, row in table.iterrows()]
    return head, rows


def axis_sentences(estimates: pd.DataFrame) -> list[str]:
    """For K, ρ and d (Gaussian tasks, main sizes) and n (sweep tasks): each estimator's mean |error| at the
    smallest and the largest value of the axis."""
    gaussian = estimates[(estimates["family"] == "gaussian") & ~estimates["sweep"]]
    swept = estimates[estimates["dataset"].isin(estimates.loc[estimates["sweep"], "dataset"].unique())]
    sentences = []
    for column, name, frame in (("n_classes", "K", gaussian), ("rho", "ρ", gaussian), ("dim", "d", gaussian),
                                ("n", "n", swept)):
        values = sorted(frame[column].unique())
        if len(values) < 2:
            sentences.append(f"{name}: one value only in this run ({values[0] if values else '—'}).")
            continue
        ends = frame[frame[column].isin([values[0], values[-1]])]
        table = ends.groupby(["estimator", column])["abs_error"].mean().unstack()
        parts = [f"{est} {row[values[0]]:.3f} → {row[values[-1]]:.3f}" for est, row in table.iterrows()]
        sentences.append(f"{name} = {values[0]:g} → {values[-1]:g}, mean |error| (nats; other axes pooled): "
                         + "; ".join(parts) + ".")
    return sentences


def headline_sentences(estimates: pd.DataFrame, summary: pd.DataFrame) -> list[str]:
    per = estimates.groupby("estimator").agg(mae=("abs_error", "median"), seconds=("seconds", "mean"),
                                             coverage=("covered", "mean"), ceiling=("at_ceiling", "mean"),
                                             failed=("status", lambda status: (status != "ok").mean()))
    best, fastest = per["mae"].idxmin(), per["seconds"].idxmin()
    sentences = [
        f"How far off: the most accurate estimator over all runs is {best} (median |error| "
        f"{per.loc[best, 'mae']:.3f} nats), the least accurate {per['mae'].idxmax()} ({per['mae'].max():.3f}).",
        f"How fast: {fastest} is the fastest ({per.loc[fastest, 'seconds']:.2f} s per estimate), "
        f"{per['seconds'].idxmax()} the slowest ({per['seconds'].max():.2f} s).",
        f"Can the interval be believed: coverage of the nominal 95 % intervals ranges from "
        f"{100 * per['coverage'].min():.0f} % ({per['coverage'].idxmin()}) to {100 * per['coverage'].max():.0f} % "
        f"({per['coverage'].idxmax()}).",
    ]
    failed = per[per["failed"] > 0]
    if len(failed):
        sentences.append("Failures (diverged to NaN, or too few rows of a class for the method): "
                         + ", ".join(f"{name} {100 * share:.0f} % of runs" for name, share in failed["failed"].items())
                         + ".")
    at_ceiling = per[per["ceiling"] > 0]
    if len(at_ceiling):
        sentences.append("Ceilings: runs at the estimator's ceiling (the estimate then says nothing about larger MI): "
                         + ", ".join(f"{name} {100 * share:.0f} %" for name, share in at_ceiling["ceiling"].items())
                         + ".")
    shifts = summary.dropna(subset=["invariance_abs_shift"])
    if len(shifts):
        worst = shifts.loc[shifts["invariance_abs_shift"].idxmax()]
        sentences.append("Invariance to bijections of x (estimate on the mapped draw − on the same draw unmapped), "
                         "mean |shift| in nats: " + ", ".join(f"{r.estimator} {r.invariance_abs_shift:.3f}"
                                                               for r in shifts.itertuples())
                         + f"; the least invariant is {worst['estimator']}.")
    return sentences


def benchmark_section(report: Report, results: Path) -> None:
    """Section 4: the benchmark's headline answers, tables, figures and verdicts BM1, BM2."""
    report.add("h2", "5. A discrete-label MI benchmark (beyond the paper)")
    missing = [rel for rel in (ESTIMATES, SUMMARY) if not (results / rel).exists()]
    if missing:
        reason = f"results/{missing[0]} missing"
        report.add("p", f"Not run: {reason}.")
        for key in STATEMENTS:
            report.claim(claim(key, NOT_RUN, reason))
        return
    estimates, summary = pd.read_parquet(results / ESTIMATES), pd.read_parquet(results / SUMMARY)
    tasks = estimates.drop_duplicates("dataset")
    methods = sorted({method.split(" (")[0].split(":")[0].split(",")[0] for method in tasks["truth_method"]})
    report.add("p", f"{len(tasks)} tasks ({', '.join(f'{f} {c}' for f, c in tasks['family'].value_counts().items())})"
                    f", {estimates['estimator'].nunique()} estimators, seeds "
                    f"{[int(s) for s in sorted(estimates['seed'].unique())]}, sample sizes "
                    f"{', '.join(f'{int(n):,}' for n in sorted(estimates['n'].unique()))} rows. Truths: "
                    f"{', '.join(methods)} (largest standard error {estimates['truth_se'].max():.4f} nats). A run is "
                    "covered when its interval meets the truth (the truth's interval for MNIST). All values in nats.")
    for sentence in headline_sentences(estimates, summary):
        report.add("p", sentence)
    report.add("h3", "Per estimator, every run")
    report.add("table", *overall_table(estimates))
    report.add("h3", "Can the interval be believed: coverage per bias regime (a setting's regime: |mean error| < "
                     "mean interval width, or not; '+ training spread': each interval widened by its setting's "
                     "seed-to-seed spread; 'own expectation': the interval holds the other seeds' mean, which the "
                     "bias does not move)")
    report.add("table", *coverage_table(estimates))
    report.add("h3", "Which estimator for which family: median |error| (nats; over the runs that did not fail)")
    report.add("table", *family_table(summary))
    report.add("h3", "How each estimator degrades (K, ρ, d: Gaussian tasks; n: the sweep's tasks)")
    for sentence in axis_sentences(estimates):
        report.add("p", sentence)
    for rel, caption in FIGURES:
        if (results / rel).exists():
            report.add("figure", rel, caption)
        else:
            report.add("p", f"Figure `results/{rel}` not found.")
    report.claim(bm1(estimates))
    report.claim(bm2(estimates))


__all__ = ["benchmark_section", "bm1", "bm2", "coverage_table"]
