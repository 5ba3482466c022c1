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
    lk = {"damping": 0.1, "levels": 2}
    with_lk = alignment.picture_rows(result, _fixed(3.0), 3, pairs=2, shots=(4, 1), lucas_kanade=lk)
    assert list(with_lk)[-3:] == ["Lucas-Kanade, step 1", "Lucas-Kanade, step 4", "example"]
    path = alignment.inverse_compositional(first.example, first.moving, tf.reshape(start[:2], [-1, 2, 3]), 4, **lk)
    np.testing.assert_allclose(with_lk["Lucas-Kanade, step 4"], problem.aligned(tf.reshape(path[4], [-1, 6]), first).numpy(), rtol=1e-5, atol=1e-6)


def test_template_rows_train_one_network_per_optimiser_and_report_its_maps_determinant():
    from l2l import experiment

    x = np.zeros((6, 16, 16), np.uint8)
    x[:, 4:12, 6:9] = 255
    data = problems.image_data(x, np.arange(6), "bars")
    stn = problems.SpatialTransformer(data, image_shape=(16, 16, 1), hidden=3, batch_size=2, template=1, max_rotation=10.0)
    panel = experiment.Panel("single_template", "one example", stn, stn, tune_steps=2, steps=3, report_steps=(2, 3), heldout=data)
    result = experiment.run_protocol(panel, {"lstm": [_fixed(0.1)]}, instances=1, seeds=[0], tune_instances=1, baselines=("sgd",), extra={},
                                     grid=(0.01, 0.1), tune_learned=True, multiplier_grid=(0.5, 1.0), log=lambda line: None)
    rows, checks = alignment.template_rows(result, _fixed(0.1), 2, 3, data, pairs=2)
    assert list(checks) == ["LSTM, multiplier tuned", "SGD"] and all(np.isfinite(c["median_determinant"]) for c in checks.values())
    assert list(rows)[0] == "input" and list(rows)[-1] == "target" and len(rows) == 4
    assert f"SGD (median det {checks['SGD']['median_determinant']:.2f})" in rows
    np.testing.assert_allclose(rows["target"], np.repeat(x[1].reshape(1, 16, 16, 1) / 255.0, 2, axis=0), atol=1e-6)


def _blobs(size=28, seed=0, theta=None):
    """A smooth synthetic image [1, size, size, 1], a few Gaussian blobs away from the border, evaluated exactly (no
    resampling) at the pixels, or at where `theta` [3, 3] (l2l.warp's normalised coordinates) sends each pixel: the
    image warped by theta with no interpolation blur, so the true inverse warp is the exact answer."""
    r = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
    if theta is not None:
        nx, ny = xs * 2 / (size - 1) - 1, ys * 2 / (size - 1) - 1
        mx, my = theta[0, 0] * nx + theta[0, 1] * ny + theta[0, 2], theta[1, 0] * nx + theta[1, 1] * ny + theta[1, 2]
        xs, ys = (mx + 1) * (size - 1) / 2, (my + 1) * (size - 1) / 2
    image = np.zeros((size, size))
    for _ in range(5):
        cy, cx = r.uniform(0.3 * size, 0.7 * size, 2)
        image += r.uniform(0.5, 1.0) * np.exp(-((ys - cy) ** 2 + (xs - cx) ** 2) / (2 * r.uniform(1.5, 3.5) ** 2))
    return image[None, :, :, None]


def _affine(rotation_deg, scale, shear, shift_px, size=28):
    """A forward map [1, 3, 3] in l2l.warp's normalised coordinates; shift_px in pixels."""
    a = np.deg2rad(rotation_deg)
    linear = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]) @ np.array([[scale, shear], [0.0, scale]])
    shift = np.asarray(shift_px) * 2.0 / (size - 1)
    return np.vstack([np.hstack([linear, shift[:, None]]), [0.0, 0.0, 1.0]])[None]


@pytest.mark.parametrize("warp_args, levels, tolerance", [((12.0, 1.08, 0.05, (2.5, -1.5)), 1, 0.3), ((30.0, 0.9, 0.1, (4.0, 3.0)), 1, 0.3),
                                                          ((12.0, 1.08, 0.05, (2.5, -1.5)), 3, 0.3), ((10.0, 1.05, 0.0, (8.0, 8.0)), 3, 1.0)])
