"""The paper's quadratic functions (section 3.1)."""

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
    def dim(self) -> int:
        return self.dims

    def describe(self) -> dict:
        return {"name": self.name, **dataclasses.asdict(self)}

    def sample(self, rng, n):
        draw = rng.normal if self.distribution == "normal" else rng.uniform
        return QuadraticInstances(w=draw([n, self.dims, self.dims]), y=draw([n, self.dims]))

    def init_params(self, rng, instances):
        n = instances.y.shape[0]
        return self.init_std * rng.normal([n, self.dims])

    def loss(self, params, instances, rng=None):
        # Instances in the params' dtype: float64 params (gradient checks) run in float64; float32 casts are no-ops.
        residual = tf.linalg.matvec(tf.cast(instances.w, params.dtype), params) - tf.cast(instances.y, params.dtype)
        return tf.reduce_sum(tf.square(residual), axis=-1)
