"""What a finished study says: its trials, importances, rank agreement, grids and partial dependence."""

import math


def trials_frame(s):
    """One row per trial: number, state, value, score (the value, or a pruned trial's last validation), settings,
    ratios, costs, status, failure."""
    import pandas as pd

    rows = []
    for t in s.get_trials(deepcopy=False):
        attrs = t.user_attrs
        # A pruned trial's score is the last validation the pruner read; a complete trial's is its value.
        score = t.value if t.value is not None else t.intermediate_values.get(max(t.intermediate_values, default=-1), math.nan)
        rows.append({"number": t.number, "state": t.state.name, "value": t.value, "score": score, **t.params,
                     "ratio_final": attrs.get("ratio", {}).get("final"), "ratio_mean": attrs.get("ratio", {}).get("mean"),
                     "cpu_s": attrs.get("cpu_s"), "wall_s": attrs.get("wall_s"), "status": attrs.get("status"),
                     "failure": attrs.get("failure"), "surplus": "surplus" in attrs, "retry_of": t.system_attrs.get("failed_trial"),
                     "last_epoch": max(t.intermediate_values, default=None), "run_key": attrs.get("run_key")})
    return pd.DataFrame(rows)


def outcomes(frame):
    """How a study's trials (trials_frame) ended: counts of complete, pruned, failed (with a reason), retries of
    trials whose worker died, and surplus trials closed unrun."""
    return {"complete": int((frame.state == "COMPLETE").sum()), "pruned": int((frame.state == "PRUNED").sum()),
            "failed": int(frame.failure.notna().sum()), "retried": int(frame.retry_of.notna().sum()), "surplus": int(frame.surplus.sum())}


def rank_agreement(first, second):
    """Spearman's rho between two importance rankings (setting names, most important first) over the settings
    both hold, and that count; rho is NaN below 3 shared settings, where it says nothing."""
    from scipy.stats import spearmanr

    shared = [name for name in first if name in set(second)]
    if len(shared) < 3:
        return math.nan, len(shared)
    first, second = list(first), list(second)
    return float(spearmanr([first.index(n) for n in shared], [second.index(n) for n in shared]).statistic), len(shared)


def importance_sentence(main, second, complete):
    """What the importance ranking says: main and second are {"fanova": frame, "ped_anova": frame} (importances) of
    the main study and of the second task's; complete is the main study's count of complete trials."""
    head = main["fanova"].iloc[0]
    estimators, _ = rank_agreement(main["fanova"].setting, main["ped_anova"].setting)
    tasks, shared = rank_agreement(main["fanova"].setting, second["fanova"].setting)
    rest = ", ".join(f"{r.setting} {r.importance:.2f}" for r in main["fanova"].iloc[1:4].itertuples())
    return (f"On MNIST ({complete} complete trials), fANOVA ranks **{head.setting}** first with {head.importance:.2f} of the variance "
            f"(bootstrap interval {head.low:.2f} to {head.high:.2f}), then {rest}. Against it, PED-ANOVA's ranking (first: "
            f"{main['ped_anova'].setting.iloc[0]}) has Spearman's ρ = {estimators:.2f}: {agreement(estimators)}; the quadratics study's "
            f"fANOVA ranking, over the {shared} settings both searched, ρ = {tasks:.2f}: {agreement(tasks)}.")


def agreement(rho):
    """Spearman's ρ between two rankings, in words."""
    if not math.isfinite(rho):
        return "not measurable"
    if rho >= 0.7:
        return "they agree"
    if rho >= 0.3:
        return "they agree in part"
    if rho > -0.3:
        return "they are unrelated"
    return "they disagree"


def grid_heat(frame, pair):
    """A grid study's complete trials (trials_frame) as a table of their values: rows pair[1], columns pair[0]."""
    return frame[frame.state == "COMPLETE"].pivot_table(index=pair[1], columns=pair[0], values="value")


def grid_sentence(heat, objective):
    """The best and worst points of a grid table (grid_heat) and how many beat tuned NAG (a ratio below 1)."""
    cells = heat.stack().dropna()  # pandas 3 keeps the missing cells of a failed point in stack()
    row, column = cells.idxmin()
    what = {"mean": "mean loss over the horizon", "final": "loss at the horizon"}[objective]
    return (f"On the {cells.size} complete grid points ({what} relative to tuned NAG's), the best is "
            f"{heat.index.name} = {row:g}, {heat.columns.name} = {column:g} at {cells.min():.3g}; the worst {cells.max():.3g}; "
            f"{int((cells < 1).sum())} of {cells.size} points beat NAG.")


def importances(s, evaluator="fanova", repeats=20, seed=0):
    """Each searched setting's importance (Optuna's fANOVA, or PED-ANOVA), refitted on `repeats` bootstrap
    resamples of the complete trials: a frame of setting, importance (on all trials), low and high (2.5 and
    97.5 percentiles over resamples; the estimate on all trials can fall outside them, as a bootstrap allows)."""
    import numpy as np
    import optuna
    import pandas as pd

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # each refit creates an in-memory study, and Optuna says so
    complete = [t for t in s.get_trials(deepcopy=False) if t.state == optuna.trial.TrialState.COMPLETE]
    if len(complete) < 2:
        raise ValueError(f"importances need at least 2 complete trials, the study has {len(complete)}")
    make = {"fanova": lambda k: optuna.importance.FanovaImportanceEvaluator(seed=k),
            "ped_anova": lambda k: optuna.importance.PedAnovaImportanceEvaluator()}[evaluator]

    def fit(trials, k):
        sub = optuna.create_study(direction="minimize")
        sub.add_trials(trials)
        return optuna.importance.get_param_importances(sub, evaluator=make(k), normalize=True)

    whole = fit(complete, seed)
    rng = np.random.default_rng(seed)
    draws = []
    for k in range(repeats):
        picked = [complete[i] for i in rng.integers(0, len(complete), len(complete))]
        try:
            draws.append(fit(picked, seed + 1 + k))
        except (ValueError, RuntimeError):  # a resample where a setting takes one value only
            continue
    rows = []
    for name, value in whole.items():
        values = [d.get(name, 0.0) for d in draws]
        low, high = (np.percentile(values, [2.5, 97.5]) if values else (math.nan, math.nan))
        rows.append({"setting": name, "importance": float(value), "low": float(low), "high": float(high), "resamples": len(values)})
    return pd.DataFrame(rows).sort_values("importance", ascending=False, ignore_index=True)


def settings_of(trial):
    """Every setting of a finished trial (searched or not), as its run used them."""
    return dict(trial.user_attrs["settings"])



def partial_dependence(frame, setting, bins=4):
    """The objective against one setting over the complete trials: per choice (categorical) or per quantile bin
    (numeric), the geometric mean of the ratio to NAG with a 95% t-interval on its log, and the trial count."""
    import numpy as np
    import pandas as pd
    from scipy import stats as st

    done = frame[(frame.state == "COMPLETE") & frame[setting].notna()].copy()
    groups = done[setting] if done[setting].nunique() <= bins else pd.qcut(done[setting], bins, duplicates="drop")
    rows = []
    for level, part in done.groupby(groups, observed=True):
        logs = np.log(part.value.to_numpy())
        half = st.t.ppf(0.975, len(logs) - 1) * logs.std(ddof=1) / np.sqrt(len(logs)) if len(logs) > 1 else math.nan
        rows.append({"setting": setting, "level": str(level), "ratio": float(np.exp(logs.mean())), "low": float(np.exp(logs.mean() - half)),
                     "high": float(np.exp(logs.mean() + half)), "trials": len(logs)})
    return pd.DataFrame(rows)
