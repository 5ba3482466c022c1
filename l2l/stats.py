"""Statistics over evaluation curves: intervals, paired differences, verdicts.

Curves are arrays [seeds, instances, steps + 1] from l2l.evaluate; a seed
is a replication unit (for a learned optimiser, its own meta-training run).
"""

import math

import numpy as np
import pandas as pd


def validation_rank(value):
    """Sort key that picks the best run by its validation loss: lower first, and a run that never validated
    finitely (NaN, inf) last. min() over raw values is not enough: NaN compares as neither better nor worse."""
    value = float(value)
    return value if math.isfinite(value) else math.inf


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


def seed_means(curves, seeds):
    """Long table (optimiser, seed, step, loss): each seed's mean curve, small enough to commit."""
    frames = []
    for name, values in curves.items():
        mean = values.mean(axis=1)
        s, t = mean.shape
        if s != len(list(seeds)):
            raise ValueError(f"{name!r} has {s} runs (rows) but {len(list(seeds))} seeds were given to label them: pass that panel's own seeds")
        index = pd.MultiIndex.from_product([list(seeds), range(t)], names=["seed", "step"])
        frame = pd.DataFrame({"loss": mean.reshape(-1)}, index=index).reset_index()
        frame.insert(0, "optimiser", name)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)



# -- the run as the unit of replication ----------------------------------------
#
# A learned optimiser's results vary between meta-training runs more than
# between the problem instances one run is tested on. Where every evaluation
# seed has its own run, the per-seed means are the independent replicates:
# these functions average over instances first and take intervals over runs
# (Student's t, which stays honest with 3 to 10 runs where a percentile
# bootstrap over so few values is too narrow).


def first_within(values, threshold):
    """[..., T] -> [...]: the first step (1-based: values[..., 0] is step 1) at which values <= threshold;
    inf where it never is. NaN is never within."""
    values = np.asarray(values, np.float64)
    within = values <= threshold
    first = np.argmax(within, axis=-1).astype(np.float64) + 1.0
    return np.where(within.any(axis=-1), first, np.inf)


def trajectory_mean(curves, horizon):
    """Mean loss over steps 1..horizon per seed and instance: the quantity meta-training minimises. [seeds, instances]."""
    return np.asarray(curves, np.float64)[:, :, 1 : horizon + 1].mean(axis=-1)


def over_runs(values, level=0.95):
    """{"mean", "ci95", "runs"} of values [runs, instances] (or [runs]): instances averaged within a run,
    a t-interval over runs. One run gives an interval as wide as the mean's uncertainty allows: none.

    A run whose mean is not finite (an optimiser that diverged on one of its
    instances; NaN counts as +inf, a loss that blew up) makes the mean that
    infinity, with a zero-width interval at it and "diverged": the number of
    such runs, rather than a NaN that would compare as anything.
    """
    from scipy import stats as scipy_stats

    values = np.asarray(values, np.float64)
    per_run = values.mean(axis=1) if values.ndim == 2 else values
    n = len(per_run)
    if not np.all(np.isfinite(per_run)):
        bad = ~np.isfinite(per_run)
        signs = {float(np.sign(v)) if not np.isnan(v) else 1.0 for v in per_run[bad]}
        mean = float("inf") * signs.pop() if len(signs) == 1 else float("nan")
        return {"mean": mean, "ci95": [mean, mean], "runs": n, "diverged": int(bad.sum())}
    mean = float(per_run.mean())
    if n < 2:
        return {"mean": mean, "ci95": [-np.inf, np.inf], "runs": n}
    half = float(scipy_stats.t.ppf(0.5 + level / 2, n - 1) * per_run.std(ddof=1) / np.sqrt(n))
    return {"mean": mean, "ci95": [mean - half, mean + half], "runs": n}


# What each reported quantity can be: its interval is clipped to this range (a t-interval over a few runs of a loss
# near 0 reached below 0 in the book, e.g. "0.748 [-0.306, 1.8]"); differences are never clipped.
RANGES = {"loss": (0.0, math.inf), "trajectory_mean": (0.0, math.inf), "heldout_loss": (0.0, math.inf), "accuracy": (0.0, 1.0),
          "corner_error": (0.0, math.inf), "success": (0.0, 1.0)}


def within(interval, quantity):
    """over_runs' result for `quantity` (a key of RANGES) with its ci95 clipped to what the quantity can be, and
    "clipped": True where that changed it. The mean is never changed."""
    low, high = RANGES[quantity]
    ci = [min(max(interval["ci95"][0], low), high), max(min(interval["ci95"][1], high), low)]
    return {**interval, "ci95": ci, **({"clipped": True} if ci != list(interval["ci95"]) else {})}


def finite_or_inf(value):
    """A score to rank by: NaN (a diverged run) ranks with +inf, after every finite value."""
    value = float(value)
    return value if not np.isnan(value) else float("inf")


