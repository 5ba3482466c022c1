"""Training Keras models for the book: per-minibatch losses, learning-rate tuning, optimiser state size.

    losses, seconds, model = keras_training.train(build, lambda: keras.optimizers.Adam(1e-3), seed, x, y, steps=300, batch_size=128)
    lr, table = keras_training.tune_learning_rate(build, keras.optimizers.Adam, grid, x_valid, y_valid, steps, batch_size)
    keras_training.state_floats_per_parameter(model)   # optimiser state floats per trainable parameter
"""

import time

import keras
import numpy as np
import pandas as pd


class BatchLosses(keras.callbacks.Callback):
    """Each minibatch's own loss and end time.

    Keras logs the running mean over the epoch, weighted by batch size, so
    each batch's loss is recovered from the difference of running sums.
    """

    def __init__(self, examples, batch_size):
        super().__init__()
        self.examples, self.batch_size = examples, batch_size

    def on_train_begin(self, logs=None):
        self.losses, self.times = [], []

    def on_epoch_begin(self, epoch, logs=None):
        self.seen, self.total = 0, 0.0

    def on_train_batch_end(self, batch, logs=None):
        size = min(self.batch_size, self.examples - self.seen)
        self.seen += size
        total = float(logs["loss"]) * self.seen
        self.losses.append((total - self.total) / size)
        self.total = total
        self.times.append(time.perf_counter())


def train(build, make_optimizer, seed, x, y, steps, batch_size, loss=None):
    """(per-step training losses [steps], seconds per step, the trained model).

    build(seed) returns an uncompiled model; the same seed gives every
    optimiser the same initial weights and the same shuffling.
    """
    model = build(seed)
    loss = loss or keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(optimizer=make_optimizer(), loss=loss, metrics=["accuracy"])
    record = BatchLosses(len(x), batch_size)
    epochs = -(-steps * batch_size // len(x))
    model.fit(x, y, batch_size=batch_size, epochs=epochs, callbacks=[record], verbose=0, shuffle=True)
    seconds = (record.times[-1] - record.times[0]) / max(len(record.times) - 1, 1)  # the first step includes tracing
    return np.array(record.losses[:steps]), seconds, model


def tune_learning_rate(build, optimizer_class, grid, x, y, steps, batch_size, seed=1000, last=10):
    """The rate in `grid` with the lowest mean loss over the last `last` steps of a run on (x, y).

    Returns (chosen rate, table of lr, final_loss). Tune on held-out data, not the test images.
    """
    rows = []
    for lr in grid:
        losses, _, _ = train(build, lambda lr=lr: optimizer_class(lr), seed, x, y, steps, batch_size)
        rows.append({"lr": lr, "final_loss": float(np.mean(losses[-last:]))})
    table = pd.DataFrame(rows)
    return float(table.loc[table.final_loss.idxmin(), "lr"]), table


def state_floats_per_parameter(model):
    """Floats of optimiser state per trainable parameter: the optimiser's variables less a learned
    optimiser's own meta-parameters (they are the optimiser, not per-parameter state)."""
    params = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    optimizer = model.optimizer
    meta = sum(int(np.prod(v.shape)) for v in getattr(optimizer, "meta_variables", []))
    return (sum(int(np.prod(v.shape)) for v in optimizer.variables) - meta) / params


def compare(build, optimisers, seeds, x, y, x_test, y_test, steps, batch_size):
    """Trains build(seed) with every optimiser factory for each seed.

    Returns name -> {"curves": [seeds, 1, steps] losses (index t is step t + 1),
    "seconds": per step, "accuracy": per seed on (x_test, y_test),
    "floats_per_parameter": optimiser state size}.
    """
    out = {}
    for name, make in optimisers.items():
        runs = [train(build, make, seed, x, y, steps, batch_size) for seed in range(seeds)]
        out[name] = {
            "curves": np.stack([r[0] for r in runs])[:, None, :],
            "seconds": float(np.mean([r[1] for r in runs])),
            "accuracy": [float(r[2].evaluate(x_test, y_test, verbose=0)[1]) for r in runs],
            "floats_per_parameter": state_floats_per_parameter(runs[0][2]),
        }
    return out
