import json

import numpy as np
import pytest
import tensorflow as tf

from l2l import evaluate, optimizers, problems, rollout


def test_every_optimiser_sees_the_same_instances_and_start():
    problem = problems.Quadratic(dims=4)
    factories = {name: (lambda s, f=f: f(0.01)) for name, f in optimizers.BASELINES.items()}
    curves, cost, _ = evaluate.evaluate(problem, factories, steps=7, instances=5, seeds=[0, 3])
    for values in curves.values():
        assert values.shape == (2, 5, 8)
        np.testing.assert_array_equal(values[:, :, 0], curves["sgd"][:, :, 0])
    assert not np.array_equal(curves["sgd"][0, :, 0], curves["sgd"][1, :, 0])  # seeds differ
    assert set(cost) == set(factories) and all(c > 0 for c in cost.values())


def test_trajectory_is_the_optimiser_run_by_hand():
    problem = problems.Quadratic(dims=3)
    batch, params = rollout.fresh_instances(problem, 0, 2)
    opt = optimizers.adam(0.1)
    losses, _, _ = evaluate.run(problem, opt, batch, params, steps=5)
    state, p, by_hand = opt.init(params), params, []
    for _ in range(5):
        by_hand.append(problem.loss(p, batch).numpy())
        _, g = problems.loss_and_grads(problem, p, batch)
        u, state = opt.update(g, state, p)
        p = p + u
    by_hand.append(problem.loss(p, batch).numpy())
    np.testing.assert_allclose(losses, np.stack(by_hand, axis=1), rtol=1e-5)


def test_snapshots_split_the_run_without_changing_it():
    problem = problems.Quadratic(dims=3)
    batch, params = rollout.fresh_instances(problem, 0, 4)
    whole, _, _ = evaluate.run(problem, optimizers.nag(0.01), batch, params, steps=9)
    split, _, seen = evaluate.run(problem, optimizers.nag(0.01), batch, params, steps=9, metric=lambda p, instances: problem.loss(p, instances).numpy(), snapshots=(3, 9))
    np.testing.assert_allclose(split, whole, rtol=1e-6)
    np.testing.assert_allclose(seen[3], whole[:, 3], rtol=1e-6)
    np.testing.assert_allclose(seen[9], whole[:, 9], rtol=1e-6)
    with pytest.raises(ValueError, match="outside 1..9"):
        evaluate.run(problem, optimizers.nag(0.01), batch, params, steps=9, snapshots=(12,))


def test_every_step_reads_the_metric_off_one_unsplit_runs_path():
    # A stochastic problem (minibatches) so that the path must follow the same stream as the plain run.
    x = np.random.default_rng(0).integers(0, 256, size=(60, 2, 2), dtype=np.uint8)
    problem = problems.MLP(problems.image_data(x, np.arange(60) % 10, "tiny"), hidden=(3,), batch_size=8)
    batch, params = rollout.fresh_instances(problem, 0, 2)
    loss_at = lambda p, instances: problem.loss(p, instances, rollout.generator(99)).numpy()
    whole, _, _ = evaluate.run(problem, optimizers.adam(0.01), batch, params, steps=6, seed=2)
    split, _, seen = evaluate.run(problem, optimizers.adam(0.01), batch, params, steps=6, seed=2, metric=loss_at, snapshots=(1, 2, 3, 4, 5, 6))
    traced, _, path = evaluate.run(problem, optimizers.adam(0.01), batch, params, steps=6, seed=2, metric=loss_at, every_step=True)
    np.testing.assert_allclose(traced, whole, rtol=1e-6)
    assert sorted(path) == [1, 2, 3, 4, 5, 6]
    for t in range(1, 7):
        np.testing.assert_allclose(path[t], seen[t], rtol=1e-6)
    with pytest.raises(ValueError, match="pass a metric"):
        evaluate.run(problem, optimizers.adam(0.01), batch, params, steps=6, every_step=True)


