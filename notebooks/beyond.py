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
# # Beyond the paper: what it takes for a learned optimiser to win
#
# The MNIST chapter measures the paper's recipe against baselines tuned as
# carefully as the LSTM is trained, at its horizon, beyond it and on other
# networks. Work since the paper has proposed fixes for where such learned
# optimisers fail: long horizons, other activations, other architectures.
# This chapter puts five of them side by side on the MNIST chapter's task,
# each added alone to the paper's recipe
# (the ablation), then all together (the combination), and tests the result
# with the rigor protocol on the MNIST MLP at 100, 200 and 1,000 steps, on a
# ReLU MLP, on a small CNN on MNIST and on the CIFAR chapter's ConvNet.
#
# The techniques, as `l2l` implements them (each is an option of
# `l2l.learned_optimizer.LSTMConfig`, `l2l.meta.MetaConfig` or a problem
# wrapper in `l2l.problems`, with its own tests):
#
# {glue:md}`techniques_text`
#
# Last, the combination is meta-trained on a mixture of tasks that no test
# panel belongs to (Fashion-MNIST MLPs of three shapes and quadratics): the
# **general** optimiser, which the package ships, and which is tested on
# standard Keras models through `model.fit` at its default step multiplier.
#
# ```bash
# python -m l2l.book run beyond                    # the full profile shown here
# python -m l2l.book run beyond --profile smoke    # minutes, into _build/smoke/
# python -m l2l.recipes train beyond --variant combined --seed 0 --threads 1   # one run, resumable
# ```

# %% tags=["parameters"]
profile = "full"  # every parameter is a field of l2l.chapters.Beyond; the runner sets them all

# %% tags=["hide-input"]
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import Markdown, display
from myst_nb import glue

from l2l import chapters, experiment, pretrained, recipes

p = chapters.Beyond.from_namespace(globals())
chapter = experiment.Chapter("beyond", p)
split, cifar_split = recipes.beyond_splits(p)  # fails here, before any compute, if L2L_DATA_DIR holds no MNIST or CIFAR-10 and there is no network
paper_runs = experiment.saved_runs([p.mnist_weights.format(seed=s) for s in range(p.final_seeds)], "python -m l2l.book run mnist")
adam_lr = recipes.tuned_adam_lr(split["valid"], p.horizon, p.teacher_instances)
for name, value in p.as_dict().items():
    glue(name, value, display=False)
glue("adam_lr", f"{adam_lr:.3g}", display=False)
glue("techniques_text", Markdown("\n".join(f"- **{name}**: {text}" for name, text in recipes.TECHNIQUES.items())), display=False)
glue("combined_text", ", ".join(p.combined), display=False)

# %% [markdown]
# ## Meta-training
#
# Every variant is the MNIST chapter's recipe (one MLP 784-20-10 sigmoid per
# epoch on MNIST training images 0-39,999, {glue:text}`horizon` steps in
# segments of {glue:text}`unroll`, Adam at {glue:text}`meta_lr`,
# {glue:text}`meta_epochs` epochs, selection every {glue:text}`valid_every`
# epochs by the mean loss over the horizon on {glue:text}`valid_instances`
# MLPs of images 40,000-49,999) with its technique added. Imitation copies,
# and the nominal step is, ADAM at the rate tuned for the mean loss over
# {glue:text}`horizon` steps on {glue:text}`teacher_instances` selection MLPs:
# {glue:text}`adam_lr` (for the general optimiser, which sees no MNIST image,
# the rate tuned the same way on Fashion-MNIST images 40,000-49,999). The
# paper's recipe is the MNIST chapter's
# {glue:text}`final_seeds` published runs; each technique alone gets
# {glue:text}`ablation_seeds` runs; the combination
# ({glue:text}`combined_text`) {glue:text}`final_seeds` and the general
# optimiser {glue:text}`general_seeds`. Runs are filed under their settings' hash in
# `book/results/beyond/runs/` and resume across sittings.

# %% tags=["hide-input"]
trained = recipes.beyond_runs(p, split, chapter.results_dir)
meta_seconds = chapter.report_meta_training(trained, p.horizon)
cost = experiment.cost_table(meta_seconds)
glue("cost_table", Markdown(cost.to_markdown(index=False, floatfmt=".2f")), display=False)
glue("total_hours", f"{cost['total hours'].sum():.1f}", display=False)
glue("curriculum_sentence", Markdown(experiment.curriculum_sentence(trained, p.curriculum)), display=False)

# %% [markdown]
# Meta-training cost, in hours of one CPU thread (the runs ran at one thread
# each on this machine's CPU); {glue:text}`total_hours` hours in all.
#
# ```{glue:md} cost_table
# ```
#
# A run advances to the curriculum's next stage after
# {glue:text}`patience` validations without improvement, so within
# a run's epochs it may not reach the last stage.
# {glue:md}`curriculum_sentence`
#
# ## The ablation: each technique alone, then together
#
# The first {glue:text}`ablation_seeds` runs of every variant on the same
# {glue:text}`eval_instances` test MLPs per run (MNIST training images
# 50,000-59,999, loss on the official test images held out), every baseline
# tuned for each reported step and metric on the selection images. A cell is
# the mean over runs of the loss at that step (of the mean loss over steps 1
# to that step); below it, the variant minus the best tuned baseline, with
# the number of runs in which the variant was lower.

