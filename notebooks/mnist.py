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
# # MNIST
#
# ## Result
#
# The paper's headline experiment (section 3.2, Figure 3): an LSTM optimiser
# trains a small MLP (784-20-10, sigmoid hidden units, minibatches of 128) on
# MNIST for 100 steps. Its claim, tested at the paper's own meta-training
# budget ({glue:text}`budget_words`) with {glue:text}`budget_runs`
# independent meta-training runs against every baseline tuned on held-out
# images (the four of the paper, and NAG and ADAM with a tuned decaying rate),
# with the reading fixed in advance ([pre-registered
# endpoints](preregistration.md)):
#
# ```{glue:md} endpoint_primary
# :format: myst
# ```
#
# ```{glue:figure} fig_result
# :name: fig-mnist-result
#
# Left: the budget runs' LSTMs (each run's best weights by validation) and
# every baseline tuned for the loss at step 100, on the test MLPs: each run's
# mean over its MLPs, then the geometric mean over runs with a 95% band on the
# log scale. Right: the loss at step 100 of each run's kept snapshot over
# meta-training (run $k$ on test seed $k$), mean over runs with its 95%
# interval, against the tuned NAG and ADAM on the same MLPs.
# ```
#
# The secondary endpoints, each read the same way:
#
# ```{glue:md} endpoints_secondary
# :format: myst
# ```
#
# At this chapter's own budget ({glue:text}`chapter_budget_words`), the same
# recipe reads (exploratory, not pre-registered):
#
# ```{glue:md} verdict_base_final
# :format: myst
# ```
#
# ## Method
#
# **Data.** Four disjoint parts of MNIST's 70,000 images. The chapter's own
# LSTMs meta-train on MLPs that see training images 0-39,999 (the
# budget runs on images 0-49,999, selected on 50,000-59,999); checkpoints
# are selected, and every baseline and multiplier is tuned, on images
# 40,000-49,999; at test time every optimiser trains fresh MLPs on images
# 50,000-59,999, and held-out loss and accuracy are measured on the 10,000
# official test images, which no optimisee trains on. The loss plotted per
# step is the optimisee's minibatch training loss, the paper's metric.
#
# **Protocol.** The run is the unit of replication: test seed $s$ uses
# meta-training run $s$, intervals are Student's $t$ over runs, and every
# verdict says in how many runs the LSTM was lower. Each baseline is tuned
# separately for every reported step and metric (the loss at the step; the
# mean loss over steps 1 to the step, the quantity meta-training minimises):
# learning rates in half-decades from $10^{-4}$ to 10, then the
# quarter-decade neighbours of the best, with NAG's momentum and ADAM's
# $\beta_1$ on small grids, and for the decaying rates their final share of
# the first rate and their shape. "The best tuned baseline" is chosen on the
# tuning images, never on the test curves. Where the LSTM is transferred
# (wider, deeper, ReLU, Fashion-MNIST) its step multiplier is tuned the same
# way on the same images, per run.
#
# The parameters (folded below) are the full profile's; `python -m l2l.book
# run mnist --profile smoke` runs the same code in minutes, outside the book,
# and `python -m l2l.recipes train mnist_budget --seed 0 --threads 1` trains
# (or resumes) a budget run.

# %% tags=["parameters"]
profile = "full"  # every parameter is a field of l2l.chapters.Mnist; the runner sets them all

# %% tags=["hide-input"]
import matplotlib.pyplot as plt
from IPython.display import Markdown
from myst_nb import glue

from l2l import data, experiment, optimizers
from l2l.chapters import Mnist, mnist

p = Mnist.from_namespace(globals())
chapter = experiment.Chapter("mnist", p)
split = data.mnist_splits()  # fails here, before any compute, if L2L_DATA_DIR holds no MNIST
for name, value in {**p.as_dict(), "budget_words": mnist.budget_words(p.budget_epochs), "chapter_budget_words": mnist.budget_words(p.meta_epochs),
                    "budget_epochs_text": f"{p.budget_epochs:,}",
                    **{f"paper_{k}": f"{v:g}" for k, v in mnist.PAPER_FIGURE3_STEP100.items()}}.items():
    glue(name, value, display=False)

