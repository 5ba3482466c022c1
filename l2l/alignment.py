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

from l2l import evaluate, stats
from l2l.rollout import TEST_SEED, fresh_instances
from l2l.streams import generator


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


# -- inverse-compositional Lucas-Kanade (l2l.lucas_kanade), importable from here ---------------------------------
from l2l.lucas_kanade import (  # noqa: E402, F401
    _blur,
    _compose_inverse,
    evaluate_inverse_compositional,
    inverse_compositional,
    pyramid,
    steepest_descent,
    tune_inverse_compositional,
)


class AnchorPanel(NamedTuple):
    entry: dict  # its summary entry, shaped as the protocol's: loss, trajectory_mean, corner_error, success by report step
    verdicts: dict  # step -> "final" / "mean" / "corner" / "median" / "success" -> the panel's learned optimiser minus the anchor
    corners: np.ndarray  # corner errors [seeds, instances, steps + 1]
    curves: np.ndarray  # losses [seeds, instances, steps + 1]


GaussNewtonPanel = AnchorPanel  # the name the executed chapter's source reads


def anchor_panel(result, curves, seconds, corners, **setting):
    """A classical method's curves and corner errors on a geometry panel's test instances (as evaluate_gauss_newton or
    evaluate_inverse_compositional return them) as an AnchorPanel: its entry at every report step, and the paired
    comparison of the panel's learned optimiser (the one its verdicts read, its runs tuned for each metric) with it on
    the final loss, the trajectory mean, the mean corner error, each run's median corner error and the share of pairs
    within 1 px (compared as failure rates, so "beats" means more pairs within 1 px). setting: what was chosen (damping,
    levels), recorded in the entry."""
    from l2l import experiment

    report = sorted(result.verdicts)
    entry = {"lr": None, **setting, "ms_per_step": 1000 * seconds,
             "loss": {str(s): stats.over_runs(experiment.metric_values(curves, s, "final")) for s in report},
             "trajectory_mean": {str(s): stats.over_runs(experiment.metric_values(curves, s, "mean")) for s in report},
             "corner_error": {str(s): stats.over_runs(corners[..., s]) for s in report},
             "success": {str(s): stats.over_runs((corners[..., s] <= 1.0).astype(float)) for s in report}}
    for s in report:  # nothing is tuned per step: the same figure under each report step, as the protocol's entries have it
        entry.update(experiment.reaching(corners[..., 1:], seconds, s, entry))
    median = lambda c: np.median(np.nan_to_num(np.asarray(c, np.float64), nan=np.inf), axis=1)
    failure = lambda c: 1.0 - (np.asarray(c) <= 1.0).mean(axis=1)
    verdicts = {}
    for s in report:
        learned = result.verdicts[s]["final"]["learned"]
        runs = result.runs[learned][s]
        ours_corner = result.metrics[runs["final"]][s][0]
        pairs = {"final": (experiment.metric_values(result.curves[runs["final"]], s, "final"), experiment.metric_values(curves, s, "final")),
                 "mean": (experiment.metric_values(result.curves[runs["mean"]], s, "mean"), experiment.metric_values(curves, s, "mean")),
                 "corner": (ours_corner, corners[..., s]),
                 "median": (median(ours_corner), median(corners[..., s])),
                 "success": (failure(ours_corner), failure(corners[..., s]))}
        verdicts[s] = {m: {"learned": learned, **stats.compare_runs(ours, theirs)} for m, (ours, theirs) in pairs.items()}
    return AnchorPanel(entry, verdicts, corners, curves)


def _panel_shape(result):
    """(seeds, instances) of a protocol result's test runs."""
    curves = next(iter(result.curves.values()))
    return range(curves.shape[0]), curves.shape[1]


