"""The public map extractors (softmax_mi.extractors): same numbers as softmax_mi.cam and torchcam, no hook leaks."""

from __future__ import annotations

import gc
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


def all_hooks(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


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
    assert find_layers(model) == (model[3], model[6])
    gap = GapCNN(4, widths=(4, 8, 8, 8)).eval()
    assert find_layers(gap) == (gap.cam_layer, gap.fc)
    x = torch.randn(2, 3, 16, 16)
    with CAM(model) as found, CAM(model, target_layer="3", fc_layer="6") as named, \
            CAM(model, target_layer=model[3], fc_layer=model[6]) as given:
        logits = model(x)
        maps = found(1)
        torch.testing.assert_close(named(1), maps)
        torch.testing.assert_close(given(1), maps)
    # GAP + linear: the mean of the CAM of class y is its logit minus the bias
    torch.testing.assert_close(maps.mean(dim=(1, 2)), logits[:, 1] - model[6].bias[1], atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="not a submodule"):
        CAM(model, target_layer="layer4", fc_layer="6")


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
    for _ in range(1000):
        with CAM(model) as cam:
            model(x)
            cam(0)
        assert all_hooks(model) == 0
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
