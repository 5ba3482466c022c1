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
# python -m l2l.book run keras --profile smoke
# ```

# %% tags=["remove-cell"]
_names_before_parameters = set(globals())

# %% tags=["parameters"]
profile = "full"  # "full" is what the book shows; other profiles live in notebooks/profiles.yaml
pretrained = "mnist"  # which packaged optimiser to use (l2l.pretrained.names())
seeds = 3  # training runs per optimiser
steps = 300  # training steps (minibatches) per run
batch_size = 128  # examples per minibatch
train_examples = 20000  # MNIST training images the CNN trains on
adam_grid = [0.0003, 0.001, 0.003, 0.01, 0.03, 0.1]  # ADAM learning rates tried on held-out images
results_dir = "book/results/keras"  # summary.json and curves

# %% tags=["remove-cell"]
parameters = {k: globals()[k] for k in sorted(set(globals()) - _names_before_parameters) if not k.startswith("_")}

# %% tags=["hide-input"]
import os
import time

import keras
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import HTML, Markdown, display
from myst_nb import glue

import l2l
from l2l import data, evaluate, plots
from l2l.book import provenance, verdict_html, write_summary

chapter_started = time.time()
run_info = provenance()
entry = l2l.pretrained.info(pretrained)  # fails here, before any compute, for an unknown name
if seeds < 1 or steps < 1 or batch_size < 1 or not adam_grid:
    raise ValueError("need seeds, steps and batch_size >= 1 and a non-empty adam_grid")
(x_all, y_all), (x_test, y_test) = data.load_mnist()
x_train, y_train = x_all[:train_examples, :, :, None] / 255.0, y_all[:train_examples]
x_valid, y_valid = x_all[50000:55000, :, :, None] / 255.0, y_all[50000:55000]
x_test, y_test = x_test[:, :, :, None] / 255.0, y_test
os.makedirs(results_dir, exist_ok=True)
plots.style()
print(f"pretrained optimiser {pretrained!r}: trained on {entry['trained_on']}; {entry['lstm_config']}")


def cnn(seed):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([
        keras.Input((28, 28, 1)),
        keras.layers.Conv2D(8, 3, activation="relu", padding="same"), keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(16, 3, activation="relu", padding="same"), keras.layers.MaxPooling2D(),
        keras.layers.Flatten(), keras.layers.Dense(10),
    ])


class BatchLosses(keras.callbacks.Callback):
    """Each minibatch's own loss. Keras logs the running mean over the epoch,
    weighted by batch size, so each batch's loss is recovered from the
    difference of running sums."""

    def __init__(self, examples):
        super().__init__()
        self.examples = examples

    def on_train_begin(self, logs=None):
        self.losses, self.times = [], []

    def on_epoch_begin(self, epoch, logs=None):
        self.seen, self.total = 0, 0.0

    def on_train_batch_end(self, batch, logs=None):
        size = min(batch_size, self.examples - self.seen)
        self.seen += size
        total = float(logs["loss"]) * self.seen
        self.losses.append((total - self.total) / size)
        self.total = total
        self.times.append(time.perf_counter())


