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
# $f(\theta) = \lVert W\theta - y\rVert_2^2$ in 10 dimensions, with $W$ and $y$
# drawn from a standard normal distribution, for 100 steps in unrolls of 20,
# and tests it on quadratics it has never seen against SGD, RMSprop, ADAM and
# NAG, each with its learning rate tuned.
#
# This chapter repeats that experiment with several meta-training seeds, with
# baselines tuned on a wide learning-rate grid, and runs the test past the
# training horizon. Rerun it with
#
# ```bash
# python -m l2l.book run quadratics                  # the full profile shown here
# python -m l2l.book run quadratics --profile smoke  # about a minute
# python -m l2l.book run quadratics -p meta_seeds 5 -p meta_epochs 2000
# ```

# %% tags=["parameters"]
profile = "full"  # every parameter is a field of l2l.chapters.Quadratics; the runner sets them all

# %% tags=["hide-input"]
import matplotlib.pyplot as plt
import numpy as np
from IPython.display import HTML, Markdown, display
from myst_nb import glue

from l2l import chapters, evaluate, experiment, learned_optimizer, meta, plots, problems

p = chapters.Quadratics.from_namespace(globals())
chapter = experiment.Chapter("quadratics", p)
# Every configuration is built, and so checked, before any compute.
problem = problems.Quadratic(distribution=p.distribution)
lstm_config = learned_optimizer.LSTMConfig(preprocess_p=p.preprocess_p, scale=p.scale)
meta_configs = [
    meta.MetaConfig(seed=s, epochs=p.meta_epochs, batch=p.batch, horizon=p.horizon, unroll=p.unroll, meta_lr=p.meta_lr,
                    clip_norm=p.clip_norm, valid_every=p.valid_every, valid_instances=p.tune_instances)
    for s in range(p.meta_seeds)
]
seeds = list(range(p.meta_seeds))
panel = experiment.Panel("base", f"Unseen quadratics, {p.horizon} steps (training horizon)", problem, problem, tune_steps=p.horizon,
                         steps=p.long_steps, report_steps=tuple(sorted({p.horizon, min(2 * p.horizon, p.long_steps), p.long_steps})))
for name, value in p.as_dict().items():
    glue(name, value, display=False)

# %% [markdown]
# ## Meta-training the LSTM
#
# {glue:text}`meta_seeds` independent runs of {glue:text}`meta_epochs` epochs,
# each epoch {glue:text}`batch` fresh quadratics optimised for
# {glue:text}`horizon` steps, the meta-gradient taken every
# {glue:text}`unroll` steps with second derivatives dropped. Every
# {glue:text}`valid_every` epochs the LSTM runs on fixed validation quadratics and
# the weights with the lowest loss at the horizon are kept (circled).

# %% tags=["hide-input"]
runs = experiment.meta_train_runs(
    problem, lstm_config, meta_configs, p.checkpoint_dir, chapter.results_dir, "lstm", chapter="quadratics",
    trained_on=f"{problem.dims}-d quadratics ||W theta - y||^2, W and y {p.distribution}, {p.horizon} steps")
meta_seconds = chapter.report_meta_training({"LSTM": runs}, p.horizon)["LSTM"]
glue("meta_minutes", f"{sum(meta_seconds) / len(meta_seconds) / 60:.1f}", display=False)
glue("best_epochs", ", ".join(str(r.best_epoch) for r in runs.values()), display=False)

# %% [markdown]
# Each run took {glue:text}`meta_minutes` minutes on average; the kept weights
# come from epochs {glue:text}`best_epochs`.
#
# ## Tuning the baselines
#
# Each hand-designed optimiser gets the learning rate, from $10^{-4}$ to $10$ in
# half-decades, that gives the lowest mean loss at step {glue:text}`horizon` on
# {glue:text}`tune_instances` held-out quadratics (a run that diverges counts as
# infinite loss). The update rules are Keras's (`keras.optimizers.SGD`,
# `RMSprop` with its mean square starting at 0, `Adam`, and `SGD` with Nesterov
# momentum 0.9), checked step by step against Keras in the tests.

