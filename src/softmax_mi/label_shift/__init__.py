"""Label shift: decision rules and MI read-outs when the test prior q is not the training prior π (issue 15).

Usable on any model's logits, without the pipeline:

- :mod:`~softmax_mi.label_shift.priors`    test priors (forward / uniform / backward, step or exponential decay,
  max/min ratio ρ) and seeded shifted subsets of a labelled test set (``shifted_prior``, ``shifted_subset``)
- :mod:`~softmax_mi.label_shift.rules`     the rules: plain argmax; known q (argmax f + log q − w·log π, w = 1 for
  softmax-, 0 for PC-softmax-trained logits); q estimated by EM (Saerens et al. 2002, ``em_prior``) or BBSE (Lipton
  et al. 2018, ``bbse_prior``); the post-hoc logit adjustment f − τ·log π (Menon et al.) as a q-blind control
- :mod:`~softmax_mi.label_shift.metrics`   micro / macro / many- / medium- / few-shot accuracy, NLL, ECE, the error
  of an estimated prior
- :mod:`~softmax_mi.label_shift.evaluate`  ``evaluate_shift``: every rule and metric on a batch of shifted test sets
- :mod:`~softmax_mi.label_shift.gaussian`  the exact truth on Part 1's Gaussian task (``GaussianShiftTruth``) and
  the study on classifiers fitted there (``evaluate_gaussian_shift``)

Example (any classifier's logits on a balanced test set)::

    from softmax_mi import evaluate_shift, shifted_prior, shifted_subset
    q = shifted_prior(train_counts, "backward", 10)
    rows = shifted_subset(test_labels, q, seed=0)[0]
    out = evaluate_shift(logits[rows][None], test_labels[rows][None], train_counts, [0.0], q)  # PC-softmax: w = 0
    out["known_q"]["micro_acc"][0], out["em"]["q_l1"][0], out["known_q"]["mi_estimate"][0]     # fraction, L1, nats
"""

from softmax_mi import lazy_attribute

_LOCATIONS = {
    "GaussianShiftTruth": "gaussian",
    "InMemoryClassifier": "gaussian",
    "bbse_prior": "rules",
    "em_prior": "rules",
    "evaluate_gaussian_shift": "gaussian",
    "evaluate_shift": "evaluate",
    "prior_weight": "rules",
    "shifted_prior": "priors",
    "shifted_subset": "priors",
    "subset_sizes": "priors",
}

__all__ = sorted(_LOCATIONS)


def __getattr__(name: str):
    return lazy_attribute(__name__, _LOCATIONS, name)
