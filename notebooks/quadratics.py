# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Quadratic functions
#
# The paper's first experiment (Andrychowicz et al. 2016, section 3.1 and
# Figure 2) trains the LSTM optimiser on random quadratics
# $f(\theta) = \lVert W\theta - y\rVert_2^2$ in 10 dimensions for 100 steps in
# unrolls of 20, and tests it on quadratics it has never seen against SGD,
# RMSprop, ADAM and NAG. The paper's text draws $W$ and $y$ from a standard
# normal distribution; the DeepMind code draws them from $U[0, 1)$ and feeds
# its quadratic LSTM raw gradients with output scale 1. This chapter runs
# both, as two panels.
#
# **Protocol.** Each panel has its own meta-training runs, and the run is the
# unit of replication: test seed $s$ uses run $s$ on its own unseen
# quadratics, so intervals are over runs (Student's $t$ on each run's mean over
# its quadratics) and every verdict says in how many runs the LSTM was lower.
# Every baseline is tuned separately for every reported step and for each of
# two metrics, the loss at that step and the mean loss over steps 1 to that
# step (the quantity meta-training minimises), on held-out quadratics: a
# half-decade learning-rate grid from $10^{-4}$ to 10, then the two
# quarter-decade neighbours of the best, with NAG's momentum
# (0.5, 0.9, 0.99) and ADAM's $\beta_1$ (0.5, 0.9) searched with the rate.
# Each LSTM checkpoint is chosen on held-out quadratics by the mean loss over
# the horizon. A last comparison puts the optimisers at equal wall-clock time.
#
# ```bash
# python -m l2l.book run quadratics                  # the full profile shown here
# python -m l2l.book run quadratics --profile smoke  # a few minutes, into _build/smoke/
# python -m l2l.book run quadratics -p meta_seeds 10 -p meta_epochs 2000
# ```

# %% tags=["parameters"]
profile = "full"  # every parameter is a field of l2l.chapters.Quadratics; the runner sets them all

# %% tags=["hide-input"]
import matplotlib.pyplot as plt
import numpy as np
from IPython.display import HTML, Markdown
from myst_nb import glue

from l2l import chapters, evaluate, experiment, learned_optimizer, meta, problems

p = chapters.Quadratics.from_namespace(globals())
chapter = experiment.Chapter("quadratics", p)
# Every configuration is built, and so checked, before any compute.
SETTINGS = {  # panel -> (problem, LSTM config, runs, what it is)
    "base": (problems.Quadratic(distribution=p.distribution), learned_optimizer.LSTMConfig(preprocess_p=p.preprocess_p, scale=p.scale),
             p.meta_seeds, f"the paper's text: W, y {p.distribution}, LogAndSign p {p.preprocess_p:g}, output scale {p.scale:g}"),
    "deepmind": (problems.Quadratic(distribution="uniform"), learned_optimizer.LSTMConfig(preprocess_p=0.0, scale=1.0),
                 p.deepmind_seeds, "the DeepMind code: W, y U[0, 1), raw gradients, output scale 1"),
}
report_steps = tuple(sorted({p.horizon, min(2 * p.horizon, p.long_steps), p.long_steps}))
panels = {name: experiment.Panel(name, f"Unseen quadratics ({about.split(':')[0]})", problem, problem, tune_steps=p.horizon,
                                 steps=p.long_steps, report_steps=report_steps)
          for name, (problem, _, _, about) in SETTINGS.items()}


def meta_config(seed):
    return meta.MetaConfig(seed=seed, epochs=p.meta_epochs, batch=p.batch, horizon=p.horizon, unroll=p.unroll, meta_lr=p.meta_lr,
                           clip_norm=p.clip_norm, valid_every=p.valid_every, valid_instances=p.tune_instances, select_on="mean")


for name, value in p.as_dict().items():
    glue(name, value, display=False)

