"""Training techniques beyond the paper: random rescaling, task mixtures, a curriculum over horizons and imitation
of a hand-designed teacher, each checked against its definition; runs made before them keep their keys."""

import math

import numpy as np
import pytest
import tensorflow as tf

from l2l import learned_optimizer, meta, optimizers, problems
from l2l.problems import loss_and_grads

TINY_LSTM = learned_optimizer.LSTMConfig(hidden=4)


def tiny(**overrides):
    settings = dict(seed=0, epochs=6, batch=3, horizon=4, unroll=2, valid_every=1, valid_instances=4, checkpoint_every=1)
    settings.update(overrides)
    return meta.MetaConfig(**settings)


def test_runs_made_before_the_techniques_keep_their_keys():
    """Keys computed by the code before the options existed (commit 5d704c2): a cached run is found and resumed."""
    problem = problems.Quadratic(dims=3)
    config = meta.MetaConfig(epochs=2, batch=2, horizon=4, unroll=2)
    assert meta.run_key(problem, learned_optimizer.LSTMConfig(hidden=4), config) == "a330aef71324a2ff"
    groups = {"a": learned_optimizer.LSTMConfig(hidden=4), "b": learned_optimizer.LSTMConfig(preprocess_p=0.0)}
    assert meta.run_key(problem, groups, meta.MetaConfig(epochs=2, batch=2, horizon=4, unroll=2, clip_norm=3.0, select_on="mean")) == "9fa8f074a947f6ef"
    changed = [meta.MetaConfig(epochs=2, batch=2, horizon=4, unroll=2, curriculum=(2, 4)), meta.MetaConfig(epochs=2, batch=2, horizon=4, unroll=2, imitation=0.2)]
    keys = {meta.run_key(problem, learned_optimizer.LSTMConfig(hidden=4), c) for c in changed}
    keys.add(meta.run_key(problems.Rescaled(problem), learned_optimizer.LSTMConfig(hidden=4), config))
    keys.add(meta.run_key(problem, learned_optimizer.LSTMConfig(hidden=4, output="tanh"), config))
    assert len(keys) == 4 and "a330aef71324a2ff" not in keys


def test_a_rescaled_problem_is_the_inner_one_at_c_theta_and_its_gradient_is_c_times_the_inner_gradient():
    inner = problems.Quadratic(dims=4)
    problem = problems.Rescaled(inner, log_range=2.0)
    rng = tf.random.Generator.from_seed(5)
    batch = problem.sample(rng, 6)
    c = batch.scale.numpy()
    assert c.shape == (6, 4) and c.min() >= math.exp(-2.0) and c.max() <= math.exp(2.0) and np.ptp(np.log(c)) > 2.0
    theta = tf.cast(rng.normal([6, 4]), tf.float64)
    batch64 = tf.nest.map_structure(lambda t: tf.cast(t, tf.float64), batch)
    loss, grads = loss_and_grads(problem, theta, batch64)
    w, y = batch64.inner.w.numpy(), batch64.inner.y.numpy()
    residual = np.einsum("nij,nj->ni", w, c * theta.numpy()) - y
    np.testing.assert_allclose(loss.numpy(), (residual**2).sum(-1), rtol=1e-12)
    np.testing.assert_allclose(grads.numpy(), c * 2 * np.einsum("nij,ni->nj", w, residual), rtol=1e-10)
    start = problem.init_params(tf.random.Generator.from_seed(1), batch)
    inner_start = inner.init_params(tf.random.Generator.from_seed(1), batch.inner)
    np.testing.assert_allclose(start.numpy() * c, inner_start.numpy(), rtol=1e-6)  # it starts where the inner problem does
    assert problem.describe() == {"name": "rescaled", "inner": inner.describe(), "log_range": 2.0}
    with pytest.raises(ValueError, match="log_range must be > 0"):
        problems.Rescaled(inner, log_range=0.0)