def train(make_optimizer, seed, x, y, n_steps):
    """(per-step training losses, seconds per step, the trained model)."""
    model = cnn(seed)
    model.compile(optimizer=make_optimizer(), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    record = BatchLosses(len(x))
    epochs = -(-n_steps * batch_size // len(x))
    model.fit(x, y, batch_size=batch_size, epochs=epochs, callbacks=[record], verbose=0, shuffle=True)
    seconds = (record.times[-1] - record.times[0]) / max(len(record.times) - 1, 1)  # the first step includes tracing
    return np.array(record.losses[:n_steps]), seconds, model


# %% [markdown]
# ## Tuning ADAM
#
# ADAM's learning rate is picked from {glue:text}`adam_grid` by the final
# training loss of a run on held-out training images; the learned optimiser
# is used as trained (its `learning_rate` multiplier left at 1).

# %% tags=["hide-input"]
tuning = []
for lr in adam_grid:
    losses, _, _ = train(lambda: keras.optimizers.Adam(lr), 1000, x_valid, y_valid, min(steps, len(x_valid) // batch_size * 4))
    tuning.append({"lr": lr, "final_loss": float(np.mean(losses[-10:]))})
tuning = pd.DataFrame(tuning)
adam_lr = float(tuning.loc[tuning.final_loss.idxmin(), "lr"])
print("chosen ADAM learning rate:", adam_lr, "(at the edge of the grid: widen it)" if adam_lr in (min(adam_grid), max(adam_grid)) else "")
display(Markdown(tuning.to_markdown(index=False)))
glue("adam_grid", ", ".join(f"{v:g}" for v in adam_grid), display=False)
glue("adam_lr", f"{adam_lr:g}", display=False)

# %% [markdown]
# ## Training the CNN
#
# {glue:text}`seeds` runs per optimiser of {glue:text}`steps` minibatches of
# {glue:text}`batch_size`; the same seed gives both optimisers the same
# initial weights and the same shuffling.

# %% tags=["hide-input"]
optimisers = {
    "lstm": lambda: l2l.LearnedOptimizer.from_pretrained(pretrained),
    "adam": lambda: keras.optimizers.Adam(adam_lr),
}
curves, seconds, accuracy, state_floats = {}, {}, {}, {}
for name, make in optimisers.items():
    runs = [train(make, seed, x_train, y_train, steps) for seed in range(seeds)]
    curves[name] = np.stack([r[0] for r in runs])[:, None, :]  # [seeds, 1 run, steps]
    seconds[name] = float(np.mean([r[1] for r in runs]))
    model = runs[0][2]
    accuracy[name] = [float(r[2].evaluate(x_test, y_test, verbose=0)[1]) for r in runs]
    params = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    optimizer_floats = sum(int(np.prod(v.shape)) for v in model.optimizer.variables) - sum(
        int(np.prod(v.shape)) for v in getattr(model.optimizer, "_meta", {}).values())
    state_floats[name] = {"parameters": params, "floats_per_parameter": optimizer_floats / params}

band = evaluate.bands(curves, range(steps))
band["step"] += 1
plots.loss_curves(band, lrs={"adam": adam_lr}, title="MNIST CNN through model.fit")
plt.show()

# curves[..., t] is the loss of step t + 1.
summary_loss = {n: {str(steps): v[str(steps - 1)]} for n, v in evaluate.summarize(curves, [steps - 1]).items()}
frame = pd.DataFrame({
    "optimiser": [plots.LABELS[n] for n in optimisers],
    f"training loss at step {steps} [95% CI]": [
        f"{summary_loss[n][str(steps)]['mean']:.3g} [{summary_loss[n][str(steps)]['ci95'][0]:.3g}, {summary_loss[n][str(steps)]['ci95'][1]:.3g}]" for n in optimisers],
    "test accuracy": [f"{100 * np.mean(accuracy[n]):.1f}%" for n in optimisers],
    "ms per step": [f"{1000 * seconds[n]:.1f}" for n in optimisers],
    "optimizer floats per parameter": [f"{state_floats[n]['floats_per_parameter']:.0f}" for n in optimisers],
})
glue("keras_table", Markdown(frame.to_markdown(index=False)), display=False)
display(Markdown(frame.to_markdown(index=False)))

lstm, adam = summary_loss["lstm"][str(steps)], summary_loss["adam"][str(steps)]
# Paired by seed: the same initial weights and shuffling for both.
_, diff, word = evaluate.against_best(curves, steps - 1, ["adam"])
keras_verdict = (
    f"After {steps} steps the learned optimiser's mean training loss is **{lstm['mean']:.3g}** against "
    f"**{adam['mean']:.3g}** for tuned ADAM (lr {adam_lr:g}); paired by seed the difference is {diff['mean']:.3g} "
    f"(95% CI {diff['ci95'][0]:.3g} to {diff['ci95'][1]:.3g}): it **{word}** ADAM here, with test accuracy "
    f"{100 * np.mean(accuracy['lstm']):.1f}% against {100 * np.mean(accuracy['adam']):.1f}%.")
glue("keras_verdict", Markdown(keras_verdict), display=False)
glue("keras_verdict_html", HTML(verdict_html(keras_verdict)), display=False)
glue("cost_ratio", f"{seconds['lstm'] / seconds['adam']:.1f}", display=False)
glue("floats_lstm", f"{state_floats['lstm']['floats_per_parameter']:.0f}", display=False)
glue("bytes_lstm", f"{4 * state_floats['lstm']['floats_per_parameter']:.0f}", display=False)
glue("floats_adam", f"{state_floats['adam']['floats_per_parameter']:.0f}", display=False)
for name in ["seeds", "steps", "batch_size"]:
    glue(name, parameters[name], display=False)

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
panels = {"cnn": {"optimisers": {
    name: {"lr": adam_lr if name == "adam" else None, "loss": summary_loss[name],
           "test_accuracy": accuracy[name], "ms_per_step": 1000 * seconds[name], **state_floats[name]}
    for name in optimisers}}}
pd.DataFrame([{"optimiser": n, "seed": s, "step": t + 1, "loss": curves[n][s, 0, t]}
              for n in curves for s in range(seeds) for t in range(steps)]).to_csv(
    os.path.join(results_dir, "curves.csv"), index=False, float_format="%.6g")
summary = write_summary(results_dir, "keras", profile, parameters, panels, wall_time_s=round(time.time() - chapter_started, 1),
                        info=run_info, pretrained=entry, adam_tuning=tuning.to_dict("records"))
print(f"wrote {results_dir}/summary.json; chapter wall time {summary['wall_time_s']} s")
