"""A small coverage study of the benchmark's estimators on Part 1's d = 5 Gaussian task (5 classes), one thread.

Each seed draws a fresh sample of ``--rows`` rows and runs every estimator of
``softmax_mi.benchmark.estimators.ESTIMATORS`` with its defaults; the truth is a 400,000-draw Monte Carlo.

    python bench/benchmark_coverage.py --seeds 20                       # balanced
    python bench/benchmark_coverage.py --seeds 20 --balance imbalanced  # class counts 1:2:3:4:5
    python bench/benchmark_coverage.py --out rows.csv                   # keep the rows
    python bench/benchmark_coverage.py --rows 1000 --folds 5 --estimators softmax pc_softmax logloss
                                       # k-fold cross-fitted intervals (the pipeline's `benchmark.crossfit`)
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
import torch

from softmax_mi.benchmark.coverage import best_by_regime, coverage_summary
from softmax_mi.benchmark.estimators import ESTIMATORS
from softmax_mi.data.synthetic import GaussianMixtureTask

SHARES = {"balanced": (1, 1, 1, 1, 1), "imbalanced": (1, 2, 3, 4, 5)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--dim", type=int, default=5)
    parser.add_argument("--balance", choices=sorted(SHARES), default="balanced")
    parser.add_argument("--estimators", nargs="+", choices=sorted(ESTIMATORS), default=list(ESTIMATORS))
    parser.add_argument("--folds", type=int, default=1, help="1: one held-out split; k ≥ 2: k-fold cross-fitting")
    parser.add_argument("--out", help="also write the rows to this CSV file")
    args = parser.parse_args()
    torch.set_num_threads(1)
    shares = np.asarray(SHARES[args.balance])
    task = GaussianMixtureTask(args.dim, tuple(int(c) for c in args.rows * shares // shares.sum()))
    truth, truth_se = task.true_mi(400_000, np.random.default_rng(10_000))
    rows = []
    for seed in range(args.seeds):
        x, y = task.sample(task.class_counts, np.random.default_rng(seed))
        for name in args.estimators:
            result = ESTIMATORS[name](folds=args.folds).estimate(x, y, seed=seed)
            rows.append({"task": f"gaussian_d{args.dim}_{args.balance}", "estimator": name, "seed": seed,
                         "truth": truth, "truth_se": truth_se, "value": result.value, "low": result.low,
                         "high": result.high, "se": result.se, "seconds": result.details["cpu_seconds"],
                         "at_ceiling": result.details["at_ceiling"]})
    table = pd.DataFrame(rows)
    if args.out:
        table.to_csv(args.out, index=False)
    pd.set_option("display.width", 160)
    print(f"truth {truth:.4f} ± {truth_se:.4f} nats, {args.seeds} seeds, {args.rows} rows, folds {args.folds}")
    print(coverage_summary(table).round(4).to_string(index=False))
    print(best_by_regime(table, by=("task",)).round(4).to_string(index=False))


if __name__ == "__main__":
    main()
