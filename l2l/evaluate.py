"""One evaluation harness for every optimiser, learned or hand-designed.

    result = evaluate(problem, {"adam": lambda seed: adam(0.1)}, steps=100, instances=128, seeds=[0, 1, 2])

`result.curves[name]` is an array [seeds, instances, steps + 1] of per-instance
losses (step 0 is the initial loss); `tidy()` turns it into a long table and
`summarize()` into means with 95% intervals. Every optimiser of one seed sees
the same problem instances, the same initial parameters and the same
minibatches.
"""

import functools
import time
from typing import NamedTuple

import numpy as np
import pandas as pd
import tensorflow as tf

from l2l import optimizers
from l2l.problems import loss_and_grads

# Seed offsets keep the problem instances of meta-training, validation,
# learning-rate tuning and testing apart.
VALID_SEED = 1_000_003
TUNE_SEED = 2_000_003
TEST_SEED = 3_000_017

# Learning rates tried for every baseline: 1e-4 to 10 in half-decades.
LR_GRID = tuple(float(f"{10.0 ** e:.4g}") for e in np.arange(-4.0, 1.01, 0.5))


def steps_of(problem, optimizer, instances, params, state, steps, rng=None):
    """Runs `steps` steps from (params, state); returns (losses [steps, n], params, state).

    losses[t] is the loss at the parameters before step t. Call inside tf.function.
    """
    losses = tf.TensorArray(tf.float32, size=steps, element_shape=[params.shape[0]])
    for t in tf.range(steps):
        loss, grads = loss_and_grads(problem, params, instances, rng)
        losses = losses.write(t, loss)
        updates, state = optimizer.update(grads, state, params)
        params = params + updates
    return losses.stack(), params, state


def trajectory(problem, optimizer, instances, params, steps, rng=None):
    """Losses [steps + 1, n] of `optimizer` run for `steps` steps; call inside tf.function."""
    losses, params, _ = steps_of(problem, optimizer, instances, params, optimizer.init(params), steps, rng)
    return tf.concat([losses, problem.loss(params, instances, rng)[None]], axis=0)


class Evaluation(NamedTuple):
    curves: dict  # name -> losses [seeds, instances, steps + 1]; step 0 is the initial loss
    seconds_per_step: dict  # name -> mean wall time of one step on all instances at once
    metrics: dict  # name -> {step: metric(params) stacked over seeds}, where a metric was asked for


def fresh_instances(problem, seed, instances, offset=TEST_SEED):
    """Problem instances and initial parameters drawn from seed offset + seed."""
    rng = tf.random.Generator.from_seed(offset + seed)
    batch = problem.sample(rng, instances)
    return batch, problem.init_params(rng, batch)


def run(problem, optimizer, batch, params, steps, seed=0, metric=None, snapshots=()):
    """One optimiser on one batch of instances.

    Returns (losses [n, steps + 1], seconds per step, {step: metric(params)}
    at each snapshot step). The run is split at the snapshots only to read
    the parameters there; the minibatches are those of an unsplit run.
    """
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    bad = [s for s in snapshots if not 0 < s <= steps]
    if bad:
        raise ValueError(f"snapshot steps {bad} are outside 1..{steps}")
    rng = tf.random.Generator.from_seed(seed)  # minibatches, identical for every optimiser
    fn = tf.function(functools.partial(steps_of, problem, optimizer, rng=rng))
    bounds = sorted(set(snapshots) | {steps}) if steps else []
    state = optimizer.init(params)
    for length in {b - a for a, b in zip([0] + bounds, bounds)}:
        fn.get_concrete_function(batch, params, state, length)  # trace outside the timed calls
    chunks, measured, elapsed, start = [], {}, 0.0, 0
    for end in bounds:
        began = time.perf_counter()
        losses, params, state = fn(batch, params, state, end - start)
        chunks.append(losses.numpy())
        elapsed += time.perf_counter() - began
        if end in snapshots:
            measured[end] = metric(params) if metric else params
        start = end
    chunks.append(problem.loss(params, batch, rng).numpy()[None])
    return np.concatenate(chunks).T, elapsed / max(steps, 1), measured


def evaluate(problem, factories, steps, instances, seeds, offset=TEST_SEED, metric=None, snapshots=()):
    """Runs each `factories[name](seed)` on fresh instances for every seed.

    Every optimiser of one seed gets the same instances, starting parameters
    and minibatches. `metric(params)` (e.g. held-out accuracy) is taken at
    each step in `snapshots`.
    """
    curves = {name: [] for name in factories}
    cost = {name: [] for name in factories}
    metrics = {name: {s: [] for s in snapshots} for name in factories}
    for seed in seeds:
        batch, params = fresh_instances(problem, seed, instances, offset)
        for name, factory in factories.items():
            losses, seconds, measured = run(problem, factory(seed), batch, params, steps, seed, metric, snapshots)
            curves[name].append(losses)
            cost[name].append(seconds)
            for s, value in measured.items():
                metrics[name][s].append(value)
    stack = lambda values: tf.nest.map_structure(lambda *v: np.stack([np.asarray(x) for x in v]), *values)
    return Evaluation(
        curves={k: np.stack(v) for k, v in curves.items()},
        seconds_per_step={k: float(np.mean(v)) for k, v in cost.items()},
        metrics={k: {s: stack(v) for s, v in m.items()} for k, m in metrics.items()},
    )


