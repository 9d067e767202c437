"""The nn.Module loss wrappers equal their functions (value and gradient), carry their buffers with .to(), refuse
bad inputs with clear messages, switch LDAM's deferred re-weighting as classification_loss("ldam_drw") does, and
train a model."""

from __future__ import annotations

import pytest
import torch

from softmax_mi import loss_modules, losses

COUNTS = [50, 20, 8, 3, 1]


@pytest.fixture
def batch():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(32, len(COUNTS), generator=generator, dtype=torch.float64) * 3
    target = torch.randint(0, len(COUNTS), (32,), generator=generator)
    return logits, target


def module_and_function(name: str, reduction: str):
    """(module, the function call it wraps) for one loss, with non-default options."""
    counts = torch.tensor(COUNTS)
    log_prior = losses.log_prior_from_counts(counts)
    if name == "pc_softmax":
        return (loss_modules.PCSoftmaxLoss(COUNTS, reduction=reduction),
                lambda f, y: losses.pc_softmax_loss(f, y, log_prior, reduction=reduction))
    if name == "logit_adjusted":
        return (loss_modules.LogitAdjustedLoss(counts, tau=0.7, reduction=reduction),
                lambda f, y: losses.logit_adjusted_loss(f, y, log_prior, tau=0.7, reduction=reduction))
    if name == "class_balanced":
        weights = losses.class_balanced_weights(counts, 0.99)
        return (loss_modules.ClassBalancedLoss(COUNTS, beta=0.99, reduction=reduction),
                lambda f, y: losses.class_balanced_loss(f, y, weights, reduction=reduction))
    margins, weights = losses.ldam_margins(counts, 0.3), losses.class_balanced_weights(counts, 0.999)
    reweight = name == "ldam_reweighted"
    module = loss_modules.LDAMLoss(COUNTS, max_margin=0.3, scale=5.0, beta=0.999, reduction=reduction)
    module.reweight(reweight)
    return (module, lambda f, y: losses.ldam_loss(f, y, margins, scale=5.0, weights=weights if reweight else None,
                                                  reduction=reduction))


NAMES = ("pc_softmax", "logit_adjusted", "class_balanced", "ldam", "ldam_reweighted")


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("name", NAMES)
def test_module_equals_its_function_in_value_and_gradient(name, reduction, batch):
    logits, target = batch
    module, function = module_and_function(name, reduction)
    module = module.to(torch.float64)
    ours_logits = logits.clone().requires_grad_()
    theirs_logits = logits.clone().requires_grad_()
    ours, theirs = module(ours_logits, target), function(theirs_logits, target)
    assert ours.dtype == torch.float64 and ours.shape == theirs.shape
    assert torch.allclose(ours, theirs, rtol=1e-12, atol=1e-12)
    upstream = torch.linspace(0.5, 1.5, ours.numel(), dtype=torch.float64).reshape(ours.shape)
    (ours * upstream).sum().backward()
    (theirs * upstream).sum().backward()
    assert torch.allclose(ours_logits.grad, theirs_logits.grad, rtol=1e-12, atol=1e-12)
    assert ours_logits.grad.abs().sum() > 0


def test_the_modules_are_reexported_from_losses_and_the_top_level():
    import softmax_mi

    for name in loss_modules.__all__:
        assert getattr(losses, name) is getattr(loss_modules, name) is getattr(softmax_mi, name)
    assert set(loss_modules.__all__) <= set(softmax_mi.__all__)
    with pytest.raises(AttributeError, match="no attribute 'nonexistent'"):
        softmax_mi.nonexistent  # noqa: B018
    with pytest.raises(AttributeError, match="no attribute 'SoftmaxCrossEntropyLoss'"):
        losses.SoftmaxCrossEntropyLoss  # noqa: B018 (it is nn.CrossEntropyLoss)


def test_importing_softmax_mi_stays_torch_free():
    import subprocess
    import sys

    code = "import softmax_mi, sys; print('torch' in sys.modules)"  # and `softmax_mi.PCSoftmaxLoss` is lazy
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() \
        == "False"


@pytest.mark.parametrize("name", NAMES)
def test_buffers_move_with_to(name):
    module, _ = module_and_function(name, "mean")
    buffers = dict(module.named_buffers())
    assert "class_counts" in buffers and len(buffers) >= 2
    assert set(module.state_dict()) == set(buffers)
    module = module.to(torch.float64)
    assert all(buffer.dtype == torch.float64 for buffer in module.buffers())
    module = module.to("meta")
    assert all(buffer.device.type == "meta" for buffer in module.buffers())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name", NAMES)
