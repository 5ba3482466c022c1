from pathlib import Path

import h5py
import numpy as np
import pytest
import tensorflow as tf

from l2l import learned_optimizer
from l2l.preprocess import log_and_sign


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def reference_lstm(meta, config, grads_sequence):
    """A plain numpy LSTM, gates [i, f, o, g], one coordinate at a time (reference_beyond with the paper's options)."""
    return reference_beyond(meta, config, grads_sequence)


@pytest.mark.parametrize("config", [learned_optimizer.LSTMConfig(), learned_optimizer.LSTMConfig(hidden=7, layers=3, preprocess_p=5.0, scale=0.01)])
def test_lstm_step_matches_a_plain_lstm_with_state_carried(config, nprng):
    meta = learned_optimizer.init_meta_params(config, seed=3)
    # Perturb biases so that no gate sits at a symmetric point.
    meta = {k: v + (0.1 * nprng.normal(size=v.shape)).astype(np.float32) for k, v in meta.items()}
    grads_sequence = [nprng.normal(size=(4, 5)).astype(np.float32) * 10.0 ** nprng.uniform(-6, 1, size=(4, 5)).astype(np.float32) for _ in range(4)]
    state = learned_optimizer.init_state(config, 20)
    got = []
    for grads in grads_sequence:
        updates, state = learned_optimizer.lstm_step(meta, state, tf.constant(grads), config)
        assert updates.shape == (4, 5)
        assert len(state.h) == config.layers and state.h[0].shape == (config.hidden, learned_optimizer.padded(20))
        got.append(updates.numpy())
    for g, w in zip(got, reference_lstm(meta, config, grads_sequence)):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-6)


def test_state_is_used_and_coordinates_are_independent(nprng):
    config = learned_optimizer.LSTMConfig()
    meta = learned_optimizer.init_meta_params(config, seed=0)
    grads = tf.constant(nprng.normal(size=(10,)).astype(np.float32))
    u1, s1 = learned_optimizer.lstm_step(meta, learned_optimizer.init_state(config, 10), grads, config)
    u2, _ = learned_optimizer.lstm_step(meta, s1, grads, config)
    assert not np.allclose(u1.numpy(), u2.numpy())  # the second step sees the first's state
    # Coordinatewise: permuting the coordinates permutes the updates.
    perm = nprng.permutation(10)
    up, _ = learned_optimizer.lstm_step(meta, learned_optimizer.init_state(config, 10), tf.gather(grads, perm), config)
    np.testing.assert_allclose(up.numpy(), u1.numpy()[perm], rtol=1e-6, atol=1e-7)


def test_weights_round_trip_and_bad_files_are_named(tmp_path):
    config = learned_optimizer.LSTMConfig(hidden=6, preprocess_p=5.0, scale=0.01)
    meta = learned_optimizer.init_meta_params(config, seed=1)
    path = tmp_path / "opt.weights.h5"
    learned_optimizer.save_weights(path, meta, config, chapter="test", seed=1)
    loaded, loaded_config, provenance = learned_optimizer.load_weights(path)
    assert loaded_config == config and provenance["chapter"] == "test"
    for k in meta:
        np.testing.assert_array_equal(loaded[k].numpy(), meta[k].numpy())

    with pytest.raises(FileNotFoundError, match="no LSTM optimiser weights"):
        learned_optimizer.load_weights(tmp_path / "missing.weights.h5")
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f.create_dataset("x", data=np.zeros(3))
    with pytest.raises(ValueError, match="not an l2l LSTM optimiser weights file"):
        learned_optimizer.load_weights(tmp_path / "other.h5")
    with h5py.File(path, "r+") as f:  # a kernel of the wrong shape
        del f["out/kernel"]
        f.create_dataset("out/kernel", data=np.zeros((5, 1)))
    with pytest.raises(ValueError, match=r"out/kernel has shape \(5, 1\), expected \(6, 1\)"):
        learned_optimizer.load_weights(path)


def test_bad_config_is_rejected():
    with pytest.raises(ValueError, match="hidden >= 1"):
        learned_optimizer.LSTMConfig(hidden=0)
    with pytest.raises(ValueError, match="preprocess_p"):
        learned_optimizer.LSTMConfig(preprocess_p=-1.0)


