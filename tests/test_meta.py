import numpy as np
import pytest
import tensorflow as tf

from l2l import evaluate, learned_optimizer, meta, optimizers, problems, rollout
from l2l.problems import loss_and_grads

TINY_LSTM = learned_optimizer.LSTMConfig(hidden=4)


def tiny(**overrides):
    settings = dict(seed=0, epochs=4, batch=3, horizon=6, unroll=3, valid_every=2, valid_instances=4, checkpoint_every=2)
    settings.update(overrides)
    return meta.MetaConfig(**settings)


def frozen_gradient_loss(problem, config, weights, params, batch, frozen):
    """The segment's meta-loss with the optimisee gradients held at `frozen`.

    Its exact derivative is the meta-gradient with second derivatives
    dropped, so finite differences of it check what meta-training computes.
    """
    state = learned_optimizer.init_state(config, tf.size(params), params.dtype)
    total = 0.0
    for t, grads in enumerate(frozen):
        if t > 0:
            total += tf.reduce_mean(problem.loss(params, batch))
        updates, state = learned_optimizer.lstm_step(weights, state, grads, config)
        params = params + updates
    return total + tf.reduce_mean(problem.loss(params, batch))


def test_meta_gradient_matches_finite_differences_with_second_derivatives_dropped():
    problem = problems.Quadratic(dims=3)
    trainer = meta.MetaTrainer(problem, TINY_LSTM, tiny(unroll=4, horizon=4))
    rng = tf.random.Generator.from_seed(7)
    batch = problem.sample(rng, 2)
    params = tf.constant(rng.normal([2, 3]).numpy())  # away from 0, so updates matter
    state = learned_optimizer.init_state(TINY_LSTM, 6)
    weights = {k: w.read_value() for k, w in trainer.state.weights.items()}  # the trainer's initial weights
    loss, grads, _, _ = meta.segment_meta_gradient(problem, TINY_LSTM, 4, weights, params, state, batch)

    # Record the optimisee gradients along the trajectory the trainer took.
    weights32 = {k: tf.constant(v.numpy()) for k, v in trainer.state.weights.items()}
    frozen, p, s = [], params, state
    for _ in range(4):
        _, g = loss_and_grads(problem, p, batch)
        frozen.append(tf.cast(g, tf.float64))
        u, s = learned_optimizer.lstm_step(weights32, s, g, TINY_LSTM)
        p = p + u

    # Finite differences in float64 of the frozen-gradient loss.
    weights = {k: tf.cast(v, tf.float64) for k, v in weights32.items()}
    batch64 = tf.nest.map_structure(lambda t: tf.cast(t, tf.float64), batch)
    params64 = tf.cast(params, tf.float64)
    f64 = lambda w: float(frozen_gradient_loss(problem, TINY_LSTM, w, params64, batch64, frozen))
    np.testing.assert_allclose(f64(weights), float(loss), rtol=1e-5)
    direction_rng = np.random.default_rng(0)
    errors = []
    for _ in range(3):
        direction = {k: direction_rng.normal(size=v.shape) for k, v in weights.items()}
        analytic = sum(float(tf.reduce_sum(tf.cast(grads[k], tf.float64) * direction[k])) for k in weights)
        eps = 1e-4
        numeric = (f64({k: v + eps * direction[k] for k, v in weights.items()}) - f64({k: v - eps * direction[k] for k, v in weights.items()})) / (2 * eps)
        assert abs(numeric - analytic) <= 1e-4 * max(1.0, abs(analytic)), (numeric, analytic)
        errors.append(abs(numeric - analytic))

    # The full derivative (second derivatives kept) differs: the drop is real.
    def full_loss(w):
        p, s, total = params64, learned_optimizer.init_state(TINY_LSTM, 6, tf.float64), 0.0
        for t in range(4):
            value, g = loss_and_grads(problem, p, batch64)
            total += float(tf.reduce_mean(value)) if t else 0.0
            u, s = learned_optimizer.lstm_step(w, s, g, TINY_LSTM)
            p = p + u
        return total + float(tf.reduce_mean(problem.loss(p, batch64)))

    direction = {k: direction_rng.normal(size=v.shape) for k, v in weights.items()}
    analytic = sum(float(tf.reduce_sum(tf.cast(grads[k], tf.float64) * direction[k])) for k in weights)
    full = (full_loss({k: v + 1e-4 * direction[k] for k, v in weights.items()}) - full_loss({k: v - 1e-4 * direction[k] for k, v in weights.items()})) / 2e-4
    assert abs(full - analytic) > 10 * max(errors)  # well beyond the finite differences' own error


