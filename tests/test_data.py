import gzip
import os

import numpy as np
import pytest
from conftest import SHARED_DATA

from l2l import data

needs_mirror = pytest.mark.skipif(not os.path.isdir(SHARED_DATA), reason="no dataset mirror: set L2L_DATA_DIR (or put it at ../shared/data)")


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
def test_the_book_splits_are_disjoint_and_the_budget_split_keeps_its_fingerprints(monkeypatch):
    monkeypatch.setenv(data.DATA_DIR_VARIABLE, SHARED_DATA)
    split = data.mnist_splits()
    chapter = ["meta_train", "valid", "test_train", "test_heldout"]
    size = lambda n: int(split[n].x.shape[0])
    assert [size(n) for n in chapter] == [40000, 10000, 10000, 10000]
    # Disjoint images: an image of one part appears in another only as one of MNIST's rare exact duplicates.
    rows = {n: {bytes(r) for r in np.round(split[n].x.numpy() * 255).astype(np.uint8)} for n in chapter}
    for i, a in enumerate(chapter):
        for b in chapter[i + 1 :]:
            assert len(rows[a] & rows[b]) < 5, (a, b)
    assert size("fashion_train") == size("fashion_tune") == 10000 and size("fashion_meta_train") == 40000
    fashion = ["fashion_meta_train", "fashion_tune", "fashion_train"]
    rows = {n: {bytes(r) for r in np.round(split[n].x.numpy() * 255).astype(np.uint8)} for n in fashion}
    for i, a in enumerate(fashion):
        for b in fashion[i + 1 :]:
            assert len(rows[a] & rows[b]) < 20, (a, b)  # the general optimiser meta-trains on images no panel tests on
    # The budget runs' keys hash these fingerprints: they must never move.
    assert split["budget_meta_train"].name == "mnist-train[:50000]" and split["budget_valid"].name == "mnist-train[50000:]"
    assert split["budget_meta_train"].fingerprint.startswith("fcd4fc49d5faa9ca")


@needs_mirror
def test_cifar10_uses_the_first_1000_test_images_without_test_batch(monkeypatch):
    monkeypatch.setenv(data.DATA_DIR_VARIABLE, SHARED_DATA)
    (x_train, y_train), (x_test, y_test) = data.load_cifar10()
    assert x_train.shape == (50000, 32, 32, 3) and y_train.shape == (50000, 1)
    assert x_test.shape == (1000, 32, 32, 3)
    assert np.bincount(y_train[:, 0]).tolist() == [5000] * 10



@needs_mirror
def test_the_cifar_split_keeps_meta_training_selection_and_test_images_apart(monkeypatch):
    monkeypatch.setenv(data.DATA_DIR_VARIABLE, SHARED_DATA)
    split = data.cifar_splits()
    size = lambda n: int(split[n].x.shape[0])
    assert [size(n) for n in ["meta_train", "valid", "test_train", "test_heldout"]] == [36000, 4000, 10000, 1000]
    rows = {n: {bytes(r) for r in np.round(split[n].x.numpy() * 255).astype(np.uint8)} for n in split}
    names = sorted(split)
    assert all(len(rows[a] & rows[b]) < 3 for i, a in enumerate(names) for b in names[i + 1 :])  # CIFAR has a few exact duplicates
    assert split["test_train"].x.shape[1] == 32 * 32 * 3 and 0.3 < float(split["valid"].x.numpy().mean()) < 0.6

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


def _mirror(tmp_path, **files):
    """A data folder holding the given relative paths with the given bytes."""
    for name, content in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return tmp_path