def gauss_newton_panel(result, steps=None, damping=1e-3):
    """Gauss-Newton at a fixed damping on a geometry panel's test instances (l2l.experiment.run_protocol with
    Panel(geometry=True)), as an AnchorPanel (anchor_panel)."""
    seeds, instances = _panel_shape(result)
    curves, seconds, corners = evaluate_gauss_newton(result.panel.problem, steps or result.panel.steps, instances, seeds, damping=damping)
    return anchor_panel(result, curves, seconds, corners, damping=damping)


def lucas_kanade_panel(result, tune_instances, grid=(1e-4, 1e-3, 1e-2, 1e-1, 1.0), levels=(1, 2, 3)):
    """The inverse-compositional Lucas-Kanade anchor on a geometry panel's test instances, its initial damping and
    pyramid levels tuned first on the panel's tuning problem (held-out pairs, as every baseline's rate is) for the mean
    corner error at the panel's tuning step: an AnchorPanel whose entry records the choice and what each setting scored."""
    panel = result.panel
    chosen, tried = tune_inverse_compositional(panel.tuning_problem, panel.tune_steps, tune_instances, grid, levels)
    seeds, instances = _panel_shape(result)
    curves, seconds, corners = evaluate_inverse_compositional(panel.problem, panel.steps, instances, seeds, **chosen)
    return anchor_panel(result, curves, seconds, corners, **chosen, tuning={f"{d:g}/{k}": v for (d, k), v in tried.items()})


def snapshots(problem, optimizer, batch, params, steps, seed=0):
    """The re-warped moving images [len(steps), n, H, W, C] of an optimiser after each of `steps` steps."""
    from l2l import evaluate

    _, _, measured = evaluate.run(problem, optimizer, batch, params, max(steps), seed, metric=lambda p, instances: p, snapshots=tuple(steps))
    return np.stack([problem.aligned(tf.convert_to_tensor(measured[s]), batch).numpy() for s in steps])


def anchor_sentence(verdict, metric, step, unit="pairs", anchor="Gauss-Newton"):
    """One sentence: the panel's learned optimiser minus a classical anchor (an AnchorPanel's verdict) on one metric
    at one step, over runs."""
    from l2l import experiment

    what = experiment.METRICS[metric].format(step=step)
    gap = (f"{verdict['mean']:.3g} (95% CI {verdict['ci95'][0]:.3g} to {verdict['ci95'][1]:.3g})" if not verdict.get("diverged")
           else f"not finite in {verdict['diverged']} of {verdict['runs']} runs")
    who = "the LSTM (its step multiplier tuned)" if verdict["learned"].endswith("_tuned") else "the LSTM"
    return (f"On the {what}, over {verdict['runs']} runs of {unit}, {who} minus {anchor} is {gap}: {who} **{verdict['verdict']}** it, "
            f"lower in {verdict['wins']} of {verdict['runs']} runs.")


gauss_newton_sentence = anchor_sentence  # the name the executed chapter's source reads


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


def _predicted_maps(problem, params, data, summary_pairs, seed):
    """(moving images [1, m, pixels], the maps [m, 2, 3] a localisation network (params [1, dim]) predicts for them): the
    first summary_pairs images of `data` under `seed`'s warps."""
    from l2l.rollout import generator

    index = tf.range(min(summary_pairs, int(data.y.shape[0])), dtype=tf.int64)[None]
    moving, _, _ = problem.pairs(generator(seed), index, params.dtype, source=data)
    return moving, problem.theta(params, moving)[0]


def stn_outputs(problem, params, data, pairs=6, seed=0, summary_pairs=500):
    """What one trained localisation network (params [1, dim]) does to warped images of `data`: (moving images
    [pairs, H, W, C], their re-warped versions, and the mean determinant of its predicted maps' linear part over
    summary_pairs pairs: above 1 the network samples a larger region than the image, so the digit it shows shrinks)."""
    moving, theta = _predicted_maps(problem, params, data, summary_pairs, seed)
    aligned = problem.aligned(params, moving)
    determinant = float(tf.reduce_mean(tf.linalg.det(theta[:, :, :2])))
    shape = (-1, *problem.image_shape)
    return tf.reshape(moving[0, :pairs], shape).numpy(), tf.reshape(aligned[0, :pairs], shape).numpy(), determinant


