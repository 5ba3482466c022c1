"""The image-alignment field's own method, as the baseline a learned optimiser must meet on l2l.problems.Alignment.

    losses, path = alignment.gauss_newton(problem, instances, params, steps=20)      # path [steps + 1, n, 6]
    curves, seconds, corners = alignment.evaluate_gauss_newton(problem, steps=20, instances=8, seeds=range(5))

Gauss-Newton on the photometric residuals (the forward-additive Lucas-Kanade
algorithm on the 6 affine parameters), damped as Levenberg-Marquardt: each
step solves (J^T J + damping diag(J^T J)) delta = J^T r per instance, where
r are the pixel residuals of the re-warped moving image against the example
and J their Jacobian in the parameters (taken by tf.GradientTape through the
bilinear sampler). It sees residuals and their Jacobian, which a
gradient-only optimiser (the LSTM, SGD, ADAM, ...) never does: that is the
comparison an honest alignment chapter owes its reader.
"""

import time

import numpy as np
import tensorflow as tf

from l2l.rollout import TEST_SEED, fresh_instances


def residuals(problem, params, instances):
    """Pixel residuals [n, pixels] of params [n, 6]: re-warped moving image minus example."""
    n = tf.shape(params)[0]
    error = problem.aligned(params, instances) - tf.cast(instances.example, params.dtype)
    return tf.reshape(error, [n, -1])


def gauss_newton_step(problem, params, instances, damping=1e-3):
    """One damped Gauss-Newton step: (new params [n, 6], loss at the old params [n])."""
    with tf.GradientTape() as tape:
        tape.watch(params)
        r = residuals(problem, params, instances)
    jacobian = tape.batch_jacobian(r, params)  # [n, pixels, 6]
    normal = tf.einsum("npi,npj->nij", jacobian, jacobian)
    # Damping scaled by the diagonal (Marquardt), plus a floor so that a blank Jacobian still solves.
    diagonal = tf.linalg.diag_part(normal)
    floor = 1e-9 * tf.reduce_max(diagonal, axis=-1, keepdims=True) + 1e-12
    system = normal + tf.linalg.diag(damping * diagonal + floor)
    delta = tf.linalg.solve(system, tf.einsum("npi,np->ni", jacobian, r)[..., None])[..., 0]
    return params - delta, tf.reduce_mean(tf.square(r), axis=-1)


def gauss_newton(problem, instances, params, steps, damping=1e-3):
    """`steps` damped Gauss-Newton steps from params [n, 6]: (losses [steps + 1, n] as problem.loss reads them,
    the parameters along the way [steps + 1, n, 6])."""
    step = tf.function(lambda p: gauss_newton_step(problem, p, instances, damping))
    losses, path = [], [params]
    for _ in range(steps):
        params, loss = step(params)
        losses.append(loss)
        path.append(params)
    losses.append(problem.loss(params, instances))
    return tf.stack(losses), tf.stack(path)


def evaluate_gauss_newton(problem, steps, instances, seeds, offset=TEST_SEED, damping=1e-3):
    """Gauss-Newton on the instances l2l.evaluate.evaluate gives every optimiser of each seed, so that its
    curves pair with theirs: (losses [seeds, instances, steps + 1], seconds per step, corner errors in pixels
    [seeds, instances, steps + 1])."""
    curves, corners, seconds = [], [], []
    for seed in seeds:
        batch, params = fresh_instances(problem, seed, instances, offset)
        gauss_newton(problem, batch, params, 1, damping)  # trace outside the timed call
        began = time.perf_counter()
        losses, path = gauss_newton(problem, batch, params, steps, damping)
        seconds.append((time.perf_counter() - began) / max(steps, 1))
        curves.append(losses.numpy().T)
        corners.append(np.stack([problem.corner_error(p, batch).numpy() for p in path], axis=-1))
    return np.stack(curves), float(np.mean(seconds)), np.stack(corners)
