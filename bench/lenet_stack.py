"""Benchmark: CPU time of one training step of :class:`softmax_mi.models.lenet.StackedLeNet` per stack size G (how
many runs are trained together), one thread, batch 64 per run — what a faithful training job pays per step.

    python bench/lenet_stack.py                    # G = 1, 2, 3, 4, 6; best of 3 × 40 steps each
    python bench/lenet_stack.py --sizes 1 2 --steps 20

Prints ms per step and per run-step (a step divided by G). Measured (bench/README.md "Stack size"): the per-run cost
drops from G = 1 to G = 2 and stays about flat beyond, so stacking a sweep's runs saves little past two of them.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from softmax_mi.models.lenet import LeNet, StackedLeNet


def step_ms(n_runs: int, *, batch: int, steps: int, repeats: int) -> float:
    """Best-of-``repeats`` process CPU milliseconds per SGD step of an ``n_runs`` stack (after 10 warm-up steps)."""
    torch.manual_seed(0)
    model = StackedLeNet.from_models([LeNet() for _ in range(n_runs)])
    x, y = torch.randn(n_runs, batch, 28, 28), torch.randint(0, 10, (n_runs, batch))
    optimiser = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.5)

    def step() -> None:
        loss = F.cross_entropy(model(x).reshape(-1, 10), y.reshape(-1))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()

    for _ in range(10):
        step()
    best = float("inf")
    for _ in range(repeats):
        started = time.process_time()
        for _ in range(steps):
            step()
        best = min(best, (time.process_time() - started) / steps * 1000)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 2, 3, 4, 6])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, one thread, batch {args.batch} per run")
    print("| G | ms / step | ms / run-step |\n|---|---|---|")
    for g in args.sizes:
        ms = step_ms(g, batch=args.batch, steps=args.steps, repeats=args.repeats)
        print(f"| {g} | {ms:.1f} | {ms / g:.1f} |", flush=True)


if __name__ == "__main__":
    main()
