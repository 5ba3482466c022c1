"""Any l2l-trained LSTM optimiser as a keras.optimizers.Optimizer.

    import l2l
    model.compile(optimizer=l2l.LearnedOptimizer.from_pretrained("mnist"), loss=...)
    model.fit(...)

Each parameter group (one, without groups) keeps the LSTM state of all its
model variables' coordinates in one buffer (h and c per layer, a column per
coordinate, padded as l2l.learned_optimizer.padded says), and every model step
runs one compiled l2l.learned_optimizer.lstm_step, the update rule
meta-training unrolls, over all of a group's coordinates at once: one LSTM
pass and a few assignments per step, not one per model variable. The base
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


def _joined_step(meta, state, pieces, config):
    """lstm_step on the concatenation of flat gradient pieces; the updates come back split as the pieces were."""
    updates, state = learned_optimizer.lstm_step(meta, state, pieces[0] if len(pieces) == 1 else tf.concat(pieces, 0), config)
    return (tf.split(updates, [p.shape[0] for p in pieces]) if len(pieces) > 1 else [updates]), state


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
        # Forward-only, the step gains from XLA (benchmarks/run.py: forward_xla). One compiled step per group, over the
        # flattened gradients of all its variables: joined, stepped and split inside one XLA cluster.
        self._compiled_step = {
            group: tf.function(lambda meta, state, pieces, config=config: _joined_step(meta, state, pieces, config), jit_compile=True)
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
        self._var_groups = [self._group_of(var, index) for index, var in enumerate(var_list)]
        self._shapes = [tuple(var.shape) for var in var_list]
        self._sizes = [int(np.prod(shape)) for shape in self._shapes]
        # group -> the indices of its variables, in model order: their coordinates follow each other in the group's state.
        self._members = {g: [i for i, vg in enumerate(self._var_groups) if vg == g] for g in configs}
        self._h, self._c, self._moments = {}, {}, {}
        for group, members in self._members.items():
            if not members:
                continue
            hidden, layers, suffix = configs[group].hidden, configs[group].layers, f"_{group}" if group else ""
            size = learned_optimizer.padded(sum(self._sizes[i] for i in members))
            self._h[group] = [self.add_variable((hidden, size), name=f"lstm_h{layer}{suffix}") for layer in range(layers)]
            self._c[group] = [self.add_variable((hidden, size), name=f"lstm_c{layer}{suffix}") for layer in range(layers)]
            # Adam's moments and step count, for an LSTM that reads them or adds Adam's step (LSTMConfig.moments).
            self._moments[group] = ([self.add_variable(shape, name=f"lstm_{kind}{suffix}") for kind, shape in (("m", (size,)), ("v", (size,)), ("t", ()))]
                                    if configs[group].moments else [])

    @property
    def meta_variables(self):
        """The LSTM's own weights: the optimiser itself, not state kept per model parameter."""
        return list(getattr(self, "_meta", {}).values())

    def _distributed_tf_update_step(self, distribution, grads_and_vars, learning_rate):
        """Keras' TF backend calls this with the (all-reduced) gradients of every variable that has one: all of them
        go through one fused update. Under a distribution strategy it runs once per device, on that device's copies."""
        grads, variables = zip(*grads_and_vars)
        distribution.extended.update(variables[0], lambda _, grads, rate: self._fused_update(grads, variables, rate),
                                     args=(list(grads), learning_rate), group=False)

    def update_step(self, gradient, variable, learning_rate):
        """One variable's step (what Keras' other backends call, variable by variable): the others keep their state."""
        self._fused_update([gradient], [variable], learning_rate)

    def _fused_update(self, grads, variables, learning_rate):
        given = {self._get_variable_index(v): (g, v) for g, v in zip(grads, variables)}
        meta = {k: tf.convert_to_tensor(v) for k, v in self._meta.items()}
        for group, members in self._members.items():
            if not any(i in given for i in members):
                continue
            pieces, touched = [], []  # touched: per member, None (every coordinate) or a boolean mask
            for i in members:
                gradient = given[i][0] if i in given else None
                mask = None
                if gradient is None:  # a variable without a gradient this step: it stays, and so does its state
                    gradient, mask = tf.zeros(self._shapes[i]), tf.zeros(self._shapes[i], tf.bool)
                elif isinstance(gradient, tf.IndexedSlices):  # an Embedding's rows that were looked up: only they step, as Keras' optimizers do
                    gradient, mask = _dense_rows(gradient, self._shapes[i])
                pieces.append(tf.reshape(tf.cast(gradient, tf.float32), [-1]))
                touched.append(mask)
            old = learned_optimizer.LSTMState(*(tuple(tf.convert_to_tensor(v) for v in part[group]) for part in (self._h, self._c, self._moments)))
            updates, state = self._compiled_step[group](learned_optimizer.group_params(meta, group), old, pieces)
            if any(mask is not None for mask in touched):
                # The LSTM ran on every coordinate (one compiled shape); untouched ones keep their state and do not move.
                columns = tf.concat([tf.ones([self._sizes[i]], tf.bool) if mask is None else tf.reshape(mask, [-1]) for i, mask in zip(members, touched)], 0)
                columns = tf.pad(columns, [[0, old.h[0].shape[1] - columns.shape[0]]])
                keep = lambda new, was, columns=columns: tf.where(columns, new, was) if new.shape.rank else new
                state = learned_optimizer.LSTMState(*(tuple(map(keep, n, o)) for n, o in zip(state, old)))
                updates = [u if mask is None else tf.where(tf.reshape(mask, [-1]), u, tf.zeros_like(u)) for u, mask in zip(updates, touched)]
            for target, value in zip(self._state_of(group), state.h + state.c + state.moments):
                self.assign(target, value)
            for i, update in zip(members, updates):
                if i in given:
                    variable = given[i][1]
                    self.assign_add(variable, tf.cast(learning_rate, variable.dtype) * tf.cast(tf.reshape(update, self._shapes[i]), variable.dtype))

    def load_own_variables(self, store):
        """Loads a saved state; one saved before the fused step (a state per model variable) is joined into the groups' buffers."""
        if self.built and len(store.keys()) != len(self.variables) and len(store.keys()) == self._per_variable_count():
            store = self._joined(store)
        super().load_own_variables(store)

    def _state_of(self, group):
        """A group's state variables in LSTMState order: h per layer, c per layer, then m, v, t when it keeps moments."""
        return self._h[group] + self._c[group] + self._moments[group]

    def _per_variable_count(self):
        configs = learned_optimizer.as_groups(self.lstm_config)
        fused = sum(len(self._state_of(g)) for g in self._h)
        per_variable = sum(2 * configs[g].layers + 3 * configs[g].moments for g in self._var_groups)
        return len(self.variables) - fused + per_variable

    def _joined(self, store):
        """The per-variable layout (h per layer, c per layer, then m, v, t, for each model variable in order, after
        the other variables) as this optimizer's: each member's coordinates, unpadded, one after another."""
        configs = learned_optimizer.as_groups(self.lstm_config)
        head = len(self.variables) - sum(len(self._state_of(g)) for g in self._h)
        old, position = {}, head
        for i, group in enumerate(self._var_groups):
            count = 2 * configs[group].layers + 3 * configs[group].moments
            old[i] = [np.asarray(store[str(position + k)]) for k in range(count)]
            position += count
        joined = {str(k): np.asarray(store[str(k)]) for k in range(head)}
        for group, members in self._members.items():
            if not members:
                continue
            layers, width = configs[group].layers, self._h[group][0].shape[1]
            pad = lambda a, width=width: np.pad(a, [(0, 0)] * (a.ndim - 1) + [(0, width - a.shape[-1])])
            columns = [pad(np.concatenate([old[i][k][..., : self._sizes[i]] for i in members], axis=-1)) for k in range(2 * layers)]
            if configs[group].moments:  # m and v join like h and c; the step count is one per variable, and was the same for all
                columns += [pad(np.concatenate([old[i][2 * layers + k][: self._sizes[i]] for i in members])) for k in (0, 1)]
                columns.append(max(old[i][2 * layers + 2] for i in members))
            for variable, value in zip(self._state_of(group), columns):
                joined[str(self._variable_position(variable))] = value
        return joined

    def _variable_position(self, variable):
        return next(k for k, v in enumerate(self.variables) if v is variable)

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
