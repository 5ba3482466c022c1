"""Datasets from one data directory, with Keras' download as the fallback.

Set L2L_DATA_DIR to a folder holding the publishers' files:

    mnist.npz                              (Keras' own MNIST file)
    fashion-mnist/*-idx*-ubyte.gz          (Zalando's four IDX files)
    cifar-10-batches-py/data_batch_1..5    (the python pickles; test_batch if you have it)
    cifar10_test_first1000.npz             (used only where test_batch is absent)

A file that is absent there is downloaded by Keras as usual; where neither
works the error names the variable. Where the folder has a SHA256SUMS file
(as the project's mirror does), every file read is checked against it first,
and a damaged file is named with its expected and actual hash.
"""

import functools
import gzip
import hashlib
import os
import pickle
import zipfile

import numpy as np

DATA_DIR_VARIABLE = "L2L_DATA_DIR"


class DatasetNotFound(RuntimeError):
    pass


def data_dir():
    path = os.environ.get(DATA_DIR_VARIABLE)
    if path and not os.path.isdir(path):
        raise DatasetNotFound(f"{DATA_DIR_VARIABLE}={path!r} is not a directory: point it at the folder holding mnist.npz, fashion-mnist/ and cifar-10-batches-py/")
    return path


class DatasetDamaged(RuntimeError):
    pass


def _local(*parts):
    root = data_dir()
    if root is None:
        return None
    path = os.path.join(root, *parts)
    if not os.path.exists(path):
        return None
    _check_sum(root, "/".join(parts))
    return path


@functools.lru_cache(maxsize=None)
def _sums(root):
    path = os.path.join(root, "SHA256SUMS")
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        return {name.strip().lstrip("*"): digest for digest, name in (line.split(None, 1) for line in f if line.strip())}


@functools.lru_cache(maxsize=None)
def _check_sum(root, name):
    """Raises DatasetDamaged if SHA256SUMS in root lists `name` with another hash (each file hashed once per process)."""
    expected = _sums(root).get(name)
    if expected is None or os.path.isdir(os.path.join(root, name)):
        return
    digest = hashlib.sha256()
    with open(os.path.join(root, name), "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != expected:
        raise DatasetDamaged(f"{os.path.join(root, name)!r} is damaged: its sha256 is {digest.hexdigest()}, {root}/SHA256SUMS says {expected}; "
                             f"copy the file again from its source (the folder {DATA_DIR_VARIABLE} points at)")


def _damaged(path, error):
    return DatasetDamaged(f"{path!r} cannot be read ({type(error).__name__}: {error}): the file is damaged or truncated; "
                          f"copy it again into the folder {DATA_DIR_VARIABLE} points at")


def _download(name, loader):
    try:
        return loader()
    except Exception as error:  # Keras raises several kinds on a failed download
        where = os.environ.get(DATA_DIR_VARIABLE)
        hint = f"it is not in {DATA_DIR_VARIABLE}={where!r}" if where else f"{DATA_DIR_VARIABLE} is not set"
        raise DatasetNotFound(
            f"{name} could not be loaded: {hint}, and Keras' download failed ({type(error).__name__}: {error}). "
            f"Set {DATA_DIR_VARIABLE} to a folder holding the dataset's standard files."
        ) from error


def load_mnist():
    """((x_train, y_train), (x_test, y_test)), uint8 images [n, 28, 28]."""
    path = _local("mnist.npz")
    if path is None:
        import keras

        return _download("MNIST", keras.datasets.mnist.load_data)
    try:
        with np.load(path) as f:
            return (f["x_train"], f["y_train"]), (f["x_test"], f["y_test"])
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
        raise _damaged(path, error) from None


def _read_idx(path):
    try:
        with gzip.open(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as error:
        raise _damaged(path, error) from None
    dims = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims))
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * dims).reshape(shape)


def load_fashion_mnist():
    """((x_train, y_train), (x_test, y_test)), uint8 images [n, 28, 28]."""
    names = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
    paths = [_local("fashion-mnist", name) for name in names]
    if all(p is None for p in paths):
        import keras

        return _download("Fashion-MNIST", keras.datasets.fashion_mnist.load_data)
    missing = [n for n, p in zip(names, paths) if p is None]
    if missing:
        raise DatasetNotFound(f"{os.path.join(data_dir(), 'fashion-mnist')!r} lacks {missing}: put all four Fashion-MNIST files there")
    x_train, y_train, x_test, y_test = (_read_idx(p) for p in paths)
    return (x_train, y_train), (x_test, y_test)


class _ArraysOnly(pickle.Unpickler):
    """Unpickles the CIFAR-10 batches' dicts of lists and numpy arrays, and refuses anything else:
    a pickle can name any function to call, and these files come from a folder the user names."""

    # _codecs.encode rebuilds bytes in protocol-2 pickles written by Python 3; it only encodes a string.
    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"), ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}: a CIFAR-10 batch holds only arrays and lists")
        return super().find_class(module, name)


