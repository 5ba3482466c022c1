"""What the book prints from protocol results: sentences, tables, figures, frames."""

import html
import re

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from l2l import evaluate, plots, stats
from l2l.experiment.protocol import METRICS, TUNED, metric_values


def edge_of_grid(lrs, grid=evaluate.LR_GRID):
    """Baselines whose tuned rate sits at the grid's edge (the grid should then be widened)."""
    return [name for name, lr in lrs.items() if lr in (min(grid), max(grid))]

def tuned_at_edge(result, grid=evaluate.LR_GRID, multiplier_grid=evaluate.MULTIPLIER_GRID):
    """Every tuned value of a ProtocolResult at the outer end of what its tuning tried, as dicts of optimiser, step,
    objective, value (and run, for a learned optimiser's multiplier): the optimum may lie beyond it.

    The first stage tries `grid` (multiplier_grid for multipliers); the second, a quarter-decade either side of the
    best (evaluate.tune), so the outermost values tried are the grid's ends moved a quarter-decade outwards.
    """
    def ends(values):
        return float(f"{min(values) / 10 ** 0.25:.4g}"), float(f"{max(values) * 10 ** 0.25:.4g}")

    found = []
    low, high = ends(grid)
    for step, by_objective in result.settings.items():
        for objective, by_name in by_objective.items():
            for name, kwargs in by_name.items():
                if kwargs["learning_rate"] in (low, high):
                    found.append({"optimiser": name, "step": step, "objective": objective, "value": kwargs["learning_rate"]})
    low, high = ends(multiplier_grid)
    for name, by_step in result.multipliers.items():
        for step, by_objective in by_step.items():
            for objective, values in by_objective.items():
                found += [{"optimiser": TUNED.format(name), "step": step, "objective": objective, "value": v, "run": k}
                          for k, v in enumerate(values) if v in (low, high)]
    return found

def timing_spread(result):
    """The largest ratio of the slowest to the fastest time per step among the runs of one optimiser of a protocol
    panel (its settings differ only in learning rate, momentum or step multiplier, which cost nothing per step),
    over its optimisers: how much the measured time per step moved with the machine's load while the panel ran."""
    suffix = TUNED.format("")
    groups = {}
    for name, by_step in result.runs.items():
        base = name[: -len(suffix)] if name.endswith(suffix) else name
        groups.setdefault(base, set()).update(run for by_objective in by_step.values() for run in by_objective.values())
    seconds = [[result.seconds_per_step[run] for run in runs] for runs in groups.values()]
    return max((max(s) / min(s) for s in seconds), default=1.0)

def edge_markdown(edges, titles):
    """Markdown bullets, one per panel with values at the edge (tuned_at_edge's lists, keyed by panel), each value
    with its run and objective; "none." when no panel has one. `titles` names each panel key."""
    def item(found):
        run = f" run {found['run']}" if "run" in found else ""
        objective = "final loss" if found["objective"] == "final" else "trajectory mean"
        return f"{found['optimiser']}{run} at {found['value']:g} ({objective} at step {found['step']})"

    return "\n".join(f"- {titles[name]}: " + "; ".join(map(item, found)) for name, found in edges.items() if found) or "none."

def add_edges(summaries, edges, steps):
    """Put each panel's tuned_at_edge list into its summary entry. A panel summarised once per reported step (the
    entries `<name><step>`, as step_summaries writes them) gets, in each entry, the values tuned at that step."""
    for name, found in edges.items():
        if name in summaries:
            summaries[name]["tuned_at_edge"] = found
        else:
            for step in steps:
                summaries[f"{name}{step}"]["tuned_at_edge"] = [f for f in found if f["step"] == step]
    return summaries

def fmt_interval(value):
    if value.get("diverged"):
        return f"diverged in {value['diverged']} of {value['runs']} runs"
    return f"{value['mean']:.3g} [{value['ci95'][0]:.3g}, {value['ci95'][1]:.3g}]"

def fmt_reach(value, form, scale=1.0):
    """An interval of steps or seconds to a threshold; runs that never got there are named, not averaged."""
    if value.get("diverged"):
        return f"not reached in {value['diverged']} of {value['runs']} runs"
    low, high = value["ci95"]
    return f"{form.format(scale * value['mean'])} [{form.format(scale * low)}, {form.format(scale * high)}]"

