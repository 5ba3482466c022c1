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
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from l2l.rollout import TEST_SEED, fresh_instances


def residuals(problem, params, instances):
    """Pixel residuals [n, pixels] of params [n, 6]: re-warped moving image minus example."""
    n = tf.shape(params)[0]
    error = problem.aligned(params, instances) - tf.cast(instances.example, params.dtype)
    return tf.reshape(error, [n, -1])


def residual_jacobian(problem, params, instances):
    """(residuals [n, pixels], their Jacobian in the 6 affine parameters [n, pixels, 6]), by l2l.warp.warp_with_jacobian:
    one reverse pass per channel, where a reverse-mode batch_jacobian needs one per pixel (50 times slower, measured
    in warp_with_jacobian's docstring)."""
    from l2l import warp

    n = tf.shape(params)[0]
    warped, jacobian = warp.warp_with_jacobian(tf.cast(instances.moving, params.dtype), tf.reshape(params, [-1, 2, 3]))
    r = tf.reshape(warped - tf.cast(instances.example, params.dtype), [n, -1])
    return r, tf.reshape(jacobian, [n, -1, int(params.shape[-1])])


def gauss_newton_step(problem, params, instances, damping=1e-3):
    """One damped Gauss-Newton step: (new params [n, 6], loss at the old params [n])."""
    r, jacobian = residual_jacobian(problem, params, instances)
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


class GaussNewtonPanel(NamedTuple):
    entry: dict  # its summary entry, shaped as the protocol's: loss, trajectory_mean, corner_error, success by report step
    verdicts: dict  # step -> "final" / "mean" / "corner" -> the panel's learned optimiser minus Gauss-Newton (l2l.stats.compare_runs)
    corners: np.ndarray  # corner errors [seeds, instances, steps + 1]
    curves: np.ndarray  # losses [seeds, instances, steps + 1]


def gauss_newton_panel(result, steps=None, damping=1e-3):
    """Gauss-Newton on a geometry panel's test instances (l2l.experiment.run_protocol with Panel(geometry=True)), as a
    GaussNewtonPanel: its entry at every report step, and the comparison of the panel's learned optimiser (the one its
    verdicts read) with it on the final loss, the trajectory mean and the corner error."""
    from l2l import experiment, stats

    panel = result.panel
    seeds = range(next(iter(result.curves.values())).shape[0])
    instances = next(iter(result.curves.values())).shape[1]
    curves, seconds, corners = evaluate_gauss_newton(panel.problem, steps or panel.steps, instances, seeds, damping=damping)
    report = sorted(result.verdicts)
    entry = {"lr": None, "damping": damping, "ms_per_step": 1000 * seconds,
             "loss": {str(s): stats.over_runs(experiment.metric_values(curves, s, "final")) for s in report},
             "trajectory_mean": {str(s): stats.over_runs(experiment.metric_values(curves, s, "mean")) for s in report},
             "corner_error": {str(s): stats.over_runs(corners[..., s]) for s in report},
             "success": {str(s): stats.over_runs((corners[..., s] <= 1.0).astype(float)) for s in report}}
    for s in report:  # nothing is tuned per step: the same figure under each report step, as the protocol's entries have it
        entry.update(experiment.reaching(corners[..., 1:], seconds, s, entry))
    verdicts = {}
    for s in report:
        learned = result.verdicts[s]["final"]["learned"]
        runs = result.runs[learned][s]
        ours_corner = result.metrics[runs["final"]][s][0]
        verdicts[s] = {"final": stats.compare_runs(experiment.metric_values(result.curves[runs["final"]], s, "final"), experiment.metric_values(curves, s, "final")),
                       "mean": stats.compare_runs(experiment.metric_values(result.curves[runs["mean"]], s, "mean"), experiment.metric_values(curves, s, "mean")),
                       "corner": stats.compare_runs(ours_corner, corners[..., s])}
        for v in verdicts[s].values():
            v["learned"] = learned
    return GaussNewtonPanel(entry, verdicts, corners, curves)


def snapshots(problem, optimizer, batch, params, steps, seed=0):
    """The re-warped moving images [len(steps), n, H, W, C] of an optimiser after each of `steps` steps."""
    from l2l import evaluate

    _, _, measured = evaluate.run(problem, optimizer, batch, params, max(steps), seed, metric=lambda p, instances: p, snapshots=tuple(steps))
    return np.stack([problem.aligned(tf.convert_to_tensor(measured[s]), batch).numpy() for s in steps])


def gauss_newton_sentence(verdict, metric, step, unit="pairs"):
    """One sentence: the panel's learned optimiser minus Gauss-Newton on one metric at one step, over runs."""
    from l2l import experiment

    what = experiment.METRICS[metric].format(step=step)
    gap = (f"{verdict['mean']:.3g} (95% CI {verdict['ci95'][0]:.3g} to {verdict['ci95'][1]:.3g})" if not verdict.get("diverged")
           else f"not finite in {verdict['diverged']} of {verdict['runs']} runs")
    who = "the LSTM (its step multiplier tuned)" if verdict["learned"].endswith("_tuned") else "the LSTM"
    return (f"On the {what}, over {verdict['runs']} runs of {unit}, {who} minus Gauss-Newton is {gap}: {who} **{verdict['verdict']}** it, "
            f"lower in {verdict['wins']} of {verdict['runs']} runs.")


