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
import json
import os
import time
from typing import NamedTuple

import numpy as np
import pandas as pd
import tensorflow as tf

from l2l import baselines, optimizers
from l2l.rollout import TEST_SEED, TUNE_SEED, fresh_instances, generator, reset, steps_of, trajectory

# Learning rates tried for every baseline: 1e-4 to 10 in half-decades.
LR_GRID = tuple(float(f"{10.0 ** e:.4g}") for e in np.arange(-4.0, 1.01, 0.5))


class Evaluation(NamedTuple):
    curves: dict  # name -> losses [seeds, instances, steps + 1]; step 0 is the initial loss
    seconds_per_step: dict  # name -> mean wall time of one step on all instances at once
    metrics: dict  # name -> {step: metric(params, instances) stacked over seeds}, where a metric was asked for


def run(problem, optimizer, batch, params, steps, seed=0, metric=None, snapshots=(), every_step=False, traced=None):
    """One optimiser on one batch of instances.

    Returns (losses [n, steps + 1], seconds per step, {step: metric(params, batch)}
    at each snapshot step). The run is split at the snapshots only to read
    the parameters there; the minibatches are those of an unsplit run.
    every_step: the metric at every step 1..steps instead, read from the
    parameters' path kept in one unsplit run (for small optimisees: an
    alignment's 6 parameters), so that the timing is that of an unsplit run.
    traced: a dict in which the traced steps are kept by optimiser object, so that a later call with the same
    object (another seed of a baseline) reuses the trace, its random stream put back at `seed`'s start.
    """
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    bad = [s for s in snapshots if not 0 < s <= steps]
    if bad:
        raise ValueError(f"snapshot steps {bad} are outside 1..{steps}")
    if every_step:
        if metric is None:
            raise ValueError("every_step measures the metric at every step: pass a metric")
        return _run_with_path(problem, optimizer, batch, params, steps, seed, metric, traced)
    fn, rng = _traced(problem, optimizer, seed, False, traced)  # minibatches from rng, identical for every optimiser
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
            measured[end] = metric(params, batch) if metric else params
        start = end
    chunks.append(problem.loss(params, batch, rng).numpy()[None])
    return np.concatenate(chunks).T, elapsed / max(steps, 1), measured


def _traced(problem, optimizer, seed, keep_path, traced):
    """(steps_of as a tf.function, its random stream at `seed`'s start); from `traced` where this optimiser object
    was traced before. The object is kept there with its trace, so no other object can take its id."""
    key = (id(problem), id(optimizer), keep_path)
    if traced is not None and key in traced:
        _, _, fn, rng = traced[key]
        reset(rng, seed)  # the same stream generator(seed) starts
        return fn, rng
    rng = generator(seed)
    fn = tf.function(functools.partial(steps_of, problem, optimizer, rng=rng, keep_path=keep_path))
    if traced is not None:
        traced[key] = (problem, optimizer, fn, rng)
    return fn, rng


def _run_with_path(problem, optimizer, batch, params, steps, seed, metric, traced=None):
    """run() with the metric at every step, from the path of parameters of one unsplit run."""
    fn, rng = _traced(problem, optimizer, seed, True, traced)
    state = optimizer.init(params)
    fn.get_concrete_function(batch, params, state, steps)  # trace outside the timed call
    began = time.perf_counter()
    losses, params, state, path = fn(batch, params, state, steps)
    losses = losses.numpy()
    elapsed = time.perf_counter() - began
    measured = {t + 1: metric(path[t], batch) for t in range(steps)}
    last = problem.loss(params, batch, rng).numpy()[None]
    return np.concatenate([losses, last]).T, elapsed / max(steps, 1), measured


