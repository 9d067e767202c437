"""The reproduction report: verdicts computed from the tables, sections present even when a part is absent,
and the report the pipeline built on the smoke run."""

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
from softmax_mi.stages.synthetic import MI_ESTIMATES_COLUMNS

SECTIONS = ["## Verdicts", "## 1. Softmax cross-entropy as an MI estimator", "## 2. PC-softmax on imbalanced",
            "## 3. infoCAM for weakly-supervised localisation"]
PRIOR = np.array([1, 2, 3, 4, 5]) / 15
H_Y = float(-(PRIOR * np.log(PRIOR)).sum())


def synthetic_rows(softmax_offset=0.0, pc_offset=0.0, imbalanced_excess=None):
    """mi_estimates rows with a known answer: estimate = truth + offset (per estimator, balance)."""
    excess = math.log(5) - H_Y if imbalanced_excess is None else imbalanced_excess
    rows = []
    for balance, h in (("balanced", math.log(5)), ("imbalanced", H_Y)):
        for dim, truth in ((1, 1.03), (2, 1.30)):
            for seed in (0, 1):
                for estimator, offset in (("softmax", softmax_offset + (excess if balance == "imbalanced" else 0)),
                                          ("pc_softmax", pc_offset)):
                    rows.append({c: None for c in MI_ESTIMATES_COLUMNS} | {
                        "dataset": "gaussian", "dim": dim, "balance": balance, "n_classes": 5, "estimator": estimator,
                        "seed": seed, "mi_true": truth, "mi_estimate": truth + offset + 0.002 * seed,
                        "entropy_y": h,
                    })
    return pd.DataFrame(rows)


def verdicts(report):
    return {c.key: c.verdict for c in report.claims}


def test_absent_parts_are_not_run(tmp_path):
    report = build_report(tmp_path, markdown=tmp_path / "report.md", html=tmp_path / "report.html",
                          metrics=tmp_path / "report.json")
    assert verdicts(report) == dict.fromkeys(["C1", "C2", "C3", "C4"], NOT_RUN)
    reasons = {c.key: c.reason for c in report.claims}
    assert reasons["C1"] == "results/synthetic/mi_estimates.parquet missing"
    assert reasons["C4"] == "results/localisation/metrics.parquet missing"
    text = (tmp_path / "report.md").read_text()
    assert all(section in text for section in SECTIONS)
    assert json.loads((tmp_path / "report.json").read_text()) == {"C1": {}, "C2": {}, "C3": {}, "C4": {}}


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
    write_table(synthetic_rows(**kwargs), tmp_path / "synthetic/mi_estimates.parquet")
    report = build_report(tmp_path)
    assert {k: v for k, v in verdicts(report).items() if k in expected} == expected
    assert verdicts(report)["C3"] == NOT_RUN


def test_cli_report(tmp_path, capsys):
    write_table(synthetic_rows(), tmp_path / "synthetic/mi_estimates.parquet")
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
    assert html.count("data:image/png;base64,") == 5  # every figure of the three parts, embedded
    assert not re.search(r"\bnan\b", re.sub(r"data:image/png;base64,[^'\"]+", "", html), flags=re.IGNORECASE)
    assert "not run" not in {c for c in re.findall(r"\*\*C\d — ([a-z ]+)\.\*\*", text)}  # every part ran
    headline = json.loads((results / "report.json").read_text())
    assert set(headline) == {"C1", "C2", "C3", "C4"} and all("reproduced" in v for v in headline.values())


def classification_rows(lifts: dict[tuple[str, str], float]) -> pd.DataFrame:
    """Test rows of softmax and PC-softmax per (dataset, setting): PC-softmax macro = softmax macro + lift."""
    from softmax_mi.stages.classification import METRICS_COLUMNS

    rows = []
    for (dataset, setting), lift in lifts.items():
        for seed in (0, 1, 2):
            for loss, macro in (("softmax", 0.90), ("pc_softmax", 0.90 + lift)):
                rows.append({c: None for c in METRICS_COLUMNS} | {
                    "dataset": dataset, "setting": setting, "protocol": "faithful", "loss": loss, "tau": math.nan,
                    "seed": seed, "split": "test", "micro_acc": 0.95, "macro_acc": macro, "minority_acc": macro,
                    "imbalance_ratio": 3.0, "profile": "step",
                })
    return pd.DataFrame(rows)


def test_c3_is_decided_on_imbalanced_settings_only(tmp_path):
    # a balanced split (MNIST's faithful-balanced, CUB's balanced) has nothing to lift: it must not decide C3
    lifts = {("mnist", "faithful-imbalanced"): 0.01, ("mnist", "faithful-balanced"): 0.0,
             ("cub", "imbalanced"): 0.05, ("cub", "balanced"): 0.0}
    write_table(classification_rows(lifts), tmp_path / "classification/metrics.parquet")
    report = build_report(tmp_path)
    (c3,) = [c for c in report.claims if c.key == "C3"]
    assert c3.verdict == REPRODUCED, c3.reason
    assert "cub imbalanced" in c3.reason and "verdict on mnist faithful-imbalanced, cub imbalanced" in c3.reason
    assert "cub balanced" not in c3.reason.split("verdict on")[1]
    lifts[("cub", "imbalanced")] = -0.01
    write_table(classification_rows(lifts), tmp_path / "classification/metrics.parquet")
    assert verdicts(build_report(tmp_path))["C3"] == NOT_REPRODUCED
