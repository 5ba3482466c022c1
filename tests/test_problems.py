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
    with pytest.raises(ValueError, match="unknown problem 'mnist_cnn'; choose one of"):
        problems.make("mnist_cnn")
    with pytest.raises(ValueError, match="distribution"):
        problems.Quadratic(distribution="cauchy")
    assert problems.make("quadratic", dims=3).dim == 3