def evaluate(problem, factories, steps, instances, seeds, offset=TEST_SEED, metric=None, snapshots=(), every_step=False, traced=None):
    """Runs each `factories[name](seed)` on fresh instances for every seed.

    Every optimiser of one seed gets the same instances, starting parameters
    and minibatches. `metric(params, instances)` (e.g. held-out accuracy, or the
    corner error of an alignment against its instances' true warps) is taken at
    each step in `snapshots`, or with every_step at every step (see run).
    A factory that returns one object for several seeds (a baseline at one
    setting) is traced once for them: tracing, not the steps, is most of a
    short evaluation's time. traced: a dict kept by the caller across calls, in
    which the traces of at_setting's and learned_runs' factories are kept (one
    per baseline for all its settings, one per learned configuration for all
    its runs); every other trace lives for this call only.
    """
    curves = {name: [] for name in factories}
    cost = {name: [] for name in factories}
    metrics = {name: {s: [] for s in (range(1, steps + 1) if every_step else snapshots)} for name in factories}
    own = {}
    for seed in seeds:
        batch, params = fresh_instances(problem, seed, instances, offset)
        for name, factory in factories.items():
            keep = traced if traced is not None and getattr(factory, "shares_trace", False) else own
            losses, seconds, measured = run(problem, factory(seed), batch, params, steps, seed, metric, snapshots, every_step, keep)
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


def at_setting(name, kwargs, shared, makers=None):
    """A factory(seed) of baseline `name` at `kwargs` (its learning rate and extra settings), made through `shared`,
    a dict the caller keeps for one evaluation: every setting of `name` with the same keys is then one optimiser
    object whose hyperparameters are variables, set to `kwargs` when the factory is called, so that evaluate (given
    one `traced` dict) traces `name` once for all its settings and seeds, as tune() does. Its arithmetic on the
    hyperparameters is therefore tune()'s, in float32: SGD, NAG and RMSprop runs are bit for bit those of constant
    hyperparameters, ADAM's differ in the last bit of float32 (1 - beta_1 in float32, not rounded from float64)."""
    makers = makers if makers is not None else optimizers.FACTORIES
    key = (name, tuple(sorted(kwargs)))
    if key not in shared:
        knobs = {k: tf.Variable(float(v), trainable=False) for k, v in kwargs.items()}
        shared[key] = (makers[name](**knobs), knobs)
    optimizer, knobs = shared[key]
    values = {k: float(v) for k, v in kwargs.items()}

    def factory(seed):
        for k, v in values.items():
            knobs[k].assign(v)
        return optimizer

    factory.shares_trace = True
    return factory


def learned_runs(runs, problem, shared, factors=None):
    """A factory(seed) of the learned optimiser of run seed % len(runs), its updates times factors[seed % len(runs)]
    where given, made through `shared` (a dict the caller keeps for one evaluation): runs of one LSTM configuration
    are one optimiser object whose weights (and multiplier) are variables, set when the factory is called, so that
    evaluate (given one `traced` dict) traces them once for every run, seed and multiplier. Runs without weights to
    set (no meta_params), or runs of different configurations, get an optimiser, and a trace, per call."""
    from l2l import learned_optimizer

    apart = lambda seed: (optimizers.scaled(runs[seed % len(runs)].optimizer(problem), factors[seed % len(runs)]) if factors is not None
                          else runs[seed % len(runs)].optimizer(problem))
    if not all(hasattr(r, "meta_params") and hasattr(r, "lstm_config") for r in runs):
        return apart
    shapes = lambda r: tuple(sorted((k, tuple(np.shape(v))) for k, v in r.meta_params.items()))
    keys = {(repr(r.lstm_config), shapes(r), id(problem), factors is not None) for r in runs}
    if len(keys) > 1:  # runs of different configurations under one name: each its own optimiser
        return apart
    key = keys.pop()
    if key not in shared:
        first = runs[0]
        weights = {k: tf.Variable(v, trainable=False) for k, v in first.meta_params.items()}
        multiplier = tf.Variable(1.0, trainable=False)
        inner = learned_optimizer.learned(weights, first.lstm_config, getattr(problem, "groups", None))
        shared[key] = (optimizers.scaled(inner, multiplier) if factors is not None else inner, weights, multiplier)
    optimizer, weights, multiplier = shared[key]

    def factory(seed):
        run = runs[seed % len(runs)]
        for k, v in run.meta_params.items():
            weights[k].assign(v)
        if factors is not None:
            multiplier.assign(float(factors[seed % len(runs)]))
        return optimizer

    factory.shares_trace = True
    return factory


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
        rng = generator(seed)
        fn = tf.function(functools.partial(trajectory, problem, optimizers.BASELINES[name](lr), steps=steps, rng=rng))
        for value in grid:
            lr.assign(value)
            reset(rng, seed)  # the same minibatches for every rate
            rows.append({"optimiser": name, "lr": value, "final_loss": final_loss(fn(batch, params).numpy().T)})
    table = pd.DataFrame(rows)
    chosen = {name: float(table.loc[table[table.optimiser == name].final_loss.idxmin(), "lr"]) for name in names}
    return chosen, table




