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
