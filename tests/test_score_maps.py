"""softmax_mi.localisation.score (score_maps) and the `softmax-mi score-maps` command.

The ``wsolevaluation`` protocol is checked against a re-implementation of clovaai/wsolevaluation's BoxEvaluator
written here from its documented behaviour, with plain loops on small maps: min-max normalisation (constant map →
zeros), uint8 quantisation by truncation, the mask ``value > int(τ · max)``, one box per contour (8-connected
components, and every hole: a 4-connected background region that does not reach the image edge, whose border runs
one pixel outside it), ``(x, y, x + w, y + h)`` clipped to ``width - 1`` / ``height - 1``, inclusive ``+1`` IoU, the
best IoU over the GT boxes, and the max over τ of the box accuracy on the scored images. V1 needs the contour of
largest area: the border is traced (Suzuki & Abe's border following), its polygon area taken by the shoelace
formula, and ties go to the first contour in OpenCV's listing (outer contours in reverse raster order of their first
pixel, each followed by its holes, depth first).
"""

from __future__ import annotations

import math
from collections import deque

import cv2
import numpy as np
import pandas as pd
import pytest
import scipy.ndimage as ndi

from softmax_mi.cli import main
from softmax_mi.localisation import maxboxacc, maxboxacc_v2, normalise_maps, sweep, threshold_grid
from softmax_mi.localisation.score import score_maps

N8 = [(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)]
N4 = [(-1, 0), (1, 0), (0, -1), (0, 1)]
CLOCKWISE = [(0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1), (-1, 0), (-1, 1)]  # rows down: E, SE, S, …


# ------------------------------------------------------------------------------ reference BoxEvaluator (plain loops)
def _regions(mask, steps):
    h, w = len(mask), len(mask[0])
    seen = [[False] * w for _ in range(h)]
    regions = []
    for y in range(h):
        for x in range(w):
            if mask[y][x] and not seen[y][x]:
                seen[y][x] = True
                queue, pixels = deque([(y, x)]), []
                while queue:
                    py, px = queue.popleft()
                    pixels.append((py, px))
                    for dy, dx in steps:
                        qy, qx = py + dy, px + dx
                        if 0 <= qy < h and 0 <= qx < w and mask[qy][qx] and not seen[qy][qx]:
                            seen[qy][qx] = True
                            queue.append((qy, qx))
                regions.append(sorted(pixels))  # first pixel in raster order first
    return regions


def _trace_area(fg, start, previous):
    """Polygon area of the border through ``start``, searched from its neighbour ``previous`` (Suzuki & Abe)."""
    h, w = len(fg), len(fg[0])

    def on(p):
        return 0 <= p[0] < h and 0 <= p[1] < w and fg[p[0]][p[1]]

    def ring_from(centre, p, order):
        k = order.index((p[0] - centre[0], p[1] - centre[1]))
        return [(centre[0] + order[(k + s) % 8][0], centre[1] + order[(k + s) % 8][1]) for s in range(1, 9)]

    first = next((p for p in [previous, *ring_from(start, previous, CLOCKWISE)][:8] if on(p)), None)
    if first is None:
        return 0.0
    points, prev, here = [start], first, start
    anticlockwise = CLOCKWISE[::-1]
    while True:
        nxt = next(p for p in ring_from(here, prev, anticlockwise) if on(p))
        if nxt == start and here == first:
            break
        points.append(nxt)
        prev, here = here, nxt
    twice = sum(points[k][1] * points[k - 1][0] - points[k - 1][1] * points[k][0] for k in range(len(points)))
    return abs(twice) / 2


