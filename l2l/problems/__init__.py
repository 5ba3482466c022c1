"""Optimisees: families of problems, apart from the optimisers that train them.

A problem holds no state. Its parameters are one flat vector per instance,
a tensor [instances, dim], so that any optimiser, hand-designed or learned,
runs on it coordinatewise.

    instances = problem.sample(rng, n)          # n problem instances
    params = problem.init_params(rng, instances) # [n, problem.dim]
    losses = problem.loss(params, instances, rng)  # [n], one loss per instance

`rng` is a tf.random.Generator; stochastic problems draw their minibatch
from it on every loss call, deterministic ones ignore it. `Problem` states
this contract; tests/test_problems.py checks every problem against it.
"""

# One module per family: base (the contract, image data, loss_and_grads), quadratic, networks (MLP, ConvNet),
# warps (Alignment, SpatialTransformer), combined (Rescaled, Mixture).
from l2l.problems.base import ImageData, Problem, describe_on_images, head, image_data, json_ready, label_subset, loss_and_grads  # noqa: F401
from l2l.problems.combined import Mixture, Rescaled, RescaledInstances  # noqa: F401
from l2l.problems.networks import ACTIVATIONS, MLP, ConvNet, MLPInstances  # noqa: F401
from l2l.problems.quadratic import Quadratic, QuadraticInstances  # noqa: F401
from l2l.problems.warps import Alignment, AlignmentInstances, ExemplarAlignment, SpatialTransformer, STNInstances, random_warps, same_class_pairs  # noqa: F401
