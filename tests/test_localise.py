"""softmax_mi.localise and `softmax-mi localise`: top-k classes, boxes in original-image pixels, overlays, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from torch import nn

from softmax_mi.cli import main
from softmax_mi.io import column_descriptions
from softmax_mi.localisation.boxes import iou, largest_component_boxes
from softmax_mi.localisation.tau_sweep import boxes_at_threshold
from softmax_mi.localise import COLUMNS, Localiser, expand_inputs, load_images, overlay_names

CAT_CLASSES = {"Egyptian cat", "tiger cat", "tabby", "Persian cat", "Siamese cat", "lynx"}
# rough boxes drawn by eye around the object (original pixels, half-open): the cat's head fills chelsea; the cup and
# saucer in coffee; the astronaut from her hair down (astronaut has no ImageNet class: Lite0 says bobsled, 0.28)
OBJECTS = {"chelsea": ((30, 0, 430, 300), CAT_CLASSES), "coffee": ((70, 0, 540, 360), {"espresso", "cup"}),
           "astronaut": ((0, 20, 480, 512), {"bobsled", "football helmet"})}


def colour_block_model() -> nn.Module:
    """A GAP classifier whose class-0 CAM is the red channel and class-1 CAM the blue one, at full resolution."""
    conv = nn.Conv2d(3, 3, 1, bias=False)
    fc = nn.Linear(3, 2, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.eye(3).view(3, 3, 1, 1))
        fc.weight.copy_(torch.tensor([[4.0, 0.0, 0.0], [0.0, 0.0, 5.0]]))
    return nn.Sequential(conv, nn.AdaptiveAvgPool2d(1), nn.Flatten(), fc).eval()


def write_block_image(path: Path, size=(64, 48), block=(16, 8, 40, 24)) -> None:
    """A black image (width × height) with a red block (x0, y0, x1, y1, half-open)."""
    pixels = np.zeros((size[1], size[0], 3), np.uint8)
    x0, y0, x1, y1 = block
    pixels[y0:y1, x0:x1, 0] = 255
    Image.fromarray(pixels).save(path)


def test_boxes_are_in_original_pixels_and_batching_changes_nothing(tmp_path):
    sizes, blocks = [(64, 48), (30, 90), (32, 32)], [(16, 8, 40, 24), (3, 45, 15, 81), (0, 0, 32, 32)]
    paths = []
    for index, (size, block) in enumerate(zip(sizes, blocks)):
        paths.append(tmp_path / f"block{index}.png")
        write_block_image(paths[-1], size, block)
    localiser = Localiser(colour_block_model(), image_size=32, scaling="unit_range", class_names=["red", "blue"],
                          methods=("cam", "infocam", "infocam_leastlikely"), top_k=2, box_ranks=2, tau=0.5)
    batch, errors = load_images(paths, 32)
    assert not errors and batch.pixels.shape == (3, 3, 32, 32) and batch.sizes.tolist() == [list(s) for s in sizes]
    result = localiser(batch.pixels, batch.sizes)
    assert result.classes[:, 0].tolist() == [0, 0, 0]  # red wins
    cam_boxes = result.boxes["cam"][:, 0]
    # the red block, back in original pixels, to within the resize's rounding (2 px at most here)
    assert np.abs(cam_boxes[:2] - np.array(blocks[:2])).max() <= 2, cam_boxes
    # a constant map (all red) has an empty mask at τ > 0: box (0, 0, 0, 0)
    assert cam_boxes[2].tolist() == [0, 0, 0, 0]
    for index in range(3):  # each image alone gives the same maps and boxes as in the batch
        alone = localiser(batch.pixels[index: index + 1], batch.sizes[index: index + 1])
        for method in localiser.methods:
            torch.testing.assert_close(alone.maps[method][0], result.maps[method][index])
            assert (alone.boxes[method][0] == result.boxes[method][index]).all()
    frame = localiser.to_frame(result, batch.paths)
    assert list(frame.columns) == list(COLUMNS) and len(frame) == 3 * 2 * 3
    first = frame[(frame["image"] == str(paths[0])) & (frame["rank"] == 1) & (frame["method"] == "cam")].iloc[0]
    assert (first.class_name, first.width, first.height) == ("red", 64, 48)
    assert [first.x0, first.y0, first.x1, first.y1] == cam_boxes[0].tolist()
    assert frame["probability"].between(0, 1).all() and frame["params_hash"].nunique() == 1


def test_box_ranks_and_hooks(tmp_path):
    model = colour_block_model()
    localiser = Localiser(model, image_size=16, top_k=2, box_ranks=1)
    result = localiser(torch.randint(0, 256, (4, 3, 16, 16), dtype=torch.uint8))
    assert result.maps["cam"].shape == (4, 2, 16, 16) and result.boxes["infocam"].shape == (4, 1, 4)
    frame = localiser.to_frame(result, [f"x{i}.png" for i in range(4)])
    assert frame.loc[frame["rank"] == 2, "x0"].isna().all() and frame.loc[frame["rank"] == 1, "x0"].notna().all()
    assert sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules()) == 0
    with pytest.raises(ValueError, match="methods"):
        Localiser(model, methods=("gradcam",))
    with pytest.raises(ValueError, match="top_k"):
        Localiser(model, top_k=3)
    with pytest.raises(ValueError, match="expected uint8 images"):
        localiser(torch.zeros(1, 3, 8, 8, dtype=torch.uint8))


def test_largest_component_boxes_equal_the_sweep():
    rng = np.random.default_rng(0)
    for trial in range(40):
        n, h, w = rng.integers(1, 6), rng.integers(1, 24), rng.integers(1, 24)
        maps = rng.random((n, h, w)).astype(np.float32) ** rng.integers(1, 4)
        maps[0] *= trial % 2  # an all-zero map now and then
        tau = float(rng.random())
        expected = boxes_at_threshold(maps, tau, np.zeros((n, 4))).largest_box[:, 0]
        np.testing.assert_array_equal(largest_component_boxes(maps >= tau), expected)


def test_a_torchvision_resnet_checkpoint(tmp_path):
    import torchvision

    torch.manual_seed(0)
    state = torchvision.models.resnet18(weights=None, num_classes=3).state_dict()
    torch.save({"state_dict": state}, tmp_path / "mine.pth")  # a training checkpoint's usual wrapper
    localiser = Localiser.pretrained("resnet18", tmp_path / "mine.pth", class_names=["a", "b", "c"], top_k=2)
    assert localiser.n_classes == 3 and localiser.scaling == "imagenet" and "sha256:" in localiser.weights
    result = localiser(torch.randint(0, 256, (1, 3, 224, 224), dtype=torch.uint8), np.array([[640, 480]]))
    x0, y0, x1, y1 = result.boxes["cam"][0, 0].tolist()
    assert 0 <= x0 < x1 <= 640 and 0 <= y0 < y1 <= 480
    del state["layer4.1.conv2.weight"]
    torch.save(state, tmp_path / "cut.pth")
    with pytest.raises(ValueError, match="not a torchvision resnet18 state dict: 1 tensors missing"):
        Localiser.pretrained("resnet18", tmp_path / "cut.pth")
    torch.save({"weights": [1, 2]}, tmp_path / "odd.pth")
    with pytest.raises(ValueError, match="no fc.weight"):
        Localiser.pretrained("resnet18", tmp_path / "odd.pth")


def test_inputs_folders_globs_and_names(tmp_path):
    (tmp_path / "sub").mkdir()
    for name in ("a.png", "sub/b.JPG", "sub/a.png", "notes.txt"):
        (tmp_path / name).write_bytes(b"")
    files, errors = expand_inputs([str(tmp_path), str(tmp_path / "*.txt"), str(tmp_path / "a.png"),
                                   str(tmp_path / "none*.png"), str(tmp_path / "missing.png")])
    assert files == [str(tmp_path / n) for n in ("a.png", "sub/a.png", "sub/b.JPG", "notes.txt")]
    assert [e.split(": ")[1] for e in errors] == ["the pattern matches no file", "no such file or folder"]
    assert overlay_names(files) == ["a.png", "a-2.png", "b.png", "notes.png"]


@pytest.fixture(scope="module")
def photos():
    """scikit-image's example photos (files shipped in its wheel: offline)."""
    data = pytest.importorskip("skimage.data", reason="scikit-image is in the test extra")
    root = Path(data.__file__).parent
    return [root / f"{name}.png" for name in OBJECTS]


