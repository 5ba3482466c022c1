"""Differentiable affine warps of images: the spatial transformer's sampler.

    grid = warp.affine_grid(theta, height, width)     # theta [n, 2, 3]: where each output pixel samples
    warped = warp.bilinear_sample(images, grid)       # images [n, H, W, C]; gradients flow to theta

Coordinates are normalised to [-1, 1] from the first pixel's centre to the
last's (align_corners), x along the width and y along the height, so the
identity theta [[1, 0, 0], [0, 1, 0]] returns the image unchanged. Samples
outside the image read zeros. TF's ImageProjectiveTransform ops have no
gradient with respect to the transform. keras.ops.image.map_coordinates does
have one with respect to the coordinates (tests/test_warp.py checks this
sampler against it, values and gradients), but it interpolates one array
with a coordinate per axis: a batch of images with channels would be a 4-D
interpolation, 16 reads per sample where bilinear needs 4. So the
interpolation is written out: four gathers and their bilinear weights, whose
derivative in the sampling position carries the gradient to theta.
"""

import numpy as np
import tensorflow as tf

IDENTITY = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], np.float32)


def affine_grid(theta, height, width):
    """Sampling positions [n, height, width, 2] (x, y in pixels) of output pixels under theta [n, 2, 3]."""
    theta = tf.convert_to_tensor(theta)
    ys, xs = np.meshgrid(np.linspace(-1.0, 1.0, height), np.linspace(-1.0, 1.0, width), indexing="ij")  # in float64, then theta's dtype
    points = tf.constant(np.stack([xs.ravel(), ys.ravel(), np.ones(height * width)]), theta.dtype)  # [3, HW]
    mapped = tf.einsum("nij,jp->nip", theta, points)  # [n, 2, HW] normalised
    x = (mapped[:, 0] + 1.0) * (width - 1) / 2.0
    y = (mapped[:, 1] + 1.0) * (height - 1) / 2.0
    return tf.reshape(tf.stack([x, y], axis=-1), [-1, height, width, 2])


def bilinear_sample(images, grid):
    """images [n, H, W, C] read at positions grid [n, h, w, 2] (x, y in pixels); zeros outside."""
    images = tf.convert_to_tensor(images)
    n, height, width = tf.shape(images)[0], images.shape[1], images.shape[2]
    x, y = grid[..., 0], grid[..., 1]
    x0, y0 = tf.floor(x), tf.floor(y)
    padded = tf.pad(images, [[0, 0], [1, 1], [1, 1], [0, 0]])  # a ring of zeros: outside reads 0

    def read(xi, yi):
        # Clip into the padded image; anything further out lands on the zero ring.
        xi = tf.cast(tf.clip_by_value(xi + 1, 0, width + 1), tf.int32)
        yi = tf.cast(tf.clip_by_value(yi + 1, 0, height + 1), tf.int32)
        batch = tf.broadcast_to(tf.reshape(tf.range(n), [-1, 1, 1]), tf.shape(xi))
        return tf.gather_nd(padded, tf.stack([batch, yi, xi], axis=-1))

    wx, wy = (x - x0)[..., None], (y - y0)[..., None]
    return ((1 - wx) * (1 - wy) * read(x0, y0) + wx * (1 - wy) * read(x0 + 1, y0)
            + (1 - wx) * wy * read(x0, y0 + 1) + wx * wy * read(x0 + 1, y0 + 1))


def warp(images, theta):
    """images [n, H, W, C] warped by theta [n, 2, 3] (output pixel p samples the input at theta p)."""
    return bilinear_sample(images, affine_grid(theta, images.shape[1], images.shape[2]))


def warp_with_jacobian(images, theta):
    """(warp(images, theta) [n, H, W, C], its Jacobian in theta's 6 entries [n, H, W, C, 6], row-major as theta).

    Each output pixel reads the image at its own sampling position only, so one reverse pass per channel gives
    every pixel's derivative in its position, and the position is linear in theta: d x / d theta[0, j] =
    (W - 1) / 2 * [X, Y, 1][j], d y / d theta[1, j] = (H - 1) / 2 * [X, Y, 1][j], with (X, Y) the output pixel's
    normalised coordinates. C passes instead of the H * W * C of a reverse-mode Jacobian or the 6 of forward mode:
    one Gauss-Newton step on 32 MNIST pairs (one thread, beside two other jobs) took 14.6 s by reverse mode
    (GradientTape.batch_jacobian), 1.57 s by forward mode and 0.28 s this way.
    """
    images = tf.convert_to_tensor(images)
    theta = tf.convert_to_tensor(theta, images.dtype)
    height, width, channels = images.shape[1], images.shape[2], images.shape[3]
    grid = affine_grid(theta, height, width)
    with tf.GradientTape(persistent=channels > 1) as tape:
        tape.watch(grid)
        warped = bilinear_sample(images, grid)
        per_channel = [warped[..., c] for c in range(channels)]
    slopes = tf.stack([tape.gradient(part, grid) for part in per_channel], axis=3)  # [n, H, W, C, 2]: d value / d (x, y)
    ys, xs = np.meshgrid(np.linspace(-1.0, 1.0, height), np.linspace(-1.0, 1.0, width), indexing="ij")
    points = tf.constant(np.stack([xs, ys, np.ones_like(xs)], axis=-1), images.dtype)[None, :, :, None, :]  # [1, H, W, 1, 3]
    d_x = slopes[..., 0:1] * (width - 1) / 2.0 * points
    d_y = slopes[..., 1:2] * (height - 1) / 2.0 * points
    return warped, tf.concat([d_x, d_y], axis=-1)


def corner_error(theta, true_theta, height, width):
    """Mean distance in pixels between where theta and true_theta send the image's four corner pixels: [n]."""
    a, b = affine_grid(theta, height, width), affine_grid(true_theta, height, width)
    corners = tf.stack([a[:, i, j] - b[:, i, j] for i in (0, -1) for j in (0, -1)], axis=1)  # [n, 4, 2]
    return tf.reduce_mean(tf.norm(corners, axis=-1), axis=1)
