"""Classifiers trained on images: the paper's MLP (section 3.2) and ConvNet (section 3.3)."""

import dataclasses
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from l2l.problems.base import ImageData, describe_on_images


class MLPInstances(NamedTuple):
    count: tf.Tensor  # [n] zeros: every instance trains the same network on the same data; only its start differs


ACTIVATIONS = {"sigmoid": tf.sigmoid, "relu": tf.nn.relu}


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class MLP:
    """A fully connected classifier trained with minibatch cross-entropy (paper section 3.2).

    Every loss call draws a fresh minibatch per instance from `data`, so the
    loss is the paper's metric: the optimisee's training loss at that step.
    """

    data: ImageData  # the images the optimisee trains on
    hidden: tuple = (20,)  # hidden layer widths (paper: one layer of 20)
    activation: str = "sigmoid"  # "sigmoid" (paper) or "relu"
    batch_size: int = 128  # examples per minibatch (paper: 128)
    init_std: float = 0.01  # weights and biases ~ N(0, init_std^2), as the DeepMind code
    classes: int = 10

    name = "mlp"

    def __post_init__(self):
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"MLP.activation must be one of {sorted(ACTIVATIONS)}, got {self.activation!r}")
        if self.batch_size < 1 or any(h < 1 for h in self.hidden):
            raise ValueError(f"MLP needs batch_size >= 1 and positive hidden widths, got {self.batch_size}, {self.hidden}")

    def describe(self) -> dict:
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "data"}
        data = {"name": self.data.name, "examples": int(self.data.y.shape[0]), "fingerprint": self.data.fingerprint}
        return {"name": self.name, "data": data, **fields, "hidden": list(self.hidden)}

    def __repr__(self):
        fields = ", ".join(f"{k}={v}" for k, v in self.describe().items() if k not in ("name", "data"))
        return f"MLP(data={self.data.name}, {fields})"

    @property
    def groups(self):
        """Coordinates of the weight matrices ("kernels") and of the biases, for optimisers with parameter groups."""
        kernels, biases, offset = [], [], 0
        for a, b in zip(self.sizes[:-1], self.sizes[1:]):
            kernels.append(np.arange(offset, offset + a * b))
            biases.append(np.arange(offset + a * b, offset + a * b + b))
            offset += a * b + b
        return {"kernels": np.concatenate(kernels), "biases": np.concatenate(biases)}

    @property
    def sizes(self):
        return [int(self.data.x.shape[1]), *self.hidden, self.classes]

    @property
    def dim(self) -> int:
        return sum(a * b + b for a, b in zip(self.sizes[:-1], self.sizes[1:]))

    def sample(self, rng, n):
        return MLPInstances(tf.zeros([n]))

    def init_params(self, rng, instances):
        return self.init_std * rng.normal([instances.count.shape[0], self.dim])

    def unflatten(self, params):
        """[(kernel [n, a, b], bias [n, b]) per layer] from flat params [n, dim]."""
        layers, offset = [], 0
        for a, b in zip(self.sizes[:-1], self.sizes[1:]):
            kernel = tf.reshape(params[:, offset : offset + a * b], [-1, a, b])
            bias = params[:, offset + a * b : offset + a * b + b]
            layers.append((kernel, bias))
            offset += a * b + b
        return layers

    def logits(self, params, x):
        """x: [n, examples, features] or [examples, features] shared by all instances."""
        act = ACTIVATIONS[self.activation]
        layers = self.unflatten(params)
        h = x
        for i, (kernel, bias) in enumerate(layers):
            h = (tf.einsum("mi,nio->nmo", h, kernel) if h.shape.rank == 2 else tf.matmul(h, kernel)) + bias[:, None, :]
            if i < len(layers) - 1:
                h = act(h)
        return h

    def batch_loss(self, params, x, y):
        """Mean cross-entropy per instance [n] on the given examples."""
        logits = self.logits(params, x)
        labels = tf.broadcast_to(y, tf.shape(logits)[:2]) if y.shape.rank == 1 else y
        return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits), axis=-1)

    def loss(self, params, instances, rng=None):
        n = tf.shape(params)[0]
        index = rng.uniform([n, self.batch_size], 0, tf.shape(self.data.y, out_type=tf.int64)[0], dtype=tf.int64)
        return self.batch_loss(params, tf.cast(tf.gather(self.data.x, index), params.dtype), tf.gather(self.data.y, index))

    def metrics(self, params, data, chunk=2000):
        """(mean loss [n], accuracy [n]) of each instance on all of `data`."""
        losses, correct = [], []
        for start in range(0, int(data.y.shape[0]), chunk):
            x, y = data.x[start : start + chunk], data.y[start : start + chunk]
            logits = self.logits(params, x)
            labels = tf.broadcast_to(y, tf.shape(logits)[:2])
            losses.append(tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits), axis=1))
            correct.append(tf.reduce_sum(tf.cast(tf.equal(tf.argmax(logits, -1, output_type=tf.int32), y), tf.float32), axis=1))
        total = float(data.y.shape[0])
        return tf.add_n(losses) / total, tf.add_n(correct) / total


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class ConvNet:
    """The paper's CIFAR-10 optimisee (section 3.3): convolutions with batch normalisation, then a small dense head.

    Each of `channels` is a `kernel` x `kernel` SAME convolution (no bias: the
    batch normalisation that follows has an offset), batch normalisation with
    the minibatch's statistics and a learned offset, ReLU and 2 x 2 max
    pooling; then a dense layer of `hidden` units (batch normalisation, ReLU)
    and `classes` outputs. Coordinates: the convolution kernels first (group
    "conv"), everything else after (group "other"), so that the paper's two
    LSTMs are two parameter groups. Instances run one after the other.
    """

    data: ImageData  # images flattened from image_shape, in [0, 1]
    image_shape: tuple = (32, 32, 3)  # height, width, channels of one image
    channels: tuple = (16, 16, 16)  # output channels of each convolution (paper: three of 16)
    kernel: int = 5  # convolution size (paper: 5)
    hidden: int = 32  # units of the dense layer (paper: 32)
    classes: int = 10
    batch_size: int = 128  # examples per minibatch (paper: 128)
    init_std: float = 0.01  # every parameter ~ N(0, init_std^2), as the DeepMind code's MNIST configuration
    epsilon: float = 1e-3  # batch normalisation's variance epsilon (Keras' default)
    instances: str = "loop"  # how instances with their own weights share a call: "loop", "grouped" convolution (its gradient needs XLA on a CPU: TF 2.21 has no CPU kernel), or "vmap"

    name = "convnet"

    def __post_init__(self):
        if self.instances not in ("loop", "grouped", "vmap"):
            raise ValueError(f"ConvNet.instances must be 'loop', 'grouped' or 'vmap', got {self.instances!r}")

    def describe(self) -> dict:
        return describe_on_images(self)

    def __repr__(self):
        return f"ConvNet(data={self.data.name}, channels={tuple(self.channels)}, kernel={self.kernel}, hidden={self.hidden})"

    def shapes(self):
        """(name, shape) of every parameter in coordinate order: convolution kernels, then the rest."""
        conv, other, width = [], [], self.image_shape[2]
        for i, c in enumerate(self.channels):
            conv.append((f"conv{i}/kernel", (self.kernel, self.kernel, width, c)))
            other.append((f"conv{i}/offset", (c,)))
            width = c
        side_h, side_w = self.image_shape[0] // 2 ** len(self.channels), self.image_shape[1] // 2 ** len(self.channels)
        other += [("dense/kernel", (side_h * side_w * width, self.hidden)), ("dense/offset", (self.hidden,)),
                  ("out/kernel", (self.hidden, self.classes)), ("out/bias", (self.classes,))]
        return conv + other

    @property
    def dim(self) -> int:
        return int(sum(np.prod(shape) for _, shape in self.shapes()))

    @property
    def groups(self):
        conv = int(sum(np.prod(shape) for name, shape in self.shapes() if name.startswith("conv") and name.endswith("kernel")))
        return {"conv": np.arange(conv), "other": np.arange(conv, self.dim)}

    def sample(self, rng, n):
        return MLPInstances(tf.zeros([n]))

    def init_params(self, rng, instances):
        return self.init_std * rng.normal([instances.count.shape[0], self.dim])

    def unflatten(self, flat):
        """name -> tensor of one instance's flat parameters [dim]."""
        out, offset = {}, 0
        for name, shape in self.shapes():
            size = int(np.prod(shape))
            out[name] = tf.reshape(flat[offset : offset + size], shape)
            offset += size
        return out

    def _normalise(self, h, offset, axes):
        mean, variance = tf.nn.moments(h, axes=axes, keepdims=True)
        return (h - mean) * tf.math.rsqrt(variance + self.epsilon) + offset

    def logits(self, flat, x):
        """Logits [examples, classes] of one instance with flat parameters [dim] on images [examples, features]."""
        w = self.unflatten(flat)
        h = tf.reshape(x, [-1, *self.image_shape])
        for i in range(len(self.channels)):
            h = tf.nn.conv2d(h, w[f"conv{i}/kernel"], strides=1, padding="SAME")
            h = tf.nn.max_pool2d(tf.nn.relu(self._normalise(h, w[f"conv{i}/offset"], [0, 1, 2])), 2, 2, "VALID")
        h = tf.reshape(h, [tf.shape(h)[0], -1]) @ w["dense/kernel"]
        h = tf.nn.relu(self._normalise(h, w["dense/offset"], [0]))
        return h @ w["out/kernel"] + w["out/bias"]

    def grouped_logits(self, params, x):
        """Logits [n, examples, classes] of n instances at once, each with its own weights.

        The instances are folded into the channels: instance i's channels are
        the block i of every layer, a grouped convolution keeps the blocks
        apart, and batch statistics per channel are per instance.
        """
        n = params.shape[0]
        w = [self.unflatten(params[i]) for i in range(n)]
        h = tf.reshape(x, [n, -1, *self.image_shape])
        h = tf.reshape(tf.transpose(h, [1, 2, 3, 0, 4]), [tf.shape(h)[1], *self.image_shape[:2], n * self.image_shape[2]])
        for layer, c in enumerate(self.channels):
            kernel = tf.stack([w[i][f"conv{layer}/kernel"] for i in range(n)], axis=3)  # [k, k, in, n, out]
            kernel = tf.reshape(kernel, [self.kernel, self.kernel, kernel.shape[2], n * c])
            offset = tf.concat([w[i][f"conv{layer}/offset"] for i in range(n)], axis=0)
            h = tf.nn.conv2d(h, kernel, strides=1, padding="SAME")
            h = tf.nn.max_pool2d(tf.nn.relu(self._normalise(h, offset, [0, 1, 2])), 2, 2, "VALID")
        side = h.shape[1] * h.shape[2]
        h = tf.reshape(tf.transpose(tf.reshape(h, [-1, h.shape[1], h.shape[2], n, self.channels[-1]]), [3, 0, 1, 2, 4]), [n, -1, side * self.channels[-1]])
        stack = lambda name: tf.stack([w[i][name] for i in range(n)])
        h = tf.einsum("nbf,nfh->nbh", h, stack("dense/kernel"))
        h = tf.nn.relu(self._normalise(h, stack("dense/offset")[:, None, :], [1]))
        return tf.einsum("nbh,nhc->nbc", h, stack("out/kernel")) + stack("out/bias")[:, None, :]

    def batch_logits(self, params, x):
        """Logits [n, examples, classes] of every instance on its own images x [n, examples, features]."""
        if self.instances == "grouped":
            return self.grouped_logits(params, x)
        if self.instances == "vmap":
            return tf.vectorized_map(lambda args: self.logits(*args), (params, x))
        return tf.stack([self.logits(params[i], x[i]) for i in range(params.shape[0])])

    def batch_loss(self, params, x, y):
        """Mean cross-entropy per instance [n]; x [n, examples, features], y [n, examples]."""
        return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=self.batch_logits(params, x)), axis=-1)

    def loss(self, params, instances, rng=None):
        n = params.shape[0]
        index = rng.uniform([n, self.batch_size], 0, tf.shape(self.data.y, out_type=tf.int64)[0], dtype=tf.int64)
        return self.batch_loss(params, tf.cast(tf.gather(self.data.x, index), params.dtype), tf.gather(self.data.y, index))

    def metrics(self, params, data, chunk=1000):
        """(mean loss [n], accuracy [n]) on all of `data`; batch statistics are each chunk's own."""
        losses, correct = [], []
        for i in range(params.shape[0]):
            loss, right = 0.0, 0.0
            for start in range(0, int(data.y.shape[0]), chunk):
                x, y = data.x[start : start + chunk], data.y[start : start + chunk]
                logits = self.logits(params[i], x)
                loss += float(tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits)))
                right += float(tf.reduce_sum(tf.cast(tf.equal(tf.argmax(logits, -1, output_type=tf.int32), y), tf.float32)))
            losses.append(loss / float(data.y.shape[0]))
            correct.append(right / float(data.y.shape[0]))
        return tf.constant(losses), tf.constant(correct)
