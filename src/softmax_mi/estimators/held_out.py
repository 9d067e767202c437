"""MI from features and labels: fit an estimator on a seeded stratified split, estimate on the held-out rest
(:func:`mi_from_features`, re-exported as ``softmax_mi.mi_from_features``), with :func:`softmax_mi.mi_from_logits`'s
interval for the classifier read-outs."""

from __future__ import annotations

from dataclasses import replace

import torch

from softmax_mi.estimators import build_estimator
from softmax_mi.estimators.base import MIEstimator
from softmax_mi.mi import MIEstimate, _labels, _open_unit, _tensor, mi_from_logits
from softmax_mi.registry import ESTIMATORS
from softmax_mi.samples import LabeledSample

__all__ = ["fold_samples", "held_out_estimate", "mi_from_features", "split_sample", "stratified_folds", "stratified_split"]


CLASSIFIER_READOUTS = {"pc_softmax": "pc_softmax", "softmax": "softmax"}  # estimator name -> mi_from_logits readout


def _features(features) -> torch.Tensor:
    features = _tensor(features, "features").detach()
    if features.dim() == 1:
        features = features[:, None]
    if features.dim() != 2:
        raise ValueError(f"features must be 2-D (n_examples × n_features), got shape {tuple(features.shape)}; "
                         "flatten each example's features into one row")
    if features.dtype == torch.bool or features.is_complex():
        raise TypeError(f"features must be real numbers, got dtype {features.dtype}")
    features = features.float()
    finite = torch.isfinite(features).all(dim=1)
    if not bool(finite.all()):
        bad = torch.nonzero(~finite).flatten()[:5].tolist()
        raise ValueError(f"features has non-finite entries (NaN or ±inf) in rows {bad}...; drop or impute them")
    return features


