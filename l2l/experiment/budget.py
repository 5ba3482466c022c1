"""The learned optimiser's standing over meta-training (the budget curve): snapshots of long runs, evaluated on one panel."""


import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from l2l import evaluate, learned_optimizer, plots, stats
from l2l.experiment.protocol import METRICS, metric_values
from l2l.experiment.reports import fmt_interval
from l2l.experiment.runs import validation_jitter


def budget_curve(snapshots, lstm_config, panel, instances, seeds, step, baselines=None):
    """The learned optimiser's standing over meta-training: a row per snapshot epoch.

    snapshots: epoch -> weights file (meta.snapshots_in); every snapshot
    trains the panel's test problem on the same instances and minibatches, and
    the row holds its mean loss at `step` and mean over steps 1..step, each
    {"mean", "ci95", "runs"} over seeds. baselines: optionally name ->
    factory(seed), each run once on the same instances, for the lines the
    curve is read against.
    """
    epochs = sorted(snapshots)
    made = {f"epoch{e}": (lambda s, e=e: learned_optimizer.learned(learned_optimizer.load_weights(snapshots[e])[0], lstm_config,
                                                                    getattr(panel.problem, "groups", None))) for e in epochs}
    made.update({f"baseline:{name}": factory for name, factory in (baselines or {}).items()})
    curves = evaluate.evaluate(panel.problem, made, step, instances, seeds).curves
    row = lambda name: {"final": stats.over_runs(metric_values(curves[name], step, "final")),
                        "mean": stats.over_runs(metric_values(curves[name], step, "mean"))}
    return {"epochs": epochs, "snapshots": [row(f"epoch{e}") for e in epochs],
            "baselines": {name: row(f"baseline:{name}") for name in (baselines or {})}}

def budget_label(seed, clip_norm):
    """A budget run's name on the page: its seed and its meta-gradient clipping."""
    return f"seed {seed}" + (f", clip {clip_norm:g}" if clip_norm else ", no clipping")

def budget_panel(budget, clip_norms, every, lstm_config, panel, instances, seeds, step, baselines=None):
    """Every budget run's curve over the snapshots whose epoch is a multiple of `every`, keyed by budget_label.

    budget: per run k, (run key, epoch -> weights file, epochs trained) as
    l2l.recipes.snapshots gives it, with clip_norms[k] its clipping; a run
    with no such snapshot yet is left out. Returns label -> budget_curve(...)
    plus "key" and "epochs_trained".
    """
    if len(budget) != len(clip_norms):
        raise ValueError(f"{len(budget)} budget runs but {len(clip_norms)} clip norms: give one clip norm per run (0: none)")
    curves = {}
    for k, ((key, snapshots, epochs_done), clip) in enumerate(zip(budget, clip_norms)):
        chosen = {e: f for e, f in snapshots.items() if e % every == 0}
        if chosen:
            curves[budget_label(k, clip)] = {"key": key, "epochs_trained": epochs_done,
                                             **budget_curve(chosen, lstm_config, panel, instances, seeds, step, baselines=baselines)}
    return curves

def budget_table(curves):
    """One row per budget run and snapshot epoch: its loss at the step and mean over steps 1..step, each [95% CI].

    curves: run label -> budget_curve(...) (plus "key" and "epochs_trained")."""
    return pd.DataFrame([{"run": label, "epoch": e, "loss at the step": fmt_interval(r["final"]), "mean loss to the step": fmt_interval(r["mean"])}
                         for label, curve in curves.items() for e, r in zip(curve["epochs"], curve["snapshots"])])

def budget_figure(curves, step, lines):
    """Loss at `step` (left) and mean loss over steps 1..step (right) against meta-training epoch, a line per
    run with 95% error bars, and each metric's baseline line: lines is metric -> (label, baseline name)."""
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    for ax, metric in zip(axes, ["final", "mean"]):
        for label, curve in curves.items():
            rows = [r[metric] for r in curve["snapshots"]]
            means = np.array([r["mean"] for r in rows])
            errors = [means - [r["ci95"][0] for r in rows], [r["ci95"][1] for r in rows] - means]
            ax.errorbar(curve["epochs"], means, yerr=errors, marker="o", capsize=3, label=f"LSTM {label}")
        name, baseline = lines[metric]
        ax.axhline(next(iter(curves.values()))["baselines"][baseline][metric]["mean"], color=plots.colour(baseline.split()[0]),
                   linestyle="--", label=name)
        ax.set(xlabel="meta-training epoch", ylabel=METRICS[metric].format(step=step))
        ax.legend(frameon=False)
    return fig

