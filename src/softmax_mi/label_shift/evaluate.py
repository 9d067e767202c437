"""Every rule and metric of the study on one batch of shifted test sets: the one call both data paths make."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from softmax_mi.label_shift.metrics import ECE_BINS, SHOTS, prior_errors, rule_metrics
from softmax_mi.label_shift.rules import RULES, apply_rules

NAN_COLUMNS = ("q_l1", "q_kl", "mi_estimate")


def evaluate_shift(logits, labels, train_counts: Sequence[float], weight, test_prior: Sequence[float],
                   rules: Sequence[str] | None = None, *, val_logits=None, val_labels=None, tau: float = 1.0,
                   em: dict | None = None, bbse: dict | None = None, shots: Sequence[int] = SHOTS,
                   bins: int = ECE_BINS) -> dict[str, dict[str, np.ndarray]]:
    """Each rule's metrics on B shifted test sets: ``logits`` (B, N, K) of models whose training class counts are
    ``train_counts`` (K,) and prior weights ``weight`` (B,) (:func:`~softmax_mi.label_shift.rules.prior_weight`),
    ``labels`` (B, N) drawn with prior ``test_prior`` q (K,). ``rules``: default every rule of
    :data:`~softmax_mi.label_shift.rules.RULES` the inputs allow (``bbse`` needs ``val_logits`` (B, Nv, K) and
    ``val_labels`` (Nv,) or (B, Nv): a labelled validation split with the training prior or any known one).

    Returns ``{rule: {metric: (B,) array}}`` with the metrics of
    :func:`~softmax_mi.label_shift.metrics.rule_metrics`, ``q_l1``/``q_kl`` (0 for ``known_q``, NaN for the rules that
    set no prior), ``mi_estimate`` (nats: the MI read-out under the rule's prior, NaN for ``posthoc_la``) and
    ``prior`` ((B, K), NaN rows for the rules that set no prior).

    Example::

        out = evaluate_shift(logits[None], labels[None], train_counts, [0.0], q, rules=["argmax", "known_q", "em"])
        out["known_q"]["micro_acc"][0], out["em"]["q_l1"][0]
    """
    logits = torch.as_tensor(logits, dtype=torch.float32)  # float32: several times faster on CPU
    labels = torch.as_tensor(labels, dtype=torch.long).expand(logits.shape[:2])
    counts = torch.as_tensor(train_counts, dtype=torch.float64)
    log_pi = (counts / counts.sum()).log().float()
    weight = torch.as_tensor(weight, dtype=torch.float32).reshape(-1).expand(logits.shape[0])
    q = torch.as_tensor(np.asarray(test_prior), dtype=torch.float32)
    if val_logits is not None:
        val_logits = torch.as_tensor(val_logits, dtype=torch.float32)
        val_labels = torch.as_tensor(val_labels, dtype=torch.long)
    if rules is None:
        rules = [rule for rule in RULES if rule != "bbse" or val_logits is not None]
    results = apply_rules(list(rules), logits, labels, log_pi, weight, q, val_logits=val_logits,
                          val_labels=val_labels, tau=tau, em=em, bbse=bbse)
    out: dict[str, dict[str, np.ndarray]] = {}
    nan = np.full(logits.shape[0], np.nan)
    for rule, result in results.items():
        row = {name: value.double().cpu().numpy() for name, value in rule_metrics(result.decision, labels, counts,
                                                                         shots=shots, bins=bins).items()}
        row.update(dict.fromkeys(NAN_COLUMNS, nan))
        row["prior"] = np.full(logits.shape[:1] + logits.shape[2:], np.nan)
        if result.prior is not None:
            row.update({name: value.double().cpu().numpy()
                        for name, value in prior_errors(result.prior.double(), q.double()).items()})
            row["prior"] = result.prior.double().cpu().numpy()
        if result.mi_terms is not None:
            row["mi_estimate"] = result.mi_terms.mean(-1, dtype=torch.float64).cpu().numpy()
        out[rule] = row
    return out