def reference_contours(quantised, cut):
    """``[(box, area)]`` of every contour of ``quantised > cut``, in OpenCV's listing order."""
    h, w = len(quantised), len(quantised[0])
    fg = [[int(quantised[y][x]) > cut for x in range(w)] for y in range(h)]
    bg = [[not v for v in row] for row in fg]
    region_of = {}
    holes = []
    for region in _regions(bg, N4):
        touches = any(y in (0, h - 1) or x in (0, w - 1) for y, x in region)
        for p in region:
            region_of[p] = None if touches else len(holes)
        if not touches:
            holes.append(region)
    nodes = []  # (start pixel, parent key, box, area, key)
    components = _regions(fg, N8)
    component_of = {p: c for c, comp in enumerate(components) for p in comp}
    for c, comp in enumerate(components):
        ys, xs = [p[0] for p in comp], [p[1] for p in comp]
        (y, x) = comp[0]
        parent = ("hole", region_of[(y, x - 1)]) if x > 0 and region_of[(y, x - 1)] is not None else ("root",)
        box = (min(xs), min(ys), min(max(xs) + 1, w - 1), min(max(ys) + 1, h - 1))
        nodes.append(((y, x), parent, box, _trace_area(fg, (y, x), (y, x - 1)), ("comp", c)))
    for k, hole in enumerate(holes):
        ys, xs = [p[0] for p in hole], [p[1] for p in hole]
        (y, x) = hole[0]
        start = (y, x - 1)  # the border pixel left of the hole's first pixel
        box = (min(xs) - 1, min(ys) - 1, min(max(xs) + 2, w - 1), min(max(ys) + 2, h - 1))
        nodes.append((start, ("comp", component_of[start]), box, _trace_area(fg, start, (y, x)), ("hole", k)))
    listing = []

    def visit(key):
        for node in sorted((n for n in nodes if n[1] == key), key=lambda n: n[0], reverse=True):
            listing.append((node[2], node[3]))
            visit(node[4])

    visit(("root",))
    return listing


def reference_iou(a, b):
    inter = max(0, min(a[2], b[2]) - max(a[0], b[0]) + 1) * max(0, min(a[3], b[3]) - max(a[1], b[1]) + 1)
    union = (a[2] - a[0] + 1) * (a[3] - a[1] + 1) + (b[2] - b[0] + 1) * (b[3] - b[1] + 1) - inter
    return inter / union if union > 0 else 0.0


def reference_box_evaluator(maps, gt_boxes, step, iou_percent=(30, 50, 70)):
    """(MaxBoxAccV2 per IoU threshold, MaxBoxAcc V1), in percent, as BoxEvaluator computes them."""
    thresholds = list(np.arange(0, 1, step))
    hits_v2 = {d: [0] * len(thresholds) for d in iou_percent}
    hits_v1 = [0] * len(thresholds)
    for scoremap, boxes in zip(maps, gt_boxes):
        low, high = float(np.min(scoremap)), float(np.max(scoremap))
        h, w = len(scoremap), len(scoremap[0])
        norm = [[0.0 if low == high else (float(scoremap[y][x]) - low) / (high - low) for x in range(w)]
                for y in range(h)]
        quantised = [[int(v * 255) for v in row] for row in norm]
        top = max(max(row) for row in quantised)
        cache = {}
        for t, tau in enumerate(thresholds):
            cut = int(tau * top)
            if cut not in cache:
                listing = reference_contours(quantised, cut) or [((0, 0, 0, 0), 0.0)]
                ious = [max(reference_iou(box, gt) for gt in boxes) for box, _ in listing]
                largest = max(range(len(listing)), key=lambda k: listing[k][1])  # the first largest
                cache[cut] = (max(ious), ious[largest])
            best, v1 = cache[cut]
            for d in iou_percent:
                hits_v2[d][t] += best >= d / 100
            hits_v1[t] += v1 >= 0.5
    n = len(maps)
    return [max(c * 100.0 / n for c in hits_v2[d]) for d in iou_percent], max(c * 100.0 / n for c in hits_v1)


# ------------------------------------------------------------------------------ test maps
def _rings(h, w):
    m = np.zeros((h, w))
    m[2:h - 2, 2:w - 2] = 1.0
    m[4:h - 4, 4:w - 4] = 0.2  # a hole at τ > 0.2
    m[5:h - 5, 5:w - 5] = 0.9  # an island in the hole
    m[6, 6] = 0.0  # a hole in the island
    return m


