"""The chapter layer: the shape every chapter of the book shares, as tested functions.

    chapter = experiment.Chapter("quadratics", params)                  # provenance, clock, results folder
    runs = experiment.meta_train_runs(problem, lstm_config, configs, params.checkpoint_dir, chapter.results_dir, "lstm")
    panel = experiment.Panel("base", "Unseen quadratics", problem, problem, tune_steps=100, steps=1000, report_steps=(100, 1000))
    result = experiment.run_panel(panel, {"lstm": list(runs.values())}, instances=128, seeds=[0, 1, 2], tune_instances=128)
    experiment.verdict(result, 100)                                      # a sentence with its interval
    chapter.finish({"base": result.entries})                             # summary.json in the shared shape

A panel is one comparison: a test problem, the problem the baselines are tuned
on (never the test data), the step they are tuned for, how far the test runs
go and which steps are reported. Learned optimisers enter as lists of
meta-training results: evaluation seed s uses run s mod len(runs).
"""

import dataclasses
import html
import json
import logging
import math
import os
import re
import shutil
import sys
import time
from typing import NamedTuple, Optional

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from l2l import evaluate, learned_optimizer, meta, optimizers, plots, stats
from l2l.problems import ImageData, Problem
from l2l.provenance import limit_threads, provenance

BASELINES = tuple(optimizers.BASELINES)


def terminal_log(line):
    """Progress lines for the terminal that runs the chapter, kept off the book's page.

    ipykernel forwards everything written to the kernel's stdout and stderr,
    file descriptors included, into the notebook; it keeps a copy of the
    terminal's stderr descriptor, and a line written there reaches only the
    terminal. Outside a kernel this is plain stderr.
    """
    fd = getattr(sys.stderr, "_original_stdstream_copy", None)
    if fd is None:
        print(line, file=sys.stderr, flush=True)
    else:
        os.write(fd, (line + "\n").encode())


def _expected_retracing(record):
    """Drops TF's "triggered tf.function retracing" warning: every meta-training run and evaluation compiles
    its own functions by design (one per run and problem), which TF counts as retracing one function."""
    return "triggered tf.function retracing" not in record.getMessage()


class Chapter:
    """A chapter run: its parameters, provenance taken at the start, the clock and the results folder."""

    def __init__(self, name, params):
        self.name, self.params = name, params
        limit_threads()  # before any TensorFlow op runs
        logging.getLogger("tensorflow").addFilter(_expected_retracing)
        self.started = time.time()
        self.info = provenance()  # the code this run imports, before any edit made while it runs
        self.results_dir = params.results_dir
        os.makedirs(self.results_dir, exist_ok=True)
        plots.style()

    def path(self, filename):
        return os.path.join(self.results_dir, filename)

    def report_meta_training(self, groups, horizon):
        """meta_training.csv, the validation figure and the per-run table on the page; returns label -> seconds per run."""
        from IPython.display import Markdown, display

        history_frame(groups).to_csv(self.path("meta_training.csv"), index=False)
        meta_training_figure(groups, horizon)
        plt.show()
        display(Markdown(meta_training_table(groups).to_markdown(index=False)))
        return {label: [r.wall_time_s for r in runs.values()] for label, runs in groups.items()}

    def save_panels(self, results, seeds):
        """tuning.csv and curves.csv (each seed's mean curve) of every panel."""
        tuning_frame(results).to_csv(self.path("tuning.csv"), index=False)
        curves_frame(results, seeds).to_csv(self.path("curves.csv"), index=False, float_format="%.6g")

    def save_protocols(self, results, seeds, dense_until=None):
        """curves.csv (each seed's mean curve, dense up to `dense_until`) and tuning.csv of protocol panels name -> ProtocolResult.
        seeds: as protocol_curves_frame (one list, or panel name -> its seeds)."""
        protocol_curves_frame(results, seeds, dense_until=dense_until).to_csv(self.path("curves.csv"), index=False, float_format="%.6g")
        protocol_tuning_frame(results).to_csv(self.path("tuning.csv"), index=False)

    def glue_protocols(self, results, unit, glue=None):
        """Glues each protocol panel's table as table_{name} and its verdicts at every step and metric as verdicts_{name}."""
        from IPython.display import Markdown

        glue = glue or _myst_glue()
        for name, result in results.items():
            glue(f"table_{name}", Markdown(protocol_table(result).to_markdown(index=False)), display=False)
            glue(f"verdicts_{name}", Markdown(protocol_verdicts(result, unit)), display=False)

    def glue_verdict(self, name, sentence, glue=None):
        """Glues a verdict as Markdown under `name`, for its own page, and as HTML under name_html, for the
        introduction, whose {glue} directive renders only HTML and images from another page (verdict_html)."""
        from IPython.display import HTML, Markdown

        glue = glue or _myst_glue()
        glue(name, Markdown(sentence), display=False)
        glue(f"{name}_html", HTML(verdict_html(sentence)), display=False)

    def finish(self, panels, **extra):
        return write_summary(self.results_dir, self.name, self.params.profile, self.params.as_dict(), panels,
                             round(time.time() - self.started, 1), self.info, **extra)


def _myst_glue():
    """myst-nb's glue, imported when a chapter first glues: the package imports without the book's extras."""
    from myst_nb import glue

    return glue


def meta_budgets(epochs):
    """label -> {"meta_epochs", "of_paper"} for summary.json, from label -> the meta-training epochs of its runs (an int,
    or one per run): every learned optimiser's budget, and its share of the DeepMind code's 10,000 epochs."""
    from l2l.chapters import PAPER_EPOCHS

    out = {}
    for label, n in epochs.items():
        runs = [int(x) for x in (n if isinstance(n, (list, tuple)) else [n])]
        if not runs or min(runs) < 1:
            raise ValueError(f"meta_budgets: {label!r} needs at least one run of >= 1 epoch, got {n!r}")
        out[label] = {"meta_epochs": runs if len(set(runs)) > 1 else runs[0], "of_paper": max(runs) / PAPER_EPOCHS}
    return out


def write_summary(results_dir, chapter, profile, parameters, panels, wall_time_s, info=None, meta_epochs=None, **extra):
    """Writes results_dir/summary.json in the shape every chapter shares.

    info: provenance() taken when the run started (the code it imported),
    so that edits made while it runs do not change the recorded commit.
    meta_epochs: label -> epochs of its runs, for each learned optimiser the chapter reports; recorded as
    meta_budgets(meta_epochs) under "meta_epochs", so every verdict can name its budget.
    """
    info = info or provenance()
    summary = {
        "chapter": chapter, "profile": profile, "parameters": parameters,
        "versions": info["versions"], "commit": info["commit"], "hardware": info["hardware"],
        "wall_time_s": wall_time_s, "panels": panels, **({"meta_epochs": meta_budgets(meta_epochs)} if meta_epochs else {}), **extra,
    }
    evaluate.write_json(os.path.join(results_dir, "summary.json"), summary, indent=1)  # a committed summary is never left half-written
    return summary


