import json
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

import l2l
from l2l import learned_optimizer

ROOT = Path(__file__).resolve().parents[1]
CONFIG = learned_optimizer.LSTMConfig(hidden=6)


def meta_params(seed=0):
    return learned_optimizer.init_meta_params(CONFIG, seed)


def data(n=64, seed=0):
    r = np.random.default_rng(seed)
    x = r.normal(size=(n, 5)).astype(np.float32)
    y = (x @ r.normal(size=(5, 3))).argmax(-1)
    return x, y


def model(seed=0):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input((5,)), keras.layers.Dense(4, activation="tanh"), keras.layers.Dense(3)])


# The paper's LSTM, and every option beyond the paper at once (the Keras optimizer then keeps Adam's moments per variable).
BEYOND = learned_optimizer.LSTMConfig(hidden=4, preprocess_p=0.0, features="adam", output="tanh", nominal="adam", nominal_lr=0.01)


def deep_model(seed=0):
    """Eleven variables of five shapes: the fused step joins them all into one state."""
    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input((5,)), keras.layers.Dense(7, activation="tanh"), keras.layers.LayerNormalization(),
                             keras.layers.Dense(6, activation="tanh"), keras.layers.Dense(5, activation="tanh"), keras.layers.Dense(3),
                             keras.layers.Dense(3, use_bias=False)])


