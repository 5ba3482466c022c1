"""A plain, readable implementation of one meta-training segment: the yardstick.

The same math as l2l.meta.segment_meta_gradient, written the obvious way:
tf.GradientTape over the unrolled steps (the optimisee's gradient taken with
a nested tape and held constant), one weight matrix per gate and per input,
one activation call per gate, coordinates along the first axis, the
preprocessing spelled out.
tests/test_reference.py checks that both give the same meta-gradient.
"""

import math

import tensorflow as tf

GATES = ["input", "forget", "output", "cell"]


def split_gates(meta_params, config):
    """The fused [i, f, o, g] kernels of l2l.networks as per-gate, per-input matrices."""
    hidden, plain = config.hidden, {}
    for layer in range(config.layers):
        kernel, bias = meta_params[f"lstm{layer}/kernel"], meta_params[f"lstm{layer}/bias"]
        width = kernel.shape[0] - hidden
        for g, gate in enumerate(GATES):
            columns = slice(g * hidden, (g + 1) * hidden)
            plain[f"{layer}/{gate}/x"] = kernel[:width, columns]
            plain[f"{layer}/{gate}/h"] = kernel[width:, columns]
            plain[f"{layer}/{gate}/b"] = bias[columns]
    plain["out/w"], plain["out/b"] = meta_params["out/kernel"], meta_params["out/bias"]
    return plain


def preprocess(g, p):
    keep = tf.cast(tf.abs(g) >= math.exp(-p), g.dtype)
    log_part = keep * (tf.math.log(tf.abs(g) + 1e-30) / p) + (1 - keep) * -1.0
    sign_part = keep * tf.sign(g) + (1 - keep) * math.exp(p) * g
    return tf.stack([log_part, sign_part], axis=1)


def lstm(plain, config, h, c, g):
    x = preprocess(g, config.preprocess_p)
    new_h, new_c = [], []
    for layer in range(config.layers):
        pre = {gate: x @ plain[f"{layer}/{gate}/x"] + h[layer] @ plain[f"{layer}/{gate}/h"] + plain[f"{layer}/{gate}/b"] for gate in GATES}
        cell = tf.sigmoid(pre["forget"]) * c[layer] + tf.sigmoid(pre["input"]) * tf.tanh(pre["cell"])
        x = tf.sigmoid(pre["output"]) * tf.tanh(cell)
        new_h.append(x)
        new_c.append(cell)
    return config.scale * (x @ plain["out/w"] + plain["out/b"]), new_h, new_c


def segment_meta_gradient(problem, config, unroll, plain, params, batch, rng):
    """(meta-loss, gradient by plain weight name) of one truncated segment from zero state."""
    n = int(params.shape[0]) * int(params.shape[1])
    h = [tf.zeros([n, config.hidden]) for _ in range(config.layers)]
    c = [tf.zeros([n, config.hidden]) for _ in range(config.layers)]
    with tf.GradientTape() as tape:
        tape.watch(plain)
        total = 0.0
        for t in range(unroll):
            with tf.GradientTape() as inner:
                inner.watch(params)
                loss = problem.loss(params, batch, rng)
            grads = tf.stop_gradient(inner.gradient(loss, params))
            if t > 0:
                total += tf.reduce_mean(loss)
            update, h, c = lstm(plain, config, h, c, tf.reshape(grads, [-1]))
            params = params + tf.reshape(update, params.shape)
        total += tf.reduce_mean(problem.loss(params, batch, rng))
    return total, tape.gradient(total, plain)