@pytest.mark.parametrize("config", [learned_optimizer.LSTMConfig(hidden=6), learned_optimizer.LSTMConfig(hidden=5, layers=3, preprocess_p=0.0)])
def test_hand_written_backward_equals_the_tape(config, nprng):
    """lstm_backward is the vector-Jacobian product of lstm_step, in float64."""
    meta = {k: tf.cast(v, tf.float64) + nprng.normal(size=v.shape) * 0.3 for k, v in learned_optimizer.init_meta_params(config, seed=2).items()}
    n, width = 7, learned_optimizer.padded(7)  # 9 padding coordinates, as in meta-training
    state = learned_optimizer.LSTMState(
        h=tuple(tf.constant(nprng.normal(size=(config.hidden, width))) for _ in range(config.layers)),
        c=tuple(tf.constant(nprng.normal(size=(config.hidden, width))) for _ in range(config.layers)),
    )
    grads = tf.constant(nprng.normal(size=(n,)) * 10.0 ** nprng.uniform(-6, 0, size=n))
    d_updates = tf.constant(nprng.normal(size=(n,)))
    d_new = tf.nest.map_structure(lambda t: tf.constant(nprng.normal(size=t.shape)), state)
    with tf.GradientTape() as tape:
        tape.watch((meta, state))
        updates, new_state = learned_optimizer.lstm_step(meta, state, grads, config)
        target = tf.reduce_sum(updates * d_updates) + tf.add_n([tf.reduce_sum(a * b) for a, b in zip(tf.nest.flatten(new_state), tf.nest.flatten(d_new))])
    want_meta, want_state = tape.gradient(target, (meta, state))
    for fused, lean in [(True, False), (False, False), (True, True)]:  # with and without XLA for the elementwise parts; gates recomputed
        got_updates, _, saved = learned_optimizer.lstm_forward(meta, state, grads, config, fused, lean)
        assert isinstance(saved, learned_optimizer.Lean) == lean
        np.testing.assert_allclose(got_updates.numpy(), updates.numpy(), rtol=1e-12)
        got_meta, got_state = learned_optimizer.lstm_backward(meta, saved, d_updates, d_new, config, fused)
        for k in meta:
            np.testing.assert_allclose(got_meta[k].numpy(), want_meta[k].numpy(), rtol=1e-10, atol=1e-12)
        for got, want in zip(tf.nest.flatten(got_state), tf.nest.flatten(want_state)):
            np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-10, atol=1e-12)
    # Without a later state (the segment's last step), only the updates matter.
    with tf.GradientTape() as tape:
        tape.watch(meta)
        target = tf.reduce_sum(learned_optimizer.lstm_step(meta, state, grads, config)[0] * d_updates)
    want = tape.gradient(target, meta)
    got, _ = learned_optimizer.lstm_backward(meta, saved, d_updates, None, config)
    for k in meta:
        np.testing.assert_allclose(got[k].numpy(), want[k].numpy(), rtol=1e-10, atol=1e-12)


# -- parameter groups ----------------------------------------------------------

DATA = Path(__file__).resolve().parent / "data"


def test_one_group_reproduces_the_committed_optimiser():
    """Golden values written by the code before parameter groups existed (commit 33b8292): the trajectory's losses
    (golden_quadratic.npz) and a 3-step segment's meta-loss, parameters and meta-gradient (golden_quadratic_unroll3.npz).

    On the machine that wrote a file the code reproduces it bit for bit (checked for the segment file, written by
    33b8292 on an AVX2 machine). Another CPU's matmul kernels round differently and the LSTM's dynamics amplify
    that: oneDNN's AVX and SSE4.1 kernels against its AVX2 ones moved step 3's losses by 1.2e-6 relative, the
    3-step meta-gradient by 3.3e-5 of its scale, and after 20 steps the meta-gradient by O(1). So the first three
    steps are compared to 1e-5 and the 3-step segment to 1e-4 of each array's scale. Scaling one weight array
    (out/bias) by 1.01 moves the segment's meta-gradient by 5.6e-4 of its scale, and fails this test.
    """
    from l2l import meta, problems, rollout

    def close(got, want, tolerance=1e-4):
        np.testing.assert_allclose(got, want, rtol=tolerance, atol=tolerance * np.abs(want).max())

    meta_params, config, _ = learned_optimizer.load_weights(str(DATA / "quadratic.weights.h5"))
    problem = problems.Quadratic()
    rng = rollout.generator(rollout.TEST_SEED, "counter")  # the stream the golden values were drawn from (before keyed seeds)
    batch = problem.sample(rng, 16)
    params = problem.init_params(rng, batch)
    losses = tf.function(lambda b, p: rollout.trajectory(problem, learned_optimizer.learned(meta_params, config), b, p, 3))(batch, params)
    close(losses.numpy(), np.load(DATA / "golden_quadratic.npz")["losses"][:4], tolerance=1e-5)
    golden = np.load(DATA / "golden_quadratic_unroll3.npz")
    state = learned_optimizer.init_state(config, 16 * problem.dim)
    loss, grads, after, _ = tf.function(lambda: meta.segment_meta_gradient(problem, config, 3, meta_params, params, state, batch))()
    close(loss.numpy(), golden["meta_loss"])
    close(after.numpy(), golden["params_after"])
    assert set(golden.files) == {"meta_loss", "params_after", *("grad_" + k.replace("/", "_") for k in grads)}
    for k, g in grads.items():
        close(g.numpy(), golden["grad_" + k.replace("/", "_")])


