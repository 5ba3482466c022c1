"""Optimisees: families of problems, apart from the optimisers that train them.

A problem holds no state. Its parameters are one flat vector per instance,
a tensor [instances, dim], so that any optimiser, hand-designed or learned,
runs on it coordinatewise.

    instances = problem.sample(rng, n)          # n problem instances
    params = problem.init_params(rng, instances) # [n, problem.dim]
    losses = problem.loss(params, instances, rng)  # [n], one loss per instance

`rng` is a tf.random.Generator; stochastic problems draw their minibatch
from it on every loss call, deterministic ones ignore it. `Problem` states
this contract; tests/test_problems.py checks every problem against it.
"""

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


class QuadraticInstances(NamedTuple):
    w: tf.Tensor  # [n, dims, dims]
    y: tf.Tensor  # [n, dims]


@dataclasses.dataclass(frozen=True)
class Quadratic:
    """f(theta) = ||W theta - y||^2 (paper section 3.1)."""

    dims: int = 10  # dimension of theta (paper: 10)
    distribution: str = "normal"  # W, y ~ N(0, 1) as in the paper; "uniform": U[0, 1) as the DeepMind code
    init_std: float = 0.01  # theta_0 ~ N(0, init_std^2), as the DeepMind code

    name = "quadratic"

    def __post_init__(self):
        if self.distribution not in ("normal", "uniform"):
            raise ValueError(f"Quadratic.distribution must be 'normal' or 'uniform', got {self.distribution!r}")
        if self.dims < 1:
            raise ValueError(f"Quadratic.dims must be >= 1, got {self.dims}")

    @property
    def dim(self) -> int:
        return self.dims

    def describe(self) -> dict:
        return {"name": self.name, **dataclasses.asdict(self)}

    def sample(self, rng, n):
        draw = rng.normal if self.distribution == "normal" else rng.uniform
        return QuadraticInstances(w=draw([n, self.dims, self.dims]), y=draw([n, self.dims]))

    def init_params(self, rng, instances):
        n = instances.y.shape[0]
        return self.init_std * rng.normal([n, self.dims])

    def loss(self, params, instances, rng=None):
        # Instances in the params' dtype: float64 params (gradient checks) run in float64; float32 casts are no-ops.
        residual = tf.linalg.matvec(tf.cast(instances.w, params.dtype), params) - tf.cast(instances.y, params.dtype)
        return tf.reduce_sum(tf.square(residual), axis=-1)


class ImageData(NamedTuple):
    x: tf.Tensor  # [examples, features] float32 in [0, 1]
    y: tf.Tensor  # [examples] int32 labels
    name: str = "data"  # how the data is described in tables, summaries and run keys
    fingerprint: str = ""  # sha256 of the source images and labels (image_data sets it): run keys tell data apart by it


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



