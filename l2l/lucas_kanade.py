"""The classical anchor of the alignment chapter as the field runs it: inverse-compositional Lucas-Kanade with
Levenberg-Marquardt on a Gaussian pyramid (Baker & Matthews, "Lucas-Kanade 20 years on", 2004), run on the instances
every optimiser of a panel gets and tuned on its tuning pairs. l2l.alignment reads it into a panel (lucas_kanade_panel).

    path = lucas_kanade.inverse_compositional(example, moving, theta0, steps=40, levels=3)   # [steps + 1, n, 2, 3]
"""

import time

import numpy as np
import tensorflow as tf

from l2l.rollout import TEST_SEED, fresh_instances

# The classical anchor as the field runs it (Baker & Matthews, "Lucas-Kanade 20 years on", 2004): the template's
# steepest-descent images and Hessian are computed once per pyramid level (at the identity warp), every iteration
# warps only the moving image, and the update is composed inversely, W(x; p) <- W(x; p) o W(x; dp)^-1. A step is kept
# only where it lowers that level's error, and the damping falls tenfold after a kept step and rises tenfold after a
# refused one (Levenberg-Marquardt); coarse levels (blurred, half the resolution each) widen the basin of attraction.
# Theta is in l2l.warp's normalised coordinates, so one theta means the same map at every level.

def _blur(images, sigma=1.0):
    """images [n, H, W, C] convolved with a separable Gaussian of `sigma` pixels (zeros outside, as the sampler reads)."""
    radius = max(1, int(round(2 * sigma)))
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    taps = tf.constant(taps / taps.sum(), images.dtype)
    channels = images.shape[-1]
    rows = tf.tile(tf.reshape(taps, [-1, 1, 1, 1]), [1, 1, channels, 1])
    cols = tf.tile(tf.reshape(taps, [1, -1, 1, 1]), [1, 1, channels, 1])
    return tf.nn.depthwise_conv2d(tf.nn.depthwise_conv2d(images, rows, [1, 1, 1, 1], "SAME"), cols, [1, 1, 1, 1], "SAME")


