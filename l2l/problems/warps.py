"""Image alignment problems: a warp fitted to each image pair, or a spatial transformer's localisation network."""

import dataclasses
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from l2l.problems.base import ImageData, describe_on_images


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

    def labels(self, rng, n):
        """The class of the digit each of the n instances `sample(rng, n)` draws from the same generator state shows
        [n]: what a downstream classifier should read off the aligned image. It consumes the rng as sample begins to."""
        return tf.gather(self.data.y, rng.uniform([n], 0, tf.shape(self.data.y, out_type=tf.int64)[0], dtype=tf.int64))

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


def same_class_pairs(labels, rng, n):
    """(index [n], partner [n]): n images drawn uniformly, and for each another image of the same class drawn uniformly
    among the rest of its class (every class needs two images or more)."""
    labels = tf.cast(labels, tf.int64)
    order = tf.cast(tf.argsort(labels, stable=True), tf.int64)  # images grouped by class
    counts = tf.math.bincount(tf.cast(labels, tf.int32), dtype=tf.int64)
    starts = tf.cumsum(counts, exclusive=True)
    index = rng.uniform([n], 0, tf.shape(labels, out_type=tf.int64)[0], dtype=tf.int64)
    label = tf.gather(labels, index)
    count, start = tf.gather(counts, label), tf.gather(starts, label)
    rank = tf.gather(tf.math.invert_permutation(order), index) - start  # where the image sits within its class
    other = tf.cast(tf.floor(rng.uniform([n], dtype=tf.float64) * tf.cast(count - 1, tf.float64)), tf.int64)
    other += tf.cast(other >= rank, tf.int64)  # the class's other images, skipping the image itself
    return index, tf.gather(order, start + other)


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class ExemplarAlignment(Alignment):
    """Alignment to an exemplar (template alignment): the target is one image, the moving image another image of the
    same class warped by a random affine map (as Alignment's). The two differ in shape, so no warp matches them
    exactly and the loss stays above 0 at the best map; the synthetic warp is known, so the corner error still
    measures how far the fitted map is from undoing it, counting the partner's own pose as aligned (MNIST's digits
    are centred and size-normalised, so a partner's pose is close to its exemplar's)."""

    name = "exemplar_alignment"

    def __post_init__(self):
        super().__post_init__()
        counts = np.bincount(np.asarray(self.data.y, np.int64))
        if (counts[counts > 0] < 2).any():
            raise ValueError(f"ExemplarAlignment pairs images of a class: every class in {self.data.name!r} needs 2 images or more, "
                             f"class sizes {counts.tolist()}")

    def __repr__(self):
        return "Exemplar" + super().__repr__()

    def labels(self, rng, n):
        return tf.gather(self.data.y, same_class_pairs(self.data.y, rng, n)[0])

    def sample(self, rng, n):
        from l2l import warp

        index, partner = same_class_pairs(self.data.y, rng, n)
        example = tf.reshape(tf.gather(self.data.x, index), [n, *self.image_shape])
        source = tf.reshape(tf.gather(self.data.x, partner), [n, *self.image_shape])
        forward = self.random_warps(rng, n)  # moving pixel p shows the partner at forward(p)
        moving = warp.warp(source, tf.cast(forward[:, :2], tf.float32))
        return AlignmentInstances(example, moving, tf.cast(tf.linalg.inv(forward)[:, :2], tf.float32))


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
