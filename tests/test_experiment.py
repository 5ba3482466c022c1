"""The chapter layer, fast and without papermill: panels, tuning, entries, verdicts, runs, summary."""

import dataclasses
import json
import os
import types

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from l2l import evaluate, experiment, learned_optimizer, meta, optimizers, problems, rollout, stats

TINY_LSTM = learned_optimizer.LSTMConfig(hidden=4)
QUIET = lambda line: None


def tiny_config(seed=0, epochs=2):
    return meta.MetaConfig(seed=seed, epochs=epochs, batch=3, horizon=6, unroll=3, valid_every=1, valid_instances=3, checkpoint_every=1)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    problem = problems.Quadratic(dims=3)
    out = experiment.meta_train_runs(problem, TINY_LSTM, [tiny_config(0), tiny_config(1)], str(root / "ckpt"), str(root), "lstm", log=QUIET, chapter="test")
    return root, problem, out


def test_every_baseline_gets_its_own_tuned_rate():
    made = experiment.factories({}, {"sgd": 0.1, "adam": 0.01, "nag": 0.5})
    grads = tf.constant([[1.0, -2.0]])
    for name, lr in {"sgd": 0.1, "nag": 0.5}.items():
        optimizer = made[name](0)
        expected = optimizers.BASELINES[name](lr)
        np.testing.assert_allclose(optimizer.update(grads, optimizer.init(grads))[0].numpy(), expected.update(grads, expected.init(grads))[0].numpy())


def test_learned_runs_are_assigned_to_seeds_round_robin(runs):
    _, _, out = runs
    made = experiment.factories({"lstm": [out[0], out[1]]}, {})
    grads = tf.constant([[0.5, -1.0, 2.0]])
    update = lambda seed: made["lstm"](seed).update(grads, made["lstm"](seed).init(grads))[0].numpy()
    np.testing.assert_array_equal(update(2), update(0))
    assert not np.array_equal(update(1), update(0))


def test_meta_train_runs_write_weights_with_their_key_and_reuse_finished_runs(runs):
    root, problem, out = runs
    for seed, result in out.items():
        weights, config, about = learned_optimizer.load_weights(str(root / f"lstm_seed{seed}.weights.h5"))
        assert config == TINY_LSTM and about["run_key"] == result.key and about["chapter"] == "test" and int(about["epochs"]) == 2
        np.testing.assert_array_equal(weights["out/kernel"].numpy(), result.meta_params["out/kernel"].numpy())
    lines = []
    again = experiment.meta_train_runs(problem, TINY_LSTM, [tiny_config(0)], str(root / "ckpt"), str(root / "again"), "lstm", log=lines.append)
    assert any(line.startswith("resumed at epoch 2") for line in lines)
    np.testing.assert_array_equal(again[0].last_params["out/kernel"].numpy(), out[0].last_params["out/kernel"].numpy())
    table = experiment.meta_training_table({"LSTM": out})
    assert list(table["best epoch"]) == [r.best_epoch for r in out.values()] and set(table.status) == {"completed"}
    assert len(experiment.history_frame({"LSTM": out})) == 4
    assert experiment.meta_training_entry(out)["best_epoch"] == [out[0].best_epoch, out[1].best_epoch]


def test_a_panel_tunes_on_its_tuning_problem_and_reports_the_shared_shape(runs):
    _, problem, out = runs
    panel = experiment.Panel("base", "tiny", problem, problems.Quadratic(dims=3, distribution="uniform"), tune_steps=5, steps=8, report_steps=(5, 8))
    result = experiment.run_panel(panel, {"lstm": [out[0], out[1]]}, instances=4, seeds=[0, 1], tune_instances=4, baselines=("sgd", "adam"), n_boot=200)
    expected, _ = evaluate.tune_learning_rates(panel.tuning_problem, ["sgd", "adam"], 5, 4)
    assert result.lrs == expected  # tuned on the tuning problem, not the test problem
    assert set(result.entries) == {"lstm", "sgd", "adam"} and result.entries["lstm"]["lr"] is None
    for entry in result.entries.values():
        assert set(entry["loss"]) == {"5", "8"} and entry["ms_per_step"] > 0
        assert entry["loss"]["8"]["ci95"][0] <= entry["loss"]["8"]["mean"] <= entry["loss"]["8"]["ci95"][1]
    np.testing.assert_allclose(result.entries["adam"]["loss"]["8"]["mean"], result.evaluation.curves["adam"][:, :, 8].mean())
    sentence = experiment.verdict(result, 8, "functions", n_boot=200)
    best, diff, word = stats.against_best(result.evaluation.curves, 8, ["sgd", "adam"], n_boot=200)
    assert f"**{word}**" in sentence and f"{diff['mean']:.3g}" in sentence
    table = experiment.results_table(result)
    assert list(table.columns) == ["optimiser", "learning rate", "loss at step 5 [95% CI]", "loss at step 8 [95% CI]", "ms per step"]
    assert experiment.curves_frame({"base": result}, [0, 1]).panel.unique().tolist() == ["base"]


def test_held_out_metrics_enter_entries_table_and_verdict():
    x = np.random.default_rng(0).integers(0, 256, size=(60, 2, 2), dtype=np.uint8)
    data = problems.image_data(x, np.arange(60) % 10, "tiny")
    mlp = problems.MLP(data, hidden=(3,), batch_size=8)
    panel = experiment.Panel("mlp", "tiny MLP", mlp, mlp, tune_steps=4, steps=6, report_steps=(4, 6), heldout=data)
    sgd_only = experiment.run_panel(panel, {"lstm": [type("Fixed", (), {"optimizer": lambda self, problem=None: optimizers.sgd(0.05)})()]},
                                    instances=2, seeds=[0], tune_instances=2, baselines=("sgd",), n_boot=100)
    for entry in sgd_only.entries.values():
        assert set(entry["accuracy"]) == {"4", "6"} and 0 <= entry["accuracy"]["6"]["mean"] <= 1 and entry["heldout_loss"]["6"]["mean"] > 0
    assert "held-out accuracy at step 6" in experiment.results_table(sgd_only).columns
    assert "held-out accuracy" in experiment.verdict(sgd_only, 6, "MLPs", n_boot=100)


def test_panel_steps_are_checked_before_compute():
    with pytest.raises(ValueError, match=r"Panel 'x': steps \[12\] are outside 1..10"):
        experiment.Panel("x", "x", problems.Quadratic(), problems.Quadratic(), tune_steps=12, steps=10, report_steps=(10,))


def test_tuned_values_at_the_outer_end_of_what_tuning_tried_are_named():
    from types import SimpleNamespace

    # Rates far too small for this quadratic: the largest tried wins, a quarter-decade beyond the grid, as tune rounds it.
    grid = (1e-6, 1e-5)
    settings, table = evaluate.tune(problems.Quadratic(dims=3), ["sgd"], (4,), 2, grid=grid, extra={})
    assert settings[4]["final"]["sgd"]["learning_rate"] == table.lr.max() == 1.778e-05
    multipliers = {"lstm": {4: {"final": [0.1, 0.5623, 1.0], "mean": [0.05623, 0.1, 0.1]}}}  # runs 1 and 0 at the ends of 0.1..0.3162
    found = experiment.tuned_at_edge(SimpleNamespace(settings=settings, multipliers=multipliers), grid, (0.1, 0.3162))
    assert found == [{"optimiser": "sgd", "step": 4, "objective": "final", "value": 1.778e-05},
                     {"optimiser": "sgd", "step": 4, "objective": "mean", "value": 1.778e-05},
                     {"optimiser": "lstm_tuned", "step": 4, "objective": "final", "value": 0.5623, "run": 1},
                     {"optimiser": "lstm_tuned", "step": 4, "objective": "mean", "value": 0.05623, "run": 0}]
    # A value inside what was tried is not named.
    inside = {4: {o: {"sgd": {"learning_rate": 1e-05}} for o in evaluate.OBJECTIVES}}
    assert experiment.tuned_at_edge(SimpleNamespace(settings=inside, multipliers={}), grid) == []
    # The chapter states them per panel, and files them in each panel's summary entry, per step where the panel
    # is summarised per step.
    text = experiment.edge_markdown({"quad": found, "flat": []}, {"quad": "Quadratics", "flat": "Flat"})
    assert text.splitlines() == ["- Quadratics: sgd at 1.778e-05 (final loss at step 4); sgd at 1.778e-05 (trajectory mean at step 4); "
                                 "lstm_tuned run 1 at 0.5623 (final loss at step 4); lstm_tuned run 0 at 0.05623 (trajectory mean at step 4)"]
    assert experiment.edge_markdown({"flat": []}, {"flat": "Flat"}) == "none."
    later = {**found[0], "step": 9}
    summaries = experiment.add_edges({"quad4": {}, "quad9": {}, "flat": {"x": 1}}, {"quad": found + [later], "flat": []}, (4, 9))
    assert summaries == {"quad4": {"tuned_at_edge": found}, "quad9": {"tuned_at_edge": [later]}, "flat": {"x": 1, "tuned_at_edge": []}}


def test_a_rerun_with_fewer_seeds_leaves_no_weights_file_of_the_seeds_it_dropped(runs):
    root, problem, _ = runs
    results = root / "fewer"
    experiment.meta_train_runs(problem, TINY_LSTM, [tiny_config(0), tiny_config(1)], str(root / "ckpt"), str(results), "lstm", log=QUIET)
    experiment.meta_train_runs(problem, TINY_LSTM, [tiny_config(1)], str(root / "ckpt"), str(results), "lstm_sub", log=QUIET)
    assert sorted(os.listdir(results)) == ["lstm_seed0.weights.h5", "lstm_seed1.weights.h5", "lstm_sub_seed1.weights.h5"]
    lines = []
    again = experiment.meta_train_runs(problem, TINY_LSTM, [tiny_config(0)], str(root / "ckpt"), str(results), "lstm", log=lines.append)
    # seed 1's file was an earlier run's: publish's pattern lstm_seed* would have offered it; another label's files stay.
    assert sorted(os.listdir(results)) == ["lstm_seed0.weights.h5", "lstm_sub_seed1.weights.h5"] and list(again) == [0]
    assert any("removed lstm_seed1.weights.h5" in line for line in lines)