# %% [markdown]
# ## The paper's budget: {glue:text}`budget_epochs_text` epochs
#
# {glue:text}`budget_runs` runs of the paper's recipe
# (`l2l.recipes.mnist_budget`: LogAndSign $p = 10$, output scale 0.1, one
# MLP per epoch, 100 steps in unrolls of 20, Adam at $10^{-3}$, no clipping),
# each on its own random streams, trained in the background across working
# sessions with a snapshot every 500 epochs; each run's weights with the
# lowest validation loss are its result. Run $k$ trains the test MLPs of seed
# $k$ ({glue:text}`eval_instances` of them) to step 200, against every
# baseline tuned on {glue:text}`tune_instances` MLPs of the tuning images.

# %% tags=["hide-input"]
runs = mnist.budget_runs(p, split, log=experiment.terminal_log)
mnist.save_budget_weights(runs, chapter.results_dir)
endpoint_result, readings = mnist.budget_endpoints(p, split, runs, cache_dir=f"{p.checkpoint_dir}/panels", log=experiment.terminal_log,
                                                   grid=tuple(p.endpoint_lr_grid))
primary, secondary = mnist.endpoint_markdown(readings)
chapter.glue_verdict("endpoint_primary", primary)
chapter.glue_verdict("budget_sentence", primary)  # the introduction's name for it
glue("endpoints_secondary", Markdown(secondary), display=False)
settings = endpoint_result.settings[100]["final"]
curve = mnist.campaign_curve(p, runs, endpoint_result.panel, 100, {n: (lambda s, n=n: optimizers.FACTORIES[n](**settings[n])) for n in ("nag", "adam")})
figure = mnist.result_figure(endpoint_result, curve)
glue("fig_result", figure, display=False)
plt.close(figure)
for suffix, step in (("", 100), ("_long", 200)):
    glue(f"table_budget{suffix}", Markdown(experiment.protocol_table_at(endpoint_result, step).to_markdown(index=False)), display=False)

# %% [markdown]
# ````{dropdown} The budget runs against every tuned baseline, at steps 100 and 200
# ```{glue:md} table_budget
# ```
# ```{glue:md} table_budget_long
# ```
# ````
#
# ## This chapter's runs: {glue:text}`meta_epochs` epochs
#
# {glue:text}`meta_seeds` runs with the paper's settings and
# {glue:text}`deepmind_seeds` with the DeepMind code's ($p = 5$, output scale
# 0.01), each {glue:text}`meta_epochs` epochs of one fresh MLP trained for
# {glue:text}`horizon` steps, the meta-gradient taken every
# {glue:text}`unroll` steps; every {glue:text}`valid_every` epochs the
# weights with the lowest mean loss over the horizon on
# {glue:text}`valid_instances` validation MLPs are kept (circled). Their
# verdicts below are exploratory: they read a budget the paper did not use.

# %% tags=["hide-input"]
trained = mnist.chapter_runs(p, split, chapter)
meta_seconds = chapter.report_meta_training(trained, p.horizon)
results = mnist.chapter_panels(p, split, trained)
mnist.glue_panels(results, p, glue)
for metric in ("final", "mean"):
    chapter.glue_verdict(f"verdict_base_{metric}", experiment.protocol_sentence(results["base"], p.horizon, metric, "MLPs"))
fig, axes = plt.subplots(1, 2, figsize=(12.5, 4.2), sharey=True)
for ax, objective in zip(axes, ["final", "mean"]):
    experiment.protocol_figure(results["base"], p.horizon, steps=p.long_steps, objective=objective, ax=ax,
                               title=f"Baselines tuned for the {experiment.METRICS[objective].format(step=p.horizon)}")
plt.show()

