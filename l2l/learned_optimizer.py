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
from typing import Dict, NamedTuple, Optional

import numpy as np
import tensorflow as tf

from l2l.optimizers import Optimizer
from l2l.preprocess import log_and_sign

# The types of the public signatures (shapes in the comments).
MetaParams = Dict[str, tf.Tensor]  # the LSTM's weights by name: "lstm{k}/kernel" [inputs + hidden, 4 hidden], "lstm{k}/bias" [4 hidden],
#                                    "out/kernel" [hidden, 1], "out/bias" [1] (meta_param_shapes); with groups, "<group>/" before each
Grads = tf.Tensor  # gradients of any shape (lstm_step), or [instances, coordinates] (learned); updates come back shaped alike
Groups = Optional[Dict[str, tf.Tensor]]  # group -> the coordinate indices it owns, for an LSTM per parameter group


@dataclasses.dataclass(frozen=True)
class LSTMConfig:
    hidden: int = 20  # units in each LSTM layer (paper: 20)
    layers: int = 2  # stacked LSTM layers (paper: 2)
    preprocess_p: float = 10.0  # LogAndSign's p (paper 10; DeepMind code 5); 0 feeds raw gradients
    scale: float = 0.1  # multiplies the linear output (paper 0.1; DeepMind code 0.01)
    # Beyond the paper (the defaults are the paper's LSTM, and leave run keys and weights files as they were):
    features: str = "gradient"  # the LSTM's inputs: "gradient" (preprocessed by preprocess_p) or "adam": g/sqrt(v), m/sqrt(v) (RNNprop, Lv et al. 2017)
    beta: float = 0.95  # decay of the moments m, v that features="adam" and nominal="adam" keep (RNNprop: 0.95 for both)
    output: str = "linear"  # the step: "linear", scale * the output layer (paper); "tanh", scale * tanh of it, bounded by scale (RNNprop)
    nominal: str = "none"  # a hand-designed step the learned one is added to: "none", "sgd" or "adam" (Harrison et al. 2022)
    nominal_lr: float = 0.0  # that nominal step's learning rate

    def __post_init__(self):
        if self.hidden < 1 or self.layers < 1:
            raise ValueError(f"LSTMConfig needs hidden >= 1 and layers >= 1, got {self}")
        if self.preprocess_p < 0:
            raise ValueError(f"LSTMConfig.preprocess_p must be >= 0 (0 disables preprocessing), got {self.preprocess_p}")
        for field, allowed in (("features", FEATURES), ("output", OUTPUTS), ("nominal", NOMINALS)):
            if getattr(self, field) not in allowed:
                raise ValueError(f"LSTMConfig.{field} must be one of {list(allowed)}, got {getattr(self, field)!r}")
        if self.features == "adam" and self.preprocess_p:
            raise ValueError("LSTMConfig(features='adam') reads Adam-normalised inputs, which need no LogAndSign: set preprocess_p=0")
        if not 0.0 < self.beta < 1.0:
            raise ValueError(f"LSTMConfig.beta must lie in (0, 1), got {self.beta}")
        if (self.nominal == "none") != (self.nominal_lr == 0.0) or self.nominal_lr < 0:
            raise ValueError(f"LSTMConfig needs nominal_lr > 0 with a nominal step and 0 without one, got nominal={self.nominal!r}, nominal_lr={self.nominal_lr}")

    @property
    def inputs(self):
        return 2 if self.preprocess_p > 0 or self.features == "adam" else 1

    @property
    def moments(self):
        """Whether the state keeps Adam's moments (for the inputs or the nominal step)."""
        return self.features == "adam" or self.nominal == "adam"

    def describe(self):
        """The fields as plain data, those beyond the paper left out at their defaults: what run keys hash, so that
        runs made before the fields existed keep their keys."""
        return {k: v for k, v in dataclasses.asdict(self).items() if BEYOND_PAPER.get(k, ...) != v}


FEATURES = ("gradient", "adam")
OUTPUTS = ("linear", "tanh")
NOMINALS = ("none", "sgd", "adam")
BEYOND_PAPER = {"features": "gradient", "beta": 0.95, "output": "linear", "nominal": "none", "nominal_lr": 0.0}
EPSILON = 1e-8  # Adam's, in the normalised inputs and the nominal step


