"""Label shift on Part 1's Gaussian task, where the truth under any test prior q is exact.

x | y ~ N(μ_y·**1**, I_d) with every mean on the all-ones direction: the likelihood ratios depend on x only through
s = x·**1**/√d, and s | y ~ N(a_y, 1) with a_y = μ_y·√d (the other d − 1 coordinates are the same standard normal
for every class). So the Bayes-optimal accuracy under q, I(X;Y) under q and the KL between two label mixtures are
1-D integrals over s (:class:`GaussianShiftTruth`, trapezoid rule on a fine grid; checked against Monte Carlo in
``tests/test_label_shift.py``).

:func:`evaluate_gaussian_shift` runs every rule of the study on classifiers already fitted on the task (Part 1's
``softmax`` / ``pc_softmax`` estimators) against fresh, seeded test draws from the known class-conditionals under
each q, beside the exact truth and the Bayes rule on the same draws.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from scipy.special import logsumexp

from softmax_mi.data.synthetic import GaussianMixtureTask
from softmax_mi.label_shift.evaluate import evaluate_shift
from softmax_mi.label_shift.priors import shifted_prior, subset_sizes
from softmax_mi.label_shift.rules import RULES, prior_weight
from softmax_mi.runtime import derive_seed


@dataclass(frozen=True)
class GaussianShiftTruth:
    """Exact quantities of a :class:`~softmax_mi.data.synthetic.GaussianMixtureTask` under a label prior, by 1-D
    quadrature over s = x·**1**/√d (module docstring); ``points`` grid points over [min a − 12, max a + 12].

    Example::

        truth = GaussianShiftTruth(GaussianMixtureTask(dim=2, class_counts=(1, 1, 1, 1, 1)))
        truth.bayes_accuracy([0.5, 0.2, 0.2, 0.05, 0.05]), truth.mutual_information([0.2] * 5)   # fraction, nats
    """

    task: GaussianMixtureTask
    points: int = 40001

    def _grid(self) -> tuple[np.ndarray, np.ndarray]:
        centres = self.task.means[:, 0] * math.sqrt(self.task.dim)
        s = np.linspace(centres.min() - 12.0, centres.max() + 12.0, self.points)
        log_density = -0.5 * (s[:, None] - centres[None, :]) ** 2 - 0.5 * math.log(2 * math.pi)
        return s, log_density

    def _prior(self, prior: Sequence[float]) -> np.ndarray:
        q = np.asarray(prior, dtype=np.float64)
        if q.shape != (self.task.n_classes,) or (q < 0).any() or abs(q.sum() - 1) > 1e-9:
            raise ValueError(f"prior must be {self.task.n_classes} non-negative numbers summing to 1, got {prior}")
        return q

    def bayes_accuracy(self, prior: Sequence[float]) -> float:
        """Accuracy of the Bayes rule argmax_y q_y p(x|y) on data drawn with prior q: ∫ max_y q_y φ(s − a_y) ds."""
        s, log_density = self._grid()
        return float(np.trapezoid(np.max(self._prior(prior) * np.exp(log_density), axis=1), s))

    def mutual_information(self, prior: Sequence[float]) -> float:
        """I(X;Y) under prior q, nats: Σ_y q_y ∫ φ(s − a_y) [log φ(s − a_y) − log Σ_k q_k φ(s − a_k)] ds."""
        s, log_density = self._grid()
        q = self._prior(prior)
        with np.errstate(divide="ignore"):
            log_marginal = logsumexp(log_density + np.log(q), axis=1)
        integrand = (np.exp(log_density) * (log_density - log_marginal[:, None])) @ q
        return float(np.trapezoid(integrand, s))

    def marginal_kl(self, prior: Sequence[float], reference: Sequence[float]) -> float:
        """KL(p_q(X) ‖ p_r(X)) between the x-marginals of the mixtures with label priors q and r, nats."""
        s, log_density = self._grid()
        with np.errstate(divide="ignore"):
            log_p = logsumexp(log_density + np.log(self._prior(prior)), axis=1)
            log_r = logsumexp(log_density + np.log(self._prior(reference)), axis=1)
        return float(np.trapezoid(np.exp(log_p) * (log_p - log_r), s))

    def softmax_readout_bias(self, prior: Sequence[float], train_prior: Sequence[float]) -> float:
        """The limit of (paper's softmax read-out log K − CE, of a Bayes-optimal softmax model trained under π,
        evaluated on data drawn with q) − I(X;Y) under q, nats:
        KL(q ‖ 1/K) − KL(q ‖ π) + KL(p_q(X) ‖ p_π(X)) (docs/label_shift.md)."""
        q, pi = self._prior(prior), self._prior(train_prior)
        k = len(q)
        kl_uniform = float(np.sum(q * np.log(np.where(q > 0, q * k, 1.0))))
        kl_train = float(np.sum(q * np.log(np.where(q > 0, q / pi, 1.0))))
        return kl_uniform - kl_train + self.marginal_kl(q, pi)


class FittedClassifier(Protocol):
    """What :func:`evaluate_gaussian_shift` needs of a trained classifier: its estimator name (``softmax`` |
    ``pc_softmax``), base seed, training class counts and ``logits(x)`` → (N, K)."""

    estimator: str
    seed: int
    train_counts: Sequence[int]

    def logits(self, x: np.ndarray) -> Any: ...


@dataclass(frozen=True)
class InMemoryClassifier:
    """A :class:`FittedClassifier` around a fitted :class:`~softmax_mi.estimators.classifier.ClassifierMI`
    (``SoftmaxMI`` / ``PCSoftmaxMI``) held in memory."""

    estimator: str
    seed: int
    train_counts: tuple[int, ...]
    fitted: Any

    def logits(self, x: np.ndarray) -> np.ndarray:
        """The fitted model's logits on ``x`` (N, d), as float64 numpy."""
        import torch

        model = self.fitted.model
        model.eval()
        with torch.no_grad():
            device = next(model.parameters()).device
            return model(torch.as_tensor(x, dtype=torch.float32, device=device)).double().cpu().numpy()


