"""Benchmark: the faithful MNIST sweep (softmax + PC-softmax × seeds, LeNet, SGD lr 0.01 / momentum 0.5, batch 64)
trained the classic way — a torchvision ``MNIST`` dataset (PIL images, ToTensor + Normalize per sample) behind a
shuffled ``DataLoader``, one model after the other — against :func:`softmax_mi.multirun.train_runs` (uint8 tensors,
every run of the sweep stacked into one model; with 2 cores also split over two single-threaded processes, as the
pipeline runs two training jobs side by side). Both on the same machine, in one invocation, each reading its
prepared data from a temporary folder inside the timer: torchvision its IDX files, the stacked path the pipeline's
uint8 ``arrays.npz`` (what ``classification_prepare`` writes). The protocol each run sees is the same (own init,
own per-epoch shuffle, batch 64, same optimiser), so test accuracies agree in distribution.

    python bench/training.py                 # the whole sweep: 2 losses × 3 seeds × 8 epochs (~15 min on 2 cores)
    python bench/training.py --epochs 1      # same per-epoch timings, one epoch
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from softmax_mi.data.mnist import ImageDataset, faithful_split, load_mnist_pickle, write_idx
from softmax_mi.losses import log_pc_softmax, log_prior_from_counts
from softmax_mi.models.lenet import LeNet, MNIST_MEAN, MNIST_STD
from softmax_mi.multirun import RunSpec, SGDConfig, predict_logits, train_runs
from softmax_mi.stages.classification import run_specs

LOSSES = ("softmax", "pc_softmax")


def macro_accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    predicted = logits.argmax(-1)
    return float(np.mean([(predicted[labels == c] == c).float().mean() for c in range(10)]))


def sweep(seeds: list[int], epochs: int) -> list[RunSpec]:
    """The pipeline's own runs of the faithful imbalanced MNIST jobs (same init and data-order seeds)."""
    return [
        run
        for loss in LOSSES
        for run in run_specs(dataset="mnist", setting="faithful-imbalanced", loss=loss, seeds=seeds, options={},
                             epochs=epochs)
    ]


# ------------------------------------------------------------------------------------------ classic loop


def classic(root: Path, train_index: np.ndarray, test_index: np.ndarray, runs: list[RunSpec], config: SGDConfig,
            device: str) -> dict[str, float]:
    """One model at a time, the way the original script (and the PyTorch MNIST example) trains."""
    from torch.utils.data import DataLoader, Subset
    from torchvision import datasets, transforms

    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((MNIST_MEAN,), (MNIST_STD,))])
    full = datasets.MNIST(str(root), train=True, download=False, transform=transform)
    train_set, test_set = Subset(full, train_index.tolist()), Subset(full, test_index.tolist())
    counts = torch.bincount(full.targets[train_index], minlength=10)
    log_prior = log_prior_from_counts(counts).to(device)
    results = {}
    for run in runs:
        torch.manual_seed(run.init_seed)
        model = LeNet().to(device)
        optimiser = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum)
        loader = DataLoader(train_set, batch_size=config.batch_size, shuffle=True,
                            generator=torch.Generator().manual_seed(run.order_seed))
        for _ in range(config.epochs):
            model.train()
            for x, y in loader:
                x, y = x.to(device), y.to(device)
                logits = model(x)
                if run.loss == "pc_softmax":
                    loss = F.nll_loss(log_pc_softmax(logits, log_prior), y)
                else:
                    loss = F.cross_entropy(logits, y)
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
        model.eval()
        logits, labels = [], []
        with torch.no_grad():
            for x, y in DataLoader(test_set, batch_size=1000):
                logits.append(model(x.to(device)).cpu())
                labels.append(y)
        results[run.name] = macro_accuracy(torch.cat(logits), torch.cat(labels))
    return results


# ------------------------------------------------------------------------------------------ stacked runs


def _stacked_worker(args) -> dict[str, float]:
    arrays, runs, config, device, threads, train_index, test_index = args
    torch.set_num_threads(threads)
    data = ImageDataset.load(arrays)
    images, labels = torch.from_numpy(data.x_train), torch.from_numpy(data.y_train)
    model, _ = train_runs(images[train_index], labels[train_index], runs, config, device=device)
    logits = predict_logits(model, images[test_index]).cpu()
    return {run.name: macro_accuracy(logits[g], labels[test_index]) for g, run in enumerate(runs)}