def compare_runs(a, b, level=0.95):
    """a - b over runs, each run's instances paired and averaged: {"mean", "ci95", "runs", "wins", "verdict"}.

    a, b: [runs, instances] of the same metric on the same instances
    (b may be a baseline without runs: its seeds pair with a's). "wins" is
    how many runs have a lower mean than b; the verdict reads the interval.
    """
    a, b = (np.nan_to_num(np.asarray(x, np.float64), nan=np.inf) for x in (a, b))  # a NaN loss is a diverged one
    with np.errstate(invalid="ignore"):
        diff = a - b  # inf - inf (both diverged) is NaN: no verdict either way
    out = over_runs(diff, level)
    per_run = diff.mean(axis=1) if diff.ndim == 2 else diff
    out["wins"] = int(np.sum(per_run < 0))
    out["verdict"] = "beats" if out["ci95"][1] < 0 else "loses to" if out["ci95"][0] > 0 else "cannot be told apart from"
    return out


def run_bands(curves, steps, level=0.95, log=False):
    """Long table (optimiser, step, mean, low, high) for plotting: each run's (seed's) mean curve, a
    t-interval over runs, as over_runs; a single run gets a band of zero width.

    log=True: for a positive quantity drawn on a log axis, the interval is taken on the log of the runs' curves and
    mapped back: the line is their geometric mean and the band never reaches below what a loss can be (an arithmetic
    t-band of a few runs reached 1e-5, and below 0, on the book's loss figures). A run whose mean is not positive and
    finite (diverged) makes that step's line and band NaN: nothing is drawn there."""
    from scipy import stats as scipy_stats

    frames = []
    for name, values in curves.items():
        per_run = np.asarray(values, np.float64)[:, :, list(steps)].mean(axis=1)
        if log:
            with np.errstate(divide="ignore", invalid="ignore"):
                per_run = np.where(np.isfinite(per_run) & (per_run > 0), np.log(np.where(per_run > 0, per_run, 1.0)), np.nan)
        n, mean = per_run.shape[0], per_run.mean(axis=0)
        half = scipy_stats.t.ppf(0.5 + level / 2, n - 1) * per_run.std(axis=0, ddof=1) / np.sqrt(n) if n > 1 else np.zeros_like(mean)
        low, high = mean - half, mean + half
        if log:
            mean, low, high = np.exp(mean), np.exp(low), np.exp(high)
        frames.append(pd.DataFrame({"optimiser": name, "step": list(steps), "mean": mean, "low": low, "high": high}))
    return pd.concat(frames, ignore_index=True)


# -- pre-registered endpoints ---------------------------------------------------
#
# A claim of the paper is "reproduced" when the learned optimiser is lower in at least `share` of the runs and the
# interval of the paired difference lies below 0; "not reproduced" when the interval lies above 0; otherwise
# "inconclusive at n runs", with the smallest difference the design could have detected. Fixed before the runs end.
REPRODUCED_SHARE = 0.8  # 4 of 5 runs
DETECTION_POWER = 0.8  # the power at which the detectable difference is stated


def detectable_difference(per_run_sd, runs, level=0.95, power=DETECTION_POWER):
    """The smallest true mean difference a paired t-test over `runs` runs at `level` detects with probability
    `power`, for runs whose paired differences spread with standard deviation `per_run_sd`:
    (t_{1-alpha/2, n-1} + t_{power, n-1}) * sd / sqrt(n). inf with fewer than 2 runs."""
    from scipy import stats as scipy_stats

    if runs < 2 or not np.isfinite(per_run_sd):
        return float("inf")
    dof = runs - 1
    return float((scipy_stats.t.ppf(0.5 + level / 2, dof) + scipy_stats.t.ppf(power, dof)) * per_run_sd / np.sqrt(runs))


def endpoint_verdict(learned, baseline, level=0.95, share=REPRODUCED_SHARE):
    """The pre-registered reading of one endpoint: learned - baseline paired by run.

    learned, baseline: [runs, instances] (or [runs]) of the same metric on the same instances, run k of the
    learned optimiser paired with test seed k of the baseline. Returns compare_runs' {"mean", "ci95", "runs",
    "wins"} plus "outcome" ("reproduced", "not reproduced" or "inconclusive"), "needed" (runs lower that
    "reproduced" requires) and "detectable" (the smallest difference the design could have detected, at the
    runs' observed spread; what an inconclusive outcome rules out)."""
    import math

    out = compare_runs(learned, baseline, level)
    a, b = (np.nan_to_num(np.asarray(x, np.float64), nan=np.inf) for x in (learned, baseline))
    with np.errstate(invalid="ignore"):
        diff = a - b
    per_run = diff.mean(axis=1) if diff.ndim == 2 else diff
    n = len(per_run)
    needed = math.ceil(share * n - 1e-9)
    if out["ci95"][1] < 0 and out["wins"] >= needed:
        outcome = "reproduced"
    elif out["ci95"][0] > 0:
        outcome = "not reproduced"
    else:
        outcome = "inconclusive"
    sd = float(np.std(per_run, ddof=1)) if n > 1 and np.all(np.isfinite(per_run)) else float("inf")
    return {**{k: out[k] for k in ("mean", "ci95", "runs", "wins")}, "outcome": outcome, "needed": needed,
            "detectable": detectable_difference(sd, n, level)}
