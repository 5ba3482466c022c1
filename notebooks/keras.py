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
# # A learned optimiser in Keras
#
# The optimiser meta-trained in the MNIST chapter ships with the package, and
# one line puts it to work on any Keras model:
#
# ```python
# import l2l
# model.compile(optimizer=l2l.LearnedOptimizer.from_pretrained("mnist"), loss=...)
# ```
#
# Here it trains a small convolutional network on MNIST through `model.fit`,
# a model it never saw during meta-training (it only ever trained a sigmoid
# MLP for 100 steps), against ADAM. Both are tuned the same way: ADAM's
# learning rate and the learned optimiser's step multiplier (its
# `learning_rate`) each over a half-decade grid, by the mean training loss
# over the last {glue:text}`last` steps on tuning images. Then the chapter
# asks why the result is what it is: the same optimiser trains the MNIST
# chapter's own MLP through `model.fit` (does Keras change anything?), and the
# size of each layer's updates shows what it does to a CNN.
#
# **Data.** The MNIST chapter's split: tuning on training images
# 40,000-49,999, training on images 50,000-59,999, test accuracy on the 10,000
# official test images.
#
# ```bash
# python -m l2l.book run keras --profile smoke   # into _build/smoke/
# ```

# %% tags=["parameters"]
profile = "full"  # every parameter is a field of l2l.chapters.Keras; the runner sets them all

# %% tags=["hide-input"]
import keras
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import HTML, Markdown, display
from myst_nb import glue

import l2l
from l2l import chapters, data, experiment, keras_training, plots, recipes, stats

p = chapters.Keras.from_namespace(globals())
chapter = experiment.Chapter("keras", p)
entry = l2l.pretrained.info(p.pretrained)  # fails here, before any compute, for an unknown name
split = data.mnist_splits()
images = recipes.keras_images(split, (28, 28, 1))
(x_tune, y_tune), (x_train, y_train), (x_test, y_test) = images("valid"), images("test_train"), images("test_heldout")
print(f"pretrained optimiser {p.pretrained!r}: trained on {entry['trained_on']}; {entry['lstm_config']}")
cnn = keras_training.small_cnn  # 8 and 16 channels, 3x3, ReLU, max pooling, a linear layer
learned = lambda m: l2l.LearnedOptimizer.from_pretrained(p.pretrained, learning_rate=m)
for name, value in p.as_dict().items():
    glue(name, value, display=False)

# %% [markdown]
# ## Tuning both the same way
#
# The grids (ADAM: {glue:text}`adam_grid_text`; the learned optimiser's
# multiplier: {glue:text}`multiplier_grid_text`), one run of
# {glue:text}`steps` steps per value on the tuning images. The packaged default
# multiplier, {glue:text}`lstm_default`, was calibrated on other held-out
# models ({glue:text}`lstm_default_how`); it is shown beside the tuned one.

