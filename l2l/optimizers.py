"""Hand-designed optimisers as pure functions, in the optax shape.

An optimiser is a pair `init(params) -> state` and
`update(grads, state, params=None) -> (updates, state)`; apply with
`params + updates`. Params may be a tensor or any tf.nest structure of
tensors. The update rules follow `keras.optimizers` exactly (defaults and
epsilon placement included), so that tuned learning rates mean the same thing
as in Keras; `tests/test_optimizers.py` checks this step by step.
"""

from typing import Any, Callable, NamedTuple

import tensorflow as tf

Params = Any  # a tensor, or any tf.nest structure of tensors (the optimisee's parameters, and its gradients and updates alike)
State = Any  # an optimiser's own state: a NamedTuple of tensors (EmptyState, MomentumState, AdamState, ...)


class Optimizer(NamedTuple):
    init: Callable[[Params], State]  # params -> the state before the first step
    update: Callable[..., tuple]  # (grads, state, params=None) -> (updates, new state); apply with params + updates


class EmptyState(NamedTuple):
    pass


class MomentumState(NamedTuple):
    velocity: Any  # Keras' `m`: momentum * m - lr * g


class RMSPropState(NamedTuple):
    mean_square: Any  # starts at 0 as in Keras (the paper's Torch code started at 1)


class AdamState(NamedTuple):
    count: tf.Tensor  # number of updates taken, for bias correction
    m: Any
    v: Any


def _map(fn, *trees):
    return tf.nest.map_structure(fn, *trees)


def _zeros_like(params):
    return _map(tf.zeros_like, params)


def sgd(learning_rate):
    def init(params):
        return EmptyState()

    def update(grads, state, params=None):
        return _map(lambda g: -learning_rate * g, grads), state

    return Optimizer(init, update)


def nag(learning_rate, momentum=0.9):
    """Nesterov momentum as keras.optimizers.SGD(nesterov=True)."""

    def init(params):
        return MomentumState(_zeros_like(params))

    def update(grads, state, params=None):
        velocity = _map(lambda m, g: momentum * m - learning_rate * g, state.velocity, grads)
        updates = _map(lambda m, g: momentum * m - learning_rate * g, velocity, grads)
        return updates, MomentumState(velocity)

    return Optimizer(init, update)


def rmsprop(learning_rate, rho=0.9, epsilon=1e-7):
    """keras.optimizers.RMSprop: epsilon inside the square root."""

    def init(params):
        return RMSPropState(_zeros_like(params))

    def update(grads, state, params=None):
        ms = _map(lambda s, g: rho * s + (1.0 - rho) * tf.square(g), state.mean_square, grads)
        updates = _map(lambda s, g: -learning_rate * g / tf.sqrt(s + epsilon), ms, grads)
        return updates, RMSPropState(ms)

    return Optimizer(init, update)


def adam(learning_rate, beta_1=0.9, beta_2=0.999, epsilon=1e-7):
    """keras.optimizers.Adam: bias correction folded into the step size."""

    def init(params):
        return AdamState(tf.zeros([], tf.float32), _zeros_like(params), _zeros_like(params))

    def update(grads, state, params=None):
        count = state.count + 1.0
        alpha = learning_rate * tf.sqrt(1.0 - beta_2**count) / (1.0 - beta_1**count)
        m = _map(lambda m, g: m + (g - m) * (1.0 - beta_1), state.m, grads)
        v = _map(lambda v, g: v + (tf.square(g) - v) * (1.0 - beta_2), state.v, grads)
        updates = _map(lambda m, v: -alpha * m / (tf.sqrt(v) + epsilon), m, v)
        return updates, AdamState(count, m, v)

    return Optimizer(init, update)


def scaled(optimizer, multiplier):
    """`optimizer` with every update multiplied by `multiplier`: a learned optimiser's step-size knob
    (what `LearnedOptimizer(learning_rate=...)` is in Keras), tuned like a baseline's learning rate."""

    def update(grads, state, params=None):
        updates, state = optimizer.update(grads, state, params)
        return _map(lambda u: multiplier * u, updates), state

    return Optimizer(optimizer.init, update)


class ScheduledState(NamedTuple):
    count: tf.Tensor  # updates taken: the next one uses the rate at step count + 1
    inner: Any  # the scheduled optimiser's own state


def schedule_factor(step, decay_to, decay_steps, cosine):
    """The rate's multiplier at `step` (1-based): 1 at step 1, decay_to at decay_steps and after, linearly
    (cosine 0) or along half a cosine (cosine 1) in between; values between 0 and 1 mix the two shapes."""
    # Tensors throughout: tuning passes the knobs as variables read at run time (one trace serves every setting).
    span = tf.maximum(tf.cast(decay_steps, tf.float32) - 1.0, 1.0)
    progress = tf.clip_by_value((tf.cast(step, tf.float32) - 1.0) / span, 0.0, 1.0)
    linear = 1.0 + (decay_to - 1.0) * progress
    half_cosine = decay_to + (1.0 - decay_to) * 0.5 * (1.0 + tf.cos(tf.constant(3.141592653589793) * progress))
    return (1.0 - cosine) * linear + cosine * half_cosine


def scheduled(factory, learning_rate, decay_to=1.0, decay_steps=100, cosine=0.0, **options):
    """factory(learning_rate, **options) with its rate decayed over the run: the rate at step t is
    learning_rate * schedule_factor(t, ...), used in that step's update as a Keras LearningRateSchedule is
    (every optimiser is rebuilt each step with the step's rate around the same state, so NAG's velocity
    accumulates each step's own rate, as keras.optimizers.SGD's does). decay_to 1 is the constant rate."""
    if all(isinstance(v, (int, float)) for v in (decay_to, decay_steps, cosine)) and not (0.0 < decay_to <= 1.0 and decay_steps >= 1 and 0.0 <= cosine <= 1.0):
        raise ValueError(f"scheduled needs 0 < decay_to <= 1, decay_steps >= 1 and 0 <= cosine <= 1, got {decay_to}, {decay_steps}, {cosine}")

    def init(params):
        return ScheduledState(tf.zeros([], tf.float32), factory(learning_rate, **options).init(params))

    def update(grads, state, params=None):
        count = state.count + 1.0
        rate = learning_rate * schedule_factor(count, decay_to, decay_steps, cosine)
        updates, inner = factory(rate, **options).update(grads, state.inner, params)
        return updates, ScheduledState(count, inner)

    return Optimizer(init, update)


def nag_decay(learning_rate, momentum=0.9, decay_to=1.0, decay_steps=100, cosine=0.0):
    """NAG with a decaying rate (scheduled): the baseline a 100-step LSTM, able to learn a decaying step, must beat."""
    return scheduled(nag, learning_rate, decay_to, decay_steps, cosine, momentum=momentum)


def adam_decay(learning_rate, beta_1=0.9, decay_to=1.0, decay_steps=100, cosine=0.0):
    """ADAM with a decaying rate (scheduled)."""
    return scheduled(adam, learning_rate, decay_to, decay_steps, cosine, beta_1=beta_1)


# Name -> factory(learning_rate) for every hand-designed baseline every panel tunes by default.
BASELINES = {"sgd": sgd, "rmsprop": rmsprop, "adam": adam, "nag": nag}
# The scheduled baselines, asked for by name where an endpoint needs them (a separate list, so that the panels
# keyed by the default list keep their keys).
SCHEDULED = {"nag_decay": nag_decay, "adam_decay": adam_decay}
FACTORIES = {**BASELINES, **SCHEDULED}  # every name a panel may ask for
