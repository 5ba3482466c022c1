"""Running an optimiser on a batch of problem instances: the one rollout loop.

Meta-training validates with it, evaluation and tuning measure with it. The
seeds and streams it draws from are l2l.streams'.
"""

import tensorflow as tf

from l2l.problems import loss_and_grads
from l2l.streams import STREAMS, TEST_SEED, TUNE_SEED, VALID_SEED, generator, reset  # noqa: F401  (importable from here too)


def steps_of(problem, optimizer, instances, params, state, steps, rng=None, keep_path=False):
    """Runs `steps` steps from (params, state); returns (losses [steps, n], params, state), and with
    keep_path the parameters after every step [steps, n, d] as a fourth value.

    losses[t] is the loss at the parameters before step t; path[t] the parameters after it.
    Call inside tf.function.
    """
    losses = tf.TensorArray(tf.float32, size=steps, element_shape=[params.shape[0]])
    # Size 0 unless asked for: the path of an MLP's parameters would hold steps x n x d floats.
    path = tf.TensorArray(params.dtype, size=steps if keep_path else 0, element_shape=params.shape)
    for t in tf.range(steps):
        loss, grads = loss_and_grads(problem, params, instances, rng)
        losses = losses.write(t, loss)
        updates, state = optimizer.update(grads, state, params)
        params = params + updates
        if keep_path:
            path = path.write(t, params)
    if keep_path:
        return losses.stack(), params, state, path.stack()
    return losses.stack(), params, state


def trajectory(problem, optimizer, instances, params, steps, rng=None):
    """Losses [steps + 1, n] of `optimizer` run for `steps` steps; call inside tf.function."""
    losses, params, _ = steps_of(problem, optimizer, instances, params, optimizer.init(params), steps, rng)
    return tf.concat([losses, problem.loss(params, instances, rng)[None]], axis=0)


def fresh_instances(problem, seed, instances, offset=TEST_SEED):
    """Problem instances and initial parameters drawn from seed offset + seed."""
    rng = generator(offset + seed)
    batch = problem.sample(rng, instances)
    return batch, problem.init_params(rng, batch)
