"""Problems made of problems: one rescaled, and a mixture drawn from at each epoch."""

import dataclasses
from typing import Any, NamedTuple

import numpy as np
import tensorflow as tf


class RescaledInstances(NamedTuple):
    inner: Any  # the wrapped problem's instances
    scale: tf.Tensor  # [n, dim] the factor c each coordinate is multiplied by


@dataclasses.dataclass(frozen=True, eq=False)
class Rescaled:
    """A problem whose coordinates are rescaled at random, instance by instance: f(c * theta), c = exp(U[-r, r]) per
    coordinate, started at theta_0 / c so that the wrapped problem starts where it would (RNNprop's augmentation,
    Lv et al. 2017, r = 3). Its gradient is c * f'(c * theta): an optimiser must cope with coordinates whose
    curvature differs by up to e^(4r), which a learned optimiser meta-trained without it never sees."""

    inner: Any  # the problem rescaled
    log_range: float = 3.0  # r: log c is uniform on [-r, r]

    name = "rescaled"

    def __post_init__(self):
        if not self.log_range > 0:
            raise ValueError(f"Rescaled.log_range must be > 0, got {self.log_range}")

    @property
    def dim(self) -> int:
        return self.inner.dim

    @property
    def groups(self):
        return getattr(self.inner, "groups", None)

    def describe(self) -> dict:
        return {"name": self.name, "inner": self.inner.describe(), "log_range": self.log_range}

    def sample(self, rng, n):
        inner = self.inner.sample(rng, n)
        return RescaledInstances(inner, tf.exp(rng.uniform([n, self.dim], -self.log_range, self.log_range)))

    def init_params(self, rng, instances):
        return self.inner.init_params(rng, instances.inner) / instances.scale

    def loss(self, params, instances, rng=None):
        return self.inner.loss(params * tf.cast(instances.scale, params.dtype), instances.inner, rng)


@dataclasses.dataclass(frozen=True, eq=False)
class Mixture:
    """Several problems, one drawn per meta-training epoch with the given weights (a task mixture: Wichrowska et al.
    2017, Metz et al. 2020). Meta-training (l2l.meta.MetaTrainer) draws the task; validation on a Mixture averages
    the log of each task's validation loss, so that no task's scale dominates."""

    tasks: tuple  # the problems
    weights: tuple = ()  # their probabilities (normalised); empty: equal

    name = "mixture"

    def __post_init__(self):
        if len(self.tasks) < 2:
            raise ValueError(f"a Mixture needs at least 2 tasks, got {len(self.tasks)}")
        if self.weights and (len(self.weights) != len(self.tasks) or min(self.weights) <= 0):
            raise ValueError(f"Mixture.weights needs one positive weight per task ({len(self.tasks)}), got {self.weights}")

    @property
    def probabilities(self):
        w = np.asarray(self.weights or [1.0] * len(self.tasks), np.float64)
        return w / w.sum()

    def describe(self) -> dict:
        return {"name": self.name, "tasks": [t.describe() for t in self.tasks], "weights": [float(p) for p in self.probabilities]}

    def pick(self, rng):
        """The index of the task an epoch trains on, drawn from rng (a tf.random.Generator)."""
        u = float(rng.uniform([], dtype=tf.float64))
        return min(int(np.searchsorted(np.cumsum(self.probabilities), u, side="right")), len(self.tasks) - 1)
