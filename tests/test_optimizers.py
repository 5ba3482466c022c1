"""Every optimiser, hand-designed or learned, against one contract; baselines against Keras."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from l2l import learned_optimizer, optimizers

KERAS = {
    "sgd": lambda lr: keras.optimizers.SGD(lr),
    "nag": lambda lr: keras.optimizers.SGD(lr, momentum=0.9, nesterov=True),
    "rmsprop": lambda lr: keras.optimizers.RMSprop(lr),
    "adam": lambda lr: keras.optimizers.Adam(lr),
}


def quadratic_problem(seed=0, dims=6):
    r = np.random.default_rng(seed)
    w = tf.constant(r.normal(size=(dims, dims)), tf.float32)
    y = tf.constant(r.normal(size=dims), tf.float32)
    theta0 = r.normal(size=dims).astype(np.float32)

    def loss(theta):
        return tf.reduce_sum(tf.square(tf.linalg.matvec(w, theta) - y))

    return loss, theta0


@pytest.mark.parametrize("name", sorted(optimizers.BASELINES))
@pytest.mark.parametrize("lr", [0.003, 0.05])
def test_baseline_follows_keras_step_by_step(name, lr):
    _follows_keras(KERAS[name](lr), optimizers.BASELINES[name](lr), *quadratic_problem())


def _follows_keras(reference, ours, loss, theta0, steps=25):
    """`ours` (init/update) and the Keras optimizer `reference` take `steps` steps on `loss` from theta0 in lockstep."""
    var = tf.Variable(theta0)
    theta = tf.constant(theta0)
    state = ours.init(theta)
    for _ in range(steps):
        with tf.GradientTape() as tape:
            value = loss(var)
        reference.apply_gradients([(tape.gradient(value, var), var)])
        updates, state = ours.update(_grad(loss, theta), state, theta)
        theta = theta + updates
        np.testing.assert_allclose(theta.numpy(), var.numpy(), rtol=2e-5, atol=2e-6)


@pytest.mark.parametrize("name", sorted(optimizers.FACTORIES))
def test_baselines_accept_nested_parameters(name):
    params = {"a": tf.ones([2, 3]), "b": (tf.ones([4]),)}
    grads = {"a": tf.fill([2, 3], 0.5), "b": (tf.fill([4], -2.0),)}
    opt = optimizers.FACTORIES[name](0.1)
    updates, state = opt.update(grads, opt.init(params), params)
    tf.nest.assert_same_structure(updates, params)
    assert float(tf.reduce_max(updates["a"])) < 0 < float(tf.reduce_min(updates["b"][0]))  # descent direction


def all_optimizers():
    config = learned_optimizer.LSTMConfig(hidden=5)
    lstm = learned_optimizer.learned(learned_optimizer.init_meta_params(config, seed=0), config)
    return {**{n: f(0.01) for n, f in optimizers.FACTORIES.items()}, "lstm": lstm}


@pytest.mark.parametrize("name", ["sgd", "nag", "rmsprop", "adam", "nag_decay", "adam_decay", "lstm"])
def test_contract_shared_by_every_optimiser(name):
    """init/update are pure, keep shapes and state structure, and trace in tf.function."""
    opt = all_optimizers()[name]
    params = tf.reshape(tf.range(12, dtype=tf.float32) / 10.0, [3, 4])
    grads = tf.sin(params) - 0.3
    state = opt.init(params)
    updates, new_state = opt.update(grads, state, params)
    assert updates.shape == params.shape and updates.dtype == tf.float32
    tf.nest.assert_same_structure(state, new_state)
    for a, b in zip(tf.nest.flatten(state), tf.nest.flatten(new_state)):
        assert a.shape == b.shape
    # Pure: the same inputs give the same outputs, and the input state is untouched.
    again, _ = opt.update(grads, state, params)
    np.testing.assert_array_equal(updates.numpy(), again.numpy())
    compiled, _ = tf.function(opt.update)(grads, state, params)
    np.testing.assert_allclose(compiled.numpy(), updates.numpy(), rtol=1e-6, atol=1e-7)
    # Two steps with state carried are what the optimiser does; they differ from a fresh start.
    second, _ = opt.update(grads, new_state, params + updates)
    assert np.all(np.isfinite(second.numpy()))
    if name != "sgd":
        assert not np.allclose(second.numpy(), updates.numpy())


def test_scaled_multiplies_every_update_and_keeps_the_state():
    grads = tf.constant([[0.5, -2.0, 1e-3]])
    plain, scaled = optimizers.adam(0.01), optimizers.scaled(optimizers.adam(0.01), 0.25)
    u1, s1 = plain.update(grads, plain.init(grads))
    u2, s2 = scaled.update(grads, scaled.init(grads))
    np.testing.assert_allclose(u2.numpy(), 0.25 * u1.numpy(), rtol=1e-7)
    np.testing.assert_array_equal(s1.v.numpy(), s2.v.numpy())


SCHEDULES = {  # Keras' own schedules; `iterations` (0-based) is our step minus one, so decay_steps - 1 reaches the last rate at our step decay_steps
    0.0: lambda lr, to, n: keras.optimizers.schedules.PolynomialDecay(lr, n - 1, lr * to, power=1.0),
    1.0: lambda lr, to, n: keras.optimizers.schedules.CosineDecay(lr, n - 1, alpha=to),
}


@pytest.mark.parametrize("name, reference", [("nag_decay", lambda s: keras.optimizers.SGD(s, momentum=0.5, nesterov=True)),
                                             ("adam_decay", lambda s: keras.optimizers.Adam(s, beta_1=0.5))])
@pytest.mark.parametrize("cosine", sorted(SCHEDULES))
def test_scheduled_baselines_follow_keras_with_its_learning_rate_schedules(name, reference, cosine):
    """The rate at step t is used in step t's update, NAG's velocity accumulating each step's own rate; past
    decay_steps the rate holds at its last value (25 steps, a schedule of 10)."""
    extra = {"momentum": 0.5} if name == "nag_decay" else {"beta_1": 0.5}
    _follows_keras(reference(SCHEDULES[cosine](0.05, 0.1, 10)), optimizers.SCHEDULED[name](0.05, decay_to=0.1, decay_steps=10, cosine=cosine, **extra),
                   *quadratic_problem(1))


@pytest.mark.parametrize("name, plain", [("nag_decay", "nag"), ("adam_decay", "adam")])
def test_a_schedule_that_decays_to_one_is_the_constant_rate_and_bad_schedules_are_refused(name, plain):
    loss, theta0 = quadratic_problem(2)
    a, b = optimizers.SCHEDULED[name](0.01, decay_to=1.0, cosine=1.0), optimizers.BASELINES[plain](0.01)
    ta = tb = tf.constant(theta0)
    sa, sb = a.init(ta), b.init(tb)
    for _ in range(5):
        ua, sa = a.update(_grad(loss, ta), sa)
        ub, sb = b.update(_grad(loss, tb), sb)
        ta, tb = ta + ua, tb + ub
    np.testing.assert_array_equal(ta.numpy(), tb.numpy())
    with pytest.raises(ValueError, match="scheduled needs 0 < decay_to <= 1"):
        optimizers.SCHEDULED[name](0.01, decay_to=0.0)
    assert optimizers.schedule_factor(1, 0.1, 10, 0.0).numpy() == 1.0 and np.isclose(optimizers.schedule_factor(10, 0.1, 10, 1.0).numpy(), 0.1)


def _grad(loss, theta):
    with tf.GradientTape() as tape:
        tape.watch(theta)
        value = loss(theta)
    return tape.gradient(value, theta)


def test_the_baselines_are_declared_once_and_every_name_has_its_factory():
    """l2l.baselines is the table (names, labels, tuned knobs); l2l.optimizers pairs each name with a factory that takes
    those knobs; the grids every committed panel was tuned on (their keys hash them) stay as they were."""
    from l2l import baselines, evaluate, plots
    from l2l.chapters import base

    assert set(optimizers.FACTORIES) == set(baselines.TABLE) and tuple(optimizers.BASELINES) == baselines.PLAIN == base.BASELINES
    assert tuple(optimizers.SCHEDULED) == baselines.SCHEDULED == base.SCHEDULED
    assert evaluate.EXTRA_GRIDS == {"nag": {"momentum": (0.5, 0.9, 0.99)}, "adam": {"beta_1": (0.5, 0.9)}}
    assert evaluate.DECAY_GRID == {"decay_to": (1.0, 0.3, 0.1, 0.03), "cosine": (0.0, 1.0)}
    for name, spec in baselines.TABLE.items():
        knobs = {k: v[0] for k, v in spec.knobs.items()}
        if spec.scheduled:
            knobs.update({k: v[0] for k, v in baselines.DECAY_GRID.items()}, decay_steps=10.0)
        optimizer = optimizers.FACTORIES[name](0.1, **knobs)
        params = tf.ones([2, 3])
        updates, _ = optimizer.update(tf.ones([2, 3]), optimizer.init(params), params)
        assert updates.shape == (2, 3) and plots.label(name) == spec.label
