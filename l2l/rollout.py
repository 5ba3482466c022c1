"""Running an optimiser on a batch of problem instances: the one rollout loop.

Meta-training validates with it, evaluation and tuning measure with it.
Seed offsets keep the problem instances of meta-training, validation,
learning-rate tuning and testing apart.
"""

import tensorflow as tf

from l2l.problems import loss_and_grads

VALID_SEED = 1_000_003
TUNE_SEED = 2_000_003
TEST_SEED = 3_000_017


STREAMS = ("keyed", "counter")  # how a seed becomes a random stream: see generator


def generator(seed, streams="keyed"):
    """The tf.random.Generator of `seed`: a Philox stream keyed by the seed, so distinct seeds are independent.

    "counter" is tf.random.Generator.from_seed, which puts the seed in Philox's
    counter: seed s + 1 then replays seed s's stream one block (4 numbers)
    later (measured: from_seed(3000018).uniform([12]) is from_seed(3000017)'s
    from its fifth number on), so consecutive seeds drew nearly the same
    instances and minibatches. Only runs made before this was found use it.
    """
    if streams not in STREAMS:
        raise ValueError(f"streams must be one of {STREAMS}, got {streams!r}")
    if streams == "counter":
        return tf.random.Generator.from_seed(seed)
    return tf.random.Generator.from_key_counter(key=seed, counter=[0, 0], alg="philox")


def reset(rng, seed, streams="keyed"):
    """Puts `rng` back at the start of `seed`'s stream (as generator(seed, streams) starts)."""
    if streams == "counter":
        rng.reset_from_seed(seed)
    else:
        rng.reset_from_key_counter(key=seed, counter=[0, 0])


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