def test_timing_spread_is_the_largest_ratio_among_the_runs_of_one_optimiser():
    from types import SimpleNamespace

    runs = {"lstm": {4: {"final": "lstm", "mean": "lstm"}}, "lstm_tuned": {4: {"final": "lstm~4:final", "mean": "lstm~4:mean"}},
            "adam": {4: {"final": "adam@4:final", "mean": "adam@4:mean"}}, "sgd": {4: {"final": "sgd@4:final", "mean": "sgd@4:final"}}}
    seconds = {"lstm": 0.150, "lstm~4:final": 0.090, "lstm~4:mean": 0.100, "adam@4:final": 0.010, "adam@4:mean": 0.012, "sgd@4:final": 0.003}
    # lstm's three runs: 0.150 / 0.090; adam's two: 1.2; sgd's one; never lstm's time over sgd's.
    assert experiment.timing_spread(SimpleNamespace(runs=runs, seconds_per_step=seconds)) == pytest.approx(0.150 / 0.090)
    assert experiment.timing_spread(SimpleNamespace(runs={"sgd": runs["sgd"]}, seconds_per_step=seconds)) == 1.0


def test_edge_of_grid_and_summary_file(tmp_path):
    assert experiment.edge_of_grid({"sgd": max(evaluate.LR_GRID), "adam": 0.01}) == ["sgd"]
    info = {"versions": {"l2l": "0"}, "commit": "abc", "hardware": {"cpus": 2}}
    experiment.write_summary(str(tmp_path), "t", "smoke", {"a": 1}, {"base": {}}, 1.5, info, extra=3)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["commit"] == "abc" and summary["panels"] == {"base": {}} and summary["extra"] == 3 and summary["profile"] == "smoke"
    assert "meta_epochs" not in summary
    # Every learned optimiser's budget, and its share of the DeepMind code's 10,000 epochs.
    experiment.write_summary(str(tmp_path), "t", "smoke", {}, {}, 1.0, info, meta_epochs={"lstm": 200, "budget": [10000, 10000], "mixed": [500, 1000]})
    budgets = json.loads((tmp_path / "summary.json").read_text())["meta_epochs"]
    assert budgets == {"lstm": {"meta_epochs": 200, "of_paper": 0.02}, "budget": {"meta_epochs": 10000, "of_paper": 1.0},
                       "mixed": {"meta_epochs": [500, 1000], "of_paper": 0.1}}
    with pytest.raises(ValueError, match="'lstm' needs at least one run of >= 1 epoch"):
        experiment.meta_budgets({"lstm": []})


def test_a_summary_write_that_fails_midway_leaves_the_previous_summary_whole(tmp_path, monkeypatch):
    info = {"versions": {"l2l": "0"}, "commit": "abc", "hardware": {"cpus": 2}}
    experiment.write_summary(str(tmp_path), "t", "full", {}, {"base": {"loss": float("inf")}}, 1.5, info)
    before = (tmp_path / "summary.json").read_text()

    def dies_midway(value, f, **kwargs):
        f.write('{"chapter": "t", "pan')
        raise KeyboardInterrupt  # a stop while the new summary is being written

    monkeypatch.setattr(json, "dump", dies_midway)
    with pytest.raises(KeyboardInterrupt):
        experiment.write_summary(str(tmp_path), "t", "full", {}, {"base": {}}, 2.5, info)
    assert (tmp_path / "summary.json").read_text() == before and json.loads(before)["panels"]["base"]["loss"] == float("inf")


def test_validation_jitter_is_the_mean_step_of_the_second_half():
    import pandas as pd

    history = pd.DataFrame({"valid_loss": [9.0, 9.0, 1.0, 3.0, 2.0, 2.5]})
    run = type("Run", (), {"history": history})()
    assert experiment.validation_jitter([run]) == pytest.approx(np.mean([1.0, 0.5]))


def test_verdict_html_keeps_bold_and_escapes_the_rest():
    assert experiment.verdict_html("the LSTM **loses** to NAG (lr < 1) & **ADAM**") == (
        "the LSTM <strong>loses</strong> to NAG (lr &lt; 1) &amp; <strong>ADAM</strong>"
    )


def test_keras_runs_enter_the_chapter_layer_as_a_panel():
    from l2l import keras_training

    rng = np.random.default_rng(0)
    runs = {"lstm": {"curves": 1.0 + rng.random((3, 1, 5)), "seconds": 0.02, "accuracy": [0.8, 0.9, 0.85], "floats_per_parameter": 80.0},
            "adam": {"curves": rng.random((3, 1, 5)), "seconds": 0.01, "accuracy": [0.95, 0.96, 0.97], "floats_per_parameter": 2.0}}
    result = keras_training.panel_result("cnn", "t", runs, {"adam": 0.001}, 5, n_boot=200)
    lstm = result.entries["lstm"]
    assert lstm["loss"]["5"]["mean"] == pytest.approx(runs["lstm"]["curves"][:, 0, 4].mean()) and lstm["ms_per_step"] == pytest.approx(20.0)
    assert lstm["accuracy"]["5"]["mean"] == pytest.approx(0.85) and lstm["floats_per_parameter"] == 80.0
    assert "**loses to** it" in experiment.verdict(result, 5, "seeds", n_boot=200)  # every LSTM loss is above every Adam loss



def test_keras_runs_pair_by_seed_on_the_mean_of_their_last_steps():
    from l2l import keras_training

    rng = np.random.default_rng(3)
    runs = {"lstm": {"curves": 1.0 + rng.random((3, 1, 8)), "seconds": 0.02, "accuracy": [0.8, 0.85, 0.9], "floats_per_parameter": 80.0},
            "adam": {"curves": rng.random((3, 1, 8)), "seconds": 0.01, "accuracy": [0.95, 0.96, 0.97], "floats_per_parameter": 2.0}}
    result, verdicts, endpoint = keras_training.fit_panel("cnn", "t", runs, {"adam": 0.001}, 8, last=3, n_boot=200)
    np.testing.assert_allclose(endpoint["lstm"][:, 0], runs["lstm"]["curves"][:, 0, -3:].mean(axis=-1))
    assert set(verdicts) == {"lstm"} and verdicts["lstm"] == stats.compare_runs(endpoint["lstm"], endpoint["adam"])
    assert verdicts["lstm"]["wins"] == 0 and result.entries["lstm"]["last3_mean"]["runs"] == 3  # every LSTM loss is above every Adam loss
    assert result.entries["adam"]["trajectory_mean"]["8"]["mean"] == pytest.approx(runs["adam"]["curves"].mean())
    table = keras_training.fit_table(runs, endpoint, 3, {"lstm": "LSTM"})
    assert list(table.optimiser) == ["LSTM", "adam"] and list(table["ms per step"]) == ["20.00", "10.00"]
    sentence = keras_training.fit_sentence(verdicts["lstm"], runs, "lstm", "adam", 3, 8, "the LSTM", "ADAM")
    assert "last 3 of 8 steps, over 3 seeds" in sentence and "lower in 0 of 3 seeds" in sentence and "85.0% against 96.0%" in sentence