def meta_training_seconds(summary):
    """Seconds of meta-training behind a chapter's summary.json, summed over every run it used.

    A chapter records them at the top level, as label -> seconds per run
    (`meta_training_s`) or label -> meta_training_entry (`meta_training`);
    a chapter that trains nothing (Keras: packaged optimisers) records
    neither, and costs 0. Panels are not read: a run shared by several
    panels would be counted once per panel.
    """
    if "meta_training_s" in summary:
        return float(sum(x for runs in summary["meta_training_s"].values() for x in runs))
    if "meta_training" in summary:
        return float(sum(x for entry in summary["meta_training"].values() for x in entry["meta_training_s"]))
    return 0.0


# -- meta-training -----------------------------------------------------------

def meta_train_runs(problem, lstm_config, configs, checkpoint_root, results_dir, label, valid_problem=None, log=terminal_log, **about):
    """Meta-trains one run per config (resumed or reused by run key); returns seed -> MetaResult.

    Writes each run's best weights to results_dir/<label>_seed<seed>.weights.h5
    with its provenance (`about`, e.g. chapter and trained_on, plus seed,
    epochs, best epoch and validation, status and run key), and removes the
    label's weights files of other seeds, left by an earlier run.
    """
    os.makedirs(results_dir, exist_ok=True)
    runs = {}
    for config in configs:
        log(f"meta-training {label}, seed {config.seed}")
        result = meta.meta_train(problem, lstm_config, config, checkpoint_root=checkpoint_root, log=log, valid_problem=valid_problem)
        learned_optimizer.save_weights(
            os.path.join(results_dir, f"{label}_seed{config.seed}.weights.h5"), result.meta_params, lstm_config,
            **about, seed=config.seed, best_epoch=result.best_epoch, best_valid=result.best_valid,
            epochs=config.epochs, status=result.status, run_key=result.key)
        runs[config.seed] = result
    # A weights file of a seed this call does not train is an earlier run's (a profile with more seeds), which
    # publish's pattern would still match: only this call's runs stay under the label.
    mine = {f"{label}_seed{config.seed}.weights.h5" for config in configs}
    for name in os.listdir(results_dir):
        if re.fullmatch(rf"{re.escape(label)}_seed\d+\.weights\.h5", name) and name not in mine:
            log(f"removed {name} from {results_dir}: seed not among this run's {label} seeds")
            os.remove(os.path.join(results_dir, name))
    return runs



def best_run(runs):
    """The run (a MetaResult or anything with best_valid) with the lowest validation; one that never validated
    finitely ranks last, as l2l.pretrained.publish ranks weights files (NaN compares as neither better nor worse)."""
    return min(runs, key=lambda r: stats.validation_rank(r.best_valid))


class SavedRun(NamedTuple):
    """A learned optimiser read from a weights file (another chapter's run), usable wherever a MetaResult is."""

    path: str
    meta_params: dict
    lstm_config: object  # LSTMConfig, or group -> LSTMConfig
    provenance: dict

    def optimizer(self, problem=None):
        return learned_optimizer.learned(self.meta_params, self.lstm_config, getattr(problem, "groups", None))


def saved_runs(paths, made_by):
    """SavedRun of each weights file; a missing one is named with `made_by`, the command that writes it, before any compute."""
    missing = [p for p in paths if not os.path.exists(p)]
    if missing:
        raise FileNotFoundError(f"missing learned optimiser weights {missing}: {made_by} writes them")
    return [SavedRun(p, *learned_optimizer.load_weights(p)) for p in paths]

def curriculum_stages(groups):
    """label -> the curriculum stage (1-based) each run ended in, for the groups whose runs have a curriculum
    (a "stage" column in their history); groups without one are left out."""
    return {label: [int(r.history["stage"].max()) + 1 for r in runs.values()] for label, runs in groups.items()
            if runs and all("stage" in r.history for r in runs.values())}


def curriculum_sentence(groups, stages):
    """Which stage of the curriculum `stages` (training horizons) each run ended in, run by run, per group."""
    ended = curriculum_stages(groups)
    if not ended:
        return "No run here has a curriculum."
    return (f"The curriculum has {len(stages)} stages ({', '.join(str(h) for h in stages)} training steps); the stage each run ended in, "
            f"run by run: " + "; ".join(f"{label} {', '.join(str(s) for s in stages_of)}" for label, stages_of in ended.items()) + ".")


def meta_training_entry(runs):
    """What summary.json records of a group of runs beside the learned optimiser's results."""
    return {"meta_training_s": [r.wall_time_s for r in runs.values()], "best_epoch": [r.best_epoch for r in runs.values()],
            "status": [r.status for r in runs.values()]}


def history_frame(groups):
    """Long table of every run's history: groups is label -> {seed: MetaResult}."""
    return pd.concat([r.history.assign(run=label, seed=s) for label, runs in groups.items() for s, r in runs.items()], ignore_index=True)


def meta_training_table(groups):
    """One row per run: epochs, best epoch and validation loss, status, minutes."""
    rows = [{"run": label, "seed": s, "epochs": len(r.history), "best epoch": r.best_epoch,
             "best validation loss": f"{r.best_valid:.4g}", "status": r.status, "minutes": f"{r.wall_time_s / 60:.1f}"}
            for label, runs in groups.items() for s, r in runs.items()]
    return pd.DataFrame(rows)


def meta_training_figure(groups, horizon):
    """Validation loss over epochs, a line per run, the kept (best) epoch circled; one axis per group."""
    fig, axes = plt.subplots(1, len(groups), figsize=(5.5 * len(groups), 3.8), sharey=True, squeeze=False)
    for ax, (label, runs) in zip(axes[0], groups.items()):
        plots.meta_training(runs, ax=ax)
        ax.set_title(f"{label}: validation loss at step {horizon}")
    return fig