class AlignmentInstances(NamedTuple):
    example: tf.Tensor  # [n, H, W, C] the image to align to
    moving: tf.Tensor  # [n, H, W, C] the example warped by a random affine map
    true_theta: tf.Tensor  # [n, 2, 3] the warp that brings `moving` back onto `example` (l2l.warp conventions)


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class Alignment:
    """Image alignment as a small optimisation problem (the spatial-transformer chapter).

    An instance is an example image and a copy of it warped by a random
    affine map: rotation, scale per axis, shear and translation, each drawn
    uniformly within its bound, about the image centre. The parameters are
    the 6 entries of the affine map theta (l2l.warp) that warps the moving
    image back; they start at the identity. The loss is the photometric mean
    squared error between the re-warped moving image and the example. The
    true inverse warp is known, so l2l.warp.corner_error measures the
    geometric error in pixels.
    """

    data: ImageData  # images flattened from image_shape, in [0, 1]
    image_shape: tuple = (28, 28, 1)  # height, width, channels of one image
    max_rotation: float = 30.0  # degrees
    max_scale: float = 0.2  # relative change of each axis' scale, up to this
    max_shear: float = 0.2  # shear factor (x += shear * y), up to this
    max_shift: float = 3.0  # translation in pixels, up to this, along each axis

    name = "alignment"

    def __post_init__(self):
        bad = [f for f in ("max_rotation", "max_scale", "max_shear", "max_shift") if getattr(self, f) < 0]
        if bad or self.max_scale >= 1:
            raise ValueError(f"Alignment needs non-negative warp bounds and max_scale < 1, got {self}")

    def describe(self) -> dict:
        return describe_on_images(self)

    def __repr__(self):
        return (f"Alignment(data={self.data.name}, rotation<={self.max_rotation:g} deg, scale<={self.max_scale:g}, "
                f"shear<={self.max_shear:g}, shift<={self.max_shift:g} px)")

    @property
    def dim(self) -> int:
        return 6

    def random_warps(self, rng, n):
        """[n, 3, 3] homogeneous affine maps in normalised coordinates (l2l.warp), drawn within the bounds."""
        return random_warps(self, rng, n)

    def sample(self, rng, n):
        from l2l import warp

        index = rng.uniform([n], 0, tf.shape(self.data.y, out_type=tf.int64)[0], dtype=tf.int64)
        example = tf.reshape(tf.gather(self.data.x, index), [n, *self.image_shape])
        forward = self.random_warps(rng, n)  # moving pixel p shows the example at forward(p)
        moving = warp.warp(example, tf.cast(forward[:, :2], tf.float32))
        # Re-warping by theta shows the example at forward(theta(q)): theta = forward^-1 brings it back.
        return AlignmentInstances(example, moving, tf.cast(tf.linalg.inv(forward)[:, :2], tf.float32))

    def init_params(self, rng, instances):
        from l2l import warp

        return tf.tile(tf.reshape(tf.constant(warp.IDENTITY), [1, 6]), [tf.shape(instances.example)[0], 1])

    def aligned(self, params, instances):
        """The moving images re-warped by params [n, 6]: [n, H, W, C]."""
        from l2l import warp

        theta = tf.reshape(params, [-1, 2, 3])
        return warp.warp(tf.cast(instances.moving, params.dtype), theta)

    def loss(self, params, instances, rng=None):
        error = self.aligned(params, instances) - tf.cast(instances.example, params.dtype)
        return tf.reduce_mean(tf.square(error), axis=[1, 2, 3])

    def corner_error(self, params, instances):
        """Mean distance in pixels between where params and the true inverse warp send the four corners: [n]."""
        from l2l import warp

        theta = tf.reshape(params, [-1, 2, 3])
        return warp.corner_error(theta, tf.cast(instances.true_theta, theta.dtype), *self.image_shape[:2])

    def geometry(self, params, instances, tolerance=1.0):
        """(corner error in pixels [n], whether it is within `tolerance` pixels [n] as 0 or 1): an alignment panel's measures."""
        error = self.corner_error(params, instances)
        return error, tf.cast(error <= tolerance, error.dtype)


def random_warps(bounds, rng, n):
    """[n, 3, 3] homogeneous affine maps in normalised coordinates (l2l.warp) within the bounds of `bounds` (an
    Alignment or SpatialTransformer): rotation, scale per axis, shear and shift, each uniform, about the centre."""
    u = lambda bound: (2.0 * rng.uniform([n], dtype=tf.float64) - 1.0) * bound
    angle = u(np.deg2rad(bounds.max_rotation))
    sx, sy, shear = 1.0 + u(bounds.max_scale), 1.0 + u(bounds.max_scale), u(bounds.max_shear)
    height, width = bounds.image_shape[:2]
    tx, ty = u(bounds.max_shift) * 2.0 / (width - 1), u(bounds.max_shift) * 2.0 / (height - 1)
    cos, sin, zero, one = tf.cos(angle), tf.sin(angle), tf.zeros([n], tf.float64), tf.ones([n], tf.float64)
    rotation = tf.reshape(tf.stack([cos, -sin, zero, sin, cos, zero, zero, zero, one], -1), [n, 3, 3])
    shearing = tf.reshape(tf.stack([one, shear, zero, zero, one, zero, zero, zero, one], -1), [n, 3, 3])
    scaling = tf.reshape(tf.stack([sx, zero, zero, zero, sy, zero, zero, zero, one], -1), [n, 3, 3])
    shift = tf.reshape(tf.stack([one, zero, tx, zero, one, ty, zero, zero, one], -1), [n, 3, 3])
    return shift @ rotation @ shearing @ scaling