def test_train_unroll_traces_once_and_validation_selects_the_best():
    trainer = meta.MetaTrainer(problems.Quadratic(dims=3), TINY_LSTM, tiny(epochs=6))
    result = trainer.run(log=lambda line: None)
    assert result.status == "completed"
    assert trainer.steps["truncated"].experimental_get_tracing_count() == 1  # 6 epochs x 2 segments, one trace
    assert trainer._validate_weights.experimental_get_tracing_count() == 1  # and the initial validation shares it
    valid = result.history.dropna(subset=["valid_loss"])
    assert list(valid.epoch) == [2, 4, 6]
    assert result.best_valid == pytest.approx(valid.valid_loss.min())
    assert result.best_epoch == int(valid.epoch[valid.valid_loss.idxmin()])


def test_interrupted_and_resumed_run_equals_an_uninterrupted_one(tmp_path):
    problem = problems.Quadratic(dims=3)
    whole = meta.meta_train(problem, TINY_LSTM, tiny(epochs=6), checkpoint_root=str(tmp_path / "whole"), log=lambda line: None)
    meta.meta_train(problem, TINY_LSTM, tiny(epochs=4), checkpoint_root=str(tmp_path / "split"), log=lambda line: None)  # "killed" after epoch 4
    lines = []
    resumed = meta.meta_train(problem, TINY_LSTM, tiny(epochs=6), checkpoint_root=str(tmp_path / "split"), log=lines.append)
    assert lines[0].startswith("resumed at epoch 4")
    for k in whole.last_params:
        np.testing.assert_array_equal(resumed.last_params[k].numpy(), whole.last_params[k].numpy())
        np.testing.assert_array_equal(resumed.meta_params[k].numpy(), whole.meta_params[k].numpy())
    np.testing.assert_array_equal(resumed.history.meta_loss.to_numpy(), whole.history.meta_loss.to_numpy())


def test_a_run_stopped_by_on_validate_is_checkpointed_there_and_resumes_as_if_never_stopped(tmp_path):
    problem = problems.Quadratic(dims=3)
    whole = meta.meta_train(problem, TINY_LSTM, tiny(epochs=6, checkpoint_every=3), checkpoint_root=str(tmp_path / "whole"), log=lambda line: None)
    seen = []
    trainer = meta.MetaTrainer(problem, TINY_LSTM, tiny(epochs=6, checkpoint_every=3), checkpoint_root=str(tmp_path / "split"))
    stopped = trainer.run(log=lambda line: None, on_validate=lambda epoch, valid: seen.append((epoch, valid)) or epoch == 2)
    assert stopped.status.startswith("stopped early at epoch 2 of 6") and len(stopped.history) == 2
    assert seen == [(2, whole.history.valid_loss[1])]  # called with each validation, and the run stops right after it
    resumed = meta.meta_train(problem, TINY_LSTM, tiny(epochs=6, checkpoint_every=3), checkpoint_root=str(tmp_path / "split"), log=lambda line: None)
    assert resumed.status == "completed" and resumed.key == whole.key
    for k in whole.last_params:
        np.testing.assert_array_equal(resumed.last_params[k].numpy(), whole.last_params[k].numpy())
    np.testing.assert_array_equal(resumed.history.valid_loss.to_numpy(), whole.history.valid_loss.to_numpy())


def test_same_seed_gives_identical_runs_and_curves():
    problem = problems.Quadratic(dims=3)
    runs = [meta.meta_train(problem, TINY_LSTM, tiny(seed=4), log=lambda line: None) for _ in range(2)]
    for k in runs[0].last_params:
        np.testing.assert_array_equal(runs[0].last_params[k].numpy(), runs[1].last_params[k].numpy())
    curves = [evaluate.evaluate(problem, {"lstm": lambda s, r=r: r.optimizer()}, 20, 5, [0, 1]).curves["lstm"] for r in runs]
    np.testing.assert_array_equal(curves[0], curves[1])
    other = meta.meta_train(problem, TINY_LSTM, tiny(seed=5), log=lambda line: None)
    assert not np.array_equal(other.last_params["out/kernel"].numpy(), runs[0].last_params["out/kernel"].numpy())