class LSTMState(NamedTuple):
    # Coordinates run along the last axis: every gate is then a contiguous
    # block of rows, and splitting or joining gates copies no strided memory.
    h: tuple  # per layer, [hidden, coordinates]
    c: tuple  # per layer, [hidden, coordinates]
    moments: tuple = ()  # (m [coordinates], v [coordinates], steps taken []) when config.moments, else empty


def meta_param_shapes(config) -> Dict[str, tuple]:
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


def init_meta_params(config, seed: int) -> MetaParams:
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


def padded(num_coordinates):
    """The state's width: coordinates rounded up to a multiple of 16.

    Rows of 16 floats are 64 bytes, TF's alignment; splitting an aligned
    tensor along its first axis then shares its buffer, where an unaligned
    one is copied, gate by gate, every step. The padding coordinates see
    zero gradients, and their updates are dropped.
    """
    return (num_coordinates + 15) // 16 * 16


def init_state(config, num_coordinates: int, dtype=tf.float32) -> "LSTMState":
    zeros = tf.zeros([config.hidden, padded(num_coordinates)], dtype)
    moments = (tf.zeros([padded(num_coordinates)], dtype),) * 2 + (tf.zeros([], dtype),) if config.moments else ()
    return LSTMState(h=(zeros,) * config.layers, c=(zeros,) * config.layers, moments=moments)


class Saved(NamedTuple):
    """What one lstm_step keeps for its hand-written backward pass, per layer."""
    inputs: tuple  # [x; h; 1]: the layer's input, the hidden state it read, a row of ones [width + hidden + 1, coordinates]
    c: tuple  # cell state it read [hidden, coordinates]
    sigmoids: tuple  # [3 hidden, coordinates]: the input, forget and output gates
    candidate: tuple  # [hidden, coordinates]: tanh of the candidate cell state
    tanh_c: tuple  # tanh of the cell state it wrote [hidden, coordinates]
    squashed: object = None  # with output="tanh", tanh of the output layer [1, coordinates]


class Lean(NamedTuple):
    """What a lean lstm_forward keeps: 82 floats per coordinate (paper LSTM) where Saved holds 304."""
    x: object  # the first layer's inputs [inputs, coordinates]
    h: tuple  # hidden state each layer read [hidden, coordinates]
    c: tuple  # cell state each layer read [hidden, coordinates]


def _kernel_with_bias(meta_params, layer):
    """[width + hidden + 1, 4 hidden]: the bias as the kernel's last row, so one product adds it."""
    return tf.concat([meta_params[f"lstm{layer}/kernel"], meta_params[f"lstm{layer}/bias"][None, :]], axis=0)


def cell_forward(z, c):
    """From pre-activations [4 hidden, coordinates] and the cell state read: (sigmoids, candidate, c, tanh c, h)."""
    sigmoid_part, candidate = tf.split(z, [3 * c.shape[0], c.shape[0]], axis=0)
    sigmoids = tf.sigmoid(sigmoid_part)  # one call over the three sigmoid gates
    candidate = tf.tanh(candidate)
    i, f, o = tf.split(sigmoids, 3, axis=0)
    c = f * c + i * candidate
    tanh_c = tf.tanh(c)
    return sigmoids, candidate, c, tanh_c, o * tanh_c


def gate_gradients(sigmoids, candidate, tanh_c, c, d_h, d_c_later):
    """(gradient of the gates' pre-activations [4 hidden, coordinates], gradient of the cell state read)."""
    i, f, o = tf.split(sigmoids, 3, axis=0)
    g = candidate
    d_c = d_h * o * (1.0 - tanh_c * tanh_c) + d_c_later
    # Derivatives of sigmoid and tanh written with their outputs.
    d_z = tf.concat([d_c * g * i * (1.0 - i), d_c * c * f * (1.0 - f), d_h * tanh_c * o * (1.0 - o), d_c * i * (1.0 - g * g)], axis=0)
    return d_z, d_c * f


# XLA fuses each of these into one loop over memory, where TF runs every
# product and activation as its own pass (benchmarks/run.py measures both
# ways: fusion_speedup). XLA for the whole step or segment is slower on CPU.
fused_cell_forward = tf.function(cell_forward, jit_compile=True)
fused_gate_gradients = tf.function(gate_gradients, jit_compile=True)


