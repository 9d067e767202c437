"""Label shift (issue 15): test priors, shifted subsets, the decision rules and metrics against references, the exact
Gaussian truth against Monte Carlo, and the stage end to end on a fixture logits.npz and in-memory classifiers."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from softmax_mi import grid
from softmax_mi.data.synthetic import GaussianMixtureTask
from softmax_mi.label_shift import (
    GaussianShiftTruth,
    InMemoryClassifier,
    evaluate_gaussian_shift,
    evaluate_shift,
    shifted_prior,
    shifted_subset,
    subset_sizes,
)
from softmax_mi.label_shift.metrics import expected_calibration_error, rule_metrics
from softmax_mi.label_shift.priors import prior_grid
from softmax_mi.stages import label_shift as stage

COUNTS = (5000, 10000, 15000, 20000, 25000)  # Part 1's imbalanced Gaussian setting
TASK = GaussianMixtureTask(dim=2, class_counts=COUNTS)
STUDY = {"profiles": ["forward", "uniform", "backward"], "ratios": [1, 10], "decays": ["exponential"],
         "rules": ["argmax", "known_q", "em", "bbse", "posthoc_la"], "posthoc_tau": 1.0,
         "em": {"tol": 1e-4, "max_iter": 100, "floor": 1e-6}, "bbse": {"floor": 1e-6}, "shots": [20, 100],
         "ece_bins": 15, "classification": {"n_draws": 2, "test_size": None},
         "synthetic": {"dims": [2], "balances": ["imbalanced"], "test_size": 600, "val_size": 300, "n_draws": 1}}


def test_priors_follow_the_training_order_and_ratio():
    counts = [30, 300, 100]
    forward = shifted_prior(counts, "forward", 10)
    backward = shifted_prior(counts, "backward", 10)
    assert np.argsort(-forward).tolist() == [1, 2, 0] and np.argsort(-backward).tolist() == [0, 2, 1]
    for q, ratio in ((forward, 10), (backward, 10), (shifted_prior(counts, "forward", 50, "step"), 50)):
        assert q.sum() == pytest.approx(1) and q.max() / q.min() == pytest.approx(ratio)
    assert np.allclose(shifted_prior(counts, "uniform", 50), 1 / 3)
    assert np.allclose(shifted_prior(counts, "backward", 1), 1 / 3)
    with pytest.raises(ValueError, match="profile must be one of"):
        shifted_prior(counts, "sideways", 10)
    assert prior_grid(["forward", "uniform"], [1, 10], ["step", "exponential"]) == [
        ("uniform", 1.0, "step"), ("forward", 10.0, "step"), ("forward", 10.0, "exponential")]


def test_shifted_subsets_have_the_sizes_and_are_seeded():
    labels = np.repeat(np.arange(4), [100, 90, 100, 100])
    q = shifted_prior([4, 3, 2, 1], "forward", 10)
    sizes = subset_sizes(np.bincount(labels), q)
    assert sizes.tolist() == [100, 46, 21, 10] and np.all(sizes <= np.bincount(labels))  # N = 100 / q_0
    rows = shifted_subset(labels, q, seed=3, n_draws=2)
    assert rows.shape == (2, sizes.sum())
    for row in rows:
        assert len(set(row)) == len(row) and np.bincount(labels[row], minlength=4).tolist() == sizes.tolist()
    assert not np.array_equal(rows[0], rows[1])
    assert np.array_equal(rows, shifted_subset(labels, q, seed=3, n_draws=2))
    with pytest.raises(ValueError, match="need"):
        subset_sizes(np.bincount(labels), q, total=1000)


def test_exact_gaussian_truth_matches_monte_carlo():
    truth = GaussianShiftTruth(TASK)
    rng = np.random.default_rng(0)
    q = shifted_prior(COUNTS, "backward", 10)
    n = 200_000
    y = rng.choice(5, size=n, p=q)
    x = TASK.means[y] + rng.standard_normal((n, 2))
    log_lik = TASK.log_likelihood(x)
    accuracy = float((np.argmax(log_lik + np.log(q), 1) == y).mean())
    log_marginal = np.logaddexp.reduce(log_lik + np.log(q), axis=1)
    pointwise = log_lik[np.arange(n), y] - log_marginal
    assert truth.bayes_accuracy(q) == pytest.approx(accuracy, abs=4 * math.sqrt(accuracy * (1 - accuracy) / n))
    assert truth.mutual_information(q) == pytest.approx(pointwise.mean(), abs=4 * pointwise.std() / math.sqrt(n))
    log_marginal_pi = np.logaddexp.reduce(log_lik + np.log(TASK.prior), axis=1)
    kl = log_marginal - log_marginal_pi
    assert truth.marginal_kl(q, TASK.prior) == pytest.approx(kl.mean(), abs=4 * kl.std() / math.sqrt(n))
    assert truth.mutual_information(TASK.prior) == pytest.approx(TASK.true_mi(n, rng)[0], abs=0.01)


def bayes_logits(x: np.ndarray, weight: float) -> np.ndarray:
    """The Bayes-optimal logits of a softmax-trained (weight 1) or PC-softmax-trained (weight 0) model."""
    return TASK.log_likelihood(x) + weight * np.log(TASK.prior)


@pytest.mark.parametrize("weight", [0.0, 1.0])
def test_rules_on_bayes_optimal_logits_reach_the_truth(weight):
    rng = np.random.default_rng(1)
    q = shifted_prior(COUNTS, "backward", 10)
    x, y = TASK.sample(tuple(subset_sizes([10**6] * 5, q, 20000)), rng)
    x_val, y_val = TASK.sample((400,) * 5, rng)
    out = evaluate_shift(bayes_logits(x, weight)[None], y[None], COUNTS, [weight], q,
                         val_logits=bayes_logits(x_val, weight)[None], val_labels=y_val)
    log_joint = TASK.log_likelihood(x) + np.log(q)
    bayes_accuracy = float((log_joint.argmax(1) == y).mean())
    plug_in = float((log_joint[np.arange(len(y)), y] - np.log(q)[y] - np.logaddexp.reduce(log_joint, 1)).mean())
    assert out["known_q"]["micro_acc"][0] == pytest.approx(bayes_accuracy, abs=1e-4)
    assert out["known_q"]["mi_estimate"][0] == pytest.approx(plug_in, abs=1e-4)
    assert out["known_q"]["q_l1"][0] == 0
    for rule in ("em", "bbse"):
        assert out[rule]["q_l1"][0] < 0.05 and out[rule]["micro_acc"][0] > bayes_accuracy - 0.005
    assert out["argmax"]["micro_acc"][0] < bayes_accuracy - 0.01  # the shift costs the blind rule
    assert np.isnan(out["posthoc_la"]["mi_estimate"][0]) and np.isnan(out["argmax"]["q_l1"][0])
    truth = GaussianShiftTruth(TASK)
    blind = truth.softmax_readout_bias(q, TASK.prior) if weight == 1 else truth.marginal_kl(q, TASK.prior)
    assert out["argmax"]["mi_estimate"][0] - truth.mutual_information(q) == pytest.approx(blind, abs=0.03)


def test_metrics_match_a_plain_reference():
    rng = np.random.default_rng(2)
    logits = torch.as_tensor(rng.normal(size=(3, 200, 4)), dtype=torch.float32)
    labels = torch.as_tensor(rng.integers(0, 4, size=(3, 200)))
    counts = [500, 50, 10, 5]  # many, medium, few, few
    got = rule_metrics(logits, labels, counts)
    for b in range(3):
        f, y = logits[b].double(), labels[b]
        correct = (f.argmax(1) == y).double()
        per_class = [float(correct[y == c].mean()) for c in range(4)]
        assert float(got["macro_acc"][b]) == pytest.approx(np.mean(per_class))
        assert float(got["few_acc"][b]) == pytest.approx(np.mean(per_class[2:]))
        assert float(got["medium_acc"][b]) == pytest.approx(per_class[1])
        assert float(got["nll"][b]) == pytest.approx(float(torch.nn.functional.cross_entropy(f, y)), rel=1e-5)
        confidence = torch.softmax(f, 1).max(1).values
        ece = sum(abs(float(correct[m].sum()) - float(confidence[m].sum())) / 200
                  for m in [(confidence >= i / 15) & (confidence < (i + 1) / 15) for i in range(15)])
        assert float(expected_calibration_error(torch.softmax(f, 1)[None], y[None])[0]) == pytest.approx(ece, abs=1e-6)


def fixture_npz(path, rng) -> None:
    """A classification setting's logits.npz as the classification stage writes it: 2 runs, K = 3."""
    runs = [{"dataset": "mnist", "setting": "step-r10", "loss": "softmax", "tau": None, "seed": 0},
            {"dataset": "mnist", "setting": "step-r10", "loss": "pc_softmax", "tau": None, "seed": 0}]
    centres = np.eye(3) * 3

    def split(n):
        y = np.repeat(np.arange(3), n)
        return (centres[y][None] + rng.normal(size=(2, len(y), 3))).astype(np.float32), y

    val_logits, val_labels = split(20)
    test_logits, test_labels = split(100)
    np.savez(path, runs=json.dumps(runs), val_logits=val_logits, val_labels=val_labels, test_logits=test_logits,
             test_labels=test_labels, train_counts=np.array([300, 30, 30], dtype=np.int64))