# Each baseline's second hyperparameter, tried with every learning rate by tune(), and the scheduled baselines' own
# knobs: declared with the baselines in l2l.baselines.
EXTRA_GRIDS = baselines.EXTRA_GRIDS
DECAY_GRID = baselines.DECAY_GRID


def scheduled_grids(*decay_steps, extra=EXTRA_GRIDS):
    """The extra grids of nag_decay and adam_decay, their schedule ending at one of `decay_steps` (the endpoints'
    steps: a baseline tuned for step 200 may choose the schedule that ends there)."""
    if not decay_steps or min(decay_steps) < 1:
        raise ValueError(f"scheduled_grids needs at least one step >= 1 for the schedule to end at, got {decay_steps}")
    return {f"{name}_decay": {**extra[name], **DECAY_GRID, "decay_steps": tuple(float(s) for s in decay_steps)} for name in ("nag", "adam")}



OBJECTIVES = ("final", "mean")  # the loss at the last step; the mean over steps 1..steps (the meta-objective)
# A learned optimiser's step multiplier (optimizers.scaled), tuned like a learning rate wherever it is
# transferred: half-decades from 0.1 to 3.16, so 1 (the optimiser as meta-trained) is on the grid.
MULTIPLIER_GRID = (0.1, 0.3162, 1.0, 3.162)


def _scores(losses, steps):
    """{step: (final, mean over steps 1..step)} of losses [T + 1, n]; a run with a non-finite loss
    up to a step scores inf on both there."""
    losses = np.asarray(losses)
    out = {}
    for s in steps:
        upto = losses[: s + 1]
        out[s] = (float(upto[-1].mean()), float(upto[1:].mean())) if np.all(np.isfinite(upto)) else (float("inf"), float("inf"))
    return out


def tune(problem, names, steps, instances, seed=0, grid=LR_GRID, extra=EXTRA_GRIDS, refine=True, makers=None, cache=None):
    """Tunes every optimiser in `names` for every objective in OBJECTIVES on held-out instances, in two stages.

    Stage 1 tries every rate in `grid` (half-decades) with every value of the
    optimiser's extra grid (NAG's momentum, Adam's beta_1); stage 2 tries, for
    each step and objective, the two quarter-decade neighbours of that
    objective's best rate at its best extra setting. Every setting sees the
    same instances, starting points and minibatches.

    steps: one step, or a sequence of steps; for a sequence every setting runs
    once to the last step and is scored at each, so a baseline is tuned for
    every reported step at the cost of the longest.
    makers: name -> factory(learning_rate, **extra) of an optimiser; default
    optimizers.FACTORIES. A learned optimiser enters as
    `lambda learning_rate: optimizers.scaled(opt, learning_rate)` with
    MULTIPLIER_GRID as its grid.

    Returns (settings, table). For one step, settings is objective -> name ->
    keyword arguments of the factory, and the table has columns final and
    mean; for a sequence, settings is step -> objective -> name -> ..., and the
    table has columns final@step and mean@step. The table holds every setting
    tried, its stage and the seconds it took (the first setting's include the
    trace); tuning_seconds(table) is their sum.

    cache: a JSON file that keeps each optimiser's rows as soon as it is tuned,
    read back instead of tuning it again (a CNN's four baselines take hours);
    the caller names it by everything the tuning depends on. Or a dict name ->
    JSON file of that optimiser's rows alone, named by what its own tuning
    depends on, so that adding an optimiser to a panel tunes that one only.
    """
    makers = makers if makers is not None else optimizers.FACTORIES
    unknown = sorted(set(names) - set(makers))
    if unknown:
        raise ValueError(f"unknown optimisers {unknown}; choose from {sorted(makers)}")
    many = not isinstance(steps, (int, np.integer))
    step_list = sorted(set(int(s) for s in steps)) if many else [int(steps)]
    if not step_list or step_list[0] < 1:
        raise ValueError(f"tune() needs steps >= 1, got {steps}")
    batch, params = fresh_instances(problem, seed, instances, TUNE_SEED)
    apart = isinstance(cache, dict)
    if apart:
        done = {n: rows for n in names if n in cache and (rows := _read_rows(cache[n]).get(n)) is not None}
    else:
        done = _read_rows(cache) if cache else {}
    rows = []
    for name in names:
        if name not in done:
            done[name] = _tune_one(problem, name, makers[name], extra.get(name, {}), step_list, batch, params, seed, grid, refine)
            if apart and name in cache:
                write_json(cache[name], {name: done[name]})
            elif cache and not apart:
                write_json(cache, done)
        rows += done[name]
    table = pd.DataFrame(rows)
    settings = {}
    for s in step_list:
        settings[s] = {}
        for objective in OBJECTIVES:
            settings[s][objective] = {}
            for name in names:
                best = table[table.optimiser == name].sort_values(f"{objective}@{s}", kind="stable").iloc[0]
                settings[s][objective][name] = {"learning_rate": float(best["lr"]), **{k: float(best[k]) for k in extra.get(name, {})}}
    if many:
        return settings, table
    only = step_list[0]
    return settings[only], table.rename(columns={f"{o}@{only}": o for o in OBJECTIVES})