def lstm_forward(meta_params, state, grads, config, fused=True, lean=False):
    """lstm_step, also returning what lstm_backward needs: the Saved activations, or with lean=True only the step's
    inputs and the states it read (Lean), from which lstm_backward recomputes them by the same operations."""
    flat = tf.reshape(grads, [-1])
    flat = tf.pad(flat, [[0, tf.shape(state.h[0])[1] - tf.size(flat)]])
    moments, direction = state.moments, None
    if config.moments:  # Adam's moments, bias-corrected: they depend on the gradients only, so the backward pass treats them as constants
        m, v, steps = moments
        m, v, steps = config.beta * m + (1.0 - config.beta) * flat, config.beta * v + (1.0 - config.beta) * flat * flat, steps + 1.0
        moments = (m, v, steps)
        correction = 1.0 - tf.pow(tf.cast(config.beta, flat.dtype), steps)
        root = tf.sqrt(v / correction) + EPSILON
        direction = (m / correction) / root  # Adam's step direction; RNNprop's second input
    if config.features == "adam":
        x = tf.stack([flat / root, direction])
    else:
        x = tf.transpose(log_and_sign(flat, config.preprocess_p)) if config.preprocess_p > 0 else flat[None, :]
    saved, new_h, new_c, out = _layers(meta_params, x, state.h, state.c, config, fused)
    step = config.scale * out[0]
    if config.nominal == "sgd":
        step -= config.nominal_lr * flat
    elif config.nominal == "adam":
        step -= config.nominal_lr * direction
    updates = tf.reshape(step[: tf.size(grads)], tf.shape(grads))
    return updates, LSTMState(new_h, new_c, moments), (Lean(x, state.h, state.c) if lean else saved)


def _layers(meta_params, x, h, c, config, fused=True):
    """The LSTM's layers and output layer on inputs x [inputs, coordinates] from hidden and cell states h, c (per layer):
    (Saved, new h per layer, new c per layer, the output layer's value [1, coordinates], squashed if output="tanh")."""
    ones = tf.ones_like(x[:1])
    new_h, new_c, saved = [], [], Saved((), (), (), (), ())
    for layer in range(config.layers):
        # One product per layer: [x; h; 1] stacks rows, which is a contiguous copy.
        inputs = tf.concat([x, h[layer], ones], axis=0)
        z = tf.matmul(_kernel_with_bias(meta_params, layer), inputs, transpose_a=True)
        sigmoids, g, c_new, tanh_c, x = (fused_cell_forward if fused else cell_forward)(z, c[layer])
        saved = Saved(*(old + (new,) for old, new in zip(saved, (inputs, c[layer], sigmoids, g, tanh_c))))
        new_h.append(x)
        new_c.append(c_new)
    out = tf.matmul(meta_params["out/kernel"], x, transpose_a=True) + meta_params["out/bias"][:, None]
    if config.output == "tanh":
        out = tf.tanh(out)
        saved = saved._replace(squashed=out)
    return saved, tuple(new_h), tuple(new_c), out


def lstm_step(meta_params: MetaParams, state: "LSTMState", grads: Grads, config) -> tuple:
    """One optimiser step for every coordinate of `grads` (any shape).

    Returns updates shaped like `grads` and the new state. The gradients are
    inputs only: meta-training treats them as constants, dropping second
    derivatives as the paper does.
    """
    updates, state, _ = lstm_forward(meta_params, state, grads, config)
    return updates, state


