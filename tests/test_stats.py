import numpy as np
import pytest

from l2l import stats


def test_bootstrap_interval_invariants(nprng):
    constant = np.full((3, 10, 2), 4.0)
    mean, low, high = stats.bootstrap_ci(constant)
    np.testing.assert_allclose([mean, low, high], 4.0)
    values = nprng.normal(1.0, 1.0, size=(4, 400, 1))
    mean, low, high = stats.bootstrap_ci(values, n_boot=1000)
    assert low[0] < mean[0] < high[0]
    assert low[0] < 1.0 < high[0]
    # Seed-level spread widens the interval: shift one seed's instances.
    shifted = values.copy()
    shifted[0] += 3.0
    _, low2, high2 = stats.bootstrap_ci(shifted, n_boot=1000)
    assert high2[0] - low2[0] > 3 * (high[0] - low[0])


def test_summary_and_tables_have_the_shared_shape():
    curves = {"lstm": np.arange(2 * 3 * 5, dtype=float).reshape(2, 3, 5), "adam": np.ones((2, 3, 5))}
    summary = stats.summarize(curves, [2, 4], n_boot=50)
    assert set(summary["lstm"]) == {"2", "4"}
    assert summary["adam"]["4"] == {"mean": 1.0, "ci95": [1.0, 1.0]}
    assert summary["lstm"]["2"]["ci95"][0] <= summary["lstm"]["2"]["mean"] <= summary["lstm"]["2"]["ci95"][1]
    means = stats.seed_means(curves, [7, 8])
    assert len(means) == 20 and float(means[(means.optimiser == "lstm") & (means.seed == 7) & (means.step == 0)].loss.iloc[0]) == 5.0
    with pytest.raises(ValueError, match="'lstm' has 2 runs"):
        stats.seed_means(curves, [7, 8, 9])


def test_paired_difference_sees_a_shift_that_unpaired_intervals_hide(nprng):
    shared = nprng.lognormal(0.0, 1.0, size=(3, 50, 1))  # instance difficulty both optimisers share
    a, b = shared * 0.9, shared
    diff = stats.paired_difference(a, b, 0, n_boot=500)
    assert diff["ci95"][1] < 0 and diff["mean"] == pytest.approx(-0.1 * shared.mean())
    _, low_b, _ = stats.bootstrap_ci(b, 500)
    _, _, high_a = stats.bootstrap_ci(a, 500)
    assert high_a[0] > low_b[0]  # the unpaired intervals overlap


def test_intervals_over_runs_are_student_t_on_the_run_means():
    values = np.array([[1.0, 1.0], [2.0, 2.0], [3.0, 3.0]])  # three runs, two instances each
    out = stats.over_runs(values)
    # Student's t with 2 degrees of freedom has the closed-form quantile (2p - 1) / sqrt(2p(1 - p)); run means 1, 2, 3: sd 1.
    half = (2 * 0.975 - 1) / np.sqrt(2 * 0.975 * 0.025) / np.sqrt(3)
    assert out["runs"] == 3 and out["mean"] == 2.0
    np.testing.assert_allclose(out["ci95"], [2.0 - half, 2.0 + half], rtol=1e-12)
    assert stats.over_runs(values[:1])["ci95"] == [-np.inf, np.inf]  # one run: no interval


def test_compare_runs_counts_runs_and_reads_the_interval():
    rng = np.random.default_rng(0)
    base = rng.normal(1.0, 0.3, size=(5, 8))  # instance difficulty shared by both
    better = base - 0.2 + rng.normal(0, 0.01, size=(5, 8))
    out = stats.compare_runs(better, base)
    assert out["wins"] == 5 and out["runs"] == 5 and out["verdict"] == "beats" and out["mean"] == pytest.approx(-0.2, abs=0.01)
    mixed = base + np.array([-0.1, 0.1, -0.1, 0.1, 0.0])[:, None]
    out = stats.compare_runs(mixed, base)
    assert out["wins"] == 2 and out["verdict"] == "cannot be told apart from"
    assert stats.compare_runs(base + 0.5, base)["verdict"] == "loses to"


def test_trajectory_mean_averages_steps_one_to_the_horizon():
    curves = np.arange(2 * 3 * 6, dtype=float).reshape(2, 3, 6)  # step 0 .. 5
    np.testing.assert_array_equal(stats.trajectory_mean(curves, 4), curves[:, :, 1:5].mean(axis=-1))


def test_a_diverged_run_is_an_infinite_loss_never_a_nan_that_ranks_anywhere():
    ok = np.array([[1.0, 2.0], [1.5, 1.5], [2.0, 1.0]])
    blown = ok.copy()
    blown[1, 0] = np.nan  # one instance of run 1 diverged
    assert stats.over_runs(blown) == {"mean": np.inf, "ci95": [np.inf, np.inf], "runs": 3, "diverged": 1}
    # The learned optimiser beats a baseline that diverged, in every run it was finite and the baseline not.
    v = stats.compare_runs(ok, blown)
    assert v["mean"] == -np.inf and v["verdict"] == "beats" and v["wins"] == 1 and v["diverged"] == 1
    assert stats.compare_runs(blown, ok)["verdict"] == "loses to"
    assert sorted([np.nan, 3.0, np.inf, 1.0], key=stats.finite_or_inf)[:2] == [1.0, 3.0]


