"""The problem contract, the image data problems train on, and the loss-and-gradient every optimiser reads."""

import dataclasses
import hashlib
from typing import Any, NamedTuple, Protocol, runtime_checkable

import numpy as np
import tensorflow as tf


@runtime_checkable
class Problem(Protocol):
    """A family of optimisation problems with flat parameters [instances, dim]."""

    name: str  # short, for tables and checkpoints

    @property
    def dim(self) -> int:  # coordinates per instance
        ...

    def sample(self, rng: tf.random.Generator, n: int) -> Any:  # n instances, any tf.nest structure
        ...

    def init_params(self, rng: tf.random.Generator, instances: Any) -> tf.Tensor:  # [n, dim]
        ...

    def loss(self, params: tf.Tensor, instances: Any, rng: tf.random.Generator | None = None) -> tf.Tensor:  # [n]
        ...

    def describe(self) -> dict:  # every field that determines the problem, JSON-able (run keys hash it)
        ...

    # Optional: `groups`, a mapping group name -> coordinate indices, for learned
    # optimisers with one LSTM per group (l2l.learned_optimizer.partition checks it).



class ImageData(NamedTuple):
    x: tf.Tensor  # [examples, features] float32 in [0, 1]
    y: tf.Tensor  # [examples] int32 labels
    name: str = "data"  # how the data is described in tables, summaries and run keys
    fingerprint: str = ""  # sha256 of the source images and labels (image_data sets it): run keys tell data apart by it


def describe_on_images(problem):
    """describe() of a dataclass problem on ImageData `data`: its name, the data's name, size and fingerprint, every other field."""
    fields = {f.name: getattr(problem, f.name) for f in dataclasses.fields(problem) if f.name != "data"}
    data = {"name": problem.data.name, "examples": int(problem.data.y.shape[0]), "fingerprint": problem.data.fingerprint}
    return json_ready({"name": problem.name, "data": data, **fields})

def json_ready(value):
    """Tuples as lists, recursively: what JSON would give back."""
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    return value


def image_data(x, y, name="data"):
    """ImageData from uint8 images [n, ...] and integer labels, fingerprinted."""
    x, y = np.ascontiguousarray(x), np.asarray(y).reshape(-1)
    digest = hashlib.sha256(x.tobytes())
    digest.update(y.astype(np.int64).tobytes())
    flat = x.astype(np.float32).reshape(len(x), -1) / 255.0
    return ImageData(tf.constant(flat), tf.constant(y, tf.int32), name, digest.hexdigest())


def head(data, n):
    """The first `n` images of `data`, named and fingerprinted as such; `data` itself when n is 0 or covers it all."""
    if n < 0:
        raise ValueError(f"head needs n >= 0 (0: all images), got {n}")
    if n == 0 or n >= int(data.y.shape[0]):
        return data
    digest = hashlib.sha256(f"{data.fingerprint}|first {n}".encode()).hexdigest()
    return ImageData(data.x[:n], data.y[:n], f"{data.name}[:{n}]", digest)


def label_subset(data, labels):
    """The images of `data` whose label is in `labels`, relabelled 0..len(labels)-1 in that order.

    CIFAR-5 and CIFAR-2 (paper section 3.3) are label subsets; the name and
    fingerprint say which labels, so run keys tell subsets apart.
    """
    labels = [int(k) for k in labels]
    if not labels or len(set(labels)) != len(labels):
        raise ValueError(f"label_subset needs distinct labels, got {labels}")
    y = data.y.numpy()
    missing = sorted(set(labels) - set(np.unique(y).tolist()))
    if missing:
        raise ValueError(f"labels {missing} do not occur in {data.name}; it has {sorted(np.unique(y).tolist())}")
    keep = np.flatnonzero(np.isin(y, labels))
    relabel = np.zeros(int(y.max()) + 1, np.int32)
    relabel[labels] = np.arange(len(labels))
    digest = hashlib.sha256(f"{data.fingerprint}|labels {labels}".encode()).hexdigest()
    shown = ",".join(map(str, labels))
    return ImageData(tf.gather(data.x, keep), tf.constant(relabel[y[keep]], tf.int32), f"{data.name}{{labels {shown}}}", digest)


def loss_and_grads(problem, params, instances, rng=None):
    """Per-instance losses [n] and their gradients [n, dim], the gradient a constant.

    Instances are independent, so the gradient of the summed loss is each
    instance's own gradient. tf.stop_gradient drops second derivatives from
    any meta-gradient taken through this, as the paper does.
    """
    with tf.GradientTape() as tape:
        tape.watch(params)
        losses = problem.loss(params, instances, rng)
    grads = tape.gradient(losses, params)  # a vector target: the gradient of its sum
    return losses, tf.stop_gradient(grads)