def lstm_backward(meta_params, saved, d_updates, d_state, config, fused=True):
    """The vector-Jacobian product of lstm_step, written out by hand.

    Given the gradient of some loss with respect to a step's updates and new
    state, returns its gradient with respect to the meta-parameters (by name)
    and to the state the step read; the optimisee gradients are constants.
    d_state may be None (nothing later depends on the new state). fused=False
    here and in lstm_forward skips XLA for the elementwise parts (for
    comparison). Written out because TF's automatic backward pass of the
    unrolled LSTM keeps more tensors and makes more passes over memory;
    tests/test_learned_optimizer.py checks it against tf.GradientTape.
    """
    hidden = config.hidden
    if isinstance(saved, Lean):  # recomputed by the forward's own operations on the same values: the same activations
        # Only once the backward pass has reached this step (the later step's state gradient exists): then one
        # step's activations are alive at a time. Without the dependency, TF's graph optimiser merged these operations
        # with the forward's, and the executor was free to run every step's recomputation at once (memory unchanged
        # or halved from run to run: benchmarks/run.py, memory_per_parameter).
        with tf.control_dependencies([d_updates] + ([] if d_state is None else tf.nest.flatten(d_state)[:1])):
            x, h, c = tf.nest.map_structure(tf.identity, (saved.x, saved.h, saved.c))
        saved = _layers(meta_params, x, h, c, config, fused)[0]
    d_out = config.scale * tf.reshape(d_updates, [1, -1])
    d_out = tf.pad(d_out, [[0, 0], [0, tf.shape(saved.c[0])[1] - tf.shape(d_out)[1]]])
    if config.output == "tanh":
        d_out *= 1.0 - saved.squashed * saved.squashed
    # A nominal step depends on the gradients only: it adds nothing here.
    h_top = tf.split(saved.sigmoids[-1], 3, axis=0)[2] * saved.tanh_c[-1]
    d_meta = {
        "out/kernel": tf.matmul(h_top, d_out, transpose_b=True),
        "out/bias": tf.reduce_sum(d_out, axis=1),
    }
    d_h_above = tf.matmul(meta_params["out/kernel"], d_out)
    d_h_prev, d_c_prev = [None] * config.layers, [None] * config.layers
    for layer in reversed(range(config.layers)):
        d_h = d_h_above if d_state is None else d_h_above + d_state.h[layer]
        d_c_later = tf.zeros_like(d_h) if d_state is None else d_state.c[layer]
        d_z, d_c_prev[layer] = (fused_gate_gradients if fused else gate_gradients)(
            saved.sigmoids[layer], saved.candidate[layer], saved.tanh_c[layer], saved.c[layer], d_h, d_c_later
        )
        d_kernel = tf.matmul(saved.inputs[layer], d_z, transpose_b=True)  # [width + hidden + 1, 4 hidden]
        width = d_kernel.shape[0] - hidden - 1
        d_meta[f"lstm{layer}/kernel"], d_bias = tf.split(d_kernel, [width + hidden, 1], axis=0)
        d_meta[f"lstm{layer}/bias"] = d_bias[0]
        d_inputs = tf.matmul(meta_params[f"lstm{layer}/kernel"], d_z)  # [width + hidden, coordinates]
        d_x, d_h_prev[layer] = tf.split(d_inputs, [width, hidden], axis=0)
        d_h_above = d_x  # the layer's input is the hidden output of the layer below
    return d_meta, LSTMState(tuple(d_h_prev), tuple(d_c_prev))


# -- parameter groups ----------------------------------------------------------
#
# A learned optimiser may train different coordinates with different LSTMs
# (the paper's CIFAR-10 experiment: one for convolution kernels, one for the
# rest). Its config is then a mapping group -> LSTMConfig, its meta-parameters
# one flat dict named "<group>/lstm0/kernel" and so on, and a problem's
# `groups` says which coordinates each group owns. A plain LSTMConfig is the
# one-group case and runs exactly the code above: names without a prefix, no
# gathering, the same operations bit for bit.


def as_groups(config):
    """group -> LSTMConfig; a plain LSTMConfig is the one group named ""."""
    if isinstance(config, LSTMConfig):
        return {"": config}
    groups = dict(config)
    bad = [g for g in groups if not g or "/" in g or not isinstance(groups[g], LSTMConfig)]
    if not groups or bad:
        raise ValueError(f"parameter groups need non-empty names without '/' mapped to LSTMConfig, got {config!r}")
    return groups


def _prefix(group):
    return f"{group}/" if group else ""


def group_params(meta_params, group):
    """The meta-parameters of one group, under the names lstm_forward expects."""
    prefix = _prefix(group)
    return {k[len(prefix):]: v for k, v in meta_params.items() if k.startswith(prefix)}


def group_param_shapes(config):
    return {_prefix(g) + k: v for g, c in as_groups(config).items() for k, v in meta_param_shapes(c).items()}