def test_the_rigor_protocol_tunes_per_step_and_metric_and_reports_runs(runs, tmp_path, monkeypatch):
    _, problem, out = runs
    panel = experiment.Panel("base", "tiny", problem, problems.Quadratic(dims=3, distribution="uniform"), tune_steps=4, steps=8, report_steps=(4, 8))
    extra = {"nag": {"momentum": (0.5, 0.9)}}
    result = experiment.run_protocol(panel, {"lstm": [out[0], out[1]]}, instances=3, seeds=[0, 1, 2], tune_instances=3, baselines=("sgd", "nag"), extra=extra)
    # Tuned for every reported step on the tuning problem, exactly as evaluate.tune says.
    assert result.settings == evaluate.tune(panel.tuning_problem, ["sgd", "nag"], (4, 8), 3, extra=extra)[0]
    lstm = result.entries["lstm"]
    assert lstm["loss"]["8"]["runs"] == 3 and lstm["trajectory_mean"]["4"]["runs"] == 3 and lstm["lr"] is None
    np.testing.assert_allclose(lstm["trajectory_mean"]["4"]["mean"], result.curves["lstm"][:, :, 1:5].mean())
    # Each baseline's number at a step and metric comes from its run tuned for that step and metric.
    for s in (4, 8):
        for o, key in [("final", "loss"), ("mean", "trajectory_mean")]:
            run = result.runs["nag"][s][o]
            assert run.startswith("nag@")
            step, objective = int(run[4:].split(":")[0]), run.split(":")[1]
            assert result.settings[step][objective]["nag"] == result.settings[s][o]["nag"]  # the run shares the setting
            expected = experiment.metric_values(result.curves[run], s, o).mean()
            np.testing.assert_allclose(result.entries["nag"][key][str(s)]["mean"], expected)
    v = result.verdicts[8]["final"]
    assert v["best"] in ("sgd", "nag") and 0 <= v["wins"] <= v["runs"] == 3 and v["learned"] == "lstm"
    sentence = experiment.protocol_sentence(result, 8, "final", "quadratics")
    assert "training loss at step 8, over 3 runs" in sentence and f"in {v['wins']} of 3 runs" in sentence
    named = experiment.protocol_sentence(result, 8, "final", "quadratics", who="the combination")
    assert named == sentence.replace("the LSTM", "the combination") and "LSTM" not in named
    # Equal wall-clock time: each baseline is read at the step it reaches in the LSTM's time, capped at the panel's end.
    t = result.verdicts[4]["time"]
    ratio = result.seconds_per_step["lstm"] / result.seconds_per_step[result.runs[t["best"]][4]["final"]]
    assert t["step"] == min(8, int(4 * ratio)) and t["capped"] == (4 * ratio > 8)
    assert "heldout" not in result.verdicts[4]  # quadratics have no held-out data
    table = experiment.protocol_table(result)
    assert table.columns[0] == "optimiser" and "mean loss, steps 1-8" in table.columns and list(table.runs) == [3, 3, 3]
    assert experiment.protocol_verdicts(result).count("\n- ") == 2 * 3 - 1  # 2 steps x (final, mean, time)
    thin = experiment.protocol_curves_frame({"base": result}, [0, 1, 2], dense_until=4, sparse_points=3)
    assert sorted(set(thin.step)) == [0, 1, 2, 3, 4, 5, 8] and len(experiment.protocol_curves_frame({"base": result}, [0, 1, 2]).step.unique()) == 9
    # Panels of different run counts (the beyond chapter's ablation against its other panels) each label their own runs.
    fewer = result._replace(curves={name: c[:2] for name, c in result.curves.items()})
    both = experiment.protocol_curves_frame({"base": result, "fewer": fewer}, {"base": [0, 1, 2], "fewer": [0, 1]})
    assert sorted(set(both[both.panel == "fewer"].seed)) == [0, 1] and sorted(set(both[both.panel == "base"].seed)) == [0, 1, 2]
    with pytest.raises(ValueError, match="has 2 runs .* but 3 seeds"):
        experiment.protocol_curves_frame({"base": result, "fewer": fewer}, [0, 1, 2])
    bands = stats.run_bands(experiment.protocol_curves(result, 8), range(9))
    np.testing.assert_allclose(bands[bands.optimiser == "lstm"]["mean"], result.curves["lstm"].mean(axis=(0, 1)), rtol=1e-6)
    # Against a named baseline rather than the best: its own run tuned for that step and metric, paired by run.
    against = experiment.versus(result, "lstm", "sgd", 4, "mean")
    ours = result.curves["lstm"][:, :, 1:5].mean(axis=(1, 2))
    theirs = result.curves[result.runs["sgd"][4]["mean"]][:, :, 1:5].mean(axis=(1, 2))
    assert against["best"] == "sgd" and against["mean"] == pytest.approx(float(np.mean(ours - theirs)), rel=1e-5)
    assert against["wins"] == int(np.sum(ours < theirs))
    if v["best"] in ("sgd", "nag"):  # the best baseline's comparison is the verdict's
        assert experiment.versus(result, "lstm", v["best"], 8, "final")["mean"] == pytest.approx(v["mean"])
    at4 = experiment.step_summary(result, 4)
    assert at4["verdicts"] == {"4": result.verdicts[4]} and at4["optimisers"]["nag"]["loss"] == {"4": result.entries["nag"]["loss"]["4"]}
    assert at4["optimisers"]["nag"]["ms_per_step"] == result.entries["nag"]["ms_per_step"]
    # As a chapter saves and glues it: curves.csv and tuning.csv, a table and the verdicts per panel, a verdict twice (page and introduction).
    monkeypatch.delenv("L2L_THREADS", raising=False)  # TF is running already: a thread limit could no longer apply
    chapter = experiment.Chapter("t", types.SimpleNamespace(results_dir=str(tmp_path)))
    chapter.save_protocols({"base": result}, [0, 1, 2], dense_until=4)
    saved = pd.read_csv(tmp_path / "curves.csv")
    assert len(saved) == len(experiment.protocol_curves_frame({"base": result}, [0, 1, 2], dense_until=4)) and set(saved.panel) == {"base"}
    assert set(pd.read_csv(tmp_path / "tuning.csv").optimiser) >= {"sgd", "nag"}
    glued = {}
    chapter.glue_protocols({"base": result}, "quadratics", glue=lambda name, value, display: glued.setdefault(name, value))
    assert glued["table_base"].data == experiment.protocol_table(result).to_markdown(index=False)
    assert glued["verdicts_base"].data == experiment.protocol_verdicts(result, "quadratics")
    chapter.glue_verdict("verdict_x", sentence, glue=lambda name, value, display: glued.setdefault(name, value))
    assert glued["verdict_x"].data == sentence and glued["verdict_x_html"].data == experiment.verdict_html(sentence)


def test_a_transferred_learned_optimiser_gets_its_multiplier_tuned_per_run(runs):
    _, problem, _ = runs
    fixed = [type("Fixed", (), {"optimizer": lambda self, problem=None, lr=lr: optimizers.sgd(lr)})() for lr in (0.03, 0.003)]
    panel = experiment.Panel("q", "tiny", problem, problem, tune_steps=4, steps=6, report_steps=(4, 6))
    result = experiment.run_protocol(panel, {"lstm": fixed}, instances=3, seeds=[0, 1], tune_instances=3, baselines=("sgd",), extra={}, tune_learned=True)
    # Each run's multiplier is what tuning that run alone gives.
    for k, run in enumerate(fixed):
        make = lambda learning_rate, run=run: optimizers.scaled(run.optimizer(), learning_rate)
        alone = evaluate.tune(problem, ["learned"], (4, 6), 3, grid=evaluate.MULTIPLIER_GRID, extra={}, makers={"learned": make})[0]
        assert result.multipliers["lstm"][6]["final"][k] == alone[6]["final"]["learned"]["learning_rate"]
    assert result.multipliers["lstm"][6]["final"][1] > result.multipliers["lstm"][6]["final"][0]  # the timid run is scaled up more
    tuned = result.entries["lstm_tuned"]
    assert tuned["lr"] is None and tuned["multiplier"]["6"]["final"] == result.multipliers["lstm"][6]["final"]
    assert result.verdicts[6]["final"]["learned"] == "lstm_tuned" and result.entries["lstm"]["loss"]["6"]["runs"] == 2
    assert "the LSTM (its step multiplier tuned) minus" in experiment.protocol_sentence(result, 6, "final", "quadratics")
    assert ", the combination (its step multiplier tuned) minus" in experiment.protocol_sentence(result, 6, "final", "quadratics", learner="the combination")
    frame = experiment.protocol_tuning_frame({"q": result})
    assert set(frame.optimiser) == {"sgd", "lstm_tuned"}



def test_panels_sharing_a_test_problem_are_views_of_one_evaluation(runs):
    _, problem, _ = runs
    fixed = lambda lr: type("Fixed", (), {"optimizer": lambda self, problem=None: optimizers.sgd(lr)})()
    panel = experiment.Panel("q", "tiny", problem, problem, tune_steps=4, steps=6, report_steps=(4, 6))
    learned = {"lstm": [fixed(0.03), fixed(0.02)], "lstm_one": [fixed(0.003), fixed(0.004)]}
    args = dict(instances=3, seeds=[0, 1], tune_instances=3, baselines=("sgd",), extra={})
    result = experiment.run_protocol(panel, learned, **args, tune_learned=["lstm_one"])
    assert set(result.multipliers) == {"lstm_one"} and "lstm_tuned" not in result.entries and "lstm_one_tuned" in result.entries
    # The view of the learned optimiser the panel was run for is the panel itself.
    same = experiment.protocol_view(result, "lstm")
    assert same.verdicts == result.verdicts and set(same.entries) == {"lstm", "sgd"}
    # Another learned optimiser's view: its own (tuned) verdicts against the same baseline runs, numbers unchanged.
    one = experiment.protocol_view(result, "lstm_one", name="one", title="one LSTM", others=("lstm",))
    assert one.panel.name == "one" and list(one.entries) == ["lstm_one", "lstm_one_tuned", "lstm", "sgd"]
    assert one.entries["sgd"] == result.entries["sgd"] and one.verdicts[6]["final"]["learned"] == "lstm_one_tuned"
    ours = experiment.metric_values(result.curves[result.runs["lstm_one_tuned"][6]["final"]], 6, "final")
    theirs = experiment.metric_values(result.curves[result.runs["sgd"][6]["final"]], 6, "final")
    assert one.verdicts[6]["final"] == {"learned": "lstm_one_tuned", "best": "sgd", "chosen_on": "tuning", **stats.compare_runs(ours, theirs)}
    assert set(one.curves) == {r for by_s in one.runs.values() for by_o in by_s.values() for r in by_o.values()}
    assert "one LSTM for all parameters, multiplier tuned" in list(experiment.protocol_table(one).optimiser)
    with pytest.raises(ValueError, match=r"\['lstm_two'\] are not learned optimisers"):
        experiment.protocol_view(result, "lstm_two")
    with pytest.raises(ValueError, match="tune_learned names \\['lstm_x'\\]"):
        experiment.run_protocol(panel, learned, **args, tune_learned=["lstm_x"])


class _Counted:
    """A learned run of fixed rate that records each optimiser it makes."""

    def __init__(self, lr, calls):
        self.lr, self.calls = lr, calls

    def optimizer(self, problem=None):
        self.calls.append(self.lr)
        return optimizers.sgd(self.lr)


def test_multipliers_are_tuned_per_run_and_a_stopped_tuning_keeps_the_runs_it_finished(runs, tmp_path):
    _, problem, _ = runs
    calls = []
    learned = [_Counted(0.03, calls), _Counted(0.003, calls)]
    args = dict(steps=(4, 6), instances=3, grid=(0.5, 1.0, 2.0))
    fresh, fresh_s = experiment.tune_multipliers(problem, learned, **args)
    cache = str(tmp_path / "lstm-multipliers-tuning.json")
    assert experiment.tune_multipliers(problem, learned, **args, cache=cache)[0] == fresh and fresh_s > 0
    saved = json.loads(open(cache).read())
    del saved["1"], saved["seconds"]["1"]  # as if stopped while tuning the second run
    open(cache, "w").write(json.dumps(saved))
    calls.clear()
    resumed, resumed_s = experiment.tune_multipliers(problem, learned, **args, cache=cache)
    assert resumed == fresh
    assert set(calls) == {0.003}  # only the unfinished run was tuned again
    # The time reported is the finished run's, as kept, plus the second run's, measured now.
    again = json.loads(open(cache).read())["seconds"]
    assert again["0"] == saved["seconds"]["0"] and resumed_s == again["0"] + again["1"]
    # A file kept without times (an older version's) gives the same multipliers and an unknown time, not a short one.
    untimed = {k: v for k, v in json.loads(open(cache).read()).items() if k != "seconds"}
    open(cache, "w").write(json.dumps(untimed))
    calls.clear()
    kept, kept_s = experiment.tune_multipliers(problem, learned, **args, cache=cache)
    assert kept == fresh and not calls and np.isnan(kept_s)
    with pytest.raises(ValueError, match=r"runs \[2\] asked for, of 2 runs"):
        experiment.tune_multipliers(problem, learned, **args, used=[0, 2])