def test_the_best_run_by_validation_is_never_one_that_did_not_validate_finitely():
    values = [float("nan"), 0.5, float("inf"), 0.2, float("nan")]
    assert min(range(len(values)), key=lambda i: stats.validation_rank(values[i])) == 3
    assert min(values) != 0.2  # what min() over the raw values does: NaN first compares as neither better nor worse
    assert [stats.validation_rank(v) for v in (float("nan"), "0.25", 1)] == [float("inf"), 0.25, 1.0]


def test_endpoint_verdict_reads_the_preregistered_rules():
    base = np.ones((5, 4))
    # Every run lower by about 0.1: reproduced, 5 of 5.
    lower = base - 0.1 + 0.01 * np.arange(5)[:, None]
    v = stats.endpoint_verdict(lower, base)
    assert v["outcome"] == "reproduced" and v["wins"] == 5 and v["needed"] == 4 and v["ci95"][1] < 0
    # 3 of 5 lower, one far above: the interval spans 0, inconclusive, with the difference the design could have seen.
    mixed = base + np.array([-0.2, -0.2, -0.2, 0.05, 0.3])[:, None]
    v = stats.endpoint_verdict(mixed, base)
    assert v["outcome"] == "inconclusive" and v["wins"] == 3 and v["ci95"][0] < 0 < v["ci95"][1]
    per_run = np.array([-0.2, -0.2, -0.2, 0.05, 0.3])
    from scipy import stats as scipy_stats

    assert np.isclose(v["detectable"], (scipy_stats.t.ppf(0.975, 4) + scipy_stats.t.ppf(0.8, 4)) * per_run.std(ddof=1) / np.sqrt(5))
    # Higher in every run: not reproduced.
    assert stats.endpoint_verdict(base + 0.1 + 0.01 * np.arange(5)[:, None], base)["outcome"] == "not reproduced"
    # The share rule binds where the interval alone would say reproduced: of 10 runs 8 must be lower; 7 are, by a lot.
    ten = np.ones((10, 4))
    skew = ten + np.array([-1.0] * 7 + [0.001] * 3)[:, None]
    v = stats.endpoint_verdict(skew, ten)
    assert v["ci95"][1] < 0 and v["wins"] == 7 and v["needed"] == 8 and v["outcome"] == "inconclusive"
    # A diverged run (NaN) counts as infinitely worse: never "reproduced", and no finite detectable difference.
    broken = lower.copy()
    broken[0, 0] = np.nan
    v = stats.endpoint_verdict(broken, base)
    assert v["outcome"] != "reproduced" and v["detectable"] == np.inf


def test_the_detectable_difference_shrinks_with_runs_as_one_over_root_n_times_the_t_quantiles():
    from scipy import stats as scipy_stats

    for n in (3, 5, 10):
        expected = (scipy_stats.t.ppf(0.975, n - 1) + scipy_stats.t.ppf(0.8, n - 1)) * 0.2 / np.sqrt(n)
        assert np.isclose(stats.detectable_difference(0.2, n), expected)
    assert stats.detectable_difference(0.2, 1) == np.inf
    # Simulated: at the detectable difference, a paired t-test at 5% rejects in about 80% of designs of 5 runs.
    rng = np.random.default_rng(0)
    d = stats.detectable_difference(1.0, 5)
    samples = rng.normal(-d, 1.0, size=(20000, 5))
    t = samples.mean(axis=1) / (samples.std(axis=1, ddof=1) / np.sqrt(5))
    power = np.mean(t < -scipy_stats.t.ppf(0.975, 4))
    assert 0.75 < power < 0.85, power


def test_an_interval_of_a_positive_quantity_is_clipped_to_what_it_can_be_and_says_so():
    runs = np.array([0.05, 0.1, 2.1])  # a loss near 0 with one run far up: the t-interval reaches below 0
    raw = stats.over_runs(runs)
    assert raw["ci95"][0] < 0
    loss = stats.within(raw, "loss")
    assert loss["ci95"] == [0.0, raw["ci95"][1]] and loss["clipped"] and loss["mean"] == raw["mean"]
    accuracy = stats.within(stats.over_runs(np.array([0.99, 0.5, 0.98])), "accuracy")
    assert 0.0 <= accuracy["ci95"][0] and accuracy["ci95"][1] == 1.0 and accuracy["clipped"]
    inside = stats.over_runs(np.array([0.3, 0.31, 0.32]))
    assert stats.within(inside, "loss") == inside  # nothing to clip, no flag
