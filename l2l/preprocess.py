"""Gradient preprocessing from the paper's appendix A ("LogAndSign").

A coordinate's gradient g becomes two inputs of similar magnitude:

    (log|g| / p, sign g)   if |g| >= exp(-p)
    (-1,         exp(p) g) otherwise

so the LSTM sees gradients spanning many orders of magnitude on one scale.
"""

import tensorflow as tf


def log_and_sign(grads, p=10.0):
    """Returns a tensor of shape grads.shape + [2]."""
    grads = tf.convert_to_tensor(grads)
    threshold = tf.exp(tf.constant(-p, grads.dtype))
    magnitude = tf.abs(grads)
    large = magnitude >= threshold
    # The maximum keeps log() finite in the branch tf.where discards, so that no
    # inf or NaN appears even where the small-gradient branch is taken.
    log_part = tf.where(large, tf.math.log(tf.maximum(magnitude, threshold)) / p, -tf.ones_like(grads))
    sign_part = tf.where(large, tf.sign(grads), tf.exp(tf.constant(p, grads.dtype)) * grads)
    return tf.stack([log_part, sign_part], axis=-1)
