import keras
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


def _tiny_convnet():
    x = np.random.default_rng(0).integers(0, 256, size=(24, 8, 8, 3), dtype=np.uint8)
    return problems.ConvNet(problems.image_data(x, np.arange(24) % 10, "tiny-images"), image_shape=(8, 8, 3), channels=(4, 5),
                            kernel=3, hidden=6, batch_size=6)


def _tiny_alignment(**bounds):
    x = np.zeros((6, 12, 12), np.uint8)
    x[:, 3:9, 4:7] = 255  # a bar: something whose position and angle show
    x[:, 3:5, 4:10] = 255
    return problems.Alignment(problems.image_data(x, np.zeros(6), "bars"), image_shape=(12, 12, 1), **bounds)


def _tiny_exemplar():
    x = np.zeros((8, 12, 12), np.uint8)
    for k in range(8):  # two classes of bars, each image of its own width
        x[k, 3:9, 4 : 6 + k % 3] = 255
        x[k, 3:5, 4:10] = 255 if k % 2 else 0
    return problems.ExemplarAlignment(problems.image_data(x, np.arange(8) % 2, "bars"), image_shape=(12, 12, 1))


def _tiny_stn(**options):
    x = np.zeros((6, 12, 12), np.uint8)
    for k in range(6):
        x[k, 2 + k % 3 : 9, 3 : 5 + k % 4] = 255  # bars of other sizes: every image differs
        x[k, 8:10, 2:10] = 128
    return problems.SpatialTransformer(problems.image_data(x, np.arange(6), "bars"), image_shape=(12, 12, 1), hidden=3, batch_size=4, **options)



