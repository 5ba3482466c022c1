"""Any l2l-trained LSTM optimiser as a keras.optimizers.Optimizer.

    import l2l
    model.compile(optimizer=l2l.LearnedOptimizer.from_pretrained("mnist"), loss=...)
    model.fit(...)

Each model variable gets its own LSTM state (h and c per layer, a column
per coordinate, padded as l2l.learned_optimizer.padded says) as optimizer variables
of static shape, and every step calls
l2l.learned_optimizer.lstm_step, the update rule meta-training unrolls. The base
class's `learning_rate` multiplies the learned update (1.0 applies it as
trained; from_pretrained uses the packaged optimiser's calibrated default);
`clipnorm` and `global_clipnorm` clip the gradients it sees.
"""

import dataclasses
import warnings

import keras
import numpy as np
import tensorflow as tf

from l2l import learned_optimizer


def _config_from(value):
    """LSTMConfig, or group -> LSTMConfig, from itself or its get_config form."""
    if value is None or isinstance(value, learned_optimizer.LSTMConfig):
        return value or learned_optimizer.LSTMConfig()
    if set(value) <= {f.name for f in dataclasses.fields(learned_optimizer.LSTMConfig)}:
        return learned_optimizer.LSTMConfig(**value)
    return {g: c if isinstance(c, learned_optimizer.LSTMConfig) else learned_optimizer.LSTMConfig(**c) for g, c in value.items()}



def conv_kernels(variable):
    """The paper's CIFAR grouping (section 3.3): convolution kernels (4-D variables) in group "conv", every other variable in "other"."""
    return "conv" if len(variable.shape) == 4 else "other"


GROUP_RULES = {"conv_kernels": conv_kernels}  # rule name (as a registry entry records it) -> variable -> group

def _dense_rows(gradient, shape):
    """(the dense gradient, duplicates summed, and a boolean mask of the coordinates in the rows it touches), of a
    tf.IndexedSlices for a variable of `shape`."""
    rows = int(shape[0])
    dense = tf.math.unsorted_segment_sum(gradient.values, gradient.indices, rows)
    hit = tf.math.unsorted_segment_max(tf.ones_like(gradient.indices, tf.int32), gradient.indices, rows) > 0
    return dense, tf.broadcast_to(tf.reshape(hit, [rows] + [1] * (len(shape) - 1)), shape)


