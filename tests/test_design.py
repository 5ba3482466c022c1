import itertools

import numpy as np
import pytest

from l2l import design


@pytest.mark.parametrize("k", range(1, 9))
def test_fractional_factorials_are_orthogonal_and_keep_main_effects_clear_of_two_setting_interactions(k):
    x = design.fractional_factorial(k)
    n = x.shape[0]
    assert x.shape == (2 ** min(k, 4), k) and set(np.unique(x)) == {-1, 1}
    np.testing.assert_array_equal(x.T @ x, n * np.eye(k, dtype=int))  # balanced and orthogonal: each effect estimated apart
    pairs = [x[:, a] * x[:, b] for a, b in itertools.combinations(range(k), 2)]
    for j in range(k):  # resolution IV or better: no main effect is (plus or minus) a two-setting interaction
        assert not any(abs(int(x[:, j] @ p)) == n for p in pairs), (k, j)
    assert len({tuple(row) for row in x}) == n  # no point twice


def test_design_points_take_low_at_minus_one_and_high_at_plus_one():
    x = design.fractional_factorial(2)
    points = design.design_points(x, {"meta_lr": (1e-3, 1e-2), "unroll": (5, 20)})
    assert points == [{"meta_lr": 1e-3, "unroll": 5}, {"meta_lr": 1e-2, "unroll": 5}, {"meta_lr": 1e-3, "unroll": 20}, {"meta_lr": 1e-2, "unroll": 20}]
    with pytest.raises(ValueError, match="one \\(low, high\\) pair per column"):
        design.design_points(x, {"meta_lr": (1e-3, 1e-2)})


def test_main_effects_recover_a_known_response_and_equal_the_difference_of_halves_when_balanced():
    x = design.fractional_factorial(6)
    truth = np.array([0.8, -0.3, 0.0, 0.05, 0.0, -1.2])  # effects: high minus low
    rng = np.random.default_rng(0)
    coded = np.repeat(x, 3, axis=0)  # three seeds per point
    y = 2.0 + coded @ (truth / 2) + rng.normal(scale=0.05, size=len(coded))
    effects = design.main_effects(coded, y, list("abcdef")).set_index("setting")
    for name, value in zip("abcdef", truth):
        assert effects.loc[name, "low"] < value < effects.loc[name, "high"]
        halves = y[coded[:, "abcdef".index(name)] > 0].mean() - y[coded[:, "abcdef".index(name)] < 0].mean()
        assert effects.loc[name, "effect"] == pytest.approx(halves)
    assert effects.index[0] == "f" and effects.loc["f", "clear"] and not effects.loc["c", "clear"]
    # Trials set apart (failed): still estimable while the remaining columns separate the settings.
    kept = np.ones(len(y), bool)
    kept[[0, 5, 17]] = False
    partial = design.main_effects(coded[kept], y[kept], list("abcdef")).set_index("setting")
    assert partial.loc["a", "low"] < 0.8 < partial.loc["a", "high"]
    with pytest.raises(ValueError, match="replicate the points"):
        design.main_effects(x[:7], y[:7], list("abcdef"))


def test_failures_are_counted_apart_per_setting_and_the_budget_is_in_meta_updates():
    losses = np.array([2.3026, 0.4, 2.30, 0.5, 0.6, 2.2])
    alive = design.trained(losses, np.log(10))
    np.testing.assert_array_equal(alive, [False, True, False, True, True, True])
    table = design.failure_table({"preprocess_p": [0, 10, 0, 10, 10, 0], "unroll": [5, 5, 20, 20, 5, 20]}, alive).set_index(["setting", "value"])
    assert table.loc[("preprocess_p", 0), "trials"] == 3 and table.loc[("preprocess_p", 0), "trained"] == 1
    assert table.loc[("preprocess_p", 10), "share"] == 1.0
    assert design.epochs_for_budget(2000, 100, 5) == 100 and design.epochs_for_budget(2000, 100, 50) == 1000
    with pytest.raises(ValueError, match="multiple of unroll"):
        design.epochs_for_budget(100, 100, 30)