@needs_mirror
def test_a_truncated_or_damaged_file_is_named_with_the_fix(monkeypatch, tmp_path):
    data._check_sum.cache_clear(), data._sums.cache_clear()
    good = open(os.path.join(SHARED_DATA, "mnist.npz"), "rb").read()
    folder = _mirror(tmp_path / "a", **{"mnist.npz": good[: len(good) // 2]})
    monkeypatch.setenv(data.DATA_DIR_VARIABLE, str(folder))
    with pytest.raises(data.DatasetDamaged, match=r"mnist.npz' cannot be read .*damaged or truncated; copy it again"):
        data.load_mnist()
    # With a SHA256SUMS beside it, the damage is caught before the file is parsed, with both hashes.
    sums = open(os.path.join(SHARED_DATA, "SHA256SUMS")).read()
    folder = _mirror(tmp_path / "b", **{"mnist.npz": good[:-1] + bytes([good[-1] ^ 1]), "SHA256SUMS": sums.encode()})
    monkeypatch.setenv(data.DATA_DIR_VARIABLE, str(folder))
    with pytest.raises(data.DatasetDamaged, match=r"mnist.npz' is damaged: its sha256 is [0-9a-f]{64}, .*SHA256SUMS says 731c5ac6"):
        data.load_mnist()


def test_missing_pieces_of_a_dataset_are_named(monkeypatch, tmp_path):
    folder = _mirror(tmp_path, **{"fashion-mnist/train-images-idx3-ubyte.gz": b"x", "cifar-10-batches-py/data_batch_1": b"x"})
    monkeypatch.setenv(data.DATA_DIR_VARIABLE, str(folder))
    with pytest.raises(data.DatasetNotFound, match=r"lacks \['train-labels-idx1-ubyte.gz', 't10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz'\]"):
        data.load_fashion_mnist()
    with pytest.raises(data.DatasetDamaged, match="data_batch_1' cannot be read"):
        data.load_cifar10()
    (folder / "cifar-10-batches-py" / "data_batch_1").unlink()
    (folder / "cifar-10-batches-py" / "data_batch_2").write_bytes(b"x")
    with pytest.raises(data.DatasetNotFound, match=r"CIFAR-10 batch '.*data_batch_1' is missing: .*L2L_DATA_DIR"):
        data.load_cifar10()


def _cifar_pickle(path, n, offset):
    import pickle

    rng = np.random.default_rng(offset)
    batch = {b"batch_label": b"synthetic", b"labels": [int(v) for v in (np.arange(n) + offset) % 10], b"data": rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)}
    path.write_bytes(pickle.dumps(batch, protocol=2))
    return batch


def test_cifar10_loader_reads_the_publishers_layout_from_a_small_synthetic_folder(monkeypatch, tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    batches = [_cifar_pickle(folder / f"data_batch_{i}", 4, i) for i in range(1, 6)]
    test = _cifar_pickle(folder / "test_batch", 3, 9)
    monkeypatch.setenv(data.DATA_DIR_VARIABLE, str(tmp_path))
    (x, y), (tx, ty) = data.load_cifar10()
    assert x.shape == (20, 32, 32, 3) and y.shape == (20, 1) and tx.shape == (3, 32, 32, 3)
    # Row-major R, then G, then B planes of 32 x 32 become [32, 32, 3] pixels.
    first = batches[0][b"data"][0]
    assert x[0, 5, 7, 0] == first[5 * 32 + 7] and x[0, 5, 7, 1] == first[1024 + 5 * 32 + 7] and x[0, 5, 7, 2] == first[2048 + 5 * 32 + 7]
    assert list(y[4:8, 0]) == [2, 3, 4, 5] and list(ty[:, 0]) == list(np.asarray(test[b"labels"]))


def test_a_cifar_batch_that_would_run_code_is_refused(monkeypatch, tmp_path):
    import pickle

    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    (folder / "data_batch_1").write_bytes(pickle.dumps({b"data": os.getcwd}))  # a pickle naming a function
    monkeypatch.setenv(data.DATA_DIR_VARIABLE, str(tmp_path))
    with pytest.raises(data.DatasetDamaged, match="refusing to load posix.getcwd"):
        data.load_cifar10()