def _cifar_batch(path):
    if not os.path.exists(path):
        raise DatasetNotFound(f"CIFAR-10 batch {path!r} is missing: put the five data_batch files of cifar-10-batches-py in the folder {DATA_DIR_VARIABLE} points at")
    _check_sum(os.path.dirname(os.path.dirname(path)), os.path.join(os.path.basename(os.path.dirname(path)), os.path.basename(path)))
    try:
        with open(path, "rb") as f:
            batch = _ArraysOnly(f, encoding="bytes").load()  # the publisher's format
    except (OSError, EOFError, pickle.UnpicklingError, ValueError) as error:
        raise _damaged(path, error) from None
    x = batch[b"data"].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return x, np.asarray(batch[b"labels"], np.uint8)[:, None]


def load_cifar10():
    """((x_train, y_train), (x_test, y_test)), uint8 images [n, 32, 32, 3].

    Where the official test_batch is absent but cifar10_test_first1000.npz is
    there, the test set is those first 1,000 official test images.
    """
    folder = _local("cifar-10-batches-py")
    if folder is None:
        import keras

        return _download("CIFAR-10", keras.datasets.cifar10.load_data)
    parts = [_cifar_batch(os.path.join(folder, f"data_batch_{i}")) for i in range(1, 6)]
    x_train = np.concatenate([p[0] for p in parts])
    y_train = np.concatenate([p[1] for p in parts])
    if os.path.exists(os.path.join(folder, "test_batch")):
        x_test, y_test = _cifar_batch(os.path.join(folder, "test_batch"))
    elif _local("cifar10_test_first1000.npz"):
        with np.load(_local("cifar10_test_first1000.npz")) as f:
            x_test, y_test = f["x_test"], f["y_test"]
    else:
        raise DatasetNotFound(f"CIFAR-10 test images missing: put test_batch in {folder} or cifar10_test_first1000.npz beside it")
    return (x_train, y_train), (x_test, y_test)


def cifar_splits():
    """The book's CIFAR-10 split as name -> l2l.problems.ImageData.

    The mirror holds the 50,000 training images and only the first 1,000
    official test images, so: meta_train: data_batch_1-4 less their last
    4,000 images (training images 0-35,999; the chapter's LSTMs meta-train on
    these); valid: training images 36,000-39,999 (checkpoint selection and
    every tuning); test_train: data_batch_5 (training images 40,000-49,999,
    the test-time optimisees train on these); test_heldout: the official test
    images (held-out loss and accuracy; 1,000 of them where test_batch is
    absent). Label subsets are l2l.problems.label_subset of these.
    """
    from l2l.problems import image_data

    (x, y), (tx, ty) = load_cifar10()
    return {
        "meta_train": image_data(x[:36000], y[:36000], "cifar10-train[:36000]"),
        "valid": image_data(x[36000:40000], y[36000:40000], "cifar10-train[36000:40000]"),
        "test_train": image_data(x[40000:], y[40000:], "cifar10-train[40000:]"),
        "test_heldout": image_data(tx, ty, f"cifar10-test[:{len(tx)}]"),
    }


def mnist_splits():
    """The book's MNIST and Fashion-MNIST splits as name -> l2l.problems.ImageData.

    Four disjoint parts of MNIST's 70,000 images, so that test-time MLPs train
    on 10,000 images and are measured on 10,000 others:
    meta_train: train 0-39,999 (the chapter's LSTMs meta-train on these);
    valid: train 40,000-49,999 (checkpoint selection and every tuning);
    test_train: train 50,000-59,999 (test-time optimisees train on these);
    test_heldout: the official test split (held-out loss and accuracy).
    Fashion-MNIST the same way: fashion_meta_train, train 0-39,999 (only the
    beyond chapter's general optimiser meta-trains on it); fashion_tune, train 40,000-49,999 (tuning);
    fashion_train, train 50,000-59,999; fashion_heldout, the test split.
    budget_meta_train and budget_valid: train 0-49,999 and 50,000-59,999,
    the split of the long budget runs (l2l.recipes), which started before
    this one; their meta-training images are disjoint from test_train and
    test_heldout, and their validation selects nothing the book reports.
    """
    from l2l.problems import image_data

    (x, y), (tx, ty) = load_mnist()
    (fx, fy), (ftx, fty) = load_fashion_mnist()
    return {
        "meta_train": image_data(x[:40000], y[:40000], "mnist-train[:40000]"),
        "valid": image_data(x[40000:50000], y[40000:50000], "mnist-train[40000:50000]"),
        "test_train": image_data(x[50000:], y[50000:], "mnist-train[50000:]"),
        "test_heldout": image_data(tx, ty, "mnist-test"),
        "fashion_meta_train": image_data(fx[:40000], fy[:40000], "fashion-train[:40000]"),
        "fashion_tune": image_data(fx[40000:50000], fy[40000:50000], "fashion-train[40000:50000]"),
        "fashion_train": image_data(fx[50000:], fy[50000:], "fashion-train[50000:]"),
        "fashion_heldout": image_data(ftx, fty, "fashion-test"),
        "budget_meta_train": image_data(x[:50000], y[:50000], "mnist-train[:50000]"),
        "budget_valid": image_data(x[50000:], y[50000:], "mnist-train[50000:]"),
    }