def verdict_html(markdown):
    """A one-paragraph verdict's Markdown as HTML, for pages that pull it across.

    The intro shows verdicts with the {glue} directive and :doc:, which
    renders only HTML and images from another page; the chapters glue both.
    """
    return re.sub(r"\*\*(.*?)\*\*", r"<strong>\1</strong>", html.escape(markdown, quote=False))

def protocol_summary(result):
    """A panel's summary.json entry: every optimiser's entry, the test problem and the verdicts by step."""
    return {"optimisers": result.entries, "architecture": repr(result.panel.problem), "verdicts": {str(s): v for s, v in result.verdicts.items()}}

def versus(result, ours, theirs, step, metric):
    """One named optimiser of a run_protocol result against another (not the best baseline) on the final loss or the
    trajectory mean at `step`, paired by run: stats.compare_runs of ours minus theirs, each read from the run tuned
    for that step and metric, with their names."""
    values = lambda name: metric_values(result.curves[result.runs[name][step][metric]], step, metric)
    return {"learned": ours, "best": theirs, **stats.compare_runs(values(ours), values(theirs))}

def versus_grid(result, ours, steps, baselines=("nag", "adam"), metrics=("final", "mean")):
    """(step, metric, baseline) -> versus(result, ours, baseline, step, metric): one learned optimiser against each
    named baseline, each tuned for that step and metric, at every step and metric."""
    return {(s, m, b): versus(result, ours, b, s, m) for s in steps for m in metrics for b in baselines}

def versus_sentences(against, who):
    """Markdown, one item per entry of versus_grid: which metric and step, the difference with its 95% interval over
    runs, and in how many runs `who` was lower."""
    def sentence(step, metric, baseline, v):
        return (f"On the {METRICS[metric].format(step=step)}, {who} minus {plots.label(baseline)} (tuned for it) is {v['mean']:.3g} "
                f"(95% CI {v['ci95'][0]:.3g} to {v['ci95'][1]:.3g}), lower in {v['wins']} of {v['runs']} runs.")

    return "\n".join(f"- {sentence(s, m, b, v)}" for (s, m, b), v in against.items())

def cost_table(meta_seconds):
    """Meta-training cost per label (label -> wall seconds per run): runs, hours per run and total hours."""
    return pd.DataFrame([{"variant": label, "runs": len(s), "hours per run (one thread)": float(np.mean(s)) / 3600, "total hours": float(np.sum(s)) / 3600}
                         for label, s in meta_seconds.items()], columns=["variant", "runs", "hours per run (one thread)", "total hours"])

def ablation_rows(result, names, steps):
    """One row per learned optimiser of a run_protocol result: at each step, its mean final loss and trajectory mean,
    with (its difference to the best baseline for that step and metric, runs lower / runs)."""
    rows = []
    for name in names:
        row = {"variant": plots.label(name)}
        for s in steps:
            for metric, key in (("final", "loss"), ("mean", "trajectory_mean")):
                v = versus(result, name, result.verdicts[s][metric]["best"], s, metric)
                row[f"step {s}" if metric == "final" else f"mean 1-{s}"] = (
                    f"{result.entries[name][key][str(s)]['mean']:.3g} ({v['mean']:+.2g}, {v['wins']}/{v['runs']})")
        rows.append(row)
    return rows

def within_interval(result, ours, theirs="adam", step=None):
    """Whether `ours` ends at or below the top of `theirs`' 95% interval on the final loss at `step` (default: the
    last reported): a transfer target, "as good as tuned ADAM or better", that one panel's few runs can meet."""
    step = max(result.verdicts) if step is None else step
    mine, other = result.entries[ours]["loss"][str(step)], result.entries[theirs]["loss"][str(step)]
    return {"step": step, "lstm": mine["mean"], "adam_ci95": other["ci95"], "met": bool(mine["mean"] <= other["ci95"][1])}

def beats(verdict, share=0.8):
    """A win target: lower in at least `share` of the runs, and the 95% interval of the difference below 0."""
    return verdict["wins"] >= share * verdict["runs"] and verdict["ci95"][1] < 0

