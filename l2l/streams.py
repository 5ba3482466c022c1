"""Seeds and random streams: how a seed becomes a tf.random.Generator, and the offsets that keep the problem instances
of meta-training, validation, tuning and testing apart. Below problems, rollout, meta and evaluate, which all draw from it."""

import contextlib

import tensorflow as tf

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


@contextlib.contextmanager
def at_start(rng, seed, streams="keyed"):
    """Inside the block `rng` draws `seed`'s stream from its start (as generator(seed, streams) would, so a traced
    function that reads `rng` serves another stream without a trace of its own); after it, `rng` is where it was."""
    kept = tf.identity(rng.state)
    reset(rng, seed, streams)
    try:
        yield rng
    finally:
        rng.state.assign(kept)
