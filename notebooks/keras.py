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
# MLP for 100 steps), against ADAM with its learning rate tuned.
#
# ```bash
# python -m l2l.book run keras --profile smoke   # into _build/smoke/
# ```

# %% tags=["parameters"]
profile = "full"  # every parameter is a field of l2l.chapters.Keras; the runner sets them all

# %% tags=["hide-input"]
import keras
import matplotlib.pyplot as plt
from IPython.display import HTML, Markdown, display
from myst_nb import glue

import l2l
from l2l import chapters, data, experiment, keras_training

p = chapters.Keras.from_namespace(globals())
chapter = experiment.Chapter("keras", p)
entry = l2l.pretrained.info(p.pretrained)  # fails here, before any compute, for an unknown name
(x_all, y_all), (x_test, y_test) = data.load_mnist()
x_train, y_train = x_all[:p.train_examples, :, :, None] / 255.0, y_all[:p.train_examples]
x_valid, y_valid = x_all[50000:55000, :, :, None] / 255.0, y_all[50000:55000]
x_test = x_test[:, :, :, None] / 255.0
print(f"pretrained optimiser {p.pretrained!r}: trained on {entry['trained_on']}; {entry['lstm_config']}")


def cnn(seed):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([
        keras.Input((28, 28, 1)),
        keras.layers.Conv2D(8, 3, activation="relu", padding="same"), keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(16, 3, activation="relu", padding="same"), keras.layers.MaxPooling2D(),
        keras.layers.Flatten(), keras.layers.Dense(10),
    ])


# %% [markdown]
# ## Tuning ADAM
#
# ADAM's learning rate is picked from {glue:text}`adam_grid_text` by the final
# training loss of a run on held-out training images. The learned optimiser
# is used as `from_pretrained` gives it, at its packaged default step
# multiplier (`learning_rate`) of {glue:text}`lstm_lr`: {glue:text}`lstm_lr_how`
# It was not tuned on this network.

# %% tags=["hide-input"]
adam_lr, tuning = keras_training.tune_learning_rate(cnn, keras.optimizers.Adam, p.adam_grid, x_valid, y_valid,
                                                    min(p.steps, len(x_valid) // p.batch_size * 4), p.batch_size)
print("chosen ADAM learning rate:", adam_lr, "(at the edge of the grid: widen it)" if adam_lr in (min(p.adam_grid), max(p.adam_grid)) else "")
display(Markdown(tuning.to_markdown(index=False)))
glue("adam_grid_text", ", ".join(f"{v:g}" for v in p.adam_grid), display=False)
glue("adam_lr", f"{adam_lr:g}", display=False)
glue("lstm_lr", f"{l2l.pretrained.default_learning_rate(p.pretrained):g}", display=False)
glue("lstm_lr_how", entry.get("keras_default", {}).get("chosen_by", "none was calibrated, so the update is applied as trained") + ".", display=False)

# %% [markdown]
# ## Training the CNN
#
# {glue:text}`seeds` runs per optimiser of {glue:text}`steps` minibatches of
# {glue:text}`batch_size`; the same seed gives both optimisers the same
# initial weights and the same shuffling.

# %% tags=["hide-input"]
optimisers = {"lstm": lambda: l2l.LearnedOptimizer.from_pretrained(p.pretrained), "adam": lambda: keras.optimizers.Adam(adam_lr)}
runs = keras_training.compare(cnn, optimisers, p.seeds, x_train, y_train, x_test, y_test, p.steps, p.batch_size)
result = keras_training.panel_result("cnn", "MNIST CNN through model.fit", runs, {"adam": adam_lr}, p.steps)
experiment.figure(result, grid=range(1, p.steps + 1))
plt.show()
floats = {n: e["floats_per_parameter"] for n, e in result.entries.items()}
table = experiment.results_table(result, {"optimizer floats per parameter": [f"{v:.0f}" for v in floats.values()]}).to_markdown(index=False)
glue("keras_table", Markdown(table), display=False)
display(Markdown(table))
keras_verdict = experiment.verdict(result, p.steps, "seeds (same initial weights and shuffling)")
glue("keras_verdict", Markdown(keras_verdict), display=False)
glue("keras_verdict_html", HTML(experiment.verdict_html(keras_verdict)), display=False)
glue("cost_ratio", f"{result.entries['lstm']['ms_per_step'] / result.entries['adam']['ms_per_step']:.1f}", display=False)
glue("floats_lstm", f"{floats['lstm']:.0f}", display=False)
glue("bytes_lstm", f"{4 * floats['lstm']:.0f}", display=False)
glue("floats_adam", f"{floats['adam']:.0f}", display=False)
for name, value in p.as_dict().items():
    glue(name, value, display=False)
# %% [markdown]
# {glue:md}`keras_verdict`
#
# ```{glue:md} keras_table
# ```
#
# ## What it costs
#
# A training step with the learned optimiser took {glue:text}`cost_ratio`
# times as long as with ADAM. Its memory cost is the LSTM state: a hidden
# and a cell vector per layer for every parameter, {glue:text}`floats_lstm`
# floats ({glue:text}`bytes_lstm` bytes in float32) per parameter against
# {glue:text}`floats_adam` for ADAM (the step counter and learning rate
# included).

# %% tags=["hide-input"]
experiment.curves_frame({"cnn": result}, list(range(p.seeds))).to_csv(chapter.path("curves.csv"), index=False, float_format="%.6g")
summary = chapter.finish({"cnn": {"optimisers": result.entries}}, pretrained=entry, adam_tuning=tuning.to_dict("records"))
print(f"wrote {chapter.results_dir}/summary.json; chapter wall time {summary['wall_time_s']} s")