def targets_table(against, within, keras, hours, steps, titles, keras_last, keras_ratio=1.1, hours_target=6.0, hours_slack=0.5):
    """The beyond chapter's targets, set before any run, against what was measured: one row each, met "yes" or "no".

    against: (step, "final", baseline) -> versus(); within: panel -> within_interval(); keras: model -> {"ratio": loss over
    tuned ADAM's}; hours: meta-training CPU-hours; titles: panel -> its title.
    """
    rows = []
    for s in steps:
        for b in ("nag", "adam"):
            v = against[s, "final", b]
            rows.append({"target": f"MNIST MLP, training loss at step {s}: lower than tuned {plots.label(b)} in >= 80% of runs, interval excluding 0",
                         "measured": f"{v['mean']:+.3g} (95% CI {v['ci95'][0]:.3g} to {v['ci95'][1]:.3g}), lower in {v['wins']} of {v['runs']}",
                         "met": "yes" if beats(v) else "no"})
    for name, w in within.items():
        rows.append({"target": f"{titles[name]}, training loss at step {w['step']}: within tuned ADAM's 95% interval or better",
                     "measured": f"{w['lstm']:.3g} against ADAM's {w['adam_ci95'][0]:.3g} to {w['adam_ci95'][1]:.3g}", "met": "yes" if w["met"] else "no"})
    for model_name, k in keras.items():
        rows.append({"target": f"Keras {model_name}, defaults: training loss (last {keras_last} steps) at most {keras_ratio:g}x tuned ADAM's",
                     "measured": f"{k['ratio']:.3f}x", "met": "yes" if k["ratio"] <= keras_ratio else "no"})
    rows.append({"target": f"meta-training for the chapter within about {hours_target:g} CPU-hours", "measured": f"{hours:.1f} hours of one thread",
                 "met": "yes" if hours <= hours_target + hours_slack else "no"})
    return pd.DataFrame(rows)

def step_summary(result, step):
    """A protocol panel's summary.json entry at one reported step only: the entries' values at that step and its verdicts."""
    key = str(step)
    entries = {name: {k: ({key: v[key]} if isinstance(v, dict) and key in v else v) for k, v in entry.items()} for name, entry in result.entries.items()}
    return {"optimisers": entries, "architecture": repr(result.panel.problem), "step": step, "verdicts": {key: result.verdicts[step]}}

def step_summaries(result, prefix, against=None):
    """summary.json entries `prefix<step>`, one per reported step of a protocol panel (step_summary), each with
    the versus_grid entries at its step under "against" as "metric/baseline"."""
    panels = {}
    for step in sorted(result.verdicts):
        panels[f"{prefix}{step}"] = step_summary(result, step)
        if against:
            panels[f"{prefix}{step}"]["against"] = {f"{m}/{b}": v for (s, m, b), v in against.items() if s == step}
    return panels

def protocol_sentence(result, step, metric, unit="problems", who=None, learner="the LSTM"):
    """One sentence for one step and metric: which metric, which step, how many runs, the interval and k of n;
    `who` names the learned optimiser (default: `learner`, saying whether its step multiplier was tuned)."""
    v = result.verdicts[step][metric]
    best = plots.label(v["best"])
    tuned = v["learned"] != "lstm" and v["learned"].endswith("_tuned")
    who = who or (f"{learner} (its step multiplier tuned)" if tuned else learner)
    tuned_for = "tuned for this step's final loss" if metric in ("heldout", "corner", "time") else "tuned for this step and metric"
    where = ""
    if metric == "time":
        where = f", which reaches its step {v['step']} in that time" + (", the panel's end, though it would get further" if v["capped"] else "")
    if v.get("diverged"):
        gap = f"not finite in {v['diverged']} of the {v['runs']} runs (a run diverged), so there is no interval"
    else:
        gap = f"{v['mean']:.3g} (95% CI {v['ci95'][0]:.3g} to {v['ci95'][1]:.3g})"
    return (f"On the {METRICS[metric].format(step=step)}, over {v['runs']} runs of {unit}, {who} minus the best tuned baseline "
            f"({best}, {tuned_for}{where}) is {gap}: {who} **{v['verdict']}** it, lower in {v['wins']} of {v['runs']} runs.")

def protocol_verdicts(result, unit="problems"):
    """Markdown: one sentence per reported step and metric, in METRICS order."""
    return "\n".join(f"- {protocol_sentence(result, s, m, unit)}" for s in sorted(result.verdicts) for m in METRICS if m in result.verdicts[s])