PLAUSIBLE_DETERMINANT = (0.5, 2.0)  # a map's area change that still shows a digit: the panels' warps change it by at most 1.44x


def map_scale_check(problem, params, data, summary_pairs=500, seed=0, plausible=PLAUSIBLE_DETERMINANT):
    """Whether a trained localisation network (params [1, dim]) still shows the digit: over summary_pairs warped images
    of `data`, the median determinant of its maps' linear part and the share of maps whose determinant lies within
    `plausible`. A network that shrinks every digit to a dot (or flips it) can tie a working one on photometric loss
    against a single template; the one-template verdict reads this first. (A mean determinant says little: one
    map's -70,914.8 outweighed the rest in the book.)"""
    det = tf.linalg.det(_predicted_maps(problem, params, data, summary_pairs, seed)[1][:, :, :2]).numpy()
    low, high = plausible
    return {"median_determinant": float(np.median(det)), "plausible_share": float(np.mean((det >= low) & (det <= high))), "plausible": list(plausible)}


def verdict_optimizers(result, runs, step, seed=0):
    """[(name, optimizer)] of a panel's final-loss verdict at `step` for test seed `seed`: the learned optimiser as the
    verdict reads it (run seed mod len(runs), l2l.meta.MetaResult, with its tuned multiplier where it has one) and the
    best tuned baseline there, at its settings for that step."""
    from l2l import optimizers

    problem, verdict = result.panel.problem, result.verdicts[step]["final"]
    k = seed % len(runs)
    learned = runs[k].optimizer(problem)
    if verdict["learned"].endswith("_tuned"):
        learned = optimizers.scaled(learned, result.multipliers[verdict["learned"][: -len("_tuned")]][step]["final"][k])
    best = optimizers.FACTORIES[verdict["best"]](**result.settings[step]["final"][verdict["best"]])
    return [(verdict["learned"], learned), (verdict["best"], best)]


def picture_rows(result, run, step, pairs, shots, damping=1e-3, seed=0, lucas_kanade=None):
    """What a geometry panel's optimisers make of its first `pairs` test pairs of `seed`: label -> images
    [pairs, H, W, C], rows "input", then for the learned optimiser the panel's verdict at `step` read (as
    meta-trained, or with its tuned multiplier), the best tuned baseline there, Gauss-Newton and (given its options,
    as lucas_kanade_panel chose them) Lucas-Kanade, one row per step of `shots`, and "example" last. run: the learned
    optimiser's meta-training run (l2l.meta.MetaResult)."""
    from l2l import plots

    problem = result.panel.problem
    batch, start = fresh_instances(problem, seed, next(iter(result.curves.values())).shape[1])
    batch = type(batch)(*(t[:pairs] for t in batch))
    start = start[:pairs]
    shots = sorted(set(shots))
    rows = {"input": batch.moving.numpy()}
    for name, optimizer in verdict_optimizers(result, [run], step, seed):
        for s, images in zip(shots, snapshots(problem, optimizer, batch, start, shots, seed)):
            rows[f"{plots.label(name)}, step {s}"] = images
    _, path = gauss_newton(problem, batch, start, max(shots), damping)
    for s in shots:
        rows[f"Gauss-Newton, step {s}"] = problem.aligned(path[s], batch).numpy()
    if lucas_kanade is not None:
        path = inverse_compositional(batch.example, batch.moving, tf.reshape(start, [-1, 2, 3]), max(shots), **lucas_kanade)
        for s in shots:
            rows[f"Lucas-Kanade, step {s}"] = problem.aligned(tf.reshape(path[s], [-1, 6]), batch).numpy()
    rows["example"] = batch.example.numpy()
    return rows


