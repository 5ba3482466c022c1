"""The alignment baseline: damped Gauss-Newton on the photometric residuals."""

import numpy as np
import pytest
import tensorflow as tf

from l2l import alignment, problems


def _bars(**bounds):
    x = np.zeros((8, 16, 16), np.uint8)
    x[:, 4:12, 6:9] = 255
    x[:, 4:7, 6:12] = 200
    return problems.Alignment(problems.image_data(x, np.zeros(8), "bars"), image_shape=(16, 16, 1), **bounds)


def test_residuals_are_what_the_loss_averages():
    problem = _bars()
    rng = tf.random.Generator.from_seed(0)
    batch = problem.sample(rng, 4)
    params = problem.init_params(rng, batch) + 0.05 * tf.random.stateless_normal([4, 6], [1, 2])
    r = alignment.residuals(problem, params, batch)
    np.testing.assert_allclose(tf.reduce_mean(tf.square(r), axis=-1).numpy(), problem.loss(params, batch).numpy(), rtol=1e-6)


def test_gauss_newton_reaches_the_photometric_optimum_of_small_warps():
    """The moving image was resampled once (bilinear blur, content lost at the border), so the true inverse warp
    is not exactly the photometric minimum: Gauss-Newton must get at least as low a loss as the truth, and so
    come within a fraction of a pixel of it."""
    problem = _bars(max_rotation=10.0, max_scale=0.08, max_shear=0.05, max_shift=1.0)
    rng = tf.random.Generator.from_seed(3)
    batch = problem.sample(rng, 8)
    start = problem.init_params(rng, batch)
    losses, path = alignment.gauss_newton(problem, batch, start, steps=15)
    params = path[-1]
    assert losses.shape == (16, 8) and path.shape == (16, 8, 6)
    np.testing.assert_array_equal(path[0].numpy(), start.numpy())
    np.testing.assert_allclose(losses[0].numpy(), problem.loss(start, batch).numpy(), rtol=1e-6)
    truth = problem.loss(tf.reshape(batch.true_theta, [8, 6]), batch).numpy()
    assert np.all(losses[-1].numpy() <= 1.05 * truth)
    before, after = problem.corner_error(start, batch).numpy(), problem.corner_error(params, batch).numpy()
    assert np.median(after) < 0.3 * np.median(before) and after.max() < 0.75, (before, after)


def test_gauss_newton_runs_on_the_instances_every_optimiser_of_a_seed_gets():
    from l2l import evaluate, optimizers

    problem = _bars(max_rotation=10.0, max_scale=0.05, max_shear=0.05, max_shift=1.0)
    curves, seconds, corners = alignment.evaluate_gauss_newton(problem, steps=4, instances=3, seeds=[0, 1])
    sgd = evaluate.evaluate(problem, {"sgd": lambda s: optimizers.sgd(0.1)}, 4, 3, [0, 1]).curves["sgd"]
    assert curves.shape == sgd.shape == corners.shape == (2, 3, 5) and seconds > 0
    np.testing.assert_allclose(curves[:, :, 0], sgd[:, :, 0], rtol=1e-6)  # the same instances, from the same start
    # An instance that starts nearly aligned may end a little further from the truth (the photometric optimum
    # is not the true warp: see above); on average Gauss-Newton closes most of the distance.
    assert corners[:, :, -1].mean() < 0.6 * corners[:, :, 0].mean()


def test_gauss_newton_enters_a_geometry_panel_on_its_instances_and_is_compared_with_the_learned_optimiser():
    from l2l import evaluate, experiment, optimizers

    problem = _bars(max_rotation=10.0, max_scale=0.05, max_shear=0.05, max_shift=1.0)
    fixed = type("Fixed", (), {"optimizer": lambda self, problem=None: optimizers.sgd(3.0)})()
    panel = experiment.Panel("pairs", "bars", problem, problem, tune_steps=3, steps=5, report_steps=(3, 5), geometry=True)
    result = experiment.run_protocol(panel, {"lstm": [fixed]}, instances=3, seeds=[0, 1], tune_instances=2, baselines=("sgd",), extra={}, grid=(0.3, 3.0),
                                     log=lambda line: None)
    entry, verdicts, corners, gn_curves = alignment.gauss_newton_panel(result)
    curves, _, again = alignment.evaluate_gauss_newton(problem, 5, 3, [0, 1])
    np.testing.assert_allclose(corners, again, rtol=1e-6)
    np.testing.assert_allclose(gn_curves, curves, rtol=1e-6)
    assert entry["loss"]["5"]["mean"] == pytest.approx(curves[..., 5].mean(), rel=1e-6) and entry["corner_error"]["5"]["runs"] == 2
    ours = result.curves[result.runs["lstm"][5]["final"]][..., 5]
    assert verdicts[5]["final"]["mean"] == pytest.approx((ours - curves[..., 5]).mean(), rel=1e-5, abs=1e-9)
    assert verdicts[5]["corner"]["learned"] == "lstm" and verdicts[5]["corner"]["runs"] == 2
    # Steps to 1 px from Gauss-Newton's own corner errors at steps 1..5: the median pair's first step within 1 px.
    first = [[next((t for t in range(1, 6) if c[t] <= 1.0), np.inf) for c in run] for run in corners]
    medians = np.median(first, axis=1)
    reach = entry["steps_to_1px"]["3"]
    assert reach == entry["steps_to_1px"]["5"]  # nothing tuned per step
    if np.all(np.isfinite(medians)):
        assert reach["mean"] == pytest.approx(medians.mean())
        assert entry["seconds_to_1px"]["5"]["mean"] == pytest.approx(medians.mean() * entry["ms_per_step"] / 1000, rel=1e-6)
    sentence = alignment.reach_sentence(result, entry, 5)
    assert "LSTM" in sentence and "SGD, the fastest tuned baseline" in sentence and "Gauss-Newton" in sentence and "over 2 runs" in sentence
    # Snapshots are the images the optimiser's parameters give at those steps.
    batch, params = evaluate.fresh_instances(problem, 0, 3)
    pictures = alignment.snapshots(problem, optimizers.sgd(3.0), batch, params, (2, 5))
    _, _, at = evaluate.run(problem, optimizers.sgd(3.0), batch, params, 5, 0, metric=lambda p, b: p, snapshots=(2,))
    np.testing.assert_allclose(pictures[0], problem.aligned(at[2], batch).numpy(), rtol=1e-6)
    assert pictures.shape == (2, 3, 16, 16, 1)