def test_inverse_compositional_lucas_kanade_recovers_a_known_warp_to_sub_pixel_error(warp_args, levels, tolerance):
    """The moving image is the example under a known affine map, evaluated exactly (no resampling): the inverse map is
    the answer, and the anchor must come within a fraction of a pixel of it at the image's corners (its fixed point
    sits 0.1-0.3 px off, measured: see inverse_compositional)."""
    from l2l import warp

    forward = np.tile(_affine(*warp_args), [2, 1, 1])
    contrast = np.array([1.0, 0.7])[:, None, None, None]
    example = tf.constant(np.tile(_blobs(), [2, 1, 1, 1]) * contrast, tf.float64)
    moving = tf.constant(np.tile(_blobs(theta=forward[0]), [2, 1, 1, 1]) * contrast, tf.float64)  # moving pixel q shows the example at forward(q)
    truth = tf.constant(np.linalg.inv(forward)[:, :2])
    start = tf.tile(tf.constant(warp.IDENTITY, tf.float64)[None], [2, 1, 1])
    path = alignment.inverse_compositional(example, moving, start, steps=40, levels=levels)
    assert path.shape == (41, 2, 2, 3)
    np.testing.assert_array_equal(path[0].numpy(), start.numpy())
    before, after = (warp.corner_error(t, truth, 28, 28).numpy() for t in (path[0], path[-1]))
    assert before.min() > 3.0 and after.max() < tolerance, (before, after)


def test_levenberg_marquardt_never_keeps_a_step_that_raises_the_error_at_full_resolution():
    from l2l import warp

    example = tf.constant(_blobs(seed=1), tf.float64)
    moving = tf.constant(_blobs(seed=1, theta=_affine(20.0, 1.1, 0.0, (3.0, 2.0))[0]), tf.float64)
    start = tf.constant(warp.IDENTITY, tf.float64)[None]
    path = alignment.inverse_compositional(example, moving, start, steps=20, levels=1, damping=1e3)  # one level: every step at full size
    costs = [float(tf.reduce_mean(tf.square(warp.warp(moving, t) - example))) for t in path]
    assert all(b <= a for a, b in zip(costs, costs[1:])) and costs[-1] < 0.1 * costs[0]


def test_the_pyramid_halves_each_level_at_the_same_normalised_coordinates():
    image = tf.constant(_blobs(), tf.float64)
    levels = alignment.pyramid(image, 3)
    assert [lv.shape[1] for lv in levels] == [7, 14, 28] and levels[-1] is not None
    np.testing.assert_array_equal(levels[-1].numpy(), image.numpy())
    # A coarse level's pixel at normalised (0, 0) shows what the blurred full image shows there: the centre.
    centre = alignment._blur(image)[0, 13:15, 13:15, 0].numpy().mean()
    np.testing.assert_allclose(levels[1][0, 6:8, 6:8, 0].numpy().mean(), centre, rtol=0.15)



def test_the_lucas_kanade_anchor_runs_on_a_panels_instances_and_is_tuned_on_held_out_pairs():
    problem = _bars(max_rotation=10.0, max_scale=0.08, max_shear=0.05, max_shift=1.0)
    curves, seconds, corners = alignment.evaluate_inverse_compositional(problem, steps=6, instances=3, seeds=[0, 1])
    assert curves.shape == corners.shape == (2, 3, 7) and seconds > 0
    from l2l.rollout import TEST_SEED, fresh_instances

    batch, params = fresh_instances(problem, 1, 3, TEST_SEED)  # seed 1's instances, as every optimiser of the panel gets them
    np.testing.assert_allclose(curves[1, :, 0], problem.loss(params, batch).numpy(), rtol=1e-6)
    assert np.median(corners[..., -1]) < 0.5 * np.median(corners[..., 0])
    chosen, tried = alignment.tune_inverse_compositional(problem, steps=6, instances=3, grid=(1e-2, 1.0), levels=(1, 2))
    assert set(tried) == {(0.01, 1), (0.01, 2), (1.0, 1), (1.0, 2)} and tried[(chosen["damping"], chosen["levels"])] == min(tried.values())


