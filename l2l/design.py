"""Designed experiments over the meta-learner's settings: two-level fractional factorials, their main effects with
intervals, trials that trained apart from trials that never did, and a compute budget that does not favour short unrolls.

    design = design.fractional_factorial(6)                               # [16, 6] of -1 / +1
    points = design.design_points(design, {"meta_lr": (1e-3, 1e-2), ...})  # 16 settings dicts
    effects = design.main_effects(x, y, names)                            # OLS on the coded settings, a t-interval each

An optimiser's search (TPE) concentrates its trials where it found good ones:
importances read from such a trail extrapolate from a correlated design. A
fractional factorial spreads its points so that every setting's main effect
is estimated independently of the others' and of every two-setting
interaction (resolution IV or better), from a handful of points.
"""

import itertools
import math

import numpy as np
import pandas as pd

BASE = "ABCD"  # the four base factors of a 16-point design
# Generators of the 16-point two-level designs (Box, Hunter & Hunter 2005, table 6.22): k settings -> the columns after
# the four base ones, each the product of the base columns it names. Resolution V for 5 settings, IV for 6 to 8.
GENERATORS_16 = {5: ("ABCD",), 6: ("ABC", "BCD"), 7: ("ABC", "BCD", "ACD"), 8: ("BCD", "ACD", "ABC", "ABD")}


def fractional_factorial(k):
    """[points, k] of -1 and +1: the full factorial 2^k for k <= 4, else the 16-point design of GENERATORS_16 (k <= 8).
    Rows in standard order (the first setting changes fastest)."""
    if not 1 <= k <= 8:
        raise ValueError(f"a two-level design here takes 1 to 8 settings, got {k}; fix the others at their best values")
    m = min(k, 4)
    base = np.array(list(itertools.product([-1, 1], repeat=m)))[:, ::-1]
    columns = [base[:, i] for i in range(m)] + [np.prod([base[:, BASE.index(c)] for c in word], axis=0) for word in GENERATORS_16.get(k, ())]
    return np.stack(columns, axis=1).astype(int)


def design_points(design, levels):
    """The settings of each point: levels maps each setting (in the design's column order) to its (low, high) values;
    -1 takes low, +1 high."""
    if len(levels) != design.shape[1]:
        raise ValueError(f"the design has {design.shape[1]} columns and {len(levels)} settings were given: one (low, high) pair per column")
    return [{name: (high if code > 0 else low) for code, (name, (low, high)) in zip(row, levels.items())} for row in design]


def main_effects(coded, values, names, level=0.95):
    """Each setting's main effect on `values`: the mean at its high level minus the mean at its low level, from an
    ordinary least-squares fit of values on the coded settings (observations [n, k] of -1 / +1; replicates are rows of
    their own), with a t-interval from the residual variance. Balanced and complete, it is the plain difference of the
    two halves' means; with trials missing (failed, set apart) it stays unbiased for a linear response. One row per
    setting, largest |effect| first."""
    from scipy import stats as scipy_stats

    x, y = np.asarray(coded, np.float64), np.asarray(values, np.float64)
    design = np.column_stack([np.ones(len(y)), x])
    dof = len(y) - design.shape[1]
    if dof < 1:
        raise ValueError(f"{len(y)} observations cannot estimate {x.shape[1]} effects and a mean with an interval: replicate the points")
    coef, residual, rank, _ = np.linalg.lstsq(design, y, rcond=None)
    if rank < design.shape[1]:
        raise ValueError("the observations left do not separate every setting (aliased columns): too many trials were set apart")
    sigma2 = float(np.sum((y - design @ coef) ** 2)) / dof
    se = np.sqrt(np.diag(np.linalg.inv(design.T @ design)) * sigma2)[1:] * 2.0  # effect = 2 x coefficient (from -1 to +1)
    half = scipy_stats.t.ppf(0.5 + level / 2, dof) * se
    effects = 2.0 * coef[1:]
    frame = pd.DataFrame({"setting": list(names), "effect": effects, "low": effects - half, "high": effects + half, "se": se})
    frame["clear"] = (frame.low > 0) | (frame.high < 0)  # the interval excludes 0
    return frame.reindex(frame.effect.abs().sort_values(ascending=False).index).reset_index(drop=True)


def trained(final_losses, untrained, tolerance=0.01):
    """Whether each trial's optimiser trained at all: its final loss below the untrained level (a classifier's ln 10
    at chance, say) by more than `tolerance` of it. A trial that never trained scores the untrained level over the
    baseline's, a number set by the evaluation horizon alone; it belongs in the failure table, not in importances."""
    return np.asarray(final_losses, np.float64) < untrained * (1.0 - tolerance)


def failure_table(settings, alive):
    """Per setting and value: trials, how many trained, and that share; settings a DataFrame of the trials' values."""
    frame = pd.DataFrame(settings).assign(trained=np.asarray(alive, bool))
    rows = [{"setting": name, "value": value, "trials": len(group), "trained": int(group.trained.sum()), "share": float(group.trained.mean())}
            for name in frame.columns.drop("trained") for value, group in frame.groupby(name)]
    return pd.DataFrame(rows)


def epochs_for_budget(meta_iterations, horizon, unroll):
    """Epochs that spend `meta_iterations` meta-updates (one per unroll segment, horizon / unroll per epoch): a trial
    budgeted in epochs gives unroll 5 ten times the updates of unroll 50, so that unroll's effect would be the budget's."""
    if horizon % unroll:
        raise ValueError(f"horizon {horizon} must be a multiple of unroll {unroll}")
    return max(1, math.ceil(meta_iterations / (horizon // unroll)))