@pytest.mark.parametrize("every_step", [False, True])
def test_a_baseline_traced_once_for_every_seed_gives_the_numbers_of_a_trace_per_seed(every_step):
    # Minibatches, so that each seed's run must start from its own stream after the shared trace's stream is put back.
    x = np.random.default_rng(1).integers(0, 256, size=(60, 2, 2), dtype=np.uint8)
    problem = problems.MLP(problems.image_data(x, np.arange(60) % 10, "tiny"), hidden=(3,), batch_size=8)
    traces = []

    def counted():
        adam = optimizers.adam(0.01)
        return optimizers.Optimizer(adam.init, lambda g, s, p=None: traces.append(1) or adam.update(g, s, p))

    loss_at = lambda p, instances: problem.loss(p, instances, rollout.generator(99)).numpy()
    options = dict(steps=5, instances=2, seeds=[0, 1, 2], metric=loss_at, snapshots=(2, 5))
    if every_step:
        options.update(snapshots=(), every_step=True)
    apart = evaluate.evaluate(problem, {"adam": lambda seed: counted()}, **options)
    traced_apart, traces[:] = len(traces), []
    one = counted()
    shared = evaluate.evaluate(problem, {"adam": lambda seed: one}, **options)
    assert len(traces) < traced_apart and len(traces) == traced_apart // 3  # one seed's traces serve all three
    np.testing.assert_array_equal(shared.curves["adam"], apart.curves["adam"])
    for step, values in apart.metrics["adam"].items():
        np.testing.assert_array_equal(shared.metrics["adam"][step], values)


def test_every_setting_of_a_baseline_shares_one_trace_and_gives_the_numbers_of_constant_hyperparameters():
    x = np.random.default_rng(2).integers(0, 256, size=(60, 2, 2), dtype=np.uint8)
    problem = problems.MLP(problems.image_data(x, np.arange(60) % 10, "tiny"), hidden=(3,), batch_size=8)
    settings = {"sgd": [{"learning_rate": 0.3}, {"learning_rate": 1.0}], "nag": [{"learning_rate": 0.1, "momentum": 0.9}, {"learning_rate": 0.3, "momentum": 0.5}],
                "rmsprop": [{"learning_rate": 0.01}, {"learning_rate": 0.001}], "adam": [{"learning_rate": 0.01, "beta_1": 0.9}, {"learning_rate": 0.1, "beta_1": 0.5}],
                "adam_decay": [{"learning_rate": 0.01, "beta_1": 0.9, "decay_to": 0.1, "cosine": 1.0, "decay_steps": 5.0}]}
    options = dict(steps=5, instances=2, seeds=[0, 1])
    shared, traced, constant = {}, {}, {}
    for name, kwargs_list in settings.items():
        for i, kwargs in enumerate(kwargs_list):
            factory = evaluate.at_setting(name, kwargs, shared)
            made = optimizers.FACTORIES[name](**kwargs)
            constant[f"{name}{i}"] = evaluate.evaluate(problem, {"c": lambda seed, made=made: made}, **options).curves["c"]
            got = evaluate.evaluate(problem, {"v": factory}, **options, traced=traced).curves["v"]
            # Float32 arithmetic on the hyperparameters, as tune() has it: ADAM's 1 - beta_1 is not rounded from float64.
            if name.startswith("adam"):
                np.testing.assert_allclose(got, constant[f"{name}{i}"], rtol=1e-5)
            else:
                np.testing.assert_array_equal(got, constant[f"{name}{i}"])
    assert len(shared) == len(settings) and len(traced) == len(settings)  # one optimiser and one trace per baseline
    # A factory made before another setting of its baseline still runs its own setting: the variables are set on each call.
    first = evaluate.at_setting("sgd", settings["sgd"][0], shared)
    evaluate.at_setting("sgd", settings["sgd"][1], shared)(0)
    np.testing.assert_array_equal(evaluate.evaluate(problem, {"v": first}, **options, traced=traced).curves["v"], constant["sgd0"])


def test_learned_runs_share_one_trace_and_give_the_numbers_of_each_runs_own_optimiser():
    from l2l import learned_optimizer, meta

    x = np.random.default_rng(3).integers(0, 256, size=(60, 2, 2), dtype=np.uint8)
    problem = problems.MLP(problems.image_data(x, np.arange(60) % 10, "tiny"), hidden=(3,), batch_size=8)
    config = learned_optimizer.LSTMConfig(hidden=4, layers=1)
    run = lambda seed: meta.MetaResult({k: tf.constant(v) for k, v in learned_optimizer.init_meta_params(config, seed).items()}, None, config,
                                       None, 0, 0.0, "completed", 0.0, f"run{seed}")
    runs = [run(0), run(1)]
    options = dict(steps=5, instances=2, seeds=[0, 1, 2])
    own = evaluate.evaluate(problem, {"plain": lambda s: runs[s % 2].optimizer(problem),
                                      "scaled": lambda s: optimizers.scaled(runs[s % 2].optimizer(problem), (0.3162, 3.162)[s % 2])}, **options)
    slots, traced = {}, {}
    shared = evaluate.evaluate(problem, {"plain": evaluate.learned_runs(runs, problem, slots),
                                         "scaled": evaluate.learned_runs(runs, problem, slots, (0.3162, 3.162))}, **options, traced=traced)
    for name in ("plain", "scaled"):
        np.testing.assert_array_equal(shared.curves[name], own.curves[name])
    assert len(slots) == len(traced) == 2  # one optimiser and one trace for the plain runs, one for the scaled


