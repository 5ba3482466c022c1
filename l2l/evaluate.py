"""One evaluation harness for every optimiser, learned or hand-designed.

    curves, cost = evaluate(problem, {"adam": lambda seed: adam(0.1)}, steps=100, instances=128, seeds=[0, 1, 2])

`curves[name]` is an array [seeds, instances, steps + 1] of per-instance
losses (step 0 is the initial loss); `tidy()` turns it into a long table and
`summarize()` into means with 95% intervals. Every optimiser of one seed sees
the same problem instances, the same initial parameters and the same
minibatches.
"""

import functools
import time

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


def trajectory(problem, optimizer, instances, params, steps, rng=None):
    """Losses [steps + 1, n] of `optimizer` run for `steps` steps; call inside tf.function."""
    state = optimizer.init(params)
    losses = tf.TensorArray(tf.float32, size=steps + 1)
    for t in tf.range(steps):
        loss, grads = loss_and_grads(problem, params, instances, rng)
        losses = losses.write(t, loss)
        updates, state = optimizer.update(grads, state, params)
        params = params + updates
    losses = losses.write(steps, problem.loss(params, instances, rng))
    return losses.stack()


def test_instances(problem, seed, instances, offset=TEST_SEED):
    """Problem instances and initial parameters for one evaluation seed."""
    rng = tf.random.Generator.from_seed(offset + seed)
    batch = problem.sample(rng, instances)
    return batch, problem.init_params(rng, batch)


def run(problem, optimizer, batch, params, steps, seed=0):
    """(losses [n, steps + 1], seconds per step) for one optimiser on one batch."""
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    rng = tf.random.Generator.from_seed(seed)  # minibatches, identical for every optimiser
    fn = tf.function(functools.partial(trajectory, problem, optimizer, steps=steps, rng=rng))
    fn.get_concrete_function(batch, params)  # trace outside the timed call
    start = time.perf_counter()
    losses = fn(batch, params).numpy().T
    return losses, (time.perf_counter() - start) / max(steps, 1)


def evaluate(problem, factories, steps, instances, seeds, offset=TEST_SEED):
    """Runs each `factories[name](seed)` on fresh instances for every seed.

    Returns (curves, seconds_per_step): name -> array [seeds, instances,
    steps + 1], and name -> mean wall time of one step on `instances`
    problems at once.
    """
    curves = {name: [] for name in factories}
    cost = {name: [] for name in factories}
    for seed in seeds:
        batch, params = test_instances(problem, seed, instances, offset)
        for name, factory in factories.items():
            losses, seconds = run(problem, factory(seed), batch, params, steps, seed)
            curves[name].append(losses)
            cost[name].append(seconds)
    return {k: np.stack(v) for k, v in curves.items()}, {k: float(np.mean(v)) for k, v in cost.items()}


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
    batch, params = test_instances(problem, seed, instances, TUNE_SEED)
    rows = []
    for name in names:
        for lr in grid:
            losses, _ = run(problem, optimizers.BASELINES[name](lr), batch, params, steps, seed)
            rows.append({"optimiser": name, "lr": lr, "final_loss": final_loss(losses)})
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