def test_localise_command_on_scikit_image_photos(photos, tmp_path, capsys):
    not_an_image = tmp_path / "notes.png"
    not_an_image.write_text("not an image")
    out = tmp_path / "out"
    code = main(["localise", *map(str, photos), str(not_an_image), "-o", str(out), "--top-k", "3",
                 "--device", "cpu", "--overlay-side", "200"])
    err = capsys.readouterr().err
    assert code == 2  # one input failed; the others were localised
    assert f"{not_an_image}: not an image" in err and "1 input(s) could not be read" in err
    frame = pd.read_parquet(out / "predictions.parquet")
    assert set(column_descriptions(out / "predictions.parquet")) == set(COLUMNS)
    assert len(frame) == 3 * 3 * 2 and frame["model"].unique().tolist() == ["efficientnet_lite0"]
    top = frame[frame["rank"] == 1]
    for photo in photos:
        (truth, classes), rows = OBJECTS[photo.stem], top[top["image"] == str(photo)]
        assert rows["class_name"].iloc[0] in classes, rows
        width, height = Image.open(photo).size
        for row in rows.itertuples():
            assert 0 <= row.x0 < row.x1 <= width and 0 <= row.y0 < row.y1 <= height
            assert iou(np.array([row.x0, row.y0, row.x1, row.y1]), np.array(truth)) >= 0.5, row
        overlay = Image.open(out / "overlays" / f"{photo.stem}.png")
        assert overlay.format == "PNG" and max(overlay.size) <= 2 * 200 + 4
    assert not (out / "overlays" / "notes.png").exists()


def test_command_errors_are_one_line(tmp_path, capsys):
    cases = [(["localise", str(tmp_path / "none.png"), "-o", str(tmp_path)], "no such file or folder"),
             (["localise", str(tmp_path), "-o", str(tmp_path), "--arch", "resnet18"], "needs --weights"),
             (["localise", str(tmp_path), "-o", str(tmp_path), "--weights", "x.pth"], "--weights is for")]
    for argv, message in cases:
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_localiser_on_cuda_matches_the_cpu():
    model = colour_block_model()
    pixels = torch.randint(0, 256, (3, 3, 32, 32), dtype=torch.uint8)
    on_cpu = Localiser(model, image_size=32, top_k=2)(pixels)
    on_gpu = Localiser(model, image_size=32, top_k=2, device="cuda")(pixels)
    assert next(model.parameters()).device.type == "cuda"
    torch.testing.assert_close(on_gpu.maps["infocam"], on_cpu.maps["infocam"], atol=1e-4, rtol=1e-4)
    assert (on_gpu.classes == on_cpu.classes).all()
