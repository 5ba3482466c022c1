"""The shared figures draw what their data says: positions, spans and labels read back from the artists."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from l2l import plots


@pytest.fixture(autouse=True)
def close():
    plt.close("all")  # a figure another test module left open would be plt.gca()'s
    yield
    plt.close("all")


def _segments(ax):
    """The vertical error-bar segments of an axes, flat as x, low, high, ..., in drawing order."""
    out = []
    for collection in ax.collections:
        for segment in getattr(collection, "get_segments", lambda: [])():
            (x0, y0), (x1, y1) = segment
            if x0 == x1:
                out += [x0, min(y0, y1), max(y0, y1)]
    return out


def test_interval_points_put_each_optimiser_and_step_at_its_mean_with_its_interval():
    entry = lambda a, b: {"corner_error": {"10": {"mean": a, "ci95": [a / 2, a * 2]}, "50": {"mean": b, "ci95": [b - 0.1, b + 0.1]}}}
    ax = plots.interval_points({"lstm": entry(4.0, 0.5), "adam": entry(8.0, 2.0)}, "corner_error", (10, 50), threshold=1.0)
    assert _segments(ax) == pytest.approx([-0.15, 2.0, 8.0, 0.85, 4.0, 16.0, 0.15, 0.4, 0.6, 1.15, 1.9, 2.1])
    points = [tuple(line.get_xydata()[0]) for line in ax.lines if line.get_marker() in ("o", "s")]
    assert points == [(-0.15, 4.0), (0.85, 8.0), (0.15, 0.5), (1.15, 2.0)]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["LSTM", "ADAM"] and ax.get_yscale() == "log"
    assert any(list(line.get_ydata()) == [1.0, 1.0] for line in ax.lines)  # the threshold


def _trials():
    return pd.DataFrame({"state": ["COMPLETE", "COMPLETE", "PRUNED", "FAIL", "FAIL"], "status": ["complete", "complete", "pruned", "failed", None],
                         "surplus": [False, False, False, False, True], "cpu_s": [10.0, 20.0, 5.0, 3.0, np.nan], "score": [0.8, 1.5, 2.5, np.nan, np.nan],
                         "meta_lr": [1e-3, 1e-2, 1e-1, 1.0, 1e-4], "unroll": [5, 10, 20, 20, 5]})


def test_sweep_figures_draw_every_trial_that_ran_once_by_outcome():
    ax = plots.cost_quality(_trials())
    offsets = {c.get_label(): c.get_offsets().data.tolist() for c in ax.collections}
    assert offsets["complete"] == [[10.0, 0.8], [20.0, 1.5]] and offsets["pruned"] == [[5.0, 2.5]]
    assert set(offsets) == {"complete", "pruned", "failed"}  # the surplus trial never ran and is not drawn
    ax = plots.outcome_map(_trials(), ("meta_lr", "unroll"), log=(True, False), ax=plt.figure().gca())
    offsets = {c.get_label(): c.get_offsets().data.tolist() for c in ax.collections}
    assert offsets["failed"] == [[1.0, 20.0]] and ax.get_xscale() == "log" and ax.get_yscale() == "linear"


def test_importance_bars_are_each_estimators_value_with_its_resample_span_ordered_by_fanova():
    fanova = pd.DataFrame({"setting": ["meta_lr", "unroll", "hidden"], "importance": [0.6, 0.3, 0.1], "low": [0.5, 0.2, 0.0], "high": [0.7, 0.4, 0.2]})
    ped = pd.DataFrame({"setting": ["unroll", "meta_lr"], "importance": [0.7, 0.3], "low": [0.6, 0.2], "high": [0.8, 0.5]})
    ax = plots.importance_bars({"fanova": fanova, "ped_anova": ped})
    assert [t.get_text() for t in ax.get_yticklabels()] == ["hidden", "unroll", "meta_lr"]  # least important at the bottom
    widths = [round(p.get_width(), 6) for p in ax.patches]
    assert widths == [0.1, 0.3, 0.6, 0.0, 0.7, 0.3]  # fANOVA's bars, then PED-ANOVA's (hidden absent there: 0)
    spans = sorted((round(lo, 6), round(hi, 6)) for collection in ax.collections for (lo, _), (hi, _) in collection.get_segments())
    assert (0.5, 0.7) in spans and (0.2, 0.5) in spans


def test_dependence_and_heatmap_draw_the_tables_values():
    table = pd.DataFrame({"level": ["4", "8"], "ratio": [1.0, 0.5], "low": [0.8, 0.25], "high": [1.25, 1.0]})
    ax = plots.dependence(table)
    assert _segments(ax) == pytest.approx([0, 0.8, 1.25, 1, 0.25, 1.0])
    heat = pd.DataFrame([[0.5, 2.0], [1.0, np.nan]], index=pd.Index([1e-3, 1e-2], name="meta_lr"), columns=pd.Index([5, 10], name="unroll"))
    ax = plots.ratio_heatmap(heat, ax=plt.figure().gca())
    np.testing.assert_allclose(ax.images[0].get_array().filled(np.nan), np.log10(heat.to_numpy()))
    assert [t.get_text() for t in ax.texts] == ["0.50", "2.00", "1.00", "nan"]
    assert ax.get_xlabel() == "unroll" and ax.get_ylabel() == "meta_lr"


def test_rate_sweeps_and_update_ratio_panels_draw_what_they_are_given():
    sweep = pd.DataFrame({"lr": [0.01, 0.1, 1.0], "final_loss": [2.0, 1.0, np.inf]})
    ax = plots.rate_sweeps({"adam": (sweep, 0.1, "ADAM (learning rate)")}, "rate", "loss", ax=plt.subplots()[1])
    line = ax.get_lines()[0]
    assert list(line.get_xdata()) == [0.01, 0.1, 1.0] and np.isnan(line.get_ydata()[2]) and ax.get_legend().get_texts()[0].get_text() == "ADAM (learning rate)"
    assert ax.collections[0].get_offsets().tolist() == [[0.1, 1.0]]  # the chosen rate circled
    ratios = {"lstm_tuned": {"dense0/kernel": np.array([1.0, 2.0]), "dense0/bias": np.ones(2), "dense1/kernel": np.array([3.0, 4.0])},
              "adam": {"dense0/kernel": np.array([5.0, 6.0]), "dense0/bias": np.ones(2), "dense1/kernel": np.array([7.0, 8.0])}}
    fig = plots.update_ratio_panels(ratios, 2)
    assert [a.get_title() for a in fig.axes] == ["dense0", "dense1"]
    assert [list(line.get_ydata()) for line in fig.axes[1].get_lines()] == [[3.0, 4.0], [7.0, 8.0]]
    plt.close("all")


def test_log_bands_stay_above_zero_and_centre_on_the_geometric_mean():
    from l2l import stats

    per_run = np.array([0.1, 1.0, 10.0])  # three runs' mean loss at one step: an arithmetic t-band reaches far below 0
    curves = {"lstm": np.repeat(per_run[:, None, None], 4, axis=1) * np.ones((3, 4, 2))}
    plain, logged = stats.run_bands(curves, [0, 1]), stats.run_bands(curves, [0, 1], log=True)
    assert plain["low"].iloc[0] < 0 < logged["low"].iloc[0]
    assert logged["mean"].iloc[0] == pytest.approx(1.0) and logged["high"].iloc[0] == pytest.approx(1.0 / logged["low"].iloc[0])
    diverged = {"sgd": np.concatenate([curves["lstm"][:2], np.full((1, 4, 2), np.inf)])}
    assert stats.run_bands(diverged, [0, 1], log=True)[["mean", "low", "high"]].isna().all().all()


def test_a_diverged_curve_does_not_set_the_axis_and_says_it_left_it():
    steps = np.arange(5)
    table = pd.concat([pd.DataFrame({"optimiser": "lstm", "step": steps, "mean": 2.0 / (1 + steps), "low": 1.0 / (1 + steps), "high": 3.0 / (1 + steps)}),
                       pd.DataFrame({"optimiser": "sgd", "step": steps, "mean": 2.0 * 1e4 ** steps, "low": 2.0 * 1e4 ** steps, "high": 2.0 * 1e4 ** steps})])
    fig, ax = plt.subplots()
    plots.loss_curves(table, ax=ax)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["LSTM", "SGD, diverged (leaves the axis)"]
    assert ax.get_ylim()[1] == pytest.approx(plots.DIVERGED_ABOVE * 2.0)
    plt.close(fig)


def test_every_optimiser_keeps_one_colour_across_the_book():
    assert plots.colour("lstm_budget_tuned") == plots.colour("lstm") == plots.colour("lstm_best")
    assert plots.colour("adam_tuned") == plots.colour("adam")
    baselines = ["sgd", "rmsprop", "adam", "nag", "adam_decay", "nag_decay"]
    assert len({plots.colour(n) for n in baselines + ["lstm", "lstm_paper"]}) == 8  # no two of a panel's optimisers alike
