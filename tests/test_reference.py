"""The fast meta-gradient (l2l.meta) equals the plain reference in benchmarks/."""

import sys
from pathlib import Path

import numpy as np
import tensorflow as tf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import reference  # noqa: E402
from l2l import learned_optimizer, meta, problems  # noqa: E402


def test_fast_meta_gradient_equals_the_reference():
    config = learned_optimizer.LSTMConfig(hidden=5)
    problem = problems.Quadratic(dims=4)
    trainer = meta.MetaTrainer(problem, config, meta.MetaConfig(batch=3, horizon=5, unroll=5, valid_instances=2))
    rng = tf.random.Generator.from_seed(3)
    batch = problem.sample(rng, 3)
    params = rng.normal([3, 4])
    start = {k: w.read_value() for k, w in trainer.state.weights.items()}
    loss, grads, _, _ = meta.segment_meta_gradient(problem, config, 5, start, params, learned_optimizer.init_state(config, 12), batch)

    weights = learned_optimizer.init_meta_params(config, trainer.config.seed)  # what the trainer starts from
    with tf.GradientTape() as tape:
        tape.watch(weights)
        plain = reference.split_gates(weights, config)
    ref_loss, ref_plain_grads = reference.segment_meta_gradient(problem, config, 5, plain, params, batch, None)
    # Carry the per-gate gradients back to the fused layout through the split.
    ref_grads = tape.gradient(plain, weights, output_gradients=ref_plain_grads)
    np.testing.assert_allclose(float(ref_loss), float(loss), rtol=1e-5)
    for k, g in ref_grads.items():
        np.testing.assert_allclose(grads[k].numpy(), g.numpy(), rtol=2e-4, atol=1e-6)
