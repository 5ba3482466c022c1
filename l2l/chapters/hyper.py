"""The hyperparameter chapter: its parameters and its own code (the TPE search that found the region, the designed
experiment around its best configuration, failures apart from importance, and the best configuration replicated with
fresh seeds on the MNIST chapter's test panel). The notebook (notebooks/hyper.py) holds the prose and calls these.

Imports no TensorFlow at import time: the code that needs it imports it where it runs."""

import dataclasses
import math

from l2l.chapters.base import ChapterParameters, ParameterError, _at_least, _names_a_seed


@dataclasses.dataclass(frozen=True)
class Hyper(ChapterParameters):
    spec: str = "notebooks/sweeps/mnist.yaml"  # the TPE study that searched the settings and found the region the design sits in
    design_spec: str = "notebooks/sweeps/mnist_design.yaml"  # the designed experiment around its best trial (sampler: design)
    second_spec: str = "notebooks/sweeps/quadratic_design.yaml"  # the same design on quadratics: do its effects carry over?
    workers: int = 2  # worker processes per study on this machine, one thread each
    best_seeds: int = 3  # fresh meta-training runs of the design's best point (the run is the unit)
    best_first_seed: int = 100  # their seeds start here: none of the design's own seeds
    eval_instances: int = 8  # MLPs per run on the MNIST chapter's base test panel
    tune_instances: int = 10  # MLPs on held-out training images for tuning every baseline
    horizon: int = 100  # the test panel's tuning and first reported step (the MNIST chapter's horizon)
    long_steps: int = 200  # test runs go this far (twice the MNIST chapter's horizon)
    mnist_weights: str = "book/results/mnist/lstm_paper_seed{seed}.weights.h5"  # the MNIST chapter's LSTMs (paper settings), compared beside
    results_dir: str = "book/results/hyper"  # the study files (SQLite), summary.json, trials.csv
    checkpoint_dir: str = ".cache/checkpoints/sweeps"  # every trial's meta-training run, one folder per run key; not in git

    def check(self):
        _at_least(self, workers=1, best_seeds=1, best_first_seed=0, eval_instances=2, tune_instances=1, horizon=1, long_steps=self.horizon)
        for name in ("spec", "design_spec", "second_spec"):
            if not getattr(self, name).endswith((".yaml", ".yml")):
                raise ParameterError(f"Hyper.{name} must be the path of an l2l.sweep YAML spec, got {getattr(self, name)!r}")
        _names_a_seed(self)


# -- the chapter's own code ------------------------------------------------------------------------------------------

BASELINES = ("nag", "adam")  # every design trial is scored against the better of these, each tuned for the metric at the evaluation horizon
METRICS = ("final", "mean")  # the loss at the evaluation horizon, and the mean over steps 1 to it
TASK_WORDS = {"mnist": "the MNIST chapter's MLP", "quadratic": "10-d quadratics"}  # a sweep task, in the chapter's prose


def run_study(path, p):
    """A sweep study run to its end by p.workers workers (a finished study is read back, not rerun): (spec, study,
    trials frame)."""
    from l2l import experiment, sweep

    spec = sweep.load_spec(path)
    url = sweep.default_storage(spec, p.results_dir)
    sweep.run_workers(path, url, p.checkpoint_dir, workers=p.workers, log=experiment.terminal_log)
    study = sweep.study(spec, sweep.storage(url))
    return spec, study, sweep.trials_frame(study)


def baselines(spec, study):
    """name -> {"final", "mean", "settings"}: each of BASELINES tuned on the design's objective instances at its
    evaluation horizon (the instances every trial's LSTM is measured on), kept in the study as NAG's already is."""
    from l2l import sweep

    horizon = spec.eval_horizon
    _, problem = sweep.task_problems(spec.task)
    out = {}
    for name in BASELINES:
        key = f"{name}_h{horizon}"
        if key not in study.user_attrs:
            study.set_user_attr(key, sweep.tuned_baseline(problem, name, horizon, spec.objective_instances, spec.seed))
        out[name] = study.user_attrs[key]
    return out


def untrained_level(spec):
    """The objective instances' loss with the parameters left where they start (SGD at rate 0), at the evaluation
    horizon: the level a trial whose optimiser never trained ends at."""
    from l2l import optimizers, sweep

    _, problem = sweep.task_problems(spec.task)
    return sweep.objective_losses(problem, optimizers.sgd(0.0), spec.eval_horizon, spec.objective_instances, spec.seed)[0]