def test_stage_end_to_end(tmp_path, monkeypatch):
    rng = np.random.default_rng(3)
    fixture_npz(tmp_path / "logits.npz", rng)
    from softmax_mi.models.mlp import MLP

    task = grid.synthetic_task({"synthetic": {"gaussian": {"class_counts": {"imbalanced": [200, 400, 600, 800, 1000]},
                                                           "mean_unit": 2.0}}}, "gaussian", 2, "imbalanced")
    torch.manual_seed(0)  # untrained networks: the stage's plumbing, not its numbers (those: the tests above)
    counts = tuple(task["class_counts"])
    classifiers = [InMemoryClassifier(name, 0, counts, SimpleNamespace(model=MLP(2, 5, hidden=(8,))))
                   for name in ("softmax", "pc_softmax")]
    monkeypatch.setattr(stage, "load_synthetic", lambda path: classifiers)
    outputs = {"rows": tmp_path / "shifts.parquet", "summary": tmp_path / "summary.parquet",
               "metrics": tmp_path / "metrics.json", "accuracy_figure": tmp_path / "accuracy.png",
               "prior_figure": tmp_path / "priors.png"}
    stage.run(study=STUDY, seed=0, synthetic_tasks=[{"task": task, "setting": "d2-imbalanced"}],
              inputs={"logits": [str(tmp_path / "logits.npz")], "classifiers": ["classifiers.pt"]}, outputs=outputs)
    table = pd.read_parquet(outputs["rows"])
    assert set(table.columns) == set(stage.SHIFTS_COLUMNS)
    mnist = table[table["dataset"] == "mnist"]
    assert len(mnist) == 2 * 3 * 2 * 5  # runs × priors × draws × rules
    assert len(table[table["dataset"] == "gaussian"]) == 2 * 3 * 1 * 5
    assert table["params_hash"].notna().all() and mnist["bayes_acc"].isna().all()
    summary = pd.read_parquet(outputs["summary"])
    assert list(summary.columns) == list(stage.SUMMARY_COLUMNS)
    verdicts = json.loads(outputs["metrics"].read_text())
    assert verdicts["bayes"]["ran"] and verdicts["mi"]["ran"] and verdicts["prior"]["ran"]
    assert outputs["accuracy_figure"].stat().st_size > 0 and outputs["prior_figure"].stat().st_size > 0

    from softmax_mi.report.build import build_report

    (tmp_path / "label_shift").mkdir()
    summary.to_parquet(tmp_path / "label_shift" / "summary.parquet")
    text = "\n".join(str(block) for block in build_report(tmp_path).blocks)
    assert "Label shift" in text and "exact Bayes accuracy under every q" in text


