"""Benchmark: the faithful MNIST sweep (softmax + PC-softmax × seeds, LeNet, SGD lr 0.01 / momentum 0.5, batch 64)
trained the classic way — a torchvision ``MNIST`` dataset (PIL images, ToTensor + Normalize per sample) behind a
shuffled ``DataLoader``, one model after the other — against :func:`softmax_mi.multirun.train_stacked` (uint8 tensors,
every run of the sweep stacked into one model; with 2 cores also one single-threaded process per loss, as the
pipeline runs its two training jobs side by side). All on the same machine, in one invocation, each reading its
prepared data from a temporary folder inside the timer: torchvision its IDX files, the stacked path the pipeline's
uint8 ``arrays.npz`` (what ``classification_prepare`` writes). Two speed-ups are printed: against the classic loop
one model at a time (its fastest thread count) and against the fastest classic variant timed. The protocol each run sees is the same (own init, own per-epoch shuffle, batch 64, same optimiser), so test
accuracies agree in distribution; the runs are the pipeline's (same seeds).

    python bench/training.py                        # the whole sweep: 2 losses × 3 seeds × 8 epochs (~15 min, 2 cores)
    python bench/training.py --classic-processes    # + two classic loops side by side (one per loss, 1 thread each)
    python bench/training.py --epochs 1 --seeds 2   # a quick look: same per-epoch timings
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
from softmax_mi.classification import RunId
from softmax_mi.models.lenet import LeNet, MNIST_MEAN, MNIST_STD, normalise
from softmax_mi.multirun import RunSpec, SGDConfig, init_models, predict_logits, run_specs, train_stacked

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
            device: str) -> dict[RunId, float]:
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
        results[run.id] = macro_accuracy(torch.cat(logits), torch.cat(labels))
    return results


# ------------------------------------------------------------------------------------------ stacked runs


def stacked(arrays: Path, train_index: np.ndarray, test_index: np.ndarray, runs: list[RunSpec], config: SGDConfig,
            device: str) -> dict[RunId, float]:
    """Every run at once, as one stacked model (what the pipeline's training jobs do)."""
    data = ImageDataset.load(arrays)
    images, labels = torch.from_numpy(data.x_train), torch.from_numpy(data.y_train)
    model = init_models(runs)
    train_stacked(model, images[train_index], labels[train_index], runs, config, n_classes=10, transform=normalise,
                  device=device)
    logits = predict_logits(model, images[test_index], transform=normalise).cpu()
    return {run.id: macro_accuracy(logits[g], labels[test_index]) for g, run in enumerate(runs)}


# ------------------------------------------------------------------------------------------ processes


def _one_thread(args) -> dict[RunId, float]:
    method, *method_args = args
    torch.set_num_threads(1)
    return method(*method_args)


def per_loss_processes(method, source, train_index, test_index, runs, config, device) -> dict[RunId, float]:
    """``method`` in one single-threaded process per loss, side by side: the pipeline's two training jobs (so the
    stacked numbers are the pipeline's, bit for bit), or two classic loops sharing the cores the same way."""
    import multiprocessing

    jobs = [(method, source, train_index, test_index, [run for run in runs if run.loss == loss], config, device)
            for loss in LOSSES]
    results = {}
    with ProcessPoolExecutor(len(jobs), mp_context=multiprocessing.get_context("spawn")) as pool:
        for part in pool.map(_one_thread, jobs):
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


def summary(results: dict[RunId, float]) -> str:
    parts = []
    for loss in LOSSES:
        values = [100 * v for k, v in results.items() if k.loss == loss]
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        parts.append(f"{loss} {statistics.mean(values):.2f}±{spread:.2f}")
    return ", ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--skip-classic-threads", action="store_true",
                        help="skip the single-threaded classic loop (its one-process variant)")
    parser.add_argument("--classic-processes", action="store_true",
                        help="also time two classic loops side by side, one per loss, one thread each")
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
        arrays = Path(tmp) / "arrays.npz"
        data.save(arrays)
        common = (split.train, split.test, runs, config, args.device)
        side_by_side = args.device == "cpu" and (cores or 1) >= len(LOSSES)
        # (label, torch threads of this process, function, its data source); per-loss workers set 1 thread each
        variants = [(f"classic DataLoader loop, one model at a time, {default_threads} thread(s)", default_threads,
                     classic, Path(tmp))]
        if not args.skip_classic_threads and default_threads > 1:
            variants.append(("classic DataLoader loop, one model at a time, 1 thread", 1, classic, Path(tmp)))
        if side_by_side and args.classic_processes:
            variants.append((f"classic DataLoader loop, {len(LOSSES)} processes × 1 thread (one per loss)",
                             default_threads, per_loss_processes, classic, Path(tmp)))
        variants.append((f"stacked runs, 1 process ({default_threads} thread(s))", default_threads, stacked, arrays))
        if side_by_side:
            variants.append((f"stacked runs, {len(LOSSES)} processes × 1 thread (one per loss, as the pipeline)",
                             default_threads, per_loss_processes, stacked, arrays))
        for label, threads, function, *source in variants:
            torch.set_num_threads(threads)
            seconds, cpu, result = timed(function, *source, *common)
            rows.append((label, seconds, cpu, result))
            print(f"{label}: {seconds:.1f} s", file=sys.stderr, flush=True)
        torch.set_num_threads(default_threads)
    one_at_a_time = min(seconds for name, seconds, _, _ in rows if name.startswith("classic") and "at a time" in name)
    fastest = min(seconds for name, seconds, _, _ in rows if name.startswith("classic"))
    load = os.getloadavg()[0]
    print(f"\nFaithful imbalanced MNIST sweep: {len(LOSSES)} losses × {args.seeds} seeds × {args.epochs} epochs, "
          f"LeNet, batch 64, {len(split.train)} training images; device {args.device}, {cores} cores "
          f"({platform.processor() or platform.machine()}), torch {torch.__version__}; load average at the end "
          f"{load:.1f} (other processes share the cores when this exceeds the core count)\n")
    print("| method | wall time [s] | CPU time [s] | speed-up vs classic, one model at a time | speed-up vs fastest "
          "classic | test macro acc. % (mean±std over seeds) |")
    print("|---|---|---|---|---|---|")
    for name, seconds, cpu, result in rows:
        print(f"| {name} | {seconds:.1f} | {cpu:.1f} | {one_at_a_time / seconds:.2f}× | {fastest / seconds:.2f}× | "
              f"{summary(result)} |")

if __name__ == "__main__":
    main()