def final_loss(losses):
    """Mean final loss; a run that diverged (NaN or inf anywhere) counts as inf."""
    losses = np.asarray(losses)
    return float(np.mean(losses[..., -1])) if np.all(np.isfinite(losses)) else float("inf")


def tune_learning_rates(problem, names, steps, instances, seed=0, grid=LR_GRID):
    """Picks each baseline's learning rate by mean final loss on held-out instances.

    Returns (chosen: name -> lr, table of optimiser, lr, final_loss).
    """
    unknown = sorted(set(names) - set(optimizers.BASELINES))
    if unknown:
        raise ValueError(f"unknown baselines {unknown}; choose from {sorted(optimizers.BASELINES)}")
    batch, params = fresh_instances(problem, seed, instances, TUNE_SEED)
    rows = []
    for name in names:
        # The rate is a variable read at run time: one trace serves the whole grid.
        lr = tf.Variable(1.0)
        rng = tf.random.Generator.from_seed(seed)
        fn = tf.function(functools.partial(trajectory, problem, optimizers.BASELINES[name](lr), steps=steps, rng=rng))
        for value in grid:
            lr.assign(value)
            rng.reset_from_seed(seed)  # the same minibatches for every rate
            rows.append({"optimiser": name, "lr": value, "final_loss": final_loss(fn(batch, params).numpy().T)})
    table = pd.DataFrame(rows)
    chosen = {name: float(table.loc[table[table.optimiser == name].final_loss.idxmin(), "lr"]) for name in names}
    return chosen, table


def bootstrap_ci(values, n_boot=2000, seed=0, level=0.95):
    """Mean over seeds and instances with a two-level bootstrap interval.

    values: [seeds, instances, ...]. Resamples seeds, then instances within
    each drawn seed, so that the interval carries the spread between seeds
    (e.g. meta-training runs) as well as between problem instances.
    Returns (mean, low, high), each shaped values.shape[2:].
    """
    values = np.asarray(values, np.float64)
    s, m = values.shape[:2]
    rng = np.random.default_rng(seed)
    pick_seed = rng.integers(0, s, size=(n_boot, s))
    pick_inst = rng.integers(0, m, size=(n_boot, s, m))
    means = values[pick_seed[:, :, None], pick_inst].mean(axis=(1, 2))
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail], axis=0)
    return values.mean(axis=(0, 1)), low, high


def paired_difference(a, b, step, n_boot=2000):
    """Mean of a - b at `step` with its 95% interval, pairing runs on the same instance.

    a, b: [seeds, instances, steps + 1] from one evaluate() call, so that
    a[s, i] and b[s, i] started from the same problem instance. Pairing
    removes the spread between instances that both optimisers share.
    """
    mean, low, high = bootstrap_ci((np.asarray(a) - np.asarray(b))[:, :, [step]], n_boot)
    return {"mean": float(mean[0]), "ci95": [float(low[0]), float(high[0])]}


def against_best(curves, step, baselines, learned="lstm", n_boot=2000):
    """How `learned` fares at `step` against the baseline with the lowest mean loss.

    Returns (best baseline's name, paired difference learned - best, and a
    verdict: "beats", "loses to" or "cannot be told apart from", by whether
    the difference's 95% interval lies below 0, above 0, or spans it).
    """
    best = min(baselines, key=lambda name: float(np.mean(curves[name][:, :, step])))
    diff = paired_difference(curves[learned], curves[best], step, n_boot)
    word = "beats" if diff["ci95"][1] < 0 else "loses to" if diff["ci95"][0] > 0 else "cannot be told apart from"
    return best, diff, word


def summarize(curves, steps, n_boot=2000):
    """name -> {str(step): {"mean", "ci95": [low, high]}} at the given steps."""
    out = {}
    for name, values in curves.items():
        mean, low, high = bootstrap_ci(values[:, :, list(steps)], n_boot)
        out[name] = {str(s): {"mean": float(a), "ci95": [float(b), float(c)]} for s, a, b, c in zip(steps, mean, low, high)}
    return out


def bands(curves, steps, n_boot=200):
    """Long table (optimiser, step, mean, low, high) for plotting."""
    frames = []
    for name, values in curves.items():
        mean, low, high = bootstrap_ci(values[:, :, list(steps)], n_boot)
        frames.append(pd.DataFrame({"optimiser": name, "step": list(steps), "mean": mean, "low": low, "high": high}))
    return pd.concat(frames, ignore_index=True)


def tidy(curves, problem_name, seeds):
    """Long table (problem, optimiser, seed, instance, step, loss)."""
    frames = []
    for name, values in curves.items():
        s, m, t = values.shape
        index = pd.MultiIndex.from_product([list(seeds), range(m), range(t)], names=["seed", "instance", "step"])
        frame = pd.DataFrame({"loss": values.reshape(-1)}, index=index).reset_index()
        frame.insert(0, "optimiser", name)
        frame.insert(0, "problem", problem_name)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def seed_means(curves, seeds):
    """Long table (optimiser, seed, step, loss): each seed's mean curve, small enough to commit."""
    frames = []
    for name, values in curves.items():
        mean = values.mean(axis=1)
        s, t = mean.shape
        index = pd.MultiIndex.from_product([list(seeds), range(t)], names=["seed", "step"])
        frame = pd.DataFrame({"loss": mean.reshape(-1)}, index=index).reset_index()
        frame.insert(0, "optimiser", name)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)