def test_a_learned_optimiser_with_fewer_runs_than_seeds_has_each_run_tuned_once(runs):
    _, problem, _ = runs
    calls, lines = [], []
    panel = experiment.Panel("q", "tiny", problem, problem, tune_steps=4, steps=6, report_steps=(4, 6))
    learned = {"lstm": [_Counted(0.03, calls), _Counted(0.02, calls), _Counted(0.01, calls)], "lstm_one": [_Counted(0.003, calls)]}
    # Seeds 0-2 use runs 0-2 of "lstm" and run 0 of "lstm_one" three times (seed s uses run s mod n).
    result = experiment.run_protocol(panel, learned, instances=3, seeds=[0, 1, 2], tune_instances=3, baselines=("sgd",), extra={},
                                     tune_learned=["lstm_one"], log=lines.append)
    assert len(result.multipliers["lstm_one"][6]["final"]) == 1 and result.entries["lstm_one_tuned"]["loss"]["6"]["runs"] == 3
    assert any("tuning the step multiplier of 1 of 1 runs of lstm_one" in line for line in lines)


def test_another_chapters_weights_files_stand_in_for_its_runs(runs, tmp_path):
    root, problem, out = runs
    saved = experiment.saved_runs([str(root / "lstm_seed0.weights.h5"), str(root / "lstm_seed1.weights.h5")], made_by="the test's fixture")
    grads = tf.constant([[0.5, -1.0, 2.0]])
    for k, run in enumerate(saved):
        mine, theirs = run.optimizer(problem), out[k].optimizer(problem)
        np.testing.assert_array_equal(mine.update(grads, mine.init(grads))[0].numpy(), theirs.update(grads, theirs.init(grads))[0].numpy())
        assert experiment._weights_digest(run) == experiment._weights_digest(out[k])  # the same panel cache key as the runs themselves
    with pytest.raises(FileNotFoundError, match="the MNIST chapter writes them"):
        experiment.saved_runs([str(tmp_path / "nothing.weights.h5")], made_by="the MNIST chapter")

def test_held_out_metrics_enter_the_protocol_with_their_own_verdict():
    x = np.random.default_rng(0).integers(0, 256, size=(60, 2, 2), dtype=np.uint8)
    data = problems.image_data(x, np.arange(60) % 10, "tiny")
    mlp = problems.MLP(data, hidden=(3,), batch_size=8)
    fixed = type("Fixed", (), {"optimizer": lambda self, problem=None: optimizers.sgd(0.05)})()
    panel = experiment.Panel("mlp", "tiny MLP", mlp, mlp, tune_steps=4, steps=6, report_steps=(4, 6), heldout=data)
    result = experiment.run_protocol(panel, {"lstm": [fixed]}, instances=2, seeds=[0, 1], tune_instances=2, baselines=("sgd",), extra={})
    for entry in result.entries.values():
        assert set(entry["accuracy"]) == {"4", "6"} and 0 <= entry["accuracy"]["6"]["mean"] <= 1 and entry["heldout_loss"]["6"]["runs"] == 2
    run = result.runs["sgd"][6]["final"]
    np.testing.assert_allclose(result.entries["sgd"]["heldout_loss"]["6"]["mean"], result.metrics[run][6][0].mean(), rtol=1e-6)
    assert result.verdicts[6]["heldout"]["runs"] == 2 and "held-out accuracy at step 6" in experiment.protocol_table(result).columns
    assert "held-out loss at step 6" in experiment.protocol_sentence(result, 6, "heldout", "MLPs")


def test_an_alignment_panel_measures_corner_errors_of_its_own_instances_with_their_own_verdict():
    x = np.zeros((4, 12, 12), np.uint8)
    x[:, 3:9, 4:6] = 255
    x[:, 7:9, 2:10] = 128
    align = problems.Alignment(problems.image_data(x, np.zeros(4), "bars"), image_shape=(12, 12, 1), max_rotation=10.0, max_shift=1.0)
    fixed = type("Fixed", (), {"optimizer": lambda self, problem=None: optimizers.sgd(3.0)})()
    panel = experiment.Panel("pairs", "tiny alignment", align, align, tune_steps=3, steps=5, report_steps=(3, 5), geometry=True)
    with pytest.raises(ValueError, match="not both"):
        experiment.Panel("x", "x", align, align, tune_steps=3, steps=5, report_steps=(5,), geometry=True, heldout=align.data)
    result = experiment.run_protocol(panel, {"lstm": [fixed]}, instances=3, seeds=[0, 1], tune_instances=2, baselines=("sgd",), extra={},
                                     grid=(0.3, 3.0))
    # The corner error the panel records for the learned run is the one of its parameters after 5 steps on the seed's instances.
    for seed in (0, 1):
        batch, params = rollout.fresh_instances(align, seed, 3)
        _, _, measured = evaluate.run(align, optimizers.sgd(3.0), batch, params, 5, seed, metric=lambda p, b: align.corner_error(p, b).numpy(), snapshots=(5,))
        np.testing.assert_allclose(result.metrics[result.runs["lstm"][5]["final"]][5][0][seed], measured[5], rtol=1e-5)
    entry = result.entries["lstm"]
    assert set(entry) >= {"corner_error", "success"} and "heldout_loss" not in entry and 0 <= entry["success"]["5"]["mean"] <= 1
    assert result.verdicts[5]["corner"]["runs"] == 2 and "corner error (px) at step 5" in experiment.protocol_table(result).columns
    assert "mean corner error in pixels at step 5" in experiment.protocol_sentence(result, 5, "corner", "pairs")
    plain = dataclasses.replace(panel, geometry=False)
    assert experiment.protocol_key(plain, {}, 3, [0], 2, ("sgd",), {}, "lstm", False, ()) != experiment.protocol_key(panel, {}, 3, [0], 2, ("sgd",), {}, "lstm", False, ())
    # Steps to 1 px: the measures are kept at every step; each run's median pair's first step within 1 px, from a
    # direct split run at each step, and its wall-clock at the run's seconds per step.
    run = result.runs["lstm"][5]["final"]
    assert sorted(result.metrics[run]) == [1, 2, 3, 4, 5]
    medians = []
    for seed in (0, 1):
        batch, params = rollout.fresh_instances(align, seed, 3)
        _, _, measured = evaluate.run(align, optimizers.sgd(3.0), batch, params, 5, seed, metric=lambda p, b: align.corner_error(p, b).numpy(),
                                      snapshots=(1, 2, 3, 4, 5))
        corners = np.stack([measured[t] for t in range(1, 6)], axis=-1)
        first = [next((t + 1 for t in range(5) if c[t] <= 1.0), np.inf) for c in corners]
        medians.append(np.median(first))
    reach = entry["steps_to_1px"]["5"]
    if np.all(np.isfinite(medians)):
        assert reach["mean"] == pytest.approx(np.mean(medians), rel=1e-6) and reach["runs"] == 2
        assert entry["seconds_to_1px"]["5"]["mean"] == pytest.approx(np.mean(medians) * result.seconds_per_step[run], rel=1e-6)
    else:
        assert reach["diverged"] == int(np.sum(~np.isfinite(medians)))
    assert any(c.startswith("steps to 1 px") for c in experiment.protocol_table(result).columns)


def test_first_within_is_the_first_one_based_step_at_or_under_the_threshold():
    values = np.array([[3.0, 1.0, 0.5, 2.0], [2.0, 2.0, np.nan, 1.5], [0.9, 5.0, 5.0, 5.0]])
    np.testing.assert_array_equal(stats.first_within(values, 1.0), [2.0, np.inf, 1.0])
    assert experiment.fmt_reach(stats.over_runs(np.array([3.0, np.inf])), "{:.0f}") == "not reached in 1 of 2 runs"


def test_the_budget_sentence_says_when_a_run_crosses_the_baseline_and_whether_it_goes_back():
    row = lambda m: {"final": {"mean": m, "ci95": [m - 0.01, m + 0.01], "runs": 3}, "mean": {"mean": 2 * m, "ci95": [2 * m - 0.01, 2 * m + 0.01], "runs": 3}}
    nag = row(0.35)
    curve = lambda means: {"epochs": [500, 1000, 1500, 2000], "snapshots": [row(m) for m in means], "baselines": {"nag": nag}}
    assert experiment.budget_crossing(curve([0.5, 0.3, 0.4, 0.2]), nag) == (1000, [1500])
    assert experiment.budget_crossing(curve([0.5, 0.3, 0.2, 0.1]), nag) == (1000, [])
    assert experiment.budget_crossing(curve([0.5, 0.4, 0.36, 0.35]), nag) == (None, [])  # equal to the baseline is not below it
    lines = {"final": ("NAG", "nag"), "mean": ("NAG", "nag")}
    curves = {"seed 0": curve([0.5, 0.3, 0.4, 0.2]), "seed 1": curve([0.5, 0.3, 0.2, 0.1]), "seed 2": curve([0.5, 0.4, 0.4, 0.4])}
    sentence = experiment.budget_sentence(curves, 100, 2000, lines)
    assert "the run with seed 0 goes below it at epoch 1000 and back above it at epoch 1500;" in sentence
    assert "the run with seed 1 is below it from epoch 1000 on;" in sentence and "the run with seed 2 stays above it at every snapshot." in sentence
    assert sentence.endswith("The snapshots reach the full 2000 epochs.")
    assert experiment.budget_sentence(curves, 100, 10000, lines).endswith("The snapshots reach epoch 2000 of 10000 so far.")