def _settings_text(name, entry, step):
    if "setting_text" in entry:  # an optimiser outside the protocol's tuning (e.g. Gauss-Newton at its damping)
        return entry["setting_text"]
    if entry.get("settings"):
        kwargs = entry["settings"][str(step)]
        extra = "".join(f", {'m' if k == 'momentum' else 'β1'} {v:.3g}" for k, v in kwargs.items() if k != "learning_rate")
        return f"lr {kwargs['learning_rate']:.3g}{extra}"
    if "multiplier" in entry:
        factors = entry["multiplier"][str(step)]["final"]
        return f"× {min(factors):.3g}–{max(factors):.3g}" if min(factors) != max(factors) else f"× {factors[0]:.3g}"
    return "learned"

def protocol_table(result):
    """Markdown-ready table: per optimiser and reported step, its setting (tuned for that step's final loss),
    final loss and trajectory mean [95% CI over runs], held-out accuracy where measured, ms per step."""
    steps = sorted(result.verdicts)
    names = list(result.entries)
    columns = {"optimiser": [plots.label(n) for n in names], "runs": [result.entries[n]["loss"][str(steps[0])]["runs"] for n in names]}
    for s in steps:
        columns[f"setting for step {s}"] = [_settings_text(n, result.entries[n], s) for n in names]
        columns[f"loss at step {s}"] = [fmt_interval(result.entries[n]["loss"][str(s)]) for n in names]
        columns[f"mean loss, steps 1-{s}"] = [fmt_interval(result.entries[n]["trajectory_mean"][str(s)]) for n in names]
        if all("accuracy" in result.entries[n] for n in names):
            columns[f"held-out accuracy at step {s}"] = [f"{100 * result.entries[n]['accuracy'][str(s)]['mean']:.1f}%" for n in names]
        if all("corner_error" in result.entries[n] for n in names):
            columns[f"corner error (px) at step {s}"] = [fmt_interval(result.entries[n]["corner_error"][str(s)]) for n in names]
        if all("success" in result.entries[n] for n in names):
            held = "" if result.panel.geometry else " (held-out)"
            columns[f"within 1 px at step {s}{held}"] = [f"{100 * result.entries[n]['success'][str(s)]['mean']:.0f}%" for n in names]
        if all("steps_to_1px" in result.entries[n] for n in names):
            columns[f"steps to 1 px, median pair (tuned for step {s})"] = [fmt_reach(result.entries[n]["steps_to_1px"][str(s)], "{:.0f}") for n in names]
            columns[f"wall-clock to 1 px, ms (tuned for step {s})"] = [fmt_reach(result.entries[n]["seconds_to_1px"][str(s)], "{:.0f}", 1000) for n in names]
    columns["ms per step"] = [f"{result.entries[n]['ms_per_step']:.2f}" for n in names]
    return pd.DataFrame(columns)

def protocol_table_at(result, step):
    """A test panel at `step` in at most six columns (a page's width): optimiser, setting (tuned for that step's final
    loss), loss at the step, mean loss over steps 1 to it, held-out accuracy there where measured, ms per step."""
    e = result.entries
    return pd.DataFrame({
        "optimiser": [plots.label(n) for n in e], "setting": [_settings_text(n, v, step) for n, v in e.items()],
        f"loss at step {step}": [fmt_interval(v["loss"][str(step)]) for v in e.values()],
        f"mean loss, steps 1-{step}": [fmt_interval(v["trajectory_mean"][str(step)]) for v in e.values()],
        **({"held-out accuracy": [f"{100 * v['accuracy'][str(step)]['mean']:.1f}%" if "accuracy" in v else "" for v in e.values()]}
           if any("accuracy" in v for v in e.values()) else {}),
        "ms per step": [f"{v['ms_per_step']:.2f}" for v in e.values()]})

def protocol_curves(result, step, objective="final"):
    """name -> curves [seeds, instances, steps + 1] of every entry's run tuned for `step` and `objective`."""
    return {name: result.curves[by_step[step][objective]] for name, by_step in result.runs.items()}