def _design_study(plant, untrained=2.3):
    """An in-memory study of a 2^3 design x 2 seeds whose LSTM losses are planted: log(final / best baseline) =
    plant(coded settings, seed); one trial left at the untrained level and one failed with a reason."""
    import optuna

    from l2l import sweep

    spec = sweep.spec_from_dict({"name": "planted", "task": "quadratic", "sampler": "design", "pruner": "none", "trials": 16, "eval_horizon": 10,
                                 "fixed": {"horizon": 10, "epochs": 1},
                                 "space": {"meta_lr": {"choices": [0.001, 0.01]}, "unroll": {"choices": [5, 10]}, "scale": {"choices": [0.05, 0.2]},
                                           "seed": {"choices": [0, 1]}}})
    study = optuna.create_study(direction="minimize")
    tuned = {"nag": {"final": 0.5, "mean": 0.8}, "adam": {"final": 0.4, "mean": 0.9}}  # the better: ADAM's final, NAG's mean
    distributions = {n: optuna.distributions.CategoricalDistribution(d["choices"]) for n, d in spec.space.items()}
    for i, point in enumerate(sweep.design_points(spec)):
        x = [1 if point[n] == spec.space[n]["choices"][1] else -1 for n in ("meta_lr", "unroll", "scale")]
        final = 0.4 * np.exp(plant(x, point["seed"]))
        attrs = {"lstm": {"final": final, "mean": 0.8 * np.exp(plant(x, point["seed"]))}, "cpu_s": 1.0, "wall_s": 1.0}
        state = optuna.trial.TrialState.COMPLETE
        if i == 3:
            attrs["lstm"] = {"final": untrained, "mean": untrained}  # never trained
        if i == 5:
            attrs, state = {"failure": "stopped at epoch 1: non-finite meta-loss"}, optuna.trial.TrialState.FAIL
        study.add_trial(optuna.trial.create_trial(params=point, distributions=distributions, value=1.0 if state.name == "COMPLETE" else None,
                                                  user_attrs=attrs, state=state))
    return spec, study, tuned, untrained


def test_the_design_reads_planted_effects_on_the_trials_that_trained_and_sets_the_rest_apart():
    from l2l.chapters import hyper

    noise = {0: 0.02, 1: -0.02}
    plant = lambda x, seed: 0.5 * x[0] / 2 - 0.2 * x[1] / 2 + noise[seed] * x[2]  # meta_lr's effect 0.5, unroll's -0.2, scale's 0
    spec, study, tuned, untrained = _design_study(plant)
    frame = hyper.design_frame(spec, study, tuned, untrained)
    assert len(frame) == 16 and int(frame.trained.sum()) == 14
    np.testing.assert_allclose(frame.log_final[frame.trained], [plant([1 if r[n] == spec.space[n]["choices"][1] else -1 for n in ("meta_lr", "unroll", "scale")],
                                                                   r.seed) for _, r in frame[frame.trained].iterrows()], atol=1e-12)
    effects = hyper.effects(frame, spec, "final").set_index("setting")
    assert effects.loc["meta_lr", "effect"] == pytest.approx(0.5, abs=0.03) and effects.loc["meta_lr", "clear"]
    assert effects.loc["unroll", "effect"] == pytest.approx(-0.2, abs=0.03) and effects.loc["unroll", "clear"]
    assert abs(effects.loc["scale", "effect"]) < 0.05
    failures = hyper.failures(frame, spec)
    assert failures.trials.sum() == 16 * 3 and failures.trained.sum() == 14 * 3
    best = hyper.best_point(frame, spec)  # low meta_lr, high unroll, whichever scale has both seeds trained
    assert best["settings"]["meta_lr"] == 0.001 and best["settings"]["unroll"] == 10 and best["settings"]["horizon"] == 10 and "seed" not in best["settings"]
    assert "14 of 16 design trials trained" in hyper.effects_sentence(frame, {"final": hyper.effects(frame, spec, "final")}, spec)
    assert "2 of 16 design trials never trained" in hyper.failure_sentence(failures, frame)
    table = hyper.effects_table({"final": hyper.effects(frame, spec, "final")})
    assert list(table.columns) == ["setting", "final: ratio x", "final: 95% CI"] and table.shape[0] == 3


def test_a_design_where_too_few_trials_trained_says_so_instead_of_estimating():
    from l2l.chapters import hyper

    spec, study, tuned, _ = _design_study(lambda x, seed: 0.1 * x[0])
    frame = hyper.design_frame(spec, study, tuned, untrained=0.3)  # a level few losses get below: most trials "never trained"
    assert int(frame.trained.sum()) < 5
    by = {m: hyper.effects(frame, spec, m) for m in hyper.METRICS}
    assert all(e is None for e in by.values())
    assert hyper.effects_markdown(by).startswith("Too few trials trained")
    assert "too few trained to estimate" in hyper.effects_sentence(frame, by, spec)
    assert hyper.best_point(frame, spec) is None
    assert hyper.replicated_sentences(None, 100)["final"].startswith("No design point trained in every seed")
    assert hyper.design_summary({"main": (spec, frame, by, hyper.failures(frame, spec))})["main"]["effects"] == {"final": None, "mean": None}