def _maps(rng):
    """Random and structured maps with their GT boxes (one or several), inclusive pixel coordinates."""
    smooth = ndi.gaussian_filter(rng.random((3, 14, 19)), (0, 1.5, 1.5))
    out = [
        (rng.random((9, 13)), [[1, 2, 8, 7]]),
        (rng.random((11, 7)), [[0, 0, 3, 4], [2, 5, 6, 10]]),  # several GT boxes
        (np.round(rng.random((10, 12)) * 3) / 3, [[2, 1, 9, 8]]),  # ties and plateaus
        (np.full((8, 9), 0.3), [[0, 0, 2, 2]]),  # constant map: an empty mask, box (0, 0, 0, 0)
        (_rings(16, 18), [[2, 2, 15, 13], [5, 5, 12, 10]]),
        (np.pad(np.ones((5, 6)), ((0, 4), (3, 0))), [[3, 0, 8, 4]]),  # touches the edges
        (1 - _rings(15, 15), [[0, 0, 14, 14]]),  # holes that reach the edge and nested ones
    ]
    out += [(m, [[3, 2, 12, 9]]) for m in smooth]
    return out


def test_reference_contours_match_opencv():
    """The reference's boxes, areas and listing order are OpenCV's (on masks with holes, islands and edges)."""
    rng = np.random.default_rng(3)
    masks = [(rng.random((9, 11)) > p) for p in (0.3, 0.5, 0.7)] + [_rings(16, 18) > 0.5, _rings(16, 18) > 0.1]
    for mask in masks:
        image = mask.astype(np.uint8) * 255
        contours = cv2.findContours(image, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE)[0]
        h, w = mask.shape
        got = []
        for c in contours:
            x, y, bw, bh = cv2.boundingRect(c)
            got.append(((x, y, min(x + bw, w - 1), min(y + bh, h - 1)), cv2.contourArea(c)))
        assert reference_contours(image, 0) == got


@pytest.mark.parametrize("step", [0.01, 0.001])
def test_wsolevaluation_equals_box_evaluator(step):
    maps_boxes = _maps(np.random.default_rng(0))
    maps, boxes = [m for m, _ in maps_boxes], [b for _, b in maps_boxes]
    if step == 0.001:
        maps, boxes = maps[:5], boxes[:5]
    v2, v1 = reference_box_evaluator(maps, boxes, step)
    scores = score_maps(maps, boxes, protocol="wsolevaluation", threshold_step=step)
    per_iou = scores.per_iou()
    for delta, expected in zip((0.3, 0.5, 0.7), v2):
        assert abs(100 * per_iou[delta] - expected) < 1e-9
    assert abs(100 * scores.value("maxboxacc_v2") - np.mean(v2)) < 1e-9
    assert abs(100 * scores.value("maxboxacc") - v1) < 1e-9


def test_wsolevaluation_resizes_maps_and_boxes_like_it():
    """Feature-size maps are resized with bicubic cv2.resize; resize_length=224-style box scaling truncates."""
    rng = np.random.default_rng(1)
    small = [rng.random((4, 5)), rng.random((6, 3))]
    sizes, boxes = [(20, 30), (25, 17)], [[[3, 4, 20, 15]], [[1, 1, 10, 20], [0, 5, 16, 24]]]
    resized = [cv2.resize(m, (w, h), interpolation=cv2.INTER_CUBIC) for m, (h, w) in zip(small, sizes)]
    v2, v1 = reference_box_evaluator(resized, boxes, 0.01)
    scores = score_maps(small, boxes, image_sizes=sizes, protocol="wsolevaluation", threshold_step=0.01)
    assert abs(100 * scores.value("maxboxacc_v2") - np.mean(v2)) < 1e-9
    assert abs(100 * scores.value("maxboxacc") - v1) < 1e-9
    length = 16
    at_length = [cv2.resize(m, (length, length), interpolation=cv2.INTER_CUBIC) for m in small]
    scaled = [[[int(float(c) * length / (w if k % 2 == 0 else h)) for k, c in enumerate(b)] for b in bs]
              for bs, (h, w) in zip(boxes, sizes)]
    v2, _ = reference_box_evaluator(at_length, scaled, 0.01)
    scores = score_maps(small, boxes, image_sizes=sizes, protocol="wsolevaluation", threshold_step=0.01,
                        resize_length=length)
    assert abs(100 * scores.value("maxboxacc_v2") - np.mean(v2)) < 1e-9


