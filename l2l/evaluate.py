"""One evaluation harness for every optimiser, learned or hand-designed.

    result = evaluate(problem, {"adam": lambda seed: adam(0.1)}, steps=100, instances=128, seeds=[0, 1, 2])

`result.curves[name]` is an array [seeds, instances, steps + 1] of per-instance
losses (step 0 is the initial loss); l2l.stats turns it into means with 95%
intervals and verdicts. Every optimiser of one seed sees
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
from l2l.rollout import TEST_SEED, TUNE_SEED, fresh_instances, steps_of, trajectory

# Learning rates tried for every baseline: 1e-4 to 10 in half-decades.
LR_GRID = tuple(float(f"{10.0 ** e:.4g}") for e in np.arange(-4.0, 1.01, 0.5))


class Evaluation(NamedTuple):
    curves: dict  # name -> losses [seeds, instances, steps + 1]; step 0 is the initial loss
    seconds_per_step: dict  # name -> mean wall time of one step on all instances at once
    metrics: dict  # name -> {step: metric(params) stacked over seeds}, where a metric was asked for


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


