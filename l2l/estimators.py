"""Meta-gradient estimators: how one segment of an unroll becomes a meta-loss and its gradient.

An estimator turns (meta-parameters, optimisee parameters, LSTM state, its own
carry) into (meta-loss, gradient by meta-parameter name, parameters, LSTM
state, carry) over one segment of `unroll` steps; the trainer applies the
gradient, and the unroll (which segments, which problems) is the trainer's:

    TruncatedBackprop   the paper's: backpropagation through the segment's
                        optimisee steps, second derivatives dropped
    Imitation           Chen et al. (2020): a teacher optimiser takes the
                        steps and the LSTM learns to reproduce its updates

ESTIMATORS names them; `pick` says which one an epoch uses.
"""

import tensorflow as tf

from l2l import learned_optimizer, optimizers
from l2l.problems import loss_and_grads


def segment_meta_gradient(problem, lstm_config, unroll, meta_params, params, lstm_state, batch, rng=None, fused=True, parts=None, lean=False):
    """One truncated-BPTT segment: (meta-loss, its gradient by meta-parameter name, params, LSTM state).

    The meta-loss is the sum over the segment's steps t = 1..unroll of the
    mean optimisee loss. With second derivatives dropped, its gradient with
    respect to the params at step t is just the optimisee's own gradient
    there (over the number of instances), which the forward pass computes
    anyway; so the backward pass needs no tape: it runs lstm_backward from
    the last step to the first, feeding each step the sum of the optimisee
    gradients of all later steps. benchmarks/reference.py computes the same
    with tf.GradientTape, and tests/test_reference.py compares the two.
    With parameter groups, lstm_config maps group -> LSTMConfig and parts is
    learned_optimizer.partition(...) of the problem; lstm_state then maps
    group -> LSTMState. lean=True keeps only each step's LSTM inputs and states
    and recomputes its gates in the backward pass (learned_optimizer.Lean):
    less memory, one more forward pass, the same result.
    """
    n = tf.cast(tf.shape(params)[0], params.dtype)
    saved, later_grads, meta_loss = [], [], 0.0
    for t in range(unroll):
        loss, grads = loss_and_grads(problem, params, batch, rng)
        if t > 0:  # the segment's first loss does not depend on this segment's updates
            meta_loss += tf.reduce_mean(loss)
            later_grads.append(grads)
        updates, lstm_state, step = learned_optimizer.grouped_forward(meta_params, lstm_state, grads, lstm_config, parts, fused, lean)
        saved.append(step)
        params = params + updates
    loss, grads = loss_and_grads(problem, params, batch, rng)
    meta_loss += tf.reduce_mean(loss)

    d_params, d_state, total = grads / n, None, None
    for t in reversed(range(unroll)):
        d_meta, d_state = learned_optimizer.grouped_backward(meta_params, saved[t], d_params, d_state, lstm_config, parts, fused)
        total = d_meta if total is None else {k: total[k] + d_meta[k] for k in total}
        if t > 0:
            d_params += later_grads[t - 1] / n
    return meta_loss, total, params, lstm_state


def segment_imitation_gradient(problem, lstm_config, unroll, teacher, meta_params, params, lstm_state, teacher_state, batch, rng=None, fused=True,
                               parts=None, lean=False):
    """One segment of imitation learning (Chen et al. 2020): the teacher (an l2l.optimizers optimiser) takes the
    steps, and the LSTM, fed the same gradients, is trained to reproduce its updates. Meta-loss: the sum over the
    segment's steps of the mean over instances and coordinates of (LSTM update - teacher update)^2. The gradients
    along the teacher's path do not depend on the LSTM, so the backward pass runs through the LSTM's own state
    only, never through the optimisee. Returns (meta-loss, its gradient by meta-parameter name, params, LSTM state,
    teacher state)."""
    size = tf.cast(tf.size(params), params.dtype)
    saved, differences, meta_loss = [], [], 0.0
    for _ in range(unroll):
        _, grads = loss_and_grads(problem, params, batch, rng)
        updates, lstm_state, step = learned_optimizer.grouped_forward(meta_params, lstm_state, grads, lstm_config, parts, fused, lean)
        target, teacher_state = teacher.update(grads, teacher_state, params)
        difference = updates - target
        meta_loss += tf.reduce_sum(tf.square(difference)) / size
        saved.append(step)
        differences.append(difference)
        params = params + target
    d_state, total = None, None
    for t in reversed(range(unroll)):
        d_meta, d_state = learned_optimizer.grouped_backward(meta_params, saved[t], 2.0 * differences[t] / size, d_state, lstm_config, parts, fused)
        total = d_meta if total is None else {k: total[k] + d_meta[k] for k in total}
    return meta_loss, total, params, lstm_state, teacher_state


class TruncatedBackprop:
    """The paper's estimator (segment_meta_gradient); it carries nothing between segments."""

    def __init__(self, config):
        self.lean = config.recompute

    def start(self, params):
        return None

    def segment(self, problem, lstm_config, unroll, meta_params, params, lstm_state, carry, batch, rng, parts):
        meta_loss, grads, params, lstm_state = segment_meta_gradient(problem, lstm_config, unroll, meta_params, params, lstm_state, batch, rng, parts=parts,
                                                                     lean=self.lean)
        return meta_loss, grads, params, lstm_state, carry


class Imitation:
    """Imitation of MetaConfig.teacher at teacher_lr (segment_imitation_gradient); it carries the teacher's state."""

    def __init__(self, config):
        self.teacher = optimizers.BASELINES[config.teacher](config.teacher_lr)
        self.lean = config.recompute

    def start(self, params):
        return self.teacher.init(params)

    def segment(self, problem, lstm_config, unroll, meta_params, params, lstm_state, carry, batch, rng, parts):
        return segment_imitation_gradient(problem, lstm_config, unroll, self.teacher, meta_params, params, lstm_state, carry, batch, rng, parts=parts,
                                          lean=self.lean)


ESTIMATORS = {"truncated": TruncatedBackprop, "imitation": Imitation}  # name -> class built from a MetaConfig


def used(config):
    """The estimators a run with this MetaConfig may pick."""
    return ["truncated"] + (["imitation"] if config.imitation > 0 else [])


def pick(config, rng):
    """The estimator of the next epoch. Draws from `rng` only where a technique asks for it (imitation > 0), so that
    runs without one keep their random streams."""
    return "imitation" if config.imitation > 0 and float(rng.uniform([], dtype=tf.float64)) < config.imitation else "truncated"