# %% [markdown]
# **Figure 3, the training horizon.** The base panel at
# {glue:text}`meta_epochs` epochs: each baseline tuned for the loss at step
# {glue:text}`horizon` (left) and for the mean loss over steps 1 to
# {glue:text}`horizon` (right). For comparison, the paper's Figure 3 plots,
# at step 100, its LSTM at about {glue:text}`paper_lstm`, NAG at about
# {glue:text}`paper_nag` and ADAM at about {glue:text}`paper_adam` (read off
# the figure by eye, about $\pm 25\%$ on its log axis): literature values,
# not measurements of ours.
#
# ```{glue:md} verdict_base_mean
# :format: myst
# ```
#
# ````{dropdown} The base panel: every step and metric, and its tables
# ```{glue:md} verdicts_base
# :format: myst
# ```
# ```{glue:md} table_base
# ```
# ```{glue:md} table_base_long
# ```
# ````

# %% tags=["hide-input"]
mnist.transfer_figure(results, p.long_steps)
plt.show()

# %% [markdown]
# **Figure 4, generalisation.** The same LSTMs, unchanged but for a step
# multiplier tuned per run on the tuning images, on a wider network (40
# hidden units), a deeper one (two hidden layers), ReLU units (where the paper
# found the LSTM fails) and Fashion-MNIST (tuned on Fashion-MNIST training
# images 40,000-49,999, tested on 50,000-59,999); every baseline re-tuned for
# each, all tuned for the loss at step {glue:text}`long_steps`.
#
# ````{dropdown} 40 hidden units
# ```{glue:md} verdicts_hidden40
# :format: myst
# ```
# ```{glue:md} table_hidden40_long
# ```
# ````
#
# ````{dropdown} Two hidden layers
# ```{glue:md} verdicts_layers2
# :format: myst
# ```
# ```{glue:md} table_layers2_long
# ```
# ````
#
# ````{dropdown} ReLU instead of sigmoid
# ```{glue:md} verdicts_relu
# :format: myst
# ```
# ```{glue:md} table_relu_long
# ```
# ````
#
# ````{dropdown} Fashion-MNIST
# ```{glue:md} verdicts_fashion
# :format: myst
# ```
# ```{glue:md} table_fashion_long
# ```
# ````
#
# ````{dropdown} The paper's settings against the DeepMind code's ($p = 5$, scale 0.01), on the base task
# ```{glue:md} verdicts_deepmind_settings
# :format: myst
# ```
# ```{glue:md} table_deepmind_settings
# ```
# ````
#
# ## Cost
#
# The tables give each optimiser's wall time per step on
# {glue:text}`eval_instances` MLPs at once; the equal-wall-clock endpoint
# gives each baseline the steps that fit in the LSTM's time. One of this
# chapter's {glue:text}`meta_epochs`-epoch runs took
# {glue:text}`meta_minutes` minutes here; a budget run's
# {glue:text}`budget_epochs_text` epochs took {glue:text}`budget_hours` hours of meta-training at one thread.

# %% tags=["hide-input"]
glue("meta_minutes", f"{sum(meta_seconds['paper']) / len(meta_seconds['paper']) / 60:.1f}", display=False)
glue("budget_hours", f"{sum(r.wall_time_s for r in runs) / len(runs) / 3600:.1f}", display=False)
every = {**results, "budget_endpoints": endpoint_result}
chapter.save_protocols(every, {n: range(next(iter(r.curves.values())).shape[0]) for n, r in every.items()}, dense_until=p.horizon)
panels = {name: experiment.protocol_summary(r) for name, r in every.items()}
summary = chapter.finish(panels, endpoints=readings, campaign_curve=curve, paper_figure3_step100=mnist.PAPER_FIGURE3_STEP100,
                         meta_training_s={**meta_seconds, "budget": [r.wall_time_s for r in runs]},
                         meta_epochs={"lstm_paper": p.meta_epochs, "lstm_deepmind": p.meta_epochs, "lstm_budget": p.budget_epochs},
                         budget_runs={str(k): {"key": r.key, "best_epoch": r.best_epoch, "best_valid": r.best_valid} for k, r in enumerate(runs)},
                         data_splits={name: split[name].name for name in split})