def test_negative_steps_rejected():
    problem = problems.Quadratic(dims=3)
    batch, params = rollout.fresh_instances(problem, 0, 2)
    with pytest.raises(ValueError, match="steps must be >= 0"):
        evaluate.run(problem, optimizers.sgd(0.1), batch, params, steps=-1)


def test_tuning_picks_the_grid_point_with_lowest_final_loss():
    problem = problems.Quadratic(dims=4)
    grid = (1e-3, 1e-2, 1e-1, 10.0)
    chosen, table = evaluate.tune_learning_rates(problem, ["sgd", "adam"], steps=20, instances=8, grid=grid)
    assert len(table) == 8
    for name in ["sgd", "adam"]:
        part = table[table.optimiser == name]
        assert chosen[name] == part.lr[part.final_loss.idxmin()]
    assert np.isinf(table[(table.optimiser == "sgd") & (table.lr == 10.0)].final_loss).all()  # diverged counts as inf
    # The grid's shared trace gives what a run with that rate fixed gives.
    batch, params = rollout.fresh_instances(problem, 0, 8, rollout.TUNE_SEED)
    losses, _, _ = evaluate.run(problem, optimizers.adam(1e-2), batch, params, 20)
    assert float(table[(table.optimiser == "adam") & (table.lr == 1e-2)].final_loss.iloc[0]) == pytest.approx(losses[:, -1].mean(), rel=1e-5)
    with pytest.raises(ValueError, match="unknown baselines"):
        evaluate.tune_learning_rates(problem, ["adamw"], 5, 2)


def test_lr_grid_spans_1e4_to_10_in_half_decades():
    grid = np.array(evaluate.LR_GRID)
    assert grid[0] == pytest.approx(1e-4) and grid[-1] == pytest.approx(10.0)
    np.testing.assert_allclose(np.diff(np.log10(grid)), 0.5, atol=1e-3)



def test_two_stage_tuning_per_objective_with_extra_hyperparameters():
    problem = problems.Quadratic(dims=3)
    grid = (0.01, 0.0316, 0.1)
    settings, table = evaluate.tune(problem, ["sgd", "nag"], steps=10, instances=4, grid=grid, extra={"nag": {"momentum": (0.5, 0.9)}})
    stage1 = table[table.stage == 1]
    assert len(stage1[stage1.optimiser == "sgd"]) == 3 and len(stage1[stage1.optimiser == "nag"]) == 6  # rates x momenta
    for objective in evaluate.OBJECTIVES:
        for name in ["sgd", "nag"]:
            rows = table[table.optimiser == name]
            best = rows.loc[rows[objective].idxmin()]
            assert settings[objective][name]["learning_rate"] == best.lr
        # Stage 2 holds the quarter-decade neighbours of stage 1's best rate for this objective.
        first = stage1[stage1.optimiser == "sgd"].sort_values(objective).iloc[0].lr
        rates = set(table[(table.optimiser == "sgd")].lr)
        assert {float(f"{first * 10 ** -0.25:.4g}"), float(f"{first * 10 ** 0.25:.4g}")} <= rates
    assert settings["final"]["nag"]["momentum"] in (0.5, 0.9)
    # The table's scores are what the chosen setting does, run again from scratch.
    chosen = settings["mean"]["nag"]
    batch, params = rollout.fresh_instances(problem, 0, 4, rollout.TUNE_SEED)
    losses = rollout.trajectory(problem, optimizers.nag(**chosen), batch, params, 10, tf.random.Generator.from_seed(0)).numpy()
    assert losses[1:].mean() == pytest.approx(table[table.optimiser == "nag"]["mean"].min(), rel=1e-5)