def test_the_budget_curve_evaluates_every_snapshot_on_the_same_instances(tmp_path):
    problem = problems.Quadratic(dims=3)
    trainer = meta.MetaTrainer(problem, TINY_LSTM, meta.MetaConfig(epochs=4, batch=3, horizon=6, unroll=3, valid_every=2, valid_instances=3,
                                                                   snapshot_every=2), checkpoint_root=str(tmp_path))
    trainer.run(log=QUIET)
    panel = experiment.Panel("budget", "t", problem, problem, tune_steps=5, steps=5, report_steps=(5,))
    assert meta.snapshots_in(trainer.checkpoint_dir) == trainer.snapshots()
    curve = experiment.budget_curve(trainer.snapshots(), TINY_LSTM, panel, instances=4, seeds=[0, 1], step=5, baselines={"sgd": lambda s: optimizers.sgd(0.01)})
    assert curve["epochs"] == [2, 4] and curve["snapshots"][0]["final"]["runs"] == 2 and curve["baselines"]["sgd"]["mean"]["runs"] == 2
    # The epoch-4 snapshot is the run's last weights: its row is what they do.
    last = trainer.result().optimizer()
    direct = evaluate.evaluate(problem, {"last": lambda s: last}, 5, 4, [0, 1]).curves["last"]
    assert curve["snapshots"][1]["final"]["mean"] == pytest.approx(direct[:, :, 5].mean(), rel=1e-6)
    # As the chapter shows it: table, sentence (the latest snapshot, no selection on the test panel), figure, summary panel.
    curves = {"seed 0, no clipping": {"key": trainer.key, "epochs_trained": 4, **curve}}
    lines = {"final": ("SGD at 0.01", "sgd"), "mean": ("SGD at 0.01", "sgd")}
    table = experiment.budget_table(curves)
    assert list(table.epoch) == [2, 4] and table["loss at the step"][1] == experiment.fmt_interval(curve["snapshots"][1]["final"])
    sentence = experiment.budget_sentence(curves, 5, 10, lines)
    assert "Over 2 test seeds" in sentence and "the run with seed 0, no clipping reaches, at epoch 4, " + experiment.fmt_interval(curve["snapshots"][1]["final"]) in sentence
    assert "epoch 4 of 10 so far" in sentence and "No budget-run snapshot" in experiment.budget_sentence({}, 5, 10, lines)
    assert len(experiment.budget_figure(curves, 5, lines).axes) == 2
    summary = experiment.budget_summary(curves, 5, {"final": {"learning_rate": 0.01}, "mean": {"learning_rate": 0.01}}, lines)
    assert summary["epochs"] == [2, 4] and summary["optimisers"]["lstm_seed0_noclipping"]["loss"]["4"] == curve["snapshots"][1]["final"]
    assert summary["optimisers"]["sgd"]["lr"] == 0.01 and summary["optimisers"]["sgd"]["loss"]["5"] == curve["baselines"]["sgd"]["final"]
    # budget_panel: snapshots at multiples of `every` only, labelled by seed and clipping; a run without one is left out.
    budget = [(trainer.key, trainer.snapshots(), 4), ("other", {}, 0)]
    panel_curves = experiment.budget_panel(budget, [0.0, 700.0], 4, TINY_LSTM, panel, 4, [0, 1], 5, baselines={"sgd": lambda s: optimizers.sgd(0.01)})
    assert list(panel_curves) == ["seed 0, no clipping"] and panel_curves["seed 0, no clipping"]["epochs"] == [4]
    assert panel_curves["seed 0, no clipping"]["snapshots"][0] == curve["snapshots"][1] and panel_curves["seed 0, no clipping"]["key"] == trainer.key
    assert experiment.budget_label(1, 700.0) == "seed 1, clip 700"
    with pytest.raises(ValueError, match="one clip norm per run"):
        experiment.budget_panel(budget, [0.0], 4, TINY_LSTM, panel, 4, [0, 1], 5)


def test_selection_noise_is_the_standard_error_of_the_signal_over_validation_problems(runs):
    _, problem, out = runs
    table = experiment.selection_noise(out, problem, instances=5, horizon=6)
    assert list(table.seed) == [0, 1] and (table.stderr > 0).all() and (table.signal > 0).all()
    # Five problems' spread, divided by sqrt(5): recomputed by hand for run 0.
    from l2l.rollout import VALID_SEED
    curves = evaluate.evaluate(problem, {"k": lambda s: out[0].optimizer(problem)}, 6, 5, [0], offset=VALID_SEED + 7919).curves["k"]
    per = curves[0, :, 1:7].mean(axis=1)
    assert table.stderr[0] == pytest.approx(per.std(ddof=1) / np.sqrt(5), rel=1e-6)


def test_a_diverged_baseline_reads_as_diverged_in_tables_and_sentences():
    curves = np.ones((2, 3, 5))
    curves[0, 1, 3:] = np.nan
    assert np.isinf(experiment.metric_values(curves, 4, "final")[0, 1]) and np.isinf(experiment.metric_values(curves, 4, "mean")[0, 1])
    assert experiment.fmt_interval(stats.over_runs(experiment.metric_values(curves, 4, "final"))) == "diverged in 1 of 2 runs"


def test_a_finished_panel_is_cached_under_its_key_and_reused(runs, tmp_path):
    _, problem, out = runs
    x = np.random.default_rng(0).integers(0, 256, size=(60, 2, 2), dtype=np.uint8)
    data = problems.image_data(x, np.arange(60) % 10, "tiny")
    mlp = problems.MLP(data, hidden=(3,), batch_size=8)
    panel = experiment.Panel("mlp", "tiny MLP", mlp, mlp, tune_steps=4, steps=6, report_steps=(4, 6), heldout=data)
    mlp_runs = experiment.meta_train_runs(mlp, TINY_LSTM, [tiny_config(0)], str(tmp_path / "ckpt"), str(tmp_path), "lstm", log=QUIET)
    args = dict(instances=2, seeds=[0, 1], tune_instances=2, baselines=("sgd",), extra={})
    lines = []
    first = experiment.run_protocol(panel, {"lstm": list(mlp_runs.values())}, **args, tune_learned=True, log=lines.append, cache_dir=str(tmp_path / "panels"))
    again = experiment.run_protocol(panel, {"lstm": list(mlp_runs.values())}, **args, tune_learned=True, log=lines.append, cache_dir=str(tmp_path / "panels"))
    assert any("reused" in line for line in lines) and sum("tuning" in line for line in lines) == 2  # baselines and multipliers, once
    assert again.settings == first.settings and again.multipliers == first.multipliers and again.runs == first.runs
    assert again.entries == json.loads(json.dumps(first.entries)) and again.verdicts == {s: json.loads(json.dumps(v)) for s, v in first.verdicts.items()}
    for run in first.curves:
        np.testing.assert_array_equal(again.curves[run], first.curves[run])
    for run in first.metrics:
        np.testing.assert_array_equal(again.metrics[run][6][1], first.metrics[run][6][1])
    assert experiment.protocol_table(again).equals(experiment.protocol_table(first))
    # Other weights, or a learned optimiser without weights, is another key (or no caching at all).
    other = experiment.meta_train_runs(mlp, TINY_LSTM, [tiny_config(1)], str(tmp_path / "ckpt"), str(tmp_path), "lstm", log=QUIET)
    key = lambda runs: experiment.protocol_key(panel, {"lstm": runs}, 2, [0, 1], 2, ("sgd",), {}, "lstm", True, evaluate.MULTIPLIER_GRID)
    assert key(list(mlp_runs.values())) != key(list(other.values())) and key([object()]) is None
    # A panel of other weights reuses the baselines' tuning and runs, and its every number is what a panel computed afresh gives.
    lines.clear()
    reused = experiment.run_protocol(panel, {"lstm": list(other.values())}, **args, tune_learned=True, log=lines.append, cache_dir=str(tmp_path / "panels"))
    assert any("reused the baselines'" in line for line in lines) and not any("tuning sgd" in line for line in lines)
    afresh = experiment.run_protocol(panel, {"lstm": list(other.values())}, **args, tune_learned=True, log=QUIET)
    assert reused.settings == afresh.settings and reused.runs == afresh.runs and list(reused.curves) == list(afresh.curves)
    for run in afresh.curves:
        np.testing.assert_array_equal(reused.curves[run], afresh.curves[run])
        np.testing.assert_array_equal(reused.metrics[run][6][0], afresh.metrics[run][6][0])
    timeless = lambda entries: {n: {k: v for k, v in e.items() if k != "ms_per_step"} for n, e in entries.items()}  # timings are measured anew
    assert timeless(reused.entries) == timeless(afresh.entries)
    assert {s: {m: v for m, v in by.items() if m != "time"} for s, by in reused.verdicts.items()} == \
        {s: {m: v for m, v in by.items() if m != "time"} for s, by in afresh.verdicts.items()}
    # A panel killed after its tuning keeps the tuning: with only the tuning file left, the rerun tunes nothing and agrees.
    import glob
    import os

    for path in glob.glob(str(tmp_path / "panels" / "*")):
        if not path.endswith("-tuning.json"):
            os.remove(path)
    lines.clear()
    resumed = experiment.run_protocol(panel, {"lstm": list(other.values())}, **args, tune_learned=True, log=lines.append, cache_dir=str(tmp_path / "panels"))
    assert any("reused the baselines' tuning from" in line for line in lines) and not any("tuning sgd" in line for line in lines)
    assert resumed.settings == afresh.settings and timeless(resumed.entries) == timeless(afresh.entries)
    # Its tuning time is the one kept with the tuning (the baselines' and the multipliers'), not the moments the rerun took.
    assert resumed.tuning_s == reused.tuning_s > 0 and first.tuning_s > 0


