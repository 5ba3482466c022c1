"""Training Keras models for the book: per-minibatch losses, learning-rate tuning, optimiser state size.

    losses, seconds, model = keras_training.train(build, lambda: keras.optimizers.Adam(1e-3), seed, x, y, steps=300, batch_size=128)
    lr, table = keras_training.tune_learning_rate(build, keras.optimizers.Adam, grid, x_valid, y_valid, steps, batch_size)
    keras_training.state_floats_per_parameter(model)   # optimiser state floats per trainable parameter
"""

import functools
import inspect
import time

import keras
import numpy as np
import pandas as pd
import tensorflow as tf


class BatchLosses(keras.callbacks.Callback):
    """Each minibatch's own loss and end time.

    Keras logs the running mean over the epoch, weighted by batch size, so
    each batch's loss is recovered from the difference of running sums.
    """

    def __init__(self, examples, batch_size, steps=None):
        super().__init__()
        self.examples, self.batch_size, self.steps = examples, batch_size, steps

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
        if self.steps is not None and len(self.losses) >= self.steps:
            # fit runs whole epochs: without the stop a 200-step run on 10,000 images took 237 steps, and the
            # accuracy reported "at step 200" was read from the model after step 237.
            self.model.stop_training = True


def train(build, make_optimizer, seed, x, y, steps, batch_size, loss=None):
    """(per-step training losses [steps], seconds per step, the trained model).

    build(seed) returns an uncompiled model; the same seed gives every
    optimiser the same initial weights and the same shuffling. Training stops
    after `steps` minibatches, mid-epoch if need be: the returned model is the
    one after step `steps`.
    """
    model = build(seed)
    loss = loss or keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(optimizer=make_optimizer(), loss=loss, metrics=["accuracy"])
    record = BatchLosses(len(x), batch_size, steps)
    epochs = -(-steps * batch_size // len(x))
    model.fit(x, y, batch_size=batch_size, epochs=epochs, callbacks=[record], verbose=0, shuffle=True)
    seconds = (record.times[-1] - record.times[0]) / max(len(record.times) - 1, 1)  # the first step includes tracing
    return np.array(record.losses[:steps]), seconds, model


def tune_learning_rate(build, optimizer_class, grid, x, y, steps, batch_size, seed=1000, last=10):
    """The rate in `grid` with the lowest mean loss over the last `last` steps of a run on (x, y).

    optimizer_class: anything that takes the rate, e.g. keras.optimizers.Adam, or
    `lambda m: l2l.LearnedOptimizer.from_pretrained("mnist", learning_rate=m)` for a learned
    optimiser's step multiplier, tuned the same way. A run that diverges scores inf.
    Returns (chosen rate, table of lr, final_loss). Tune on held-out data, not the test images.
    """
    rows = []
    for lr in grid:
        losses, _, _ = train(build, lambda lr=lr: optimizer_class(lr), seed, x, y, steps, batch_size)
        rows.append({"lr": lr, "final_loss": float(np.mean(losses[-last:])) if np.all(np.isfinite(losses)) else float("inf")})
    table = pd.DataFrame(rows)
    return float(table.loc[table.final_loss.idxmin(), "lr"]), table


def state_floats_per_parameter(model):
    """Floats of optimiser state per trainable parameter: the optimiser's variables less a learned
    optimiser's own meta-parameters (they are the optimiser, not per-parameter state)."""
    params = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    optimizer = model.optimizer
    meta = sum(int(np.prod(v.shape)) for v in getattr(optimizer, "meta_variables", []))
    return (sum(int(np.prod(v.shape)) for v in optimizer.variables) - meta) / params


class UpdateRatios(keras.callbacks.Callback):
    """Per trainable variable and step, the size of the update relative to the weights: ||dw|| / ||w||.

    A diagnostic of what an optimiser does to each layer (about 1e-3 per step
    is the usual rule of thumb for a healthy rate; much larger means the layer
    is being thrown around, much smaller that it barely moves). `ratios` is
    name -> list over steps, names like "conv2d1/kernel" (the second Conv2D
    layer's kernel), the same for every model built the same way.
    """

    def on_train_begin(self, logs=None):
        counts, self.names = {}, []
        for layer in self.model.layers:
            if layer.trainable_weights:
                kind = type(layer).__name__.lower()
                index = counts[kind] = counts.get(kind, -1) + 1
                self.names += [f"{kind}{index}/{w.name}" for w in layer.trainable_weights]
        self.variables = [w for layer in self.model.layers for w in layer.trainable_weights]
        self.ratios = {n: [] for n in self.names}

    def on_train_batch_begin(self, batch, logs=None):
        self._before = [np.array(v.numpy()) for v in self.variables]

    def on_train_batch_end(self, batch, logs=None):
        for name, v, before in zip(self.names, self.variables, self._before):
            after = np.asarray(v.numpy())
            self.ratios[name].append(float(np.linalg.norm(after - before) / max(np.linalg.norm(before), 1e-12)))


def update_ratios(build, make_optimizer, seed, x, y, steps, batch_size):
    """UpdateRatios of one run of build(seed): variable name ("conv2d0/kernel") -> [steps] of ||dw|| / ||w||."""
    model = build(seed)
    model.compile(optimizer=make_optimizer(), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    watch = UpdateRatios()
    model.fit(x, y, batch_size=batch_size, epochs=-(-steps * batch_size // len(x)), callbacks=[watch], verbose=0, shuffle=True)
    return {name: np.asarray(r[:steps]) for name, r in watch.ratios.items()}


def layer_ratio_medians(ratios, steps):
    """optimiser -> layer -> median of ||update|| / ||weights|| over the second half of `steps`, for every kernel
    (ratios: optimiser -> update_ratios() of its run)."""
    kernels = [k for k in next(iter(ratios.values())) if k.endswith("kernel")]
    return {name: {k.split("/")[0]: float(np.median(ratios[name][k][steps // 2:])) for k in kernels} for name in ratios}


def ratio_sentence(medians, ours="lstm_tuned", reference="adam"):
    """How the two optimisers' relative updates spread over the layers (layer_ratio_medians), and ours over the reference's per layer."""
    spread = {n: max(v.values()) / min(v.values()) for n, v in medians.items()}
    per_layer = ", ".join(f"{medians[ours][layer] / medians[reference][layer]:.2g}x ADAM's on {layer}" for layer in medians[reference])
    return (f"Over the second half of the run (median per layer), the learned optimiser's relative updates span a factor of "
            f"{spread[ours]:.1f} between its largest and smallest layer, ADAM's a factor of {spread[reference]:.1f}; per layer, the "
            f"LSTM's updates are {per_layer}.")


def chapter_losses(curves, seed, steps, panel="base", optimiser="lstm"):
    """step -> loss of one meta-training run in a chapter's curves.csv frame (the mean over its test networks);
    {} where that run is not in the frame."""
    own = curves[(curves.panel == panel) & (curves.optimiser == optimiser) & (curves.seed == seed)]
    return {s: float(own[own.step == s].loss.iloc[0]) for s in steps} if len(own) else {}


def agreement_sentence(fit_at, chapter_at, seed):
    """Whether model.fit reproduces the MNIST chapter's curve of the same weights: fit_at step -> over_runs
    entry of the fit runs' minibatch loss, chapter_at step -> the chapter's loss of its run `seed` (chapter_losses)."""
    if not chapter_at:
        return "The MNIST chapter's curves for this optimiser's run are not in book/results/mnist/curves.csv, so there is nothing to compare with."
    sentence = " ".join(
        f"At step {s} the fit runs' minibatch loss is {fit_at[s]['mean']:.3g} (95% CI {fit_at[s]['ci95'][0]:.3g} to {fit_at[s]['ci95'][1]:.3g} over "
        f"{fit_at[s]['runs']} seeds); in the MNIST chapter the same weights (its run {seed}) reach {chapter_at[s]:.3g} "
        "(the mean over that run's test MLPs)." for s in fit_at)
    agree = all(fit_at[s]["ci95"][0] <= chapter_at[s] <= fit_at[s]["ci95"][1] for s in fit_at)
    return sentence + " " + ("Both agree within the interval: Keras does not change the optimiser." if agree else
                             "They differ by more than the interval: see the minibatch note above, and compare the curves below.")


def last_mean(curves, last=20):
    """Per seed, the mean training loss over the last `last` steps of compare()'s curves [seeds, 1, steps]: [seeds, 1]."""
    return np.asarray(curves, np.float64)[:, :, -last:].mean(axis=-1)


def paper_mlp(seed, hidden=20, init_std=0.01):
    """The MNIST chapter's MLP (784-20-10 sigmoid, weights and biases ~ N(0, 0.01^2)) as a Keras model."""
    keras.utils.set_random_seed(seed)
    init = keras.initializers.RandomNormal(stddev=init_std, seed=seed)
    return keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(),
                             keras.layers.Dense(hidden, activation="sigmoid", kernel_initializer=init, bias_initializer=init),
                             keras.layers.Dense(10, kernel_initializer=init, bias_initializer=init)])



def paper_convnet(seed, problem):
    """The CIFAR chapter's ConvNet (l2l.problems.ConvNet `problem`: its channels, kernel, hidden units,
    classes and epsilon) as a Keras model, every weight ~ N(0, init_std^2) as there. Layer for layer:
    Conv2D without bias, BatchNormalization with an offset and no scale (batch statistics in training),
    ReLU, 2x2 max pooling; Dense without bias, the same normalisation, ReLU; Dense to the classes.
    Training never reads the moving statistics; testing does, and their momentum of 0.9 (Keras: 0.99)
    lets them follow the last few minibatches of a run of a few hundred steps."""
    keras.utils.set_random_seed(seed)
    init = lambda: keras.initializers.RandomNormal(stddev=problem.init_std, seed=seed)
    norm = lambda: keras.layers.BatchNormalization(momentum=0.9, scale=False, epsilon=problem.epsilon, beta_initializer=init())
    layers = [keras.Input(problem.image_shape)]
    for c in problem.channels:
        layers += [keras.layers.Conv2D(c, problem.kernel, padding="same", use_bias=False, kernel_initializer=init()), norm(),
                   keras.layers.ReLU(), keras.layers.MaxPooling2D()]
    layers += [keras.layers.Flatten(), keras.layers.Dense(problem.hidden, use_bias=False, kernel_initializer=init()), norm(), keras.layers.ReLU(),
               keras.layers.Dense(problem.classes, kernel_initializer=init(), bias_initializer=init())]
    return keras.Sequential(layers)


def set_convnet_weights(model, problem, flat):
    """Puts one instance's flat ConvNet parameters [dim] into paper_convnet's model (moving statistics reset)."""
    w = {k: v.numpy() for k, v in problem.unflatten(tf.convert_to_tensor(flat, tf.float32)).items()}
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    offsets = [f"conv{i}/offset" for i in range(len(convs))] + ["dense/offset"]
    for i, conv in enumerate(convs):
        conv.set_weights([w[f"conv{i}/kernel"]])
    for layer, name in zip(norms, offsets):
        layer.set_weights([w[name], np.zeros_like(w[name]), np.ones_like(w[name])])
    dense[0].set_weights([w["dense/kernel"]])
    dense[1].set_weights([w["out/kernel"], w["out/bias"]])

def small_cnn(seed, input_shape=(28, 28, 1), channels=(8, 16)):
    """Two 3x3 ReLU convolutions with 2x2 max pooling, then a linear layer to 10 classes."""
    keras.utils.set_random_seed(seed)
    layers = [keras.Input(input_shape)]
    for c in channels:
        layers += [keras.layers.Conv2D(c, 3, activation="relu", padding="same"), keras.layers.MaxPooling2D()]
    return keras.Sequential(layers + [keras.layers.Flatten(), keras.layers.Dense(10)])


def _for_seed(make, seed):
    """A factory that takes the seed (one required argument) gets it, so that seed k can use learned run k."""
    required = [q for q in inspect.signature(make).parameters.values() if q.default is q.empty and q.kind in (q.POSITIONAL_ONLY, q.POSITIONAL_OR_KEYWORD)]
    return (lambda: make(seed)) if required else make


def compare(build, optimisers, seeds, x, y, x_test, y_test, steps, batch_size):
    """Trains build(seed) with every optimiser factory for each seed; a factory that takes an argument gets the
    seed (a learned optimiser's run k then trains seed k: the run is the unit of replication).

    Returns name -> {"curves": [seeds, 1, steps] losses (index t is step t + 1),
    "seconds": per step, "accuracy": per seed on (x_test, y_test),
    "floats_per_parameter": optimiser state size}.
    """
    out = {}
    for name, make in optimisers.items():
        runs = [train(build, _for_seed(make, seed), seed, x, y, steps, batch_size) for seed in range(seeds)]
        out[name] = {
            "curves": np.stack([r[0] for r in runs])[:, None, :],
            "seconds": float(np.mean([r[1] for r in runs])),
            "accuracy": [float(r[2].evaluate(x_test, y_test, verbose=0)[1]) for r in runs],
            "floats_per_parameter": state_floats_per_parameter(runs[0][2]),
        }
    return out


# -- held-out Keras models: where a packaged optimiser's default step multiplier is chosen ---------
#
# None of these is a model a chapter tests on (the Keras chapter's CNN has 8 and 16 channels and no
# dense hidden layer; the MNIST chapter's MLPs have 20 sigmoid units).

def mnist_mlp(seed):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(), keras.layers.Dense(128, activation="relu"), keras.layers.Dense(10)])


def mnist_convnet(seed):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([
        keras.Input((28, 28, 1)),
        keras.layers.Conv2D(16, 3, activation="relu"), keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(32, 3, activation="relu"), keras.layers.MaxPooling2D(),
        keras.layers.Flatten(), keras.layers.Dense(64, activation="relu"), keras.layers.Dense(10),
    ])


def cifar_cnn(seed):
    return small_cnn(seed, (32, 32, 3), (16, 32))


HELD_OUT_MODELS = {"mnist_mlp": mnist_mlp, "mnist_convnet": mnist_convnet, "cifar_cnn": cifar_cnn}


@functools.lru_cache(maxsize=4)  # calibrate and the benchmark ask for the same data for every setting they try
def held_out_data(name, examples=10000):
    """(x_train, y_train, x_test, y_test) for a held-out model: training images the chapters do not
    tune on (MNIST train 20,000-29,999; CIFAR-10 data_batch_1) and the official test images."""
    from l2l import data

    if name.startswith("mnist"):
        (x, y), (tx, ty) = data.load_mnist()
        return x[20000:20000 + examples, :, :, None] / 255.0, y[20000:20000 + examples], tx[:, :, :, None] / 255.0, ty
    (x, y), (tx, ty) = data.load_cifar10()
    return x[:examples] / 255.0, y[:examples, 0], tx / 255.0, ty[:, 0]


def final_losses(make_optimizer, models=HELD_OUT_MODELS, steps=200, batch_size=128, seeds=(0,), examples=10000):
    """model -> (training loss over the last 20 steps, test loss) after `steps` minibatches, mean over seeds."""
    out = {}
    for name, build in models.items():
        x, y, tx, ty = held_out_data(name, examples)
        train_losses, test_losses = [], []
        for seed in seeds:
            losses, _, model = train(build, make_optimizer, seed, x, y, steps, batch_size)
            train_losses.append(float(np.mean(losses[-20:])) if np.all(np.isfinite(losses)) else float("inf"))
            test = float(model.evaluate(tx, ty, verbose=0)[0])
            test_losses.append(test if np.isfinite(test) else float("inf"))
        out[name] = (float(np.mean(train_losses)), float(np.mean(test_losses)))
    return out


class LossWatch(keras.callbacks.Callback):
    """An optional safeguard: stops training early when the loss diverges or stalls, and says what to try.

        model.fit(x, y, callbacks=[l2l.keras_training.LossWatch()])

    After `warmup` batches it compares the mean of the last `window` batch
    losses with the first batch's loss (the initial weights'): above `diverge`
    times it (or not finite) is divergence, above `stall` times it is a stall.
    The verdict is kept in `self.verdict` and printed.
    """

    def __init__(self, warmup=50, window=10, diverge=2.0, stall=0.95, stop=True):
        super().__init__()
        self.warmup, self.window, self.diverge, self.stall, self.stop = warmup, window, diverge, stall, stop

    def on_train_begin(self, logs=None):
        self.losses, self.verdict, self.first = [], None, None

    def on_epoch_begin(self, epoch, logs=None):
        self.previous_mean = 0.0

    def on_train_batch_end(self, batch, logs=None):
        if self.verdict:
            return
        # Keras logs the epoch's running mean; batch b's own loss is the difference of running sums
        # (exact for equal batches, approximate for an epoch's shorter last batch).
        mean = float(logs["loss"])
        self.losses.append((batch + 1) * mean - batch * self.previous_mean)
        self.previous_mean = mean
        if len(self.losses) == 1:
            self.first = self.losses[0]
        if len(self.losses) < max(self.warmup, 2 * self.window):
            return
        recent = float(np.mean(self.losses[-self.window:]))
        lr = getattr(self.model.optimizer, "learning_rate", None)
        lr = float(lr.numpy() if hasattr(lr, "numpy") else lr) if lr is not None else None
        if not np.isfinite(recent) or recent > self.diverge * self.first:
            self.verdict = (f"LossWatch: the loss diverged (from {self.first:.3g} to {recent:.3g}) after {len(self.losses)} batches; "
                            f"try a smaller learning_rate{f', e.g. {lr / 3:.3g}' if lr else ''}")
        elif recent > self.stall * self.first:
            self.verdict = (f"LossWatch: the loss stalled ({self.first:.3g} -> {recent:.3g}) after {len(self.losses)} batches; "
                            f"try {'a smaller' if lr and lr >= 1 else 'another'} learning_rate{f' (now {lr:.3g})' if lr else ''}, or another optimiser")
        if self.verdict:
            print(self.verdict)
            if self.stop:
                self.model.stop_training = True


def panel_result(name, title, runs, lrs, steps, n_boot=2000):
    """compare()'s runs as an l2l.experiment.PanelResult, so that the chapter layer's table, verdict and
    figure serve Keras runs too: seeds are the replication unit (one run each), step 0 is unknown (NaN),
    and held-out accuracy is the test accuracy at the last step."""
    from l2l import evaluate, experiment

    curves = {n: np.concatenate([np.full(r["curves"].shape[:2] + (1,), np.nan), r["curves"]], axis=2) for n, r in runs.items()}
    evaluation = evaluate.Evaluation(curves, {n: r["seconds"] for n, r in runs.items()}, {})
    panel = experiment.Panel(name, title, None, None, tune_steps=steps, steps=steps, report_steps=(steps,))
    entries = experiment.panel_entries(panel, lrs, evaluation, n_boot)
    for n, entry in entries.items():
        entry["accuracy"] = {str(steps): experiment.interval(np.asarray(runs[n]["accuracy"])[:, None], n_boot)}
        entry["test_accuracy"] = runs[n]["accuracy"]
        entry["floats_per_parameter"] = runs[n]["floats_per_parameter"]
    return experiment.PanelResult(panel, lrs, None, 0.0, evaluation, entries)


def fit_panel(name, title, runs, lrs, steps, last, reference="adam", n_boot=2000):
    """compare()'s runs as a panel, paired by seed: (PanelResult, verdicts, endpoint).

    endpoint: name -> [seeds, 1] mean training loss over the last `last` steps
    (one minibatch of an oscillating optimiser is too noisy an endpoint).
    The entries are panel_result's plus the trajectory mean over all steps, the
    endpoint and the test accuracy, each over seeds (stats.over_runs);
    verdicts: every other optimiser's stats.compare_runs against `reference`
    on the endpoint, seed by seed.
    """
    from l2l import stats

    endpoint = {n: last_mean(r["curves"], last) for n, r in runs.items()}
    result = panel_result(name, title, runs, lrs, steps, n_boot)
    for n, entry in result.entries.items():
        entry["trajectory_mean"] = {str(steps): stats.over_runs(runs[n]["curves"].mean(axis=-1))}
        entry[f"last{last}_mean"] = stats.over_runs(endpoint[n])
        entry["test_accuracy_over_runs"] = stats.over_runs(np.asarray(runs[n]["accuracy"])[:, None])
    verdicts = {n: stats.compare_runs(endpoint[n], endpoint[reference]) for n in runs if n != reference}
    return result, verdicts, endpoint


def fit_table(runs, endpoint, last, labels):
    """One row per optimiser (labels: name -> how the row reads): seeds, endpoint and test accuracy [95% CI over
    seeds], ms per step and optimiser floats per parameter."""
    from l2l import experiment, stats

    rows = [{"optimiser": labels.get(n, n), "runs": len(r["accuracy"]),
             f"mean loss, last {last} steps [95% CI]": experiment.fmt_interval(stats.over_runs(endpoint[n])),
             "test accuracy [95% CI]": experiment.fmt_interval(stats.over_runs(np.asarray(r["accuracy"])[:, None])),
             "ms per step": f"{1000 * r['seconds']:.2f}", "optimizer floats per parameter": f"{r['floats_per_parameter']:.0f}"} for n, r in runs.items()]
    return pd.DataFrame(rows)


def fit_sentence(verdict, runs, name, reference, last, steps, who, whom):
    """The paired verdict in words: which metric and steps, how many seeds, the interval and k of n, and test accuracy."""
    v, accuracy = verdict, {n: 100 * float(np.mean(runs[n]["accuracy"])) for n in (name, reference)}
    return (f"On the mean training loss over the last {last} of {steps} steps, over {v['runs']} seeds (same initial weights and shuffling), "
            f"{who} minus {whom} is {v['mean']:.3g} (95% CI {v['ci95'][0]:.3g} to {v['ci95'][1]:.3g}): it **{v['verdict']}** it, lower in "
            f"{v['wins']} of {v['runs']} seeds (test accuracy {accuracy[name]:.1f}% against {accuracy[reference]:.1f}%).")


def against_tuned_adam(name, build, make_optimizer, images, adam_grid, seeds, steps, batch_size, last, who, short="ours"):
    """One standard model trained through model.fit by `make_optimizer` and by ADAM at its tuned rate.

    images: part -> (x, y) for "valid" (where ADAM's rate is tuned over `adam_grid`, the mean loss over the
    last `last` steps), "test_train" (the compared runs, `seeds` of them, paired by seed) and "test_heldout"
    (test accuracy). Returns (entry, row, sentence): entry for summary.json (fit_panel's optimisers and verdicts,
    the tuned rate, and the ratio of the mean endpoints, ours over ADAM's), a table row (ours named `short`),
    and fit_sentence's verdict (ours named `who`).
    """
    from keras.optimizers import Adam

    (x_tune, y_tune), (x_train, y_train), (x_test, y_test) = images("valid"), images("test_train"), images("test_heldout")
    lr, _ = tune_learning_rate(build, Adam, adam_grid, x_tune, y_tune, steps, batch_size, last=last)
    runs = compare(build, {"lstm": make_optimizer, "adam": lambda: Adam(lr)}, seeds, x_train, y_train, x_test, y_test, steps, batch_size)
    result, verdicts, endpoint = fit_panel(name, name, runs, {"adam": lr}, steps, last)
    ratio = float(np.mean(endpoint["lstm"]) / np.mean(endpoint["adam"]))
    entry = {"optimisers": result.entries, "verdicts": verdicts, "adam_lr": lr, "ratio": ratio}
    row = {"model": name, "ADAM rate (tuned)": f"{lr:g}", f"{short} / ADAM, last {last} steps": f"{ratio:.3f}",
           f"test accuracy, {short}": f"{100 * np.mean(runs['lstm']['accuracy']):.1f}%", "test accuracy, ADAM": f"{100 * np.mean(runs['adam']['accuracy']):.1f}%"}
    sentence = f"{name}: " + fit_sentence(verdicts["lstm"], runs, "lstm", "adam", last, steps, who, "tuned ADAM")
    return entry, row, sentence