def init_group_params(config, seed: int) -> MetaParams:
    """init_meta_params for every group, each from the same seed."""
    return {_prefix(g) + k: v for g, c in as_groups(config).items() for k, v in init_meta_params(c, seed).items()}


def partition(config, groups, dim):
    """group -> sorted coordinate indices (None: all coordinates), checked against the problem's `groups`.

    config: LSTMConfig or group -> LSTMConfig; groups: the problem's
    group -> indices mapping (or None); dim: the problem's coordinates.
    """
    if isinstance(config, LSTMConfig):
        return None
    names = sorted(as_groups(config))
    if groups is None or sorted(groups) != names:
        raise ValueError(f"a learned optimiser with groups {names} needs a problem whose `groups` has exactly those names, got {sorted(groups or {})}")
    parts = {g: np.asarray(groups[g], np.int64) for g in names}
    every = np.sort(np.concatenate(list(parts.values())))
    if not np.array_equal(every, np.arange(dim)):
        raise ValueError(f"the problem's groups must cover its {dim} coordinates exactly once each")
    return parts


def _inverse(parts):
    """Indices that put the groups' updates, concatenated in `parts` order, back in coordinate order."""
    return np.argsort(np.concatenate(list(parts.values())), kind="stable")


def _take(x, indices):
    """x[..., indices]: a slice where the indices are a contiguous run (a ConvNet's kernels, say), else a gather."""
    if len(indices) and indices[-1] - indices[0] + 1 == len(indices) and np.all(np.diff(indices) == 1):
        return x[..., int(indices[0]) : int(indices[-1]) + 1]
    return tf.gather(x, indices, axis=-1)


def _in_order(parts):
    """True where concatenating the groups in `parts` order already gives coordinate order (no gather needed)."""
    return np.array_equal(np.concatenate(list(parts.values())), np.arange(sum(len(v) for v in parts.values())))


def init_group_states(config, parts, instances, dim, dtype=tf.float32):
    """The LSTM state for `instances` problems of `dim` coordinates: one LSTMState, or group -> LSTMState."""
    if parts is None:
        return init_state(config, instances * dim, dtype)
    return {g: init_state(c, instances * len(parts[g]), dtype) for g, c in as_groups(config).items()}


def grouped_forward(meta_params, states, grads, config, parts, fused=True, lean=False):
    """lstm_forward for every group: (updates shaped like grads, states, saved). Coordinates on the last axis of grads."""
    if parts is None:
        return lstm_forward(meta_params, states, grads, config, fused, lean)
    updates, new_states, saved, configs = [], {}, {}, as_groups(config)
    for g in parts:  # in parts order, the order _inverse undoes (the config's own order may differ)
        u, new_states[g], saved[g] = lstm_forward(group_params(meta_params, g), states[g], _take(grads, parts[g]), configs[g], fused, lean)
        updates.append(u)
    joined = tf.concat(updates, axis=-1)
    return (joined if _in_order(parts) else tf.gather(joined, _inverse(parts), axis=-1)), new_states, saved


def grouped_backward(meta_params, saved, d_updates, d_states, config, parts, fused=True):
    """lstm_backward for every group: (gradient by meta-parameter name, gradient by group of the states read)."""
    if parts is None:
        return lstm_backward(meta_params, saved, d_updates, d_states, config, fused)
    d_meta, d_prev = {}, {}
    for g, c in as_groups(config).items():
        d, d_prev[g] = lstm_backward(group_params(meta_params, g), saved[g], _take(d_updates, parts[g]),
                                     None if d_states is None else d_states[g], c, fused)
        d_meta.update({_prefix(g) + k: v for k, v in d.items()})
    return d_meta, d_prev


def learned(meta_params: MetaParams, config=LSTMConfig(), groups: Groups = None) -> Optimizer:
    """The LSTM as an ordinary optimiser on params [instances, coordinates]: a factory from meta-parameters.

    With parameter groups, `groups` is the problem's group -> indices mapping.
    """
    if isinstance(config, LSTMConfig):
        def init(params):
            return init_state(config, tf.size(params))

        def update(grads, state, params=None):
            return lstm_step(meta_params, state, grads, config)

        return Optimizer(init, update)

    def init_groups(params):
        parts = partition(config, groups, int(params.shape[-1]))
        return init_group_states(config, parts, int(np.prod(params.shape[:-1])), int(params.shape[-1]))

    def update_groups(grads, state, params=None):
        updates, state, _ = grouped_forward(meta_params, state, grads, config, partition(config, groups, int(grads.shape[-1])))
        return updates, state

    return Optimizer(init_groups, update_groups)