def test_a_panel_that_gains_a_baseline_tunes_that_one_only_and_agrees_with_a_fresh_panel(tmp_path, monkeypatch):
    x = np.random.default_rng(0).integers(0, 256, size=(60, 2, 2), dtype=np.uint8)
    mlp = problems.MLP(problems.image_data(x, np.arange(60) % 10, "tiny"), hidden=(3,), batch_size=8)
    panel = experiment.Panel("mlp", "tiny MLP", mlp, mlp, tune_steps=4, steps=6, report_steps=(4, 6))
    runs = experiment.meta_train_runs(mlp, TINY_LSTM, [tiny_config(0)], str(tmp_path / "ckpt"), str(tmp_path), "lstm", log=QUIET)
    args = dict(instances=2, seeds=[0, 1], tune_instances=2, extra={"nag": {"momentum": (0.5, 0.9)}}, log=QUIET)
    experiment.run_protocol(panel, {"lstm": list(runs.values())}, baselines=("sgd", "nag"), **args, cache_dir=str(tmp_path / "panels"))
    tuned, real = [], evaluate._tune_one
    monkeypatch.setattr(evaluate, "_tune_one", lambda problem, name, *a: tuned.append(name) or real(problem, name, *a))
    lines = []
    grown = experiment.run_protocol(panel, {"lstm": list(runs.values())}, baselines=("sgd", "nag", "adam"), **{**args, "log": lines.append},
                                    cache_dir=str(tmp_path / "panels"))
    assert tuned == ["adam"] and any("reused the tuning of sgd, nag, kept per baseline" in line for line in lines)
    afresh = experiment.run_protocol(panel, {"lstm": list(runs.values())}, baselines=("sgd", "nag", "adam"), **args)
    assert grown.settings == afresh.settings and grown.tuning_scores == afresh.tuning_scores and grown.runs == afresh.runs
    for run in afresh.curves:
        np.testing.assert_array_equal(grown.curves[run], afresh.curves[run])



def _tiny_panel(tmp_path, data_seed, heldout=True):
    """A 6-step panel of a tiny MLP on random images, and one tiny meta-trained run of the LSTM on it."""
    x = np.random.default_rng(data_seed).integers(0, 256, size=(60, 2, 2), dtype=np.uint8)
    data = problems.image_data(x, np.arange(60) % 10, "tiny")
    mlp = problems.MLP(data, hidden=(3,), batch_size=8)
    panel = experiment.Panel("mlp", "tiny MLP", mlp, mlp, tune_steps=4, steps=6, report_steps=(4, 6), heldout=data if heldout else None)
    return panel, {"lstm": list(experiment.meta_train_runs(mlp, TINY_LSTM, [tiny_config(0)], str(tmp_path / "ckpt"), str(tmp_path), "lstm", log=QUIET).values())}


def test_a_panel_stopped_during_its_runs_keeps_the_runs_it_finished(runs, tmp_path, monkeypatch):
    panel, learned = _tiny_panel(tmp_path, 1)
    args = dict(instances=2, seeds=[0, 1], tune_instances=2, baselines=("sgd", "adam"), extra={}, tune_learned=True)
    afresh = experiment.run_protocol(panel, learned, **args, log=QUIET)
    evaluated, real = [], evaluate.evaluate

    def stops_at_the_third(problem, factories, *rest, **options):
        if len(evaluated) == 2:
            raise KeyboardInterrupt  # the session ends
        evaluated.append(list(factories))
        return real(problem, factories, *rest, **options)

    monkeypatch.setattr(evaluate, "evaluate", stops_at_the_third)
    cache = str(tmp_path / "panels")
    with pytest.raises(KeyboardInterrupt):
        experiment.run_protocol(panel, learned, **args, log=QUIET, cache_dir=cache)
    assert [len(names) for names in evaluated] == [1, 1]  # one run per call, each kept as soon as it is done
    monkeypatch.setattr(evaluate, "evaluate", lambda *a, **k: evaluated.append(list(a[1])) or real(*a, **k))
    lines = []
    resumed = experiment.run_protocol(panel, learned, **args, log=lines.append, cache_dir=cache)
    first_two = {n for names in evaluated[:2] for n in names}
    assert first_two.isdisjoint(n for names in evaluated[2:] for n in names)  # the two finished runs were not run again
    assert set(first_two) | {n for names in evaluated[2:] for n in names} == set(afresh.curves)
    assert any(f"read 2 of {len(afresh.curves)} runs evaluated before" in line for line in lines)
    for run in afresh.curves:
        np.testing.assert_array_equal(resumed.curves[run], afresh.curves[run])
        np.testing.assert_array_equal(resumed.metrics[run][6][0], afresh.metrics[run][6][0])
    timeless = lambda entries: {n: {k: v for k, v in e.items() if k != "ms_per_step"} for n, e in entries.items()}
    assert timeless(resumed.entries) == timeless(json.loads(json.dumps(afresh.entries)))
    import glob

    assert not glob.glob(cache + "/*-evaluated")  # the finished panel's files hold every run: the kept runs are gone


def test_a_second_process_shares_a_panels_evaluation_from_the_other_end_and_changes_no_number(runs, tmp_path, monkeypatch):
    panel, learned = _tiny_panel(tmp_path, 2)
    args = dict(instances=2, seeds=[0, 1], tune_instances=2, baselines=("sgd", "adam"), extra={}, tune_learned=True)
    afresh = experiment.run_protocol(panel, learned, **args, log=QUIET)
    cache = str(tmp_path / "panels")
    evaluated, real, stop_after = [], evaluate.evaluate, [None]

    def recording(problem, factories, *rest, **options):
        if stop_after[0] is not None and len(evaluated) == stop_after[0]:
            raise KeyboardInterrupt
        evaluated.append(list(factories))
        return real(problem, factories, *rest, **options)

    monkeypatch.setattr(evaluate, "evaluate", recording)
    # Before the panel's own process has tuned, a sharing process stops with what to do, having evaluated nothing.
    with pytest.raises(RuntimeError, match="tuning is not finished"):
        experiment.run_protocol(panel, learned, **args, log=QUIET, cache_dir=cache, share=True)
    assert evaluated == [] and not os.path.exists(cache)
    with pytest.raises(ValueError, match="cache_dir"):
        experiment.run_protocol(panel, learned, **args, log=QUIET, share=True)
    # The panel's own process tunes, evaluates its first setting and stops; the sharer takes two from the other end and stops.
    tuning_calls = len(evaluated)  # evaluate.tune does not go through evaluate.evaluate: nothing is recorded while tuning
    stop_after[0] = 1
    with pytest.raises(KeyboardInterrupt):
        experiment.run_protocol(panel, learned, **args, log=QUIET, cache_dir=cache)
    stop_after[0] = 3
    lines = []
    with pytest.raises(KeyboardInterrupt):
        experiment.run_protocol(panel, learned, **args, log=lines.append, cache_dir=cache, share=True)
    assert any("sharing the evaluation" in line for line in lines) and not any("tuning sgd" in line for line in lines)
    assert any("tuning the step multiplier of 0 of 1 runs" in line for line in lines)  # read back, not tuned
    first, shared = evaluated[tuning_calls], evaluated[tuning_calls + 1:]
    assert [len(names) for names in shared] == [1, 1]
    stop_after[0] = None
    resumed = experiment.run_protocol(panel, learned, **args, log=QUIET, cache_dir=cache)
    order = list(resumed.curves)  # the settings in the order the panel's own process goes through them
    mine = [names[0] for names in evaluated[tuning_calls + 3:]]
    assert first == [order[0]] and [names[0] for names in shared] == order[::-1][:2]  # from the other end
    assert sorted(first + [n[0] for n in shared] + mine) == sorted(order)  # each setting evaluated once in all
    for run in afresh.curves:
        np.testing.assert_array_equal(resumed.curves[run], afresh.curves[run])
        np.testing.assert_array_equal(resumed.metrics[run][6][0], afresh.metrics[run][6][0])
    timeless = lambda entries: {n: {k: v for k, v in e.items() if k != "ms_per_step"} for n, e in entries.items()}
    assert timeless(resumed.entries) == timeless(json.loads(json.dumps(afresh.entries)))
    import glob

    assert not glob.glob(cache + "/*-evaluated") and not glob.glob(cache + "/*.tmp")
    # Once the panel is saved, a sharing process has nothing to do.
    before, lines = len(evaluated), []
    assert experiment.run_protocol(panel, learned, **args, log=lines.append, cache_dir=cache, share=True) is None
    assert len(evaluated) == before and any("nothing to share" in line for line in lines)


def test_a_sharing_process_whose_partner_saves_the_panel_mid_run_leaves_no_kept_runs_behind(runs, tmp_path, monkeypatch):
    panel, learned = _tiny_panel(tmp_path, 3, heldout=False)
    args = dict(instances=2, seeds=[0], tune_instances=2, baselines=("sgd",), extra={}, tune_learned=False, cache_dir=str(tmp_path / "panels"))
    real, nested = evaluate.evaluate, []
    with pytest.raises(KeyboardInterrupt):  # the panel's own process: tuned, stopped at its first setting
        monkeypatch.setattr(evaluate, "evaluate", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt))
        experiment.run_protocol(panel, learned, **args, log=QUIET)

    def partner_finishes_meanwhile(*a, **k):
        if not nested:  # during the sharer's first setting, the panel's own process evaluates everything and saves the panel
            nested.append(True)
            monkeypatch.setattr(evaluate, "evaluate", real)
            nested.append(experiment.run_protocol(panel, learned, **args, log=QUIET))
        return real(*a, **k)

    monkeypatch.setattr(evaluate, "evaluate", partner_finishes_meanwhile)
    lines = []
    experiment.run_protocol(panel, learned, **args, log=lines.append, share=True)
    import glob

    assert nested[1] is not None and any("stopped sharing" in line for line in lines)
    assert not glob.glob(str(tmp_path / "panels" / "*-evaluated"))  # the sharer wrote nothing after the panel was saved


