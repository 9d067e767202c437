"""Critic-based variational lower bounds on I(X;Y): MINE (Donsker–Varadhan), NWJ and InfoNCE.

All three share one critic family, the classifier's MLP read as a score for every label,

    T(x, y) = g(x)_y,        g = MLP(d, K, hidden=...),

and differ only in the bound they maximise. Each bound needs samples from the joint p(x, y) (the batch pairs
(x_i, y_i)) and from the product of marginals p(x)p(y) (the pairs (x_i, y_j), j ≠ i). Because Y is discrete,
the B × B score matrix S_ij = g(x_i)[y_j] never has to be built: a sum over partners j only depends on how many
of them carry each label, so

    Σ_{j ≠ i} exp S_ij = Σ_k c_ik exp g_k(x_i),     c_ik = n_k − [y_i = k]   (n_k = count of label k in the batch)

and *all* B(B − 1) in-batch pairs cost O(B·K). Which partners are used:

- **MINE / NWJ**: the off-diagonal pairs j ≠ i (leave-one-out label frequencies), so that every "negative" pair
  really is an independent draw from p(x)p(y). Keeping the diagonal would add the joint pairs to the marginal
  term and bias the estimate down by about (1/B)·E_p[e^T]. A batch of one has no other label; there the label
  itself stands in (that batch then carries no information and contributes a bound of ≈ 0).
- **InfoNCE**: all j, the positive included, as its bound requires (the 1/B in the log B cap comes from it).

Bounds (nats; E_p over joint pairs, E_q over product-of-marginals pairs):

- DV / MINE (Belghazi et al., 2018):  I ≥ E_p[T] − log E_q[e^T].
- NWJ (Nguyen, Wainwright & Jordan, 2010):  I ≥ E_p[T] − e^{−1}·E_q[e^T].
- InfoNCE (van den Oord et al., 2018):  I ≥ E[ (1/B) Σ_i log( e^{S_ii} / ((1/B) Σ_j e^{S_ij}) ) ] ≤ log B.

Two facts specific to a discrete Y, both [derived]:

1. **InfoNCE is the PC-softmax objective with the batch label frequencies as prior.** With p̂_k = n_k / B,
   (1/B) Σ_j e^{S_ij} = Σ_k p̂_k e^{g_k(x_i)}, so each InfoNCE term is g_{y_i}(x_i) − log Σ_k p̂_k e^{g_k(x_i)}
   = log PC_{y_i}(x_i) with π replaced by p̂. As B grows p̂ → π and InfoNCE → the PC-softmax bound
   E[log PC_y(x)]. Each term is ≤ −log p̂_{y_i}, so the ceiling is the entropy of the batch labels H(p̂)
   (≈ H(Y) − (K−1)/2B on average), never above the generic log B and far below it when B ≫ K.
2. **DV (MINE) ≤ the PC-softmax bound for the same critic.** With E_q over the true marginals,
   E_q[e^T] = E_x[Z(x)] with Z(x) = Σ_k π_k e^{g_k(x)}, and by Jensen log E_x[Z(x)] ≥ E_x[log Z(x)], hence
   E_p[T] − log E_x Z(x) ≤ E_p[g_y(x) − log Z(x)] = E[log PC_y(x)]. The PC-softmax (Barber–Agakov) bound
   normalises per x, DV only on average, so DV is never tighter. NWJ ≤ DV for any critic (log u ≤ u/e).

Training minimises −bound on each minibatch with :func:`softmax_mi.training.train` (best epoch on a validation
split carved from the training data). ``estimate`` evaluates the bound on held-out data in shuffled batches of
``train_config.batch_size``: the value of InfoNCE depends on that size (cap above), and the batched DV is
slightly below the full-sample DV (Jensen on the log of the batch mean); NWJ is linear in both expectations, so
batching does not bias it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from softmax_mi import losses
from softmax_mi.estimators.base import LabeledSample, MIEstimate, MIEstimator
from softmax_mi.models import MLP
from softmax_mi.training import TrainConfig, build_seeded, train

# ---------------------------------------------------------------------------------------------------------------
# Pure functions on a batch: ``scores`` = g(x) (B × K), ``y`` (B,) integer labels.
# ---------------------------------------------------------------------------------------------------------------


def joint_scores(scores: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """T(x_i, y_i) = g(x_i)[y_i] for every joint pair, (B,)."""
    return scores.gather(1, y[:, None]).squeeze(1)


def log_partner_label_frequencies(
    y: torch.Tensor, n_classes: int, *, include_self: bool, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """log of the fraction of in-batch partners j carrying label k, per example i (B × K; −inf where none).

    ``include_self=False``: partners j ≠ i (leave-one-out counts n_k − [y_i = k] over B − 1); with a batch of one
    there is no other partner, so the example pairs with itself. ``include_self=True``: all j, i.e. n_k / B.
    """
    batch_size = len(y)
    counts = torch.bincount(y, minlength=n_classes).to(dtype)
    partners = counts.expand(batch_size, n_classes)
    if include_self or batch_size == 1:
        return (partners / batch_size).log()
    own_label = F.one_hot(y, n_classes).to(partners)
    return ((partners - own_label) / (batch_size - 1)).log()


def log_mean_exp_over_partners(scores: torch.Tensor, y: torch.Tensor, *, include_self: bool) -> torch.Tensor:
    """log (mean over partners j of e^{S_ij}) per example i, (B,), in O(B·K) via the label counts."""
    log_freq = log_partner_label_frequencies(y, scores.shape[1], include_self=include_self, dtype=scores.dtype)
    return torch.logsumexp(scores + log_freq, dim=1)


def log_mean_exp(values: torch.Tensor) -> torch.Tensor:
    return torch.logsumexp(values, dim=0) - math.log(len(values))


def dv_bound(scores: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Donsker–Varadhan: E_p[T] − log E_q[e^T], E_q over the off-diagonal in-batch pairs."""
    log_marginal_term = log_mean_exp(log_mean_exp_over_partners(scores, y, include_self=False))
    return joint_scores(scores, y).mean() - log_marginal_term