def budget_crossing(curve, baseline, metric="final"):
    """When a budget run's snapshots cross the baseline's mean on `metric`: (first epoch whose mean is below it or
    None, the later epochs whose mean is back at or above it). The second answers whether the run collapses."""
    below = [r[metric]["mean"] < baseline[metric]["mean"] for r in curve["snapshots"]]
    if True not in below:
        return None, []
    k = below.index(True)
    return curve["epochs"][k], [e for e, b in zip(curve["epochs"][k + 1:], below[k + 1:]) if not b]

def budget_sentence(curves, step, total_epochs, lines, unit="MLPs"):
    """Each budget run's latest snapshot (no selection on the test panel) against the baseline, on both metrics, with intervals,
    and on the loss at `step` when its snapshots first went below the baseline's mean and whether a later one went back above."""
    if not curves:
        return "No budget-run snapshot exists yet: start one with `python -m l2l.recipes train mnist_paper`."
    first = next(iter(curves.values()))
    runs = first["snapshots"][-1]["final"]["runs"]
    baseline = {m: first["baselines"][lines[m][1]][m] for m in ("final", "mean")}
    parts, crossings = [], []
    for label, curve in curves.items():
        last = curve["snapshots"][-1]
        parts.append(f"the run with {label} reaches, at epoch {curve['epochs'][-1]}, {fmt_interval(last['final'])} on the {METRICS['final'].format(step=step)} "
                     f"and {fmt_interval(last['mean'])} on the {METRICS['mean'].format(step=step)}")
        crossed, back = budget_crossing(curve, baseline)
        if crossed is None:
            crossings.append(f"the run with {label} stays above it at every snapshot")
        else:
            crossings.append(f"the run with {label} is below it from epoch {crossed} on" if not back else
                             f"the run with {label} goes below it at epoch {crossed} and back above it at epoch{'s' if len(back) > 1 else ''} "
                             + ", ".join(str(e) for e in back))
    furthest = max(max(c["epochs"]) for c in curves.values())
    reach = (f"The snapshots reach epoch {furthest} of {total_epochs} so far." if furthest < total_epochs
             else f"The snapshots reach the full {total_epochs} epochs.")
    return (f"Over {runs} test seeds of the base panel's {unit} (one meta-training run per line, so these intervals are over test seeds, not runs), "
            f"the latest snapshot of each budget run: " + "; ".join(parts) + f". {lines['final'][0]} reaches {fmt_interval(baseline['final'])} and "
            f"{lines['mean'][0]} {fmt_interval(baseline['mean'])} on the same {unit}. Read snapshot by snapshot against its mean on the "
            f"{METRICS['final'].format(step=step)}, " + "; ".join(crossings) + f". {reach}")

def budget_summary(curves, step, settings, lines):
    """The budget curve as a summary.json panel: per run, per snapshot epoch, its loss at `step` and trajectory mean;
    the baseline (settings: metric -> its keyword arguments) at `step`; the epochs."""
    entries = {f"lstm_{label.replace(', ', '_').replace(' ', '')}": {
        "lr": None, "key": c["key"], "epochs_trained": c["epochs_trained"],
        "loss": {str(e): r["final"] for e, r in zip(c["epochs"], c["snapshots"])},
        "trajectory_mean": {str(e): r["mean"] for e, r in zip(c["epochs"], c["snapshots"])}} for label, c in curves.items()}
    if curves:
        first = next(iter(curves.values()))["baselines"]
        name = lines["final"][1].split()[0]
        entries[name] = {"lr": settings["final"]["learning_rate"], "settings": settings,
                         "loss": {str(step): first[lines["final"][1]]["final"]}, "trajectory_mean": {str(step): first[lines["mean"][1]]["mean"]}}
    return {"optimisers": entries, "step": step, "epochs": sorted({e for c in curves.values() for e in c["epochs"]})}

def selection_noise(runs, valid_problem, instances, horizon):
    """How noisy checkpoint selection was, per run: the standard error over `instances` validation MLPs of
    the selection signal (mean loss over steps 1..horizon, at the kept weights, on fresh validation
    instances) beside the validation jitter (validation_jitter of the run). A table: seed, signal, stderr, jitter."""
    from l2l.rollout import VALID_SEED

    rows = []
    for seed, run in runs.items():
        curves = evaluate.evaluate(valid_problem, {"kept": lambda s, run=run: run.optimizer(valid_problem)}, horizon, instances, [seed],
                                   offset=VALID_SEED + 7919).curves["kept"]  # other instances than the selection's own
        per_mlp = stats.trajectory_mean(curves, horizon)[0]
        rows.append({"seed": seed, "signal": float(per_mlp.mean()), "stderr": float(per_mlp.std(ddof=1) / np.sqrt(len(per_mlp))),
                     "jitter": validation_jitter([run])})
    return pd.DataFrame(rows)
