"""CAM / infoCAM maps (softmax_mi.cam) and the WSOL backbones (softmax_mi.models)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from softmax_mi.cam import (
    FeatureExtractor,
    all_maps,
    class_maps,
    gradcam_maps,
    normalise,
    region_sum,
    upsample,
    weight_vectors,
)
from softmax_mi.models import ADL, GapCNN, build_backbone
from softmax_mi.models.pretrained import load_backbone_weights


def test_cam_equals_torchcam_on_a_torchvision_resnet(resnet18, images):
    from torchcam.methods import CAM

    classes = [0, 3, 6, 2]
    with CAM(resnet18, target_layer="layer4", fc_layer="fc") as reference:
        reference_maps = reference(classes, resnet18(images))[0]
    with FeatureExtractor(resnet18) as extract, torch.no_grad():
        ours = class_maps(extract(images), "cam", torch.tensor(classes))
    assert ours.shape == reference_maps.shape == (4, 3, 3)
    torch.testing.assert_close(normalise(ours), reference_maps.detach(), atol=1e-5, rtol=0)


def test_gradcam_is_relu_cam_on_a_gap_network(resnet18, images):
    """For GAP + linear, Grad-CAM on the last block = ReLU(CAM) up to scale (docs/peers.md §4)."""
    classes = torch.tensor([1, 4, 5, 0])
    grad = gradcam_maps(resnet18, resnet18.layer4, images, classes)
    with FeatureExtractor(resnet18) as extract, torch.no_grad():
        cam = class_maps(extract(images), "cam", classes)
    expected = normalise(upsample(cam.relu(), (96, 96)))
    assert grad.shape == (4, 96, 96)
    assert torch.corrcoef(torch.stack([grad.flatten(), expected.flatten()]))[0, 1] > 0.99


def test_infocam_without_region_sum_is_scaled_mean_centred_cam():
    torch.manual_seed(0)
    features = torch.randn(5, 8, 4, 4)
    weight = torch.randn(6, 8)
    logits = torch.randn(5, 6)
    classes = torch.tensor([0, 1, 5, 3, 3])
    from softmax_mi.cam import Activations

    info = class_maps(Activations(logits, features, weight), "infocam_noregion", classes)
    centred = class_maps(Activations(logits, features, weight - weight.mean(0)), "cam", classes)
    torch.testing.assert_close(info, 6 / 5 * centred)
    # invariant to adding one vector to every class weight (softmax unchanged); plain CAM is not
    shifted = Activations(logits, features, weight + torch.randn(1, 8))
    torch.testing.assert_close(class_maps(shifted, "infocam_noregion", classes), info, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(class_maps(shifted, "cam", classes), class_maps(Activations(logits, features, weight),
                                                                             "cam", classes))


def test_least_likely_variant_subtracts_the_argmin_class():
    weight = torch.eye(4)
    logits = torch.tensor([[3.0, 1.0, -2.0, 0.0]])
    v = weight_vectors("infocam_leastlikely", weight, logits, torch.tensor([0]))
    torch.testing.assert_close(v, torch.tensor([[1.0, 0.0, -1.0, 0.0]]))


def test_region_sum_paddings():
    maps = torch.arange(16.0).reshape(1, 4, 4)
    full = region_sum(maps, 3, "full")
    centred = region_sum(maps, 3, "centred")
    assert full.shape == (1, 6, 6) and centred.shape == (1, 4, 4)
    assert full[0, 0, 0] == maps[0, 0, 0]  # the full window at the corner holds one pixel
    assert centred[0, 1, 1] == maps[0, :3, :3].sum()  # a centred window
    assert full.sum() == 9 * maps.sum()  # every pixel is in k² full windows
    torch.testing.assert_close(region_sum(maps, 1, "centred"), maps)
    assert region_sum(maps, 4, "centred").shape == (1, 4, 4)
    with pytest.raises(ValueError):
        region_sum(maps, 3, "same")


def test_all_maps_use_one_forward_pass(resnet18, images):
    calls = []
    handle = resnet18.register_forward_hook(lambda *_: calls.append(1))
    try:
        with FeatureExtractor(resnet18) as extract:
            logits, maps = all_maps(extract, images, torch.tensor([0, 1, 2, 3]),
                                    ["cam", "infocam", "infocam_full", "infocam_noregion", "infocam_leastlikely"],
                                    size=(96, 96))
    finally:
        handle.remove()
    assert len(calls) == 1
    assert logits.shape == (4, 7)
    for value in maps.values():
        assert value.shape == (4, 96, 96)
        assert float(value.min()) == 0.0 and float(value.max()) == pytest.approx(1.0)


def test_gap_cnn_shapes_and_adl():
    model = GapCNN(10, widths=(4, 8, 8, 8), adl={"gamma": 0.9, "drop_rate": 0.75}).eval()
    x = torch.randn(2, 1, 64, 64)
    with FeatureExtractor(model) as extract, torch.no_grad():
        activations = extract(x)
    assert activations.logits.shape == (2, 10) and activations.features.shape == (2, 8, 16, 16)
    torch.testing.assert_close(model(x), activations.logits)


def test_adl_is_identity_at_evaluation_and_drops_in_training():
    adl = ADL(gamma=0.5, drop_rate=1.0)
    x = torch.rand(2, 3, 5, 5)
    assert torch.equal(adl.eval()(x), x)
    out = adl.train()(x)
    attention = x.mean(1, keepdim=True)
    mask = attention < 0.5 * attention.flatten(1).max(1).values[:, None, None, None]
    torch.testing.assert_close(out, x * mask)
    torch.testing.assert_close(ADL(0.5, 0.0).train()(x), x * torch.sigmoid(attention))


@pytest.mark.parametrize("name", ["vgg16_gap", "resnet50"])
@pytest.mark.parametrize("adl", [None, {"gamma": 0.9, "drop_rate": 0.75}])
def test_paper_backbones_build_and_run(name, adl):
    torch.manual_seed(0)
    model = build_backbone(name, 5, adl=adl)
    x = torch.randn(2, 3, 64, 64)
    model.train()
    assert model(x).shape == (2, 5)
    model.eval()
    with FeatureExtractor(model) as extract, torch.no_grad():
        activations = extract(x)
    channels = 1024 if name == "vgg16_gap" else 2048
    assert activations.features.shape == (2, channels, 4, 4)  # stride 16: VGG without pool5, ResNet layer4 stride 1
    assert activations.weight.shape == (5, channels)


def test_pretrained_weights_come_from_a_path_or_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(FileNotFoundError, match="pretrained: none"):
        build_backbone("resnet50", 3, pretrained="torch_cache")
    with pytest.raises(FileNotFoundError):
        build_backbone("resnet50", 3, pretrained=str(tmp_path / "missing.pth"))
    weights = tmp_path / "w.pth"
    torch.save({"conv1.weight": torch.ones(64, 3, 7, 7), "fc.weight": torch.ones(1000, 2048)}, weights)
    model = build_backbone("resnet50", 3, pretrained=str(weights))
    assert torch.equal(model.stem[0].weight, torch.ones(64, 3, 7, 7))
    assert model.fc.weight.shape == (3, 2048)  # the new head is not taken from the file


def test_load_backbone_weights_none_is_a_no_op():
    model = nn.Linear(2, 2)
    before = model.weight.clone()
    load_backbone_weights(model, "resnet50", "none")
    assert torch.equal(model.weight, before)
