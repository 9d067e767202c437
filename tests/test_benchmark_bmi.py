"""bmi's estimators in their own environment (softmax_mi.benchmark.bmi and its runner): parsing and error paths
without bmi, and one real KSG run on tiny data when `make bmi-env` has built .venv-bmi."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from softmax_mi.benchmark import bmi_runner
from softmax_mi.benchmark.bmi import BmiEnvironmentError, parse_results, run_bmi

BMI_PYTHON = Path(__file__).resolve().parents[1] / ".venv-bmi" / "bin" / "python"


def test_results_become_estimates_with_a_t_interval_from_subsets():
    payload = {"versions": {"benchmark-mi": "0.1.3"}, "results": [
        {"estimator": "ksg", "value": 1.5, "se": 0.01, "subsets": 10, "seconds": 1.0, "cpu_seconds": 1.0,
         "encoding": "label_noise", "params": {"neighborhoods": [5, 10]}, "error": None},
        {"estimator": "nwj", "value": 1.4, "se": None, "subsets": 0, "error": None}]}
    estimates = parse_results(payload)
    assert estimates["ksg"].high - estimates["ksg"].value == pytest.approx(2.262 * 0.01, abs=1e-4)  # t(9)
    assert not estimates["nwj"].has_interval and estimates["ksg"].details["versions"]["benchmark-mi"] == "0.1.3"
    with pytest.raises(BmiEnvironmentError, match="'mine' failed: ValueError: boom"):
        parse_results({"results": [{"estimator": "mine", "value": None, "error": "ValueError: boom"}]})
    with pytest.raises(BmiEnvironmentError, match="returned NaN"):
        parse_results({"results": [{"estimator": "nwj", "value": math.nan}]})
    with pytest.raises(BmiEnvironmentError, match="no 'results' list"):
        parse_results({})


def test_a_missing_environment_names_the_make_target_and_a_failing_runner_is_reported(tmp_path):
    x, y = np.zeros((4, 1)), np.array([0, 0, 1, 1])
    with pytest.raises(BmiEnvironmentError, match="`make bmi-env`"):
        run_bmi(x, y, python=tmp_path / "nowhere" / "python")
    broken = tmp_path / "python"
    broken.write_text("#!/bin/sh\necho 'ImportError: no bmi here' >&2\nexit 3\n")
    broken.chmod(0o755)
    with pytest.raises(BmiEnvironmentError, match="exit 3.*ImportError: no bmi here"):
        run_bmi(x, y, python=broken)
    with pytest.raises(ValueError, match="unknown bmi estimators"):
        run_bmi(x, y, estimators=("kde",), python=broken)


def test_label_encodings_and_subsets():
    y = np.array([0, 2, 1, 2])
    assert bmi_runner.encode_labels(y, "label_noise", 0.0, seed=0).tolist() == [[0.0], [2.0], [1.0], [2.0]]
    assert bmi_runner.encode_labels(y, "one_hot_noise", 0.0, seed=0).sum(axis=0).tolist() == [1.0, 1.0, 2.0]
    noisy = bmi_runner.encode_labels(y, "label_noise", 0.01, seed=0)
    assert 0 < np.abs(noisy[:, 0] - y).max() < 0.05
    groups = bmi_runner.subset_groups(np.repeat([0, 1], 10), 5, seed=0)
    assert np.bincount(groups).tolist() == [4] * 5 and all(np.bincount(np.repeat([0, 1], 10)[groups == g]).tolist()
                                                           == [2, 2] for g in range(5))


@pytest.mark.skipif(not BMI_PYTHON.exists(), reason="bmi's environment .venv-bmi is absent (build it: make bmi-env)")
def test_real_bmi_ksg_on_tiny_data():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    x = rng.normal(4.0 * y, 1.0)[:, None]  # two unit Gaussians 4 apart: I ≈ 0.58 nats of log 2 = 0.69
    estimate = run_bmi(x, y, estimators=("ksg",), subsets={"ksg": 3}, python=BMI_PYTHON, timeout=120)["ksg"]
    assert 0.4 < estimate.value < 0.8 and estimate.has_interval
    assert estimate.details["encoding"] == "label_noise" and estimate.details["subsets"] == 3