# ------------------------------------------------------------------------------ our protocol
def test_ours_equals_the_pipeline_functions():
    """The same numbers as sweep + maxboxacc / maxboxacc_v2, as evaluate_wsol computes them (τ chosen on val)."""
    rng = np.random.default_rng(2)
    maps = normalise_maps(ndi.gaussian_filter(rng.random((12, 20, 24)), (0, 2, 2)))
    boxes = np.stack([rng.integers(0, 8, 12), rng.integers(0, 6, 12), rng.integers(12, 24, 12),
                      rng.integers(10, 20, 12)], axis=1)
    splits = np.array(["val"] * 5 + ["test"] * 7)
    scores = score_maps(maps, boxes, splits=splits, held_out="val")
    thresholds = threshold_grid(0.01)
    result = {s: sweep(maps[splits == s], thresholds, boxes[splits == s]) for s in ("val", "test")}
    v1 = maxboxacc(result["val"].largest_iou, thresholds)
    v2 = maxboxacc_v2(result["val"].best_iou, result["test"].best_iou, thresholds)
    assert scores.value("gt_known_loc", split="test") == float((result["test"].largest_iou[:, v1.chosen_index]
                                                                >= 0.5).mean())
    assert scores.value("maxboxacc_v2", split="test") == float(np.mean(v2.test_accuracy))
    table = scores.table.query("split == 'test' and metric == 'maxboxacc_v2' and iou == iou")
    np.testing.assert_array_equal(table.threshold, v2.chosen_threshold)
    assert set(scores.table.tau_from) == {"val"}


def test_ours_several_boxes_sizes_and_top1():
    maps = [np.zeros((10, 10)), np.zeros((6, 8))]
    maps[0][1:4, 1:4] = 1
    maps[0][6:9, 6:9] = 1
    maps[1][1:3, 2:4] = 1  # feature size: resized onto a 12 × 16 image
    boxes = [[(6, 6, 9, 9), (0, 0, 4, 4)], [(4, 2, 8, 6)]]  # the largest (first) component hits the 2nd box
    scores = score_maps(maps, boxes, image_sizes=[(10, 10), (12, 16)], tau=0.5, labels=[3, 1], predictions=[3, 2])
    assert scores.value("maxboxacc_v2", iou=0.5) == 1.0  # best component vs best GT box
    assert scores.value("gt_known_loc") == 1.0
    assert scores.value("top1_loc") == 0.5  # the second image's class is wrong
    assert set(scores.table.tau_from) == {"fixed"}


def test_arguments_are_checked():
    maps, boxes = np.zeros((2, 8, 8)), [(0, 0, 4, 4)] * 2
    with pytest.raises(ValueError, match="tau=.*held_out"):
        score_maps(maps, boxes)
    with pytest.raises(ValueError, match="not inside"):
        score_maps(maps, [(0, 0, 9, 4)] * 2, tau=0.2)
    with pytest.raises(ValueError, match="NaN"):
        score_maps(np.full((2, 8, 8), np.nan), boxes, tau=0.2)
    with pytest.raises(ValueError, match="names no images"):
        score_maps(maps, boxes, splits=["test", "test"], held_out="val")
    with pytest.raises(ValueError, match="both labels and predictions"):
        score_maps(maps, boxes, tau=0.2, labels=[0, 1])


# ------------------------------------------------------------------------------ the command
def _files(tmp_path):
    """Four images (two val, two test), maps at feature size, one image with two GT boxes."""
    rng = np.random.default_rng(5)
    ids = ["a/1.jpg", "a/2.jpg", "b/3.jpg", "b/4.jpg"]
    maps = ndi.gaussian_filter(rng.random((4, 8, 8)), (0, 1, 1))
    boxes = pd.DataFrame({
        "image_id": ids + ["a/1.jpg"], "x0": [2, 4, 0, 6, 10], "y0": [2, 0, 4, 6, 10], "x1": [12, 14, 10, 16, 14],
        "y1": [10, 12, 16, 15, 15], "width": 16, "height": 16, "split": ["val", "val", "test", "test", "val"],
        "label": [0, 1, 2, 1, 0],
    })
    boxes.to_csv(tmp_path / "boxes.csv", index=False)
    pd.DataFrame({"image_id": ids, "predicted": [0, 1, 0, 1]}).to_parquet(tmp_path / "pred.parquet")
    np.savez(tmp_path / "maps.npz", **dict(zip(ids, maps)))
    np.save(tmp_path / "maps.npy", maps)
    (tmp_path / "ids.txt").write_text("\n".join(ids) + "\n")
    for image_id, m in zip(ids, maps):
        (tmp_path / "dir" / image_id).parent.mkdir(parents=True, exist_ok=True)
        np.save(tmp_path / "dir" / f"{image_id}.npy", m)
    return ids, maps, boxes


