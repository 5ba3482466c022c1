"""The image-alignment field's own method, as the baseline a learned optimiser must meet on l2l.problems.Alignment.

    losses, params = alignment.gauss_newton(problem, instances, params, steps=20)

Gauss-Newton on the photometric residuals (the forward-additive Lucas-Kanade
algorithm on the 6 affine parameters), damped as Levenberg-Marquardt: each
step solves (J^T J + damping diag(J^T J)) delta = J^T r per instance, where
r are the pixel residuals of the re-warped moving image against the example
and J their Jacobian in the parameters (taken by tf.GradientTape through the
bilinear sampler). It sees residuals and their Jacobian, which a
gradient-only optimiser (the LSTM, SGD, ADAM, ...) never does: that is the
comparison an honest alignment chapter owes its reader.
"""

import tensorflow as tf


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
    """`steps` damped Gauss-Newton steps from params [n, 6]: (losses [steps + 1, n] as problem.loss reads them, final params)."""
    step = tf.function(lambda p: gauss_newton_step(problem, p, instances, damping))
    losses = []
    for _ in range(steps):
        params, loss = step(params)
        losses.append(loss)
    losses.append(problem.loss(params, instances))
    return tf.stack(losses), params
