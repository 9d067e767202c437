"""Do the benchmark's standard errors match the real spread of the estimates? (softmax_mi.benchmark.intervals)

Critic bounds: fixed critics (the 5-class Gaussian task's log-likelihoods, d = 2, as they are and halved + 1), many
fresh test sets, the batched bound's standard deviation across sets against the mean influence standard error.
kNN (Ross 2014, k = 3): fresh samples, the estimate's standard deviation against the mean batch-means standard
error (10 subsets) and the naive per-point CLT standard error.

    python bench/benchmark_intervals.py                    # 400 critic sets, 150 kNN samples
"""

from __future__ import annotations

import argparse
import math

import numpy as np
import torch
from scipy.special import digamma

from softmax_mi.benchmark.intervals import batched_standard_error, critic_influence, knn_standard_error
from softmax_mi.data.synthetic import GaussianMixtureTask
from softmax_mi.estimators.knn import neighbours_within, own_class_size, ross_mi, same_class_radius
from softmax_mi.estimators.variational import dv_bound, infonce_bound, nwj_bound

BOUNDS = {"mine": dv_bound, "nwj": nwj_bound, "infonce": infonce_bound}


def draw(task: GaussianMixtureTask, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, task.n_classes, n)
    return task.means[y] + rng.standard_normal((n, task.dim)), y


def critics(repeats: int) -> None:
    task = GaussianMixtureTask(2, (1,) * 5)
    for scale, shift in ((1.0, 0.0), (0.5, 1.0)):
        for n, batch in ((800, 200), (2000, 500)):
            values, errors = {name: [] for name in BOUNDS}, {name: [] for name in BOUNDS}
            for repeat in range(repeats):
                x, y = draw(task, n, repeat)
                scores, labels = torch.tensor(task.log_likelihood(x)) * scale + shift, torch.tensor(y)
                batches = torch.arange(n).split(batch)
                for name, bound in BOUNDS.items():
                    values[name].append(np.mean([float(bound(scores[i], labels[i])) for i in batches]))
                    errors[name].append(batched_standard_error([critic_influence(name, scores[i], labels[i])
                                                                for i in batches]))
            for name in BOUNDS:
                ratio = np.mean(errors[name]) / np.std(values[name])
                print(f"critic ×{scale} +{shift}  n {n:5d}  B {batch}  {name:8s} sd {np.std(values[name]):.4f}  "
                      f"mean se {np.mean(errors[name]):.4f}  se/sd {ratio:.3f}")


def knn(repeats: int) -> None:
    for dim in (2, 5):
        task = GaussianMixtureTask(dim, (1,) * 5)
        for n in (500, 2000):
            values, batch_means, naive = [], [], []
            for repeat in range(repeats):
                x, y = draw(task, n, repeat)
                values.append(ross_mi(x, y, 3)[0])
                batch_means.append(knn_standard_error(lambda a, b: ross_mi(a, b, 3)[0], x, y, seed=repeat)[0])
                radius, k_used = same_class_radius(x, y, 3)
                neighbours = neighbours_within(x, radius)
                terms = digamma(n) - digamma(own_class_size(y)) + digamma(k_used) - digamma(neighbours)
                naive.append(terms.std(ddof=1) / math.sqrt(n))
            spread = np.std(values)
            print(f"knn d {dim}  n {n:5d}  sd {spread:.4f}  batch-means se {np.mean(batch_means):.4f} "
                  f"(se/sd {np.mean(batch_means) / spread:.3f})  per-point CLT se {np.mean(naive):.4f} "
                  f"(se/sd {np.mean(naive) / spread:.3f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--critic-repeats", type=int, default=400)
    parser.add_argument("--knn-repeats", type=int, default=150)
    args = parser.parse_args()
    torch.set_num_threads(1)
    critics(args.critic_repeats)
    knn(args.knn_repeats)


if __name__ == "__main__":
    main()