def test_a_mixture_draws_its_tasks_at_their_weights_and_validates_on_the_geometric_mean():
    small, large = problems.Quadratic(dims=2), problems.Quadratic(dims=5)
    mixture = problems.Mixture((small, large), weights=(1.0, 3.0))
    rng = tf.random.Generator.from_seed(0)
    picks = np.array([mixture.pick(rng) for _ in range(2000)])
    assert abs(picks.mean() - 0.75) < 4 * math.sqrt(0.75 * 0.25 / 2000)
    mixture = problems.Mixture((small, large))  # equal weights: both tasks train within 8 epochs
    trainer = meta.MetaTrainer(mixture, TINY_LSTM, tiny(epochs=8, valid_every=4))
    result = trainer.run(log=lambda line: None)
    assert result.status == "completed" and set(result.history.task) == {0, 1}
    # Validation: each task's mean final loss on its own held-out instances, then the geometric mean.
    from l2l.rollout import generator, trajectory

    per_task = []
    for task, (batch, params) in zip(mixture.tasks, trainer.valid_batches):
        losses = trajectory(task, trainer.result().optimizer(), batch, params, 4, generator(99))
        per_task.append(float(tf.reduce_mean(losses[-1])))
    weights = {k: v for k, v in trainer.state.weights.items()}
    assert float(trainer._validate(generator(99), weights)) == pytest.approx(math.exp(np.mean(np.log(per_task))), rel=1e-5)
    with pytest.raises(ValueError, match="at least 2 tasks"):
        problems.Mixture((small,))
    with pytest.raises(ValueError, match="one positive weight per task"):
        problems.Mixture((small, large), weights=(1.0,))


def test_a_curriculum_trains_and_validates_at_each_stages_horizons_and_restarts_from_the_stages_best():
    config = tiny(horizon=6, curriculum=(2, 4, 6), patience=1, epochs=12)
    assert [config.stage_horizons(k) for k in range(3)] == [(2, 4), (4, 6), (6, 6)]
    assert tiny().stage_horizons(0) == (4, 4)
    lines, asked = [], []
    trainer = meta.MetaTrainer(problems.Quadratic(dims=3), TINY_LSTM, config)
    # Validation losses chosen so that the stage's best is epoch 2 and epoch 3 does not improve on it (patience 1).
    values = iter([5.0, 4.0, 4.5, 3.0, 2.0, 2.5] + [1.0] * 6)
    trainer.validate = lambda horizon=None: asked.append(horizon) or tf.constant(next(values))
    result = trainer.run(log=lines.append)
    assert list(result.history.stage) == [0, 0, 0, 1, 1, 1, 2, 2, 2, 2, 2, 2]
    assert asked == [4, 4, 4, 6, 6, 6, 6, 6, 6, 6, 6, 6]  # each stage validates at the next stage's horizon
    advanced = [line for line in lines if "curriculum stage" in line]
    assert len(advanced) == 2 and "stage 2 of 3 (training horizon 4, validation 6) from the best weights of epoch 2" in advanced[0]
    assert result.best_epoch == 7 and result.best_valid == 1.0  # the last stage's best, sought anew after the move
    # Moving on: the weights become the stage's best, and the best is sought anew at the new validation horizon.
    trainer.state.stage.assign(0)
    trainer.state.best_epoch.assign(3)
    for k, w in trainer.state.weights.items():
        trainer.state.best[k].assign(w + 1.0)
    trainer._next_stage(lambda line: None, 5, 0)
    assert int(trainer.state.stage.numpy()) == 1 and math.isinf(float(trainer.state.best_valid.numpy())) and int(trainer.state.stale.numpy()) == 0
    for k, w in trainer.state.weights.items():
        np.testing.assert_array_equal(w.numpy(), trainer.state.best[k].numpy())
    for bad in [dict(curriculum=(2, 3)), dict(curriculum=(4, 2)), dict(curriculum=(2, 6)), dict(patience=0)]:
        with pytest.raises(ValueError, match="curriculum|patience"):
            tiny(**bad)


def test_a_curriculum_run_that_stops_before_its_last_stage_says_so_rather_than_compare_horizons():
    trainer = meta.MetaTrainer(problems.Quadratic(dims=3), TINY_LSTM, tiny(horizon=4, curriculum=(2, 4), patience=50, epochs=3))
    result = trainer.run(log=lambda line: None)
    assert result.status.startswith("completed in curriculum stage 1 of 2: training horizon 2, best validation at 4 steps")