class GroupedQuadratic:
    """A quadratic whose coordinates fall into two interleaved groups."""

    def __init__(self, dims=5, dtype=tf.float64, layout="interleaved"):
        from l2l import problems

        self.base, self.dtype, self.name, self.dim = problems.Quadratic(dims=dims), dtype, "grouped", dims
        if layout == "interleaved":
            self.groups = {"even": np.arange(0, dims, 2), "odd": np.arange(1, dims, 2)}
        else:  # two contiguous runs, "odd" first: the slicing path, in an order other than the groups' names
            self.groups = {"even": np.arange(2, dims), "odd": np.arange(0, 2)}

    def sample(self, rng, n):
        return tf.nest.map_structure(lambda t: tf.cast(t, self.dtype), self.base.sample(rng, n))

    def init_params(self, rng, instances):
        return tf.cast(self.base.init_params(rng, instances), self.dtype)

    def loss(self, params, instances, rng=None):
        return self.base.loss(params, instances, rng)

    def describe(self):
        return {"name": self.name, "dims": self.dim}


TWO = {"even": learned_optimizer.LSTMConfig(hidden=4), "odd": learned_optimizer.LSTMConfig(hidden=3, layers=1, preprocess_p=0.0, scale=0.5)}


@pytest.mark.parametrize("layout", ["interleaved", "contiguous"])
@pytest.mark.parametrize("config", [TWO, dict(reversed(TWO.items()))], ids=["sorted", "reversed"])
def test_two_groups_meta_gradient_equals_the_tape_in_float64(layout, config):
    """Each group's coordinates get that group's LSTM, whatever the groups' layout and the config's order."""
    from l2l import meta
    from l2l.problems import loss_and_grads

    TWO = config
    problem = GroupedQuadratic(layout=layout)
    rng = tf.random.Generator.from_seed(3)
    batch = problem.sample(rng, 2)
    params = tf.cast(rng.normal([2, 5]), tf.float64)
    weights = {k: tf.cast(v, tf.float64) for k, v in learned_optimizer.init_group_params(TWO, 1).items()}
    parts = learned_optimizer.partition(TWO, problem.groups, 5)
    states = learned_optimizer.init_group_states(TWO, parts, 2, 5, tf.float64)
    loss, grads, _, _ = meta.segment_meta_gradient(problem, TWO, 4, weights, params, states, batch, parts=parts)

    # Reference: each group's LSTM stepped on its own columns, the updates stitched back by index, under a tape.
    def reference(w, frozen=None):
        p, s, total, seen = params, dict(states), 0.0, []
        for t in range(4):
            value, g = loss_and_grads(problem, p, batch)
            seen.append(g)
            total += tf.reduce_mean(value) if t else 0.0
            g = frozen[t] if frozen else g
            pieces = []
            for name, config in TWO.items():
                u, s[name] = learned_optimizer.lstm_step(learned_optimizer.group_params(w, name), s[name], tf.gather(g, problem.groups[name], axis=1), config)
                pieces.append(tf.transpose(u))
            p = p + tf.transpose(tf.dynamic_stitch([problem.groups[n] for n in TWO], pieces))
        return total + tf.reduce_mean(problem.loss(p, batch)), seen

    _, frozen = reference(weights)
    variables = {k: tf.Variable(v) for k, v in weights.items()}
    with tf.GradientTape() as tape:
        expected_loss, _ = reference(variables, frozen)
    expected = tape.gradient(expected_loss, variables)
    assert float(loss) == pytest.approx(float(expected_loss), rel=1e-12)
    assert set(grads) == set(expected) and {k.split("/")[0] for k in grads} == {"even", "odd"}
    for k in expected:
        np.testing.assert_allclose(grads[k].numpy(), expected[k].numpy(), rtol=1e-10, atol=1e-14)