# %% tags=["hide-input"]
PANELS = recipes.beyond_panels(p, split, cifar_split)
runs = {v: list(r.values()) for v, r in trained.items()}
protocol = lambda name: recipes.beyond_protocol(name, p, PANELS, runs, paper_runs)  # python -m l2l.recipes panel beyond computes the same
ablation = protocol("ablation")
rows = experiment.ablation_rows(ablation, recipes.beyond_learned("ablation", p, runs, paper_runs), p.report_steps)
glue("ablation_table", Markdown(pd.DataFrame(rows).to_markdown(index=False)), display=False)
fig, axes = plt.subplots(1, 2, figsize=(12, 4.2), sharey=True)
for ax, objective in zip(axes, ("final", "mean")):
    experiment.protocol_figure(ablation, p.horizon, steps=max(p.report_steps), objective=objective, ax=ax,
                               title=f"baselines tuned for the {experiment.METRICS[objective].format(step=p.horizon)}")
    ax.set_xscale("log")
plt.show()

# %% [markdown]
# ```{glue:md} ablation_table
# ```
#
# Each cell: the mean loss over {glue:text}`ablation_seeds` runs; in brackets
# the variant minus the best tuned baseline at that step and metric, and in
# how many runs the variant was lower.
#
# ## The combination against tuned NAG and ADAM on the MNIST MLP
#
# {glue:text}`final_seeds` runs of the combination, of the paper's recipe and
# of the general optimiser (its {glue:text}`general_seeds` runs in turn, its
# step multiplier tuned, as it never saw MNIST) on the same test MLPs, at
# each reported step, against each baseline tuned for that step and metric.
# In this chapter's tables and figures, **LSTM** is the combination,
# **LSTM (paper settings)** the paper's recipe and **LSTM (general)** the
# general optimiser.
#
# {glue:md}`mnist_verdicts`
#
# ```{glue:md} table_mnist
# ```

# %% tags=["hide-input"]
mnist = protocol("mnist")
against = experiment.versus_grid(mnist, "lstm", p.report_steps)
glue("mnist_verdicts", Markdown(experiment.versus_sentences(against, "the combination")), display=False)
chapter.glue_protocols({"mnist": mnist}, "MLPs")
fig = experiment.protocol_figure(mnist, max(p.report_steps), objective="final", title="MNIST MLP: the combination, the paper's recipe, tuned baselines")
fig.axes[0].set_xscale("log")
plt.show()

# %% [markdown]
# Every step and metric against the best tuned baseline, including held-out
# loss and equal wall-clock time:
#
# {glue:md}`verdicts_mnist`
#
# ## Transfer: a ReLU MLP, a CNN on MNIST, the CIFAR-10 ConvNet
#
# The combination and the general optimiser as trained, and with their step
# multiplier tuned per run like a baseline's rate, on networks the
# combination never saw. Baselines and multipliers are tuned on
# {glue:text}`tune_instances` ReLU MLPs, {glue:text}`cnn_tune_instances` CNNs
# and {glue:text}`cifar_tune_instances` ConvNet (as in the CIFAR chapter) of
# the selection images.
#
# {glue:md}`transfer_verdicts`
#
# Tuned values at the outer end of what their tuning tried (the grid's ends a
# quarter-decade outwards), where the best value may lie beyond the grid and
# the optimiser so tuned may be held back:
#
# {glue:md}`edge_text`
#
# Times per step (the tables' last column, and the equal-wall-clock verdicts)
# were measured while the panels ran over several sittings, each at one
# thread beside other jobs on this machine's two cores. Runs of one optimiser
# whose settings differ only in learning rate, momentum or step multiplier
# cost the same per step, yet their measured times differ by up to
# {glue:text}`timing_spread` times within a panel (the largest ratio over the
# five panels above). Read the times with that error; the benchmarks
# appendix measures a learned optimiser's Keras step against Adam's in one
# run.

# %% tags=["hide-input"]
TRANSFER = {name: PANELS[name] for name in ("relu", "cnn", "cifar10")}
transfer = {name: protocol(name) for name in TRANSFER}
last_step = lambda result: max(result.verdicts)
within = {name: experiment.within_interval(result, "lstm_tuned") for name, result in transfer.items()}
glue("transfer_verdicts", Markdown("\n".join(f"- {TRANSFER[n][0].title}: {experiment.protocol_sentence(r, last_step(r), 'final', 'networks', learner='the combination')}"
                                             for n, r in transfer.items())), display=False)
