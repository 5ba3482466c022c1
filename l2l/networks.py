"""The coordinatewise LSTM optimiser (paper section 2.1).

One small LSTM, its weights shared by every coordinate, runs on each
coordinate's preprocessed gradient with that coordinate's own hidden state,
and a linear layer turns its output into the coordinate's update:

    updates, state = lstm_step(meta_params, state, grads, config)

That pure step is the one update rule of the project: meta-training unrolls
it, evaluation runs it through `learned(...)` like any hand-designed
optimiser, and later wrappers call it too.
"""

import dataclasses
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from l2l.optimizers import Optimizer
from l2l.preprocess import log_and_sign


@dataclasses.dataclass(frozen=True)
class LSTMConfig:
    hidden: int = 20  # units in each LSTM layer (paper: 20)
    layers: int = 2  # stacked LSTM layers (paper: 2)
    preprocess_p: float = 10.0  # LogAndSign's p (paper 10; DeepMind code 5); 0 feeds raw gradients
    scale: float = 0.1  # multiplies the linear output (paper 0.1; DeepMind code 0.01)

    def __post_init__(self):
        if self.hidden < 1 or self.layers < 1:
            raise ValueError(f"LSTMConfig needs hidden >= 1 and layers >= 1, got {self}")
        if self.preprocess_p < 0:
            raise ValueError(f"LSTMConfig.preprocess_p must be >= 0 (0 disables preprocessing), got {self.preprocess_p}")

    @property
    def inputs(self):
        return 2 if self.preprocess_p > 0 else 1


class LSTMState(NamedTuple):
    h: tuple  # per layer, [coordinates, hidden]
    c: tuple  # per layer, [coordinates, hidden]


def meta_param_shapes(config):
    """Name -> shape of every meta-parameter; gates fused as [i, f, o, g]."""
    shapes = {}
    width = config.inputs
    for layer in range(config.layers):
        shapes[f"lstm{layer}/kernel"] = (width + config.hidden, 4 * config.hidden)
        shapes[f"lstm{layer}/bias"] = (4 * config.hidden,)
        width = config.hidden
    shapes["out/kernel"] = (config.hidden, 1)
    shapes["out/bias"] = (1,)
    return shapes


def init_meta_params(config, seed):
    """Glorot-uniform kernels, zero biases except forget gates at 1 (as Keras' unit_forget_bias)."""
    rng = np.random.default_rng(seed)
    params = {}
    for name, shape in meta_param_shapes(config).items():
        if name.endswith("kernel"):
            limit = np.sqrt(6.0 / (shape[0] + shape[1]))
            value = rng.uniform(-limit, limit, shape)
        else:
            value = np.zeros(shape)
            if name.startswith("lstm"):
                value[config.hidden : 2 * config.hidden] = 1.0
        params[name] = tf.constant(value, tf.float32)
    return params


def init_state(config, num_coordinates, dtype=tf.float32):
    zeros = tf.zeros([num_coordinates, config.hidden], dtype)
    return LSTMState(h=(zeros,) * config.layers, c=(zeros,) * config.layers)


def lstm_step(meta_params, state, grads, config):
    """One optimiser step for every coordinate of `grads` (any shape).

    Returns updates shaped like `grads` and the new state. The gradients are
    inputs only: meta-training feeds them through tf.stop_gradient, dropping
    second derivatives as the paper does.
    """
    flat = tf.reshape(grads, [-1])
    x = log_and_sign(flat, config.preprocess_p) if config.preprocess_p > 0 else flat[:, None]
    hidden = config.hidden
    new_h, new_c = [], []
    for layer in range(config.layers):
        kernel = meta_params[f"lstm{layer}/kernel"]
        width = kernel.shape[0] - hidden
        # Two products instead of one over concat([x, h]), and tf.split rather
        # than slicing: slices' gradients (StridedSliceGrad) cost twice the
        # whole step on CPU (benchmarks/run.py measures it).
        z = tf.matmul(x, kernel[:width]) + tf.matmul(state.h[layer], kernel[width:]) + meta_params[f"lstm{layer}/bias"]
        sigmoid_part, candidate = tf.split(z, [3 * hidden, hidden], axis=1)
        i, f, o = tf.split(tf.sigmoid(sigmoid_part), 3, axis=1)  # one sigmoid over the three sigmoid gates
        c = f * state.c[layer] + i * tf.tanh(candidate)
        x = o * tf.tanh(c)
        new_h.append(x)
        new_c.append(c)
    out = tf.matmul(x, meta_params["out/kernel"]) + meta_params["out/bias"]
    updates = tf.reshape(config.scale * out, tf.shape(grads))
    return updates, LSTMState(tuple(new_h), tuple(new_c))


def learned(meta_params, config=LSTMConfig()):
    """The LSTM as an ordinary optimiser: a factory from meta-parameters."""

    def init(params):
        return init_state(config, tf.size(params))

    def update(grads, state, params=None):
        return lstm_step(meta_params, state, grads, config)

    return Optimizer(init, update)


def save_weights(path, meta_params, config, **provenance):
    """Writes meta-parameters and their config to an HDF5 file (no pickle)."""
    import h5py

    with h5py.File(path, "w") as f:
        f.attrs["format"] = "l2l-lstm-optimizer-1"
        for field, value in dataclasses.asdict(config).items():
            f.attrs[f"config/{field}"] = value
        for key, value in provenance.items():
            f.attrs[f"provenance/{key}"] = value if isinstance(value, (int, float)) else str(value)
        for name, value in meta_params.items():
            f.create_dataset(name, data=np.asarray(value))


def load_weights(path):
    """Returns (meta_params, config, provenance); checks shapes against the config."""
    import os

    import h5py

    if not os.path.exists(path):
        raise FileNotFoundError(f"no LSTM optimiser weights at {path!r}: train one with l2l.meta.meta_train or pick a file from book/results/")
    with h5py.File(path, "r") as f:
        if f.attrs.get("format") != "l2l-lstm-optimizer-1":
            raise ValueError(f"{path!r} is not an l2l LSTM optimiser weights file (no 'format' = 'l2l-lstm-optimizer-1' attribute); save one with l2l.networks.save_weights")
        fields = {k.split("/", 1)[1]: f.attrs[k] for k in f.attrs if k.startswith("config/")}
        config = LSTMConfig(
            hidden=int(fields["hidden"]), layers=int(fields["layers"]),
            preprocess_p=float(fields["preprocess_p"]), scale=float(fields["scale"]),
        )
        provenance = {k.split("/", 1)[1]: f.attrs[k] for k in f.attrs if k.startswith("provenance/")}
        expected = meta_param_shapes(config)
        found = {}
        f.visititems(lambda name, obj: found.__setitem__(name, obj[()]) if hasattr(obj, "shape") else None)
        if set(found) != set(expected):
            raise ValueError(f"{path!r} holds {sorted(found)}, expected {sorted(expected)} for {config}")
        for name, shape in expected.items():
            if tuple(found[name].shape) != shape:
                raise ValueError(f"{path!r}: {name} has shape {found[name].shape}, expected {shape} for {config}")
    return {k: tf.constant(v, tf.float32) for k, v in found.items()}, config, provenance
