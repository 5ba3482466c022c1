"""One evaluation harness for every optimiser, learned or hand-designed.

    result = evaluate(problem, {"adam": lambda seed: adam(0.1)}, steps=100, instances=128, seeds=[0, 1, 2])

`result.curves[name]` is an array [seeds, instances, steps + 1] of per-instance
losses (step 0 is the initial loss); l2l.stats turns it into means with 95%
intervals and verdicts. Every optimiser of one seed sees
the same problem instances, the same initial parameters and the same
minibatches.
"""

import functools
import itertools
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




# Each baseline's second hyperparameter, tried with every learning rate by tune().
EXTRA_GRIDS = {"nag": {"momentum": (0.5, 0.9, 0.99)}, "adam": {"beta_1": (0.5, 0.9)}}
OBJECTIVES = ("final", "mean")  # the loss at the last step; the mean over steps 1..steps (the meta-objective)


def _scores(losses):
    """(final, mean over steps 1..T) of losses [T + 1, n]; a run with any non-finite loss scores inf on both."""
    losses = np.asarray(losses)
    if not np.all(np.isfinite(losses)):
        return float("inf"), float("inf")
    return float(losses[-1].mean()), float(losses[1:].mean())


def tune(problem, names, steps, instances, seed=0, grid=LR_GRID, extra=EXTRA_GRIDS, refine=True):
    """Tunes every baseline for every objective in OBJECTIVES on held-out instances, in two stages.

    Stage 1 tries every rate in `grid` (half-decades) with every value of the
    baseline's extra grid (NAG's momentum, Adam's beta_1); stage 2 tries, for
    each objective, the two quarter-decade neighbours of that objective's best
    rate at its best extra setting. Every setting sees the same instances,
    starting points and minibatches. Returns (settings: objective -> name ->
    keyword arguments of optimizers.BASELINES[name], table of every setting
    tried with both scores and its stage).
    """
    unknown = sorted(set(names) - set(optimizers.BASELINES))
    if unknown:
        raise ValueError(f"unknown baselines {unknown}; choose from {sorted(optimizers.BASELINES)}")
    batch, params = fresh_instances(problem, seed, instances, TUNE_SEED)
    rows = [row for name in names for row in _tune_one(problem, name, extra.get(name, {}), steps, batch, params, seed, grid, refine)]
    table = pd.DataFrame(rows)
    settings = {}
    for objective in OBJECTIVES:
        settings[objective] = {}
        for name in names:
            best = table[table.optimiser == name].sort_values(objective, kind="stable").iloc[0]
            settings[objective][name] = {"learning_rate": float(best["lr"]), **{k: float(best[k]) for k in extra.get(name, {})}}
    return settings, table


def _tune_one(problem, name, options, steps, batch, params, seed, grid, refine):
    """tune()'s rows for one baseline."""
    # Hyperparameters are variables read at run time: one trace serves every setting.
    knobs = {"learning_rate": tf.Variable(1.0), **{k: tf.Variable(float(v[0])) for k, v in options.items()}}
    rng = tf.random.Generator.from_seed(seed)
    fn = tf.function(functools.partial(trajectory, problem, optimizers.BASELINES[name](**knobs), steps=steps, rng=rng))
    rows = []

    def score(setting, stage):
        if any(all(r[k] == v for k, v in setting.items()) for r in rows):
            return
        for k, v in setting.items():
            knobs["learning_rate" if k == "lr" else k].assign(v)
        rng.reset_from_seed(seed)  # the same minibatches for every setting
        final, mean = _scores(fn(batch, params).numpy())
        rows.append({"optimiser": name, **setting, "final": final, "mean": mean, "stage": stage})

    combos = [dict(zip(options, values)) for values in itertools.product(*options.values())] or [{}]
    for lr in grid:
        for combo in combos:
            score({"lr": float(lr), **combo}, 1)
    if refine:
        for objective in OBJECTIVES:
            best = min(rows, key=lambda r: r[objective])
            for factor in (10 ** -0.25, 10 ** 0.25):
                score({"lr": float(f"{best['lr'] * factor:.4g}"), **{k: best[k] for k in options}}, 2)
    return rows
