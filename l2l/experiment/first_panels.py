"""The first panel API (one tuned rate per baseline, intervals over test seeds): the Keras chapter's panels still use it;
new work uses the protocol (l2l.experiment.protocol)."""

import time
from typing import NamedTuple

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from l2l import evaluate, plots, stats
from l2l.experiment.panel import BASELINES, Panel, factories
from l2l.experiment.reports import fmt_interval


class PanelResult(NamedTuple):
    panel: Panel
    lrs: dict  # baseline -> tuned learning rate
    tuning: pd.DataFrame  # optimiser, lr, final_loss on the tuning problem
    tuning_s: float  # seconds the learning-rate search took
    evaluation: evaluate.Evaluation
    entries: dict  # optimiser -> its summary.json entry

def run_panel(panel, learned, instances, seeds, tune_instances, baselines=BASELINES, n_boot=2000):
    """Tunes the baselines on the panel's tuning problem, then runs every optimiser on its test problem.

    learned: name -> list of MetaResult (or anything with .optimizer()).
    """
    started = time.time()
    lrs, tuning = evaluate.tune_learning_rates(panel.tuning_problem, list(baselines), panel.tune_steps, tune_instances)
    tuning_s = time.time() - started
    metric = panel.metric()
    snapshots = sorted(set(panel.report_steps)) if metric else ()
    result = evaluate.evaluate(panel.problem, factories(learned, lrs, panel.problem), panel.steps, instances, seeds, metric=metric, snapshots=snapshots)
    return PanelResult(panel, lrs, tuning, tuning_s, result, panel_entries(panel, lrs, result, n_boot))

def interval(values, n_boot=2000):
    """{"mean", "ci95"} of values [seeds, instances]."""
    mean, low, high = stats.bootstrap_ci(np.asarray(values)[:, :, None], n_boot)
    return {"mean": float(mean[0]), "ci95": [float(low[0]), float(high[0])]}

def panel_entries(panel, lrs, result, n_boot=2000):
    """optimiser -> {"lr", "loss": {step: interval}, [the panel's measures: "heldout_loss", "accuracy" or "corner_error", "success"], "ms_per_step"}."""
    entries = {}
    for name, curve in result.curves.items():
        entry = {"lr": lrs.get(name), "loss": stats.summarize({name: curve}, list(panel.report_steps), n_boot)[name]}
        if result.metrics.get(name):
            for i, measure in enumerate(panel.measures):
                entry[measure] = {str(s): interval(result.metrics[name][s][i], n_boot) for s in panel.report_steps}
        entry["ms_per_step"] = 1000 * result.seconds_per_step[name]
        entries[name] = entry
    return entries

def results_table(result, extra_columns=None):
    """Markdown-ready table: learning rate, loss [95% CI] at each reported step, accuracy if measured, ms per step."""
    entries, steps = result.entries, result.panel.report_steps
    frame = pd.DataFrame({
        "optimiser": [plots.LABELS.get(n, n) for n in entries],
        "learning rate": [f"{e['lr']:.3g}" if e["lr"] else "learned" for e in entries.values()],
        **{f"loss at step {s} [95% CI]": [fmt_interval(e["loss"][str(s)]) for e in entries.values()] for s in steps},
        **({f"held-out accuracy at step {s}": [f"{100 * e['accuracy'][str(s)]['mean']:.1f}%" for e in entries.values()] for s in steps}
           if all("accuracy" in e for e in entries.values()) else {}),
        **(extra_columns or {}),
        "ms per step": [f"{e['ms_per_step']:.2f}" for e in entries.values()],
    })
    return frame

def verdict(result, step, unit="problems", n_boot=2000, learned="lstm"):
    """One sentence: the learned optimiser against the best tuned baseline at `step`, paired on the same instances."""
    entries = result.entries
    baselines = [n for n in result.lrs if n in entries]
    best, diff, word = stats.against_best(result.evaluation.curves, step, baselines, learned, n_boot)
    ours, theirs = entries[learned]["loss"][str(step)]["mean"], entries[best]["loss"][str(step)]["mean"]
    sentence = (f"At step {step} the LSTM's mean training loss is **{ours:.3g}**; the best tuned baseline is "
                f"{plots.LABELS[best]} (lr {entries[best]['lr']:.3g}) at **{theirs:.3g}**. On the same {unit} the LSTM's loss "
                f"minus {plots.LABELS[best]}'s is {diff['mean']:.3g} (95% CI {diff['ci95'][0]:.3g} to {diff['ci95'][1]:.3g}): "
                f"the LSTM **{word}** it")
    if "accuracy" in entries[learned] and str(step) in entries[learned]["accuracy"]:
        acc = entries[learned]["accuracy"][str(step)]["mean"], entries[best]["accuracy"][str(step)]["mean"]
        sentence += f" (held-out accuracy {100 * acc[0]:.1f}% against {100 * acc[1]:.1f}%)"
    return sentence + "."

def figure(result, steps=None, log_x=False, grid=None, ax=None):
    """Mean loss with 95% bands against step, to `steps` (or on `grid`), tuned rates in the legend."""
    fig = plt.figure() if ax is None else ax.figure
    points = grid if grid is not None else range((steps or result.panel.steps) + 1)
    plots.loss_curves(stats.bands(result.evaluation.curves, points), ax=ax, lrs=result.lrs, title=result.panel.title, log_x=log_x)
    return fig

def curves_frame(results, seeds):
    """Each seed's mean curve per optimiser and panel: small enough to commit."""
    return pd.concat([stats.seed_means(r.evaluation.curves, seeds).assign(panel=name) for name, r in results.items()], ignore_index=True)

def tuning_frame(results):
    return pd.concat([r.tuning.assign(panel=name) for name, r in results.items()], ignore_index=True)