def downstream_accuracy(result, runs, step, classify, lucas_kanade=None):
    """A second reading of a geometry panel, by use: a fixed classifier (classify: images [n, H, W, C] -> predicted
    labels [n]) reads each test pair's moving image re-warped by the map each method reached at `step` (the panel's
    final-loss verdict: the learned optimiser and the best tuned baseline; the Lucas-Kanade anchor at its tuned
    setting, a dict of inverse_compositional's options, if given), beside the unaligned moving image and the true map.
    Accuracy is against the label of the digit the pair shows. Returns {"accuracy": name -> over runs, "verdicts":
    "best" and "lucas_kanade" -> the learned optimiser's error rate minus theirs, paired by run}."""
    problem = result.panel.problem
    seeds, instances = _panel_shape(result)
    right = {}
    for seed in seeds:
        batch, start = fresh_instances(problem, seed, instances)
        labels = problem.labels(generator(TEST_SEED + seed), instances).numpy()
        maps = {"unaligned": start, "true map": tf.reshape(tf.cast(batch.true_theta, start.dtype), [-1, 6])}
        for name, optimizer in verdict_optimizers(result, runs, step, seed):
            _, _, at = evaluate.run(problem, optimizer, batch, start, step, seed, metric=lambda params, _: params, snapshots=(step,))
            maps[name] = tf.convert_to_tensor(at[step])
        if lucas_kanade is not None:
            path = inverse_compositional(batch.example, batch.moving, tf.reshape(start, [-1, 2, 3]), step, **lucas_kanade)
            maps["lucas_kanade"] = tf.reshape(path[-1], [-1, 6])
        for name, params in maps.items():
            right.setdefault(name, []).append(np.asarray(classify(problem.aligned(params, batch).numpy())) == labels)
    accuracy = {name: np.asarray(r, np.float64).mean(axis=1) for name, r in right.items()}
    learned, best = (n for n, _ in verdict_optimizers(result, runs, step))
    verdicts = {"best": {"learned": learned, "other": best, **stats.compare_runs(1.0 - accuracy[learned], 1.0 - accuracy[best])}}
    if lucas_kanade is not None:
        verdicts["lucas_kanade"] = {"learned": learned, "other": "lucas_kanade", **stats.compare_runs(1.0 - accuracy[learned], 1.0 - accuracy["lucas_kanade"])}
    return {"accuracy": {n: stats.within(stats.over_runs(a), "accuracy") for n, a in accuracy.items()}, "verdicts": verdicts}


def template_rows(result, run, step, steps, heldout, pairs, seed=0):
    """The thesis' setting (a SpatialTransformer panel whose every target is one example image): one localisation
    network trained by each optimiser for `steps` steps on `seed`'s instance (the learned one with its multiplier
    tuned for the final loss at `step`, each baseline tuned for it), what it makes of `pairs` warped images of
    `heldout`, and map_scale_check of its maps there. Returns (label -> images, label -> map_scale_check); rows
    "input" first and "target" last."""
    from l2l import evaluate, optimizers, plots

    problem = result.panel.problem
    batch, start = fresh_instances(problem, seed, 1)
    verdict = result.verdicts[step]["final"]
    name = verdict["learned"][: -len("_tuned")] if verdict["learned"].endswith("_tuned") else verdict["learned"]
    trained_by = {plots.label(f"{name}_tuned"): optimizers.scaled(run.optimizer(problem), result.multipliers[name][step]["final"][0])}
    for baseline, settings in result.settings[step]["final"].items():
        trained_by[plots.label(baseline)] = optimizers.FACTORIES[baseline](**settings)
    rows, checks = {}, {}
    for label, optimizer in trained_by.items():
        _, _, at = evaluate.run(problem, optimizer, batch, start, steps, seed, metric=lambda params, instances: params, snapshots=(steps,))
        params = tf.convert_to_tensor(at[steps])
        moving, aligned, _ = stn_outputs(problem, params, heldout, pairs, seed)
        checks[label] = map_scale_check(problem, params, heldout, seed=seed)
        rows.setdefault("input", moving)
        rows[f"{label} (median det {checks[label]['median_determinant']:.2f})"] = aligned
    rows["target"] = np.repeat(problem.data.x.numpy()[problem.template].reshape(1, *problem.image_shape), pairs, axis=0)
    return rows, checks