def test_runs_are_keyed_by_everything_that_determines_them(tmp_path):
    problem = problems.Quadratic(dims=3)
    quiet = lambda line: None
    first = meta.MetaTrainer(problem, TINY_LSTM, tiny(), checkpoint_root=str(tmp_path))
    first.run(log=quiet)
    # A changed setting is a sibling run, started from scratch beside the first.
    for changed in [dict(meta_lr=0.01), dict(seed=1), dict(meta_optimizer="rmsprop")]:
        sibling = meta.MetaTrainer(problem, TINY_LSTM, tiny(**changed), checkpoint_root=str(tmp_path))
        assert sibling.key != first.key and int(sibling.state.epoch.numpy()) == 0
    for other_problem, other_lstm in [(problems.Quadratic(dims=4), TINY_LSTM), (problems.Quadratic(dims=3, distribution="uniform"), TINY_LSTM),
                                      (problem, learned_optimizer.LSTMConfig(hidden=4, scale=0.01))]:
        assert meta.run_key(other_problem, other_lstm, tiny()) != first.key
    # The same settings reuse the finished run: nothing is trained again.
    lines = []
    again = meta.MetaTrainer(problem, TINY_LSTM, tiny(), checkpoint_root=str(tmp_path))
    assert again.key == first.key and again.checkpoint_dir == first.checkpoint_dir
    reused = again.run(log=lines.append)
    assert lines == ["resumed at epoch 4 from " + again.folder.manager.latest_checkpoint]
    assert again.steps["truncated"].experimental_get_tracing_count() == 0
    np.testing.assert_array_equal(reused.last_params["out/kernel"].numpy(), first.state.weights["out/kernel"].numpy())
    # More epochs and checkpoint frequency are not part of the key; fewer epochs than trained is refused, naming the fix.
    assert meta.run_key(problem, TINY_LSTM, tiny(epochs=9, checkpoint_every=1)) == first.key
    with pytest.raises(ValueError, match="already trained 4 epochs, more than the 3 asked for; ask for epochs >= 4"):
        meta.MetaTrainer(problem, TINY_LSTM, tiny(epochs=3), checkpoint_root=str(tmp_path))


def test_mlp_runs_tell_their_data_and_every_field_apart():
    x = np.arange(40 * 4, dtype=np.uint8).reshape(40, 2, 2)
    y = np.arange(40) % 10
    base = problems.MLP(problems.image_data(x, y, "a"))
    same = problems.MLP(problems.image_data(x.copy(), y.copy(), "a"))
    assert meta.run_key(base, TINY_LSTM, tiny()) == meta.run_key(same, TINY_LSTM, tiny())
    others = [problems.MLP(problems.image_data(x[::-1], y, "a")), problems.MLP(problems.image_data(x, y, "a"), classes=12),
              problems.MLP(problems.image_data(x, y, "a"), batch_size=7), problems.MLP(problems.image_data(x, y, "a"), hidden=(21,))]
    keys = {meta.run_key(o, TINY_LSTM, tiny()) for o in others}
    assert len(keys) == len(others) and meta.run_key(base, TINY_LSTM, tiny()) not in keys


@pytest.mark.parametrize("meta_optimizer", ["adam", "rmsprop", "nag"])
def test_any_meta_optimiser_checkpoints_its_own_state_and_resumes_bitwise(tmp_path, meta_optimizer):
    problem = problems.Quadratic(dims=3)
    quiet = lambda line: None
    whole = meta.meta_train(problem, TINY_LSTM, tiny(epochs=6, meta_optimizer=meta_optimizer), checkpoint_root=str(tmp_path / "whole"), log=quiet)
    meta.meta_train(problem, TINY_LSTM, tiny(epochs=4, meta_optimizer=meta_optimizer), checkpoint_root=str(tmp_path / "split"), log=quiet)
    resumed = meta.meta_train(problem, TINY_LSTM, tiny(epochs=6, meta_optimizer=meta_optimizer), checkpoint_root=str(tmp_path / "split"), log=quiet)
    for k in whole.last_params:
        np.testing.assert_array_equal(resumed.last_params[k].numpy(), whole.last_params[k].numpy())
    # The checkpoint holds exactly the optimiser's own state structure.
    trainer = meta.MetaTrainer(problem, TINY_LSTM, tiny(meta_optimizer=meta_optimizer))
    expected = tf.nest.flatten(optimizers.BASELINES[meta_optimizer](0.1).init(learned_optimizer.init_meta_params(TINY_LSTM, 0)))
    assert [tuple(v.shape) for v in trainer.state.optimizer_state] == [tuple(t.shape) for t in expected]


class Exploding(problems.Quadratic):
    """A quadratic whose loss is NaN once any parameter leaves [-1, 1]."""

    def loss(self, params, instances, rng=None):
        value = super().loss(params, instances, rng)
        return tf.where(tf.reduce_max(tf.abs(params), axis=-1) > 1.0, np.nan, value)


