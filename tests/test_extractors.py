"""The public map extractors (softmax_mi.extractors): same numbers as softmax_mi.cam and torchcam, no hook leaks."""

from __future__ import annotations

import gc
import types
import warnings
import weakref

import pytest
import torch
from torch import nn

from softmax_mi.cam import FeatureExtractor, class_maps, normalise, upsample
from softmax_mi.extractors import CAM, InfoCAM, InfoCAMLeastLikely, find_layers
from softmax_mi.models import GapCNN


def small_sequential() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 6, 3, stride=2, padding=1),
                         nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 5)).eval()


HOOK_DICTS = ("_forward_hooks", "_forward_pre_hooks", "_forward_hooks_with_kwargs", "_forward_pre_hooks_with_kwargs",
              "_forward_hooks_always_called", "_backward_hooks", "_backward_pre_hooks", "_state_dict_hooks",
              "_load_state_dict_pre_hooks")


def all_hooks(model: nn.Module) -> int:
    """Every hook on the model's modules, and the global module hooks."""
    from torch.nn.modules import module as torch_module

    own = sum(len(getattr(m, name, {})) for m in model.modules() for name in HOOK_DICTS)
    return own + len(torch_module._global_forward_hooks) + len(torch_module._global_forward_pre_hooks)


def live_tensors() -> int:
    with warnings.catch_warnings():  # isinstance on torch.distributed's deprecated reduce_op object warns
        warnings.simplefilter("ignore", FutureWarning)
        return sum(1 for obj in gc.get_objects() if isinstance(obj, torch.Tensor))


def test_cam_equals_torchcam_on_a_torchvision_resnet(resnet18, images):
    """torchcam's CAM min-max normalises each map (no ReLU): compare with normalized=True (as test_cam does)."""
    from torchcam.methods import CAM as TorchcamCAM

    classes = [0, 3, 6, 2]
    with TorchcamCAM(resnet18, target_layer="layer4", fc_layer="fc") as reference:
        reference_maps = reference(classes, resnet18(images))[0].detach()
    with CAM(resnet18) as cam:
        logits = resnet18(images)
        ours = cam(classes, logits=logits, normalized=True)
        raw = cam(torch.tensor(classes))
    assert ours.shape == reference_maps.shape == (4, 3, 3)
    torch.testing.assert_close(ours, reference_maps, atol=1e-5, rtol=0)
    torch.testing.assert_close(normalise(raw), ours)


@pytest.mark.parametrize("padding", ["centred", "full"])
@pytest.mark.parametrize("k", [1, 3, 5])
def test_infocam_equals_the_pipeline_maps(resnet18, images, padding, k):
    classes = torch.tensor([1, 4, 5, 0])
    with FeatureExtractor(resnet18) as extract, torch.no_grad():
        activations = extract(images)
    method = "infocam_full" if padding == "full" else "infocam"
    with InfoCAM(resnet18, k=k, padding=padding) as info:
        resnet18(images)
        ours = info(classes)
        expected = class_maps(activations, method, classes, region_k=k)
        torch.testing.assert_close(ours, expected, atol=0, rtol=0)
        assert ours.shape[-1] == (3 if padding == "centred" else 3 + k - 1)
        # the default class is the predicted one, and a single int is broadcast over the batch
        predicted = class_maps(activations, method, activations.predicted, region_k=k)
        torch.testing.assert_close(info(), predicted, atol=0, rtol=0)
        torch.testing.assert_close(info(2), class_maps(activations, method, torch.full((4,), 2), region_k=k))


def test_infocam_defaults_and_least_likely(resnet18, images):
    classes = torch.tensor([1, 4, 5, 0])
    with FeatureExtractor(resnet18) as extract, torch.no_grad():
        activations = extract(images)
    with InfoCAM(resnet18) as info, InfoCAMLeastLikely(resnet18) as least:
        assert (info.k, info.padding) == (3, "centred")  # = params.yaml region_k and cam.py's infocam
        logits = resnet18(images)
        torch.testing.assert_close(info(classes, logits=logits), class_maps(activations, "infocam", classes))
        torch.testing.assert_close(least(classes, logits=logits),
                                   class_maps(activations, "infocam_leastlikely", classes))
    with InfoCAMLeastLikely(resnet18, k=3, padding="full") as least:
        resnet18(images)
        assert least(classes).shape == (4, 5, 5)
    with pytest.raises(ValueError, match="padding"):
        InfoCAM(resnet18, padding="same")


def test_sizes(resnet18, images):
    with CAM(resnet18) as cam:
        resnet18(images)
        feature = cam(0)
        assert feature.shape == (4, 3, 3)
        torch.testing.assert_close(cam(0, size="input"), upsample(feature, (96, 96)))
        assert cam(0, size=(10, 20)).shape == (4, 10, 20)
        scaled = cam(0, size="input", normalized=True)
        assert float(scaled.min()) == 0.0 and float(scaled.amax(dim=(1, 2)).min()) == pytest.approx(1.0)
        with pytest.raises(ValueError, match="classes for a batch"):
            cam([0, 1])


