import numpy as np
import pytest
import tensorflow as tf

from l2l import problems


@pytest.mark.parametrize("distribution", ["normal", "uniform"])
def test_quadratic_loss_and_gradient_against_closed_form(distribution, rng):
    problem = problems.Quadratic(dims=5, distribution=distribution)
    batch = problem.sample(rng, 3)
    params = problem.init_params(rng, batch)
    assert params.shape == (3, 5) and batch.w.shape == (3, 5, 5)
    losses, grads = problems.loss_and_grads(problem, params, batch)
    w, y, x = batch.w.numpy().astype(np.float64), batch.y.numpy().astype(np.float64), params.numpy().astype(np.float64)
    residual = np.einsum("nij,nj->ni", w, x) - y
    np.testing.assert_allclose(losses.numpy(), (residual**2).sum(-1), rtol=1e-5)
    np.testing.assert_allclose(grads.numpy(), 2 * np.einsum("nji,nj->ni", w, residual), rtol=1e-4, atol=1e-5)
    if distribution == "uniform":
        assert 0.0 <= batch.w.numpy().min() and batch.w.numpy().max() < 1.0


def test_initial_parameters_are_small_and_seeded():
    problem = problems.Quadratic()
    a = problem.init_params(tf.random.Generator.from_seed(5), problem.sample(tf.random.Generator.from_seed(5), 64))
    b = problem.init_params(tf.random.Generator.from_seed(5), problem.sample(tf.random.Generator.from_seed(5), 64))
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert 0.005 < float(tf.math.reduce_std(a)) < 0.02


def test_unknown_problem_and_bad_options_are_named():
    with pytest.raises(ValueError, match="distribution"):
        problems.Quadratic(distribution="cauchy")


@pytest.mark.parametrize("hidden, activation", [((20,), "sigmoid"), ((6, 5), "relu")])
def test_mlp_loss_and_gradients_equal_a_keras_model_with_the_same_weights(hidden, activation, nprng):
    import keras

    x = nprng.integers(0, 256, size=(300, 28, 28), dtype=np.uint8)
    y = nprng.integers(0, 10, size=300)
    data = problems.image_data(x, y)
    problem = problems.MLP(data, hidden=hidden, activation=activation)
    assert problem.dim == sum(a * b + b for a, b in zip([784, *hidden], [*hidden, 10]))
    rng = tf.random.Generator.from_seed(0)
    params = 0.3 * rng.normal([2, problem.dim])  # two instances; check the second
    batch_x, batch_y = data.x[:128], data.y[:128]

    model = keras.Sequential([keras.Input((784,))] + [keras.layers.Dense(h, activation=activation) for h in hidden] + [keras.layers.Dense(10)])
    model.set_weights([t[1].numpy() for layer in problem.unflatten(params) for t in layer])
    with tf.GradientTape() as tape:
        keras_loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(batch_y, model(batch_x))
    keras_grads = tape.gradient(keras_loss, model.trainable_variables)

    with tf.GradientTape() as tape:
        tape.watch(params)
        ours = problem.batch_loss(params, batch_x, batch_y)
    grads = tape.gradient(ours, params)
    np.testing.assert_allclose(float(ours[1]), float(keras_loss), rtol=1e-5)
    flat_keras = np.concatenate([g.numpy().reshape(-1) for g in keras_grads])
    np.testing.assert_allclose(grads[1].numpy(), flat_keras, rtol=1e-4, atol=1e-6)

    loss, accuracy = problem.metrics(params, data, chunk=128)
    logits = model(data.x).numpy()
    np.testing.assert_allclose(float(accuracy[1]), float(np.mean(logits.argmax(-1) == y)), atol=1e-6)


def test_mlp_minibatches_come_from_the_generator():
    data = problems.image_data(np.arange(50 * 4, dtype=np.uint8).reshape(50, 2, 2), np.arange(50) % 10)
    problem = problems.MLP(data, hidden=(3,), batch_size=8)
    params = problem.init_params(tf.random.Generator.from_seed(1), problem.sample(None, 3))
    a = problem.loss(params, None, tf.random.Generator.from_seed(5))
    b = problem.loss(params, None, tf.random.Generator.from_seed(5))
    c = problem.loss(params, None, tf.random.Generator.from_seed(6))
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert not np.array_equal(a.numpy(), c.numpy())
    with pytest.raises(ValueError, match="activation"):
        problems.MLP(data, activation="tanh")


def _tiny_images(activation="sigmoid", hidden=(3,)):
    x = np.random.default_rng(0).integers(0, 256, size=(40, 3, 3), dtype=np.uint8)
    return problems.MLP(problems.image_data(x, np.arange(40) % 10, "tiny"), hidden=hidden, activation=activation, batch_size=8)


CONTRACT = {
    "quadratic-normal": lambda: problems.Quadratic(dims=4),
    "quadratic-uniform": lambda: problems.Quadratic(dims=4, distribution="uniform"),
    "mlp-sigmoid": lambda: _tiny_images(),
    "mlp-relu-deep": lambda: _tiny_images("relu", (4, 3)),
}


@pytest.mark.parametrize("name", sorted(CONTRACT))
def test_every_problem_meets_the_contract(name):
    """Shapes, determinism under a seeded generator, a JSON-able description, and the gradient TF takes
    against central finite differences along random directions."""
    import json

    problem = CONTRACT[name]()
    assert isinstance(problem, problems.Problem) and isinstance(problem.dim, int) and problem.dim > 0
    description = problem.describe()
    assert json.loads(json.dumps(description)) == description and description["name"] == problem.name

    def draw(seed):
        rng = tf.random.Generator.from_seed(seed)
        batch = problem.sample(rng, 3)
        return batch, problem.init_params(rng, batch)

    (batch, params), (batch2, params2) = draw(5), draw(5)
    assert params.shape == (3, problem.dim) and params.dtype == tf.float32
    np.testing.assert_array_equal(params.numpy(), params2.numpy())
    tf.nest.map_structure(lambda a, b: np.testing.assert_array_equal(a.numpy(), b.numpy()), batch, batch2)
    assert not np.array_equal(draw(6)[1].numpy(), params.numpy())

    params = params + 0.3 * tf.random.stateless_normal(params.shape, [1, 2])  # away from the tiny start
    loss_at = lambda p: problem.loss(p, batch, tf.random.Generator.from_seed(9)).numpy().astype(np.float64)  # same minibatch each call
    losses, grads = problems.loss_and_grads(problem, params, batch, tf.random.Generator.from_seed(9))
    assert losses.shape == (3,) and grads.shape == params.shape and np.all(np.isfinite(losses.numpy()))
    np.testing.assert_allclose(losses.numpy(), loss_at(params), rtol=1e-6)
    directions = np.random.default_rng(1).normal(size=(3, *params.shape))
    for direction in directions:
        direction = (direction / np.linalg.norm(direction, axis=-1, keepdims=True)).astype(np.float32)  # unit length per instance
        eps = 1e-3  # a step this short rarely crosses a ReLU kink, and float32 losses still resolve it
        numeric = (loss_at(params + eps * direction) - loss_at(params - eps * direction)) / (2 * eps)
        analytic = np.sum(grads.numpy().astype(np.float64) * direction, axis=-1)
        np.testing.assert_allclose(numeric, analytic, rtol=2e-2, atol=2e-3 * (1 + np.abs(analytic).max()))
