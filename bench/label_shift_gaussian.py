"""The label-shift acceptance check on Part 1's Gaussian task (issue 15), with Part 1's default neural settings.

Trains, once per seed, a ``softmax`` and a ``pc_softmax`` estimator (params.yaml ``synthetic.neural``: MLP
100-100-100, Adam, 8 epochs, epoch picked on a validation tenth) on d = 2 and d = 5, balanced and imbalanced
(params.yaml class counts), then runs the study of params.yaml ``label_shift`` on them (fresh shifted draws, every
rule) and prints the verdicts of softmax_mi.label_shift.verdicts and the known-q / MI table. The weights are cached
in ``--models`` so that the evaluation can be rerun with other study settings without retraining.

    python bench/label_shift_gaussian.py --models /tmp/shift_models --out docs/label_shift_gaussian.csv
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
import yaml

from softmax_mi.estimators import LabeledSample, build_estimator
from softmax_mi.label_shift import InMemoryClassifier
from softmax_mi.label_shift.verdicts import verdicts
from softmax_mi.models.mlp import MLP
from softmax_mi.runtime import derive_seed
from softmax_mi.provenance import provenance
from softmax_mi.stages.label_shift import shifts_frame, summarise_shifts, synthetic_rows

ROOT = Path(__file__).resolve().parents[1]


def fitted(task: dict, setting: str, name: str, seed: int, neural: dict, cache: Path) -> InMemoryClassifier:
    """The estimator ``name`` trained on a fresh training draw of ``task`` (weights cached under ``cache``)."""
    from softmax_mi.data.synthetic import make_task

    problem = make_task(task)
    path = cache / f"{setting}-{name}-s{seed}.pt"
    model = MLP(problem.dim, problem.n_classes, hidden=tuple(neural["hidden"]))
    if path.exists():
        model.load_state_dict(torch.load(path, weights_only=True))
    else:
        rng = np.random.default_rng(derive_seed(seed, "shift-train", problem.dim, setting.split("-")[1]))
        x, y = problem.sample(problem.class_counts, rng)
        estimator = build_estimator(name, settings=neural,
                                    seed=derive_seed(seed, "shift-est", problem.dim, setting.split("-")[1], name))
        model = estimator.fit(LabeledSample.from_arrays(x, y, n_classes=problem.n_classes)).model
        cache.mkdir(parents=True, exist_ok=True)
        torch.save(model.state_dict(), path)
    return InMemoryClassifier(name, seed, tuple(problem.class_counts), SimpleNamespace(model=model))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, default=Path("/tmp/label_shift_models"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", type=Path, default=None, help="write the summary's synthetic rows here (CSV)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    study, synthetic = params["label_shift"], params["synthetic"]
    from softmax_mi.label_shift.priors import prior_grid

    priors = prior_grid(study["profiles"], study["ratios"], study["decays"])
    rows, seconds = [], 0.0
    for dim in (2, 5):
        for balance in ("balanced", "imbalanced"):
            task = {"kind": "gaussian", "dim": dim, "class_counts": synthetic["gaussian"]["class_counts"][balance],
                    "mean_unit": synthetic["gaussian"]["mean_unit"]}
            setting = f"d{dim}-{balance}"
            classifiers = [fitted(task, setting, name, seed, synthetic["neural"], args.models)
                           for seed in args.seeds for name in ("softmax", "pc_softmax")]
            started = time.process_time()
            rows += [{**row, **provenance({"study": study, "task": task})}
                     for row in synthetic_rows(classifiers, task, setting, priors, study)]
            seconds += time.process_time() - started
    summary = summarise_shifts(shifts_frame(rows))
    print(json.dumps(verdicts(summary), indent=1))
    print(f"evaluation CPU time: {seconds:.1f} s for {len(rows)} rows")
    known = summary[summary["rule"].isin(["known_q", "argmax", "em", "bbse"])]
    table = known[["setting", "loss", "profile", "ratio", "rule", "micro_acc_mean", "bayes_acc_mean", "bayes_gap_mean",
                   "mi_estimate_mean", "mi_true_mean", "mi_error_mean", "blind_bias_mean", "q_l1_mean"]]
    print(table.round(4).to_string(index=False))
    if args.out:
        table.to_csv(args.out, index=False, float_format="%.5g")


if __name__ == "__main__":
    main()