def test_tuning_for_several_steps_scores_one_trajectory_at_each():
    problem = problems.Quadratic(dims=3)
    grid = (0.01, 0.0316, 0.1)
    settings, table = evaluate.tune(problem, ["sgd", "adam"], steps=(4, 10), instances=4, grid=grid, extra={"adam": {"beta_1": (0.5, 0.9)}})
    assert set(settings) == {4, 10} and set(settings[4]) == set(evaluate.OBJECTIVES)
    # Stage 1 at step 4 scores what a run tuned for step 4 alone scores: the first 4 steps of the same run.
    alone = evaluate.tune(problem, ["sgd", "adam"], steps=4, instances=4, grid=grid, extra={"adam": {"beta_1": (0.5, 0.9)}})[1]
    first = table[table.stage == 1]
    np.testing.assert_allclose(first["final@4"].to_numpy(), alone[alone.stage == 1]["final"].to_numpy(), rtol=1e-6)
    np.testing.assert_allclose(first["mean@4"].to_numpy(), alone[alone.stage == 1]["mean"].to_numpy(), rtol=1e-6)
    for s in (4, 10):
        for objective in evaluate.OBJECTIVES:
            rows = table[table.optimiser == "adam"]
            best = rows.loc[rows[f"{objective}@{s}"].idxmin()]
            assert settings[s][objective]["adam"] == {"learning_rate": best.lr, "beta_1": best.beta_1}


def test_a_tuning_stopped_between_optimisers_keeps_those_it_finished(tmp_path, monkeypatch):
    import pandas as pd

    problem = problems.Quadratic(dims=3)
    args = dict(steps=(4, 10), instances=4, grid=(0.01, 0.0316, 0.1), extra={"nag": {"momentum": (0.5, 0.9)}})
    settings, table = evaluate.tune(problem, ["sgd", "nag", "adam"], **args)
    cache = str(tmp_path / "tuning-rows.json")
    tuned, real = [], evaluate._tune_one

    def stops_at_adam(problem, name, *rest):
        if name == "adam":
            raise KeyboardInterrupt  # the session ends
        tuned.append(name)
        return real(problem, name, *rest)

    monkeypatch.setattr(evaluate, "_tune_one", stops_at_adam)
    with pytest.raises(KeyboardInterrupt):
        evaluate.tune(problem, ["sgd", "nag", "adam"], **args, cache=cache)
    stopped = json.loads(open(cache).read())
    monkeypatch.setattr(evaluate, "_tune_one", lambda problem, name, *rest: tuned.append(name) or real(problem, name, *rest))
    resumed, resumed_table = evaluate.tune(problem, ["sgd", "nag", "adam"], **args, cache=cache)
    assert tuned == ["sgd", "nag", "adam"]  # sgd and nag once, before the stop; only adam after it
    assert resumed == settings
    pd.testing.assert_frame_equal(resumed_table.drop(columns="seconds"), table.drop(columns="seconds"))
    # Each setting's time is kept with its row: the resumed table has sgd's and nag's as measured before the stop.
    before = [row["seconds"] for name in ("sgd", "nag") for row in stopped[name]]
    assert resumed_table["seconds"][resumed_table.optimiser != "adam"].tolist() == before
    assert (resumed_table["seconds"] > 0).all() and evaluate.tuning_seconds(resumed_table) == resumed_table["seconds"].sum()
    # Rows of a version that kept no times make the tuning's time unknown, not short.
    assert np.isnan(evaluate.tuning_seconds(resumed_table.assign(seconds=resumed_table["seconds"].where(resumed_table.optimiser == "adam"))))


def test_a_learned_optimisers_multiplier_is_tuned_like_a_learning_rate():
    problem = problems.Quadratic(dims=3)
    # SGD at rate 0.01 scaled by m is SGD at rate 0.01 m: the multiplier's scores are the rate's.
    make = lambda learning_rate: optimizers.scaled(optimizers.sgd(0.01), learning_rate)
    settings, table = evaluate.tune(problem, ["learned"], steps=6, instances=4, grid=evaluate.MULTIPLIER_GRID, extra={}, makers={"learned": make})
    direct = evaluate.tune(problem, ["sgd"], steps=6, instances=4, grid=tuple(0.01 * m for m in evaluate.MULTIPLIER_GRID), extra={}, refine=False)[1]
    np.testing.assert_allclose(table[table.stage == 1]["final"].to_numpy(), direct["final"].to_numpy(), rtol=1e-5)
    assert 1.0 in evaluate.MULTIPLIER_GRID and settings["final"]["learned"]["learning_rate"] > 0
    with pytest.raises(ValueError, match=r"unknown optimisers \['lstm'\]"):
        evaluate.tune(problem, ["lstm"], steps=6, instances=4)