def test_module_runs_on_cuda(name, batch):
    logits, target = batch
    module, function = module_and_function(name, "mean")
    value = module.cuda()(logits.float().cuda(), target.cuda())
    assert value.device.type == "cuda"
    assert float(value) == pytest.approx(float(function(logits.float(), target)), rel=1e-5)


@pytest.mark.parametrize("counts, message", [
    ([3, 0, 2], r"positive and finite; classes \[1\] have \[0.0\]"),
    ([3, -1, 2], r"classes \[1\] have \[-1.0\]"),
    ([3, float("nan"), float("inf")], r"classes \[1, 2\]"),
    ([], "non-empty 1-D"),
    ([[1, 2], [3, 4]], r"non-empty 1-D .* shape \(2, 2\)"),
])
@pytest.mark.parametrize("cls", [loss_modules.PCSoftmaxLoss, loss_modules.LogitAdjustedLoss,
                                 loss_modules.ClassBalancedLoss, loss_modules.LDAMLoss])
def test_bad_counts_are_refused(cls, counts, message):
    with pytest.raises(ValueError, match=message):
        cls(counts)


@pytest.mark.parametrize("make, message", [
    (lambda: loss_modules.PCSoftmaxLoss(COUNTS, reduction="avg"), "reduction must be one of mean, sum, none"),
    (lambda: loss_modules.LogitAdjustedLoss(COUNTS, tau=float("nan")), "tau must be finite"),
    (lambda: loss_modules.ClassBalancedLoss(COUNTS, beta=1.0), r"beta must be in \[0.0, 1.0\)"),
    (lambda: loss_modules.LDAMLoss(COUNTS, max_margin=-0.1), "max_margin must be in"),
    (lambda: loss_modules.LDAMLoss(COUNTS, scale=0), "scale must be positive"),
    (lambda: loss_modules.LDAMLoss(COUNTS, drw_epoch=2.5), "drw_epoch must be an integer"),
])
def test_bad_options_are_refused(make, message):
    with pytest.raises(ValueError, match=message):
        make()


@pytest.mark.parametrize("name", NAMES)
def test_wrong_shapes_are_refused(name, batch):
    logits, target = batch
    module, _ = module_and_function(name, "mean")
    with pytest.raises(ValueError, match="class_counts has 5 classes but logits have 10"):
        module(torch.randn(32, 10), target)
    with pytest.raises(ValueError, match=r"logits must be batch × classes \(2-D\)"):
        module(logits[None], target)
    with pytest.raises(ValueError, match=r"target must hold one class index per row of logits \(32\)"):
        module(logits, target[:5])


def test_ldam_drw_switching_equals_classification_loss(batch):
    logits, target = batch
    logits = logits.float()
    reference = losses.classification_loss("ldam_drw", torch.tensor(COUNTS), beta=0.999, ldam_max_margin=0.4,
                                           ldam_scale=10.0, drw_epoch=3)
    module = loss_modules.LDAMLoss(COUNTS, max_margin=0.4, scale=10.0, beta=0.999, drw_epoch=3)
    seen = []
    for epoch in range(1, 6):
        module.set_epoch(epoch)
        seen.append(module.reweighting)
        assert torch.equal(module(logits, target), reference(logits, target, epoch))
    assert seen == [False, False, True, True, True]
    assert not torch.equal(reference(logits, target, 2), reference(logits, target, 3))  # the switch matters
    assert module.reweight(False)(logits, target) == reference(logits, target, 1)
    assert module.reweight()(logits, target) == reference(logits, target, 3)
    never = loss_modules.LDAMLoss(COUNTS)  # drw_epoch=None: set_epoch never switches it on
    assert not never.set_epoch(1000).reweighting
    assert "drw_epoch=3" in repr(module) and "reweighting=True" in repr(module)


@pytest.mark.parametrize("name", NAMES)
def test_three_sgd_steps_on_a_linear_model_lower_the_loss(name):
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(64, 4, generator=generator)
    y = torch.randint(0, len(COUNTS), (64,), generator=generator)
    torch.manual_seed(0)
    model = torch.nn.Linear(4, len(COUNTS))
    loss_fn, _ = module_and_function(name, "mean")
    optimiser = torch.optim.SGD(model.parameters(), lr=0.05)
    values = []
    for _ in range(3):
        optimiser.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        optimiser.step()
        values.append(loss.item())
    values.append(loss_fn(model(x), y).item())
    assert all(later < earlier for earlier, later in zip(values, values[1:])), values