def test_the_imitation_gradient_is_the_tape_of_the_update_matching_loss_in_float64():
    problem = problems.Quadratic(dims=3)
    rng = tf.random.Generator.from_seed(2)
    batch = tf.nest.map_structure(lambda t: tf.cast(t, tf.float64), problem.sample(rng, 2))
    params = tf.cast(rng.normal([2, 3]), tf.float64)
    weights = {k: tf.cast(v, tf.float64) + 0.1 for k, v in learned_optimizer.init_meta_params(TINY_LSTM, 1).items()}
    teacher = optimizers.nag(0.05)  # a teacher with state, carried along its path
    state = learned_optimizer.init_state(TINY_LSTM, 6, tf.float64)
    loss, grads, end, _, _ = meta.segment_imitation_gradient(problem, TINY_LSTM, 3, teacher, weights, params, state, teacher.init(params), batch)
    variables = {k: tf.Variable(v) for k, v in weights.items()}
    with tf.GradientTape() as tape:
        p, s, t_state, total = params, state, teacher.init(params), 0.0
        for _ in range(3):
            _, g = loss_and_grads(problem, p, batch)
            u, s = learned_optimizer.lstm_step(variables, s, g, TINY_LSTM)
            target, t_state = teacher.update(g, t_state, p)
            total += tf.reduce_mean(tf.square(u - target))
            p = p + target  # the teacher's path, whatever the LSTM does
    expected = tape.gradient(total, variables)
    assert float(loss) == pytest.approx(float(total), rel=1e-12)
    np.testing.assert_allclose(end.numpy(), p.numpy(), rtol=1e-12)
    for k in expected:
        np.testing.assert_allclose(grads[k].numpy(), expected[k].numpy(), rtol=1e-9, atol=1e-14)


def test_imitation_epochs_teach_the_lstm_the_teachers_steps_and_a_run_with_every_technique_resumes_bitwise(tmp_path):
    # SGD's step is linear in the gradient: an LSTM on raw gradients can learn it, and imitation epochs teach it.
    problem, lstm = problems.Quadratic(dims=3, distribution="uniform"), learned_optimizer.LSTMConfig(hidden=4, preprocess_p=0.0, scale=1.0)
    run = meta.meta_train(problem, lstm, tiny(epochs=60, batch=8, imitation=0.9, teacher="sgd", teacher_lr=0.05, valid_every=10, meta_lr=0.01),
                          log=lambda line: None)
    assert 0.8 * 60 <= run.history.imitation.sum() < 60

    def held_out(weights):  # the imitation loss on instances no epoch drew
        rng = tf.random.Generator.from_seed(11)
        batch = problem.sample(rng, 32)
        params, teacher = problem.init_params(rng, batch), optimizers.sgd(0.05)
        return float(meta.segment_imitation_gradient(problem, lstm, 4, teacher, weights, params, learned_optimizer.init_state(lstm, 96),
                                                     teacher.init(params), batch)[0])

    assert held_out(run.last_params) < 0.2 * held_out(learned_optimizer.init_meta_params(lstm, 0))  # measured: 0.10
    # Every technique at once, killed after epoch 3 and resumed: the same run as one never stopped.
    mixture = problems.Mixture((problems.Rescaled(problems.Quadratic(dims=2)), problems.Quadratic(dims=3)))
    lstm = learned_optimizer.LSTMConfig(hidden=4, preprocess_p=0.0, features="adam", output="tanh", nominal="adam", nominal_lr=0.01)
    config = lambda epochs: tiny(epochs=epochs, curriculum=(2, 4), patience=1, imitation=0.3)
    whole = meta.meta_train(mixture, lstm, config(7), checkpoint_root=str(tmp_path / "whole"), log=lambda line: None)
    meta.meta_train(mixture, lstm, config(3), checkpoint_root=str(tmp_path / "split"), log=lambda line: None)
    resumed = meta.meta_train(mixture, lstm, config(7), checkpoint_root=str(tmp_path / "split"), log=lambda line: None)
    for k in whole.last_params:
        np.testing.assert_array_equal(resumed.last_params[k].numpy(), whole.last_params[k].numpy())
    for column in ("meta_loss", "stage", "task", "imitation"):
        np.testing.assert_array_equal(resumed.history[column].to_numpy(), whole.history[column].to_numpy())
    with pytest.raises(ValueError, match="imitation"):
        tiny(imitation=1.0)
    with pytest.raises(ValueError, match="teacher 'lbfgs' is unknown"):
        tiny(teacher="lbfgs")