def design_frame(spec, study, tuned, untrained):
    """One row per design trial: its settings (seed included), state, the LSTM's final and mean loss at the evaluation
    horizon, each metric's ratio to the better tuned baseline (log_final, log_mean: natural logs), whether it trained
    (l2l.design.trained: its final loss below the untrained level), its CPU seconds. A trial that failed (a
    non-finite meta-loss) did not train."""
    import numpy as np
    import pandas as pd

    from l2l import design

    best = {m: min(tuned[n][m] for n in BASELINES) for m in METRICS}
    rows = []
    for t in study.get_trials(deepcopy=False):
        if t.state.name not in ("COMPLETE", "FAIL") or (t.state.name == "FAIL" and "failure" not in t.user_attrs):
            continue  # a dead worker's trial (retried) or a surplus one
        lstm = t.user_attrs.get("lstm", {})
        rows.append({**t.params, "number": t.number, "state": t.state.name, "cpu_s": t.user_attrs.get("cpu_s"), "wall_s": t.user_attrs.get("wall_s"),
                     **{f"lstm_{m}": lstm.get(m, math.nan) for m in METRICS}})
    frame = pd.DataFrame(rows).sort_values("number").reset_index(drop=True)
    for m in METRICS:
        frame[f"log_{m}"] = np.log(frame[f"lstm_{m}"] / best[m])
    frame["trained"] = design.trained(frame.lstm_final.fillna(np.inf), untrained) & (frame.state == "COMPLETE")
    return frame


def factors(spec):
    """The design's settings, in its space's order (seed is the replicate, not a factor)."""
    return [n for n in spec.space if n != "seed"]


def coded(frame, spec):
    """The trials' settings coded -1 (the first choice) / +1 (the second), one column per factor."""
    import pandas as pd

    return pd.DataFrame({n: [1 if v == spec.space[n]["choices"][1] else -1 for v in frame[n]] for n in factors(spec)})


def effects(frame, spec, metric):
    """Each factor's main effect on the live trials' log ratio (l2l.design.main_effects: OLS on the coded settings, a
    t-interval each); the trials that never trained are set apart (failures)."""
    from l2l import design

    live = frame[frame.trained]
    try:
        return design.main_effects(coded(live, spec).to_numpy(), live[f"log_{metric}"].to_numpy(), factors(spec))
    except ValueError:  # too few trained, or the ones left alias a setting: no estimate, said as such
        return None


def failures(frame, spec):
    """Per factor and level: trials, how many trained, the share (l2l.design.failure_table)."""
    from l2l import design

    return design.failure_table(frame[factors(spec)], frame.trained)


def best_point(frame, spec):
    """The design point whose seeds all trained with the lowest mean log ratio on the spec's objective: its settings
    (factors and held settings, without the seed) and that mean; None when no point trained in every seed."""
    from l2l import sweep

    names = factors(spec)
    by_point = frame.groupby(names)
    scored = [(group[f"log_{spec.objective}"].mean(), point) for point, group in by_point if group.trained.all()]
    if not scored:
        return None
    value, point = min(scored, key=lambda pair: pair[0])
    settings = {**sweep.DEFAULTS[spec.task], **spec.fixed, **dict(zip(names, point if isinstance(point, tuple) else (point,)))}
    return {"settings": {k: (v.item() if hasattr(v, "item") else v) for k, v in settings.items()}, "log_ratio": float(value)}


def effects_markdown(by_metric):
    """metric -> effects frame (or None), as one Markdown table: each factor's effect on the log ratio (a ratio's factor
    from the low to the high level, exp of the effect) with its 95% interval, for each metric (five columns); a
    sentence where a metric's effects could not be estimated."""
    if any(f is None for f in by_metric.values()):
        return "Too few trials trained to estimate the settings' effects (each needs more trained trials than settings, plus one)."
    return effects_table(by_metric).to_markdown(index=False)


def effects_table(by_metric):
    """effects_markdown's table, as a DataFrame (every metric's effects estimated)."""
    import numpy as np
    import pandas as pd

    names = list(next(iter(by_metric.values())).setting)
    columns = {"setting": names}
    for metric, frame in by_metric.items():
        row = frame.set_index("setting").loc[names]
        columns[f"{metric}: ratio x"] = [f"{np.exp(e):.2f}" for e in row.effect]
        columns[f"{metric}: 95% CI"] = [f"{np.exp(lo):.2f} to {np.exp(hi):.2f}" + (" *" if clear else "") for lo, hi, clear in zip(row.low, row.high, row.clear)]
    return pd.DataFrame(columns)


def effects_sentence(frame, by_metric, spec):
    """What the design supports, in one paragraph: how many trials trained, and the factors whose interval excludes
    no effect, with their direction."""
    import numpy as np

    alive, total = int(frame.trained.sum()), len(frame)
    parts = []
    for metric, f in by_metric.items():
        if f is None:
            parts.append(f"on the {metric} loss, too few trained to estimate any setting's effect")
            continue
        clear = f[f.clear]
        said = "; ".join(f"{r.setting} from {spec.space[r.setting]['choices'][0]:g} to {spec.space[r.setting]['choices'][1]:g} multiplies it by "
                         f"{np.exp(r.effect):.2f} (95% CI {np.exp(r.low):.2f} to {np.exp(r.high):.2f})" for r in clear.itertuples())
        what = "the loss at step" if metric == "final" else "the mean loss over steps 1 to"
        parts.append(f"on {what} {spec.eval_horizon} over the better tuned baseline's, " + (said if said else "no setting's 95% interval excludes a factor of 1"))
    return (f"On {TASK_WORDS[spec.task]}, {alive} of {total} design trials trained (their final loss below the untrained level); over those, "
            + "; and ".join(parts) + ".")