def stacked(arrays, runs, config, device, workers, train_index, test_index) -> dict[str, float]:
    if workers == 1:
        return _stacked_worker((arrays, runs, config, device, torch.get_num_threads(), train_index, test_index))
    # one loss per process, as the pipeline's two training jobs (so the numbers are the pipeline's, bit for bit)
    chunks = [[run for run in runs if run.loss == loss] for loss in LOSSES] if workers == len(LOSSES) else \
        [runs[i::workers] for i in range(workers)]
    jobs = [(arrays, chunk, config, device, 1, train_index, test_index) for chunk in chunks]
    import multiprocessing

    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        results = {}
        for part in pool.map(_stacked_worker, jobs):
            results.update(part)
    return results


# ------------------------------------------------------------------------------------------ main


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (the stacked-run workers)."""
    import resource

    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def timed(function, *args):
    started, cpu_started = time.perf_counter(), cpu_seconds()
    result = function(*args)
    return time.perf_counter() - started, cpu_seconds() - cpu_started, result


def summary(results: dict[str, float]) -> str:
    parts = []
    for loss in LOSSES:
        values = [100 * v for k, v in results.items() if k.startswith(loss + "/")]
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        parts.append(f"{loss} {statistics.mean(values):.2f}±{spread:.2f}")
    return ", ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--skip-classic-threads", action="store_true", help="time the classic loop once only")
    args = parser.parse_args()
    config = SGDConfig(epochs=args.epochs)
    runs = sweep(list(range(args.seeds)), args.epochs)
    data = load_mnist_pickle()
    split = faithful_split(data.y_train, balanced=False)
    cores = os.cpu_count()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "MNIST" / "raw"
        raw.mkdir(parents=True)
        write_idx(data.x_train, raw / "train-images-idx3-ubyte")
        write_idx(data.y_train.astype(np.uint8), raw / "train-labels-idx1-ubyte")
        write_idx(data.x_test, raw / "t10k-images-idx3-ubyte")
        write_idx(data.y_test.astype(np.uint8), raw / "t10k-labels-idx1-ubyte")
        default_threads = torch.get_num_threads()
        classic_threads = [default_threads]
        if not args.skip_classic_threads and default_threads > 1:
            classic_threads.append(1)
        for threads in classic_threads:
            torch.set_num_threads(threads)
            seconds, cpu, result = timed(classic, Path(tmp), split.train, split.test, runs, config, args.device)
            rows.append((f"classic DataLoader loop, one model at a time, {threads} thread(s)", seconds, cpu, result))
            print(f"{rows[-1][0]}: {seconds:.1f} s", file=sys.stderr, flush=True)
        torch.set_num_threads(default_threads)
        arrays = Path(tmp) / "arrays.npz"
        data.save(arrays)
        for workers in ([1, 2] if args.device == "cpu" and (cores or 1) >= 2 else [1]):
            seconds, cpu, result = timed(stacked, arrays, runs, config, args.device, workers, split.train, split.test)
            label = "stacked runs, 1 process" if workers == 1 else f"stacked runs, {workers} processes × 1 thread"
            rows.append((label, seconds, cpu, result))
            print(f"{label}: {seconds:.1f} s", file=sys.stderr, flush=True)
    baseline = min(seconds for name, seconds, _, _ in rows if name.startswith("classic"))
    load = os.getloadavg()[0]
    print(f"\nFaithful imbalanced MNIST sweep: {len(LOSSES)} losses × {args.seeds} seeds × {args.epochs} epochs, "
          f"LeNet, batch 64, {len(split.train)} training images; device {args.device}, {cores} cores "
          f"({platform.processor() or platform.machine()}), torch {torch.__version__}; load average at the end "
          f"{load:.1f} (other processes share the cores when this exceeds the core count)\n")
    print("| method | wall time [s] | CPU time [s] | speed-up (wall) vs fastest classic | test macro acc. % "
          "(mean±std over seeds) |")
    print("|---|---|---|---|---|")
    for name, seconds, cpu, result in rows:
        print(f"| {name} | {seconds:.1f} | {cpu:.1f} | {baseline / seconds:.2f}× | {summary(result)} |")


if __name__ == "__main__":
    main()
