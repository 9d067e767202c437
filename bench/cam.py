"""Speed of our maps and of our MaxBoxAccV2 sweep against the peers, on identical inputs, in one run.

Part 1 — predictions + maps for 256 images on a torchvision ResNet-18 (random weights; speed does not depend on
them): a plain forward pass (the floor), ours (one forward pass → logits + CAM and infoCAM for the predicted
class, upsampled to the input and normalised), torchcam ``CAM`` and pytorch-grad-cam ``GradCAM``.
Part 2 — MaxBoxAccV2 over 1,000 maps × 1,000 thresholds (64×64 maps bilinearly upsampled from 16×16 smooth
features, as a GAP-CNN gives): ours (:func:`softmax_mi.localisation.sweep`) vs the straightforward per-threshold
loop (:func:`softmax_mi.localisation.sweep_reference`, ``scipy.ndimage.label`` per map and τ) and an OpenCV
contour loop (wsolevaluation's recipe: ``findContours`` + ``boundingRect`` per map and τ). The loops are timed on
``--reference-maps`` maps and scaled linearly to 1,000 (their cost is exactly linear in the maps); ours must give
identical numbers to the scipy loop on those maps. The OpenCV loop picks the largest contour by polygon area, so
its V1 numbers may differ slightly; V2 agreement is reported.

    python bench/cam.py                       # 2 threads, about 3 minutes on 2 CPU cores
    python bench/cam.py --reference-maps 1000 # time the loops on all maps (slow)
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import scipy.ndimage as ndi
import torch
import torchvision

from softmax_mi.cam import FeatureExtractor, all_maps, class_maps, normalise, upsample
from softmax_mi.localisation import iou, normalise_maps, sweep, sweep_reference, threshold_grid


def best_of(function, repeats: int) -> tuple[float, float]:
    """Best wall time and best CPU time (all threads of this process) over ``repeats`` calls. On a shared,
    loaded machine the CPU time is the steadier measure of the work done."""
    walls, cpus = [], []
    for _ in range(repeats):
        started, cpu_started = time.perf_counter(), time.process_time()
        function()
        walls.append(time.perf_counter() - started)
        cpus.append(time.process_time() - cpu_started)
    return min(walls), min(cpus)


def timed(function) -> tuple[float, float]:
    return best_of(function, 1)


def bench_maps(n_images: int, batch_size: int, size: int, repeats: int) -> list[tuple[str, float]]:
    from pytorch_grad_cam import GradCAM
    from torchcam.methods import CAM

    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None).eval()
    images = torch.randn(n_images, 3, size, size)
    batches = list(images.split(batch_size))

    def plain():
        with torch.inference_mode():
            for x in batches:
                model(x).argmax(1)

    def ours():
        with FeatureExtractor(model) as extract, torch.inference_mode():
            for x in batches:
                activations = extract(x)
                predicted = activations.predicted
                for method in ("cam", "infocam"):
                    normalise(upsample(class_maps(activations, method, predicted), (size, size)))

    def ours_cam_only():
        with FeatureExtractor(model) as extract, torch.inference_mode():
            for x in batches:
                activations = extract(x)
                normalise(class_maps(activations, "cam", activations.predicted))  # torchcam's output

    def torchcam_cam():
        with CAM(model, target_layer="layer4", fc_layer="fc") as extractor, torch.no_grad():
            for x in batches:
                scores = model(x)
                extractor(scores.argmax(1).tolist(), scores)

    def gradcam():
        with GradCAM(model=model, target_layers=[model.layer4]) as explainer:
            for x in batches:
                explainer(input_tensor=x, targets=None)  # its own forward's top class; logits in .outputs

    plain()  # warm-up
    rows = [("plain forward (floor)", best_of(plain, repeats))]
    rows.append(("ours: logits + CAM + infoCAM (1 pass)", best_of(ours, repeats)))
    rows.append(("ours: logits + CAM at feature size (as torchcam)", best_of(ours_cam_only, repeats)))
    rows.append(("torchcam CAM", best_of(torchcam_cam, repeats)))
    rows.append(("pytorch-grad-cam GradCAM", best_of(gradcam, repeats)))
    # sanity: ours == torchcam on one batch
    x = batches[0]
    with CAM(model, target_layer="layer4", fc_layer="fc") as extractor, torch.no_grad():
        scores = model(x)
        reference = extractor(scores.argmax(1).tolist(), scores)[0]
    with FeatureExtractor(model) as extract:
        _, maps = all_maps(extract, x, scores.argmax(1), ["cam"])
    assert torch.allclose(normalise(maps["cam"]), reference, atol=1e-5), "ours differs from torchcam CAM"
    return rows


def cv2_loop(maps: np.ndarray, thresholds: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """wsolevaluation-style loop: OpenCV contours per map and τ; largest contour by area (V1) and all (V2)."""
    import cv2

    largest = np.zeros((len(maps), len(thresholds)))
    best = np.zeros((len(maps), len(thresholds)))
    for i, scoremap in enumerate(maps):
        for t, tau in enumerate(thresholds):
            mask = (scoremap >= tau).astype(np.uint8)
            contours = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)[0]
            if not contours:
                continue
            boxes = []
            for contour in contours:
                x, y, w, h = cv2.boundingRect(contour)
                boxes.append([x, y, x + w, y + h])
            ious = iou(np.array(boxes), gt[i])
            largest[i, t] = ious[int(np.argmax([cv2.contourArea(c) for c in contours]))]
            best[i, t] = ious.max()
    return largest, best


def bench_sweep(n_maps: int, n_thresholds: int, reference_maps: int, size: int) -> tuple[list, dict]:
    rng = np.random.default_rng(0)
    coarse = ndi.gaussian_filter(rng.random((n_maps, size // 4, size // 4)), (0, 1.0, 1.0))
    maps = normalise_maps(
        torch.nn.functional.interpolate(torch.from_numpy(coarse)[:, None], size=(size, size), mode="bilinear",
                                        align_corners=False)[:, 0].numpy()
    )
    x0, y0 = rng.integers(0, size // 2, n_maps), rng.integers(0, size // 2, n_maps)
    gt = np.stack([x0, y0, x0 + rng.integers(8, size // 2, n_maps), y0 + rng.integers(8, size // 2, n_maps)], 1)
    thresholds = threshold_grid(1.0 / n_thresholds)

    result = {}
    ours_s = timed(lambda: result.setdefault("ours", sweep(maps, thresholds, gt)))
    ours = result["ours"]
    k = reference_maps
    scale = n_maps / k
    reference_s = timed(lambda: result.setdefault("reference", sweep_reference(maps[:k], thresholds, gt[:k])))
    reference_s = (reference_s[0] * scale, reference_s[1] * scale)
    reference = result["reference"]
    cv2_s = timed(lambda: result.setdefault("cv2", cv2_loop(maps[:k], thresholds, gt[:k])))
    cv2_s = (cv2_s[0] * scale, cv2_s[1] * scale)
    cv_largest, cv_best = result["cv2"]

    identical = all(
        np.array_equal(getattr(ours, f)[:k], getattr(reference, f))
        for f in ("largest_box", "largest_iou", "best_iou", "n_components")
    )
    v2 = {delta: (ours.best_iou >= delta).mean(0).max() for delta in (0.3, 0.5, 0.7)}
    checks = {
        "identical_to_scipy_loop": identical,
        "maxboxacc_v2_ours_all_maps": float(np.mean(list(v2.values()))),
        "v2_agreement_with_cv2": float(((cv_best >= 0.5) == (ours.best_iou[:k] >= 0.5)).mean()),
        "v1_agreement_with_cv2": float(((cv_largest >= 0.5) == (ours.largest_iou[:k] >= 0.5)).mean()),
        "mean_components": float(ours.n_components.mean()),
    }
    rows = [
        (f"ours: vectorised sweep ({n_maps} maps)", ours_s),
        (f"scipy.ndimage.label per map × τ (timed on {k}, scaled)", reference_s),
        (f"OpenCV findContours per map × τ (timed on {k}, scaled)", cv2_s),
    ]
    return rows, checks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--maps", type=int, default=1000)
    parser.add_argument("--thresholds", type=int, default=1000)
    parser.add_argument("--map-size", type=int, default=64)
    parser.add_argument("--reference-maps", type=int, default=100)
    parser.add_argument("--skip-maps", action="store_true")
    parser.add_argument("--skip-sweep", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads, device cpu")

    if not args.skip_maps:
        rows = bench_maps(args.images, args.batch_size, args.image_size, args.repeats)
        floor, ours = rows[0][1], rows[1][1]
        print(f"\n### Predictions + maps, {args.images} images {args.image_size}×{args.image_size}, ResNet-18 "
              f"(best of {args.repeats}; wall and process CPU seconds)\n")
        print("| method | wall s | CPU s | CPU × plain forward | CPU: peer / ours |")
        print("|---|---:|---:|---:|---:|")
        for name, (wall, cpu) in rows:
            print(f"| {name} | {wall:.2f} | {cpu:.2f} | {cpu / floor[1]:.2f} | {cpu / ours[1]:.2f} |")

    if args.skip_sweep:
        return
    rows, checks = bench_sweep(args.maps, args.thresholds, args.reference_maps, args.map_size)
    ours = rows[0][1]
    print(f"\n### MaxBoxAccV2 sweep, {args.maps} maps {args.map_size}×{args.map_size} × {args.thresholds} thresholds\n")
    print("| method | wall s | CPU s | CPU: peer / ours |")
    print("|---|---:|---:|---:|")
    for name, (wall, cpu) in rows:
        print(f"| {name} | {wall:.2f} | {cpu:.2f} | {cpu / ours[1]:.1f}× |")
    print()
    for key, value in checks.items():
        print(f"- {key}: {value}")


if __name__ == "__main__":
    main()