# %% [markdown]
# ## Meta-training the LSTMs
#
# {glue:text}`meta_seeds` runs with the paper's settings and
# {glue:text}`deepmind_seeds` with the DeepMind code's, each
# {glue:text}`meta_epochs` epochs of {glue:text}`batch` fresh quadratics
# optimised for {glue:text}`horizon` steps, the meta-gradient taken every
# {glue:text}`unroll` steps with second derivatives dropped. Every
# {glue:text}`valid_every` epochs the LSTM runs on {glue:text}`tune_instances`
# fixed held-out quadratics and the weights with the lowest mean loss over
# steps 1 to {glue:text}`horizon` are kept (circled).

# %% tags=["hide-input"]
trained = {
    name: experiment.meta_train_runs(problem, lstm_config, [meta_config(s) for s in range(count)], p.checkpoint_dir, chapter.results_dir,
                                     "lstm" if name == "base" else f"lstm_{name}", chapter="quadratics",
                                     trained_on=f"{problem.dims}-d quadratics ||W theta - y||^2, {about}, {p.horizon} steps")
    for name, (problem, lstm_config, count, about) in SETTINGS.items()
}
meta_seconds = chapter.report_meta_training(trained, p.horizon)
glue("meta_minutes", f"{np.mean(meta_seconds['base']) / 60:.1f}", display=False)
glue("best_epochs", ", ".join(str(r.best_epoch) for r in trained["base"].values()), display=False)
glue("best_epochs_deepmind", ", ".join(str(r.best_epoch) for r in trained["deepmind"].values()), display=False)

# %% [markdown]
# A paper-settings run took {glue:text}`meta_minutes` minutes on average; the
# kept weights come from epochs {glue:text}`best_epochs` (DeepMind settings:
# {glue:text}`best_epochs_deepmind`).

# %% tags=["hide-input"]
results = {name: experiment.run_protocol(panel, {"lstm": list(trained[name].values())}, p.eval_instances, list(range(SETTINGS[name][2])),
                                         p.tune_instances, cache_dir=f"{p.checkpoint_dir}/panels")
           for name, panel in panels.items()}
chapter_curves = experiment.protocol_curves_frame(results, range(max(p.meta_seeds, p.deepmind_seeds)), dense_until=p.horizon)
experiment.protocol_tuning_frame(results).to_csv(chapter.path("tuning.csv"), index=False)
for name, result in results.items():
    glue(f"table_{name}", Markdown(experiment.protocol_table(result).to_markdown(index=False)), display=False)
    glue(f"verdicts_{name}", Markdown(experiment.protocol_verdicts(result, "quadratics")), display=False)
horizon_sentence = experiment.protocol_sentence(results["base"], p.horizon, "final", "quadratics")
glue("verdict_horizon", Markdown(horizon_sentence), display=False)
glue("verdict_horizon_html", HTML(experiment.verdict_html(horizon_sentence)), display=False)  # the intro takes only HTML
glue("verdict_horizon_mean_html", HTML(experiment.verdict_html(experiment.protocol_sentence(results["base"], p.horizon, "mean", "quadratics"))),
     display=False)
glue("verdict_deepmind_html", HTML(experiment.verdict_html(experiment.protocol_sentence(results["deepmind"], p.horizon, "final", "quadratics"))),
     display=False)

# %% [markdown]
# ## Figure 2: unseen quadratics, the paper's text
#
# Every optimiser runs on the same {glue:text}`eval_instances` unseen
# quadratics per run, from the same starting points; each baseline is the one
# tuned for the loss at step {glue:text}`horizon`. Bands are 95% intervals over
# the {glue:text}`meta_seeds` runs.
#
# {glue:md}`verdict_horizon`

# %% tags=["hide-input"]
glue("figure_horizon", experiment.protocol_figure(results["base"], p.horizon, steps=p.horizon), display=False)  # for the introduction
plt.show()

# %% [markdown]
# Every reported step and metric, each baseline tuned for it (the setting
# column gives the one tuned for that step's final loss):
#
# ```{glue:md} table_base
# ```
#
# {glue:md}`verdicts_base`
#
# ## The DeepMind code's settings, beside the paper's plotted values
#
# The same protocol with the DeepMind code's quadratics ($W, y \sim U[0, 1)$)
# and its quadratic LSTM (raw gradients, output scale 1). The paper's Figure 2
# plots the loss on a log scale; the values in the last column were read off
# it by eye, so they carry roughly $\pm 25\%$ (a tenth of a decade); they are
# the paper's numbers, not ours, and the paper does not say which of its two
# distributions it plotted.
#
# {glue:md}`verdicts_deepmind`