def test_nan_stops_cleanly_keeping_weights_and_checkpoint(tmp_path):
    problem = Exploding(dims=3, init_std=2.0)  # NaN from the first step
    trainer = meta.MetaTrainer(problem, TINY_LSTM, tiny(), checkpoint_root=str(tmp_path))
    before = {k: v.numpy().copy() for k, v in trainer.state.weights.items()}
    lines = []
    result = trainer.run(log=lines.append)
    assert result.status.startswith("stopped at epoch 1, segment 1/2: non-finite meta-loss")
    assert lines == [result.status]
    for k, v in before.items():
        np.testing.assert_array_equal(trainer.state.weights[k].numpy(), v)
    # The state the failed epoch started from is checkpointed, and a rerun resumes from it (and stops the same way).
    assert result.history.empty and trainer.folder.manager.latest_checkpoint.endswith("ckpt-0")
    again = meta.MetaTrainer(problem, TINY_LSTM, tiny(), checkpoint_root=str(tmp_path))
    assert again.restored_from.endswith("ckpt-0")
    for k, v in before.items():
        np.testing.assert_array_equal(again.state.weights[k].numpy(), v)
    # Never validated finitely: the result is the initial weights, not what the failed updates left.
    for k, v in before.items():
        np.testing.assert_array_equal(result.meta_params[k].numpy(), v)


def test_a_run_worse_than_its_initial_weights_is_reported_diverged():
    result = meta.meta_train(problems.Quadratic(dims=3), TINY_LSTM, tiny(epochs=6, meta_lr=1e3), log=lambda line: None)
    assert result.status.startswith("diverged: best validation loss") or result.status.startswith("stopped at epoch"), result.status
    healthy = meta.meta_train(problems.Quadratic(dims=3), TINY_LSTM, tiny(epochs=6, meta_lr=1e-2), log=lambda line: None)
    assert healthy.status == "completed"


@pytest.mark.parametrize(
    "overrides, message",
    [({"epochs": -1}, "positive epochs=-1"),
     ({"meta_optimizer": "lion"}, "meta_optimizer 'lion' is unknown; choose one of"), ({"horizon": 10, "unroll": 3}, "multiple of unroll"), ({"meta_lr": 0.0}, "meta_lr > 0")],
)
def test_bad_meta_config_is_rejected_before_compute(overrides, message):
    with pytest.raises(ValueError, match=message):
        tiny(**overrides)


def test_selection_on_the_trajectory_mean_and_snapshots_every_n_epochs(tmp_path):
    problem = problems.Quadratic(dims=3)
    final = meta.MetaTrainer(problem, TINY_LSTM, tiny(epochs=4, valid_every=1))
    mean = meta.MetaTrainer(problem, TINY_LSTM, tiny(epochs=4, valid_every=1, select_on="mean", snapshot_every=2), checkpoint_root=str(tmp_path))
    optimizer = learned_optimizer.learned(dict(mean.state.weights), TINY_LSTM)
    losses = tf.function(lambda: rollout.trajectory(problem, optimizer, *mean.valid_batches[0], 6))()  # a quadratic draws no minibatch
    assert float(mean.validate()) == pytest.approx(float(tf.reduce_mean(losses[1:])), rel=1e-6)
    assert float(final.validate()) == pytest.approx(float(tf.reduce_mean(losses[-1])), rel=1e-6)
    result = mean.run(log=lambda line: None)
    assert sorted(mean.snapshots()) == [2, 4]
    weights, config, about = learned_optimizer.load_weights(mean.snapshots()[4])
    assert config == TINY_LSTM and int(about["epoch"]) == 4 and about["run_key"] == result.key
    np.testing.assert_array_equal(weights["out/kernel"].numpy(), result.last_params["out/kernel"].numpy())
    # The selection metric is part of the key; its old default leaves older keys as they were.
    assert meta.run_key(problem, TINY_LSTM, tiny(select_on="mean")) != meta.run_key(problem, TINY_LSTM, tiny())
    assert "select_on" not in meta.describe_run(problem, TINY_LSTM, tiny())["meta"]


def test_the_initial_validation_measures_the_initial_weights_even_after_a_resume(tmp_path):
    problem = problems.Quadratic(dims=3)
    fresh = meta.MetaTrainer(problem, TINY_LSTM, tiny(epochs=2), checkpoint_root=str(tmp_path))
    first = float(fresh.validate_initial())
    fresh.run(log=lambda line: None)
    resumed = meta.MetaTrainer(problem, TINY_LSTM, tiny(epochs=4), checkpoint_root=str(tmp_path))
    assert float(resumed.validate_initial()) == first and float(resumed.state.initial_valid.numpy()) == first
    assert float(resumed.validate()) != first  # the trained weights validate differently