# %% tags=["hide-input"]
result = experiment.run_panel(panel, {"lstm": [runs[s] for s in seeds]}, p.eval_instances, seeds, p.tune_instances, n_boot=p.bootstrap)
plots.tuning_curves(result.tuning, result.lrs).set_title("Baselines: final loss against learning rate (circled: chosen)")
plt.show()
print("chosen learning rates:", result.lrs, "| at the grid's edge:", experiment.edge_of_grid(result.lrs) or "none")
for name, lr in result.lrs.items():
    glue(f"lr_{name}", lr, display=False)

# %% [markdown]
# ## Figure 2: unseen quadratics
#
# Every optimiser runs on the same {glue:text}`eval_instances` unseen quadratics
# per seed, from the same starting points. The LSTM of meta-training seed $s$ is
# tested on test set $s$. Bands are 95% bootstrap intervals of the mean,
# resampling seeds and then quadratics within a seed, so that they include the
# spread between meta-training runs. Whether the LSTM beats a baseline is
# judged on their paired difference on the same functions, which removes the
# spread between functions that both optimisers share.

# %% tags=["hide-input"]
chapter.save_panels({"base": result}, seeds)
glue("figure_horizon", experiment.figure(result, steps=p.horizon), display=False)  # for the introduction
plt.show()
# Read off the paper's Figure 2 by eye (log scale): literature values, not ours.
PAPER_FIGURE2_STEP100 = {"lstm": 0.04, "adam": 0.05}
paper_column = {"paper, step 100": [PAPER_FIGURE2_STEP100.get(n, "") if p.horizon == 100 else "" for n in result.entries]}
table = experiment.results_table(result, paper_column).to_markdown(index=False)
glue("results_table", Markdown(table), display=False)
display(Markdown(table))
verdicts = {key: experiment.verdict(result, step, "functions", p.bootstrap)
            for key, step in [("horizon", p.horizon), ("double", min(2 * p.horizon, p.long_steps)), ("long", p.long_steps)]}
for key, sentence in verdicts.items():
    glue(f"verdict_{key}", Markdown(sentence), display=False)
glue("verdict_horizon_html", HTML(experiment.verdict_html(verdicts["horizon"])), display=False)  # another page takes only HTML
ms = {name: entry["ms_per_step"] for name, entry in result.entries.items()}
glue("lstm_ms", f"{ms['lstm']:.2f}", display=False)
glue("adam_ms", f"{ms['adam']:.2f}", display=False)
glue("cost_ratio", f"{ms['lstm'] / ms['adam']:.1f}", display=False)

# %% [markdown]
# {glue:md}`verdict_horizon`
#
# The paper's Figure 2 shows about 0.04 for the LSTM and 0.05 for ADAM at
# step 100. Its plotted scale is not stated; this study uses the DeepMind
# code's loss (sum of squares per function, mean over functions).
#
# ```{glue:md} results_table
# ```
#
# ## Past the training horizon
#
# The LSTM was trained on 100-step runs only. Here every optimiser keeps going
# to step {glue:text}`long_steps`; the LSTM keeps its state.

# %% tags=["hide-input"]
experiment.figure(result, grid=np.unique(np.geomspace(1, p.long_steps, 120).astype(int)), log_x=True)
plt.axvline(p.horizon, color="grey", linestyle=":")
plt.title(f"Unseen quadratics, {p.long_steps} steps")
plt.show()

# %% [markdown]
# {glue:md}`verdict_double`
#
# {glue:md}`verdict_long`
#
# ## Cost
#
# One step of the LSTM on a batch of quadratics took {glue:text}`lstm_ms` ms,
# against {glue:text}`adam_ms` ms for ADAM ({glue:text}`cost_ratio` times as
# long); meta-training took {glue:text}`meta_minutes` minutes per seed on this
# machine, while the baselines' whole learning-rate search took
# {glue:text}`tuning_seconds` seconds.

# %% tags=["hide-input"]
result.entries["lstm"].update(experiment.meta_training_entry(runs))
summary = chapter.finish({"base": {"optimisers": result.entries}}, tuning_s=result.tuning_s,
                         paper_figure2_step100=PAPER_FIGURE2_STEP100, lr_grid=list(evaluate.LR_GRID))
glue("tuning_seconds", f"{result.tuning_s:.0f}", display=False)
print(f"wrote {chapter.results_dir}/summary.json; chapter wall time {summary['wall_time_s']} s")