def test_groups_train_end_to_end_and_round_trip_through_weights_files(tmp_path):
    from l2l import meta

    problem = GroupedQuadratic(dtype=tf.float32)
    config = meta.MetaConfig(epochs=2, batch=3, horizon=4, unroll=2, valid_every=1, valid_instances=3)
    result = meta.meta_train(problem, TWO, config, log=lambda line: None)
    # Two epochs may or may not beat the initial weights on validation ("diverged"); either way the run went to its end.
    assert not result.status.startswith("stopped") and set(result.meta_params) == set(learned_optimizer.group_param_shapes(TWO))
    path = tmp_path / "two.weights.h5"
    learned_optimizer.save_weights(path, result.meta_params, TWO, chapter="test")
    loaded, loaded_config, _ = learned_optimizer.load_weights(str(path))
    assert loaded_config == TWO
    for k, v in loaded.items():
        np.testing.assert_array_equal(v.numpy(), result.meta_params[k].numpy())
    optimizer = result.optimizer(problem)
    grads = tf.random.stateless_normal([3, 5], [0, 1])
    updates, _ = optimizer.update(grads, optimizer.init(grads))
    # Each coordinate moved by its own group's LSTM: the odd columns equal the odd LSTM run on them alone.
    odd = learned_optimizer.learned(learned_optimizer.group_params(result.meta_params, "odd"), TWO["odd"])
    alone, _ = odd.update(tf.gather(grads, problem.groups["odd"], axis=1), odd.init(tf.gather(grads, problem.groups["odd"], axis=1)))
    np.testing.assert_array_equal(tf.gather(updates, problem.groups["odd"], axis=1).numpy(), alone.numpy())


@pytest.mark.parametrize("groups, message", [
    (None, "needs a problem whose `groups` has exactly those names"),
    ({"even": [0, 2, 4], "other": [1, 3]}, "exactly those names"),
    ({"even": [0, 2, 4], "odd": [1, 2, 3]}, "cover its 5 coordinates exactly once"),
])
def test_a_bad_partition_is_named(groups, message):
    with pytest.raises(ValueError, match=message):
        learned_optimizer.partition(TWO, groups, 5)
    with pytest.raises(ValueError, match="non-empty names without '/'"):
        learned_optimizer.as_groups({"a/b": learned_optimizer.LSTMConfig()})


@pytest.mark.parametrize("damage", ["truncated", "empty", "random", "pickle", "directory", "nan"])
def test_unreadable_or_non_finite_weights_files_are_refused_with_the_path(tmp_path, damage):
    import pickle

    config = learned_optimizer.LSTMConfig(hidden=3)
    good = tmp_path / "good.weights.h5"
    meta = learned_optimizer.init_meta_params(config, 0)
    learned_optimizer.save_weights(good, meta, config)
    path = tmp_path / f"{damage}.weights.h5"
    if damage == "truncated":
        path.write_bytes(good.read_bytes()[:500])
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "random":
        path.write_bytes(np.random.default_rng(0).bytes(4096))
    elif damage == "pickle":
        path.write_bytes(pickle.dumps({"out/kernel": [1.0]}))
    elif damage == "directory":
        path.mkdir()
    else:
        learned_optimizer.save_weights(path, {**meta, "out/bias": tf.constant([np.nan])}, config)
    message = {"directory": "is a directory", "nan": r"non-finite values in \['out/bias'\]"}.get(damage, "cannot be read as LSTM optimiser weights")
    with pytest.raises(ValueError, match=message) as caught:
        learned_optimizer.load_weights(str(path))
    assert str(path) in str(caught.value)


# -- options beyond the paper ---------------------------------------------------

BEYOND = [
    learned_optimizer.LSTMConfig(hidden=5, preprocess_p=0.0, features="adam", beta=0.9),
    learned_optimizer.LSTMConfig(hidden=5, output="tanh", scale=0.2),
    learned_optimizer.LSTMConfig(hidden=4, layers=1, nominal="sgd", nominal_lr=0.3),
    learned_optimizer.LSTMConfig(hidden=4, preprocess_p=0.0, features="adam", output="tanh", nominal="adam", nominal_lr=0.05),
]


