"""The reproduction report: verdicts computed from the parts' summaries (results/<part>/summary.parquet), sections
present even when a part is absent, and the report the pipeline built on the smoke run."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pandas as pd
import pytest

from softmax_mi.cli import main
from softmax_mi.io import write_table
from softmax_mi.report import NOT_REPRODUCED, NOT_RUN, REPRODUCED, build_report
from softmax_mi.stages import classification as classification_stage
from softmax_mi.stages import localisation as localisation_stage
from softmax_mi.stages import synthetic as synthetic_stage
from softmax_mi.summaries import summarise_classification, summarise_localisation, summarise_synthetic

SECTIONS = ["## Verdicts", "## 1. Softmax cross-entropy as an MI estimator", "## 2. PC-softmax on imbalanced",
            "## 3. infoCAM for weakly-supervised localisation", "## 4. Label shift", "## 5. A discrete-label MI benchmark"]
BENCHMARK_MISSING = "results/benchmark/estimates.parquet missing"
PRIOR = np.array([1, 2, 3, 4, 5]) / 15
H_Y = float(-(PRIOR * np.log(PRIOR)).sum())
PROVENANCE = {"params_hash": "abc", "package_version": "0.0"}


def write_summary(results, part: str, rows: pd.DataFrame) -> pd.DataFrame:
    """What the part's pipeline writes: its summary of the per-seed ``rows``, as results/<part>/summary.parquet."""
    stage, summarise = {"synthetic": (synthetic_stage, summarise_synthetic),
                        "classification": (classification_stage, summarise_classification),
                        "localisation": (localisation_stage, summarise_localisation)}[part]
    summary = summarise(rows)[list(stage.SUMMARY_COLUMNS)]
    write_table(summary, results / f"{part}/summary.parquet", column_docs=stage.SUMMARY_COLUMNS)
    return summary


def synthetic_rows(softmax_offset=0.0, pc_offset=0.0, imbalanced_excess=None):
    """mi_estimates rows with a known answer: estimate = truth + offset (per estimator, balance)."""
    excess = math.log(5) - H_Y if imbalanced_excess is None else imbalanced_excess
    rows = []
    for balance, h in (("balanced", math.log(5)), ("imbalanced", H_Y)):
        for dim, truth in ((1, 1.03), (2, 1.30)):
            for seed in (0, 1):
                for estimator, offset in (("softmax", softmax_offset + (excess if balance == "imbalanced" else 0)),
                                          ("pc_softmax", pc_offset)):
                    rows.append({c: None for c in synthetic_stage.MI_ESTIMATES_COLUMNS} | PROVENANCE | {
                        "dataset": "gaussian", "dim": dim, "balance": balance, "n_classes": 5, "estimator": estimator,
                        "seed": seed, "mi_true": truth, "mi_estimate": truth + offset + 0.002 * seed,
                        "entropy_y": h, "seconds": 1.0,
                    })
    return pd.DataFrame(rows)


def verdicts(report):
    return {c.key: c.verdict for c in report.claims}


def test_absent_parts_are_not_run(tmp_path):
    report = build_report(tmp_path, markdown=tmp_path / "report.md", html=tmp_path / "report.html",
                          metrics=tmp_path / "report.json")
    assert verdicts(report) == dict.fromkeys(["C1", "C2", "C3", "C4", "BM1", "BM2"], NOT_RUN)
    reasons = {c.key: c.reason for c in report.claims}
    assert reasons["C1"] == "results/synthetic/summary.parquet missing"
    assert reasons["C3"] == "results/classification/summary.parquet missing"
    assert reasons["C4"] == "results/localisation/summary.parquet missing"
    text = (tmp_path / "report.md").read_text()
    assert all(section in text for section in SECTIONS)
    assert reasons["BM1"] == BENCHMARK_MISSING
    assert json.loads((tmp_path / "report.json").read_text()) == {"C1": {}, "C2": {}, "C3": {}, "C4": {},
                                                                   "BM1": {}, "BM2": {}}


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({}, {"C1": REPRODUCED, "C2": REPRODUCED}),
        ({"softmax_offset": -0.05}, {"C1": NOT_REPRODUCED, "C2": NOT_REPRODUCED}),
        ({"pc_offset": 0.05}, {"C1": REPRODUCED, "C2": NOT_REPRODUCED}),
        ({"imbalanced_excess": 0.0}, {"C1": REPRODUCED, "C2": NOT_REPRODUCED}),  # softmax unbiased: no log K − H(Y)
    ],
)
def test_synthetic_verdicts_follow_the_data(tmp_path, kwargs, expected):
    write_summary(tmp_path, "synthetic", synthetic_rows(**kwargs))
    report = build_report(tmp_path)
    assert {k: v for k, v in verdicts(report).items() if k in expected} == expected
    assert verdicts(report)["C3"] == NOT_RUN


