"""Decision rules under a test prior q, and the estimators of an unknown q from unlabelled test logits.

Every function takes a batch of B models or test draws at once: logits (B, N, K), priors (B, K) or (K,); no
per-example loops.

**Prior-free logits.** A model's logits f carry its training prior π to a power w, the *prior weight*
(:func:`prior_weight`): softmax cross-entropy learns softmax(f) ≈ p_π(y|x), so f ≈ log p(x|y) + log π_y + c(x)
(w = 1); PC-softmax learns f ≈ log p(x|y) − log p(x) + c, free of π (w = 0); logit adjustment with τ learns
f ≈ … + (1 − τ)·log π (w = 1 − τ). ``g = f − w·log π`` (:func:`prior_free_logits`) removes it; the posterior under
any prior p is then softmax(g + log p) and the Bayes rule under q is argmax g + log q, which is
``f + log q − log π`` for softmax-trained and ``f + log q`` for PC-softmax-trained logits.

**Rules** (:data:`RULES`): ``argmax`` (the model's own argmax f, posterior softmax f), ``known_q`` (g + log q),
``em`` and ``bbse`` (g + log q̂, q̂ estimated by :func:`em_prior` / :func:`bbse_prior`), ``posthoc_la`` (the q-blind
control g + (1 − τ)·log π: Menon et al.'s f − τ·log π on softmax-trained logits).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from softmax_mi.registry import SHIFT_RULES as RULES

# losses whose logits carry the training prior at a fixed power (softmax_mi.registry.LOSSES); the re-weighted
# losses (class_balanced, ldam_drw) target a balanced posterior only approximately: read as w = 0
PRIOR_WEIGHTS = {"softmax": 1.0, "pc_softmax": 0.0, "class_balanced": 0.0, "ldam_drw": 0.0}


def softmax(logits: torch.Tensor) -> torch.Tensor:
    """Softmax over the last axis, written out: several times faster than ``torch.softmax`` on CPU for the few-class,
    many-row tensors of this study."""
    exp = (logits - logits.amax(dim=-1, keepdim=True)).exp()
    return exp / exp.sum(dim=-1, keepdim=True)


def log_softmax(logits: torch.Tensor) -> torch.Tensor:
    """Log-softmax over the last axis (``logits − logsumexp``; faster than ``torch.log_softmax`` here, as above)."""
    return logits - torch.logsumexp(logits, dim=-1, keepdim=True)


def prior_weight(loss: str, tau: float | None = None) -> float:
    """The power w of the training prior in the logits of a model trained with ``loss`` (module docstring):
    softmax 1, pc_softmax 0, logit_adjusted 1 − τ; class_balanced and ldam_drw 0 (approximately balanced)."""
    if loss == "logit_adjusted":
        if tau is None or tau != tau:
            raise ValueError("logit_adjusted needs its tau to know the prior its logits carry")
        return 1.0 - float(tau)
    if loss not in PRIOR_WEIGHTS:
        raise ValueError(f"no prior weight for loss {loss!r}; known: logit_adjusted, {', '.join(PRIOR_WEIGHTS)}")
    return PRIOR_WEIGHTS[loss]


def prior_free_logits(logits: torch.Tensor, log_train_prior: torch.Tensor,
                      weight: torch.Tensor | float) -> torch.Tensor:
    """g = f − w·log π for logits (B, N, K), log π (K,) or (B, K), w a float or (B,)."""
    weight = torch.as_tensor(weight, dtype=logits.dtype, device=logits.device).reshape(-1, 1, 1)
    return logits - weight * _batched(log_train_prior, logits)[:, None, :]


def _batched(prior: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """A (K,) or (B, K) prior as (B, K) in the dtype and device of ``logits`` (B, N, K)."""
    prior = torch.as_tensor(prior).to(logits)
    return prior.expand(logits.shape[0], -1) if prior.dim() == 1 else prior


def em_prior(prior_free: torch.Tensor, log_start: torch.Tensor, *, tol: float = 1e-5, max_iter: int = 500,
             floor: float = 1e-6) -> tuple[torch.Tensor, int]:
    """Saerens, Latinne & Decaestecker (2002): the test prior q̂ (B, K) that maximises the likelihood of the
    unlabelled test logits, by EM from the start prior (the training prior π: ``log_start`` (K,) or (B, K)).

    E-step: posteriors softmax(g + log q̂); M-step: q̂ = their mean over the test examples, floored at ``floor`` and
    renormalised (a class the posteriors abandon stays recoverable). Stops when every draw moved less than ``tol``
    in L1, or after ``max_iter`` steps; returns q̂ and the steps taken. Assumes calibrated posteriors.
    """
    log_q = _batched(log_start, prior_free).clone()
    step = 0
    for step in range(1, max_iter + 1):
        q_new = softmax(prior_free + log_q[:, None, :]).mean(dim=1, dtype=torch.float64).clamp_min(floor)
        q_new = q_new / q_new.sum(dim=-1, keepdim=True)
        moved = float((q_new - log_q.exp()).abs().sum(dim=-1).max())
        log_q = q_new.log().to(prior_free.dtype)
        if moved < tol:
            break
    return log_q.exp(), step


def confusion(predicted: torch.Tensor, labels: torch.Tensor, n_classes: int) -> torch.Tensor:
    """P(ŷ = i | y = j), (B, K, K), from hard predictions (B, N) and labels (B, N) or (N,); a class absent from the
    labels has a uniform column."""
    labels = labels.expand_as(predicted)
    joint = torch.zeros(predicted.shape[0], n_classes * n_classes, dtype=torch.float64, device=predicted.device)
    joint.scatter_add_(1, predicted * n_classes + labels, torch.ones_like(predicted, dtype=torch.float64))
    joint = joint.reshape(-1, n_classes, n_classes)
    totals = joint.sum(dim=1, keepdim=True)
    return torch.where(totals > 0, joint / totals.clamp_min(1), torch.full_like(joint, 1.0 / n_classes))


def bbse_prior(val_logits: torch.Tensor, val_labels: torch.Tensor, test_logits: torch.Tensor, *,
               floor: float = 1e-6) -> torch.Tensor:
    """Black-box shift estimation (Lipton, Wang & Smola 2018): q̂ (B, K) from the confusion matrix of the model's
    hard predictions (argmax of its raw logits) on a labelled validation split and their distribution on the
    unlabelled test logits: solve C q = μ̂ with C_ij = P_val(ŷ = i | y = j), μ̂_i = P_test(ŷ = i) by least squares,
    clip to ≥ 0, floor at ``floor`` and renormalise. Any fixed classifier works; its accuracy sets the variance.
    """
    k = test_logits.shape[-1]
    matrix = confusion(val_logits.argmax(-1), val_labels, k)
    predicted = test_logits.argmax(-1)
    mu = torch.zeros(predicted.shape[0], k, dtype=torch.float64, device=predicted.device)
    mu.scatter_add_(1, predicted, torch.ones_like(predicted, dtype=torch.float64))
    mu = mu / predicted.shape[1]
    solution = torch.linalg.lstsq(matrix, mu[:, :, None], driver="gelsd" if matrix.device.type == "cpu" else None)
    q = solution.solution[:, :, 0].clamp_min(0)
    q = torch.where(q.sum(-1, keepdim=True) > 0, q, torch.full_like(q, 1.0 / k)).clamp_min(floor)
    return (q / q.sum(-1, keepdim=True)).to(test_logits.dtype)


@dataclass(frozen=True)
class RuleResult:
    """One rule on a batch: ``decision`` logits (B, N, K), whose argmax is the prediction and whose softmax is the
    rule's posterior; ``prior`` (B, K) the test prior it assumes (None: the rule sets none); ``mi_terms`` (B, N) the
    per-example MI read-out under that prior (None: none)."""

    decision: torch.Tensor
    prior: torch.Tensor | None
    mi_terms: torch.Tensor | None


def mi_terms(prior_free: torch.Tensor, labels: torch.Tensor, log_prior: torch.Tensor) -> torch.Tensor:
    """The paper's MI read-out with ``log_prior`` as the label prior, per example (B, N), nats:
    log softmax(g + log p)_y − log p_y = g_y − log Σ_k p_k exp g_k (log PC_y with p in place of π). Its mean over a
    test set drawn with prior q, with p = q, estimates I(X;Y) under q."""
    log_prior = _batched(log_prior, prior_free)
    labels = labels.expand(prior_free.shape[:2])
    own = prior_free.gather(-1, labels[..., None])[..., 0]
    return own - torch.logsumexp(prior_free + log_prior[:, None, :], dim=-1)


def paper_readout(logits: torch.Tensor, labels: torch.Tensor, log_train_prior: torch.Tensor,
                  weight: torch.Tensor) -> torch.Tensor:
    """The model's MI read-out as the paper takes it, blind to the shift, per example (B, N): softmax-trained
    (w = 1) log softmax(f)_y + log K; any other loss log PC_y with the training prior π."""
    labels = labels.expand(logits.shape[:2])
    softmax_terms = log_softmax(logits).gather(-1, labels[..., None])[..., 0] + math.log(logits.shape[-1])
    pc_terms = mi_terms(prior_free_logits(logits, log_train_prior, weight), labels, log_train_prior)
    is_softmax = (torch.as_tensor(weight, device=logits.device).reshape(-1, 1) == 1)
    return torch.where(is_softmax, softmax_terms, pc_terms)


def apply_rules(rules: tuple[str, ...] | list[str], logits: torch.Tensor, labels: torch.Tensor,
                log_train_prior: torch.Tensor, weight: torch.Tensor, test_prior: torch.Tensor, *,
                val_logits: torch.Tensor | None = None, val_labels: torch.Tensor | None = None, tau: float = 1.0,
                em: dict | None = None, bbse: dict | None = None) -> dict[str, RuleResult]:
    """Every rule of ``rules`` (:data:`RULES`) on test logits (B, N, K) with labels (B, N) (used only for the MI
    read-outs, never by a rule). ``weight`` (B,): the prior weights (:func:`prior_weight`); ``test_prior`` (K,) or
    (B, K): the true q (used by ``known_q`` only); ``val_logits``/``val_labels``: the labelled validation split of
    each model (``bbse`` only); ``tau``: ``posthoc_la``'s τ; ``em``/``bbse``: keyword settings of :func:`em_prior` /
    :func:`bbse_prior`."""
    unknown = sorted(set(rules) - set(RULES))
    if unknown:
        raise ValueError(f"unknown rules {unknown}; choose from {', '.join(RULES)}")
    g = prior_free_logits(logits, log_train_prior, weight)
    log_pi = _batched(log_train_prior, logits)
    out: dict[str, RuleResult] = {}
    for rule in rules:
        if rule == "argmax":
            out[rule] = RuleResult(logits, None, paper_readout(logits, labels, log_train_prior, weight))
            continue
        if rule == "posthoc_la":
            out[rule] = RuleResult(g + (1.0 - tau) * log_pi[:, None, :], None, None)
            continue
        if rule == "known_q":
            prior = _batched(test_prior, logits)
        elif rule == "em":
            prior, _ = em_prior(g, log_pi, **(em or {}))
        else:
            if val_logits is None or val_labels is None:
                raise ValueError("the bbse rule needs val_logits and val_labels (a labelled validation split)")
            prior = bbse_prior(val_logits, val_labels, logits, **(bbse or {}))
        log_prior = prior.log()
        out[rule] = RuleResult(g + log_prior[:, None, :], prior, mi_terms(g, labels, log_prior))
    return out