def test_layers_by_name_module_or_found(resnet18):
    assert find_layers(resnet18) == (resnet18.layer4, resnet18.fc)
    model = small_sequential()
    assert find_layers(model) == (model[4], model[6])  # the pooling module: its input is the map
    gap = GapCNN(4, widths=(4, 8, 8, 8)).eval()
    assert find_layers(gap) == (gap.cam_layer, gap.fc)
    x = torch.randn(2, 3, 16, 16)
    with CAM(model) as found, CAM(model, target_layer="3", fc_layer="6") as named, \
            CAM(model, target_layer=model[3], fc_layer=model[6]) as given, CAM(model, target_layer="4") as pool:
        logits = model(x)
        maps = found(1)
        assert found.reads_input and not named.reads_input
        torch.testing.assert_close(named(1), maps)
        torch.testing.assert_close(given(1), maps)
        torch.testing.assert_close(pool(1), maps)
    # GAP + linear: the mean of the CAM of class y is its logit minus the bias
    torch.testing.assert_close(maps.mean(dim=(1, 2)), logits[:, 1] - model[6].bias[1], atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="not a submodule"):
        CAM(model, target_layer="layer4", fc_layer="6")


def gap_identity(extractor, model: nn.Module, x: torch.Tensor) -> None:
    """Global average pooling + linear: the mean of class y's CAM is its logit minus the bias, for every y — which
    holds only when the extractor reads exactly the map the pooling averages."""
    logits = model(x)
    classes = torch.arange(logits.shape[1]).expand(len(x), -1)
    maps = extractor(classes)
    bias = extractor.fc_layer.bias if extractor.fc_layer.bias is not None else torch.zeros(logits.shape[1])
    torch.testing.assert_close(maps.mean(dim=(2, 3)), logits - bias, atol=1e-4, rtol=1e-4)


class FunctionalHead(nn.Module):
    """A user's model: the last activation is applied in forward (no module to hook), then a GAP module."""

    def __init__(self, n_classes: int = 4):
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 3, stride=2, padding=1)
        self.pool = nn.AdaptiveAvgPool2d((1, 1))
        self.head = nn.Linear(6, n_classes)

    def forward(self, x):
        return self.head(self.pool(torch.nn.functional.silu(self.conv(x))).flatten(1))


class MeanPooled(nn.Module):
    """A user's model that pools with ``x.mean((2, 3))``: no module to find, so the layer is given by name."""

    def __init__(self, n_classes: int = 4):
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 3, stride=2, padding=1)
        self.head = nn.Linear(6, n_classes)

    def forward(self, x):
        return self.head(torch.relu(self.conv(x)).mean(dim=(2, 3)))


class UnusedPool(FunctionalHead):
    """Registers a pooling module that its forward never calls."""

    forward = MeanPooled.forward


@pytest.fixture(scope="module")
def efficientnet_lite0():
    """EfficientNet-Lite0 from efficientnet_lite_pytorch (random weights, 10 classes, 64 px): its head's ReLU6 is
    applied functionally in forward, between the last module (_bn1) and the pooling module."""
    from efficientnet_lite_pytorch import EfficientNet

    torch.manual_seed(0)
    model = EfficientNet.from_name("efficientnet-lite0", image_size=64, num_classes=10).eval()
    with torch.no_grad():  # its initial activations are ~1e-8: give the batch norms trained-like scales
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.weight.normal_(1.0, 0.2)
                module.bias.normal_(0.0, 1.0)
    return model