@keras.saving.register_keras_serializable(package="l2l")
class LearnedOptimizer(keras.optimizers.Optimizer):
    """A learned optimiser for model.compile.

    With parameter groups (lstm_config a mapping group -> LSTMConfig), `groups`
    says which group trains each model variable: a function of the variable,
    a mapping from variable path to group name, or a list of group names in
    the order of model.trainable_variables (what a saved model records).
    """

    def __init__(self, meta_params, lstm_config=None, learning_rate=1.0, name="learned_optimizer", pretrained=None, groups=None, **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.lstm_config = _config_from(lstm_config)
        expected = learned_optimizer.group_param_shapes(self.lstm_config)
        given = {k: np.asarray(v, np.float32) for k, v in dict(meta_params).items()}
        wrong = {k: v.shape for k, v in given.items() if k in expected and v.shape != expected[k]}
        if set(given) != set(expected) or wrong:
            raise ValueError(
                f"meta-parameters do not fit {self.lstm_config}: expected {expected}, got "
                f"{ {k: v.shape for k, v in given.items()} }"
            )
        if not isinstance(self.lstm_config, learned_optimizer.LSTMConfig) and groups is None:
            raise ValueError(f"an optimiser with parameter groups {sorted(self.lstm_config)} needs groups=: a function of a variable, or a mapping from variable path, to a group name")
        self._initial_meta = given
        self.pretrained = pretrained
        self.groups = groups
        # Forward-only, the step gains from XLA (benchmarks/run.py: forward_xla). One compiled step per group.
        self._compiled_step = {
            group: tf.function(lambda meta, state, grads, config=config: learned_optimizer.lstm_step(meta, state, grads, config), jit_compile=True)
            for group, config in learned_optimizer.as_groups(self.lstm_config).items()
        }

    def _group_of(self, variable, index):
        if self.groups is None:
            return ""
        if callable(self.groups):
            group = self.groups(variable)
        elif isinstance(self.groups, dict):
            group = self.groups.get(variable.path)
        else:
            group = self.groups[index] if index < len(self.groups) else None
        if group not in self._compiled_step:
            raise ValueError(f"variable {variable.path!r} is in group {group!r}; the optimiser's groups are {sorted(self._compiled_step)}")
        return group

    @classmethod
    def from_pretrained(cls, name, **kwargs):
        """A pretrained optimiser shipped with the package (see l2l.pretrained.names()), at its calibrated
        default learning_rate (the registry's keras_default) unless one is given."""
        from l2l import pretrained

        meta_params, config, _ = pretrained.load(name)
        warning = pretrained.keras_warning(name)
        if warning:
            warnings.warn(warning, UserWarning, stacklevel=2)
        # The step multiplier chosen for this optimiser on held-out Keras models (python -m l2l.pretrained calibrate).
        kwargs.setdefault("learning_rate", pretrained.default_learning_rate(name))
        if "groups" in pretrained.info(name):  # an optimiser with parameter groups, and the rule its entry names
            kwargs.setdefault("groups", GROUP_RULES[pretrained.info(name)["groups"]])
        return cls(meta_params, config, pretrained=name, **kwargs)

    @classmethod
    def from_weights(cls, path, **kwargs):
        """An optimiser from a .weights.h5 file written by l2l.learned_optimizer.save_weights."""
        meta_params, config, _ = learned_optimizer.load_weights(path)
        return cls(meta_params, config, **kwargs)

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self._meta = {}
        for key, shape in learned_optimizer.group_param_shapes(self.lstm_config).items():
            # An initializer, not an assign: build may run while a train step is traced.
            value = self._initial_meta[key]
            initial = lambda shape, dtype=None, value=value: tf.constant(value, dtype or tf.float32)
            self._meta[key] = self.add_variable(shape, initializer=initial, name="meta_" + key.replace("/", "_"))
        configs = learned_optimizer.as_groups(self.lstm_config)
        self._h, self._c, self._moments, self._var_groups = [], [], [], []
        for index, var in enumerate(var_list):
            group = self._group_of(var, index)
            self._var_groups.append(group)
            hidden, layers = configs[group].hidden, configs[group].layers
            # Named per model variable, so that every state variable has its own path.
            size = learned_optimizer.padded(int(np.prod(var.shape)))
            self._h.append([self.add_variable((hidden, size), name=f"lstm_h{layer}_{index}") for layer in range(layers)])
            self._c.append([self.add_variable((hidden, size), name=f"lstm_c{layer}_{index}") for layer in range(layers)])
            # Adam's moments and step count, for an LSTM that reads them or adds Adam's step (LSTMConfig.moments).
            self._moments.append([self.add_variable(shape, name=f"lstm_{kind}_{index}") for kind, shape in (("m", (size,)), ("v", (size,)), ("t", ()))]
                                 if configs[group].moments else [])

    @property
    def meta_variables(self):
        """The LSTM's own weights: the optimiser itself, not state kept per model parameter."""
        return list(getattr(self, "_meta", {}).values())

    def update_step(self, gradient, variable, learning_rate):
        index = self._get_variable_index(variable)
        old = learned_optimizer.LSTMState(
            h=tuple(tf.convert_to_tensor(v) for v in self._h[index]),
            c=tuple(tf.convert_to_tensor(v) for v in self._c[index]),
            moments=tuple(tf.convert_to_tensor(v) for v in self._moments[index]),
        )
        touched = None
        if isinstance(gradient, tf.IndexedSlices):  # an Embedding's rows that were looked up: only they are stepped, as Keras' optimizers do
            gradient, touched = _dense_rows(gradient, variable.shape)
        group = self._var_groups[index]
        meta = learned_optimizer.group_params({k: tf.convert_to_tensor(v) for k, v in self._meta.items()}, group)
        updates, state = self._compiled_step[group](meta, old, tf.cast(gradient, tf.float32))
        if touched is not None:
            # The LSTM ran on every coordinate (one compiled shape); untouched ones keep their state and do not move.
            columns = tf.pad(tf.reshape(touched, [-1]), [[0, learned_optimizer.padded(int(np.prod(variable.shape))) - int(np.prod(variable.shape))]])
            keep = lambda new, was: tf.where(columns, new, was) if new.shape.rank else new
            state = learned_optimizer.LSTMState(*(tuple(map(keep, n, o)) for n, o in zip(state, old)))
            updates = tf.where(touched, updates, tf.zeros_like(updates))
        for target, value in zip(self._h[index] + self._c[index] + self._moments[index], state.h + state.c + state.moments):
            self.assign(target, value)
        self.assign_add(variable, tf.cast(learning_rate, variable.dtype) * tf.cast(updates, variable.dtype))

    def get_config(self):
        config = super().get_config()
        config.update(
            meta_params={k: v.tolist() for k, v in self._initial_meta.items()},
            lstm_config=(dataclasses.asdict(self.lstm_config) if isinstance(self.lstm_config, learned_optimizer.LSTMConfig)
                         else {g: dataclasses.asdict(c) for g, c in self.lstm_config.items()}),
            pretrained=self.pretrained,
            # A function cannot be saved, and paths change when a model is rebuilt: what was decided for each variable, in order, can.
            groups=list(self._var_groups) if self.groups is not None and self.built else self.groups,
        )
        return config