def reference_beyond(meta, config, grads_sequence):
    """The options written out in numpy, one coordinate at a time: Adam's bias-corrected moments feeding the LSTM
    (g / (sqrt(v) + eps), m / (sqrt(v) + eps)), a tanh on the output, a nominal step added to the learned one."""
    params = {k: v.numpy().astype(np.float64) for k, v in meta.items()}
    n, H = grads_sequence[0].size, config.hidden
    h = [np.zeros((n, H)) for _ in range(config.layers)]
    c = [np.zeros((n, H)) for _ in range(config.layers)]
    m, v, out = np.zeros(n), np.zeros(n), []
    for t, grads in enumerate(grads_sequence, start=1):
        g = grads.reshape(-1).astype(np.float64)
        m, v = config.beta * m + (1 - config.beta) * g, config.beta * v + (1 - config.beta) * g * g
        root = np.sqrt(v / (1 - config.beta**t)) + 1e-8
        direction = m / (1 - config.beta**t) / root
        if config.features == "adam":
            x = np.stack([g / root, direction], axis=1)
        else:
            x = log_and_sign(g.astype(np.float32), config.preprocess_p).numpy().astype(np.float64) if config.preprocess_p else g[:, None]
        for layer in range(config.layers):
            z = np.concatenate([x, h[layer]], axis=1) @ params[f"lstm{layer}/kernel"] + params[f"lstm{layer}/bias"]
            i, f, o, cand = sigmoid(z[:, :H]), sigmoid(z[:, H : 2 * H]), sigmoid(z[:, 2 * H : 3 * H]), np.tanh(z[:, 3 * H :])
            c[layer] = f * c[layer] + i * cand
            h[layer] = o * np.tanh(c[layer])
            x = h[layer]
        y = (x @ params["out/kernel"] + params["out/bias"])[:, 0]
        step = config.scale * (np.tanh(y) if config.output == "tanh" else y)
        step = step - config.nominal_lr * {"none": 0 * g, "sgd": g, "adam": direction}[config.nominal]
        out.append(step.reshape(grads.shape))
    return out


@pytest.mark.parametrize("config", BEYOND, ids=["adam_features", "tanh", "nominal_sgd", "all"])
def test_options_beyond_the_paper_match_a_plain_numpy_optimiser(config, nprng):
    meta = {k: v + (0.1 * nprng.normal(size=v.shape)).astype(np.float32) for k, v in learned_optimizer.init_meta_params(config, seed=3).items()}
    grads_sequence = [nprng.normal(size=(4, 5)).astype(np.float32) * 10.0 ** nprng.uniform(-4, 1, size=(4, 5)).astype(np.float32) for _ in range(4)]
    state = learned_optimizer.init_state(config, 20)
    assert len(state.moments) == (3 if config.moments else 0)
    for grads, want in zip(grads_sequence, reference_beyond(meta, config, grads_sequence)):
        updates, state = learned_optimizer.lstm_step(meta, state, tf.constant(grads), config)
        np.testing.assert_allclose(updates.numpy(), want, rtol=2e-4, atol=1e-6)
    if config.output == "tanh" and config.nominal == "none":  # a bounded step: never beyond scale, whatever the weights
        wild = {k: 100.0 * v for k, v in meta.items()}
        updates, _ = learned_optimizer.lstm_step(wild, learned_optimizer.init_state(config, 20), tf.constant(1e3 * grads_sequence[0]), config)
        assert np.abs(updates.numpy()).max() <= config.scale + 1e-6