def test_the_template_gradient_is_centred_so_sharp_images_align_as_well_as_gauss_newton_does():
    """The sampler's one-sided derivative at pixel centres left the fixed point 1-2 px off on these bars; central
    differences bring it within what forward Gauss-Newton reaches on the same pairs."""
    problem = _bars(max_rotation=10.0, max_scale=0.08, max_shear=0.05, max_shift=1.0)
    _, _, lk = alignment.evaluate_inverse_compositional(problem, steps=15, instances=4, seeds=[0], levels=1)
    _, _, gn = alignment.evaluate_gauss_newton(problem, 15, 4, [0])
    assert lk[..., -1].max() < 0.5 and np.median(lk[..., -1]) <= 1.5 * np.median(gn[..., -1]), (lk[..., -1], gn[..., -1])
    # The steepest-descent images of a ramp: its slope times the warp's derivative, exactly.
    ramp = tf.constant(np.tile(np.arange(8.0), [8, 1])[None, :, :, None])
    sd = alignment.steepest_descent(ramp).numpy()[0, 3:5, 3:5, 0]  # interior pixels: slope 1 along x, 0 along y
    xs = np.linspace(-1, 1, 8)[3:5]
    np.testing.assert_allclose(sd[..., 0], np.tile(3.5 * xs, [2, 1]))  # d/d theta[0,0] = slope * (W - 1) / 2 * X
    np.testing.assert_allclose(sd[..., 3:], 0.0)


def test_robust_geometry_reads_each_runs_median_pair_and_success_paired_by_run():
    """One divergent pair per run sets the LSTM's mean corner error; its median and its success rate show it aligns
    the other pairs better than the baseline."""
    from l2l.experiment import ProtocolResult

    rng = np.random.default_rng(0)
    ours = rng.uniform(0.1, 0.5, size=(4, 9))
    ours[:, 0] = 500.0  # diverged on one pair per run
    theirs = rng.uniform(1.5, 2.5, size=(4, 9))
    result = ProtocolResult(  # the shape run_protocol returns, so the reader cannot drift from it
        panel=None, settings={}, multipliers={}, curves={}, seconds_per_step={}, entries={}, tuning_s=0.0,
        runs={"lstm": {10: {"final": "a"}}, "adam": {10: {"final": "b"}}},
        metrics={"a": {10: (ours, (ours <= 1.0).astype(float))}, "b": {10: (theirs, (theirs <= 1.0).astype(float))}},
        verdicts={10: {"corner": {"learned": "lstm", "best": "adam"}}})
    robust = alignment.robust_geometry(result, 10)
    np.testing.assert_allclose(robust["median"]["lstm"]["mean"], np.median(ours, axis=1).mean())
    assert robust["success"]["lstm"]["mean"] == pytest.approx(8 / 9) and robust["success"]["adam"]["mean"] == 0.0
    assert robust["verdicts"]["median"]["verdict"] == "beats" and robust["verdicts"]["median"]["wins"] == 4
    assert robust["verdicts"]["success"]["verdict"] == "beats" and robust["verdicts"]["success"]["best"] == "adam"
    assert ours.mean() > theirs.mean()  # what the mean alone would have said


def test_the_map_scale_check_tells_a_collapsed_network_from_one_that_shows_the_digit():
    """The untrained network maps every image by the identity (determinant 1); one whose last bias scales by 5
    samples a region 25 times the image's, so every digit shrinks to a dot."""
    from l2l import warp

    x = np.random.default_rng(0).integers(0, 256, size=(40, 12, 12), dtype=np.uint8)
    data = problems.image_data(x, np.arange(40) % 4, "noise")
    problem = problems.SpatialTransformer(data, image_shape=(12, 12, 1), hidden=3, batch_size=4)
    params = problem.init_params(tf.random.Generator.from_seed(0), problem.sample(None, 1))
    fine = alignment.map_scale_check(problem, params, data, summary_pairs=40)
    assert fine["median_determinant"] == pytest.approx(1.0) and fine["plausible_share"] == 1.0
    collapsed = tf.concat([params[:, :-6], tf.constant(5.0 * warp.IDENTITY.reshape(1, 6), params.dtype)], axis=1)
    check = alignment.map_scale_check(problem, collapsed, data, summary_pairs=40)
    assert check["median_determinant"] == pytest.approx(25.0) and check["plausible_share"] == 0.0


def _two_bars(problem_type=problems.Alignment, **bounds):
    """Eight 16x16 images of two classes that differ only in where their bar stands (x 3-5 or 9-11)."""
    x = np.zeros((8, 16, 16), np.uint8)
    labels = np.arange(8) % 2
    for i, c in enumerate(labels):
        x[i, 3:13, 3 + 6 * c:6 + 6 * c] = 255
        x[i, 3:5, 3 + 6 * c:8 + 6 * c] = 160 + 40 * c
    return problem_type(problems.image_data(x, labels, "two bars"), image_shape=(16, 16, 1), **bounds)