def draw_seed(seed: int, purpose: str, task: GaussianMixtureTask, *labels: Any) -> int:
    """The seed of one fresh draw of the study on ``task``: the same for every classifier of one base seed."""
    spec = {"dim": task.dim, "class_counts": list(task.class_counts), "mean_unit": task.mean_unit}
    return derive_seed(seed, "label_shift", purpose, spec, *labels)


def evaluate_gaussian_shift(classifiers: Sequence[FittedClassifier], task: GaussianMixtureTask,
                            priors: Sequence[tuple[str, float, str]], *, test_size: int, val_size: int,
                            n_draws: int, rules: Sequence[str] = RULES, tau: float = 1.0, em: dict | None = None,
                            bbse: dict | None = None, shots: Sequence[int] = (20, 100), bins: int = 15,
                            progress: Callable[[str], None] | None = None) -> list[dict]:
    """One row per classifier × test prior × draw × rule on fresh draws from ``task`` (long format).

    ``priors``: (profile, ratio, decay) of :func:`~softmax_mi.label_shift.priors.shifted_prior`, ranked by the
    task's training counts. Per classifier seed and prior, ``n_draws`` test sets of ``test_size`` examples with
    exactly round(test_size·q_y) of class y, and one validation set of ``val_size`` with the training proportions
    (BBSE's confusion matrix), all seeded by (seed, task, prior, draw): the classifiers of one seed see the same
    draws. Each row also holds the exact Bayes accuracy and I(X;Y) under q, and the Bayes rule's accuracy and the
    plug-in MI on the same draw, and ``blind_bias``: the limit of the shift-blind read-out (the ``argmax`` row's
    ``mi_estimate``) minus the truth for a Bayes-optimal model (:meth:`GaussianShiftTruth.softmax_readout_bias` for
    softmax, KL(p_q(X) ‖ p_π(X)) for PC-softmax read with π).
    """
    truth = GaussianShiftTruth(task)
    counts = np.asarray(task.class_counts)
    exact = {}
    for spec in priors:
        q = shifted_prior(counts, *spec)
        exact[spec] = (q, truth.bayes_accuracy(q), truth.mutual_information(q),
                       {"softmax": truth.softmax_readout_bias(q, task.prior),
                        "pc_softmax": truth.marginal_kl(q, task.prior)})
    rows = []
    for seed in sorted({int(classifier.seed) for classifier in classifiers}):
        val = ShiftedDraws.validation(task, seed, val_size)
        of_seed = [c for c in classifiers if int(c.seed) == seed]
        val_logits = [val.logits(c).expand(n_draws, -1, -1) for c in of_seed]
        for spec in priors:
            q, bayes_acc, mi_true, blind_bias = exact[spec]
            draws = ShiftedDraws.test(task, seed, spec, q, test_size, n_draws)
            for classifier, classifier_val in zip(of_seed, val_logits):
                results = evaluate_shift(draws.logits(classifier), draws.y, counts,
                                         [prior_weight(classifier.estimator)] * n_draws, q, rules,
                                         val_logits=classifier_val, val_labels=val.y,
                                         tau=tau, em=em, bbse=bbse, shots=shots, bins=bins)
                common = {"estimator": classifier.estimator, "seed": seed, "profile": spec[0],
                          "ratio": float(spec[1]), "decay": spec[2], "n_test": draws.y.shape[1],
                          "n_val": val.y.shape[1], "bayes_acc": bayes_acc, "mi_true": mi_true, "q_true": q.tolist(),
                          "blind_bias": blind_bias.get(classifier.estimator, math.nan)}
                for rule, metrics in results.items():
                    for d in range(n_draws):
                        rows.append({**common, "draw": d, "rule": rule,
                                     **{name: float(value[d]) for name, value in metrics.items() if name != "prior"},
                                     "q_estimated": metrics["prior"][d].tolist(),
                                     "bayes_acc_sample": float(draws.oracle_acc[d]),
                                     "mi_true_sample": float(draws.oracle_mi[d])})
                if progress:
                    progress(f"{classifier.estimator} seed {seed} {spec[0]} ρ={spec[1]:g}: known-q accuracy "
                             f"{results.get('known_q', results[rules[0]])['micro_acc'].mean():.4f} vs Bayes "
                             f"{bayes_acc:.4f}")
    return rows