@pytest.mark.parametrize("config, model", [(CONFIG, model), (BEYOND, model), (CONFIG, deep_model)], ids=["paper", "beyond", "eleven-variables"])
def test_fit_follows_the_pure_step_exactly(config, model):
    """model.fit with the optimizer (one fused step over every variable) equals lstm_step applied by hand, variable by variable."""
    meta = learned_optimizer.init_meta_params(config, 0)
    x, y = data()
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    net = model()
    weights = [tf.constant(w) for w in net.get_weights()]
    net.compile(optimizer=l2l.LearnedOptimizer(meta, config, learning_rate=0.5), loss=loss_fn)
    net.fit(x, y, batch_size=len(x), epochs=6, shuffle=False, verbose=0)

    reference = model()
    states = [learned_optimizer.init_state(config, int(tf.size(w))) for w in weights]
    for _ in range(6):
        reference.set_weights([w.numpy() for w in weights])
        with tf.GradientTape() as tape:
            loss = loss_fn(y, reference(x))
        grads = tape.gradient(loss, reference.trainable_variables)
        for i, g in enumerate(grads):
            update, states[i] = learned_optimizer.lstm_step(meta, states[i], g, config)
            weights[i] = weights[i] + 0.5 * update
    for got, want in zip(net.get_weights(), weights):
        np.testing.assert_allclose(got, want.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("jit", [False, True])
def test_trains_with_and_without_xla_and_with_clipping(jit):
    x, y = data()
    for options in [{}, {"clipnorm": 0.1}, {"global_clipnorm": 0.1}]:
        net = model()
        net.compile(optimizer=l2l.LearnedOptimizer(meta_params(), CONFIG, **options), loss="sparse_categorical_crossentropy", jit_compile=jit)
        before = [w.copy() for w in net.get_weights()]
        history = net.fit(x, y, batch_size=16, epochs=2, verbose=0)
        assert np.all(np.isfinite(history.history["loss"]))
        assert all(not np.array_equal(a, b) for a, b in zip(before, net.get_weights()))


def test_save_load_restores_state_and_training_continues_identically(tmp_path):
    x, y = data()
    net = model()
    net.compile(optimizer=l2l.LearnedOptimizer(meta_params(), CONFIG), loss="sparse_categorical_crossentropy")
    net.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    net.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert isinstance(loaded.optimizer, l2l.LearnedOptimizer)
    for a, b in zip(net.optimizer.variables, loaded.optimizer.variables):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    net.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    loaded.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    for a, b in zip(net.get_weights(), loaded.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    clone = l2l.LearnedOptimizer.from_config(json.loads(json.dumps(net.optimizer.get_config())))
    assert clone.lstm_config == CONFIG


def test_bad_weights_are_rejected_with_what_was_expected(tmp_path):
    wrong = dict(meta_params())
    wrong["out/kernel"] = np.zeros((5, 1), np.float32)
    with pytest.raises(ValueError, match="do not fit"):
        l2l.LearnedOptimizer(wrong, CONFIG)
    with pytest.raises(FileNotFoundError, match="no LSTM optimiser weights"):
        l2l.LearnedOptimizer.from_weights(tmp_path / "none.weights.h5")
    with pytest.raises(KeyError, match="no pretrained optimiser 'imagenet'"):
        l2l.LearnedOptimizer.from_pretrained("imagenet")


def test_mirrored_strategy_on_two_cpu_devices(tmp_path):
    script = textwrap.dedent(
        """
        import numpy as np, tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        import keras, l2l
        from l2l import learned_optimizer
        config = learned_optimizer.LSTMConfig(hidden=6)
        r = np.random.default_rng(0)
        x = r.normal(size=(64, 5)).astype(np.float32); y = (x[:, 0] > 0).astype(int)
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        with strategy.scope():
            net = keras.Sequential([keras.Input((5,)), keras.layers.Dense(2)])
            net.compile(optimizer=l2l.LearnedOptimizer(learned_optimizer.init_meta_params(config, 0), config), loss="sparse_categorical_crossentropy")
        h = net.fit(x, y, batch_size=16, epochs=2, verbose=0)
        assert strategy.num_replicas_in_sync == 2
        print("OK", h.history["loss"][-1])
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and "OK" in done.stdout, done.stderr[-3000:]


def _dense(seed):
    import keras

    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input((2,)), keras.layers.Dense(3)])


def test_state_floats_per_parameter_counts_the_lstm_state_and_not_its_weights():
    import keras

    from l2l import keras_training

    x, y = np.random.default_rng(0).normal(size=(20, 2)).astype(np.float32), np.arange(20) % 3
    config = learned_optimizer.LSTMConfig(hidden=5, layers=2)
    meta = learned_optimizer.init_meta_params(config, 0)
    counts = {}
    for name, make in {"lstm": lambda: l2l.LearnedOptimizer(meta, config), "adam": lambda: keras.optimizers.Adam(1e-3)}.items():
        _, _, model = keras_training.train(_dense, make, 0, x, y, steps=2, batch_size=10)
        counts[name] = keras_training.state_floats_per_parameter(model)
    # 9 parameters, a kernel of 6 and a bias of 3, in one state padded to 16 columns of h and c per layer; Adam keeps m and v.
    lstm_state, adam_state = 2 * 2 * 5 * 16, 2 * 9
    assert counts["lstm"] - counts["adam"] == pytest.approx((lstm_state - adam_state) / 9)



def test_compare_hands_the_seed_to_a_factory_that_takes_it():
    import keras

    from l2l import keras_training

    x, y = np.random.default_rng(2).normal(size=(20, 2)).astype(np.float32), np.arange(20) % 3
    asked = []
    rates = [0.0, 0.5]  # run k of a learned optimiser, standing in: seed 0 never moves, seed 1 does
    def by_seed(seed):
        asked.append(seed)
        return keras.optimizers.SGD(rates[seed])
    runs = keras_training.compare(_dense, {"per_run": by_seed, "plain": lambda: keras.optimizers.SGD(0.0)}, 2, x, y, x, y, steps=3, batch_size=10)
    assert asked == [0, 1]
    same = runs["per_run"]["curves"][:, 0, :]
    np.testing.assert_allclose(same[0], runs["plain"]["curves"][0, 0, :], rtol=1e-6)  # seed 0 got SGD(0): the plain run's losses
    assert not np.allclose(same[1], runs["plain"]["curves"][1, 0, :])

def test_batch_losses_recover_each_minibatch_loss_from_keras_running_means():
    import keras

    from l2l import keras_training

    x, y = np.random.default_rng(1).normal(size=(25, 2)).astype(np.float32), np.arange(25) % 3
    losses, _, model = keras_training.train(_dense, lambda: keras.optimizers.SGD(0.0), 0, x, y, steps=3, batch_size=10)
    # With a zero learning rate the model never changes: the batches (10, 10, 5 examples) average to the full-data loss.
    full = float(keras.losses.SparseCategoricalCrossentropy(from_logits=True)(y, model(x)))
    assert losses.shape == (3,) and np.dot(losses, [10, 10, 5]) / 25 == pytest.approx(full, rel=1e-5)


def test_training_stops_at_the_asked_step_mid_epoch_so_the_model_is_the_one_after_it():
    import keras

    from l2l import keras_training

    x, y = np.random.default_rng(3).normal(size=(25, 2)).astype(np.float32), np.arange(25) % 3
    # 4 steps of 10 examples: one whole epoch (3 batches) and one batch of the next; fit alone would run 6.
    losses, _, model = keras_training.train(_dense, lambda: keras.optimizers.SGD(0.1), 0, x, y, steps=4, batch_size=10)
    assert losses.shape == (4,) and int(model.optimizer.iterations) == 4
    # The same run asked for 6 steps passes through the same first 4: stopping changes no loss before it.
    longer, _, _ = keras_training.train(_dense, lambda: keras.optimizers.SGD(0.1), 0, x, y, steps=6, batch_size=10)
    np.testing.assert_allclose(longer[:4], losses, rtol=1e-6)


def test_parameter_groups_route_each_variable_to_its_own_lstm_and_survive_saving(tmp_path):
    import keras

    configs = {"kernels": learned_optimizer.LSTMConfig(hidden=4), "biases": learned_optimizer.LSTMConfig(hidden=3, layers=1)}
    meta = learned_optimizer.init_group_params(configs, 0)
    meta = {k: v * (1.5 if k.startswith("biases") else 1.0) for k, v in meta.items()}  # the two LSTMs differ
    group_of = lambda v: "kernels" if len(v.shape) == 2 else "biases"
    model = _dense(0)
    optimizer = l2l.LearnedOptimizer(meta, configs, groups=group_of)
    x, y = tf.constant(np.random.default_rng(2).normal(size=(6, 2)), tf.float32), tf.constant([0, 1, 2, 0, 1, 2])
    with tf.GradientTape() as tape:
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(y, model(x))
    grads = tape.gradient(loss, model.trainable_variables)
    before = [v.numpy().copy() for v in model.trainable_variables]
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
    for variable, grad, old in zip(model.trainable_variables, grads, before):
        group = group_of(variable)
        step = learned_optimizer.learned(learned_optimizer.group_params(meta, group), configs[group])
        flat = tf.reshape(grad, [1, -1])
        update, _ = step.update(flat, step.init(flat))
        np.testing.assert_allclose(variable.numpy() - old, tf.reshape(update, variable.shape).numpy(), rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError, match="needs groups="):
        l2l.LearnedOptimizer(meta, configs)
    model.compile(optimizer=optimizer, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.save(tmp_path / "grouped.keras")
    reloaded = keras.models.load_model(tmp_path / "grouped.keras")
    assert reloaded.optimizer.groups == [group_of(v) for v in model.trainable_variables]
    np.testing.assert_array_equal(reloaded.optimizer.variables[-1].numpy(), model.optimizer.variables[-1].numpy())


@pytest.mark.parametrize("lr, verdict", [(50.0, "diverged"), (0.0, "stalled")])
def test_loss_watch_stops_a_diverging_or_stalled_run_and_says_what_to_try(lr, verdict, capsys):
    import keras

    from l2l import keras_training

    rng = np.random.default_rng(3)
    # Divergence: noisy labels and a huge step; a stall: no step, and every batch the same 8 examples.
    x = rng.normal(size=(640, 2)).astype(np.float32) if lr else np.tile(rng.normal(size=(8, 2)).astype(np.float32), (80, 1))
    y = rng.integers(0, 3, size=640) if lr else np.tile(np.arange(8) % 3, 80)
    model = _dense(0)
    model.compile(optimizer=keras.optimizers.SGD(lr), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    watch = keras_training.LossWatch(warmup=20, window=5)
    model.fit(x, y, batch_size=8, epochs=3, verbose=0, callbacks=[watch], shuffle=False)
    assert watch.verdict.startswith(f"LossWatch: the loss {verdict}") and "try" in watch.verdict
    assert len(watch.losses) < 3 * 80  # stopped early
    assert watch.verdict in capsys.readouterr().out
    healthy = keras_training.LossWatch(warmup=20, window=5)
    model = _dense(0)
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = rng.normal(size=(640, 2)).astype(np.float32)
    model.fit(x, (x[:, 0] > 0).astype(int) + (x[:, 1] > 0).astype(int), batch_size=8, epochs=1, verbose=0, callbacks=[healthy], shuffle=False)
    assert healthy.verdict is None  # learnable labels, a sane step: no alarm


def test_every_optimizer_variable_has_its_own_path():
    import keras

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4), keras.layers.Dense(2)])
    config = learned_optimizer.LSTMConfig(hidden=3)
    optimizer = l2l.LearnedOptimizer(learned_optimizer.init_meta_params(config, 0), config)
    optimizer.build(model.trainable_variables)
    paths = [v.path for v in optimizer.variables]
    assert len(paths) == len(set(paths)) and len([p for p in paths if "lstm_h" in p or "lstm_c" in p]) == 2 * 2  # h and c of 2 layers, for all 4 variables


def test_update_ratios_are_the_relative_size_of_each_step():
    from l2l import keras_training

    x, y = data(40)
    # SGD's first update of each variable is -lr * grad: its ratio is lr * ||grad|| / ||w|| at the initial weights.
    ratios = keras_training.update_ratios(model, lambda: keras.optimizers.SGD(0.1), 0, x, y, steps=3, batch_size=40)
    start = model(0)
    with tf.GradientTape() as tape:
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(y, start(x))
    grads = tape.gradient(loss, start.trainable_variables)
    kernel = start.trainable_variables[0]
    expected = 0.1 * np.linalg.norm(grads[0].numpy()) / np.linalg.norm(kernel.numpy())
    assert list(ratios) == ["dense0/kernel", "dense0/bias", "dense1/kernel", "dense1/bias"] and all(len(r) == 3 for r in ratios.values())
    assert ratios["dense0/kernel"][0] == pytest.approx(expected, rel=1e-4)
    none = keras_training.update_ratios(model, lambda: keras.optimizers.SGD(0.0), 0, x, y, steps=2, batch_size=40)
    assert all(np.all(r == 0) for r in none.values())


def test_last_mean_and_the_shared_model_builders():
    from l2l import keras_training

    curves = np.arange(2 * 1 * 30, dtype=float).reshape(2, 1, 30)
    np.testing.assert_allclose(keras_training.last_mean(curves, 20)[:, 0], [np.mean(np.arange(10, 30)), np.mean(np.arange(40, 60))])
    mlp = keras_training.paper_mlp(0)
    assert [tuple(w.shape) for w in mlp.trainable_weights] == [(784, 20), (20,), (20, 10), (10,)]
    assert 0.008 < float(np.std(mlp.trainable_weights[0].numpy())) < 0.012 and mlp.layers[1].activation.__name__ == "sigmoid"
    # cifar_cnn is small_cnn on CIFAR's shape, weight for weight.
    a, b = keras_training.cifar_cnn(3), keras_training.small_cnn(3, (32, 32, 3), (16, 32))
    for u, v in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(u, v)



def test_against_tuned_adam_tunes_on_the_selection_images_then_pairs_the_runs_by_seed():
    import keras

    from l2l import keras_training

    rng = np.random.default_rng(5)
    parts = {}
    for k, part in enumerate(("valid", "test_train", "test_heldout")):
        x = rng.normal(size=(40, 2)).astype(np.float32) + 0.1 * k
        parts[part] = (x, (x[:, 0] > 0).astype(int) + (x[:, 1] > 0).astype(int))
    grid, frozen = (0.001, 0.1), lambda: keras.optimizers.SGD(0.0)  # "ours" never moves, so ADAM must end lower
    entry, row, sentence = keras_training.against_tuned_adam("dense", _dense, frozen, parts.get, grid, 2, 6, 10, 3, "the frozen one", short="frozen")
    lr, _ = keras_training.tune_learning_rate(_dense, keras.optimizers.Adam, grid, *parts["valid"], 6, 10, last=3)
    assert entry["adam_lr"] == lr and entry["optimisers"]["adam"]["lr"] == lr
    means = {n: entry["optimisers"][n]["last3_mean"]["mean"] for n in ("lstm", "adam")}
    assert entry["ratio"] == pytest.approx(means["lstm"] / means["adam"]) and entry["ratio"] > 1
    assert entry["verdicts"]["lstm"]["runs"] == 2 and entry["verdicts"]["lstm"]["wins"] == 0
    assert row["model"] == "dense" and row["frozen / ADAM, last 3 steps"] == f"{entry['ratio']:.3f}" and row["ADAM rate (tuned)"] == f"{lr:g}"
    assert sentence.startswith("dense: On the mean training loss over the last 3 of 6 steps, over 2 seeds") and "the frozen one minus tuned ADAM" in sentence


def test_layer_ratio_medians_and_their_sentence_read_the_second_half_of_each_kernels_run():
    from l2l import keras_training

    steps = 6
    ratios = {"lstm_tuned": {"conv2d0/kernel": np.array([9, 9, 9, 1, 2, 3.0]), "conv2d0/bias": np.ones(steps), "dense0/kernel": np.full(steps, 0.5)},
              "adam": {"conv2d0/kernel": np.array([0, 0, 0, 2, 2, 2.0]), "conv2d0/bias": np.ones(steps), "dense0/kernel": np.array([7, 7, 7, 1, 1, 4.0])}}
    medians = keras_training.layer_ratio_medians(ratios, steps)
    assert medians == {"lstm_tuned": {"conv2d0": 2.0, "dense0": 0.5}, "adam": {"conv2d0": 2.0, "dense0": 1.0}}  # biases left out
    sentence = keras_training.ratio_sentence(medians)
    assert "span a factor of 4.0 between its largest and smallest layer, ADAM's a factor of 2.0" in sentence
    assert sentence.endswith("the LSTM's updates are 1x ADAM's on conv2d0, 0.5x ADAM's on dense0.")


def test_the_fit_runs_are_compared_with_the_chapters_own_run_of_the_same_weights():
    import pandas as pd

    from l2l import keras_training

    curves = pd.DataFrame({"panel": ["base"] * 4 + ["long"], "optimiser": ["lstm", "lstm", "lstm", "adam", "lstm"], "seed": [1, 1, 0, 1, 1],
                           "step": [100, 200, 100, 100, 100], "loss": [0.5, 0.25, 9.0, 9.0, 9.0]})
    assert keras_training.chapter_losses(curves, 1, [100, 200]) == {100: 0.5, 200: 0.25}
    assert keras_training.chapter_losses(curves, 7, [100]) == {}
    fit_at = {100: {"mean": 0.52, "ci95": [0.45, 0.6], "runs": 5}, 200: {"mean": 0.3, "ci95": [0.28, 0.33], "runs": 5}}
    differs = keras_training.agreement_sentence(fit_at, {100: 0.5, 200: 0.25}, 1)  # 0.25 lies below the step-200 interval
    assert differs.startswith("At step 100 the fit runs' minibatch loss is 0.52 (95% CI 0.45 to 0.6 over 5 seeds); in the MNIST chapter the same weights (its run 1) reach 0.5")
    assert differs.endswith("They differ by more than the interval: see the minibatch note above, and compare the curves below.")
    assert keras_training.agreement_sentence(fit_at, {100: 0.5, 200: 0.3}, 1).endswith("Keras does not change the optimiser.")
    assert "nothing to compare with" in keras_training.agreement_sentence(fit_at, {}, 1)


@pytest.mark.parametrize("imports", ["import l2l, keras", "import keras, l2l", "import l2l, tensorflow, keras", "import tensorflow, l2l, keras"])
def test_import_l2l_is_enough_to_load_a_model_saved_with_the_learned_optimizer(tmp_path, imports):
    """The package's lazy loading once left LearnedOptimizer unregistered until l2l.keras_optimizer was imported by name."""
    x, y = data()
    net = model()
    net.compile(optimizer=l2l.LearnedOptimizer(meta_params(), CONFIG), loss="sparse_categorical_crossentropy")
    net.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    net.save(tmp_path / "m.keras")
    code = f"{imports}\nm = keras.models.load_model({str(tmp_path / 'm.keras')!r})\nprint(type(m.optimizer).__name__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                         env={**__import__("os").environ, "PYTHONPATH": str(__import__("pathlib").Path(__file__).resolve().parents[1])})
    assert out.stdout.split()[-1:] == ["LearnedOptimizer"], out.stderr[-2000:]


def test_sparse_gradients_step_only_the_rows_they_touch_and_leave_the_other_rows_state_as_it_was():
    """An Embedding's gradient arrives as tf.IndexedSlices; rows never looked up once drifted by up to 7.6e-3 an epoch."""
    table = tf.Variable(np.random.default_rng(0).normal(size=(6, 3)).astype(np.float32))
    optimizer = l2l.LearnedOptimizer(meta_params(), CONFIG)
    optimizer.build([table])
    # Row 1 twice (its values summed, as tf.gather's gradient means), rows 4: rows 0, 2, 3 and 5 are untouched.
    values = np.random.default_rng(1).normal(size=(3, 3)).astype(np.float32)
    sparse = tf.IndexedSlices(tf.constant(values), tf.constant([1, 4, 1]), tf.constant([6, 3]))
    dense = np.zeros((6, 3), np.float32)
    dense[1], dense[4] = values[0] + values[2], values[1]
    before = table.numpy().copy()
    for _ in range(3):  # later steps read the state the earlier ones left
        optimizer.apply_gradients([(sparse, table)])
    # The same three steps on the dense gradient, by the pure step, for the touched rows.
    state = learned_optimizer.init_state(CONFIG, 18)
    expected = before.copy()
    for _ in range(3):
        updates, state = learned_optimizer.lstm_step(meta_params(), state, tf.constant(dense), CONFIG)
        expected[[1, 4]] += updates.numpy()[[1, 4]]
    np.testing.assert_array_equal(table.numpy()[[0, 2, 3, 5]], before[[0, 2, 3, 5]])
    np.testing.assert_allclose(table.numpy()[[1, 4]], expected[[1, 4]], rtol=1e-5, atol=1e-7)
    untouched = np.r_[0:3, 6:12, 15:18]
    for h in optimizer._h[""] + optimizer._c[""]:
        assert not np.asarray(h)[:, untouched].any() and np.asarray(h)[:, [3, 4, 5, 12, 13, 14]].all()


@pytest.mark.parametrize("name, config", [("paper", CONFIG), ("beyond", BEYOND)])
def test_a_model_saved_with_a_state_per_variable_loads_and_trains_on_as_before(name, config):
    """tests/data/keras_per_variable: saved by the optimizer before the fused step, with the weights one more epoch gave
    under that code. Loaded now, the per-variable states are joined into one, and the same epoch gives the same weights."""
    folder = ROOT / "tests/data/keras_per_variable"
    x, y = data()
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*Skipping variable loading.*")  # Keras' word for a state it dropped
        loaded = keras.models.load_model(folder / f"{name}.keras")
    assert loaded.optimizer.lstm_config == config and len(loaded.optimizer._h[""]) == config.layers
    assert float(loaded.optimizer._h[""][0].numpy().std()) > 0  # the saved state arrived, not zeros
    loaded.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    expected = np.load(folder / f"{name}_after_one_more_epoch.npz")
    for got, want in zip(loaded.get_weights(), [expected[k] for k in sorted(expected.files, key=lambda k: int(k.split("_")[1]))]):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_a_variable_without_a_gradient_keeps_its_value_and_its_state():
    """apply_gradients drops variables whose gradient is None: their coordinates in the joined state stay as they were."""
    first, second = tf.Variable(np.ones((2, 3), np.float32)), tf.Variable(np.full((4,), 2.0, np.float32))
    optimizer = l2l.LearnedOptimizer(meta_params(), CONFIG)
    optimizer.build([first, second])
    gradient = tf.constant(np.random.default_rng(0).normal(size=(2, 3)).astype(np.float32))
    optimizer.apply_gradients([(gradient, first), (None, second)])
    updates, state = learned_optimizer.lstm_step(meta_params(), learned_optimizer.init_state(CONFIG, 6), gradient, CONFIG)
    np.testing.assert_allclose(first.numpy(), 1.0 + updates.numpy(), rtol=1e-6, atol=1e-8)
    np.testing.assert_array_equal(second.numpy(), np.full((4,), 2.0, np.float32))
    for joined, alone in zip(optimizer._h[""] + optimizer._c[""], state.h + state.c):
        np.testing.assert_allclose(joined.numpy()[:, :6], alone.numpy()[:, :6], rtol=1e-5, atol=1e-8)  # XLA against TF: rounding
        assert not joined.numpy()[:, 6:10].any()  # the second variable's columns: never stepped


def test_mixed_precision_trains_through_the_loss_scale_optimizer_with_float32_state():
    """Under mixed_float16 Keras wraps the optimizer in a LossScaleOptimizer, which hands it unscaled float16 gradients:
    the fused step casts them, keeps its LSTM state in float32, and trains."""
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        x, y = data()
        net = model()
        net.compile(optimizer=l2l.LearnedOptimizer(meta_params(), CONFIG, learning_rate=0.5), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        before = [w.copy() for w in net.get_weights()]
        history = net.fit(x, y, batch_size=16, epochs=3, shuffle=False, verbose=0)
        inner = net.optimizer.inner_optimizer if isinstance(net.optimizer, keras.optimizers.LossScaleOptimizer) else net.optimizer
        assert isinstance(net.optimizer, keras.optimizers.LossScaleOptimizer) and isinstance(inner, l2l.LearnedOptimizer)
        assert np.all(np.isfinite(history.history["loss"])) and history.history["loss"][-1] < history.history["loss"][0]
        assert all(not np.array_equal(a, b) for a, b in zip(before, net.get_weights()))
        assert all(v.dtype == "float32" for v in inner._h[""] + inner._c[""]) and np.asarray(inner._h[""][0]).any()
    finally:
        keras.mixed_precision.set_global_policy("float32")