def test_a_logits_file_without_a_key_is_named(tmp_path):
    np.savez(tmp_path / "logits.npz", runs="[]")
    from softmax_mi.classification import load_logits

    with pytest.raises(ValueError, match=r"logits.npz: no test_labels, test_logits, train_counts, val_labels, val_logits"):
        load_logits(tmp_path / "logits.npz")


def test_gaussian_study_pairs_the_draws_of_one_seed():
    fitted = [type("Bayes", (), {"estimator": name, "seed": 0, "train_counts": COUNTS,
                                 "logits": staticmethod(lambda x, w=w: bayes_logits(x, w))})()
              for name, w in (("softmax", 1.0), ("pc_softmax", 0.0))]
    rows = pd.DataFrame(evaluate_gaussian_shift(fitted, TASK, [("backward", 10.0, "exponential")], test_size=2000,
                                                val_size=500, n_draws=1, rules=["known_q"]))
    assert rows["micro_acc"].nunique() == 1  # same draws, same Bayes decisions
    assert rows["micro_acc"].iloc[0] == pytest.approx(rows["bayes_acc_sample"].iloc[0])


def test_the_readme_example_runs(capsys):
    """The README's label-shift example (section "## Label shift") runs as written."""
    import re
    from pathlib import Path

    text = (Path(__file__).parents[1] / "README.md").read_text()
    start = text.index("## Label shift")
    section = text[start:text.index("\n## ", start + 3)]
    (code,) = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    exec(compile(code, "README.md: label shift example", "exec"), {})
    printed = capsys.readouterr().out
    assert "known_q" in printed and "argmax" in printed