@dataclass(frozen=True)
class ShiftedDraws:
    """Fresh seeded draws from a Gaussian task: x (D, N, d), y (D, N), and the Bayes rule's accuracy and the plug-in
    MI log p(x|y) − log Σ_k q_k p(x|k) on each (oracle_acc, oracle_mi: (D,))."""

    x: np.ndarray
    y: np.ndarray
    oracle_acc: np.ndarray
    oracle_mi: np.ndarray

    @classmethod
    def draw(cls, task: GaussianMixtureTask, sizes: tuple[int, ...], q: np.ndarray, seeds: list[int]) -> ShiftedDraws:
        samples = [task.sample(sizes, np.random.default_rng(seed)) for seed in seeds]
        x = np.stack([x for x, _ in samples])
        y = np.stack([y for _, y in samples])
        log_joint = task.log_likelihood(x.reshape(-1, task.dim)).reshape(*y.shape, -1) + np.log(q)
        own = np.take_along_axis(log_joint, y[..., None], -1)[..., 0] - np.log(q)[y]
        return cls(x, y, (log_joint.argmax(-1) == y).mean(-1), (own - logsumexp(log_joint, axis=-1)).mean(-1))

    @classmethod
    def test(cls, task: GaussianMixtureTask, seed: int, spec: tuple, q: np.ndarray, size: int,
             n_draws: int) -> ShiftedDraws:
        """``n_draws`` test sets of ``size`` examples, exactly round(size·q_y) of class y each."""
        sizes = tuple(subset_sizes(np.full(len(q), size), q, size))
        return cls.draw(task, sizes, q, [draw_seed(seed, "test", task, *spec, d) for d in range(n_draws)])

    @classmethod
    def validation(cls, task: GaussianMixtureTask, seed: int, size: int) -> ShiftedDraws:
        """One labelled validation set of ``size`` examples with the training proportions."""
        prior = np.asarray(task.prior)
        return cls.draw(task, tuple(subset_sizes(np.full(len(prior), size), prior, size)), prior,
                        [draw_seed(seed, "val", task)])

    def logits(self, classifier: FittedClassifier):
        """The classifier's logits on every draw, (D, N, K) torch float32."""
        import torch

        flat = np.asarray(classifier.logits(self.x.reshape(-1, self.x.shape[-1])), dtype=np.float32)
        return torch.from_numpy(flat.reshape(*self.y.shape, -1))
