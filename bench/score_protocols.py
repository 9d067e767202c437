"""How much the WSOL scoring convention moves the numbers: our default vs wsolevaluation's, on identical maps.

The maps are CAM-like: 14 × 14 feature maps (a Gaussian blob on the object, a weaker distractor blob elsewhere, and
noise), scored on 224 × 224 images whose GT box surrounds the object (random size and place, seeded). Each protocol
resizes the feature maps its own way (ours: bilinear; wsolevaluation: bicubic). Half the images are ``val``, half
``test``. Printed, for MaxBoxAccV2 (mean over IoU 0.3 / 0.5 / 0.7) and MaxBoxAcc (V1) on ``test``, in points:

* the whole convention: ours vs wsolevaluation, both with τ chosen on ``val`` (resizing, quantisation, ``>`` vs
  ``>=``, holes, inclusive boxes clipped to ``width - 1``, the τ grid, the largest-contour rule);
* the box rule alone: the same, on maps already resized to 224 × 224 (bicubic) for both;
* the choice of τ: wsolevaluation's max over τ on ``test`` itself vs τ chosen on ``val`` (optimism of selecting on
  the scored split).

    python bench/score_protocols.py               # 400 images, about a minute on one core
    python bench/score_protocols.py --images 1000 --seed 1
"""

from __future__ import annotations

import argparse
import time

import cv2
import numpy as np

from softmax_mi.localisation.score import score_maps


def cam_like_maps(n: int, seed: int, feature: int = 14, image: int = 224):
    rng = np.random.default_rng(seed)
    grid = (np.arange(feature) + 0.5) / feature
    maps, boxes = np.zeros((n, feature, feature)), np.zeros((n, 4))
    for i in range(n):
        w, h = rng.uniform(0.25, 0.8, 2)
        x0, y0 = rng.uniform(0, 1 - w), rng.uniform(0, 1 - h)
        cx, cy = x0 + w * rng.uniform(0.3, 0.7), y0 + h * rng.uniform(0.3, 0.7)
        blob = np.exp(-(((grid[None, :] - cx) / (0.35 * w)) ** 2 + ((grid[:, None] - cy) / (0.35 * h)) ** 2))
        dx, dy = rng.uniform(0, 1, 2)
        distractor = 0.5 * np.exp(-(((grid[None, :] - dx) / 0.1) ** 2 + ((grid[:, None] - dy) / 0.1) ** 2))
        maps[i] = blob + distractor + 0.15 * rng.random((feature, feature))
        boxes[i] = np.round(np.array([x0, y0, x0 + w, y0 + h]) * image)
    return maps, boxes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    maps, boxes = cam_like_maps(args.images, args.seed)
    splits = np.where(np.arange(args.images) % 2 == 0, "val", "test")
    common = {"image_sizes": [(224, 224)] * args.images, "splits": splits}
    started = time.perf_counter()
    ours = score_maps(maps, boxes, held_out="val", **common)
    theirs_val = score_maps(maps, boxes, protocol="wsolevaluation", held_out="val", **common)
    theirs_same = score_maps(maps, boxes, protocol="wsolevaluation", **common)
    resized = np.stack([cv2.resize(m, (224, 224), interpolation=cv2.INTER_CUBIC) for m in maps])
    ours_cubic = score_maps(resized, boxes, held_out="val", **common)
    theirs_cubic = score_maps(resized, boxes, protocol="wsolevaluation", held_out="val", **common)
    elapsed = time.perf_counter() - started

    def pct(scores, metric):
        return 100 * scores.value(metric, split="test")

    print(f"{args.images} CAM-like maps (14 × 14 → 224 × 224), seed {args.seed}, test split, points; {elapsed:.1f} s")
    print(f"{'':46s} {'MaxBoxAccV2':>12s} {'MaxBoxAcc V1':>13s}")
    for name, scores in (("ours, τ from val", ours), ("wsolevaluation, τ from val", theirs_val),
                         ("wsolevaluation, max over τ on test (its own)", theirs_same)):
        print(f"{name:46s} {pct(scores, 'maxboxacc_v2'):12.2f} {pct(scores, 'maxboxacc'):13.2f}")
    for delta in (0.3, 0.5, 0.7):
        print(f"  IoU {delta}: ours {100 * ours.per_iou('test')[delta]:.2f}, wsolevaluation (τ from val) "
              f"{100 * theirs_val.per_iou('test')[delta]:.2f}")
    print(f"whole convention (wsolevaluation − ours, τ from val): "
          f"V2 {pct(theirs_val, 'maxboxacc_v2') - pct(ours, 'maxboxacc_v2'):+.2f}, "
          f"V1 {pct(theirs_val, 'maxboxacc') - pct(ours, 'maxboxacc'):+.2f}")
    print(f"box rule alone (same bicubic 224 × 224 maps; wsolevaluation − ours, τ from val): "
          f"V2 {pct(theirs_cubic, 'maxboxacc_v2') - pct(ours_cubic, 'maxboxacc_v2'):+.2f}, "
          f"V1 {pct(theirs_cubic, 'maxboxacc') - pct(ours_cubic, 'maxboxacc'):+.2f}")
    print(f"τ chosen on the scored split (wsolevaluation same split − τ from val): "
          f"V2 {pct(theirs_same, 'maxboxacc_v2') - pct(theirs_val, 'maxboxacc_v2'):+.2f}, "
          f"V1 {pct(theirs_same, 'maxboxacc') - pct(theirs_val, 'maxboxacc'):+.2f}")


if __name__ == "__main__":
    main()