def robust_geometry(result, step, learned=None):
    """Corner error read robustly from a geometry panel's protocol result (l2l.experiment.ProtocolResult) at `step`: each
    run's median over its pairs (a few divergent pairs set a mean; a median they cannot) and its share of pairs within
    1 px, for every optimiser (its runs tuned for the final loss at `step`), with paired verdicts of `learned` (default:
    the one the panel's corner verdict reads, the tuned entry where a multiplier was tuned) against the baseline the
    protocol chose for the corner verdict (best on the tuning split): {"median": {name: over runs}, "success": {...},
    "verdicts": {"median": compare_runs, "success": ...}}. The success verdict compares failure rates (1 - success), so
    "beats" means more pairs within 1 px."""
    corner_verdict = result.verdicts[step]["corner"]
    learned = learned or corner_verdict["learned"]
    names = [n for n, by_step in result.runs.items() if step in by_step]
    measures = lambda name, i: np.asarray(result.metrics[result.runs[name][step]["final"]][step][i], np.float64)
    medians = {n: np.median(np.nan_to_num(measures(n, 0), nan=np.inf), axis=1) for n in names}
    success = {n: measures(n, 1).mean(axis=1) for n in names}
    out = {"median": {n: stats.within(stats.over_runs(m), "corner_error") for n, m in medians.items()},
           "success": {n: stats.within(stats.over_runs(v), "success") for n, v in success.items()}}
    best = corner_verdict["best"]
    out["verdicts"] = {"median": {"learned": learned, "best": best, **stats.compare_runs(medians[learned], medians[best])},
                       "success": {"learned": learned, "best": best, **stats.compare_runs(1.0 - success[learned], 1.0 - success[best])}}
    return out


def anchor_medians(result, anchors, step):
    """name -> each run's median corner error at `step` over runs (stats.within), for every optimiser of a geometry
    panel's protocol result (robust_geometry) and each classical anchor (name -> AnchorPanel)."""
    median = lambda corners: stats.within(stats.over_runs(np.median(np.nan_to_num(corners, nan=np.inf), axis=1)), "corner_error")
    return {**robust_geometry(result, step)["median"], **{name: median(a.corners[..., step]) for name, a in anchors.items()}}


SUCCESS_TO_SOLVE = 0.5  # an amortised task counts as solved by an optimiser that brings this share of held-out digits within 1 px


def amortised_reading(result, step, solve=SUCCESS_TO_SOLVE):
    """What the amortised panel can support, decided before any comparison: the meta-trained STN LSTM's training loss
    at `step` against its own at step 0 (the untrained network's identity map), paired by run; and each optimiser's
    held-out share of digits within 1 px. {"vs_identity": compare_runs, "identity", "at_step", "success": name ->
    share, "failed": the LSTM ends worse than the identity map (interval above 0), "solved_by": the optimisers that
    bring at least `solve` of the held-out digits within 1 px}. A chapter states a comparison verdict only where the
    meta-training did not fail and some optimiser solves the task."""
    from l2l import experiment

    curves = result.curves[result.runs["lstm"][step]["final"]]
    at_zero, at_step = curves[..., 0].mean(axis=1), experiment.metric_values(curves, step, "final")
    vs_identity = stats.compare_runs(at_step, curves[..., 0])
    success = {name: entry["success"][str(step)]["mean"] for name, entry in result.entries.items() if "success" in entry}
    return {"vs_identity": vs_identity, "identity": float(np.mean(at_zero)), "at_step": float(np.mean(at_step)), "step": step, "success": success,
            "failed": vs_identity["verdict"] == "loses to", "solved_by": sorted(n for n, v in success.items() if v >= solve), "solve": solve}