# %% tags=["hide-input"]
tune_steps = min(p.steps, len(x_tune) // p.batch_size * 4)
adam_lr, adam_sweep = keras_training.tune_learning_rate(cnn, keras.optimizers.Adam, p.adam_grid, x_tune, y_tune, tune_steps, p.batch_size, last=p.last)
multiplier, lstm_sweep = keras_training.tune_learning_rate(cnn, learned, p.multiplier_grid, x_tune, y_tune, tune_steps, p.batch_size, last=p.last)
ax = plots.rate_sweeps({"adam": (adam_sweep, adam_lr, "ADAM (learning rate)"), "lstm": (lstm_sweep, multiplier, "LSTM (multiplier)")},
                      "learning rate (ADAM) or step multiplier (LSTM)", f"mean loss, last {p.last} of {tune_steps} steps", ax=plt.subplots()[1])
ax.set_title("The multiplier sweep beside ADAM's (tuning images; circled: chosen)")
plt.show()
edge = [n for n, v, grid in [("ADAM", adam_lr, p.adam_grid), ("LSTM", multiplier, p.multiplier_grid)] if v in (min(grid), max(grid))]
print("chosen: ADAM lr", adam_lr, "| LSTM multiplier", multiplier, "| at the grid's edge:", edge or "none")
glue("adam_grid_text", ", ".join(f"{v:g}" for v in p.adam_grid), display=False)
glue("multiplier_grid_text", ", ".join(f"{v:g}" for v in p.multiplier_grid), display=False)
glue("adam_lr", f"{adam_lr:g}", display=False)
glue("lstm_multiplier", f"{multiplier:g}", display=False)
glue("lstm_default", f"{l2l.pretrained.default_learning_rate(p.pretrained):g}", display=False)
glue("lstm_default_how", entry.get("keras_default", {}).get("chosen_by", "none was calibrated, so the update is applied as trained"), display=False)

# %% [markdown]
# ## Training the CNN
#
# {glue:text}`seeds` runs per optimiser of {glue:text}`steps` minibatches of
# {glue:text}`batch_size`; seed $s$ gives every optimiser the same initial
# weights and the same shuffling, so the runs pair by seed.

# %% tags=["hide-input"]
optimisers = {"lstm_tuned": lambda: learned(multiplier), "lstm": lambda: l2l.LearnedOptimizer.from_pretrained(p.pretrained),
              "adam": lambda: keras.optimizers.Adam(adam_lr)}
runs = keras_training.compare(cnn, optimisers, p.seeds, x_train, y_train, x_test, y_test, p.steps, p.batch_size)
result, verdicts, endpoint = keras_training.fit_panel("cnn", "MNIST CNN through model.fit", runs, {"adam": adam_lr}, p.steps, p.last)
labels = {"lstm_tuned": f"LSTM, multiplier {multiplier:g} (tuned)", "lstm": "LSTM, packaged default multiplier", "adam": f"ADAM, lr {adam_lr:g}"}
glue("keras_table", Markdown(keras_training.fit_table(runs, endpoint, p.last, labels).to_markdown(index=False)), display=False)
keras_verdict = keras_training.fit_sentence(verdicts["lstm_tuned"], runs, "lstm_tuned", "adam", p.last, p.steps,
                                            f"the learned optimiser at its tuned multiplier ({multiplier:g})", f"tuned ADAM (lr {adam_lr:g})")
d, accuracy = verdicts["lstm"], {n: np.mean(r["accuracy"]) for n, r in runs.items()}
default_sentence = (f"At the packaged default multiplier the difference is {d['mean']:.3g} (95% CI {d['ci95'][0]:.3g} to {d['ci95'][1]:.3g}; "
                    f"lower in {d['wins']} of {d['runs']} seeds; test accuracy {100 * accuracy['lstm']:.1f}%).")
glue("keras_verdict", Markdown(keras_verdict), display=False)
glue("keras_verdict_html", HTML(experiment.verdict_html(keras_verdict)), display=False)
glue("keras_default_sentence", Markdown(default_sentence), display=False)
fig, ax = plt.subplots()
plots.loss_curves(stats.run_bands({n: np.concatenate([np.full((p.seeds, 1, 1), np.nan), r["curves"]], axis=2) for n, r in runs.items()},
                                  range(1, p.steps + 1)), ax=ax, title="MNIST CNN through model.fit (bands: 95% over seeds)")
plt.show()

# %% [markdown]
# {glue:md}`keras_verdict` {glue:md}`keras_default_sentence`
#
# ```{glue:md} keras_table
# ```
#
# ## Why: the same optimiser on the MNIST chapter's MLP, through Keras
#
# If `model.fit` changed what the optimiser does, the CNN result would say
# little about the optimiser. The package's tests check that a fit step is the
# optimiser's pure update to float precision; here the packaged optimiser, at
# multiplier 1 as meta-trained, trains the MNIST chapter's MLP (784-20-10
# sigmoid, weights $\sim N(0, 0.01^2)$) through `model.fit` on the MNIST
# chapter's test-time images, {glue:text}`seeds` seeds. Keras draws its
# minibatches by shuffling epochs where the chapter samples them, so the two
# agree in distribution, not minibatch by minibatch.
#
# {glue:md}`mlp_sentence`

# %% tags=["hide-input"]
mlp_runs = keras_training.compare(keras_training.paper_mlp, {"lstm": lambda: l2l.LearnedOptimizer.from_pretrained(p.pretrained, learning_rate=1.0)},
                                  p.seeds, x_train, y_train, x_test, y_test, p.mlp_steps + 1, p.batch_size)["lstm"]
mlp_steps = sorted({min(100, p.mlp_steps), p.mlp_steps})
fit_at = {s: stats.over_runs(mlp_runs["curves"][:, :, s]) for s in mlp_steps}  # Keras' loss of batch s is the loss after s updates
seed = int(entry["training"]["seed"]) if "training" in entry else None
chapter_at = keras_training.chapter_losses(pd.read_csv("book/results/mnist/curves.csv"), seed, mlp_steps) if seed is not None else {}
glue("mlp_sentence", Markdown(keras_training.agreement_sentence(fit_at, chapter_at, seed)), display=False)

# %% [markdown]
# ## Why: the size of each layer's updates
#
# For one seed, each layer's update relative to its weights,
# $\lVert \Delta w\rVert / \lVert w\rVert$, at every step of the CNN runs above
# (kernels only; a ratio near $10^{-3}$ per step is the usual rule of thumb).
#
# {glue:md}`ratio_sentence`

# %% tags=["hide-input"]
ratios = {n: keras_training.update_ratios(cnn, optimisers[n], 0, x_train, y_train, p.steps, p.batch_size) for n in ("lstm_tuned", "adam")}
plots.update_ratio_panels(ratios, p.steps)
plt.show()
summary_ratios = keras_training.layer_ratio_medians(ratios, p.steps)
ratio_table = pd.DataFrame(summary_ratios).rename(columns={"lstm_tuned": "LSTM (tuned)", "adam": "ADAM"})
display(Markdown(ratio_table.to_markdown(floatfmt=".2e")))
glue("ratio_sentence", Markdown(keras_training.ratio_sentence(summary_ratios)), display=False)

# %% [markdown]
# ## What it costs
#
# A training step with the learned optimiser took {glue:text}`cost_ratio`
# times as long as with ADAM. Its memory cost is the LSTM state: a hidden
# and a cell vector per layer for every parameter, {glue:text}`floats_lstm`
# floats ({glue:text}`bytes_lstm` bytes in float32) per parameter against
# {glue:text}`floats_adam` for ADAM (the step counter and learning rate
# included).

# %% tags=["hide-input"]
floats = {n: r["floats_per_parameter"] for n, r in runs.items()}
glue("cost_ratio", f"{runs['lstm_tuned']['seconds'] / runs['adam']['seconds']:.1f}", display=False)
glue("floats_lstm", f"{floats['lstm_tuned']:.0f}", display=False)
glue("bytes_lstm", f"{4 * floats['lstm_tuned']:.0f}", display=False)
glue("floats_adam", f"{floats['adam']:.0f}", display=False)
result.entries["lstm_tuned"]["multiplier"] = multiplier
experiment.curves_frame({"cnn": result}, list(range(p.seeds))).to_csv(chapter.path("curves.csv"), index=False, float_format="%.6g")
summary = chapter.finish({"cnn": {"optimisers": result.entries, "verdicts": verdicts},
                          "mlp_through_fit": {"optimisers": {"lstm": {"lr": None, "loss": {str(s): fit_at[s] for s in mlp_steps}}},
                                              "mnist_chapter_run": seed, "mnist_chapter_loss": chapter_at}},
                         pretrained=entry, adam_tuning=adam_sweep.to_dict("records"), multiplier_tuning=lstm_sweep.to_dict("records"),
                         update_ratios=summary_ratios)
print(f"wrote {chapter.results_dir}/summary.json; chapter wall time {summary['wall_time_s']} s")
