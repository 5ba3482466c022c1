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
# # CIFAR-10
#
# The paper's Figure 5 (section 3.3): a convolutional network on CIFAR-10 and
# on two label subsets of it, trained by LSTM optimisers. The optimisee has
# three 5x5 convolutions of 16 channels (SAME padding), each followed by batch
# normalisation, ReLU and 2x2 max pooling, then a dense layer of 32 units
# (batch normalisation, ReLU) and the class outputs; minibatches of {glue:text}`batch_size`, a
# fresh one at every step; every weight starts $\sim N(0, 0.01^2)$. As the
# paper argues, convolution kernels and the other parameters (biases,
# batch-normalisation offsets, dense weights) get an LSTM each: two parameter
# groups (`LSTM`). The chapter tests that choice against a single shared LSTM
# (`one LSTM`), an LSTM meta-trained only on labels the test networks never
# see (`LSTM-sub`, the paper's name), the MNIST chapter's LSTM transferred
# unchanged but for a tuned step multiplier, and the same LSTM driving the same
# network built from Keras layers through `model.fit`.
#
# **Data.** The dataset mirror holds the 50,000 CIFAR-10 training images and
# only the first 1,000 official test images. The LSTMs meta-train on training
# images 0-35,999 (data_batch_1-4 less their last 4,000); checkpoints are
# selected, and every baseline and multiplier is tuned, on images
# 36,000-39,999; at test time every optimiser trains fresh networks on
# data_batch_5 (images 40,000-49,999), and held-out loss and accuracy are
# measured on the 1,000 official test images. CIFAR-5 and CIFAR-2 are the
# images of {glue:text}`cifar5_text` and of {glue:text}`cifar2_text` in each
# of these parts; `LSTM-sub` meta-trains on {glue:text}`sub_text` only.
#
# **Settings.** LogAndSign with $p$ = {glue:text}`preprocess_p` and output
# scale {glue:text}`scale`, the paper's text for MNIST (the DeepMind code's
# CIFAR configurations reuse its MNIST ones, $p = 5$ and 0.01; that ablation
# did not fit this chapter's budget). The protocol is the MNIST chapter's:
# the run is the unit of replication (test seed $s$ uses meta-training run
# $s$), intervals are Student's $t$ over runs, every baseline is tuned for
# every reported step and metric in two stages (half-decades, then the
# quarter-decades beside the best) with NAG's momentum and ADAM's $\beta_1$,
# and a transferred LSTM's step multiplier is tuned the same way, per run.
#
# ```bash
# python -m l2l.book run cifar                  # the full profile shown here
# python -m l2l.book run cifar --profile smoke  # a few minutes, into _build/smoke/
# ```

# %% tags=["parameters"]
profile = "full"  # every parameter is a field of l2l.chapters.Cifar; the runner sets them all

# %% tags=["hide-input"]
import dataclasses

import keras
import matplotlib.pyplot as plt
import numpy as np
from IPython.display import HTML, Markdown
from myst_nb import glue

import l2l
from l2l import chapters, experiment, keras_optimizer, keras_training, recipes

p = chapters.Cifar.from_namespace(globals())
chapter = experiment.Chapter("cifar", p)
split = chapters.cifar.cifar_split(p)  # fails here, before any compute, if L2L_DATA_DIR holds no CIFAR-10 and there is no network
mnist_runs = experiment.saved_runs([p.mnist_weights.format(seed=k) for k in range(p.meta_seeds)],
                                   made_by="the MNIST chapter (python -m l2l.book run mnist)")
H = p.horizon
seeds = list(range(p.meta_seeds))


images = lambda part, labels=None: recipes.cifar_images(split, part, labels)
convnet = lambda part, labels=None: recipes.cifar_convnet(split, part, labels, p.batch_size)


# Each learned optimiser's runs, built by l2l.recipes.cifar (one run key for this chapter and `python -m l2l.recipes train cifar`).
RECIPES = {name: recipes.cifar(name, seed=0, params=p, splits=split) for name in recipes.CIFAR_LEARNERS}
labels_text = lambda labels: "labels " + ", ".join(str(k) for k in labels)
for name, value in p.as_dict().items():
    glue(name, value, display=False)
for name in ("cifar5", "cifar2", "sub"):
    glue(f"{name}_text", labels_text(getattr(p, f"{name}_labels")), display=False)

# %% [markdown]
# ## Meta-training
#
# {glue:text}`meta_seeds` runs of each LSTM, each {glue:text}`meta_epochs`
# epochs of one fresh network trained for {glue:text}`horizon` steps, the
# meta-gradient taken every {glue:text}`unroll` steps. Every
# {glue:text}`valid_every` epochs the LSTM trains {glue:text}`valid_instances`
# networks on the selection images (of its own labels) and the weights with
# the lowest mean loss over steps 1 to {glue:text}`horizon` are kept (circled).