def tuning_scores(table, names, steps):
    """step -> objective -> name -> the best score each optimiser reached in tune()'s table (a sequence of steps):
    its loss on the tuning instances at its tuned setting. "The best baseline" is chosen on these, never on test curves
    (choosing on test means would hand the baselines a winner's curse)."""
    return {int(s): {o: {n: float(table.loc[table.optimiser == n, f"{o}@{s}"].min()) for n in names} for o in OBJECTIVES} for s in steps}


def tuning_seconds(table):
    """Seconds a tuning's settings took (tune's table); NaN if any row lacks its time (kept by a version that did not record it)."""
    if table.empty:
        return 0.0
    return float(table["seconds"].sum(skipna=False)) if "seconds" in table else float("nan")


def _read_rows(path):
    """optimiser -> its rows kept by tune(cache=path); {} when the file is missing or unreadable."""
    try:
        with open(path) as f:
            return {name: list(rows) for name, rows in json.load(f).items()}
    except (OSError, ValueError, AttributeError):
        return {}


def write_json(path, value, **options):
    """`value` as JSON at `path` (json.dump's `options`, e.g. indent), atomically: a stop mid-write leaves the
    previous file whole."""
    path = str(path)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path + ".tmp", "w") as f:
        json.dump(value, f, **options)  # floats round-trip exactly; inf (a diverged setting) as Infinity
    os.replace(path + ".tmp", path)


def _tune_one(problem, name, make, options, steps, batch, params, seed, grid, refine):
    """tune()'s rows for one optimiser."""
    # Hyperparameters are variables read at run time: one trace serves every setting.
    knobs = {"learning_rate": tf.Variable(1.0), **{k: tf.Variable(float(v[0])) for k, v in options.items()}}
    rng = generator(seed)
    fn = tf.function(functools.partial(trajectory, problem, make(**knobs), steps=steps[-1], rng=rng))
    rows = []

    def score(setting, stage):
        if any(all(r[k] == v for k, v in setting.items()) for r in rows):
            return
        for k, v in setting.items():
            knobs["learning_rate" if k == "lr" else k].assign(v)
        reset(rng, seed)  # the same minibatches for every setting
        started = time.perf_counter()
        scored = _scores(fn(batch, params).numpy(), steps)
        rows.append({"optimiser": name, **setting, **{f"{o}@{s}": scored[s][i] for s in steps for i, o in enumerate(OBJECTIVES)},
                     "stage": stage, "seconds": time.perf_counter() - started})

    combos = [dict(zip(options, values)) for values in itertools.product(*options.values())] or [{}]
    for lr in grid:
        for combo in combos:
            score({"lr": float(lr), **combo}, 1)
    if refine:
        firsts = list(rows)
        for s in steps:
            for objective in OBJECTIVES:
                best = min(firsts, key=lambda r: r[f"{objective}@{s}"])
                for factor in (10 ** -0.25, 10 ** 0.25):
                    score({"lr": float(f"{best['lr'] * factor:.4g}"), **{k: best[k] for k in options}}, 2)
    return rows