# -- panels ------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Panel:
    name: str  # the key in summary.json
    title: str  # figure title
    problem: Problem  # the test problem every optimiser trains
    tuning_problem: Problem  # where the baselines' learning rates are tuned: held-out data, never the test data
    tune_steps: int  # the step the baselines are tuned for
    steps: int  # how far the test runs go
    report_steps: tuple  # steps in tables and summary.json
    heldout: ImageData | None = None  # data the optimisee never trains on: held-out loss and accuracy at report_steps
    geometry: bool = False  # an alignment panel: the corner error in pixels and the 1-px success rate of its own instances at report_steps

    def __post_init__(self):
        bad = [s for s in (self.tune_steps, *self.report_steps) if not 0 < s <= self.steps]
        if bad:
            raise ValueError(f"Panel {self.name!r}: steps {bad} are outside 1..{self.steps}")
        if self.geometry and self.heldout is not None:
            raise ValueError(f"Panel {self.name!r}: measures either held-out data or the instances' geometry, not both")

    @property
    def measures(self):
        """The names of what metric() returns, as summary.json entries call them: a loss-like first (lower wins), then a rate."""
        if self.geometry:
            return ("corner_error", "success")
        return getattr(self.problem, "measures", ("heldout_loss", "accuracy"))

    def metric(self):
        """metric(params, instances) -> two arrays [n] at report steps, or None when the panel measures nothing beyond the loss."""
        if self.geometry:
            return lambda params, instances: self.problem.geometry(params, instances)
        if self.heldout is not None:
            return lambda params, instances: self.problem.metrics(params, self.heldout)
        return None


class PanelResult(NamedTuple):
    panel: Panel
    lrs: dict  # baseline -> tuned learning rate
    tuning: pd.DataFrame  # optimiser, lr, final_loss on the tuning problem
    tuning_s: float  # seconds the learning-rate search took
    evaluation: evaluate.Evaluation
    entries: dict  # optimiser -> its summary.json entry


def factories(learned, lrs, problem=None):
    """name -> factory(seed): learned run lists (seed s uses run s mod n) and baselines at their rates.

    problem: where the optimisers will run (its groups, for learned optimisers with parameter groups).
    """
    made = {name: (lambda s, runs=runs: runs[s % len(runs)].optimizer(problem)) for name, runs in learned.items()}
    made.update({name: (lambda s, name=name, lr=lr: optimizers.FACTORIES[name](lr)) for name, lr in lrs.items()})
    return made


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


def verdict_html(markdown):
    """A one-paragraph verdict's Markdown as HTML, for pages that pull it across.

    The intro shows verdicts with the {glue} directive and :doc:, which
    renders only HTML and images from another page; the chapters glue both.
    """
    return re.sub(r"\*\*(.*?)\*\*", r"<strong>\1</strong>", html.escape(markdown, quote=False))


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