fig, axes = plt.subplots(1, len(transfer), figsize=(6 * len(transfer), 4.2))
for ax, result in zip(np.atleast_1d(axes), transfer.values()):
    experiment.protocol_figure(result, last_step(result), objective="final", ax=ax)
plt.show()
for result in transfer.values():
    display(Markdown(f"**{result.panel.title}**\n\n" + experiment.protocol_table(result).to_markdown(index=False)))
edges = {n: experiment.tuned_at_edge(r, tuple(p.lr_grid), tuple(p.multiplier_grid)) for n, r in {"mnist": mnist, **transfer}.items()}
glue("edge_text", Markdown(experiment.edge_markdown(edges, {n: PANELS[n][0].title for n in edges})), display=False)
spread = {n: experiment.timing_spread(r) for n, r in {"mnist": mnist, "ablation": ablation, **transfer}.items()}
glue("timing_spread", f"{max(spread.values()):.2f}", display=False)

# %% [markdown]
# ## Through Keras with its defaults: the general optimiser
#
# The general optimiser is the run of the {glue:text}`general_seeds` with the
# best validation. Its default step multiplier is chosen as the package
# chooses every packaged optimiser's (`l2l.pretrained.choose_multiplier`:
# the lowest worst-case ratio to Keras' default Adam on three held-out models
# and images): {glue:text}`general_multiplier`. Each standard model (an MLP
# and a convnet on MNIST training images 50,000-59,999, a small CNN on CIFAR-10
# data_batch_5) is then trained for {glue:text}`keras_steps` minibatches of
# 128 through `model.fit` with it and with ADAM at the rate tuned on the
# selection images; {glue:text}`final_seeds` seeds of the model's initial
# weights.
#
# {glue:md}`keras_verdicts`
#
# ```{glue:md} keras_table
# ```

# %% tags=["hide-input"]
general = experiment.best_run(runs["general"])
keras = recipes.beyond_keras(p, general, split, cifar_split, log=experiment.terminal_log)  # python -m l2l.recipes panel beyond --panel keras computes the same
multiplier, keras_runs = keras["multiplier"], keras["models"]
glue("general_multiplier", f"{multiplier:g}", display=False)
glue("keras_table", Markdown(pd.DataFrame(keras["rows"]).to_markdown(index=False)), display=False)
glue("keras_verdicts", Markdown("\n".join(f"- {sentence}" for sentence in keras["sentences"])), display=False)

# %% [markdown]
# ## Against the targets
#
# The targets this chapter set itself before any run, and what was measured.
#
# ```{glue:md} targets_table
# ```
#
# {glue:md}`verdict_beyond`

# %% tags=["hide-input"]
targets = experiment.targets_table(against, {n: within[n] for n in ("relu", "cnn")}, keras_runs, cost["total hours"].sum(), p.report_steps,
                                   {n: panel.title for n, (panel, _) in TRANSFER.items()}, p.keras_last)
glue("targets_table", Markdown(targets.to_markdown(index=False)), display=False)
outcome = (f"{int((targets.met == 'yes').sum())} of {len(targets)} targets met. "
           + experiment.protocol_sentence(mnist, p.horizon, "final", "MLPs", who="the combination"))
chapter.glue_verdict("verdict_beyond", outcome)

# %% tags=["hide-input"]
protocols = {"mnist": mnist, "ablation": ablation, **transfer}
chapter.save_protocols(protocols, {n: list(range(p.ablation_seeds if n == "ablation" else p.final_seeds)) for n in protocols}, dense_until=p.horizon)
panels = experiment.step_summaries(mnist, "mnist", against)
panels.update({name: experiment.protocol_summary(result) for name, result in transfer.items()})
panels["keras"] = {"models": keras_runs, "general_multiplier": multiplier, "multipliers_tried": {f"{k:g}": v for k, v in keras["tried"].items()},
                   "general_run": general.key, "computed_by": keras["provenance"]}
panels["ablation"] = {**experiment.protocol_summary(ablation), "table": rows}
experiment.add_edges(panels, edges, p.report_steps)  # the MNIST panel: one summary entry per reported step
summary = chapter.finish(panels, meta_training_s=meta_seconds, meta_training={k: experiment.meta_training_entry(v) for k, v in trained.items()},
                         cost_hours=cost.set_index("variant")["total hours"].to_dict(),
                         targets=targets.to_dict("records"), adam_lr=adam_lr, timing_spread=spread,
                         # publish records this choice for the general optimiser's weights: no second calibration. Its commit is the one
                         # that computed the Keras panel (python -m l2l.recipes panel beyond --panel keras may have, before the chapter).
                         calibrations={general.key: pretrained.calibration_entry(multiplier, keras["tried"], keras["default_adam"], p.calibration_steps,
                                                                      commit=keras["provenance"]["commit"])})
print(f"wrote {chapter.results_dir}/summary.json; chapter wall time {summary['wall_time_s']} s")
