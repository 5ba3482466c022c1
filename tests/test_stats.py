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


def test_paired_difference_sees_a_shift_that_unpaired_intervals_hide(nprng):
    shared = nprng.lognormal(0.0, 1.0, size=(3, 50, 1))  # instance difficulty both optimisers share
    a, b = shared * 0.9, shared
    diff = stats.paired_difference(a, b, 0, n_boot=500)
    assert diff["ci95"][1] < 0 and diff["mean"] == pytest.approx(-0.1 * shared.mean())
    _, low_b, _ = stats.bootstrap_ci(b, 500)
    _, _, high_a = stats.bootstrap_ci(a, 500)
    assert high_a[0] > low_b[0]  # the unpaired intervals overlap