def test_an_untrained_localisation_network_leaves_images_as_they_are_with_unit_determinant():
    x = np.zeros((5, 16, 16), np.uint8)
    x[:, 4:12, 6:9] = 255
    stn = problems.SpatialTransformer(problems.image_data(x, np.arange(5), "bars"), image_shape=(16, 16, 1), hidden=3, batch_size=2)
    rng = tf.random.Generator.from_seed(0)
    params = stn.init_params(rng, stn.sample(rng, 1))
    moving, aligned, determinant = alignment.stn_outputs(stn, params, stn.data, pairs=3)
    np.testing.assert_allclose(aligned, moving, atol=1e-6)
    assert moving.shape == (3, 16, 16, 1) and determinant == pytest.approx(1.0)
    shrink = tf.concat([params[:, :-6], tf.constant([[1.5, 0.0, 0.0, 0.0, 1.5, 0.0]])], axis=1)  # sample 1.5x the image: the digit shrinks
    assert alignment.stn_outputs(stn, shrink, stn.data)[2] == pytest.approx(2.25, rel=1e-5)


def _fixed(lr):
    from l2l import optimizers

    return type("Fixed", (), {"optimizer": lambda self, problem=None: optimizers.sgd(lr)})()


def test_a_panels_picture_rows_are_the_images_each_optimisers_parameters_give():
    from l2l import evaluate, experiment, optimizers

    problem = _bars(max_rotation=10.0, max_scale=0.05, max_shear=0.05, max_shift=1.0)
    panel = experiment.Panel("pairs", "bars", problem, problem, tune_steps=3, steps=5, report_steps=(3, 5), geometry=True)
    result = experiment.run_protocol(panel, {"lstm": [_fixed(3.0)]}, instances=3, seeds=[0], tune_instances=2, baselines=("sgd",), extra={}, grid=(0.3, 3.0),
                                     log=lambda line: None)
    rows = alignment.picture_rows(result, _fixed(3.0), 3, pairs=2, shots=(4, 1))
    assert list(rows) == ["input", "LSTM, step 1", "LSTM, step 4", "SGD, step 1", "SGD, step 4", "Gauss-Newton, step 1", "Gauss-Newton, step 4", "example"]
    assert all(v.shape == (2, 16, 16, 1) for v in rows.values())
    batch, start = evaluate.fresh_instances(problem, 0, 3)  # the panel's test pairs of seed 0, the first two of them
    np.testing.assert_allclose(rows["input"], batch.moving.numpy()[:2])
    np.testing.assert_allclose(rows["example"], batch.example.numpy()[:2])
    first = type(batch)(*(t[:2] for t in batch))
    sgd = optimizers.sgd(result.settings[3]["final"]["sgd"]["learning_rate"])
    _, _, at = evaluate.run(problem, sgd, first, start[:2], 4, 0, metric=lambda p, b: p, snapshots=(4,))
    np.testing.assert_allclose(rows["SGD, step 4"], problem.aligned(at[4], first).numpy(), rtol=1e-5, atol=1e-6)
    _, path = alignment.gauss_newton(problem, first, start[:2], 1)
    np.testing.assert_allclose(rows["Gauss-Newton, step 1"], problem.aligned(path[1], first).numpy(), rtol=1e-5, atol=1e-6)


def test_template_rows_train_one_network_per_optimiser_and_report_its_maps_determinant():
    from l2l import experiment

    x = np.zeros((6, 16, 16), np.uint8)
    x[:, 4:12, 6:9] = 255
    data = problems.image_data(x, np.arange(6), "bars")
    stn = problems.SpatialTransformer(data, image_shape=(16, 16, 1), hidden=3, batch_size=2, template=1, max_rotation=10.0)
    panel = experiment.Panel("single_template", "one example", stn, stn, tune_steps=2, steps=3, report_steps=(2, 3), heldout=data)
    result = experiment.run_protocol(panel, {"lstm": [_fixed(0.1)]}, instances=1, seeds=[0], tune_instances=1, baselines=("sgd",), extra={},
                                     grid=(0.01, 0.1), tune_learned=True, multiplier_grid=(0.5, 1.0), log=lambda line: None)
    rows, determinants = alignment.template_rows(result, _fixed(0.1), 2, 3, data, pairs=2)
    assert list(determinants) == ["LSTM, multiplier tuned", "SGD"] and all(np.isfinite(list(determinants.values())))
    assert list(rows)[0] == "input" and list(rows)[-1] == "target" and len(rows) == 4
    assert f"SGD (det {determinants['SGD']:.2f})" in rows
    np.testing.assert_allclose(rows["target"], np.repeat(x[1].reshape(1, 16, 16, 1) / 255.0, 2, axis=0), atol=1e-6)
