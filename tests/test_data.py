import gzip
import os

import numpy as np
import pytest
from conftest import SHARED_DATA

from l2l import data

needs_mirror = pytest.mark.skipif(not os.path.isdir(SHARED_DATA), reason="the dataset mirror ../shared/data is not here")


@needs_mirror
def test_mnist_and_fashion_mnist_from_the_data_directory(monkeypatch):
    monkeypatch.setenv(data.DATA_DIR_VARIABLE, SHARED_DATA)
    for loader in (data.load_mnist, data.load_fashion_mnist):
        (x_train, y_train), (x_test, y_test) = loader()
        assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
        assert x_train.dtype == np.uint8 and y_train.shape == (60000,)
        assert set(np.unique(y_test)) == set(range(10))
        assert 25 < x_train.mean() < 80  # real images, not zeros


@needs_mirror
def test_cifar10_uses_the_first_1000_test_images_without_test_batch(monkeypatch):
    monkeypatch.setenv(data.DATA_DIR_VARIABLE, SHARED_DATA)
    (x_train, y_train), (x_test, y_test) = data.load_cifar10()
    assert x_train.shape == (50000, 32, 32, 3) and y_train.shape == (50000, 1)
    assert x_test.shape == (1000, 32, 32, 3)
    assert np.bincount(y_train[:, 0]).tolist() == [5000] * 10


def test_reads_the_publishers_formats_from_any_directory(tmp_path, monkeypatch, nprng):
    images = nprng.integers(0, 256, size=(5, 28, 28), dtype=np.uint8)
    labels = np.arange(5, dtype=np.uint8)
    np.savez(tmp_path / "mnist.npz", x_train=images, y_train=labels, x_test=images[:2], y_test=labels[:2])
    (tmp_path / "fashion-mnist").mkdir()
    for prefix, x, y in [("train", images, labels), ("t10k", images[:2], labels[:2])]:
        with gzip.open(tmp_path / "fashion-mnist" / f"{prefix}-images-idx3-ubyte.gz", "wb") as f:
            f.write(b"\x00\x00\x08\x03" + b"".join(int(d).to_bytes(4, "big") for d in x.shape) + x.tobytes())
        with gzip.open(tmp_path / "fashion-mnist" / f"{prefix}-labels-idx1-ubyte.gz", "wb") as f:
            f.write(b"\x00\x00\x08\x01" + len(y).to_bytes(4, "big") + y.tobytes())
    monkeypatch.setenv(data.DATA_DIR_VARIABLE, str(tmp_path))
    (x, y), (xt, yt) = data.load_mnist()
    np.testing.assert_array_equal(x, images)
    (x, y), (xt, yt) = data.load_fashion_mnist()
    np.testing.assert_array_equal(x, images)
    np.testing.assert_array_equal(yt, labels[:2])


def test_missing_dataset_fails_clearly_naming_the_variable(tmp_path, monkeypatch):
    import keras

    def offline():
        raise OSError("no network")

    monkeypatch.setattr(keras.datasets.mnist, "load_data", offline)
    monkeypatch.setenv(data.DATA_DIR_VARIABLE, str(tmp_path))
    with pytest.raises(data.DatasetNotFound, match="MNIST could not be loaded: it is not in L2L_DATA_DIR="):
        data.load_mnist()
    monkeypatch.delenv(data.DATA_DIR_VARIABLE)
    with pytest.raises(data.DatasetNotFound, match="L2L_DATA_DIR is not set"):
        data.load_mnist()
    monkeypatch.setenv(data.DATA_DIR_VARIABLE, str(tmp_path / "nowhere"))
    with pytest.raises(data.DatasetNotFound, match="is not a directory"):
        data.load_mnist()