def test_two_writers_of_one_kept_run_each_write_it_whole(tmp_path, monkeypatch):
    path = str(tmp_path / "run")
    curves, real_savez = {"sgd@4:final": np.arange(6.0)}, np.savez

    def other_process_writes_meanwhile(f, **arrays):
        monkeypatch.setattr(np, "savez", real_savez)
        monkeypatch.setattr(os, "getpid", lambda: 99999)  # the other process
        experiment._write_pair(path, {"run": "sgd@4:final", "seconds_per_step": 2.0}, curves, {})
        monkeypatch.undo()
        real_savez(f, **arrays)

    monkeypatch.setattr(np, "savez", other_process_writes_meanwhile)
    experiment._write_pair(path, {"run": "sgd@4:final", "seconds_per_step": 1.0}, curves, {})
    plain, read, _ = experiment._read_pair(path)
    assert plain == {"run": "sgd@4:final", "seconds_per_step": 1.0}
    np.testing.assert_array_equal(read["sgd@4:final"], curves["sgd@4:final"])
    assert sorted(os.listdir(tmp_path)) == ["run.json", "run.npz"]


def test_a_chapter_drops_only_tfs_retracing_warning():
    import logging

    retrace = logging.LogRecord("tensorflow", logging.WARNING, "", 0, "5 out of the last 5 calls to <f> triggered tf.function retracing. Tracing is expensive", None, None)
    other = logging.LogRecord("tensorflow", logging.WARNING, "", 0, "Gradients do not exist for variables", None, None)
    assert experiment._expected_retracing(retrace) is False and experiment._expected_retracing(other) is True


def test_meta_training_seconds_reads_every_chapters_summary_shape():
    # label -> seconds per run (quadratics, MNIST, CIFAR), label -> entry (STN before it also wrote the first),
    # and a chapter that trains nothing (Keras); panels without optimisers (beyond's keras panel) are never read.
    per_run = {"meta_training_s": {"lstm": [60.0, 120.0], "lstm_one": [30.0]}, "panels": {"keras": {"models": {}}}}
    entries = {"meta_training": {"lstm": experiment.meta_training_entry({0: _Run(90.0), 1: _Run(30.0)})}, "panels": {}}
    assert experiment.meta_training_seconds(per_run) == 210.0
    assert experiment.meta_training_seconds(entries) == 120.0
    assert experiment.meta_training_seconds({"panels": {"cnn": {"optimisers": {"lstm": {"mean": 1.0}}}}}) == 0.0
    # both keys: the per-run record wins, so a run is never counted twice
    assert experiment.meta_training_seconds({**per_run, **entries}) == 210.0


class _Run:
    def __init__(self, wall_time_s):
        self.wall_time_s, self.best_epoch, self.status = wall_time_s, 0, "finished"


def test_ablation_rows_read_each_variant_against_the_best_baseline_paired_by_run():
    curves = {"lstm_a": np.array([[[1.0, 0.5, 0.2]], [[1.0, 0.6, 0.5]]]), "sgd@2:final": np.array([[[1.0, 0.7, 0.3]], [[1.0, 0.7, 0.3]]]),
              "sgd@2:mean": np.array([[[1.0, 0.6, 0.5]], [[1.0, 0.6, 0.5]]])}
    runs = {"lstm_a": {2: {"final": "lstm_a", "mean": "lstm_a"}}, "sgd": {2: {"final": "sgd@2:final", "mean": "sgd@2:mean"}}}
    entries = {"lstm_a": {"loss": {"2": {"mean": 0.3}}, "trajectory_mean": {"2": {"mean": 0.425}}}}
    verdicts = {2: {"final": {"best": "sgd"}, "mean": {"best": "sgd"}}}
    result = experiment.ProtocolResult(None, {}, {}, curves, runs, {}, {}, entries, verdicts, 0.0)
    (row,) = experiment.ablation_rows(result, ["lstm_a"], [2])
    # final: runs 0.2 and 0.5 against 0.3 and 0.3, mean difference +0.05, one run lower; trajectory mean over steps 1-2:
    # (0.35, 0.55) against (0.55, 0.55), mean difference -0.1, one run lower (a tie is not lower)
    assert row["step 2"] == "0.3 (+0.05, 1/2)" and row["mean 1-2"] == "0.425 (-0.1, 1/2)"


def test_the_beyond_targets_are_met_exactly_at_their_thresholds():
    win = lambda wins, high: {"mean": -0.1, "ci95": [-0.2, high], "wins": wins, "runs": 5}
    against = {(100, "final", "nag"): win(4, -0.01), (100, "final", "adam"): win(4, 0.0)}
    within = {"relu": {"step": 200, "lstm": 0.3, "adam_ci95": [0.2, 0.3], "met": True}}
    table = experiment.targets_table(against, within, {"mlp": {"ratio": 1.1}, "cnn": {"ratio": 1.1001}}, 6.5, [100], {"relu": "ReLU MLP"}, 20)
    assert list(table.met) == ["yes", "no", "yes", "yes", "no", "yes"]
    assert experiment.targets_table({**against, (100, "final", "nag"): win(3, -0.01)}, {}, {}, 6.6, [100], {}, 20).met.tolist() == ["no", "no", "no"]
    assert "ReLU MLP, training loss at step 200" in table.target[2]


def test_within_interval_reads_the_last_reported_step_by_default():
    entries = {"lstm_tuned": {"loss": {"100": {"mean": 0.5}, "200": {"mean": 0.31}}}, "adam": {"loss": {"100": {"ci95": [0.1, 0.2]}, "200": {"ci95": [0.25, 0.3]}}}}
    result = experiment.ProtocolResult(None, {}, {}, {}, {}, {}, {}, entries, {100: {}, 200: {}}, 0.0)
    assert experiment.within_interval(result, "lstm_tuned") == {"step": 200, "lstm": 0.31, "adam_ci95": [0.25, 0.3], "met": False}
    assert experiment.within_interval(result, "lstm_tuned", step=100)["met"] is False


def test_the_curriculum_sentence_reads_the_stage_each_run_ended_in():
    run = lambda stages: types.SimpleNamespace(history=pd.DataFrame({"epoch": range(1, len(stages) + 1), "stage": stages}))
    plain = types.SimpleNamespace(history=pd.DataFrame({"epoch": [1, 2]}))
    groups = {"lstm_curriculum": {0: run([0, 0, 1]), 1: run([0, 1, 2, 2])}, "lstm_inputs": {0: plain}}
    assert experiment.curriculum_stages(groups) == {"lstm_curriculum": [2, 3]}
    sentence = experiment.curriculum_sentence(groups, (100, 200, 500, 1000))
    assert sentence == ("The curriculum has 4 stages (100, 200, 500, 1000 training steps); the stage each run ended in, run by run: "
                        "lstm_curriculum 2, 3.")
    assert experiment.curriculum_sentence({"lstm_inputs": {0: plain}}, (100, 200)) == "No run here has a curriculum."


def _two_step_protocol():
    """Two runs, steps 1-2; the LSTM ends at (0.2, 0.5), NAG tuned per metric, ADAM worse everywhere."""
    curves = {"lstm": np.array([[[1.0, 0.5, 0.2]], [[1.0, 0.6, 0.5]]]),
              "nag@2:final": np.array([[[1.0, 0.7, 0.3]], [[1.0, 0.7, 0.3]]]), "nag@2:mean": np.array([[[1.0, 0.6, 0.5]], [[1.0, 0.6, 0.5]]]),
              "adam@2:final": np.array([[[1.0, 0.9, 0.8]], [[1.0, 0.9, 0.9]]]), "adam@2:mean": np.array([[[1.0, 0.9, 0.8]], [[1.0, 0.9, 0.9]]])}
    runs = {"lstm": {2: {"final": "lstm", "mean": "lstm"}}, **{b: {2: {m: f"{b}@2:{m}" for m in ("final", "mean")}} for b in ("nag", "adam")}}
    entries = {"lstm": {"loss": {"2": {"mean": 0.35}}}, "adam": {"loss": {"2": {"mean": 0.85}}}}
    verdicts = {2: {"final": {"best": "nag"}, "mean": {"best": "nag"}}}
    return experiment.ProtocolResult(experiment.Panel("p", "t", problems.Quadratic(dims=2), None, 2, 2, (2,)), {}, {}, curves, runs, {}, {},
                                     entries, verdicts, 0.0)


def test_versus_grid_pairs_the_learned_optimiser_with_each_baseline_at_each_step_and_metric():
    result = _two_step_protocol()
    against = experiment.versus_grid(result, "lstm", [2])
    assert list(against) == [(2, "final", "nag"), (2, "final", "adam"), (2, "mean", "nag"), (2, "mean", "adam")]
    # final: (0.2, 0.5) against NAG's (0.3, 0.3): +0.05, one run lower; against ADAM's (0.8, 0.9): -0.5, both lower
    assert against[2, "final", "nag"]["mean"] == pytest.approx(0.05) and against[2, "final", "nag"]["wins"] == 1
    assert against[2, "final", "adam"]["mean"] == pytest.approx(-0.5) and against[2, "final", "adam"]["wins"] == 2
    text = experiment.versus_sentences(against, "the combination").splitlines()
    assert len(text) == 4 and text[1].startswith("- On the training loss at step 2, the combination minus ADAM (tuned for it) is -0.5 (95% CI")
    assert text[1].endswith("lower in 2 of 2 runs.") and "mean training loss over steps 1-2" in text[2]
    panels = experiment.step_summaries(result, "mnist", against)
    assert list(panels) == ["mnist2"] and panels["mnist2"]["against"]["final/adam"] == against[2, "final", "adam"]
    assert set(panels["mnist2"]["against"]) == {"final/nag", "final/adam", "mean/nag", "mean/adam"}


def test_cost_table_turns_seconds_per_run_into_hours():
    table = experiment.cost_table({"inputs": [3600.0, 7200.0], "general": [1800.0]})
    assert table.to_dict("records") == [{"variant": "inputs", "runs": 2, "hours per run (one thread)": 1.5, "total hours": 3.0},
                                        {"variant": "general", "runs": 1, "hours per run (one thread)": 0.5, "total hours": 0.5}]
    assert experiment.cost_table({})["total hours"].sum() == 0


