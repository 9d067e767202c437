"""The benchmark_bmi stage (softmax_mi.stages.benchmark.estimate_bmi) without bmi: a fake interpreter stands in for
.venv-bmi's python and answers the runner's request, so the rows, their names, the shared samples and the error
paths are checked in well under a second."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest

from softmax_mi import grid
from softmax_mi.benchmark import bmi
from softmax_mi.benchmark.coverage import coverage_summary
from softmax_mi.benchmark.scoring import score_runs
from softmax_mi.benchmark.tasks import make_task
from softmax_mi.io import read_table
from softmax_mi.stages.benchmark import RUN_COLUMNS, check_tasks, estimate_bmi, sample_seed

SPEC = {"name": "plain", "family": "gaussian", "params": {"classes": 3, "d": 2, "separation": 2.0}}

# Called as `python RUNNER request.json result.json`: the "estimate" is the sum of x, so a test can tell that bmi saw
# the very sample the other estimators see; KSG gets an se (an interval), an estimator named in FAIL an error.
FAKE = """#!{python}
import json, sys
import numpy as np
request = json.load(open(sys.argv[2]))
x = np.load(request["samples"])["x"]
results = []
for spec in request["estimators"]:
    name = spec["name"]
    record = {{"estimator": name, "value": float(x.sum()), "se": 0.01 if name == "ksg" else None,
               "subsets": spec["subsets"], "seconds": 0.5, "cpu_seconds": 0.4, "params": {{}}, "error": None}}
    if name in {fail}:
        record.update(value=None, error="ValueError: boom")
    results.append(record)
json.dump({{"versions": {{"benchmark-mi": "0.1.3"}}, "results": results}}, open(sys.argv[3], "w"))
"""


def fake_python(tmp_path, monkeypatch, fail=()):
    path = tmp_path / "python"
    path.write_text(FAKE.format(python=sys.executable, fail=repr(set(fail) or set())))
    path.chmod(0o755)
    monkeypatch.setattr(bmi, "BMI_PYTHON", str(path))


def run_stage(tmp_path, estimators, sizes=(50, 100)):
    out = tmp_path / "bmi.parquet"
    estimate_bmi(runs=[(SPEC, list(sizes))], estimators=list(estimators), settings={}, encoding="label_noise",
                 noise=0.01, seeds=[0, 1], main_sizes=[50], level=0.95, inputs={}, outputs={"rows": str(out)})
    return read_table(out)


def test_bmi_rows_share_the_samples_and_the_columns_of_every_run(tmp_path, monkeypatch):
    fake_python(tmp_path, monkeypatch)
    rows = run_stage(tmp_path, ["ksg", "nwj"])
    assert list(rows.columns) == list(RUN_COLUMNS) and len(rows) == 2 * 2 * 2  # sizes × seeds × estimators
    assert set(rows["estimator"]) == {"bmi_ksg", "bmi_nwj"} and (rows["status"] == "ok").all()
    task = make_task(SPEC)
    for row in rows.itertuples():
        x, _ = task.sample(row.n, sample_seed(row.seed, SPEC, row.n))
        assert row.estimate == pytest.approx(float(x.sum()))  # the stage's own sample, unchanged
    assert rows.loc[rows["n_per_class"] == 100, "sweep"].all() and not rows.loc[rows["n_per_class"] == 50, "sweep"].any()
    ksg, nwj = rows[rows["estimator"] == "bmi_ksg"], rows[rows["estimator"] == "bmi_nwj"]
    assert ksg["low"].notna().all() and ksg["interval"].str.contains("batch means").all()
    assert nwj["low"].isna().all() and nwj["interval"].str.startswith("none").all()
    # scored with the others: no interval → covered is NA; the coverage study reads the same table as it is
    truths = pd.DataFrame({"dataset": ["plain"], "family": ["gaussian"], "truth": [0.5], "truth_se": [0.0],
                           "truth_low": [0.5], "truth_high": [0.5]})
    scored = score_runs(rows, truths)
    assert scored.loc[scored["estimator"] == "bmi_nwj", "covered"].isna().all()
    assert set(coverage_summary(scored)["estimator"]) == {"bmi_ksg"}


def test_one_failing_bmi_estimator_is_a_failed_row_the_others_stand(tmp_path, monkeypatch):
    fake_python(tmp_path, monkeypatch, fail={"mine"})
    rows = run_stage(tmp_path, ["ksg", "mine"], sizes=(50,))
    mine = rows[rows["estimator"] == "bmi_mine"]
    assert mine["status"].str.contains("boom").all() and mine["estimate"].isna().all()
    assert (rows.loc[rows["estimator"] == "bmi_ksg", "status"] == "ok").all()


def test_a_missing_bmi_environment_stops_the_job_with_one_line_naming_make_bmi_env(tmp_path, monkeypatch):
    monkeypatch.setattr(bmi, "BMI_PYTHON", str(tmp_path / "absent" / "python"))
    with pytest.raises(SystemExit) as stopped:
        run_stage(tmp_path, ["ksg"])
    message = str(stopped.value.code)
    assert "`make bmi-env`" in message and "\n" not in message and not (tmp_path / "bmi.parquet").exists()


def test_bmi_runs_follow_benchmark_bmi_tasks_and_an_unknown_one_is_refused():
    other = {"name": "other", "family": "gaussian", "params": {"classes": 2, "d": 1, "separation": 1.0}}
    benchmark = {"n_seeds": 1, "n_per_class": [200], "tasks": [SPEC, other], "bmi": {"estimators": ["ksg"], "tasks": ["plain"]},
                 "sweep": {"tasks": ["plain"], "n_per_class": [100]}}
    params = {"seeds": [0], "benchmark": benchmark}
    assert grid.benchmark_bmi_runs(params) == [(SPEC, [100, 200])]
    benchmark["bmi"]["tasks"] = None
    assert [spec["name"] for spec, _ in grid.benchmark_bmi_runs(params)] == ["plain", "other"]
    benchmark["bmi"]["tasks"] = ["nope"]
    with pytest.raises(ValueError, match="benchmark.bmi.tasks: 'nope' is not a task"):
        check_tasks(benchmark)
    benchmark["bmi"]["estimators"] = []  # bmi left out (params/smoke.yaml): its task list is not checked
    check_tasks(benchmark)
