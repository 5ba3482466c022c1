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
# ## Result
#
# The paper's first experiment (section 3.1, Figure 2) trains the LSTM
# optimiser on random quadratics $f(\theta) = \lVert W\theta - y\rVert_2^2$ in
# 10 dimensions for 100 steps and tests it on quadratics it has never seen.
# The paper's text draws $W$ and $y$ from a standard normal distribution; the
# DeepMind code draws them from $U[0, 1)$ and feeds its LSTM raw gradients
# with output scale 1. Both, meta-trained {glue:text}`budget_words`, against
# the best of SGD, RMSprop, ADAM and NAG tuned on held-out quadratics, read as
# [pre-registered](preregistration.md):
#
# ```{glue:md} endpoint_paper
# :format: myst
# ```
#
# ```{glue:md} endpoint_deepmind
# :format: myst
# ```
#
# ```{glue:figure} fig_figure2
# :name: fig-quadratics-figure2
#
# Figure 2 for both settings: each run's mean loss over its unseen
# quadratics, then the geometric mean over runs with a 95% band on the log
# scale; every baseline tuned for the loss at step {glue:text}`horizon`;
# crosses: the paper's Figure 2 at step 100, read by eye (about $\pm 25\%$),
# literature values beside ours, not measurements.
# ```
#
# ## Method
#
# **Protocol.** Each setting has its own meta-training runs, and the run is
# the unit of replication: test seed $s$ uses run $s$ on its own unseen
# quadratics, so intervals are over runs (Student's $t$ on each run's mean over
# its quadratics) and every verdict says in how many runs the LSTM was lower.
# Every baseline is tuned separately for every reported step and for each of
# two metrics, the loss at that step and the mean loss over steps 1 to that
# step (the quantity meta-training minimises), on held-out quadratics: a
# half-decade learning-rate grid from $10^{-4}$ to 10, then the two
# quarter-decade neighbours of the best, with NAG's momentum (0.5, 0.9, 0.99)
# and ADAM's $\beta_1$ (0.5, 0.9) searched with the rate; the best baseline is
# chosen on the tuning quadratics. Each LSTM checkpoint is chosen on held-out
# quadratics by the mean loss over the horizon.
#
# The parameters (folded below) are the full profile's; `python -m l2l.book
# run quadratics --profile smoke` runs the same code in minutes, outside the
# book, and `python -m l2l.recipes train quadratics --setting paper --seed 0
# --threads 1` trains (or resumes) one of its runs.

# %% tags=["parameters"]
profile = "full"  # every parameter is a field of l2l.chapters.Quadratics; the runner sets them all

# %% tags=["hide-input"]
import matplotlib.pyplot as plt
from myst_nb import glue

from l2l import experiment
from l2l.chapters import Quadratics, quadratics

p = Quadratics.from_namespace(globals())
chapter = experiment.Chapter("quadratics", p)
for name, value in {**p.as_dict(), "budget_words": quadratics.budget_words(p.meta_epochs)}.items():
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
trained = quadratics.meta_train(p, chapter)
meta_seconds = chapter.report_meta_training(trained, p.horizon)
results = quadratics.run_panels(p, trained)
readings = quadratics.endpoint_readings(p, results)
quadratics.glue_all(results, readings, p, glue)
for metric in ("final", "mean"):  # the introduction's verdicts
    chapter.glue_verdict(f"verdict_horizon{'' if metric == 'final' else '_mean'}", experiment.protocol_sentence(results["base"], p.horizon, metric, "quadratics"))
chapter.glue_verdict("verdict_deepmind", experiment.protocol_sentence(results["deepmind"], p.horizon, "final", "quadratics"))
figure = quadratics.figure2(results, p.horizon)
glue("fig_figure2", figure, display=False)
glue("figure_horizon", figure, display=False)  # the introduction's figure
plt.close(figure)

# %% [markdown]
# ## Every step and metric
#
# ````{dropdown} The paper's text: W, y ~ N(0, 1)
# ```{glue:md} verdicts_base
# :format: myst
# ```
# ```{glue:md} tables_base
# :format: myst
# ```
# ````
#
# ````{dropdown} The DeepMind code: W, y ~ U[0, 1), raw gradients, output scale 1
# ```{glue:md} verdicts_deepmind
# :format: myst
# ```
# ```{glue:md} tables_deepmind
# :format: myst
# ```
# ````
#
# ## Past the training horizon
#
# The LSTM was trained on {glue:text}`horizon`-step runs only. Here every
# optimiser keeps going to step {glue:text}`long_steps` (the LSTM keeps its
# state); each baseline is the one tuned for step {glue:text}`long_steps`.

# %% tags=["hide-input"]
quadratics.long_figure(results, p)
plt.show()

# %% [markdown]
# ## Cost, and equal wall-clock time
#
# One step of the LSTM on a batch of {glue:text}`eval_instances` quadratics
# took {glue:text}`lstm_ms` ms, against {glue:text}`adam_ms` ms for ADAM
# ({glue:text}`cost_ratio` times as long); tuning all four baselines for
# every step and metric took {glue:text}`tuning_seconds` seconds per panel.
# Given the time the LSTM needs for {glue:text}`horizon` steps, a baseline
# takes as many steps as fit in it:
#
# ```{glue:md} verdict_time
# :format: myst
# ```

# %% tags=["hide-input"]
chapter.save_protocols(results, {n: range(len(trained[n])) for n in results}, dense_until=p.horizon)
panels = {}
for name, result in results.items():
    result.entries["lstm"].update(experiment.meta_training_entry(trained[name]))
    panels[name] = experiment.protocol_summary(result)
summary = chapter.finish(panels, endpoints=readings, meta_training_s=meta_seconds, tuning_s={n: r.tuning_s for n, r in results.items()},
                         paper_figure2_step100=quadratics.PAPER_FIGURE2_STEP100, meta_epochs={"lstm": p.meta_epochs, "lstm_deepmind": p.meta_epochs})
