"""Boxes, IoU, the vectorised τ sweep and the WSOL protocols (softmax_mi.localisation), and the embedded dataset."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage as ndi

from softmax_mi.data import cluttered, wsol
from softmax_mi.localisation import (
    box_accuracy,
    boxes_at_threshold,
    centre_box_map,
    choose_thresholds,
    concat_sweeps,
    iou,
    mask_boxes,
    maxboxacc,
    maxboxacc_v2,
    normalise_maps,
    paper_localisation,
    sweep,
    sweep_reference,
    threshold_grid,
)

FIELDS = ("largest_box", "largest_iou", "best_iou", "n_components")


def test_iou_on_hand_made_boxes():
    assert iou([0, 0, 4, 4], [0, 0, 4, 4]) == 1.0
    assert iou([0, 0, 4, 4], [2, 0, 6, 4]) == pytest.approx(8 / 24)
    assert iou([0, 0, 2, 2], [2, 2, 4, 4]) == 0.0  # touching corners
    # disjoint boxes: 0 (the original's unclamped +1 formula gives a positive value here, docs/paper.md B15)
    assert iou([0, 0, 2, 2], [5, 5, 9, 9]) == 0.0
    assert iou([1, 1, 1, 3], [0, 0, 4, 4]) == 0.0  # empty box
    np.testing.assert_allclose(iou(np.array([[0, 0, 4, 4], [0, 0, 2, 2]]), np.array([0, 0, 4, 4])), [1.0, 0.25])


def test_mask_boxes_are_eight_connected_and_half_open():
    mask = np.zeros((6, 8), bool)
    mask[1, 1] = mask[2, 2] = True  # diagonal neighbours: one component
    mask[4:6, 5:8] = True
    boxes, sizes = mask_boxes(mask)
    np.testing.assert_array_equal(boxes, [[1, 1, 3, 3], [5, 4, 8, 6]])
    np.testing.assert_array_equal(sizes, [2, 6])
    assert mask_boxes(np.zeros((3, 3), bool))[0].shape == (0, 4)


def _random_maps(rng, n, h, w, smooth):
    maps = rng.random((n, h, w))
    if smooth:
        maps = ndi.gaussian_filter(maps, (0, smooth, smooth))
    else:
        maps = np.round(maps * 4) / 4  # many ties and plateaus
    return normalise_maps(maps)


@pytest.mark.parametrize("smooth, steps", [(0, 10), (1.0, 37), (2.5, 100)])
def test_vectorised_sweep_equals_the_per_threshold_loop(smooth, steps):
    rng = np.random.default_rng(int(smooth * 10) + steps)
    maps = _random_maps(rng, 12, 15, 19, smooth)
    maps[0] = 0.0  # a constant map
    maps[1] = 0.0
    maps[1, 3, 4] = 1.0  # a single bright pixel
    x0, y0 = rng.integers(0, 8, 12), rng.integers(0, 6, 12)
    gt = np.stack([x0, y0, x0 + rng.integers(2, 10, 12), y0 + rng.integers(2, 8, 12)], axis=1)
    thresholds = np.sort(rng.choice(threshold_grid(0.001), steps, replace=False))
    slow = sweep_reference(maps, thresholds, gt)
    for large_level in (1, 32, 10**9):  # neighbour-graph path only, the default mix, ndimage.label path only
        fast = sweep(maps, thresholds, gt, large_level=large_level)
        for field in FIELDS:
            np.testing.assert_array_equal(getattr(fast, field), getattr(slow, field), err_msg=field)
    single = boxes_at_threshold(maps, thresholds[steps // 2], gt)
    for field in FIELDS:
        np.testing.assert_array_equal(getattr(single, field)[:, 0], getattr(slow, field)[:, steps // 2], err_msg=field)


def test_largest_component_ties_go_to_the_first_in_raster_order():
    maps = np.zeros((1, 5, 7), np.float32)
    maps[0, 3, 0:2] = 1.0  # size 2, starts later in raster order
    maps[0, 0, 5:7] = 1.0  # size 2, first in raster order
    result = sweep(maps, [0.5], np.array([[0, 0, 1, 1]]))
    np.testing.assert_array_equal(result.largest_box[0, 0], [5, 0, 7, 1])
    assert result.n_components[0, 0] == 2


def test_sweep_rejects_bad_input():
    maps = np.zeros((2, 4, 4), np.float32)
    with pytest.raises(ValueError):
        sweep(maps, [0.5, 0.2], np.zeros((2, 4)))
    with pytest.raises(ValueError):
        sweep(maps, [0.5], np.zeros((3, 4)))
    maps[0, 0, 0] = np.nan
    with pytest.raises(ValueError):
        sweep(maps, [0.5], np.zeros((2, 4)))


def test_maxboxacc_v2_chooses_tau_on_val_only():
    thresholds = threshold_grid(0.25)  # 0, .25, .5, .75
    val = np.array([[0.1, 0.6, 0.2, 0.0]] * 3 + [[0.1, 0.8, 0.4, 0.0]])  # best τ = 0.25 for every δ
    test = np.array([[0.9, 0.1, 0.9, 0.9]] * 4)  # test would prefer any other τ
    result = maxboxacc_v2(val, test, thresholds)
    np.testing.assert_array_equal(result.chosen_threshold, [0.25, 0.25, 0.25])
    np.testing.assert_allclose(result.test_accuracy, [0.0, 0.0, 0.0])
    np.testing.assert_allclose(result.val_accuracy, [1.0, 1.0, 0.25])
    changed = maxboxacc_v2(val, np.random.default_rng(0).random((4, 4)), thresholds)
    np.testing.assert_array_equal(changed.chosen_index, result.chosen_index)
    np.testing.assert_allclose(box_accuracy(val)[:, 1], [1.0, 1.0, 0.25])


def test_maxboxacc_v1_chooses_one_tau_on_val_largest_components():
    thresholds = threshold_grid(0.25)  # 0, .25, .5, .75
    # largest-component IoUs of 4 val images at each τ: IoU ≥ 0.5 for 1, 3, 3, 0 images (τ = .25 and .5 tie)
    val = np.array([[0.6, 0.7, 0.5, 0.1], [0.2, 0.5, 0.9, 0.0], [0.1, 0.6, 0.8, 0.4], [0.0, 0.3, 0.2, 0.2]])
    result = maxboxacc(val, thresholds)
    assert result.chosen_index == 1 and result.chosen_threshold == 0.25  # the first best τ on ties
    assert result.val_accuracy == 0.75 and result.iou_threshold == 0.5
    np.testing.assert_allclose(result.val_curve, [0.25, 0.75, 0.75, 0.0])
    assert maxboxacc(val, thresholds, iou_threshold=0.7).chosen_index == 2  # 0, 1, 2, 0 images reach 0.7
    np.testing.assert_array_equal(choose_thresholds(np.array([[0.1, 0.3, 0.3], [0.5, 0.2, 0.5]])), [1, 0])


def test_concat_sweeps_equals_one_sweep():
    maps = _random_maps(np.random.default_rng(3), 5, 12, 12, 1.0)
    boxes = np.array([[0, 0, 6, 6], [2, 2, 10, 10], [0, 4, 12, 12], [3, 0, 5, 12], [1, 1, 2, 2]])
    thresholds = threshold_grid(0.1)
    whole = sweep(maps, thresholds, boxes)
    parts = concat_sweeps([sweep(maps[:2], thresholds, boxes[:2]), sweep(maps[2:], thresholds, boxes[2:])])
    for field in FIELDS:
        np.testing.assert_array_equal(getattr(parts, field), getattr(whole, field))


def test_paper_protocol_top1_needs_the_class():
    scores = paper_localisation(np.array([0.6, 0.7, 0.2, 0.9]), np.array([True, False, True, True]))
    assert scores == {"gt_known_loc": 0.75, "top1_loc": 0.5}


def test_centre_box_map_gives_central_boxes():
    base = centre_box_map(64, 64)
    result = sweep(base[None], [0.0, 0.5], np.array([[16, 16, 48, 48]]))
    np.testing.assert_array_equal(result.largest_box[0], [[0, 0, 64, 64], [16, 16, 48, 48]])
    assert result.largest_iou[0, 1] == 1.0


# ------------------------------------------------------------------------------------------------ the dataset
def _fake_mnist(rng):
    digits = np.zeros((120, 28, 28), np.uint8)
    digits[:, 6:22, 9:19] = rng.integers(100, 256, (120, 16, 10))
    labels = np.arange(120) % 10
    return {"train": (digits[:80], labels[:80]), "valid": (digits[:1], labels[:1]), "test": (digits[80:], labels[80:])}


def test_cluttered_dataset_is_deterministic_with_exact_boxes(tmp_path):
    mnist = _fake_mnist(np.random.default_rng(0))
    config = cluttered.ClutterConfig(canvas=48, fragments=3, fragment=5, noise_std=0.0)
    counts = {"train": 30, "val_fullsup": 10, "test": 12}
    images, frame = cluttered.build(counts, config, seed=3, mnist=mnist)
    again, frame_again = cluttered.build(counts, config, seed=3, mnist=mnist)
    assert np.array_equal(images, again) and frame.equals(frame_again)
    assert images.shape == (52, 48, 48) and images.dtype == np.uint8
    assert frame["split"].value_counts().to_dict() == counts
    # boxes lie in the canvas and contain ink; the digit's box is tight (a 16×10 block × scale)
    assert ((frame[["x0", "y0"]] >= 0).all().all() and (frame[["x1", "y1"]] <= 48).all().all())
    widths, heights = frame["x1"] - frame["x0"], frame["y1"] - frame["y0"]
    assert (np.abs(widths - 10 * frame["scale"]) <= 2).all() and (np.abs(heights - 16 * frame["scale"]) <= 2).all()
    # val_fullsup and test come from disjoint halves of the test digits
    val = frame[frame["split"] == "val_fullsup"]["mnist_index"]
    test = frame[frame["split"] == "test"]["mnist_index"]
    assert val.max() < 20 <= test.min()
    cluttered.save(images, frame, tmp_path)
    split = wsol.load(tmp_path / "images.npy", tmp_path / "boxes.parquet", "test")
    assert len(split) == 12 and np.array_equal(split.images, images[frame["split"] == "test"])
    assert cluttered.build(counts, config, seed=4, mnist=mnist)[0].tolist() != images.tolist()