CONTRACT = {
    "quadratic-normal": lambda: problems.Quadratic(dims=4),
    "quadratic-uniform": lambda: problems.Quadratic(dims=4, distribution="uniform"),
    "mlp-sigmoid": lambda: _tiny_images(),
    "mlp-relu-deep": lambda: _tiny_images("relu", (4, 3)),
    "convnet": _tiny_convnet,
    "alignment": _tiny_alignment,
    "exemplar-alignment": _tiny_exemplar,
    "stn": _tiny_stn,
    "stn-template": lambda: _tiny_stn(template=2),
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
    other_batch, other_params = draw(6)
    differs = lambda a, b: not np.array_equal(np.asarray(a), np.asarray(b))
    # Another seed draws other starting points, or, for a problem with a fixed start (alignment: the identity), other instances.
    assert differs(other_params, params) or any(differs(a, b) for a, b in zip(tf.nest.flatten(other_batch), tf.nest.flatten(batch)))

    params = params + 0.3 * tf.random.stateless_normal(params.shape, [1, 2])  # away from the tiny start
    losses, grads = problems.loss_and_grads(problem, params, batch, tf.random.Generator.from_seed(9))
    assert losses.shape == (3,) and grads.shape == params.shape and losses.dtype == tf.float32 and np.all(np.isfinite(losses.numpy()))
    # The gradient check runs in float64 (the problem computes in its params' dtype), so steps can be short enough
    # to cross no ReLU or max-pool kink and still be resolved.
    params64 = tf.cast(params, tf.float64)
    loss_at = lambda p: problem.loss(p, batch, tf.random.Generator.from_seed(9)).numpy()  # the same minibatch each call
    np.testing.assert_allclose(losses.numpy(), loss_at(params64), rtol=1e-5)
    _, grads64 = problems.loss_and_grads(problem, params64, batch, tf.random.Generator.from_seed(9))
    np.testing.assert_allclose(grads.numpy(), grads64.numpy(), rtol=1e-3, atol=1e-5)
    for direction in np.random.default_rng(1).normal(size=(3, *params.shape)):
        direction /= np.linalg.norm(direction, axis=-1, keepdims=True)
        eps = 1e-6
        numeric = (loss_at(params64 + eps * direction) - loss_at(params64 - eps * direction)) / (2 * eps)
        analytic = np.sum(grads64.numpy() * direction, axis=-1)
        np.testing.assert_allclose(numeric, analytic, rtol=1e-5, atol=1e-8)


def test_convnet_loss_and_gradients_equal_a_keras_model_with_the_same_weights():
    """keras_training.paper_convnet is the ConvNet layer for layer: the same loss and gradients from the same weights."""
    from l2l import keras_optimizer, keras_training

    problem = _tiny_convnet()
    assert problem.dim == sum(int(np.prod(s)) for _, s in problem.shapes()) and len(problem.groups["conv"]) == 3 * 3 * 3 * 4 + 3 * 3 * 4 * 5
    params = tf.constant(np.random.default_rng(1).normal(0, 0.3, size=(1, problem.dim)), tf.float32)
    model = keras_training.paper_convnet(0, problem)
    assert model.count_params() - sum(int(np.prod(v.shape)) for v in model.non_trainable_variables) == problem.dim
    keras_training.set_convnet_weights(model, problem, params[0])
    x, y = problem.data.x[:6], problem.data.y[:6]
    with tf.GradientTape() as tape:
        expected = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(y, model(tf.reshape(x, [-1, 8, 8, 3]), training=True))
    by_keras = dict(zip([v.path for v in model.trainable_variables], tape.gradient(expected, model.trainable_variables)))
    with tf.GradientTape() as tape:
        tape.watch(params)
        ours = problem.batch_loss(params, x[None], y[None])
    grads = problem.unflatten(tape.gradient(ours, params)[0])
    np.testing.assert_allclose(float(ours[0]), float(expected), rtol=1e-5)
    convs, norms, dense = ([layer for layer in model.layers if isinstance(layer, kind)] for kind in (keras.layers.Conv2D, keras.layers.BatchNormalization, keras.layers.Dense))
    pairs = [(f"conv{i}/kernel", conv.kernel) for i, conv in enumerate(convs)] + [(f"conv{i}/offset", norms[i].beta) for i in range(len(convs))]
    pairs += [("dense/kernel", dense[0].kernel), ("dense/offset", norms[-1].beta), ("out/kernel", dense[1].kernel), ("out/bias", dense[1].bias)]
    for name, variable in pairs:
        np.testing.assert_allclose(grads[name].numpy(), by_keras[variable.path].numpy(), rtol=1e-3, atol=1e-6, err_msg=name)
        assert keras_optimizer.conv_kernels(variable) == ("conv" if name.endswith("kernel") and name.startswith("conv") else "other")


def test_convnet_instances_in_a_loop_grouped_or_vectorised_agree_in_loss_and_gradient():
    base = _tiny_convnet()
    params = tf.constant(np.random.default_rng(2).normal(0, 0.3, size=(3, base.dim)), tf.float32)
    x = tf.gather(base.data.x, np.arange(18).reshape(3, 6) % 24)
    y = tf.gather(base.data.y, np.arange(18).reshape(3, 6) % 24)
    results = {}
    for mode in ["loop", "grouped", "vmap"]:
        problem = problems.ConvNet(base.data, image_shape=(8, 8, 3), channels=(4, 5), kernel=3, hidden=6, batch_size=6, instances=mode)
        def loss_and_gradient(problem=problem):
            with tf.GradientTape() as tape:
                tape.watch(params)
                loss = problem.batch_loss(params, x, y)
            return loss, tape.gradient(loss, params)

        # TF 2.21 has no CPU kernel for a grouped convolution's gradient; XLA compiles one.
        loss, gradient = tf.function(loss_and_gradient, jit_compile=mode == "grouped")()
        results[mode] = (loss.numpy(), gradient.numpy())
    for mode in ["grouped", "vmap"]:
        np.testing.assert_allclose(results[mode][0], results["loop"][0], rtol=1e-5)
        np.testing.assert_allclose(results[mode][1], results["loop"][1], rtol=1e-3, atol=1e-6)
    with pytest.raises(ValueError, match="instances must be 'loop', 'grouped' or 'vmap'"):
        problems.ConvNet(base.data, instances="threads")


def test_the_head_of_images_is_their_first_n_under_its_own_name_and_fingerprint():
    data = problems.image_data(np.arange(40, dtype=np.uint8).reshape(10, 2, 2), np.arange(10) % 5, "tiny")
    first = problems.head(data, 4)
    np.testing.assert_array_equal(first.x.numpy(), data.x.numpy()[:4])
    assert first.y.numpy().tolist() == [0, 1, 2, 3] and first.name == "tiny[:4]"
    assert len({data.fingerprint, first.fingerprint, problems.head(data, 5).fingerprint}) == 3
    assert problems.head(data, 0) is data and problems.head(data, 10) is data  # all of them: the same data, the same run keys
    with pytest.raises(ValueError, match="n >= 0"):
        problems.head(data, -1)


def test_a_label_subset_keeps_only_its_labels_relabelled_in_their_order():
    x = np.arange(40, dtype=np.uint8).reshape(10, 2, 2)
    data = problems.image_data(x, np.arange(10) % 5, "tiny")
    sub = problems.label_subset(data, [3, 1])
    np.testing.assert_array_equal(sub.x.numpy(), data.x.numpy()[[1, 3, 6, 8]])
    assert sub.y.numpy().tolist() == [1, 0, 1, 0] and sub.name == "tiny{labels 3,1}"  # label 3 -> class 0, label 1 -> class 1
    assert len({data.fingerprint, sub.fingerprint, problems.label_subset(data, [1, 3]).fingerprint}) == 3
    with pytest.raises(ValueError, match="labels \\[7\\] do not occur in tiny"):
        problems.label_subset(data, [1, 7])
    with pytest.raises(ValueError, match="distinct labels"):
        problems.label_subset(data, [1, 1])



def test_alignment_starts_at_the_identity_and_the_true_inverse_warp_undoes_the_random_one():
    from l2l import warp

    problem = _tiny_alignment(max_rotation=20.0, max_scale=0.1, max_shear=0.1, max_shift=1.5)
    rng = tf.random.Generator.from_seed(4)
    batch = problem.sample(rng, 5)
    start = problem.init_params(rng, batch)
    np.testing.assert_array_equal(start.numpy(), np.tile(warp.IDENTITY.reshape(1, 6), (5, 1)))
    truth = tf.reshape(batch.true_theta, [5, 6])
    np.testing.assert_allclose(problem.corner_error(truth, batch).numpy(), 0.0, atol=1e-5)
    assert np.all(problem.corner_error(start, batch).numpy() > 0.1)
    # Re-warping by the true inverse recovers the example up to bilinear blur: far below the misaligned start.
    assert np.all(problem.loss(truth, batch).numpy() < 0.35 * problem.loss(start, batch).numpy())


def test_alignment_warps_stay_within_their_bounds():
    rng = tf.random.Generator.from_seed(5)
    rotation = _tiny_alignment(max_rotation=10.0, max_scale=0.0, max_shear=0.0, max_shift=0.0).random_warps(rng, 200).numpy()
    angles = np.degrees(np.arctan2(rotation[:, 1, 0], rotation[:, 0, 0]))
    assert np.abs(angles).max() <= 10.0 and np.abs(angles).max() > 8.0 and np.allclose(rotation[:, :2, 2], 0.0)
    np.testing.assert_allclose(np.linalg.det(rotation[:, :2, :2]), 1.0, rtol=1e-12)  # a pure rotation
    shift = _tiny_alignment(max_rotation=0.0, max_scale=0.0, max_shear=0.0, max_shift=2.0).random_warps(rng, 200).numpy()
    pixels = shift[:, :2, 2] * (12 - 1) / 2.0  # normalised units back to pixels
    assert np.abs(pixels).max() <= 2.0 and np.abs(pixels).max() > 1.6 and np.allclose(shift[:, :2, :2], np.eye(2))
    with pytest.raises(ValueError, match="max_scale < 1"):
        _tiny_alignment(max_scale=1.0)


def test_an_untrained_spatial_transformer_leaves_every_image_as_it_is():
    problem = _tiny_stn()
    rng = tf.random.Generator.from_seed(3)
    params = problem.init_params(rng, problem.sample(rng, 2))
    index = tf.constant([[0, 1, 2], [3, 4, 5]], tf.int64)
    moving, target, truth = problem.pairs(tf.random.Generator.from_seed(4), index)
    np.testing.assert_array_equal(problem.theta(params, moving).numpy(), np.broadcast_to(np.eye(2, 3), (2, 3, 2, 3)))
    np.testing.assert_allclose(problem.aligned(params, moving).numpy(), moving.numpy(), atol=1e-6)
    # The true inverse warp undoes the random one: re-warping by it recovers the target far better than the identity.
    from l2l import warp

    undone = warp.warp(tf.reshape(moving, [-1, 12, 12, 1]), tf.reshape(truth, [-1, 2, 3])).numpy().reshape(2, 3, -1)
    assert np.mean((undone - target.numpy()) ** 2) < 0.5 * np.mean((moving.numpy() - target.numpy()) ** 2)


def test_spatial_transformer_metrics_see_the_same_pairs_for_every_instance_and_score_the_identity_as_a_failure():
    problem = _tiny_stn(max_rotation=20.0, max_shift=2.0)
    rng = tf.random.Generator.from_seed(3)
    params = problem.init_params(rng, problem.sample(rng, 3))
    loss, success = problem.metrics(params, problem.data, pairs=6)
    np.testing.assert_allclose(loss.numpy(), loss.numpy()[0])  # an untrained network is the identity whatever its first layer
    assert np.all(success.numpy() < 0.5) and np.all(loss.numpy() > 0)
    generous = problem.metrics(params, problem.data, pairs=6, tolerance=100.0)[1]
    np.testing.assert_array_equal(generous.numpy(), 1.0)


def test_the_template_setting_targets_one_image_for_every_input():
    problem = _tiny_stn(template=2)
    index = tf.constant([[0, 1, 3]], tf.int64)
    _, target, _ = problem.pairs(tf.random.Generator.from_seed(1), index, source=problem.data)
    np.testing.assert_array_equal(target.numpy()[0], np.broadcast_to(problem.data.x.numpy()[2], (3, 144)))
    with pytest.raises(ValueError, match="template must be -1"):
        _tiny_stn(template=6)


def test_an_exemplar_is_aligned_to_another_image_of_its_class_and_the_true_warp_still_scores_zero():
    labels = np.repeat(np.arange(3), [2, 3, 5])
    index, partner = problems.same_class_pairs(tf.constant(labels), tf.random.Generator.from_seed(0), 3000)
    index, partner = index.numpy(), partner.numpy()
    assert (labels[index] == labels[partner]).all() and (index != partner).all()
    # Each image's partner is uniform over the rest of its class: image 5 (class 2, five images) pairs with 6-9 alike.
    counts = np.bincount(partner[index == 5], minlength=10)[6:10]
    assert counts.min() > 0.6 * counts.mean()
    problem = _tiny_exemplar()
    batch = problem.sample(tf.random.Generator.from_seed(1), 6)
    truth = tf.reshape(batch.true_theta, [6, 6])
    np.testing.assert_allclose(problem.corner_error(truth, batch).numpy(), 0.0, atol=1e-5)
    assert problem.describe()["name"] == "exemplar_alignment" and _tiny_alignment().describe()["name"] == "alignment"  # their runs keyed apart
    with pytest.raises(ValueError, match="needs 2 images or more"):
        problems.ExemplarAlignment(problems.image_data(np.zeros((3, 12, 12), np.uint8), np.array([0, 0, 1]), "lonely"), image_shape=(12, 12, 1))