def reach_sentence(result, gauss_entry, step, unit="pairs"):
    """One sentence: how many steps, and how much wall-clock, the median pair takes to come within 1 px with the
    panel's learned optimiser, the fastest tuned baseline (by wall-clock) and Gauss-Newton, over runs."""
    from l2l import experiment, plots, stats

    learned = result.verdicts[step]["final"]["learned"]
    baselines = [n for n, e in result.entries.items() if e.get("settings")]
    fastest = min(baselines, key=lambda n: stats.finite_or_inf(result.entries[n]["seconds_to_1px"][str(step)]["mean"]))

    def part(entry, who):
        steps, seconds = entry["steps_to_1px"][str(step)], entry["seconds_to_1px"][str(step)]
        if steps.get("diverged"):
            return f"{who}: not reached in {steps['diverged']} of {steps['runs']} runs"
        return f"{who}: {steps['mean']:.0f} steps ({experiment.fmt_reach(seconds, '{:.0f}', 1000)} ms)"

    who = "the LSTM (its step multiplier tuned)" if learned.endswith("_tuned") else "the LSTM"
    runs = result.entries[learned]["steps_to_1px"][str(step)]["runs"]
    return (f"Steps for the median one of the {unit} to come within 1 px (runs tuned for the loss at step {step}; "
            f"mean over {runs} runs, wall-clock with its 95% CI): "
            + "; ".join([part(result.entries[learned], who), part(result.entries[fastest], f"{plots.LABELS.get(fastest, fastest)}, the fastest tuned baseline"),
                         part(gauss_entry, "Gauss-Newton")]) + ".")


def stn_outputs(problem, params, data, pairs=6, seed=0, summary_pairs=500):
    """What one trained localisation network (params [1, dim]) does to warped images of `data`: (moving images
    [pairs, H, W, C], their re-warped versions, and the mean determinant of its predicted maps' linear part over
    summary_pairs pairs: above 1 the network samples a larger region than the image, so the digit it shows shrinks)."""
    from l2l.rollout import generator

    index = tf.range(min(summary_pairs, int(data.y.shape[0])), dtype=tf.int64)[None]
    moving, _, _ = problem.pairs(generator(seed), index, params.dtype, source=data)
    aligned = problem.aligned(params, moving)
    theta = problem.theta(params, moving)[0]
    determinant = float(tf.reduce_mean(tf.linalg.det(theta[:, :, :2])))
    shape = (-1, *problem.image_shape)
    return tf.reshape(moving[0, :pairs], shape).numpy(), tf.reshape(aligned[0, :pairs], shape).numpy(), determinant


def picture_rows(result, run, step, pairs, shots, damping=1e-3, seed=0):
    """What a geometry panel's optimisers make of its first `pairs` test pairs of `seed`: label -> images
    [pairs, H, W, C], rows "input", then for the learned optimiser the panel's verdict at `step` read (as
    meta-trained, or with its tuned multiplier), the best tuned baseline there and Gauss-Newton, one row per step of
    `shots`, and "example" last. run: the learned optimiser's meta-training run (l2l.meta.MetaResult)."""
    from l2l import optimizers, plots

    problem = result.panel.problem
    batch, start = fresh_instances(problem, seed, next(iter(result.curves.values())).shape[1])
    batch = type(batch)(*(t[:pairs] for t in batch))
    start = start[:pairs]
    verdict = result.verdicts[step]["final"]
    learned = run.optimizer(problem)
    if verdict["learned"].endswith("_tuned"):
        name = verdict["learned"][: -len("_tuned")]
        learned = optimizers.scaled(learned, result.multipliers[name][step]["final"][0])
    best = optimizers.FACTORIES[verdict["best"]](**result.settings[step]["final"][verdict["best"]])
    shots = sorted(set(shots))
    rows = {"input": batch.moving.numpy()}
    for name, optimizer in ((verdict["learned"], learned), (verdict["best"], best)):
        for s, images in zip(shots, snapshots(problem, optimizer, batch, start, shots, seed)):
            rows[f"{plots.label(name)}, step {s}"] = images
    _, path = gauss_newton(problem, batch, start, max(shots), damping)
    for s in shots:
        rows[f"Gauss-Newton, step {s}"] = problem.aligned(path[s], batch).numpy()
    rows["example"] = batch.example.numpy()
    return rows


def template_rows(result, run, step, steps, heldout, pairs, seed=0):
    """The thesis' setting (a SpatialTransformer panel whose every target is one example image): one localisation
    network trained by each optimiser for `steps` steps on `seed`'s instance (the learned one with its multiplier
    tuned for the final loss at `step`, each baseline tuned for it), what it makes of `pairs` warped images of
    `heldout`, and its maps' mean determinant. Returns (label -> images, label -> determinant); rows "input" first
    and "target" last."""
    from l2l import evaluate, optimizers, plots

    problem = result.panel.problem
    batch, start = fresh_instances(problem, seed, 1)
    verdict = result.verdicts[step]["final"]
    name = verdict["learned"][: -len("_tuned")] if verdict["learned"].endswith("_tuned") else verdict["learned"]
    trained_by = {plots.label(f"{name}_tuned"): optimizers.scaled(run.optimizer(problem), result.multipliers[name][step]["final"][0])}
    for baseline, settings in result.settings[step]["final"].items():
        trained_by[plots.label(baseline)] = optimizers.FACTORIES[baseline](**settings)
    rows, determinants = {}, {}
    for label, optimizer in trained_by.items():
        _, _, at = evaluate.run(problem, optimizer, batch, start, steps, seed, metric=lambda params, instances: params, snapshots=(steps,))
        moving, aligned, determinants[label] = stn_outputs(problem, tf.convert_to_tensor(at[steps]), heldout, pairs, seed)
        rows.setdefault("input", moving)
        rows[f"{label} (det {determinants[label]:.2f})"] = aligned
    rows["target"] = np.repeat(problem.data.x.numpy()[problem.template].reshape(1, *problem.image_shape), pairs, axis=0)
    return rows, determinants
