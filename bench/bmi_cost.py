"""Cost and error of bmi's estimators (run in .venv-bmi) on Part 1's d = 5 Gaussian task, one core.

    taskset -c 0 python bench/bmi_cost.py                                 # 10,000 rows, KSG both encodings
    taskset -c 0 python bench/bmi_cost.py --estimators ksg infonce mine nwj --encodings label_noise

Prints one line per (estimator, encoding): estimate, interval, truth, error, wall and CPU seconds of the estimator
inside the runner (the runner's start and bmi/jax import, ≈ 2–3 s, come on top: see "process s").
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from softmax_mi.benchmark.bmi import run_bmi
from softmax_mi.data.synthetic import GaussianMixtureTask


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--dim", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--estimators", nargs="+", default=["ksg"])
    parser.add_argument("--encodings", nargs="+", default=["label_noise", "one_hot_noise"])
    parser.add_argument("--python", default=".venv-bmi/bin/python")
    args = parser.parse_args()
    task = GaussianMixtureTask(args.dim, (args.rows // 5,) * 5)
    x, y = task.sample(task.class_counts, np.random.default_rng(args.seed))
    truth, truth_se = task.true_mi(400_000, np.random.default_rng(args.seed + 1))
    print(f"d = {args.dim}, {len(y)} rows, truth {truth:.4f} ± {truth_se:.4f} nats")
    for encoding in args.encodings:
        for name in args.estimators:
            start = time.perf_counter()
            estimate = run_bmi(x, y, estimators=(name,), encoding=encoding, seed=args.seed, python=args.python)[name]
            details = estimate.details
            print(f"{name:8s} {encoding:14s} {estimate}  error {estimate.value - truth:+.4f}  "
                  f"estimator {details['seconds']:.1f} s wall / {details['cpu_seconds']:.1f} s CPU  "
                  f"process {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