@torch.no_grad()
def test_every_model_family_gives_the_map_that_pooling_averages(resnet18, images, efficientnet_lite0, monkeypatch):
    import torchvision.models.vgg as torchvision_vgg

    import softmax_mi.models.vgg as vgg

    # VGG16GAP keeps only vgg16().features: build just those (vgg16's 100M-parameter classifier takes seconds)
    monkeypatch.setattr(vgg, "vgg16", lambda weights=None: types.SimpleNamespace(
        features=torchvision_vgg.make_layers(torchvision_vgg.cfgs["D"])))
    torch.manual_seed(0)
    vgg_gap = vgg.VGG16GAP(5).eval()
    user, mean_pooled = FunctionalHead().eval(), MeanPooled().eval()
    small = torch.randn(2, 3, 32, 32)
    cases = [(resnet18, {}, images[:2]), (vgg_gap, {}, small), (efficientnet_lite0, {}, torch.randn(2, 3, 64, 64)),
             (efficientnet_lite0, {"target_layer": "_avg_pooling", "fc_layer": "_fc"}, torch.randn(2, 3, 64, 64)),
             (user, {}, small), (mean_pooled, {"target_layer": "conv", "fc_layer": "head"}, small)]
    for model, layers, x in cases:
        with CAM(model, **layers) as cam:
            if model is not mean_pooled:  # its ReLU is after the named layer: the identity needs the pooled map
                gap_identity(cam, model, x)
            model(x)
            assert cam(None, size="input").shape == (len(x), *x.shape[-2:])
        assert all_hooks(model) == 0
    assert find_layers(efficientnet_lite0) == (efficientnet_lite0._avg_pooling, efficientnet_lite0._fc)
    assert find_layers(vgg_gap) == (vgg_gap.conv6, vgg_gap.fc)
    # the layer before the pool (_bn1) misses EfficientNet's functional ReLU6: the identity fails there
    with CAM(efficientnet_lite0, target_layer="_bn1", fc_layer="_fc") as before_activation:
        with pytest.raises(AssertionError):
            gap_identity(before_activation, efficientnet_lite0, torch.randn(2, 3, 64, 64))
    with pytest.raises(TypeError, match="no global-average-pooling"):
        CAM(mean_pooled)
    unused = UnusedPool().eval()
    with CAM(unused) as cam, pytest.raises(RuntimeError, match="did not run .* pass target_layer="):
        unused(small)
        cam()


def test_several_classes_per_sample(resnet18, images):
    """A [B, k] class_idx (e.g. the top-k) gives [B, k, h, w]: column j equals the maps for classes[:, j]."""
    with InfoCAM(resnet18) as info:
        logits = resnet18(images)
        top = logits.topk(3).indices
        maps = info(top, size=(12, 12), normalized=True)
        assert maps.shape == (4, 3, 12, 12)
        for j in range(3):
            torch.testing.assert_close(maps[:, j], info(top[:, j], size=(12, 12), normalized=True))
        torch.testing.assert_close(maps[:, 0], info(None, size=(12, 12), normalized=True))
        with pytest.raises(ValueError, match="classes for a batch"):
            info(top[:2])


def test_a_model_without_a_gap_linear_head_is_a_clear_error():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4 * 14 * 14, 3))
    with pytest.raises(TypeError, match="no global-average-pooling"):
        CAM(model)
    with pytest.raises(TypeError, match="no global-average-pooling"):
        InfoCAM(nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1)))


def test_calling_before_a_forward_pass_is_a_clear_error():
    with CAM(small_sequential()) as cam, pytest.raises(RuntimeError, match="run the model forward"):
        cam(0)


def test_no_hook_or_memory_leak_after_1000_cycles(resnet18):
    model = small_sequential()
    x = torch.randn(2, 3, 8, 8)
    kinds = [lambda: CAM(model), lambda: InfoCAM(model, target_layer="3"), lambda: InfoCAMLeastLikely(model)]

    @torch.no_grad()
    def cycles(count: int) -> None:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # tiny tensors: thread start-up would dominate
        try:
            for index in range(count):
                with kinds[index % 3]() as extractor:
                    model(x)
                    extractor([[0, 1], [2, 3]] if index % 2 else None, size="input" if index % 5 == 0 else None)
        finally:
            torch.set_num_threads(threads)

    cycles(30)  # warm-up: caches and lazily created objects
    gc.collect()
    tensors_before, objects_before = live_tensors(), len(gc.get_objects())
    cycles(1000)
    gc.collect()
    assert all_hooks(model) == 0
    assert live_tensors() == tensors_before  # no stored feature map or logits outlives its extractor
    assert len(gc.get_objects()) - objects_before < 50  # nothing accumulates per use (1,000 uses)
    with CAM(model) as cam:
        model(x)
    kept = weakref.ref(cam)
    del cam
    gc.collect()
    assert kept() is None  # no hook closure keeps the extractor (and its tensors) alive
    for extractor_class in (CAM, InfoCAM, InfoCAMLeastLikely):
        for _ in range(1000 // 3):
            with extractor_class(resnet18):
                pass
    assert all_hooks(resnet18) == 0
    extractor = InfoCAM(model)
    model(x)
    extractor.remove()
    extractor.remove()  # idempotent
    assert extractor._features is None and all_hooks(model) == 0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_works_on_cuda():
    model = small_sequential().cuda()
    x = torch.randn(2, 3, 16, 16, device="cuda")
    with InfoCAM(model) as info:
        model(x)
        maps = info(torch.tensor([0, 1], device="cuda"), size="input")
    assert maps.device.type == "cuda" and maps.shape == (2, 16, 16)
    with InfoCAM(model.cpu()) as info:
        model(x.cpu())
        torch.testing.assert_close(info(torch.tensor([0, 1]), size="input"), maps.cpu(), atol=1e-4, rtol=1e-4)
