"""Cost of ``softmax-mi localise`` over a plain forward pass of the same backbone (target: ≤ 1.1×).

256 real photos (scikit-image's and scikit-learn's example photos, random crops and flips, decoded and resized to
224 px beforehand), EfficientNet-Lite0 with its shipped ImageNet weights, the same batch size and threads for every
row:

- ``plain forward``: scale the pixels, one forward pass, softmax (the floor);
- ``Localiser``: the same + top-k, CAM and infoCAM maps of the top-k classes from the hooks, boxes of the
  ``box_ranks`` best classes (upsample to 224 px, threshold, largest component), as ``softmax-mi localise`` runs it;
- ``Localiser, boxes for all top-5``: ``box_ranks=5`` (10 boxes per image instead of 2);
- ``... + decode files + overlays`` (information): the whole command's work from PNG files, which adds decoding and
  writing one overlay PNG per image.

The library rows run interleaved batch by batch, and each batch counts with its best time of ``--repeats``, so
that a change of load on a shared machine hits every row alike; the last row is the best of ``--repeats`` whole
runs. Wall clock and process CPU time (all threads).

    python bench/localise.py                  # 2 threads, batch 32, 256 images, 3 repeats: ~8 min on 2 shared cores
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch
from cam import best_of  # bench/cam.py: best wall and CPU time over repeats (bench/ is on sys.path when run)
from PIL import Image


def photos(count: int, seed: int = 0) -> list[Image.Image]:
    """``count`` photos: random crops (50–100 % of each side) and flips of the example photos that ship offline."""
    from sklearn.datasets import load_sample_images

    sources = [Image.fromarray(image) for image in load_sample_images().images]
    try:
        import skimage.data as data

        sources += [Image.fromarray(getattr(data, name)()) for name in ("chelsea", "coffee", "astronaut", "rocket")]
    except ImportError:  # scikit-image is in the test extra; two photos are enough to time
        pass
    rng = np.random.default_rng(seed)
    out = []
    for index in range(count):
        image = sources[index % len(sources)]
        width, height = image.size
        w, h = (int(side * rng.uniform(0.5, 1.0)) for side in (width, height))
        x, y = int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1))
        crop = image.crop((x, y, x + w, y + h))
        out.append(crop.transpose(Image.FLIP_LEFT_RIGHT) if rng.random() < 0.5 else crop)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from softmax_mi.localise import Localiser, localise_files

    localiser = Localiser.pretrained()  # EfficientNet-Lite0, cam + infocam, top-5, boxes of the top-1
    all_boxes = Localiser.pretrained(box_ranks=5)
    images = photos(args.images)
    side = localiser.image_size
    pixels = torch.from_numpy(np.stack([np.asarray(i.resize((side, side), Image.BILINEAR)) for i in images]))
    pixels = pixels.permute(0, 3, 1, 2).contiguous()
    sizes = np.array([image.size for image in images])
    batches = list(zip(pixels.split(args.batch_size), np.array_split(sizes, len(pixels.split(args.batch_size)))))

    def plain(x, _size):
        with torch.no_grad():
            localiser.model(localiser.preprocess(x)).softmax(dim=1)

    runs = {"plain forward (Lite0 + softmax)": plain,
            "Localiser (cam + infocam, top-5 maps, top-1 boxes)": localiser,
            "Localiser, boxes for all top-5": all_boxes}
    localiser(*batches[0])  # warm-up (first-call allocations, hooks)
    # interleaved batch by batch, the best of the repeats per batch: a change of load hits every row alike
    taken = {name: np.full((len(batches), args.repeats, 2), np.inf) for name in runs}
    for index, batch in enumerate(batches):
        for repeat in range(args.repeats):
            for name, function in runs.items():
                taken[name][index, repeat] = best_of(lambda: function(*batch), 1)
    rows = [(name, *times.min(axis=1).sum(axis=0)) for name, times in taken.items()]

    with tempfile.TemporaryDirectory() as folder:
        paths = []
        for index, image in enumerate(images):
            paths.append(str(Path(folder) / f"photo{index:03d}.png"))
            image.save(paths[-1], compress_level=1)

        def files():
            for _ in localise_files(localiser, paths, batch_size=args.batch_size, overlays=Path(folder) / "overlays"):
                pass

        rows.append(("... + decode files + overlays (whole command)", *best_of(files, args.repeats)))
    floor_wall, floor_cpu = rows[0][1], rows[0][2]
    print(f"{args.images} images, batch {args.batch_size}, {args.threads} threads, best of {args.repeats}\n")
    print("| run | wall s | × plain (wall) | CPU s | × plain (CPU) |")
    print("|---|---:|---:|---:|---:|")
    for name, wall, cpu in rows:
        print(f"| {name} | {wall:.2f} | {wall / floor_wall:.2f} | {cpu:.2f} | {cpu / floor_cpu:.2f} |")


if __name__ == "__main__":
    main()