def validation_jitter(runs):
    """Mean absolute change of the validation loss between consecutive validations, second half of each run."""
    jumps = [np.mean(np.abs(np.diff(v[len(v) // 2:]))) for v in (r.history["valid_loss"].dropna().to_numpy() for r in runs) if len(v) >= 4]
    return float(np.mean(jumps)) if jumps else math.nan


def what_it_would_take(result, runs, meta_epochs, valid_instances, step, n_boot=2000):
    """(Markdown paragraph, hours for the paper's 10,000 epochs): where the LSTM stands at `step` and
    what separates the run from the paper's recipe, each figure measured from `result` and `runs`."""
    hours = 10000 * np.mean([r.wall_time_s for r in runs]) / meta_epochs / 3600
    jitter = validation_jitter(runs)
    best, gap, word = stats.against_best(result.evaluation.curves, step, list(result.lrs), n_boot=n_boot)
    name, entries = plots.LABELS[best], result.entries
    step_cost = entries["lstm"]["ms_per_step"] / entries[best]["ms_per_step"]
    standing = {
        "loses to": f"loses to tuned {name} on the very task it was meta-trained for, by {gap['mean']:.3g} in training loss at step {step}",
        "beats": f"beats tuned {name} at step {step}, by {-gap['mean']:.3g} in training loss",
        "cannot be told apart from": f"cannot be told apart from tuned {name} at step {step}",
    }[word]
    return (
        f"Here the LSTM {standing}. Three things separate this run from the paper's recipe, each measured above. "
        f"**Length**: {meta_epochs} meta-training epochs per run against the paper code's 10,000, which would take "
        f"about {hours:.1f} hours per run on this machine. **Selection**: in the second half of meta-training "
        f"the validation loss of a run moved by {jitter:.3g} on average from one validation to the next, "
        f"{jitter / abs(gap['mean']):.1f} times the gap to {name}, so which weights are kept is partly "
        f"chosen by noise; validating on more than {valid_instances} MLPs, and on the mean loss over the last steps "
        f"rather than the last minibatch, would cost little. **Breadth**: one sigmoid MLP is all it sees, and the "
        f"ReLU and Fashion-MNIST panels show how far that transfers. And each of its steps costs {step_cost:.0f} times "
        f"a {name} step here, so a comparison at equal wall-clock time would favour the baselines further."
    ), hours


# -- the rigor protocol: runs as the unit, every metric with its own tuned baselines --------------

METRICS = {  # verdict metric -> what it measures, in words
    "final": "training loss at step {step}",
    "mean": "mean training loss over steps 1-{step}",
    "heldout": "held-out loss at step {step}",
    "corner": "mean corner error in pixels at step {step}",
    "time": "training loss at equal wall-clock time (the LSTM's step {step})",
}
VERDICT_OF = {"heldout_loss": "heldout", "corner_error": "corner"}  # a panel's first measure -> the verdict metric it gets
TUNED = "{}_tuned"  # the entry of a learned optimiser with its step multiplier tuned per step and metric


def metric_values(curves, step, metric):
    """[seeds, instances]: the loss at `step` ("final") or its mean over steps 1..step ("mean"); a NaN loss
    (a diverged run) is +inf."""
    curves = np.nan_to_num(np.asarray(curves, np.float64), nan=np.inf)
    return curves[:, :, step] if metric == "final" else stats.trajectory_mean(curves, step)


class ProtocolResult(NamedTuple):
    panel: Panel
    settings: dict  # step -> objective -> baseline -> keyword arguments of its factory
    multipliers: dict  # learned name -> step -> objective -> [tuned multiplier of each run]; empty unless tuned
    curves: dict  # run name ("lstm", "lstm~100:mean", "adam@100:mean") -> losses [seeds, instances, steps + 1]
    runs: dict  # entry name -> step -> objective -> run name in curves
    seconds_per_step: dict  # run name -> mean wall time of one step on all instances
    metrics: dict  # run name -> step -> (held-out loss, accuracy) [seeds, instances]; empty without held-out data
    entries: dict  # optimiser -> {"lr", "settings", "loss", "trajectory_mean", ["heldout_loss", "accuracy"], "ms_per_step"}
    verdicts: dict  # step -> metric -> {"learned", "best", "mean", "ci95", "runs", "wins", "verdict"[, "step", "capped"]}
    tuning_s: float  # seconds all the tuning's settings took (baselines and multipliers), kept across resumes; NaN if a part's time was never recorded
    tuning_scores: Optional[dict] = None  # step -> objective -> baseline -> its best loss on the tuning split; None: a panel tuned before they were kept


def tune_multipliers(problem, runs, steps, instances, grid=evaluate.MULTIPLIER_GRID, used=None, cache=None):
    """Each run's step multiplier tuned on `problem` like a baseline's learning rate (two stages, both
    objectives): returns (step -> objective -> [multiplier of run k] for the runs in `used` (default all),
    the seconds their tuning took: NaN if a kept run's time was not recorded).

    With `cache` (a JSON path), each run's multipliers are written there as soon as they are tuned and
    read back instead of tuned again: one run's tuning on a 1,000-step panel takes about ten minutes
    (the beyond chapter's MNIST panel), so a panel stopped midway keeps what it finished.
    """
    used = sorted(used if used is not None else range(len(runs)))
    if used and used[-1] >= len(runs):
        raise ValueError(f"runs {[k for k in used if k >= len(runs)]} asked for, of {len(runs)} runs")
    done, seconds = (_load_tuning(cache) if cache else None) or ({}, {})
    seconds = dict(seconds) if isinstance(seconds, dict) else {}  # run index (a string, as in JSON) -> seconds its tuning took
    tuned = {}
    for k in used:
        if k not in done:
            make = lambda learning_rate, run=runs[k]: optimizers.scaled(run.optimizer(problem), learning_rate)
            settings, table = evaluate.tune(problem, ["learned"], tuple(steps), instances, grid=grid, extra={}, makers={"learned": make})
            done[k] = {s: {o: by_name["learned"]["learning_rate"] for o, by_name in by_o.items()} for s, by_o in settings.items()}
            seconds[str(k)] = evaluate.tuning_seconds(table)
            if cache:
                _save_tuning(cache, done, seconds)
        for s, by_objective in done[k].items():
            for objective, multiplier in by_objective.items():
                tuned.setdefault(int(s), {}).setdefault(objective, {})[k] = multiplier
    multipliers = {s: {o: [m.get(k, 1.0) for k in range(len(runs))] for o, m in by_o.items()} for s, by_o in tuned.items()}
    return multipliers, float(sum(seconds.get(str(k), float("nan")) for k in used))


def _weights_digest(run):
    """sha256 of a learned run's weights (its kept meta-parameters), or None for something without them."""
    import hashlib

    params = getattr(run, "meta_params", None)
    if params is None:
        return None
    digest = hashlib.sha256()
    for name in sorted(params):
        digest.update(name.encode() + np.asarray(params[name]).tobytes())
    # The same weights under options beyond the paper (a nominal step, a bounded output...) are another optimiser;
    # the paper's options add nothing, so panels cached before those options existed keep their keys.
    config = getattr(run, "lstm_config", None)
    beyond = {g: {k: v for k, v in c.describe().items() if k in learned_optimizer.BEYOND_PAPER}
              for g, c in learned_optimizer.as_groups(config).items()} if config is not None else {}
    if any(beyond.values()):
        digest.update(json.dumps(beyond, sort_keys=True).encode())
    return digest.hexdigest()


def protocol_key(panel, learned, instances, seeds, tune_instances, baselines, extra, learned_name, tune_learned, multiplier_grid, grid=evaluate.LR_GRID):
    """sha256 of everything a run_protocol result depends on: the panel's problems and data, the learned
    runs' weights, the sizes, seeds and grids, and the code version; None when a learned optimiser has
    no weights to hash (then nothing is cached)."""
    import hashlib

    digests = {name: [_weights_digest(r) for r in runs] for name, runs in learned.items()}
    if any(d is None for ds in digests.values() for d in ds):
        return None
    described = {
        "code_version": meta.CODE_VERSION, "name": panel.name, "problem": panel.problem.describe(), "tuning_problem": panel.tuning_problem.describe(),
        "tune_steps": panel.tune_steps, "steps": panel.steps, "report_steps": list(panel.report_steps),
        "heldout": [panel.heldout.name, panel.heldout.fingerprint] if panel.heldout is not None else None,
        "learned": digests, "instances": instances, "seeds": list(seeds), "tune_instances": tune_instances, "baselines": list(baselines),
        "extra": {k: {kk: list(vv) for kk, vv in v.items()} for k, v in extra.items()}, "learned_name": learned_name,
        "tune_learned": tune_learned if isinstance(tune_learned, bool) else sorted(tune_learned), "multiplier_grid": list(multiplier_grid),
        "grid": list(grid), "streams": "keyed",  # test, tuning and minibatch streams keyed by seed (l2l.rollout.generator)
    }
    if panel.geometry:  # added after panels were first cached: absent from the keys of panels without it
        described["geometry"] = True
    return hashlib.sha256(json.dumps(described, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _write_pair(path, plain, curves, metrics):
    """<path>.npz (curves and measures by run and step) and <path>.json (`plain`), atomically, the JSON last:
    its presence says the pair is whole. The temporary files are the writing process's own: two processes
    sharing a panel's evaluation (run_protocol's share) may write the same run at once, and each writes whole."""
    arrays = {f"curves/{run}": values for run, values in curves.items()}
    arrays.update({f"metrics/{run}/{s}/{i}": v for run, by_step in metrics.items() for s, pair in by_step.items() for i, v in enumerate(pair)})
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = f".{os.getpid()}.tmp"
    with open(path + ".npz" + tmp, "wb") as f:
        np.savez(f, **arrays)
    with open(path + ".json" + tmp, "w") as f:
        json.dump(plain, f, allow_nan=True)
    os.replace(path + ".npz" + tmp, path + ".npz")
    os.replace(path + ".json" + tmp, path + ".json")


def _read_pair(path):
    """(plain, curves, metrics) written by _write_pair, or None when missing or unreadable (then it is recomputed)."""
    try:
        with open(path + ".json") as f:
            plain = json.load(f)
        with np.load(path + ".npz", allow_pickle=False) as arrays:
            loaded = {k: arrays[k] for k in arrays.files}
    except (OSError, ValueError, KeyError):
        return None
    curves = {k[len("curves/"):]: v for k, v in loaded.items() if k.startswith("curves/")}
    metrics = {}
    for k, v in loaded.items():
        if k.startswith("metrics/"):
            _, run, step, i = k.split("/")  # run names hold no "/"
            metrics.setdefault(run, {}).setdefault(int(step), [None, None])[int(i)] = v
    return plain, curves, {run: {s: tuple(pair) for s, pair in by_step.items()} for run, by_step in metrics.items()}


def _save_protocol(path, result):
    """A ProtocolResult as <path>.json (everything but arrays) and <path>.npz (curves and measures)."""
    plain = {"settings": result.settings, "multipliers": result.multipliers, "runs": result.runs, "seconds_per_step": result.seconds_per_step,
             "entries": result.entries, "verdicts": result.verdicts, "tuning_s": result.tuning_s, "tuning_scores": result.tuning_scores}
    _write_pair(path, plain, result.curves, result.metrics)


def _load_protocol(path, panel):
    """The ProtocolResult saved at `path`, or None if it is missing or unreadable (then it is recomputed)."""
    read = _read_pair(path)
    if read is None:
        return None
    plain, curves, metrics = read
    by_int = lambda d: {int(k): v for k, v in d.items()}
    return ProtocolResult(panel, by_int(plain["settings"]), {n: by_int(m) for n, m in plain["multipliers"].items()}, curves,
                          {n: by_int(r) for n, r in plain["runs"].items()}, plain["seconds_per_step"], metrics,
                          plain["entries"], by_int(plain["verdicts"]), plain["tuning_s"], by_int(plain["tuning_scores"]) if plain.get("tuning_scores") else None)


def run_protocol(panel, learned, instances, seeds, tune_instances, baselines=BASELINES, extra=evaluate.EXTRA_GRIDS,
                 learned_name="lstm", tune_learned=False, multiplier_grid=evaluate.MULTIPLIER_GRID, log=terminal_log, cache_dir=None,
                 grid=evaluate.LR_GRID, share=False):
    """The rigor protocol on one panel; with cache_dir, a finished panel is kept under its protocol_key
    there and reused, so a chapter killed after some panels resumes at the next one.

    share=True makes this call a second process beside the one computing the panel: it evaluates the panel's
    settings from the last one backwards into the same kept runs (which the other process reads instead of
    rerunning), tunes nothing, saves no panel, stops once the panel is saved, and returns None. It needs
    the cache and a finished tuning, and says so before any compute."""
    if share and not cache_dir:
        raise ValueError("share=True shares a panel's kept runs with another process: give the panel's cache_dir")
    key = (protocol_key(panel, learned, instances, seeds, tune_instances, baselines, extra, learned_name, tune_learned, multiplier_grid, grid)
           if cache_dir else None)
    if share and key is None:
        raise ValueError(f"panel {panel.name}: a learned optimiser has no weights to key the panel by, so there are no kept runs to share")
    # A geometry panel's files hold its measures at every step ("-path"); those cached before that hold them at the
    # report steps only, and are not read. Its baselines' tuning does not depend on it and is shared.
    path_tag = "-path" if panel.geometry else ""
    path = os.path.join(cache_dir, f"{panel.name}{path_tag}-{key}") if key else None
    if share and os.path.exists(path + ".json"):
        log(f"panel {panel.name}: already saved at {path}; nothing to share")
        return None
    if path and (cached := _load_protocol(path, panel)) is not None:
        log(f"panel {panel.name}: reused {path}")
        return cached
    # The baselines' tuning and runs depend on the panel, not on the learned optimisers: kept apart, so that a panel
    # whose learned weights changed (a re-executed chapter upstream) reruns only the learned optimisers.
    base_key = protocol_key(panel, {}, instances, seeds, tune_instances, baselines, extra, "", False, (), grid) if cache_dir else None
    base_path = os.path.join(cache_dir, f"{panel.name}-baselines{path_tag}-{base_key}") if base_key else None
    tuning_path = os.path.join(cache_dir, f"{panel.name}-baselines-{base_key}-tuning.json") if base_key else None
    result = _run_protocol(panel, learned, instances, seeds, tune_instances, baselines, extra, learned_name, tune_learned, multiplier_grid, log, grid,
                           base_path, tuning_path, multiplier_cache=path, evaluation_cache=path and path + "-evaluated",
                           share_until=path + ".json" if share else None)
    if share:
        return None
    if path:
        os.makedirs(cache_dir, exist_ok=True)
        _save_protocol(path, result)
        shutil.rmtree(path + "-evaluated", ignore_errors=True)  # the panel's files now hold every run
    return result


def evaluate_each(problem, factories, steps, instances, seeds, folder=None, log=terminal_log, share_until=None, **options):
    """evaluate.evaluate(problem, factories, ...), one run (factory) at a time; with `folder`, each run is kept
    there as soon as it is evaluated and read back, not rerun, by a later call, so an evaluation stopped after
    hours loses one run at most. Runs are independent (their own instances, start and minibatches per seed),
    so the runs are those of one call over every factory.

    share_until (a path): this call helps another one working through the same folder. It goes from the last
    run backwards, so the two meet once, and it stops, keeping nothing more, as soon as that path exists (the
    other call's panel is saved and its folder removed). Its Evaluation then holds the runs it went through."""
    if folder is None:
        return evaluate.evaluate(problem, factories, steps, instances, seeds, **options)
    import hashlib

    finished = lambda: share_until is not None and os.path.exists(share_until)
    curves, seconds, metrics, kept = {}, {}, {}, 0
    for run, factory in (reversed(list(factories.items())) if share_until else factories.items()):
        if finished():
            log(f"{share_until} is saved: stopped sharing its evaluation")
            break
        path = os.path.join(folder, hashlib.sha256(run.encode()).hexdigest()[:16])  # run names hold "@", ":" and "~"
        read = _read_pair(path)
        if read is not None and read[0].get("run") == run:
            kept += 1
            curves[run], seconds[run], metrics[run] = read[1][run], read[0]["seconds_per_step"], read[2].get(run, {})
            continue
        one = evaluate.evaluate(problem, {run: factory}, steps, instances, seeds, **options)
        curves[run], seconds[run], metrics[run] = one.curves[run], one.seconds_per_step[run], one.metrics[run]
        if finished():  # the other process saved the panel and removed the folder while this run went on: leave no folder behind
            log(f"{share_until} is saved: stopped sharing its evaluation")
            break
        _write_pair(path, {"run": run, "seconds_per_step": seconds[run]}, {run: curves[run]}, {run: metrics[run]})
    if kept:
        log(f"read {kept} of {len(factories)} runs evaluated before from {folder}")
    return evaluate.Evaluation(curves=curves, seconds_per_step=seconds, metrics=metrics)


def _save_baselines(path, settings, curves, seconds, metrics):
    """The baselines' part of a panel (tuned settings, curves, seconds per step, measures)."""
    _write_pair(path, {"settings": settings, "seconds_per_step": seconds}, curves, metrics)


def _load_baselines(path):
    """(settings, curves, seconds, metrics) saved by _save_baselines, or None when missing or unreadable."""
    read = _read_pair(path)
    if read is None:
        return None
    plain, curves, metrics = read
    return {int(step): by_o for step, by_o in plain["settings"].items()}, curves, plain["seconds_per_step"], metrics


def _save_tuning(path, tuned, seconds, scores=None):
    """`tuned` (int keys: a step, or a run's index) and the seconds its tuning took, under "seconds", as JSON;
    the baselines' scores on the tuning instances (evaluate.tuning_scores) under "scores"."""
    evaluate.write_json(path, {**{str(k): v for k, v in tuned.items()}, "seconds": seconds, **({"scores": scores} if scores else {})})


def _load_scores(path):
    """The tuning scores _save_tuning kept (step -> objective -> name -> score), or None: a file written before they
    were kept, or none."""
    try:
        with open(path) as f:
            scores = json.load(f).get("scores")
        return {int(k): v for k, v in scores.items()} if scores else None
    except (OSError, ValueError, AttributeError, TypeError):
        return None


def best_baseline(baselines, step, objective, scores, entries):
    """(the baseline to compare with at `step` on `objective`, what it was chosen on). On the tuning split when the
    panel kept its tuning scores: the lowest tuned score, with test curves never read; else ("test", from a panel
    tuned before the scores were kept) the lowest test mean, as the book's first panels chose."""
    if scores is not None:
        return min(baselines, key=lambda n: stats.finite_or_inf(scores[step][objective][n])), "tuning"
    measure = {"final": "loss", "mean": "trajectory_mean"}.get(objective, objective)
    return min(baselines, key=lambda n: stats.finite_or_inf(entries[n][measure][str(step)]["mean"])), "test"


def _load_tuning(path):
    """(tuned, seconds) saved by _save_tuning, or None when missing or unreadable. A file of a version that
    kept no times gives NaN seconds, so that a resumed tuning reports its time as unknown, never as too short."""
    try:
        with open(path) as f:
            plain = json.load(f)
        seconds = plain.pop("seconds", float("nan"))
        plain.pop("scores", None)
        return {int(k): v for k, v in plain.items()}, seconds
    except (OSError, ValueError, AttributeError):
        return None


def _run_protocol(panel, learned, instances, seeds, tune_instances, baselines=BASELINES, extra=evaluate.EXTRA_GRIDS,
                  learned_name="lstm", tune_learned=False, multiplier_grid=evaluate.MULTIPLIER_GRID, log=terminal_log, grid=evaluate.LR_GRID,
                  baseline_cache=None, tuning_cache=None, multiplier_cache=None, evaluation_cache=None, share_until=None):
    """The rigor protocol on one panel.

    Every baseline is tuned for every reported step and both objectives (two
    stages, evaluate.tune over `grid`, on the panel's tuning problem); with
    tune_learned (True: every learned optimiser; or a collection of their
    names), so is each learned run's step multiplier (`<name>_tuned` entries;
    the plain entry stays at multiplier 1, as meta-trained). Every distinct
    setting then runs once to the panel's end on the same test instances
    (seed s uses learned run s mod n). Numbers are over runs (seeds): each
    step and metric reads the run tuned for it. Verdicts compare the learned
    optimiser (tuned, where tuned) with the best baseline for each step and
    metric in METRICS: the final loss, the trajectory mean, the held-out loss
    (with held-out data) and the loss at equal wall-clock time, where each
    baseline, tuned for the step's final loss, is read at the step it reaches
    in the learned optimiser's time (capped at the panel's end, which can
    only flatter the learned optimiser).
    """
    steps = tuple(sorted(set(panel.report_steps)))
    kept = _load_baselines(baseline_cache) if baseline_cache else None
    tuning_cache = tuning_cache or (baseline_cache + "-tuning.json" if baseline_cache else None)
    tuned = _load_tuning(tuning_cache) if tuning_cache else None
    # The tuning's time is the sum of its settings' times, kept with it, so a resumed panel reports what the tuning took.
    if share_until and kept is None and tuned is None:
        raise RuntimeError(f"panel {panel.name}: the baselines' tuning is not finished (no {tuning_cache}); a process sharing the evaluation "
                           "tunes nothing: start it once the panel's own process logs its distinct settings")
    if kept is not None:
        log(f"panel {panel.name}: reused the baselines' tuning and runs from {baseline_cache}")
        settings, tuning_s = kept[0], tuned[1] if tuned else float("nan")
    elif tuned is not None:
        log(f"panel {panel.name}: reused the baselines' tuning from {tuning_cache}")
        settings, tuning_s = tuned
    else:
        log(f"panel {panel.name}: tuning {', '.join(baselines)} for steps {steps}")
        # Each baseline's tuning is kept as soon as it is done (a CNN's takes most of an hour): a panel stopped during it keeps those.
        rows = tuning_cache.removesuffix(".json") + "-rows.json" if tuning_cache else None
        settings, table = evaluate.tune(panel.tuning_problem, list(baselines), steps, tune_instances, grid=grid, extra=extra, cache=rows)
        tuning_s = evaluate.tuning_seconds(table)
        scores = evaluate.tuning_scores(table, baselines, steps)
        if tuning_cache:  # tuning can take as long as the runs: a panel killed during its runs keeps it
            _save_tuning(tuning_cache, settings, tuning_s, scores)
            os.remove(rows)
    if kept is not None or tuned is not None:
        scores = _load_scores(tuning_cache) if tuning_cache else None
    tuned_names = [n for n in learned if tune_learned is True or (not isinstance(tune_learned, bool) and n in tune_learned)]
    unknown = sorted(set(tune_learned) - set(learned)) if not isinstance(tune_learned, bool) else []
    if unknown:
        raise ValueError(f"tune_learned names {unknown}, which are not learned optimisers of this panel ({sorted(learned)})")
    multipliers = {}
    for name in tuned_names:
        # Each name's own runs: seed s uses run s mod n, and n differs between names (5 combination runs, 3 general).
        used = sorted({s % len(learned[name]) for s in seeds})
        cache = f"{multiplier_cache}-{name}-multipliers-tuning.json" if multiplier_cache else None
        kept_runs = sorted(set((_load_tuning(cache) or ({},))[0]) & set(used)) if cache else []
        if share_until and kept_runs != used:
            raise RuntimeError(f"panel {panel.name}: the step multipliers of {name} are not all tuned ({len(kept_runs)} of {len(used)} in {cache}); "
                               "a process sharing the evaluation tunes nothing: start it once the panel's own process logs its distinct settings")
        log(f"panel {panel.name}: tuning the step multiplier of {len(used) - len(kept_runs)} of {len(used)} runs of {name}"
            + (f" (the others' from {cache})" if kept_runs else ""))
        multipliers[name], spent = tune_multipliers(panel.tuning_problem, learned[name], steps, tune_instances, multiplier_grid, used, cache=cache)
        tuning_s += spent

    made, runs_of = {}, {}
    for name, lruns in learned.items():
        made[name] = lambda s, lruns=lruns: lruns[s % len(lruns)].optimizer(panel.problem)
        runs_of[name] = {s: {o: name for o in evaluate.OBJECTIVES} for s in steps}
        if name in multipliers:
            chosen = {}
            for s in steps:
                for o in evaluate.OBJECTIVES:
                    factors = tuple(multipliers[name][s][o])
                    run = chosen.setdefault(factors, f"{name}~{s}:{o}")
                    made.setdefault(run, lambda seed, lruns=lruns, f=factors: optimizers.scaled(
                        lruns[seed % len(lruns)].optimizer(panel.problem), f[seed % len(lruns)]))
                    runs_of.setdefault(TUNED.format(name), {}).setdefault(s, {})[o] = run
    chosen = {}  # (baseline, frozen settings) -> run name
    for s in steps:
        for o in evaluate.OBJECTIVES:
            for name in baselines:
                kwargs = settings[s][o][name]
                run = chosen.setdefault((name, tuple(sorted(kwargs.items()))), f"{name}@{s}:{o}")
                made.setdefault(run, lambda seed, name=name, kwargs=dict(kwargs): optimizers.FACTORIES[name](**kwargs))
                runs_of.setdefault(name, {}).setdefault(s, {})[o] = run

    metric = panel.metric()
    baseline_runs = sorted(set(chosen.values()))
    todo = {run: make for run, make in made.items() if kept is None or run not in baseline_runs}
    log(f"panel {panel.name}: {len(todo)} distinct settings on {len(seeds)} seeds x {instances} instances, {panel.steps} steps")
    # Every run is independent of the others (its own instances, start and minibatch stream per seed), so runs
    # evaluated in separate calls are the runs one call would make.
    # A geometry panel keeps its measures at every step, for the steps each pair takes to come within 1 px.
    if share_until:
        log(f"panel {panel.name}: sharing the evaluation, from its last setting backwards, until {share_until} is saved")
    evaluation = evaluate_each(panel.problem, todo, panel.steps, instances, seeds, evaluation_cache, log, share_until, metric=metric,
                               snapshots=steps if metric else (), every_step=panel.geometry)
    if share_until:
        return None
    fresh_metrics = {run: {s: tuple(np.asarray(v) for v in m[s]) for s in m} for run, m in evaluation.metrics.items() if m}
    if kept is None and baseline_cache:
        _save_baselines(baseline_cache, settings, {r: evaluation.curves[r] for r in baseline_runs},
                        {r: evaluation.seconds_per_step[r] for r in baseline_runs}, {r: fresh_metrics[r] for r in baseline_runs if r in fresh_metrics})
    old_curves, old_seconds, old_metrics = kept[1:] if kept is not None else ({}, {}, {})
    curves = {run: old_curves[run] if run in old_curves else evaluation.curves[run] for run in made}
    seconds = {run: old_seconds[run] if run in old_seconds else evaluation.seconds_per_step[run] for run in made}
    metrics = {run: old_metrics[run] if run in old_metrics else fresh_metrics[run] for run in made if run in old_metrics or run in fresh_metrics}

    entries = {}
    for name, by_step in runs_of.items():
        final_run = by_step[steps[-1]]["final"]
        tuned_for = panel.tune_steps if panel.tune_steps in settings else steps[-1]
        entry = {"lr": settings[tuned_for]["final"][name]["learning_rate"] if name in baselines else None,
                 "settings": {str(s): settings[s]["final"][name] for s in steps} if name in baselines else None}
        base = name[: -len(TUNED.format(""))] if name.endswith(TUNED.format("")) else None
        if base in multipliers:
            entry["multiplier"] = {str(s): {o: multipliers[base][s][o] for o in evaluate.OBJECTIVES} for s in steps}
        for o, key in [("final", "loss"), ("mean", "trajectory_mean")]:
            entry[key] = {str(s): stats.over_runs(metric_values(curves[by_step[s][o]], s, o)) for s in steps}
        if metrics:
            for i, measure in enumerate(panel.measures):
                entry[measure] = {str(s): stats.over_runs(metrics[by_step[s]["final"]][s][i]) for s in steps}
        entry["ms_per_step"] = 1000 * seconds[final_run]
        if panel.geometry:
            for s in steps:
                run = by_step[s]["final"]
                entry.update(reaching(corner_path(metrics[run], panel.steps), seconds[run], s, entry))
        entries[name] = entry

    verdicts = _verdicts(panel, list(baselines), entries, curves, runs_of, seconds, metrics, learned_name, multipliers, scores)
    return ProtocolResult(panel, settings, multipliers, curves, runs_of, seconds, metrics, entries, verdicts, tuning_s, scores)


def corner_path(metrics, steps):
    """Corner errors [seeds, instances, steps] at steps 1..steps, from a geometry run's measures by step."""
    return np.stack([np.asarray(metrics[t][0]) for t in range(1, steps + 1)], axis=-1)


def reaching(corners, seconds_per_step, step, entry=None, tolerance=1.0):
    """`entry`'s "steps_to_1px" and "seconds_to_1px" with `step`'s interval added: over runs, the median pair's
    first step within `tolerance` pixels (corners [seeds, instances, steps] at steps 1..steps), and that many
    steps' wall-clock. A run whose median pair never gets there counts as inf ("diverged" in the interval:
    read it as not reached)."""
    first = stats.first_within(corners, tolerance)
    per_run = np.median(first, axis=1)
    entry = entry or {}
    return {"steps_to_1px": {**entry.get("steps_to_1px", {}), str(step): stats.over_runs(per_run)},
            "seconds_to_1px": {**entry.get("seconds_to_1px", {}), str(step): stats.over_runs(per_run * seconds_per_step)}}


def _verdicts(panel, baselines, entries, curves, runs_of, seconds, metrics, learned_name, multipliers, scores=None):
    """step -> metric -> the paired comparison of `learned_name` (its tuned entry, where tuned) with the best baseline,
    chosen on the tuning split where the panel kept its tuning scores (best_baseline; "chosen_on" says which)."""
    steps = tuple(sorted(set(panel.report_steps)))
    competitor = TUNED.format(learned_name) if learned_name in multipliers else learned_name
    verdicts = {}
    for s in steps:
        verdicts[s] = {}
        for o in ("final", "mean"):
            best, chosen_on = best_baseline(baselines, s, o, scores, entries)
            ours = metric_values(curves[runs_of[competitor][s][o]], s, o)
            theirs = metric_values(curves[runs_of[best][s][o]], s, o)
            verdicts[s][o] = {"learned": competitor, "best": best, "chosen_on": chosen_on, **stats.compare_runs(ours, theirs)}
        if metrics:
            measure = panel.measures[0]
            # The held-out measure was not tuned for: its best baseline is the one best on the tuning split's final loss.
            best, chosen_on = best_baseline(baselines, s, "final", scores, entries) if scores is not None else best_baseline(baselines, s, measure, None, entries)
            verdicts[s][VERDICT_OF[measure]] = {"learned": competitor, "best": best, "chosen_on": chosen_on, **stats.compare_runs(
                metrics[runs_of[competitor][s]["final"]][s][0], metrics[runs_of[best][s]["final"]][s][0])}
        ours_run = runs_of[competitor][s]["final"]
        reach = {n: min(panel.steps, int(s * seconds[ours_run] / seconds[runs_of[n][s]["final"]])) for n in baselines}
        best = min(baselines, key=lambda n: stats.finite_or_inf(np.mean(metric_values(curves[runs_of[n][s]["final"]], reach[n], "final"))))
        verdicts[s]["time"] = {"learned": competitor, "best": best, "chosen_on": "test", "step": reach[best],  # no tuning score at the step reached
                               "capped": reach[best] == panel.steps and s * seconds[ours_run] / seconds[runs_of[best][s]["final"]] > panel.steps,
                               **stats.compare_runs(metric_values(curves[ours_run], s, "final"),
                                                    metric_values(curves[runs_of[best][s]["final"]], reach[best], "final"))}
    return verdicts


def read_endpoint(result, endpoint):
    """A pre-registered endpoint (l2l.chapters.Endpoint) read from a protocol result: the learned optimiser's runs
    against the best of endpoint.against chosen on the tuning split, by stats.endpoint_verdict, plus "best",
    "chosen_on", "metric", "step" and "budget" (the endpoint's meta-training epochs in words).

    final / mean: each optimiser's run tuned for that step and metric; heldout_loss / accuracy: the runs tuned for the
    step's final loss, accuracy read as error (1 - accuracy) so that lower is better throughout; time: the baseline
    best on the tuning split's final loss at the step, read at the step it reaches in the learned optimiser's
    wall-clock time (capped at the panel's end, which can only flatter the learned optimiser)."""
    from l2l.chapters import budget_words

    s, learned = endpoint.step, endpoint.learned
    unknown = [n for n in (learned, *endpoint.against) if n not in result.runs]
    if unknown:
        raise ValueError(f"endpoint {endpoint.name!r} names {unknown}, which panel {result.panel.name!r} did not run; it ran {sorted(result.runs)}")
    if s not in result.runs[learned]:
        raise ValueError(f"endpoint {endpoint.name!r} is read at step {s}, not a report step of panel {result.panel.name!r} ({sorted(result.runs[learned])})")
    objective = endpoint.metric if endpoint.metric in ("final", "mean") else "final"
    if len(endpoint.against) == 1:
        best, chosen_on = endpoint.against[0], "named"
    elif result.tuning_scores is None:
        raise ValueError(f"panel {result.panel.name!r} kept no tuning scores: its best baseline cannot be chosen on the tuning split; recompute it")
    else:
        best, chosen_on = best_baseline(list(endpoint.against), s, objective, result.tuning_scores, None)
    ours_run, theirs_run = result.runs[learned][s][objective], result.runs[best][s][objective]
    if endpoint.metric in ("final", "mean"):
        ours, theirs = metric_values(result.curves[ours_run], s, objective), metric_values(result.curves[theirs_run], s, objective)
    elif endpoint.metric in ("heldout_loss", "accuracy"):
        i = result.panel.measures.index(endpoint.metric)
        ours, theirs = (np.asarray(result.metrics[run][s][i], np.float64) for run in (ours_run, theirs_run))
        if endpoint.metric == "accuracy":
            ours, theirs = 1.0 - ours, 1.0 - theirs
    elif endpoint.metric == "time":
        reach = min(result.panel.steps, int(s * result.seconds_per_step[ours_run] / result.seconds_per_step[theirs_run]))
        ours, theirs = metric_values(result.curves[ours_run], s, "final"), metric_values(result.curves[theirs_run], reach, "final")
    else:
        raise ValueError(f"endpoint {endpoint.name!r}: unknown metric {endpoint.metric!r}")
    return {**stats.endpoint_verdict(ours, theirs), "best": best, "chosen_on": chosen_on, "metric": endpoint.metric, "step": s,
            "budget": budget_words(endpoint.meta_epochs)}


def protocol_view(result, learned_name, name=None, title=None, others=()):
    """One learned optimiser's panel out of a run_protocol result that evaluated several on the same instances.

    Keeps `learned_name` (and its tuned entry), the `others` learned entries
    for comparison and every baseline, with the verdicts recomputed for
    `learned_name`. Panels that share a test problem (CIFAR-10 with two LSTMs,
    one LSTM, the MNIST-trained LSTM) thus share their baselines' tuning and
    runs: the same numbers, computed once.
    """
    baselines = [n for n, e in result.entries.items() if e.get("settings")]
    learned = [n for n in result.entries if n not in baselines and not n.endswith(TUNED.format(""))]
    unknown = [n for n in (learned_name, *others) if n not in learned]
    if unknown:
        raise ValueError(f"{unknown} are not learned optimisers of panel {result.panel.name!r}; it has {learned}")
    keep = [n for base in (learned_name, *others) for n in (base, TUNED.format(base)) if n in result.entries] + baselines
    panel = dataclasses.replace(result.panel, name=name or result.panel.name, title=title or result.panel.title)
    runs = {n: result.runs[n] for n in keep}
    used = {run for by_step in runs.values() for by_o in by_step.values() for run in by_o.values()}
    verdicts = _verdicts(panel, baselines, result.entries, result.curves, result.runs, result.seconds_per_step, result.metrics, learned_name,
                         result.multipliers, result.tuning_scores)
    return result._replace(panel=panel, runs=runs, entries={n: result.entries[n] for n in keep}, verdicts=verdicts,
                           multipliers={n: m for n, m in result.multipliers.items() if n in keep},
                           curves={r: c for r, c in result.curves.items() if r in used},
                           metrics={r: m for r, m in result.metrics.items() if r in used},
                           seconds_per_step={r: v for r, v in result.seconds_per_step.items() if r in used})



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


def protocol_curves(result, step, objective="final"):
    """name -> curves [seeds, instances, steps + 1] of every entry's run tuned for `step` and `objective`."""
    return {name: result.curves[by_step[step][objective]] for name, by_step in result.runs.items()}


def protocol_figure(result, step, steps=None, objective="final", log_x=False, grid=None, ax=None, title=None):
    """Mean loss with 95% bands over runs, every optimiser tuned for `step` and `objective`, to `steps` (or on `grid`)."""
    fig = plt.figure() if ax is None else ax.figure
    points = grid if grid is not None else range((steps or result.panel.steps) + 1)
    # The rates of the runs drawn: those tuned for this step and objective (the entries' settings are the final loss's).
    lrs = {n: result.settings[step][objective][n]["learning_rate"] for n, e in result.entries.items() if e.get("settings")}
    plots.loss_curves(stats.run_bands(protocol_curves(result, step, objective), points), ax=ax, lrs=lrs, title=title or result.panel.title, log_x=log_x)
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
        ax.axhline(next(iter(curves.values()))["baselines"][baseline][metric]["mean"], color=plots.COLOURS.get(baseline.split()[0]),
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