# %% tags=["hide-input"]
trained = {
    name: experiment.meta_train_runs(r.problem, r.lstm_config, [dataclasses.replace(r.meta_config, seed=s) for s in seeds], p.checkpoint_dir,
                                     chapter.results_dir, name, valid_problem=r.valid_problem, chapter="cifar",
                                     trained_on=f"{r.problem.data.name}, the paper's ConvNet, {H} steps")
    for name, r in RECIPES.items()
}
meta_seconds = chapter.report_meta_training(trained, H)
segment_seconds = {name: float(np.mean([r.history.seconds.iloc[1:].mean() for r in runs.values()])) / (H // p.unroll)
                   for name, runs in trained.items()}  # the first epoch includes tracing
glue("meta_minutes", f"{np.mean(meta_seconds['lstm']) / 60:.1f}", display=False)
glue("segment_seconds", f"{segment_seconds['lstm']:.2f}", display=False)
glue("segment_seconds_one", f"{segment_seconds['lstm_one']:.2f}", display=False)
glue("paper_scale_hours", f"{10000 * np.mean(meta_seconds['lstm']) / p.meta_epochs / 3600:.0f}", display=False)

# %% [markdown]
# A run of the two-LSTM optimiser took {glue:text}`meta_minutes` minutes: one
# meta-iteration (a {glue:text}`unroll`-step segment, its meta-gradient and
# the meta-update) took {glue:text}`segment_seconds` s
# ({glue:text}`segment_seconds_one` s with one LSTM). That is what the budget
# forced: {glue:text}`meta_epochs` epochs per run, where the DeepMind code's
# default is 10,000, which at this rate would take about
# {glue:text}`paper_scale_hours` hours per run.

# %% tags=["hide-input"]
runs = {name: list(r.values()) for name, r in trained.items()}
extra = {"nag": {"momentum": tuple(p.nag_momenta)}, "adam": {"beta_1": tuple(p.adam_beta1)}}
protocol = dict(instances=p.eval_instances, seeds=seeds, tune_instances=p.tune_instances, extra=extra, grid=tuple(p.lr_grid),
                cache_dir=p.panel_dir)
cifar10 = experiment.Panel("cifar10", "CIFAR-10, the paper's ConvNet", convnet("test_train"), convnet("valid"), tune_steps=H,
                           steps=H * max(p.long_factors), report_steps=tuple(sorted({H, *(H * f for f in p.long_factors)})),
                           heldout=images("test_heldout"))
# One evaluation serves three panels: the two-LSTM optimiser, one LSTM, and the MNIST LSTM (its multiplier tuned) share the baselines' runs.
full = experiment.run_protocol(cifar10, {"lstm": runs["lstm"], "lstm_one": runs["lstm_one"], "lstm_mnist": mnist_runs},
                               tune_learned=["lstm_mnist"], **protocol)
results = {"cifar10": experiment.protocol_view(full, "lstm"),
           "one_lstm": experiment.protocol_view(full, "lstm_one", name="one_lstm", title="CIFAR-10: one LSTM for all parameters, and two",
                                                others=("lstm",)),
           "mnist_transfer": experiment.protocol_view(full, "lstm_mnist", name="mnist_transfer", title="CIFAR-10: the MNIST chapter's LSTM")}
evaluated = {"cifar10": full}
sub_views = {}
for name, labels in [("cifar5", p.cifar5_labels), ("cifar2", p.cifar2_labels)]:
    panel = experiment.Panel(name, f"CIFAR-{len(labels)} ({labels_text(labels)})", convnet("test_train", labels), convnet("valid", labels),
                             tune_steps=H, steps=H * p.subset_factor, report_steps=tuple(sorted({H, H * p.subset_factor})),
                             heldout=images("test_heldout", labels))
    evaluated[name] = results[name] = experiment.run_protocol(panel, {"lstm": runs["lstm"], "lstm_sub": runs["lstm_sub"]}, **protocol)
    sub_views[name] = experiment.protocol_view(results[name], "lstm_sub", others=("lstm",))
experiment.protocol_curves_frame(evaluated, seeds, dense_until=H).to_csv(chapter.path("curves.csv"), index=False, float_format="%.6g")
experiment.protocol_tuning_frame(evaluated).to_csv(chapter.path("tuning.csv"), index=False)
for name, result in results.items():
    glue(f"table_{name}", Markdown(experiment.protocol_table(result).to_markdown(index=False)), display=False)
    glue(f"verdicts_{name}", Markdown(experiment.protocol_verdicts(result, "networks")), display=False)
for name, result in sub_views.items():
    glue(f"verdicts_{name}_sub", Markdown(experiment.protocol_verdicts(result, "networks")), display=False)
for metric in ("final", "mean"):
    sentence = experiment.protocol_sentence(results["cifar10"], H, metric, "networks")
    glue(f"verdict_cifar10_{metric}", Markdown(sentence), display=False)
    glue(f"verdict_cifar10_{metric}_html", HTML(experiment.verdict_html(sentence)), display=False)  # for the introduction


def show(result, step=H, objective="final", title=None):
    fig = experiment.protocol_figure(result, step, objective=objective, title=title)
    plt.show()
    return fig


# %% [markdown]
# ## Figure 5: CIFAR-10
#
# {glue:md}`verdict_cifar10_final`
#
# {glue:md}`verdict_cifar10_mean`
#
# The curves, each baseline tuned for the loss at step {glue:text}`horizon`
# (left) and at the last reported step (right); bands 95% over runs.

# %% tags=["hide-input"]
fig, axes = plt.subplots(1, 2, figsize=(12, 4.2), sharey=True)
for ax, step in zip(axes, [H, cifar10.steps]):
    experiment.protocol_figure(results["cifar10"], step, ax=ax, title=f"CIFAR-10, baselines tuned for the {experiment.METRICS['final'].format(step=step)}")
    ax.axvline(H, color="grey", linestyle=":")
glue("figure_cifar10", fig, display=False)
plt.show()

# %% [markdown]
# ```{glue:md} table_cifar10
# ```
#
# Every reported step and metric, including held-out loss and equal
# wall-clock time:
#
# {glue:md}`verdicts_cifar10`
#
# ## One LSTM or two
#
# The paper gives convolution kernels an LSTM of their own. Here `one LSTM`
# is meta-trained exactly as the two-LSTM optimiser, with one LSTM for every
# parameter; run $s$ of each on test seed $s$, on the same networks and
# minibatches. The verdicts read the single LSTM against the tuned baselines;
# the table and figure hold both.
#
# {glue:md}`verdicts_one_lstm`

# %% tags=["hide-input"]
show(results["one_lstm"]);

# %% [markdown]
# ```{glue:md} table_one_lstm
# ```
#
# ## CIFAR-5 and CIFAR-2
#
# The same networks with five or two outputs, trained on the images of
# {glue:text}`cifar5_text` or {glue:text}`cifar2_text`. `LSTM` is the
# two-LSTM optimiser meta-trained on all ten labels; `LSTM-sub` has the same
# design but meta-trained on {glue:text}`sub_text` only, so every image class
# it meets here is new to it. Baselines are re-tuned for each subset; neither
# LSTM's multiplier is tuned (as in the paper).
#
# ### CIFAR-5
#
# {glue:md}`verdicts_cifar5`
#
# LSTM-sub against the same baselines:
#
# {glue:md}`verdicts_cifar5_sub`

# %% tags=["hide-input"]
show(results["cifar5"]);

# %% [markdown]
# ```{glue:md} table_cifar5
# ```
#
# ### CIFAR-2
#
# {glue:md}`verdicts_cifar2`
#
# LSTM-sub against the same baselines:
#
# {glue:md}`verdicts_cifar2_sub`

# %% tags=["hide-input"]
show(results["cifar2"]);

# %% [markdown]
# ```{glue:md} table_cifar2
# ```
#
# ## Transfer: the MNIST chapter's LSTM
#
# The LSTM meta-trained on the MNIST chapter's sigmoid MLP (one LSTM, the
# paper's settings; its runs 0 to {glue:text}`last_seed`) on this network, its
# step multiplier tuned per run on the selection images
# (`LSTM trained on MNIST, multiplier tuned`; the plain row is multiplier 1).
#
# {glue:md}`verdicts_mnist_transfer`

# %% tags=["hide-input"]
glue("last_seed", p.meta_seeds - 1, display=False)
show(results["mnist_transfer"]);

# %% [markdown]
# ```{glue:md} table_mnist_transfer
# ```
#
# ## Through Keras: `model.fit` on the same network
#
# The same ConvNet built from Keras layers (`l2l.keras_training.paper_convnet`;
# the tests check it gives the problem's loss and gradients from the same
# weights), trained by `model.fit` on data_batch_5 for
# {glue:text}`keras_steps` steps of {glue:text}`batch_size` images: the two-LSTM optimiser (run
# $s$ on seed $s$, kernels to its `conv` LSTM through
# `l2l.keras_optimizer.conv_kernels`) at multiplier 1 and at a multiplier tuned
# per run on the selection images, against ADAM with its learning rate tuned
# the same way. Keras' batch normalisation tests with moving statistics
# (momentum 0.9 here, so that they follow the last few minibatches of a short
# run); the rest of the chapter tests with each chunk's own statistics.
#
# {glue:md}`keras_verdict`
#
# ```{glue:md} keras_table
# ```

# %% tags=["hide-input"]
keras_images = lambda part: (images(part).x.numpy().reshape(-1, *cifar10.problem.image_shape), images(part).y.numpy())
(x_tune, y_tune), (x_train, y_train), (x_test, y_test) = keras_images("valid"), keras_images("test_train"), keras_images("test_heldout")
build = lambda seed: keras_training.paper_convnet(seed, cifar10.problem)
two = runs["lstm"]
keras_lstm = lambda k, m=1.0: l2l.LearnedOptimizer(two[k].meta_params, two[k].lstm_config, learning_rate=m, groups=keras_optimizer.conv_kernels)
adam_lr, adam_sweep = keras_training.tune_learning_rate(build, keras.optimizers.Adam, p.keras_adam_grid, x_tune, y_tune, p.keras_steps, p.batch_size, last=p.keras_last)
keras_multipliers = [keras_training.tune_learning_rate(build, lambda m, k=k: keras_lstm(k, m), p.keras_multiplier_grid, x_tune, y_tune,
                                                       p.keras_steps, p.batch_size, last=p.keras_last)[0] for k in seeds]
fit_runs = keras_training.compare(build, {"lstm_tuned": lambda k: keras_lstm(k, keras_multipliers[k]), "lstm": lambda k: keras_lstm(k),
                                          "adam": lambda: keras.optimizers.Adam(adam_lr)},
                                  p.meta_seeds, x_train, y_train, x_test, y_test, p.keras_steps, p.batch_size)
keras_result, keras_verdicts, endpoint = keras_training.fit_panel("keras", "CIFAR-10 ConvNet through model.fit", fit_runs, {"adam": adam_lr},
                                                                  p.keras_steps, p.keras_last)
labels = {"lstm_tuned": "LSTM, multiplier tuned (" + ", ".join(f"{m:g}" for m in keras_multipliers) + ")", "lstm": "LSTM, multiplier 1",
          "adam": f"ADAM, lr {adam_lr:g}"}
glue("keras_table", Markdown(keras_training.fit_table(fit_runs, endpoint, p.keras_last, labels).to_markdown(index=False)), display=False)
glue("keras_verdict", Markdown(keras_training.fit_sentence(keras_verdicts["lstm_tuned"], fit_runs, "lstm_tuned", "adam", p.keras_last, p.keras_steps,
                                                           "the two-LSTM optimiser at its tuned multipliers", f"tuned ADAM (lr {adam_lr:g})")),
     display=False)
keras_result.entries["lstm_tuned"]["multiplier"] = keras_multipliers
fig, ax = plt.subplots()
experiment.figure(keras_result, ax=ax)
ax.set_title("CIFAR-10 ConvNet through model.fit (bands: 95% over runs)")
plt.show()

# %% [markdown]
# ## Cost
#
# The tables give each optimiser's wall time per step of
# {glue:text}`eval_instances` network per run; the equal-wall-clock verdicts
# give each baseline the steps that fit in the LSTM's time. `make bench`
# measures a meta-iteration of this network against a plain tape reference of
# the same math (appendix).

# %% tags=["hide-input"]
panels = {name: experiment.protocol_summary(results[name]) for name in ("cifar10", "cifar5", "cifar2", "mnist_transfer", "one_lstm")}
for name, view in sub_views.items():
    panels[name]["verdicts_lstm_sub"] = {str(s): v for s, v in view.verdicts.items()}
for name, learner in [("cifar10", "lstm"), ("one_lstm", "lstm_one"), ("cifar5", "lstm_sub")]:
    panels[name]["optimisers"][learner] = {**panels[name]["optimisers"][learner], **experiment.meta_training_entry(trained[learner])}
panels["keras"] = {"optimisers": keras_result.entries, "verdicts": keras_verdicts, "architecture": "paper_convnet (Keras layers)"}
summary = chapter.finish(panels, meta_training_s=meta_seconds, segment_seconds=segment_seconds, tuning_s={n: r.tuning_s for n, r in evaluated.items()},
                         lr_grid=list(p.lr_grid), data_splits={name: split[name].name for name in split},
                         mnist_weights=[r.path for r in mnist_runs], keras_tuning={"adam": adam_sweep.to_dict("records"), "multipliers": keras_multipliers})
print(f"wrote {chapter.results_dir}/summary.json; chapter wall time {summary['wall_time_s']} s")