def _class_ranks(labels: torch.Tensor, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(order, rank, counts): a seeded permutation of the examples, each permuted example's rank within its class
    in that order (0, 1, ...), and the class counts."""
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(labels), generator=generator)
    shuffled = labels[order]
    rank = torch.empty_like(order)
    by_class = torch.argsort(shuffled, stable=True)  # within a class: the seeded order
    counts = torch.bincount(shuffled)
    starts = torch.cumsum(counts, 0) - counts
    rank[by_class] = torch.arange(len(labels)) - starts[shuffled[by_class]]
    return order, rank, counts


def stratified_split(labels: torch.Tensor, test_fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded (train, test) index tensors: round(test_fraction · n_k) of each class's n_k examples go to the test
    split, at least one of each class stays in training (every class needs a training prior).

    Example::

        train_index, test_index = stratified_split(torch.tensor([0] * 50 + [1] * 10), 0.2, seed=0)
        len(test_index)    # 12: 10 of class 0, 2 of class 1
    """
    order, rank, counts = _class_ranks(labels, seed)
    n_test = torch.minimum(torch.round(test_fraction * counts.double()).long(), counts - 1)
    held = rank < n_test[labels[order]]
    return torch.sort(order[~held]).values, torch.sort(order[held]).values


def stratified_folds(labels: torch.Tensor, folds: int, seed: int) -> torch.Tensor:
    """Seeded fold of every example (n,), in 0..folds − 1: each class's examples, in a seeded order, are dealt to
    the folds in turn (class k starting where class k − 1 stopped), so every fold holds ⌊n_k/folds⌋ or
    ⌈n_k/folds⌉ of class k and the folds' sizes differ by at most one.

    Example::

        fold = stratified_folds(torch.tensor([0] * 50 + [1] * 10), 5, seed=0)
        torch.bincount(fold)    # tensor([12, 12, 12, 12, 12]): 10 of class 0 and 2 of class 1 each
    """
    if not isinstance(folds, int) or isinstance(folds, bool) or folds < 2:
        raise ValueError(f"folds must be an integer ≥ 2, got {folds!r}")
    order, rank, counts = _class_ranks(labels, seed)
    starts = torch.cumsum(counts, 0) - counts
    fold = torch.empty_like(order)
    fold[order] = (rank + starts[labels[order]]) % folds
    return fold


def mi_from_features(features, labels, *, estimator: str = "pc_softmax", test_fraction: float = 0.2, seed: int = 0,
                     settings: dict | None = None, level: float = 0.95, device: str = "cpu") -> MIEstimate:
    """Estimate I(X;Y) in nats from features and labels: fit estimator ``estimator`` on a seeded training split,
    estimate on the held-out rest.

    Args:
        features: (n, d) continuous features x_i (numpy array or torch tensor; 1-D means d = 1).
        labels: (n,) integer labels y_i in [0, K); K = labels.max() + 1, every class needs ≥ 2 examples.
        estimator: a name of :data:`softmax_mi.registry.ESTIMATORS`: ``pc_softmax`` (default) or ``softmax``
            (an MLP classifier read out as in :func:`mi_from_logits`), ``mine``, ``infonce``, ``nwj`` (trained
            critics), ``knn`` (Ross 2014), ``sklearn_knn`` (d = 1 only).
        test_fraction: share of each class held out for the estimate (stratified: round(test_fraction · n_k) of
            class k, at least one example of each class left for training). kNN estimators do not train: they
            use the held-out split only.
        seed: seeds the split, the network's initialisation and its minibatch order.
        settings: the estimator's options (:func:`softmax_mi.estimators.build_estimator`: ``hidden``, ``epochs``,
            ``batch_size``, ``lr``, ``val_fraction``, ``select``, the stopping rule's ``min_steps``, ``patience``,
            ``max_epochs``, ``min_delta``, ``k``, ...); None: the estimator's defaults. Trained estimators stop by
            :class:`softmax_mi.training.TrainConfig`'s rule: at least 540 optimiser steps, then early stopping on
            a validation share of the training split (patience 2 epochs, at most 100 epochs).
        level: confidence level of the interval, in (0, 1).
        device: torch device for training ("cpu", "cuda").

    Returns:
        :class:`MIEstimate` (nats; ``details`` holds the estimator's diagnostics plus ``n_train``).

    The interval: for ``pc_softmax`` and ``softmax`` the estimate is a mean of per-example terms over the held-out
    split, and the interval is :func:`mi_from_logits`'s central-limit interval on the trained model's held-out logits
    (the value equals the estimator's to float32 precision). Like it, it covers the held-out sampling noise given
    the trained model, not the training noise nor the Barber–Agakov bias (E[t] ≤ I(X;Y)); its measured coverage of
    the true I(X;Y) on the synthetic tasks is in ``docs/mi_coverage.csv`` (``bench/mi_coverage.py``). The other
    estimators return no interval (``low``, ``high``, ``se`` are NaN): the kNN estimate is not a mean of
    independent terms (each term depends on the neighbours among all held-out points, and a bootstrap resample's
    duplicated points sit at distance 0, which biases it), and the critics' bounds are functions of whole evaluation
    batches (DV and InfoNCE: logs of batch means; NWJ: a marginal term over in-batch partners), so neither a CLT
    interval over examples nor a plain bootstrap over held-out examples has its nominal coverage; an honest interval
    for them needs refits on independent splits, which this function does not do
    (:mod:`softmax_mi.benchmark.estimators` gives them influence-function and batch-means intervals).

    Example::

        import numpy as np
        from softmax_mi import mi_from_features
        rng = np.random.default_rng(0)
        y = rng.integers(0, 2, 2000)
        x = rng.normal(2.0 * y, 1.0)[:, None]      # two unit Gaussians 2 apart: I(X;Y) = 0.337 nats
        print(mi_from_features(x, y))
        # 0.349 nats [0.301, 0.398] (95 % CI, n=400)
    """
    if estimator not in ESTIMATORS:
        raise ValueError(f"unknown estimator {estimator!r}; use one of {', '.join(ESTIMATORS)}")
    level = _open_unit("level", level, 0.95)
    train, test = split_sample(features, labels, test_fraction=test_fraction, seed=seed)
    model = build_estimator(estimator, settings=settings, seed=seed, device=device).fit(train)
    return held_out_estimate(model, train, test, level=level)


def _checked_sample(features, labels) -> tuple[torch.Tensor, torch.Tensor, int]:
    """(features, labels, K) checked as :func:`mi_from_features` checks them: K = labels.max() + 1, every class
    needs ≥ 2 examples (one to train on, one to test)."""
    features = _features(features)
    n = features.shape[0]
    labels = _tensor(labels, "labels").detach()
    if labels.dim() == 1 and labels.shape[0] == n and labels.numel() and not (
            labels.dtype == torch.bool or labels.is_floating_point() or labels.is_complex()):
        k = int(labels.max()) + 1
    else:
        k = 2  # _labels below names the problem
    labels = _labels(labels, n, max(k, 1), torch.device("cpu"))
    counts = torch.bincount(labels, minlength=k)
    if bool((counts < 2).any()):
        rare = torch.nonzero(counts < 2).flatten()[:10].tolist()
        raise ValueError(f"labels: classes {rare} have fewer than 2 examples (one to train on, one to test); "
                         "relabel the classes as 0..K-1 without gaps, or drop the rare ones")
    return features, labels, k


def split_sample(features, labels, *, test_fraction: float = 0.2, seed: int = 0) -> tuple[LabeledSample, LabeledSample]:
    """Checked (train, test) samples from features and labels: :func:`stratified_split` with ``test_fraction`` and
    ``seed``, as :func:`mi_from_features` splits them (same inputs, same errors; K = labels.max() + 1, every class
    needs ≥ 2 examples, the test split ≥ 2).

    Example::

        train, test = split_sample(x, y, test_fraction=0.2, seed=0)
        build_estimator("knn").fit(train).estimate(test)
    """
    test_fraction = _open_unit("test_fraction", test_fraction, 0.2)
    features, labels, k = _checked_sample(features, labels)
    train_index, test_index = stratified_split(labels, test_fraction, seed)
    if len(test_index) < 2:
        raise ValueError(f"test_fraction={test_fraction} holds out {len(test_index)} example(s); the interval needs "
                         "at least 2: raise test_fraction or pass more examples")
    train = LabeledSample(features[train_index], labels[train_index], k)
    test = LabeledSample(features[test_index], labels[test_index], k)
    return train, test


def fold_samples(features, labels, *, folds: int, seed: int = 0) -> list[tuple[LabeledSample, LabeledSample]]:
    """Cross-fitting: the checked sample cut into ``folds`` stratified folds (:func:`stratified_folds`), and for
    each fold f the pair (every other fold, fold f). Every example is held out exactly once; each training part
    keeps every class (a class of n_k ≥ 2 examples puts at most ⌈n_k/folds⌉ ≤ n_k − 1 in one fold).

    Example::

        for train, test in fold_samples(x, y, folds=5, seed=0):
            build_estimator("pc_softmax", seed=0).fit(train).estimate(test)
    """
    features, labels, k = _checked_sample(features, labels)
    fold = stratified_folds(labels, folds, seed)  # checks folds
    if len(labels) < 2 * folds:
        raise ValueError(f"{len(labels)} examples cannot make {folds} folds of ≥ 2 (each fold's estimate needs an "
                         "interval): lower folds or pass more examples")
    return [(LabeledSample(features[fold != f], labels[fold != f], k), LabeledSample(features[fold == f],
                                                                                    labels[fold == f], k))
            for f in range(folds)]


def held_out_estimate(model: MIEstimator, train: LabeledSample, test: LabeledSample, *,
                      level: float = 0.95) -> MIEstimate:
    """The estimate of a fitted estimator ``model`` (:mod:`softmax_mi.estimators`) on the held-out sample ``test``,
    with :func:`mi_from_features`'s interval (the CLT interval for the classifier read-outs, none otherwise);
    ``train``: the sample it was fitted on (its class counts are the PC-softmax prior).

    Example::

        model = build_estimator("pc_softmax", seed=0).fit(train)
        held_out_estimate(model, train, test)    # MIEstimate with a 95 % interval
    """
    if model.name not in CLASSIFIER_READOUTS:
        result = model.estimate(test)
        return MIEstimate(value=result.value, n=len(test), level=level, details={**result.details,
                                                                                  "n_train": len(train)})
    logits = model.logits(test)  # one forward pass: the value's diagnostics and the interval
    details = {**model.estimate_from_logits(logits, test).details, "n_train": len(train)}
    readout = CLASSIFIER_READOUTS[model.name]
    prior = {"class_counts": train.class_counts()} if readout == "pc_softmax" else {}
    return replace(mi_from_logits(logits, test.y, readout=readout, level=level, **prior), details=details)
