"""Optimisees: families of problems, apart from the optimisers that train them.

A problem holds no state. Its parameters are one flat vector per instance,
a tensor [instances, dim], so that any optimiser, hand-designed or learned,
runs on it coordinatewise.

    instances = problem.sample(rng, n)          # n problem instances
    params = problem.init_params(rng, instances) # [n, problem.dim]
    losses = problem.loss(params, instances, rng)  # [n], one loss per instance

`rng` is a tf.random.Generator; stochastic problems draw their minibatch
from it on every loss call, deterministic ones ignore it.
"""

import dataclasses
from typing import NamedTuple

import tensorflow as tf


class QuadraticInstances(NamedTuple):
    w: tf.Tensor  # [n, dims, dims]
    y: tf.Tensor  # [n, dims]


@dataclasses.dataclass(frozen=True)
class Quadratic:
    """f(theta) = ||W theta - y||^2 (paper section 3.1)."""

    dims: int = 10  # dimension of theta (paper: 10)
    distribution: str = "normal"  # W, y ~ N(0, 1) as in the paper; "uniform": U[0, 1) as the DeepMind code
    init_std: float = 0.01  # theta_0 ~ N(0, init_std^2), as the DeepMind code

    name = "quadratic"

    def __post_init__(self):
        if self.distribution not in ("normal", "uniform"):
            raise ValueError(f"Quadratic.distribution must be 'normal' or 'uniform', got {self.distribution!r}")
        if self.dims < 1:
            raise ValueError(f"Quadratic.dims must be >= 1, got {self.dims}")

    @property
    def dim(self):
        return self.dims

    def sample(self, rng, n):
        draw = rng.normal if self.distribution == "normal" else rng.uniform
        return QuadraticInstances(w=draw([n, self.dims, self.dims]), y=draw([n, self.dims]))

    def init_params(self, rng, instances):
        n = instances.y.shape[0]
        return self.init_std * rng.normal([n, self.dims])

    def loss(self, params, instances, rng=None):
        residual = tf.linalg.matvec(instances.w, params) - instances.y
        return tf.reduce_sum(tf.square(residual), axis=-1)


PROBLEMS = {"quadratic": Quadratic}


def make(name, **options):
    """A problem by name, e.g. make("quadratic", dims=10)."""
    if name not in PROBLEMS:
        raise ValueError(f"unknown problem {name!r}; choose one of {sorted(PROBLEMS)}")
    return PROBLEMS[name](**options)


def loss_and_grads(problem, params, instances, rng=None):
    """Per-instance losses [n] and their gradients [n, dim], the gradient a constant.

    Instances are independent, so the gradient of the summed loss is each
    instance's own gradient. tf.stop_gradient drops second derivatives from
    any meta-gradient taken through this, as the paper does.
    """
    with tf.GradientTape() as tape:
        tape.watch(params)
        losses = problem.loss(params, instances, rng)
    grads = tape.gradient(losses, params)  # a vector target: the gradient of its sum
    return losses, tf.stop_gradient(grads)