@pytest.mark.parametrize("config", BEYOND, ids=["adam_features", "tanh", "nominal_sgd", "all"])
def test_hand_written_backward_equals_the_tape_beyond_the_paper(config, nprng):
    """The moments and the nominal step depend on the gradients only; the tanh on the output is differentiated."""
    meta = {k: tf.cast(v, tf.float64) + nprng.normal(size=v.shape) * 0.3 for k, v in learned_optimizer.init_meta_params(config, seed=2).items()}
    n = 7
    state = learned_optimizer.init_state(config, n, tf.float64)
    state = state._replace(h=tuple(tf.constant(nprng.normal(size=t.shape)) for t in state.h), c=tuple(tf.constant(nprng.normal(size=t.shape)) for t in state.c))
    if config.moments:
        width = learned_optimizer.padded(n)
        state = state._replace(moments=(tf.constant(nprng.normal(size=width) * 0.1), tf.constant(nprng.uniform(0.01, 1.0, size=width)), tf.constant(3.0, tf.float64)))
    grads = tf.constant(nprng.normal(size=(n,)) * 10.0 ** nprng.uniform(-3, 0, size=n))
    d_updates = tf.constant(nprng.normal(size=(n,)))
    d_h = tuple(tf.constant(nprng.normal(size=t.shape)) for t in state.h)
    d_c = tuple(tf.constant(nprng.normal(size=t.shape)) for t in state.c)
    with tf.GradientTape() as tape:
        tape.watch((meta, state.h, state.c))
        updates, new = learned_optimizer.lstm_step(meta, state, grads, config)
        target = tf.reduce_sum(updates * d_updates) + tf.add_n([tf.reduce_sum(a * b) for a, b in zip(new.h + new.c, d_h + d_c)])
    want_meta, want_h, want_c = tape.gradient(target, (meta, state.h, state.c))
    _, _, saved = learned_optimizer.lstm_forward(meta, state, grads, config)
    got_meta, got_state = learned_optimizer.lstm_backward(meta, saved, d_updates, learned_optimizer.LSTMState(d_h, d_c), config)
    for k in meta:
        np.testing.assert_allclose(got_meta[k].numpy(), want_meta[k].numpy(), rtol=1e-10, atol=1e-12)
    for got, want in zip(got_state.h + got_state.c, want_h + want_c):
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-10, atol=1e-12)


def test_options_beyond_the_paper_are_validated_described_and_saved(tmp_path):
    paper = learned_optimizer.LSTMConfig()
    assert paper.describe() == {"hidden": 20, "layers": 2, "preprocess_p": 10.0, "scale": 0.1}  # what run keys hashed before the options
    config = learned_optimizer.LSTMConfig(hidden=3, preprocess_p=0.0, features="adam", output="tanh", nominal="adam", nominal_lr=0.01)
    assert config.describe()["nominal"] == "adam" and "beta" not in config.describe()
    path = tmp_path / "beyond.weights.h5"
    learned_optimizer.save_weights(path, learned_optimizer.init_meta_params(config, 0), config)
    assert learned_optimizer.load_weights(path)[1] == config
    for bad, message in [(dict(features="momentum"), "features must be one of"), (dict(features="adam"), "set preprocess_p=0"),
                         (dict(output="clip"), "output must be one of"), (dict(nominal="adam"), "nominal_lr > 0"),
                         (dict(nominal_lr=0.1), "nominal_lr > 0"), (dict(beta=1.0), "beta must lie in")]:
        with pytest.raises(ValueError, match=message):
            learned_optimizer.LSTMConfig(**bad)


BEYOND_ALL = learned_optimizer.LSTMConfig(hidden=4, preprocess_p=0.0, features="adam", output="tanh", nominal="adam", nominal_lr=0.01)


@pytest.mark.parametrize("config", [learned_optimizer.LSTMConfig(hidden=6), BEYOND_ALL], ids=["paper", "beyond"])
def test_a_lean_forward_gives_the_backward_pass_the_same_activations_bit_for_bit(config, nprng):
    """lean=True keeps the step's inputs and the states it read (82 of the paper LSTM's 304 floats per coordinate) and
    lstm_backward recomputes the gates by the forward's own operations: float32 gradients equal to the last bit."""
    meta = {k: v + tf.constant(nprng.normal(size=v.shape) * 0.3, tf.float32) for k, v in learned_optimizer.init_meta_params(config, seed=1).items()}
    state = learned_optimizer.init_state(config, 40)
    state = learned_optimizer.LSTMState(*(tuple(t + tf.constant(nprng.normal(size=t.shape), tf.float32) for t in part) for part in state[:2]), state.moments)
    grads = tf.constant(nprng.normal(size=(40,)), tf.float32)
    d_updates, d_new = tf.constant(nprng.normal(size=(40,)), tf.float32), tf.nest.map_structure(lambda t: tf.ones_like(t) * 0.5, state)
    results = {}
    for lean in (False, True):
        updates, new_state, saved = learned_optimizer.lstm_forward(meta, state, grads, config, lean=lean)
        results[lean] = (updates, new_state, *learned_optimizer.lstm_backward(meta, saved, d_updates, d_new._replace(moments=()), config))
    for full, lean in zip(tf.nest.flatten(results[False]), tf.nest.flatten(results[True])):
        np.testing.assert_array_equal(full.numpy(), lean.numpy())