def test_cli_report(tmp_path, capsys):
    write_summary(tmp_path, "synthetic", synthetic_rows())
    assert main(["report", "--results", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "C1: reproduced" in out and "C4: not run" in out
    assert (tmp_path / "report.html").read_text().startswith("<!DOCTYPE html>")


@pytest.mark.slow
def test_report_of_the_smoke_run(smoke_run):
    results = smoke_run / "results"
    text = (results / "report.md").read_text()
    for section in SECTIONS:
        assert section in text, section
    for claim in ("C1", "C2", "C3", "C4"):
        assert re.search(rf"\*\*{claim} — (reproduced|not reproduced|not run)\.\*\*", text), claim
    assert not re.search(r"\bnan\b", text, flags=re.IGNORECASE)
    html = (results / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 10  # every figure of the five parts, embedded
    assert not re.search(r"\bnan\b", re.sub(r"data:image/png;base64,[^'\"]+", "", html), flags=re.IGNORECASE)
    assert "not run" not in {c for c in re.findall(r"\*\*C\d — ([a-z ]+)\.\*\*", text)}  # every part ran
    headline = json.loads((results / "report.json").read_text())
    assert set(headline) == {"C1", "C2", "C3", "C4", "BM1", "BM2"}
    assert all("reproduced" in v for k, v in headline.items() if k.startswith("C"))


def classification_rows(lifts: dict[tuple[str, str], float]) -> pd.DataFrame:
    """Test rows of softmax and PC-softmax per (dataset, setting): PC-softmax macro = softmax macro + lift."""
    rows = []
    for (dataset, setting), lift in lifts.items():
        for seed in (0, 1, 2):
            for loss, macro in (("softmax", 0.90), ("pc_softmax", 0.90 + lift)):
                rows.append({c: None for c in classification_stage.METRICS_COLUMNS} | PROVENANCE | {
                    "dataset": dataset, "setting": setting, "protocol": "faithful", "loss": loss, "tau": math.nan,
                    "seed": seed, "split": "test", "micro_acc": 0.95, "macro_acc": macro, "minority_acc": macro,
                    "imbalance_ratio": 3.0, "profile": "step", "mi_estimate": 1.0, "mi_softmax_estimate": 1.0,
                    "entropy_y": 1.0,
                })
    return pd.DataFrame(rows)


def test_c3_is_decided_on_imbalanced_settings_only(tmp_path):
    # a balanced split (MNIST's faithful-balanced, CUB's balanced) has nothing to lift: it must not decide C3
    lifts = {("mnist", "faithful-imbalanced"): 0.01, ("mnist", "faithful-balanced"): 0.0,
             ("cub", "imbalanced"): 0.05, ("cub", "balanced"): 0.0}
    write_summary(tmp_path, "classification", classification_rows(lifts))
    report = build_report(tmp_path)
    (c3,) = [c for c in report.claims if c.key == "C3"]
    assert c3.verdict == REPRODUCED, c3.reason
    assert "cub imbalanced" in c3.reason and "verdict on mnist faithful-imbalanced, cub imbalanced" in c3.reason
    assert "cub balanced" not in c3.reason.split("verdict on")[1]
    lifts[("cub", "imbalanced")] = -0.01
    write_summary(tmp_path, "classification", classification_rows(lifts))
    assert verdicts(build_report(tmp_path))["C3"] == NOT_REPRODUCED


def localisation_rows(cam=0.40, infocam=0.50) -> pd.DataFrame:
    """Metrics rows of one WSOL model (two seeds): every protocol the report shows, on the test split and on the
    original's half test split (B12)."""
    rows = []
    for seed in (0, 1):
        for split in ("test", "test_half"):
            base = {c: None for c in localisation_stage.METRICS_COLUMNS} | PROVENANCE | {
                "dataset": "cluttered_mnist", "backbone": "gap_cnn", "adl": False, "seed": seed, "split": split,
                "threshold": 0.2, "n_test": 100}
            rows.append(base | {"method": "classifier", "protocol": "classification", "iou": math.nan,
                                "metric": "top1_acc", "value": 0.9})
            for method, value in (("cam", cam), ("infocam", infocam)):
                for protocol, metric, iou in (("paper", "top1_loc", 0.5), ("paper", "gt_known_loc", 0.5),
                                              ("maxboxacc", "top1_loc", 0.5), ("maxboxacc", "gt_known_loc", 0.5),
                                              ("maxboxacc_v2", "maxboxacc_v2", math.nan)):
                    rows.append(base | {"method": method, "protocol": protocol, "iou": iou, "metric": metric,
                                        "value": value + 0.01 * seed})
    return pd.DataFrame(rows)


PARTS = {"synthetic": (synthetic_rows, ["C1", "C2"]),
         "classification": (lambda: classification_rows({("mnist", "faithful-imbalanced"): 0.01}), ["C3"]),
         "localisation": (localisation_rows, ["C4"])}


@pytest.mark.parametrize("part", list(PARTS))
def test_each_part_alone(tmp_path, part):
    """Only one part ran: its section holds its numbers and verdicts, the others say which summary is missing."""
    rows, keys = PARTS[part]
    write_summary(tmp_path, part, rows())
    report = build_report(tmp_path, markdown=tmp_path / "report.md", html=tmp_path / "report.html",
                          metrics=tmp_path / "report.json")
    text = (tmp_path / "report.md").read_text()
    assert all(section in text for section in SECTIONS)
    assert {k for k, v in verdicts(report).items() if v == REPRODUCED} == set(keys)
    missing = {c.reason for c in report.claims if c.verdict == NOT_RUN}
    assert missing == {f"results/{other}/summary.parquet missing" for other in PARTS if other != part} | {
        BENCHMARK_MISSING}
    assert all("reproduced" in entry for key, entry in json.loads((tmp_path / "report.json").read_text()).items()
               if key in keys)
    assert not re.search(r"\bnan\b", text, flags=re.IGNORECASE)


def test_the_report_reads_the_summary(tmp_path):
    """The numbers come from the summary file: a changed summary value changes the report, with no per-seed
    table present."""
    summary = write_summary(tmp_path, "synthetic", synthetic_rows())
    assert not (tmp_path / "synthetic/mi_estimates.parquet").exists()
    before = build_report(tmp_path, markdown=tmp_path / "report.md")
    first = (tmp_path / "report.md").read_text()
    assert verdicts(before)["C1"] == REPRODUCED
    row = (summary["balance"] == "balanced") & (summary["dim"] == 1) & (summary["estimator"] == "softmax")
    assert f"| 1 | 1.030 | {summary.loc[row, 'mean'].iloc[0]:.3f} ± " in first
    summary.loc[row, "mean"] += 0.1
    summary.loc[row, "bias"] += 0.1
    write_table(summary, tmp_path / "synthetic/summary.parquet")
    after = build_report(tmp_path, markdown=tmp_path / "report.md")
    assert verdicts(after)["C1"] == NOT_REPRODUCED
    assert f"| 1 | 1.030 | {summary.loc[row, 'mean'].iloc[0]:.3f} ± " in (tmp_path / "report.md").read_text()
    assert after.claims[0].numbers["max_abs_error_nats"] == round(float(summary.loc[row, "bias"].iloc[0]), 4)


def test_localisation_section_from_the_summary(tmp_path):
    write_summary(tmp_path, "localisation", localisation_rows(cam=0.40, infocam=0.50))
    report = build_report(tmp_path, markdown=tmp_path / "report.md")
    text = (tmp_path / "report.md").read_text()
    assert "| cam | 40.50 ± 0.71 | 40.50 ± 0.71 | 40.50 ± 0.71 | 40.50 ± 0.71 | 40.50 ± 0.71 |" in text
    assert "Top-1 classification accuracy: 90.00 ± 0.00." in text
    assert "beside `test_half`" in text and "| infocam | 50.50 ± 0.71 | 50.50 ± 0.71 |" in text
    (c4,) = [c for c in report.claims if c.key == "C4"]
    assert c4.verdict == REPRODUCED and c4.numbers["cluttered_mnist_gap_cnn_paper_top1_loc_infocam"] == 0.505
    write_summary(tmp_path, "localisation", localisation_rows(cam=0.50, infocam=0.40))
    assert verdicts(build_report(tmp_path))["C4"] == NOT_REPRODUCED