def test_the_initial_validation_shares_the_validations_trace_and_draws_the_stream_a_generator_of_its_own_would():
    # Minibatches (an MLP), so that which stream the initial validation draws from shows in its value.
    x = np.random.default_rng(4).integers(0, 256, size=(60, 2, 2), dtype=np.uint8)
    problem = problems.MLP(problems.image_data(x, np.arange(60) % 10, "tiny"), hidden=(3,), batch_size=8)
    trainer = meta.MetaTrainer(problem, TINY_LSTM, tiny(epochs=2))
    initial = learned_optimizer.init_group_params(TINY_LSTM, 0)
    fresh = rollout.generator(meta.VALID_SEED)
    own = tf.function(lambda: trainer._validate(fresh, initial))()  # what a generator of its own draws
    before = trainer.valid_rng.state.numpy().copy()
    assert float(trainer.validate_initial()) == float(own)
    np.testing.assert_array_equal(trainer.valid_rng.state.numpy(), before)  # the run's validations see their own minibatches
    trainer.validate()
    assert trainer._validate_weights.experimental_get_tracing_count() == 1


def test_seeds_are_independent_streams_and_old_runs_keep_their_keys():
    """tf.random.Generator.from_seed(s + 1) replays seed s's stream one Philox block later: consecutive seeds drew
    nearly the same instances. Keyed streams do not; runs made before keep their streams and their keys."""
    import dataclasses

    draw = lambda seed, streams: rollout.generator(seed, streams).uniform([64]).numpy()
    old0, old1 = draw(7, "counter"), draw(8, "counter")
    np.testing.assert_array_equal(old1[:60], old0[4:])  # the flaw, measured
    new0, new1 = draw(7, "keyed"), draw(8, "keyed")
    assert not np.isin(new1, new0).any() and abs(np.corrcoef(new0, new1)[0, 1]) < 0.4
    np.testing.assert_array_equal(draw(7, "counter"), tf.random.Generator.from_seed(7).uniform([64]).numpy())
    g = rollout.generator(9)
    first = g.normal([5]).numpy()
    rollout.reset(g, 9)
    np.testing.assert_array_equal(g.normal([5]).numpy(), first)
    with pytest.raises(ValueError, match="streams must be one of"):
        rollout.generator(1, "shared")
    problem = problems.Quadratic(dims=3)
    keyed = meta.MetaConfig(epochs=2, batch=2, horizon=4, unroll=2)
    legacy = dataclasses.replace(keyed, streams="counter")
    assert "streams" not in meta.describe_run(problem, learned_optimizer.LSTMConfig(), legacy)["meta"]  # as before the field existed
    assert meta.run_key(problem, learned_optimizer.LSTMConfig(), keyed) != meta.run_key(problem, learned_optimizer.LSTMConfig(), legacy)


def test_recomputing_the_gates_changes_no_number_and_not_the_run_key():
    """MetaConfig.recompute trades memory for a forward pass: the same meta-gradients, weights and history, bit for bit,
    on an MLP (minibatches) and with imitation epochs mixed in."""
    problem = problems.MLP(problems.image_data(np.random.default_rng(0).integers(0, 256, size=(64, 4, 4), dtype=np.uint8), np.arange(64) % 3, "tiny"),
                           hidden=(5,), batch_size=8)
    runs = {}
    for recompute in (False, True):
        config = tiny(epochs=6, horizon=4, unroll=2, imitation=0.5, recompute=recompute)
        runs[recompute] = meta.meta_train(problem, TINY_LSTM, config, log=lambda line: None)
        assert runs[recompute].key == meta.run_key(problem, TINY_LSTM, tiny(epochs=6, horizon=4, unroll=2, imitation=0.5))
    assert runs[True].history.imitation.any() and not runs[True].history.imitation.all()
    for k in runs[False].last_params:
        np.testing.assert_array_equal(runs[True].last_params[k].numpy(), runs[False].last_params[k].numpy())
    np.testing.assert_array_equal(runs[True].history.meta_loss.to_numpy(), runs[False].history.meta_loss.to_numpy())
    np.testing.assert_array_equal(runs[True].history.valid_loss.to_numpy(), runs[False].history.valid_loss.to_numpy())