def pyramid(images, levels, sigma=1.0):
    """images [n, H, W, C] at `levels` resolutions, coarsest first: each level the one above it blurred and sampled on a
    grid about half as fine, at the same normalised coordinates (so a theta warps every level alike)."""
    from l2l import warp

    out = [tf.convert_to_tensor(images)]
    for _ in range(levels - 1):
        above = out[-1]
        n, height, width = tf.shape(above)[0], above.shape[1], above.shape[2]
        h, w = max(2, (height + 1) // 2), max(2, (width + 1) // 2)
        grid = warp.affine_grid(tf.tile(tf.constant(warp.IDENTITY, above.dtype)[None], [n, 1, 1]), h, w)
        grid = grid * tf.constant([(width - 1) / (w - 1), (height - 1) / (h - 1)], above.dtype)  # h x w pixels -> the level above's
        out.append(warp.bilinear_sample(_blur(above, sigma), grid))
    return out[::-1]


def steepest_descent(template):
    """The template's steepest-descent images at the identity warp [n, H, W, C, 6] (row-major as theta): its gradient
    by central differences (zeros outside) times the warp's derivative in theta. The bilinear sampler's own derivative
    at pixel centres (l2l.warp.warp_with_jacobian at the identity) is a one-sided difference, the gradient half a pixel
    away: on sharp 16-px bars it left the inverse-compositional fixed point 1-2 px off the true warp."""
    template = tf.convert_to_tensor(template)
    height, width = template.shape[1], template.shape[2]
    padded = tf.pad(template, [[0, 0], [1, 1], [1, 1], [0, 0]])
    gx = (padded[:, 1:-1, 2:] - padded[:, 1:-1, :-2]) / 2.0
    gy = (padded[:, 2:, 1:-1] - padded[:, :-2, 1:-1]) / 2.0
    ys, xs = np.meshgrid(np.linspace(-1.0, 1.0, height), np.linspace(-1.0, 1.0, width), indexing="ij")
    points = tf.constant(np.stack([xs, ys, np.ones_like(xs)], axis=-1), template.dtype)[None, :, :, None, :]  # [1, H, W, 1, 3]
    return tf.concat([gx[..., None] * (width - 1) / 2.0 * points, gy[..., None] * (height - 1) / 2.0 * points], axis=-1)


def _compose_inverse(theta, delta):
    """theta o (identity + delta)^-1, both [n, 2, 3], as 3x3 homogeneous maps."""
    n = tf.shape(theta)[0]
    bottom = tf.tile(tf.constant([[[0.0, 0.0, 1.0]]], theta.dtype), [n, 1, 1])
    a = tf.concat([theta, bottom], axis=1)
    d = tf.concat([tf.constant([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], theta.dtype)[None] + delta, bottom], axis=1)
    return tf.linalg.matmul(a, tf.linalg.inv(d))[:, :2]


def inverse_compositional(example, moving, theta, steps, levels=3, per_level=5, damping=1e-2):
    """Inverse-compositional Lucas-Kanade with Levenberg-Marquardt on a Gaussian pyramid: `steps` iterations from theta
    [n, 2, 3] aligning moving [n, H, W, C] to example (the moving image re-warped by theta shows the example, as
    l2l.problems.Alignment reads params). With levels > 1 the first per_level iterations run at the coarsest level,
    the next per_level at the next, the rest at full resolution. Returns the thetas after each iteration
    [steps + 1, n, 2, 3].

    Measured on exact synthetic pairs (tests/test_alignment.py): from warps of 4-11 px at the corners it ends within
    about 0.05-0.3 px of the true map (the inverse-compositional fixed point sits where the template's gradients balance
    the moving image's bilinear interpolation, a little off the photometric minimum). On ten synthetic warps of 9-15 px
    at the corners, 40 steps brought 8 within about 1 px with three levels and 3 with one level.
    """
    from l2l import warp

    example, moving = tf.convert_to_tensor(example), tf.convert_to_tensor(moving)
    theta = tf.convert_to_tensor(theta, example.dtype)
    templates, images = pyramid(example, levels), pyramid(moving, levels)
    n = tf.shape(theta)[0]
    path, lam = [theta], tf.fill([n], tf.constant(damping, example.dtype))
    for level, (template, image) in enumerate(zip(templates, images)):
        iterations = per_level if level < levels - 1 else steps
        iterations = min(iterations, steps - (len(path) - 1))
        if iterations <= 0:
            break
        sd = tf.reshape(steepest_descent(template), [n, -1, 6])
        hessian = tf.einsum("npi,npj->nij", sd, sd)
        diagonal = tf.linalg.diag_part(hessian)
        floor = 1e-9 * tf.reduce_max(diagonal, axis=-1, keepdims=True) + 1e-12
        error = lambda t, image=image, template=template: tf.reshape(warp.warp(image, t) - template, [n, -1])
        e = error(theta)
        cost = tf.reduce_mean(tf.square(e), axis=-1)
        for _ in range(iterations):
            system = hessian + tf.linalg.diag(lam[:, None] * diagonal + floor)
            dp = tf.linalg.solve(system, tf.einsum("npi,np->ni", sd, e)[..., None])[..., 0]
            proposal = _compose_inverse(theta, tf.reshape(dp, [-1, 2, 3]))
            e_new = error(proposal)
            cost_new = tf.reduce_mean(tf.square(e_new), axis=-1)
            better = cost_new < cost  # NaN (a singular proposal) is never better
            theta = tf.where(better[:, None, None], proposal, theta)
            e = tf.where(better[:, None], e_new, e)
            cost = tf.where(better, cost_new, cost)
            lam = tf.where(better, lam / 10.0, lam * 10.0)
            path.append(theta)
    while len(path) < steps + 1:  # fewer levels' iterations than steps: the last theta holds
        path.append(theta)
    return tf.stack(path)


def evaluate_inverse_compositional(problem, steps, instances, seeds, offset=TEST_SEED, **options):
    """inverse_compositional on the instances l2l.evaluate.evaluate gives every optimiser of each seed (so its curves pair
    with theirs): (losses [seeds, instances, steps + 1] as problem.loss reads them, seconds per step, corner errors
    [seeds, instances, steps + 1])."""
    curves, corners, seconds = [], [], []
    for seed in seeds:
        batch, params = fresh_instances(problem, seed, instances, offset)
        theta0 = tf.reshape(params, [-1, 2, 3])
        began = time.perf_counter()
        path = inverse_compositional(batch.example, batch.moving, theta0, steps, **options)
        seconds.append((time.perf_counter() - began) / max(steps, 1))
        flat = tf.reshape(path, [steps + 1, -1, 6])
        curves.append(np.stack([problem.loss(p, batch).numpy() for p in flat], axis=-1))
        corners.append(np.stack([problem.corner_error(p, batch).numpy() for p in flat], axis=-1))
    return np.stack(curves), float(np.mean(seconds)), np.stack(corners)


def tune_inverse_compositional(problem, steps, instances, grid=(1e-4, 1e-3, 1e-2, 1e-1, 1.0), levels=(1, 2, 3), seed=0):
    """The initial damping and the number of pyramid levels with the lowest mean corner error at `steps` on the tuning
    instances (rollout's TUNE_SEED offset), as every other optimiser is tuned on held-out pairs: ({"damping",
    "levels"}, {(damping, levels): mean corner error})."""
    from l2l.streams import TUNE_SEED

    tried = {}
    for d in grid:
        for k in levels:
            _, _, corners = evaluate_inverse_compositional(problem, steps, instances, [seed], offset=TUNE_SEED, damping=d, levels=k)
            tried[(float(d), int(k))] = float(np.nan_to_num(corners[..., -1], nan=np.inf).mean())
    damping, level_count = min(tried, key=tried.get)
    return {"damping": damping, "levels": level_count}, tried