def test_the_best_run_is_the_lowest_validation_and_a_nan_one_ranks_last():
    run = lambda v: types.SimpleNamespace(best_valid=v)
    nan, low, high = run(float("nan")), run(0.2), run(0.3)
    assert experiment.best_run([nan, high, low]) is low and experiment.best_run([nan, high]) is high


def test_the_best_baseline_is_chosen_on_the_tuning_split_and_never_reads_test_curves(runs, tmp_path):
    """Choosing on test means (as the first panels did) hands the baselines a winner's curse against the learned optimiser."""
    scores = {100: {"final": {"nag": 0.30, "adam": 0.25, "nag_decay": 0.27}, "mean": {"nag": 0.5, "adam": 0.6, "nag_decay": 0.4}}}
    assert experiment.best_baseline(["nag", "adam", "nag_decay"], 100, "final", scores, entries=None) == ("adam", "tuning")
    assert experiment.best_baseline(["nag", "adam", "nag_decay"], 100, "mean", scores, entries=None) == ("nag_decay", "tuning")
    entries = {"nag": {"loss": {"100": {"mean": 0.1}}}, "adam": {"loss": {"100": {"mean": 0.2}}}}
    assert experiment.best_baseline(["nag", "adam"], 100, "final", None, entries) == ("nag", "test")  # a panel tuned before scores were kept
    # In a protocol: the scores are the tuning table's best per optimiser, kept in the tuning cache, and the verdicts use them,
    # the scheduled baselines tuned like the others.
    _, problem, out = runs
    panel = experiment.Panel("base", "tiny", problem, problems.Quadratic(dims=3, distribution="uniform"), tune_steps=4, steps=6, report_steps=(4,))
    extra = {**evaluate.scheduled_grids(4), "nag": {"momentum": (0.9,)}}
    baselines = ("nag", "nag_decay")
    result = experiment.run_protocol(panel, {"lstm": [out[0], out[1]]}, instances=2, seeds=[0, 1], tune_instances=2, baselines=baselines,
                                     extra=extra, grid=(0.01, 0.1), cache_dir=str(tmp_path), log=QUIET)
    settings, table = evaluate.tune(panel.tuning_problem, list(baselines), (4,), 2, grid=(0.01, 0.1), extra=extra)
    expected = evaluate.tuning_scores(table, baselines, (4,))
    for o in ("final", "mean"):
        best = min(baselines, key=lambda n: expected[4][o][n])
        assert result.verdicts[4][o]["best"] == best and result.verdicts[4][o]["chosen_on"] == "tuning"
    assert set(settings[4]["final"]["nag_decay"]) == {"learning_rate", "momentum", "decay_to", "cosine", "decay_steps"}
    (tuning_file,) = [f for f in os.listdir(tmp_path) if f.endswith("-tuning.json")]
    assert experiment._load_scores(str(tmp_path / tuning_file)) == expected


def test_a_preregistered_endpoint_is_read_against_the_baseline_best_on_the_tuning_split():
    from l2l import chapters

    rng = np.random.default_rng(5)
    runs_n, inst = 5, 3
    curves = {name: rng.uniform(0.1, 1.0, size=(runs_n, inst, 5)) for name in ("lstm", "nag", "nag_decay")}
    runs = {n: {4: {"final": n, "mean": n}} for n in curves}
    metrics = {n: {4: (rng.uniform(0.2, 0.6, size=(runs_n, inst)), rng.uniform(0.7, 0.95, size=(runs_n, inst)))} for n in curves}
    panel = experiment.Panel("p", "t", problems.Quadratic(dims=2), None, 4, 4, (4,), heldout=types.SimpleNamespace())
    # NAG lowest on test, the scheduled NAG lowest on the tuning split: the endpoint reads the scheduled one.
    curves["nag"][:, :, 4] = 0.05
    scores = {4: {"final": {"nag": 0.3, "nag_decay": 0.2}, "mean": {"nag": 0.1, "nag_decay": 0.4}}}
    result = experiment.ProtocolResult(panel, {}, {}, curves, runs, {"lstm": 2.0, "nag": 1.0, "nag_decay": 1.0}, metrics, {}, {}, 0.0, scores)
    endpoint = lambda metric, against=("nag", "nag_decay"): chapters.Endpoint("t", "e", "claim", metric, 4, "lstm", against, 10000, 5, True)
    final = experiment.read_endpoint(result, endpoint("final"))
    assert final["best"] == "nag_decay" and final["chosen_on"] == "tuning" and final["budget"].startswith("at 10,000 of")
    assert final == {**stats.endpoint_verdict(curves["lstm"][:, :, 4], curves["nag_decay"][:, :, 4]), "best": "nag_decay", "chosen_on": "tuning",
                     "metric": "final", "step": 4, "budget": final["budget"], "meta_epochs": 10000,
                     "learned_value": stats.over_runs(curves["lstm"][:, :, 4]), "baseline_value": stats.over_runs(curves["nag_decay"][:, :, 4])}
    assert experiment.read_endpoint(result, endpoint("mean"))["best"] == "nag"  # each metric its own choice
    accuracy = experiment.read_endpoint(result, endpoint("accuracy"))  # as error: lower is better throughout
    assert accuracy["mean"] == pytest.approx(np.mean((1 - metrics["lstm"][4][1]) - (1 - metrics["nag_decay"][4][1])))
    held = experiment.read_endpoint(result, endpoint("heldout_loss", ("nag",)))
    assert held["chosen_on"] == "named" and held["mean"] == pytest.approx(np.mean(metrics["lstm"][4][0] - metrics["nag"][4][0]))
    # Equal wall-clock: the LSTM's step takes twice the baseline's, so the baseline is read at step min(4, 8) = 4.
    timed = experiment.read_endpoint(result, endpoint("time"))
    assert timed["mean"] == pytest.approx(np.mean(curves["lstm"][:, :, 4] - curves["nag_decay"][:, :, 4]))
    with pytest.raises(ValueError, match=r"names \['adam'\], which panel 'p' did not run"):
        experiment.read_endpoint(result, endpoint("final", ("nag", "adam")))
    with pytest.raises(ValueError, match="kept no tuning scores"):
        experiment.read_endpoint(result._replace(tuning_scores=None), endpoint("final"))
    # In words: which endpoint, what, how many runs, the interval, k of n, the outcome and what an inconclusive one rules out.
    said = experiment.endpoint_sentence(final, endpoint("final"), "MLPs")
    assert said.startswith("Primary endpoint `e` (claim): over 5 runs of MLPs, LSTM meta-trained at 10,000 of") and "NAG, decaying rate" in said
    assert f"lower in {final['wins']} of 5 runs" in said and "chosen on the tuning split" in said
    assert f"**{final['outcome']}" in said
    for outcome, expected in (("reproduced", "**reproduced**."), ("not reproduced", "**not reproduced**."),
                              ("inconclusive", "**inconclusive at 5 runs** (the design could detect a difference of 0.123 or more).")):
        assert experiment.endpoint_sentence({**final, "outcome": outcome, "detectable": 0.1234}, endpoint("final"), "MLPs").endswith(expected)
    short = experiment.endpoint_sentence({**final, "meta_epochs": 200, "budget": "at 200 of the DeepMind code's 10,000 meta-training epochs (2%)"},
                                         endpoint("final"), "MLPs")
    assert "meta-trained at 200 of" in short and short.endswith("; not the pre-registered reading, which is at 10,000 meta-training epochs.")


def test_the_headline_table_reads_each_primary_endpoint_a_chapter_recorded_and_says_which_are_not_yet_measured():
    from l2l import chapters

    primary = [e for e in chapters.ENDPOINTS if e.primary]
    mnist = next(e for e in primary if e.chapter == "mnist")
    read = {"mean": -0.07, "ci95": [-0.09, -0.05], "runs": 5, "wins": 5, "outcome": "reproduced", "best": "nag_decay", "meta_epochs": 10000,
            "learned_value": {"mean": 0.201, "ci95": [0.19, 0.212]}, "baseline_value": {"mean": 0.271, "ci95": [0.26, 0.282]}}
    table = experiment.headline_table({"mnist": {"endpoints": {mnist.name: read}}}, chapters.ENDPOINTS, labels={"nag_decay": "NAG, decaying rate"})
    assert len(table) == len(primary) and table.shape[1] <= 7  # fits the page
    row = table[table.chapter == "mnist"].iloc[0]
    assert row.learned == "0.201 [0.19, 0.212]" and row["best tuned baseline"] == "NAG, decaying rate: 0.271 [0.26, 0.282]"
    assert row["difference (runs lower)"] == "-0.07 [-0.09, -0.05] (5 of 5)" and row.outcome == "reproduced" and row["meta-training epochs"] == "10,000"
    assert (table[table.chapter != "mnist"].outcome == "not yet measured").all()


def test_a_protocol_figure_labels_each_baseline_with_the_rate_tuned_for_the_objective_it_draws(monkeypatch):
    """It once labelled every figure with the final loss's rates, which would mislabel a mean-loss figure where they differ."""
    from l2l import plots

    result = _two_step_protocol()
    settings = {2: {"final": {b: {"learning_rate": 0.1} for b in ("nag", "adam")}, "mean": {b: {"learning_rate": 0.01} for b in ("nag", "adam")}}}
    entries = {"lstm": {}, **{b: {"settings": {"2": settings[2]["final"][b]}} for b in ("nag", "adam")}}
    result = result._replace(settings=settings, entries=entries)
    seen = []
    monkeypatch.setattr(plots, "loss_curves", lambda frame, ax=None, lrs=None, **kw: seen.append(lrs))
    experiment.protocol_figure(result, 2, objective="mean")
    experiment.protocol_figure(result, 2, objective="final")
    assert seen == [{"nag": 0.01, "adam": 0.01}, {"nag": 0.1, "adam": 0.1}]