# %% tags=["hide-input"]
# Read off the paper's Figure 2 by eye (log scale, about +-25%): literature values, not ours.
PAPER_FIGURE2_STEP100 = {"lstm": 0.04, "adam": 0.05}
fig, axes = plt.subplots(1, 2, figsize=(12, 4.2), sharey=True)
for ax, name in zip(axes, ["base", "deepmind"]):
    experiment.protocol_figure(results[name], p.horizon, steps=p.horizon, ax=ax)
    if p.horizon == 100:
        ax.scatter([100] * len(PAPER_FIGURE2_STEP100), list(PAPER_FIGURE2_STEP100.values()), marker="x", color="black", zorder=5,
                   label="paper's Figure 2 (read by eye)")
        ax.legend(frameon=False)
plt.show()
table = experiment.protocol_table(results["deepmind"])
table["paper's Figure 2, step 100"] = [PAPER_FIGURE2_STEP100.get(n, "") if p.horizon == 100 else "" for n in results["deepmind"].entries]
glue("table_deepmind_paper", Markdown(table.to_markdown(index=False)), display=False)

# %% [markdown]
# ```{glue:md} table_deepmind_paper
# ```
#
# ## Past the training horizon
#
# The LSTM was trained on {glue:text}`horizon`-step runs only. Here every
# optimiser keeps going to step {glue:text}`long_steps` (the LSTM keeps its
# state); each baseline is the one tuned for step {glue:text}`long_steps`.

# %% tags=["hide-input"]
fig, axes = plt.subplots(1, 2, figsize=(12, 4.2), sharey=True)
for ax, name in zip(axes, ["base", "deepmind"]):
    experiment.protocol_figure(results[name], p.long_steps, grid=np.unique(np.geomspace(1, p.long_steps, 120).astype(int)), log_x=True, ax=ax)
    ax.axvline(p.horizon, color="grey", linestyle=":")
plt.show()
ms = {name: entry["ms_per_step"] for name, entry in results["base"].entries.items()}
glue("lstm_ms", f"{ms['lstm']:.2f}", display=False)
glue("adam_ms", f"{ms['adam']:.2f}", display=False)
glue("cost_ratio", f"{ms['lstm'] / ms['adam']:.1f}", display=False)
glue("verdict_time", Markdown(experiment.protocol_sentence(results["base"], p.horizon, "time", "quadratics")), display=False)

# %% [markdown]
# ## Cost, and equal wall-clock time
#
# One step of the LSTM on a batch of {glue:text}`eval_instances` quadratics
# took {glue:text}`lstm_ms` ms, against {glue:text}`adam_ms` ms for ADAM
# ({glue:text}`cost_ratio` times as long); meta-training took
# {glue:text}`meta_minutes` minutes per run on this machine, while tuning all
# four baselines for every step and metric took {glue:text}`tuning_seconds`
# seconds per panel. Given the time the LSTM needs for
# {glue:text}`horizon` steps, a baseline takes as many steps as fit in it:
#
# {glue:md}`verdict_time`

# %% tags=["hide-input"]
chapter_curves.to_csv(chapter.path("curves.csv"), index=False, float_format="%.6g")
summary_panels = {}
for name, result in results.items():
    result.entries["lstm"].update(experiment.meta_training_entry(trained[name]))
    summary_panels[name] = experiment.protocol_summary(result)
glue("tuning_seconds", f"{np.mean([r.tuning_s for r in results.values()]):.0f}", display=False)
summary = chapter.finish(summary_panels, meta_training_s=meta_seconds, tuning_s={n: r.tuning_s for n, r in results.items()},
                         paper_figure2_step100=PAPER_FIGURE2_STEP100, lr_grid=list(evaluate.LR_GRID))
print(f"wrote {chapter.results_dir}/summary.json; chapter wall time {summary['wall_time_s']} s")