class STNInstances(NamedTuple):
    count: tf.Tensor  # [n] zeros: every instance trains its own localisation network on the same data; only its start differs


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class SpatialTransformer:
    """An amortised spatial transformer (the spatial-transformer chapter): a localisation network learns to
    predict, from a warped image alone, the affine map that brings it back to its canonical pose.

    Each loss call draws, per instance, a minibatch of images from `data` and a
    random affine warp of each (rotation, scale per axis, shear, shift, as
    l2l.problems.Alignment); the network, an MLP pixels -> hidden (tanh) -> 6,
    predicts theta from the warped image; the loss is the photometric mean
    squared error between the warped image re-warped by theta and its target:
    the image's own unwarped version, or, with template = k, image k of `data`
    for every input (the thesis' setting, one example image as the target of
    every digit). The last layer starts at zero weights and the identity bias,
    so an untrained network leaves every image as it is.
    """

    data: ImageData  # images flattened from image_shape, in [0, 1]
    image_shape: tuple = (28, 28, 1)  # height, width, channels of one image
    hidden: int = 32  # units of the localisation network's hidden layer
    batch_size: int = 32  # images per minibatch
    max_rotation: float = 30.0  # degrees
    max_scale: float = 0.2  # relative change of each axis' scale, up to this
    max_shear: float = 0.2  # shear factor, up to this
    max_shift: float = 3.0  # translation in pixels, up to this, along each axis
    template: int = -1  # -1: each image's own unwarped version is its target; k >= 0: image k of data is every image's target

    name = "stn"
    measures = ("heldout_loss", "success")  # what metrics() returns, as a panel's entries call them

    def __post_init__(self):
        bad = [f for f in ("max_rotation", "max_scale", "max_shear", "max_shift") if getattr(self, f) < 0]
        if bad or self.max_scale >= 1 or self.hidden < 1 or self.batch_size < 1:
            raise ValueError(f"SpatialTransformer needs non-negative warp bounds, max_scale < 1, hidden >= 1 and batch_size >= 1, got {self}")
        if not -1 <= self.template < int(self.data.y.shape[0]):
            raise ValueError(f"SpatialTransformer.template must be -1 (each image its own target) or an index into data (< {int(self.data.y.shape[0])}), got {self.template}")

    def describe(self) -> dict:
        return describe_on_images(self)

    def __repr__(self):
        target = "own image" if self.template < 0 else f"image {self.template}"
        return (f"SpatialTransformer(data={self.data.name}, hidden={self.hidden}, target={target}, rotation<={self.max_rotation:g} deg, "
                f"scale<={self.max_scale:g}, shear<={self.max_shear:g}, shift<={self.max_shift:g} px)")

    @property
    def pixels(self) -> int:
        return int(np.prod(self.image_shape))

    @property
    def dim(self) -> int:
        return self.pixels * self.hidden + self.hidden + self.hidden * 6 + 6

    def sample(self, rng, n):
        return STNInstances(tf.zeros([n]))

    def init_params(self, rng, instances):
        from l2l import warp

        n = instances.count.shape[0]
        first = rng.normal([n, self.pixels * self.hidden]) / np.sqrt(self.pixels)  # unit-variance hidden pre-activations for unit inputs
        last = tf.tile(tf.concat([tf.zeros([self.hidden * 6]), tf.reshape(tf.constant(warp.IDENTITY), [6])], 0)[None], [n, 1])
        return tf.concat([first, tf.zeros([n, self.hidden]), last], axis=1)

    def theta(self, params, images):
        """Predicted affine maps [n, m, 2, 3] of images [n, m, pixels] (instance i's network on its own images)."""
        p, h = self.pixels, self.hidden
        w1 = tf.reshape(params[:, : p * h], [-1, p, h])
        b1 = params[:, p * h : p * h + h]
        w2 = tf.reshape(params[:, p * h + h : p * h + h + 6 * h], [-1, h, 6])
        b2 = params[:, p * h + h + 6 * h :]
        hidden = tf.tanh(tf.matmul(images, w1) + b1[:, None, :])
        return tf.reshape(tf.matmul(hidden, w2) + b2[:, None, :], [tf.shape(params)[0], -1, 2, 3])

    def pairs(self, rng, index, dtype=tf.float32, source=None):
        """(moving [n, m, pixels], target [n, m, pixels], true inverse theta [n, m, 2, 3]) of images index [n, m] of
        `source` (default: data); with a template, the target is image `template` of data whatever the source."""
        from l2l import warp

        n, m = tf.shape(index)[0], tf.shape(index)[1]
        images = tf.reshape(tf.gather((source or self.data).x, tf.reshape(index, [-1])), [-1, *self.image_shape])
        forward = random_warps(self, rng, n * m)
        moving = warp.warp(images, tf.cast(forward[:, :2], tf.float32))
        target = images if self.template < 0 else tf.broadcast_to(tf.reshape(self.data.x[self.template], [1, *self.image_shape]), tf.shape(images))
        flat = lambda t: tf.cast(tf.reshape(t, [n, m, self.pixels]), dtype)
        return flat(moving), flat(target), tf.cast(tf.reshape(tf.linalg.inv(forward)[:, :2], [n, m, 2, 3]), dtype)

    def aligned(self, params, moving):
        """The moving images [n, m, pixels] re-warped by the network's prediction: [n, m, pixels]."""
        from l2l import warp

        n, m = tf.shape(moving)[0], tf.shape(moving)[1]
        theta = tf.reshape(self.theta(params, moving), [-1, 2, 3])
        out = warp.warp(tf.reshape(moving, [-1, *self.image_shape]), theta)
        return tf.reshape(out, [n, m, self.pixels])

    def loss(self, params, instances, rng=None):
        n = tf.shape(params)[0]
        index = rng.uniform([n, self.batch_size], 0, tf.shape(self.data.y, out_type=tf.int64)[0], dtype=tf.int64)
        moving, target, _ = self.pairs(rng, index, params.dtype)
        return tf.reduce_mean(tf.square(self.aligned(params, moving) - target), axis=[1, 2])

    def metrics(self, params, data, pairs=500, seed=0, tolerance=1.0):
        """(photometric loss [n], success rate [n]: the share of pairs whose predicted warp puts every corner within
        `tolerance` pixels of the true inverse's) on `pairs` warped images of `data`, the same pairs for every call."""
        from l2l import warp
        from l2l.streams import generator

        index = tf.range(min(pairs, int(data.y.shape[0])), dtype=tf.int64)[None]  # [1, m]: one set of pairs, for every instance
        drawn = self.pairs(generator(seed), index, params.dtype, source=data)
        n = tf.shape(params)[0]
        moving, target, truth = (tf.tile(t, tf.concat([[n], tf.ones([t.shape.rank - 1], tf.int32)], 0)) for t in drawn)
        index = tf.tile(index, [n, 1])
        loss = tf.reduce_mean(tf.square(self.aligned(params, moving) - target), axis=[1, 2])
        theta = tf.reshape(self.theta(params, moving), [-1, 2, 3])
        corners = tf.reshape(warp.corner_error(theta, tf.reshape(truth, [-1, 2, 3]), *self.image_shape[:2]), tf.shape(index))
        return loss, tf.reduce_mean(tf.cast(corners <= tolerance, params.dtype), axis=1)