def failure_sentence(table, frame):
    """Where meta-training failed: the settings and levels under which fewer trials trained, or that every trial did."""
    dead = len(frame) - int(frame.trained.sum())
    if not dead:
        return f"Every one of the {len(frame)} design trials trained: nothing is set apart."
    worst = table.sort_values("share").head(3)
    return (f"{dead} of {len(frame)} design trials never trained and are set apart; the lowest shares trained: "
            + ", ".join(f"{r.setting} {r.value:g} ({r.trained} of {r.trials})" for r in worst.itertuples()) + ".")


def effects_figure(by_task):
    """Each factor's effect on the log ratio with its 95% interval, one panel per task and metric ("task/metric" ->
    effects frame), up to three to a row."""
    import matplotlib.pyplot as plt
    import numpy as np

    by_task = {name: f for name, f in by_task.items() if f is not None}
    names = list(by_task)
    width = max(1, min(3, len(names)))
    rows = -(-len(names) // width)
    fig, axes = plt.subplots(rows, width, figsize=(4.6 * width, 3.4 * rows), squeeze=False)
    for ax, name in zip(axes.flat, names):
        f = by_task[name].iloc[::-1]
        y = np.arange(len(f))
        ax.errorbar(np.exp(f.effect), y, xerr=[np.exp(f.effect) - np.exp(f.low), np.exp(f.high) - np.exp(f.effect)], fmt="o", color="black", capsize=3)
        ax.axvline(1.0, color="grey", linestyle=":")
        ax.set(yticks=y, yticklabels=f.setting, xscale="log", title=name, xlabel="ratio's factor, low to high level")
    for ax in list(axes.flat)[len(names):]:
        ax.remove()
    fig.tight_layout()
    return fig


def design_summary(reads):
    """summary.json's designs: part ("main", "second") -> its effects per metric (None where not estimable), failures, trials, trained."""
    return {task: {"effects": {m: (e.to_dict("records") if e is not None else None) for m, e in by.items()}, "failures": f.to_dict("records"),
                   "trials": len(frame), "trained": int(frame.trained.sum())} for task, (_, frame, by, f) in reads.items()}


def replicated_sentences(result, horizon, metrics=("final", "mean")):
    """metric -> the replicated best point's verdict against the best tuned baseline at `horizon`, or, with no point
    to replicate (result None), the plain statement of that."""
    from l2l import experiment

    if result is None:
        return {m: "No design point trained in every seed, so there is no best point to replicate." for m in metrics}
    return {m: experiment.protocol_sentence(result, horizon, m, "MLPs") for m in metrics}


def replicate_best(p, best, design_spec, chapter):
    """The design's best point meta-trained again with p.best_seeds fresh seeds at the design's budget, then tested
    with the MNIST chapter's protocol on its base panel beside its paper-settings LSTMs: (runs, their epochs, protocol
    result)."""
    from l2l import data, design, experiment, learned_optimizer, meta, problems, sweep
    from l2l.chapters.mnist import mnist_panel

    if best is None:
        return {}, None, None
    split = data.mnist_splits()
    settings = best["settings"]
    epochs = design.epochs_for_budget(design_spec.budget, settings["horizon"], settings["unroll"]) if design_spec.budget else settings["epochs"]
    lstm = learned_optimizer.LSTMConfig(**{k: v for k, v in settings.items() if sweep.SETTINGS[k][1] == "lstm"})
    configs = [meta.MetaConfig(seed=s, valid_every=design_spec.valid_every, valid_instances=design_spec.valid_instances, select_on=design_spec.objective,
                               **{**{k: v for k, v in settings.items() if sweep.SETTINGS[k][1] == "meta"}, "epochs": epochs})
               for s in range(p.best_first_seed, p.best_first_seed + p.best_seeds)]
    runs = experiment.meta_train_runs(problems.MLP(split["meta_train"]), lstm, configs, p.checkpoint_dir, chapter.results_dir, "lstm_best",
                                      valid_problem=problems.MLP(split["valid"]), chapter="hyper",
                                      trained_on="MNIST train[:40000], the design's best point")
    paper = experiment.saved_runs([p.mnist_weights.format(seed=s) for s in range(p.best_seeds)], "python -m l2l.book run mnist")
    panel = mnist_panel(split, horizon=p.horizon, long_steps=p.long_steps)
    result = experiment.run_protocol(panel, {"lstm": list(runs.values()), "lstm_paper": paper}, p.eval_instances, list(range(p.best_seeds)),
                                     p.tune_instances, cache_dir=f"{p.checkpoint_dir}/panels")
    return runs, epochs, result