def nwj_bound(scores: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """NWJ: E_p[T] − e^{−1}·E_q[e^T], E_q over the off-diagonal in-batch pairs (computed as e^{log-mean − 1})."""
    log_marginal_term = log_mean_exp(log_mean_exp_over_partners(scores, y, include_self=False))
    return joint_scores(scores, y).mean() - (log_marginal_term - 1.0).exp()


def infonce_bound(scores: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """InfoNCE: mean_i [S_ii − log (1/B) Σ_j e^{S_ij}] = mean log PC_y(x) with the batch label frequencies as π."""
    log_batch_prior = log_partner_label_frequencies(y, scores.shape[1], include_self=True, dtype=scores.dtype)[0]
    return joint_scores(losses.log_pc_softmax(scores, log_batch_prior), y).mean()


# ---------------------------------------------------------------------------------------------------------------
# Estimators
# ---------------------------------------------------------------------------------------------------------------


class CriticMI(MIEstimator):
    """Shared machinery: train the critic T(x, y) = g(x)_y to maximise a bound, report it on held-out batches."""

    def __init__(self, *, hidden: Sequence[int] = (100, 100, 100), train_config: TrainConfig = TrainConfig()):
        self.hidden = tuple(hidden)
        self.train_config = train_config
        self.critic: MLP | None = None
        self.train_steps = 0

    def bound(self, scores: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The lower bound on I(X;Y) (nats) evaluated on one batch; what ``estimate`` reports."""
        raise NotImplementedError

    def training_bound(self, scores: torch.Tensor, y: torch.Tensor, *, update_state: bool) -> torch.Tensor:
        """What training maximises. Its value must equal :meth:`bound` (validation selects on it); subclasses may
        change its gradient. ``update_state`` is False on validation passes."""
        return self.bound(scores, y)

    def reset_state(self) -> None:
        """Forget anything carried between training steps (called at the start of every ``fit``)."""

    def fit(self, train_data: LabeledSample) -> CriticMI:
        self.reset_state()
        self.critic = build_seeded(
            lambda: MLP(train_data.dim, train_data.n_classes, hidden=self.hidden), self.train_config.seed
        )

        def objective(critic, x, y):
            # training.train also calls this for validation, under no_grad with the model in eval mode.
            update_state = critic.training and torch.is_grad_enabled()
            return -self.training_bound(critic(x), y, update_state=update_state)

        self.train_steps = train(self.critic, objective, train_data, self.train_config).steps
        return self

    def evaluation_batches(self, n: int, device: str | torch.device) -> tuple[torch.Tensor, ...]:
        """Index sets of about equal size, at most ``batch_size``, over a seeded permutation of the test data.

        Shuffled because in-batch negatives assume each batch is an i.i.d. draw (a class-sorted test file would
        make every batch single-label); equal sizes so that no short remainder batch with a lower InfoNCE cap
        drags the mean down."""
        generator = torch.Generator().manual_seed(self.train_config.seed)
        order = torch.randperm(n, generator=generator).to(device)
        n_batches = max(1, math.ceil(n / self.train_config.batch_size))
        return torch.tensor_split(order, n_batches)

    @torch.no_grad()
    def estimate(self, test: LabeledSample) -> MIEstimate:
        if self.critic is None:
            raise RuntimeError(f"{type(self).__name__}.estimate called before fit")
        if len(test) == 0:
            raise ValueError("cannot estimate MI on an empty sample")
        self.critic.eval()
        test = test.to(self.train_config.device)
        batches = self.evaluation_batches(len(test), test.y.device)
        sizes = torch.tensor([len(index) for index in batches], dtype=torch.float64)
        values = torch.stack([self.bound(self.critic(test.x[index]), test.y[index]).double() for index in batches])
        return MIEstimate(
            value=float((values.cpu() * sizes).sum() / sizes.sum()),
            details={
                "train_steps": self.train_steps,
                "batch_size": int(sizes.min()),  # the smallest evaluation batch: it sets InfoNCE's log B cap
                "eval_batches": len(batches),
            },
        )


class MINE(CriticMI):
    """Donsker–Varadhan bound E_p[T] − log E_q[e^T], trained with MINE's bias-corrected gradient.

    The minibatch gradient of log E_q[e^T] is ∇E_q[e^T] / E_q[e^T], biased because the denominator is itself a
    minibatch mean. Belghazi et al. (2018, §3.2) replace that denominator by an exponential moving average of
    E_q[e^T] over training batches (decay ``ema_decay``). The EMA lives on the estimator, is kept in the log
    domain (e^T overflows for confident critics) and is reset at every ``fit``. Estimates report the plain DV bound.
    """

    name = "mine"

    def __init__(
        self,
        *,
        hidden: Sequence[int] = (100, 100, 100),
        train_config: TrainConfig = TrainConfig(),
        ema_decay: float = 0.99,
    ):
        super().__init__(hidden=hidden, train_config=train_config)
        if not 0.0 <= ema_decay < 1.0:
            raise ValueError(f"ema_decay must lie in [0, 1), not {ema_decay}")
        self.ema_decay = ema_decay
        self.log_marginal_ema: torch.Tensor | None = None

    def reset_state(self) -> None:
        self.log_marginal_ema = None

    def bound(self, scores, y):
        return dv_bound(scores, y)

    def training_bound(self, scores, y, *, update_state):
        if not update_state:
            return dv_bound(scores, y)
        log_marginal_term = log_mean_exp(log_mean_exp_over_partners(scores, y, include_self=False))
        self.log_marginal_ema = self.updated_log_ema(log_marginal_term.detach())
        # ∇(batch mean / EMA) = (batch mean / EMA)·∇log(batch mean): the corrected gradient of the log term.
        # Adding it as (r − r.detach()) and the log term detached keeps the forward value equal to the DV bound,
        # so training logs and validation read the same quantity.
        ratio = (log_marginal_term - self.log_marginal_ema).exp()
        return joint_scores(scores, y).mean() - log_marginal_term.detach() - (ratio - ratio.detach())

    def updated_log_ema(self, log_batch_mean: torch.Tensor) -> torch.Tensor:
        """log of decay·EMA + (1 − decay)·batch mean; the first batch initialises the EMA."""
        if self.log_marginal_ema is None or self.ema_decay == 0.0:
            return log_batch_mean
        return torch.logaddexp(
            self.log_marginal_ema + math.log(self.ema_decay), log_batch_mean + math.log1p(-self.ema_decay)
        )


class NWJ(CriticMI):
    """NWJ ("MINE-f") bound E_p[T] − e^{−1}·E_q[e^T]: unbiased minibatch gradients, but higher variance than DV."""

    name = "nwj"

    def bound(self, scores, y):
        return nwj_bound(scores, y)


class InfoNCE(CriticMI):
    """InfoNCE / CPC bound with in-batch negatives; ≤ log B for batch size B (here, ≤ the batch label entropy).

    The estimate depends on ``train_config.batch_size``: it is evaluated in test batches of (at most) that size.
    """

    name = "infonce"

    def bound(self, scores, y):
        return infonce_bound(scores, y)

    def estimate(self, test: LabeledSample) -> MIEstimate:
        result = super().estimate(test)
        result.details["log_batch_cap"] = math.log(result.details["batch_size"])
        return result