class RescaledInstances(NamedTuple):
    inner: Any  # the wrapped problem's instances
    scale: tf.Tensor  # [n, dim] the factor c each coordinate is multiplied by


@dataclasses.dataclass(frozen=True, eq=False)
class Rescaled:
    """A problem whose coordinates are rescaled at random, instance by instance: f(c * theta), c = exp(U[-r, r]) per
    coordinate, started at theta_0 / c so that the wrapped problem starts where it would (RNNprop's augmentation,
    Lv et al. 2017, r = 3). Its gradient is c * f'(c * theta): an optimiser must cope with coordinates whose
    curvature differs by up to e^(4r), which a learned optimiser meta-trained without it never sees."""

    inner: Any  # the problem rescaled
    log_range: float = 3.0  # r: log c is uniform on [-r, r]

    name = "rescaled"

    def __post_init__(self):
        if not self.log_range > 0:
            raise ValueError(f"Rescaled.log_range must be > 0, got {self.log_range}")

    @property
    def dim(self) -> int:
        return self.inner.dim

    @property
    def groups(self):
        return getattr(self.inner, "groups", None)

    def describe(self) -> dict:
        return {"name": self.name, "inner": self.inner.describe(), "log_range": self.log_range}

    def sample(self, rng, n):
        inner = self.inner.sample(rng, n)
        return RescaledInstances(inner, tf.exp(rng.uniform([n, self.dim], -self.log_range, self.log_range)))

    def init_params(self, rng, instances):
        return self.inner.init_params(rng, instances.inner) / instances.scale

    def loss(self, params, instances, rng=None):
        return self.inner.loss(params * tf.cast(instances.scale, params.dtype), instances.inner, rng)


@dataclasses.dataclass(frozen=True, eq=False)
class Mixture:
    """Several problems, one drawn per meta-training epoch with the given weights (a task mixture: Wichrowska et al.
    2017, Metz et al. 2020). Meta-training (l2l.meta.MetaTrainer) draws the task; validation on a Mixture averages
    the log of each task's validation loss, so that no task's scale dominates."""

    tasks: tuple  # the problems
    weights: tuple = ()  # their probabilities (normalised); empty: equal

    name = "mixture"

    def __post_init__(self):
        if len(self.tasks) < 2:
            raise ValueError(f"a Mixture needs at least 2 tasks, got {len(self.tasks)}")
        if self.weights and (len(self.weights) != len(self.tasks) or min(self.weights) <= 0):
            raise ValueError(f"Mixture.weights needs one positive weight per task ({len(self.tasks)}), got {self.weights}")

    @property
    def probabilities(self):
        w = np.asarray(self.weights or [1.0] * len(self.tasks), np.float64)
        return w / w.sum()

    def describe(self) -> dict:
        return {"name": self.name, "tasks": [t.describe() for t in self.tasks], "weights": [float(p) for p in self.probabilities]}

    def pick(self, rng):
        """The index of the task an epoch trains on, drawn from rng (a tf.random.Generator)."""
        u = float(rng.uniform([], dtype=tf.float64))
        return min(int(np.searchsorted(np.cumsum(self.probabilities), u, side="right")), len(self.tasks) - 1)


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