def save_weights(path, meta_params, config, **provenance):
    """Writes meta-parameters and their config (an LSTMConfig, or group -> LSTMConfig) to an HDF5 file (no pickle)."""
    import h5py

    with h5py.File(path, "w") as f:
        f.attrs["format"] = "l2l-lstm-optimizer-1"
        if not isinstance(config, LSTMConfig):
            f.attrs["groups"] = ",".join(as_groups(config))
        for group, group_config in as_groups(config).items():
            for field, value in dataclasses.asdict(group_config).items():
                f.attrs[f"config/{_prefix(group)}{field}"] = value
        for key, value in provenance.items():
            f.attrs[f"provenance/{key}"] = value if isinstance(value, (int, float)) else str(value)
        for name, value in meta_params.items():
            f.create_dataset(name, data=np.asarray(value))


def _config_from_attrs(attrs, group):
    fields = {k.split("/")[-1]: attrs[k] for k in attrs if k.startswith(f"config/{_prefix(group)}") and k.count("/") == 1 + bool(group)}
    types = {f.name: f.type for f in dataclasses.fields(LSTMConfig)}  # int, float, str
    # Files written before the fields beyond the paper existed do not hold them: their defaults are what those runs used.
    return LSTMConfig(**{k: types[k](v) for k, v in fields.items() if k in types})


def _read_weights(path):
    import h5py

    with h5py.File(path, "r") as f:
        if f.attrs.get("format") != "l2l-lstm-optimizer-1":
            raise ValueError(f"{path!r} is not an l2l LSTM optimiser weights file (no 'format' = 'l2l-lstm-optimizer-1' attribute); save one with l2l.learned_optimizer.save_weights")
        names = str(f.attrs["groups"]).split(",") if "groups" in f.attrs else None
        config = {g: _config_from_attrs(f.attrs, g) for g in names} if names else _config_from_attrs(f.attrs, "")
        provenance = {k.split("/", 1)[1]: f.attrs[k] for k in f.attrs if k.startswith("provenance/")}
        expected = group_param_shapes(config)
        found = {}
        f.visititems(lambda name, obj: found.__setitem__(name, obj[()]) if hasattr(obj, "shape") else None)
    if set(found) != set(expected):
        raise ValueError(f"{path!r} holds {sorted(found)}, expected {sorted(expected)} for {config}")
    for name, shape in expected.items():
        if tuple(found[name].shape) != shape:
            raise ValueError(f"{path!r}: {name} has shape {found[name].shape}, expected {shape} for {config}")
    return config, provenance, found


def load_weights(path):
    """Returns (meta_params, config, provenance); checks shapes against the config (group -> LSTMConfig for grouped files).

    A missing, damaged or foreign file, or one holding NaN or inf, is refused with the path and what to do.
    """
    import os

    if not os.path.exists(path):
        raise FileNotFoundError(f"no LSTM optimiser weights at {path!r}: train one with l2l.meta.meta_train or pick a file from book/results/")
    if os.path.isdir(path):
        raise ValueError(f"{path!r} is a directory, not an LSTM optimiser weights file: give the path of a .weights.h5 file")
    try:
        config, provenance, found = _read_weights(path)
    except (OSError, KeyError) as error:  # h5py's words for truncated, empty and foreign files
        raise ValueError(f"{path!r} cannot be read as LSTM optimiser weights ({type(error).__name__}: {error}); "
                         "it is damaged or not a weights file: re-download it or save it again with l2l.learned_optimizer.save_weights") from None
    bad = sorted(k for k, v in found.items() if not np.all(np.isfinite(v)))
    if bad:
        raise ValueError(f"{path!r} holds non-finite values in {bad}: these weights come from a run that diverged; use another file")
    return {k: tf.constant(v, tf.float32) for k, v in found.items()}, config, provenance
