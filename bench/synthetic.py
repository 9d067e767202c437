"""Error vs wall time of every MI estimator on identical data (the paper's Gaussian task).

For each estimator, budgets grow (epochs for the trained estimators, sample size for kNN); each budget is a fresh
fit, timed end to end (fit + estimate). The table reports the error at the largest budget and the first wall
time at which |error| < tolerance held, or "never".

    python bench/synthetic.py                      # d = 5, balanced and imbalanced, 1 thread
    python bench/synthetic.py --dim 10 --tolerance 0.01
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from softmax_mi.data.synthetic import GaussianMixtureTask, held_out_counts
from softmax_mi.estimators import NEURAL, LabeledSample, build_estimator

COUNTS = {"balanced": (10000,) * 5, "imbalanced": (5000, 10000, 15000, 20000, 25000)}


def make_data(dim: int, balance: str, seed: int):
    task = GaussianMixtureTask(dim, COUNTS[balance])
    rng = np.random.default_rng(seed)
    train = LabeledSample.from_arrays(*task.sample(task.class_counts, rng), n_classes=5)
    test = LabeledSample.from_arrays(*task.sample(held_out_counts(task.class_counts, 0.2), rng), n_classes=5)
    truth, _ = task.true_mi(400_000, rng)
    return train, test, truth


def budgets(name: str, epochs: list[int], test: LabeledSample):
    """(label, settings, evaluation sample) per budget: epochs for trained estimators, sample size for kNN."""
    if name in NEURAL:
        for n in epochs:
            yield f"{n} ep", {"epochs": n, "batch_size": 500, "lr": 1e-3, "val_fraction": 0.1, "select": "best_val",
                              "min_steps": 0, "patience": None}, test  # a fixed budget: no floor, no early stop
    else:
        for n in (1000, 3000, len(test)):
            yield f"n={n}", {"k": 3}, test.subset(torch.arange(n))


def run(dim: int, balance: str, epochs: list[int], tolerance: float, seed: int) -> list[dict]:
    train, test, truth = make_data(dim, balance, seed)
    rows = []
    for name in ("softmax", "pc_softmax", "mine", "infonce", "nwj", "knn", "sklearn_knn"):
        if name == "sklearn_knn" and dim != 1:
            continue
        reached, last = None, None
        for label, settings, evaluation in budgets(name, epochs, test):
            started = time.perf_counter()
            value = build_estimator(name, settings=settings, seed=seed).fit_estimate(train, evaluation).value
            seconds = time.perf_counter() - started
            last = (label, value - truth, seconds)
            if reached is None and abs(value - truth) < tolerance:
                reached = (label, seconds)
        rows.append(
            {
                "setting": f"d={dim} {balance}",
                "estimator": name,
                "error at largest budget": f"{last[1]:+.4f} ({last[0]}, {last[2]:.1f} s)",
                f"first |error| < {tolerance}": f"{reached[1]:.1f} s ({reached[0]})" if reached else "never",
            }
        )
    return rows


def markdown(rows: list[dict]) -> str:
    columns = list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(row[c]) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dim", type=int, default=5)
    parser.add_argument("--balance", choices=[*COUNTS, "both"], default="both")
    parser.add_argument("--epochs", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    parser.add_argument("--tolerance", type=float, default=0.02, help="nats")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    balances = list(COUNTS) if args.balance == "both" else [args.balance]
    rows = [row for balance in balances for row in run(args.dim, balance, args.epochs, args.tolerance, args.seed)]
    print(markdown(rows))


if __name__ == "__main__":
    main()