@pytest.mark.parametrize("problem_type", [problems.Alignment, problems.ExemplarAlignment])
def test_labels_are_the_class_of_the_digit_each_instance_shows(problem_type):
    from l2l.streams import generator

    problem = _two_bars(problem_type, max_shift=1.0)
    batch = problem.sample(generator(7), 16)
    labels = problem.labels(generator(7), 16).numpy()
    bar_on_the_right = batch.example.numpy()[:, 8, 10, 0] > 0.5
    np.testing.assert_array_equal(labels, bar_on_the_right.astype(labels.dtype))
    assert 0 < labels.sum() < 16


def _nearest_bar(images):
    """A fixed classifier: the class whose bar position holds more of the image's ink."""
    left, right = images[:, 3:13, 3:6, 0].sum(axis=(1, 2)), images[:, 3:13, 9:12, 0].sum(axis=(1, 2))
    return (right > left).astype(np.int64)


def test_the_lucas_kanade_anchor_is_tuned_on_the_tuning_pairs_and_compared_by_median_and_success():
    from l2l import experiment

    problem = _two_bars(max_rotation=10.0, max_scale=0.05, max_shear=0.05, max_shift=1.5)
    tuning = _two_bars(max_rotation=10.0, max_scale=0.05, max_shear=0.05, max_shift=1.0)
    panel = experiment.Panel("pairs", "bars", problem, tuning, tune_steps=3, steps=5, report_steps=(3, 5), geometry=True)
    result = experiment.run_protocol(panel, {"lstm": [_fixed(3.0)]}, instances=4, seeds=[0, 1], tune_instances=2, baselines=("sgd",), extra={},
                                     grid=(0.3, 3.0), log=lambda line: None)
    lk = alignment.lucas_kanade_panel(result, tune_instances=2, grid=(1e-2, 1.0), levels=(1, 2))
    chosen, tried = alignment.tune_inverse_compositional(tuning, 3, 2, grid=(1e-2, 1.0), levels=(1, 2))  # on the tuning pairs, at the tuning step
    assert (lk.entry["damping"], lk.entry["levels"]) == (chosen["damping"], chosen["levels"]) and len(lk.entry["tuning"]) == 4
    _, _, corners = alignment.evaluate_inverse_compositional(problem, 5, 4, [0, 1], **chosen)
    np.testing.assert_allclose(lk.corners, corners, rtol=1e-6)
    ours = result.metrics[result.runs["lstm"][5]["final"]][5][0]
    v = lk.verdicts[5]
    assert v["median"]["mean"] == pytest.approx((np.median(ours, axis=1) - np.median(corners[..., 5], axis=1)).mean(), rel=1e-5, abs=1e-9)
    assert v["success"]["mean"] == pytest.approx(((corners[..., 5] <= 1.0).mean(axis=1) - (ours <= 1.0).mean(axis=1)).mean(), abs=1e-9)
    assert "Lucas-Kanade" in alignment.anchor_sentence(v["median"], "median", 5, anchor="Lucas-Kanade")


def test_the_downstream_reading_classifies_each_methods_aligned_pairs_against_their_labels():
    from l2l import experiment
    from l2l.rollout import fresh_instances
    from l2l.streams import TEST_SEED, generator

    problem = _two_bars(problems.ExemplarAlignment, max_rotation=5.0, max_shift=3.0)
    panel = experiment.Panel("exemplar", "bars", problem, problem, tune_steps=3, steps=4, report_steps=(3, 4), geometry=True)
    result = experiment.run_protocol(panel, {"lstm": [_fixed(3.0)]}, instances=6, seeds=[0, 1], tune_instances=2, baselines=("sgd",), extra={},
                                     grid=(0.3, 3.0), log=lambda line: None)
    lk = {"damping": 1e-2, "levels": 1}
    read = alignment.downstream_accuracy(result, [_fixed(3.0)], 3, _nearest_bar, lucas_kanade=lk)
    assert set(read["accuracy"]) == {"unaligned", "true map", "lstm", "sgd", "lucas_kanade"}
    expected = {}
    for seed in (0, 1):
        batch, start = fresh_instances(problem, seed, 6)
        labels = problem.labels(generator(TEST_SEED + seed), 6).numpy()
        truth = tf.reshape(batch.true_theta, [-1, 6])
        lk_map = tf.reshape(alignment.inverse_compositional(batch.example, batch.moving, tf.reshape(start, [-1, 2, 3]), 3, **lk)[-1], [-1, 6])
        for name, params in (("unaligned", start), ("true map", truth), ("lucas_kanade", lk_map)):
            expected.setdefault(name, []).append((_nearest_bar(problem.aligned(params, batch).numpy()) == labels).mean())
    for name, values in expected.items():
        assert read["accuracy"][name]["mean"] == pytest.approx(np.mean(values)), name
    assert read["accuracy"]["true map"]["mean"] == 1.0  # undoing the warp puts every bar back where its class has it
    v = read["verdicts"]["lucas_kanade"]
    assert v["learned"] == "lstm" and v["runs"] == 2


