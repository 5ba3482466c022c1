import numpy as np
import pytest
import tensorflow as tf
from scipy import ndimage

from l2l import warp


def images(n=2, h=9, w=7, c=2, seed=0):
    return np.random.default_rng(seed).random((n, h, w, c))


def test_the_identity_returns_the_image_and_a_one_pixel_shift_moves_it():
    x = images()
    same = warp.warp(x, np.repeat(warp.IDENTITY[None], 2, axis=0).astype(np.float64))
    np.testing.assert_allclose(same.numpy(), x, atol=1e-12)
    # x samples at x + 1 pixel: normalised shift 2 / (width - 1); the last column reads the zero outside.
    theta = np.repeat(warp.IDENTITY[None], 2, axis=0).astype(np.float64)
    theta[:, 0, 2] = 2.0 / (7 - 1)
    shifted = warp.warp(x, theta).numpy()
    np.testing.assert_allclose(shifted[:, :, :-1], x[:, :, 1:], atol=1e-12)
    np.testing.assert_allclose(shifted[:, :, -1], 0.0, atol=1e-12)


def test_a_random_affine_warp_equals_scipys_independent_resampling():
    x = images(n=1, h=12, w=10, c=1, seed=3)
    theta = np.array([[[0.9, 0.2, 0.1], [-0.15, 1.1, -0.05]]])
    ours = warp.warp(x, theta).numpy()[0, :, :, 0]
    grid = warp.affine_grid(theta, 12, 10).numpy()[0]
    # scipy reads (row, col) = (y, x), linear interpolation, zeros outside.
    expected = ndimage.map_coordinates(x[0, :, :, 0], [grid[..., 1], grid[..., 0]], order=1, mode="constant", cval=0.0)
    inside = (grid[..., 0] >= 0) & (grid[..., 0] <= 9) & (grid[..., 1] >= 0) & (grid[..., 1] <= 11)
    assert inside.mean() > 0.6
    np.testing.assert_allclose(ours[inside], expected[inside], atol=1e-10)


def test_the_gradient_with_respect_to_theta_matches_finite_differences_in_float64():
    x = tf.constant(images(n=2, h=11, w=11, c=1, seed=5))
    # Values that put no sampling position on a whole pixel, where bilinear interpolation has a kink.
    theta = tf.constant([[[0.9513, 0.1037, 0.0311], [-0.0829, 1.0471, 0.0193]], [[1.1017, -0.2043, -0.0419], [0.1187, 0.8963, 0.0517]]], tf.float64)
    grid = warp.affine_grid(theta, 11, 11).numpy()
    assert np.min(np.abs(grid - np.round(grid))) > 1e-4
    target = tf.constant(images(n=2, h=11, w=11, c=1, seed=6))
    loss = lambda t: tf.reduce_mean((warp.warp(x, t) - target) ** 2, axis=[1, 2, 3])
    with tf.GradientTape() as tape:
        tape.watch(theta)
        value = loss(theta)
    grad = tape.gradient(value, theta).numpy()
    eps = 1e-7
    for i in range(2):
        for j in range(3):
            step = np.zeros((2, 2, 3))
            step[:, i, j] = eps
            numeric = (loss(theta + step).numpy() - loss(theta - step).numpy()) / (2 * eps)
            np.testing.assert_allclose(grad[:, i, j], numeric, rtol=1e-5, atol=1e-10)


def test_corner_error_is_in_pixels():
    theta = np.repeat(warp.IDENTITY[None], 1, axis=0).astype(np.float64)
    moved = theta.copy()
    moved[:, 0, 2] = 2.0 * 3 / (28 - 1)  # three pixels to the right
    assert warp.corner_error(moved, theta, 28, 28).numpy()[0] == pytest.approx(3.0)


def test_values_and_position_gradients_equal_keras_map_coordinates():
    import keras

    image = images(n=1, h=8, w=9, c=1, seed=7)
    grid = tf.constant(np.random.default_rng(8).uniform([0.2, 0.2], [7.7, 6.7], size=(1, 5, 4, 2)))  # (x, y) inside
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(grid)
        ours = warp.bilinear_sample(tf.constant(image), grid)[0, :, :, 0]
        theirs = keras.ops.image.map_coordinates(tf.constant(image[0, :, :, 0]), [grid[0, ..., 1], grid[0, ..., 0]], order=1)
        weights = tf.constant(np.random.default_rng(9).random((5, 4)))
        a, b = tf.reduce_sum(weights * ours), tf.reduce_sum(weights * theirs)
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), atol=1e-12)
    np.testing.assert_allclose(tape.gradient(a, grid).numpy(), tape.gradient(b, grid).numpy(), atol=1e-10)


@pytest.mark.parametrize("channels", [1, 3])
def test_the_warps_jacobian_equals_the_tapes_and_finite_differences_in_float64(channels):
    x = tf.constant(images(n=2, h=10, w=8, c=channels, seed=7))
    theta = tf.constant([[[0.9513, 0.1037, 0.0311], [-0.0829, 1.0471, 0.0193]], [[1.1017, -0.2043, -0.0419], [0.1187, 0.8963, 0.0517]]], tf.float64)
    warped, jacobian = warp.warp_with_jacobian(x, theta)
    assert jacobian.shape == (2, 10, 8, channels, 6)
    np.testing.assert_allclose(warped.numpy(), warp.warp(x, theta).numpy(), rtol=1e-12)
    flat = tf.reshape(theta, [2, 6])
    with tf.GradientTape() as tape:
        tape.watch(flat)
        out = tf.reshape(warp.warp(x, tf.reshape(flat, [2, 2, 3])), [2, -1])
    expected = tape.batch_jacobian(out, flat).numpy().reshape(2, 10, 8, channels, 6)
    np.testing.assert_allclose(jacobian.numpy(), expected, rtol=1e-10, atol=1e-12)
    eps = 1e-7
    for k in range(6):
        step = np.zeros((2, 6))
        step[:, k] = eps
        numeric = (warp.warp(x, tf.reshape(flat + step, [2, 2, 3])) - warp.warp(x, tf.reshape(flat - step, [2, 2, 3]))).numpy() / (2 * eps)
        np.testing.assert_allclose(jacobian.numpy()[..., k], numeric, rtol=1e-5, atol=1e-7)