def test_command_reads_every_map_format_and_writes_parquet(tmp_path, capsys):
    ids, maps, boxes = _files(tmp_path)
    out = tmp_path / "scores.parquet"
    common = ["--boxes", str(tmp_path / "boxes.csv"), "--held-out", "val", "--predictions",
              str(tmp_path / "pred.parquet")]
    assert main(["score-maps", "--maps", str(tmp_path / "maps.npz"), *common, "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "top1_loc@0.5" in printed and "test" in printed
    table = pd.read_parquet(out)
    first = boxes.groupby("image_id", sort=False)
    expected = score_maps(list(maps), [g[["x0", "y0", "x1", "y1"]].to_numpy() for _, g in first],
                          image_sizes=[(16, 16)] * 4, splits=first.split.first().tolist(),
                          labels=first.label.first().tolist(), predictions=[0, 1, 0, 1], held_out="val")
    pd.testing.assert_frame_equal(table, expected.table)
    for maps_args in (["--maps", str(tmp_path / "maps.npy"), "--ids", str(tmp_path / "ids.txt")],
                      ["--maps", str(tmp_path / "dir")]):
        assert main(["score-maps", *maps_args, *common, "-o", str(out)]) == 0
        pd.testing.assert_frame_equal(pd.read_parquet(out), expected.table)
    assert main(["score-maps", "--maps", str(tmp_path / "dir"), "--boxes", str(tmp_path / "boxes.csv"),
                 "--protocol", "wsolevaluation", "--step", "0.01"]) == 0
    assert "wsolevaluation protocol" in capsys.readouterr().out


def _one_map(folder, value):
    folder.joinpath("boxes.csv").write_text("image_id,x0,y0,x1,y1\na/1.jpg,0,0,2,2\n")
    np.savez(folder / "maps.npz", **{"a/1.jpg": value})


@pytest.mark.parametrize("change, message", [
    (lambda p: p.joinpath("boxes.csv").write_text("image_id,x0,y0,x1,y1,colour\nzz,0,0,1,1,red\n"),
     "boxes.csv: unknown column(s) colour"),
    (lambda p: p.joinpath("boxes.csv").write_text("image_id,x0,y0,x1,y1\nzz,0,0,1,1\n"), "no map for image 'zz'"),
    (lambda p: p.joinpath("boxes.csv").write_text("image_id,x0,y0,x1,y1,width,height\na/1.jpg,0,0,30,4,16,16\n"),
     "box [0.0, 0.0, 30.0, 4.0] is outside its 16 × 16 image"),
    (lambda p: p.joinpath("boxes.csv").write_text("image_id,x0,y0,x1\na/1.jpg,0,0,3\n"), "missing column(s) y1"),
    (lambda p: p.joinpath("boxes.csv").write_text("image_id,x0,y0,x1,y1\na/1.jpg,0,zero,3,3\n"),
     "column y0, row 2: 'zero' is not a number"),
    (lambda p: _one_map(p, np.full((4, 4), np.nan)), "maps.npz[a/1.jpg]: contains NaN"),
    (lambda p: _one_map(p, np.zeros((2, 4, 4))), "maps.npz[a/1.jpg]: shape (2, 4, 4): need a non-empty 2-D"),
])
def test_command_bad_inputs_are_one_line(tmp_path, capsys, change, message):
    _files(tmp_path)
    change(tmp_path)
    code = main(["score-maps", "--maps", str(tmp_path / "maps.npz"), "--boxes", str(tmp_path / "boxes.csv"),
                 "--tau", "0.2"])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err


def test_command_argument_errors(tmp_path, capsys):
    _files(tmp_path)
    base = ["score-maps", "--boxes", str(tmp_path / "boxes.csv")]
    cases = [
        (["--maps", str(tmp_path / "maps.npy"), "--tau", "0.2"], "needs --ids FILE"),
        (["--maps", str(tmp_path / "maps.npz")], "pass --held-out SPLIT (e.g. val) or --tau 0.2"),
        (["--maps", str(tmp_path / "maps.npz"), "--held-out", "train"], "no rows of split 'train'"),
        (["--maps", str(tmp_path / "nowhere.npz"), "--tau", "0.2"], "nowhere.npz: no such file"),
        (["--maps", str(tmp_path / "maps.npz"), "--tau", "1.5"], "--tau 1.5: must be in [0, 1)"),
    ]
    for args, message in cases:
        assert main([*base, *args]) == 2
        assert message in capsys.readouterr().err


def test_the_public_scorer_gives_the_pipelines_numbers():
    """evaluate_wsol (the pipeline) and score_maps on the same maps: every V1 / V2 / paper number bit-identical."""
    import torch
    from test_wsol import WIDTHS, tiny_split

    from softmax_mi.localisation.evaluate import WSOLEvalConfig, evaluate_wsol, maps_with_boxes
    from softmax_mi.models import GapCNN
    from softmax_mi.wsol import InputPipeline

    torch.manual_seed(0)
    model = GapCNN(2, widths=WIDTHS).eval()
    to_input = InputPipeline(1, "gap_cnn", None, "cpu")
    splits = [("val_fullsup", tiny_split(6, seed=2)), ("test", tiny_split(5, seed=3))]
    cfg = WSOLEvalConfig(methods=["cam", "infocam"], threshold_step=0.05, batch_size=4)
    metrics, _ = evaluate_wsol(model, splits, to_input, cfg)
    names = np.repeat([name for name, _ in splits], [len(split) for _, split in splits])
    for method in ("cam", "infocam"):
        parts = [maps_with_boxes(model, split, to_input, {method: 0.0}, region_k=3) for _, split in splits]
        inputs = dict(maps=np.concatenate([p[1][method] for p in parts]),
                      boxes=np.concatenate([split.boxes for _, split in splits]), splits=names,
                      labels=np.concatenate([split.labels for _, split in splits]),
                      predictions=np.concatenate([p[0] for p in parts]))
        chosen = score_maps(**inputs, held_out="val_fullsup", threshold_step=0.05).table
        fixed = score_maps(**inputs, tau=cfg.paper_threshold).table
        rows = metrics[metrics.method == method]
        for protocol, table, ours, theirs in (("maxboxacc", chosen, "gt_known_loc", "gt_known_loc"),
                                              ("maxboxacc", chosen, "top1_loc", "top1_loc"),
                                              ("paper", fixed, "gt_known_loc", "gt_known_loc"),
                                              ("paper", fixed, "top1_loc", "top1_loc"),
                                              ("maxboxacc_v2", chosen, "maxboxacc_v2", "box_acc"),
                                              ("maxboxacc_v2", chosen, "maxboxacc_v2", "maxboxacc_v2")):
            expected = rows[(rows.protocol == protocol) & (rows.metric == theirs)].sort_values(["split", "iou"])
            got = table[table.metric == ours].sort_values(["split", "iou"])
            got = got[got.iou.isna()] if theirs == "maxboxacc_v2" else got[got.iou.notna()]
            assert got.value.tolist() == expected.value.tolist(), (method, protocol, theirs)
            np.testing.assert_array_equal(got.threshold, expected.threshold)


def test_sweep_takes_several_gt_boxes_per_image():
    """[N, G, 4] GT boxes: the vectorised sweep equals the loop, and each IoU is the best over the image's boxes."""
    from softmax_mi.localisation import sweep_reference

    rng = np.random.default_rng(4)
    maps = normalise_maps(ndi.gaussian_filter(rng.random((5, 12, 15)), (0, 1, 1)))
    gt = np.stack([rng.integers(0, 6, (5, 3)), rng.integers(0, 5, (5, 3)), rng.integers(7, 15, (5, 3)),
                   rng.integers(6, 12, (5, 3))], axis=-1)
    gt[0, 2] = 0  # a padding box
    thresholds = threshold_grid(0.1)
    several = sweep(maps, thresholds, gt)
    reference = sweep_reference(maps, thresholds, gt)
    for field in ("largest_iou", "best_iou"):
        np.testing.assert_array_equal(getattr(several, field), getattr(reference, field))
        each = np.stack([getattr(sweep(maps, thresholds, gt[:, g]), field) for g in range(3)])
        if field == "best_iou":
            np.testing.assert_array_equal(several.best_iou, each.max(axis=0))
    np.testing.assert_array_equal(several.largest_iou, np.max([sweep(maps, thresholds, gt[:, g]).largest_iou
                                                               for g in range(3)], axis=0))