def protocol_figure(result, step, steps=None, objective="final", log_x=False, grid=None, ax=None, title=None):
    """Loss curves, every optimiser tuned for `step` and `objective`, to `steps` (or on `grid`): the geometric mean over
    runs of each run's mean curve, with a 95% band taken on the log scale (stats.run_bands(log=True))."""
    fig = plt.figure() if ax is None else ax.figure
    points = grid if grid is not None else range((steps or result.panel.steps) + 1)
    # The rates of the runs drawn: those tuned for this step and objective (the entries' settings are the final loss's).
    lrs = {n: result.settings[step][objective][n]["learning_rate"] for n, e in result.entries.items() if e.get("settings")}
    plots.loss_curves(stats.run_bands(protocol_curves(result, step, objective), points, log=True), ax=ax, lrs=lrs, title=title or result.panel.title, log_x=log_x)
    return fig

def protocol_curves_frame(results, seeds, dense_until=None, sparse_points=60):
    """Each seed's mean curve of every run of every panel, small enough to commit: every step up to
    `dense_until` (default: all), then `sparse_points` steps spaced evenly in log-step to the end.
    seeds: the runs' seeds, or panel name -> its seeds where panels differ in run count (the beyond
    chapter's ablation has fewer runs than its other panels)."""
    seeds_of = lambda name: seeds[name] if isinstance(seeds, dict) else seeds
    frame = pd.concat([stats.seed_means(r.curves, seeds_of(name)).assign(panel=name) for name, r in results.items()], ignore_index=True)
    if dense_until is None:
        return frame
    last = int(frame.step.max())
    kept = set(range(dense_until + 1)) | set(np.unique(np.geomspace(max(dense_until, 1), last, sparse_points).astype(int)).tolist()) | {last}
    return frame[frame.step.isin(kept)].reset_index(drop=True)

def protocol_tuning_frame(results):
    """Every panel's tuned settings: panel, step, objective, optimiser and its keyword arguments (or multipliers)."""
    rows = [{"panel": name, "step": s, "objective": o, "optimiser": n, **kwargs}
            for name, r in results.items() for s, by_o in r.settings.items() for o, by_n in by_o.items() for n, kwargs in by_n.items()]
    rows += [{"panel": name, "step": s, "objective": o, "optimiser": TUNED.format(n), "multipliers": " ".join(f"{f:.4g}" for f in factors)}
             for name, r in results.items() for n, by_s in r.multipliers.items() for s, by_o in by_s.items() for o, factors in by_o.items()]
    return pd.DataFrame(rows)


def _value(entry):
    """'0.201 [0.19, 0.21]': an over_runs entry, or '-'."""
    return f"{entry['mean']:.3g} [{entry['ci95'][0]:.3g}, {entry['ci95'][1]:.3g}]" if entry else "-"


def headline_table(summaries, endpoints, labels=None):
    """The book's bottom line: one row per primary endpoint (l2l.chapters.ENDPOINTS) in chapter order, read from the
    chapters' summary.json (chapter -> its parsed summary) where the chapter recorded it under "endpoints"; an endpoint
    no executed chapter has recorded yet says so instead of a number. Seven columns, so it fits the page. labels:
    baseline name -> how the table names it."""
    labels = labels or {}
    rows = []
    for endpoint in endpoints:
        if not endpoint.primary:
            continue
        read = summaries.get(endpoint.chapter, {}).get("endpoints", {}).get(endpoint.name)
        if read is None:
            rows.append({"chapter": endpoint.chapter, "endpoint": endpoint.claim, "learned": "-", "best tuned baseline": "-",
                         "difference (runs lower)": "-", "meta-training epochs": f"{endpoint.meta_epochs:,}", "outcome": "not yet measured"})
            continue
        wins = f"{read['wins']} of {read['runs']}"
        rows.append({"chapter": endpoint.chapter, "endpoint": endpoint.claim, "learned": _value(read.get("learned_value")),
                     "best tuned baseline": f"{labels.get(read['best'], read['best'])}: {_value(read.get('baseline_value'))}",
                     "difference (runs lower)": f"{read['mean']:.3g} [{read['ci95'][0]:.3g}, {read['ci95'][1]:.3g}] ({wins})",
                     "meta-training epochs": f"{read.get('meta_epochs', endpoint.meta_epochs):,}",
                     "outcome": read["outcome"] + (f" at {read['runs']} runs" if read["outcome"] == "inconclusive" else "")})
    return pd.DataFrame(rows)