def _network_result(lstm_curve, success):
    """A protocol result of a localisation-network panel (report steps 2 and 4) as run_protocol shapes it, with the
    LSTM's loss curve per run given and every optimiser's held-out success share at step 4."""
    from l2l import stats
    from l2l.experiment import ProtocolResult

    curves = {"a": np.broadcast_to(np.asarray(lstm_curve, np.float64)[:, None, :], (len(lstm_curve), 2, 5)).copy(),
              "b": np.full((len(lstm_curve), 2, 5), 0.09)}
    runs = {n: {s: {"final": r, "mean": r} for s in (2, 4)} for n, r in (("lstm", "a"), ("adam", "b"))}
    entries = {n: {"success": {"4": {"mean": v}}} for n, v in success.items()}
    verdict = {"learned": "lstm", "best": "adam", "chosen_on": "tuning", **stats.compare_runs(curves["a"][..., 4], curves["b"][..., 4])}
    return ProtocolResult(panel=None, settings={}, multipliers={}, curves=curves, runs=runs, seconds_per_step={}, metrics={}, entries=entries,
                          verdicts={s: {"final": verdict} for s in (2, 4)}, tuning_s=0.0)


def test_the_amortised_panel_says_its_meta_training_failed_before_comparing_anything():
    from l2l.chapters import stn

    worse = _network_result([[0.10, 0.11, 0.12, 0.12, 0.13], [0.10, 0.10, 0.11, 0.12, 0.12], [0.10, 0.12, 0.12, 0.13, 0.14]], {"lstm": 0.0, "adam": 0.01})
    reading = alignment.amortised_reading(worse, 4)
    assert reading["failed"] and reading["identity"] == pytest.approx(0.10) and reading["solved_by"] == []
    sentence = stn.amortised_sentence(reading, worse)
    assert "meta-training failed" in sentence and "best tuned baseline" not in sentence and "ADAM's: 1%" in sentence
    unsolved = _network_result([[0.10, 0.08, 0.07, 0.06, 0.05]] * 3, {"lstm": 0.2, "adam": 0.3})
    assert "No optimiser solves" in stn.amortised_sentence(alignment.amortised_reading(unsolved, 4), unsolved)
    solved = _network_result([[0.10, 0.08, 0.07, 0.06, 0.05], [0.10, 0.07, 0.06, 0.05, 0.04], [0.1, 0.09, 0.07, 0.06, 0.05]], {"lstm": 0.6, "adam": 0.3})
    reading = alignment.amortised_reading(solved, 4)
    assert not reading["failed"] and reading["solved_by"] == ["lstm"]
    assert "minus the best tuned baseline" in stn.amortised_sentence(reading, solved)


def test_a_collapsed_map_gets_no_loss_verdict_in_the_one_template_setting():
    from l2l.chapters import stn

    result = _network_result([[0.10, 0.08, 0.07, 0.06, 0.05]] * 3, {"lstm": 0.0, "adam": 0.0})._replace(
        panel=type("P", (), {"tune_steps": 2})())
    fine = {"median_determinant": 1.1, "plausible_share": 0.9, "plausible": [0.5, 2.0]}
    collapsed = {"median_determinant": 25.0, "plausible_share": 0.1, "plausible": [0.5, 2.0]}
    said = stn.template_sentence(result, {"LSTM, multiplier tuned": collapsed, "ADAM": fine}, 4)
    assert "collapsed" in said and "best tuned baseline" not in said and "median determinant 25.00" in said
    said = stn.template_sentence(result, {"LSTM, multiplier tuned": fine, "ADAM": fine}, 4)
    assert "collapsed" not in said and "minus the best tuned baseline" in said
