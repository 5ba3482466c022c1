"""Named long runs: the chapter reads a recipe's snapshots by key without opening its checkpoints."""

import dataclasses
import os

import numpy as np
import pytest

from l2l import chapters, learned_optimizer, meta, problems, recipes


def tiny(seed=0, epochs=4, clip_norm=0.0):
    config = meta.MetaConfig(seed=seed, epochs=epochs, batch=2, horizon=4, unroll=2, valid_every=2, valid_instances=2, checkpoint_every=1,
                             snapshot_every=2, clip_norm=clip_norm)
    return recipes.Recipe(problems.Quadratic(dims=3), None, learned_optimizer.LSTMConfig(hidden=4), config)


def test_snapshots_are_read_by_key_without_writing(tmp_path, monkeypatch):
    monkeypatch.setitem(recipes.RECIPES, "tiny", tiny)
    run = recipes.trainer("tiny", str(tmp_path), seed=1)
    run.run(log=lambda line: None)
    before = {p: os.path.getmtime(os.path.join(d, p)) for d, _, files in os.walk(tmp_path) for p in files}
    key, snapshots, trained = recipes.snapshots("tiny", str(tmp_path), seed=1)
    assert key == run.key and sorted(snapshots) == [2, 4] and trained == 4
    assert snapshots == run.snapshots()
    assert {p: os.path.getmtime(os.path.join(d, p)) for d, _, files in os.walk(tmp_path) for p in files} == before
    # Another option is another run: no snapshots yet, nothing trained.
    other_key, none, zero = recipes.snapshots("tiny", str(tmp_path), seed=1, clip_norm=5.0)
    assert other_key != key and none == {} and zero == 0
    with pytest.raises(ValueError, match="unknown recipe 'nope'"):
        recipes.snapshots("nope", str(tmp_path))


def test_a_chapter_reads_a_campaigns_finished_runs_without_writing_and_names_the_unfinished(tmp_path, monkeypatch):
    monkeypatch.setitem(recipes.RECIPES, "tiny", tiny)
    done = recipes.trainer("tiny", str(tmp_path), seed=0).run(log=lambda line: None)
    recipes.trainer("tiny", str(tmp_path), seed=1, epochs=2).run(log=lambda line: None)  # seed 1: half of its 4 epochs
    before = {p: os.path.getmtime(os.path.join(d, p)) for d, _, files in os.walk(tmp_path) for p in files}
    (read,) = recipes.finished_runs("tiny", [0], str(tmp_path))
    assert read.key == done.key and read.best_epoch == done.best_epoch
    assert all(np.array_equal(read.meta_params[k].numpy(), done.meta_params[k].numpy()) for k in done.meta_params)
    with pytest.raises(ValueError, match=r"seed 1 at epoch 2 of 4 \(python -m l2l.recipes train tiny --seed 1 --threads 1\)"):
        recipes.finished_runs("tiny", [0, 1], str(tmp_path))
    assert {p: os.path.getmtime(os.path.join(d, p)) for d, _, files in os.walk(tmp_path) for p in files} == before


def test_the_cifar_recipe_builds_each_learner_from_the_chapters_parameters():
    import numpy as np

    from l2l import chapters

    x = np.random.default_rng(0).integers(0, 256, size=(40, 32, 32, 3), dtype=np.uint8)
    part = problems.image_data(x, np.arange(40) % 10, "tiny")
    splits = {"meta_train": part, "valid": part}
    p = chapters.Cifar(meta_epochs=7, cifar5_labels=[0, 1, 2], cifar2_labels=[0, 1], sub_labels=[6, 7, 8])
    two, one, sub, five = (recipes.cifar(name, seed=2, params=p, splits=splits) for name in recipes.CIFAR_LEARNERS)
    # lstm_sub's control: the same 5-way ConvNets and LSTMs, on the CIFAR-5 panel's labels instead of held-out ones.
    assert five.problem.classes == sub.problem.classes == 3 and five.problem.data.name == "tiny{labels 0,1,2}"
    assert five.lstm_config == sub.lstm_config and five.meta_config == sub.meta_config and five.meta_config.snapshot_every == 100
    assert set(two.lstm_config) == {"conv", "other"} and one.lstm_config == two.lstm_config["conv"]
    assert two.meta_config.seed == 2 and two.meta_config.epochs == 7 and two.meta_config.select_on == "mean"
    assert sub.problem.classes == 3 and sub.problem.data.name == "tiny{labels 6,7,8}" and int(sub.problem.data.y.shape[0]) == 12
    assert sub.valid_problem.data.fingerprint == sub.problem.data.fingerprint  # the same images here: both parts are `part`
    assert meta.run_key(two.problem, two.lstm_config, two.meta_config, two.valid_problem) != meta.run_key(
        sub.problem, sub.lstm_config, sub.meta_config, sub.valid_problem)
    five = recipes.cifar_convnet(splits, "valid", [0, 1, 2, 3, 4])
    assert five.classes == 5 and five.data.name == "tiny{labels 0,1,2,3,4}" and recipes.cifar_convnet(splits, "valid").data is part
    with pytest.raises(ValueError, match="unknown CIFAR learner 'lstm_three'"):
        recipes.cifar("lstm_three", params=p, splits=splits)
    with pytest.raises(SystemExit, match="--learner goes with the cifar recipe"):
        recipes.main(["status", "mnist_paper", "--learner", "lstm"])


def test_the_beyond_recipe_adds_each_technique_alone_and_all_of_them_together():
    import numpy as np

    from l2l import chapters, evaluate

    part = lambda name: problems.image_data(np.random.default_rng(len(name)).integers(0, 256, size=(60, 28, 28), dtype=np.uint8), np.arange(60) % 10, name)
    splits = {name: part(name) for name in ("meta_train", "valid", "fashion_meta_train", "fashion_tune")}
    p = chapters.Beyond(meta_epochs=7, general_epochs=9, horizon=10, unroll=5, curriculum=[10, 20], teacher_instances=2, report_steps=[10, 20],
                        relu_steps=20, cnn_steps=20)
    built = {v: recipes.beyond(v, seed=1, params=p, splits=splits) for v in recipes.BEYOND_VARIANTS}
    paper = built["paper"]
    assert paper.lstm_config == learned_optimizer.LSTMConfig(preprocess_p=10.0, scale=0.1) and isinstance(paper.problem, problems.MLP)
    assert paper.meta_config.seed == 1 and paper.meta_config.epochs == 7 and paper.meta_config.horizon == 10 and paper.meta_config.select_on == "mean"
    assert built["inputs"].lstm_config.features == "adam" and built["inputs"].lstm_config.output == "tanh" and built["inputs"].meta_config == paper.meta_config
    assert isinstance(built["rescale"].problem, problems.Rescaled) and built["rescale"].problem.log_range == p.log_range
    assert built["rescale"].valid_problem.describe() == paper.valid_problem.describe()  # selection on the task itself
    assert built["curriculum"].meta_config.curriculum == (10, 20) and built["curriculum"].meta_config.horizon == 20
    # The teacher and the nominal step: ADAM tuned for the mean loss over the horizon on the selection MLPs.
    tuned = evaluate.tune(problems.MLP(splits["valid"]), ["adam"], 10, 2, extra={})[0]["mean"]["adam"]["learning_rate"]
    assert built["imitation"].meta_config.teacher_lr == tuned and built["imitation"].meta_config.imitation == p.imitation
    assert built["nominal"].lstm_config.nominal == "adam" and built["nominal"].lstm_config.nominal_lr == tuned
    combined = built["combined"]
    assert combined.lstm_config.features == "adam" and combined.lstm_config.nominal == "adam" and combined.meta_config.imitation == p.imitation
    assert combined.meta_config.curriculum == (10, 20) and isinstance(combined.problem, problems.Rescaled)
    general = built["general"]
    assert isinstance(general.problem, problems.Mixture) and general.meta_config.epochs == 9
    on_fashion = evaluate.tune(problems.MLP(splits["fashion_tune"]), ["adam"], 10, 2, extra={})[0]["mean"]["adam"]["learning_rate"]
    assert general.meta_config.teacher_lr == general.lstm_config.nominal_lr == on_fashion  # its teacher is tuned without MNIST too
    trained_on = {t.describe().get("inner", t.describe()).get("data", {}).get("name") for t in general.problem.tasks}
    assert trained_on == {"fashion_meta_train", None}  # Fashion-MNIST MLPs and quadratics: no MNIST image
    keys = {meta.run_key(r.problem, r.lstm_config, r.meta_config, r.valid_problem) for r in built.values()}
    assert len(keys) == len(recipes.BEYOND_VARIANTS)
    with pytest.raises(ValueError, match="unknown beyond variant 'adam'"):
        recipes.beyond("adam", params=p, splits=splits)
    with pytest.raises(SystemExit, match="--variant goes with the beyond recipe"):
        recipes.main(["status", "mnist_paper", "--variant", "combined"])
    with pytest.raises(chapters.ParameterError, match="combined names techniques"):
        chapters.Beyond(combined=["inputs", "momentum"])
    with pytest.raises(chapters.ParameterError, match="curriculum must start at horizon"):
        chapters.Beyond(curriculum=[200, 1000])


def test_threads_go_through_the_variable_so_provenance_records_them(monkeypatch):
    from l2l import provenance

    applied = []
    monkeypatch.setattr(provenance, "limit_threads", lambda: applied.append(os.environ.get(provenance.THREADS_VARIABLE)))
    monkeypatch.setenv(provenance.THREADS_VARIABLE, "")  # recorded, so the value main sets is undone after the test
    monkeypatch.delenv(provenance.THREADS_VARIABLE)
    with pytest.raises(SystemExit, match="--threads must be >= 0"):
        recipes.main(["train", "mnist_paper", "--threads", "-1"])
    assert applied == []  # refused before anything is applied
    with pytest.raises(SystemExit, match="--learner goes with the cifar recipe"):  # stops after the threads, before any training
        recipes.main(["train", "mnist_paper", "--threads", "1", "--learner", "lstm"])
    assert applied == ["1"] and provenance.provenance()["hardware"]["threads"] == 1


def test_provenance_records_the_cpu_model_and_the_instruction_sets_tf_dispatches_on(tmp_path, monkeypatch):
    from l2l import provenance

    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: Test CPU 9000\nflags\t\t: fpu sse4_2 avx avx2 fma avx512f\n\n"
                    "processor\t: 1\nmodel name\t: Test CPU 9000\nflags\t\t: fpu sse4_2 avx avx2 fma avx512f\n")
    assert provenance.cpu_info(info) == {"model": "Test CPU 9000", "isa": ["sse4_2", "avx", "avx2", "fma", "avx512f"]}
    assert provenance.cpu_info(tmp_path / "missing") == {}  # not Linux: nothing recorded rather than a guess
    monkeypatch.delenv(provenance.PROVENANCE_VARIABLE, raising=False)
    monkeypatch.setattr(provenance, "cpu_info", lambda: {"model": "Test CPU 9000", "isa": ["avx2"]})
    assert provenance.provenance()["hardware"]["cpu"] == {"model": "Test CPU 9000", "isa": ["avx2"]}


def _random_splits(shape, names):
    import numpy as np

    part = lambda name: problems.image_data(np.random.default_rng(len(name)).integers(0, 256, size=(30, *shape), dtype=np.uint8), np.arange(30) % 10, name)
    return {name: part(name) for name in names}


def test_the_beyond_chapter_trains_every_variant_under_the_recipes_run_keys(monkeypatch):
    from l2l import chapters, experiment

    splits = _random_splits((28, 28), ("meta_train", "valid", "fashion_meta_train", "fashion_tune"))
    p = chapters.Beyond(ablation_seeds=2, final_seeds=3, general_seeds=1, meta_epochs=7, general_epochs=9, horizon=10, unroll=5, curriculum=[10, 20],
                        teacher_instances=2, report_steps=[10, 20], relu_steps=20, cnn_steps=20)
    assert recipes.beyond_counts(p) == {**{t: 2 for t in recipes.TECHNIQUES}, "combined": 3, "general": 1}
    calls = []
    monkeypatch.setattr(experiment, "meta_train_runs", lambda problem, lstm, configs, root, results, label, valid_problem, **about: (
        calls.append((label, [meta.run_key(problem, lstm, c, valid_problem) for c in configs], root, results, about)) or {c.seed: label for c in configs}))
    trained = recipes.beyond_runs(p, splits, "out")
    assert list(trained) == [*recipes.TECHNIQUES, "combined", "general"] and trained["combined"] == {0: "lstm_combined", 1: "lstm_combined", 2: "lstm_combined"}
    for label, keys, root, results, about in calls:
        variant = label.removeprefix("lstm_")
        made = [recipes.beyond(variant, seed=s, params=p, splits=splits) for s in range(recipes.beyond_counts(p)[variant])]
        # The keys `python -m l2l.recipes train beyond` files its runs under: the chapter reuses them.
        assert keys == [meta.run_key(r.problem, r.lstm_config, r.meta_config, r.valid_problem) for r in made]
        assert root == p.checkpoint_dir and results == "out" and about["chapter"] == "beyond" and about["trained_on"].endswith(f"; variant {variant}")
        assert about["trained_on"].startswith("a task mixture" if variant == "general" else "MNIST train[:40000]")


def test_the_beyond_panels_test_each_network_on_its_own_images_tuned_on_the_selection_images():
    from l2l import chapters

    splits = _random_splits((28, 28), ("test_train", "valid", "test_heldout"))
    cifar = _random_splits((32, 32, 3), ("test_train", "valid", "test_heldout"))
    p = chapters.Beyond(horizon=10, unroll=5, curriculum=[10, 20], report_steps=[10, 20, 40], relu_steps=30, cnn_steps=50, cifar_steps=60,
                        eval_instances=3, cnn_instances=2, cifar_instances=1)
    panels = recipes.beyond_panels(p, splits, cifar)
    assert {n: (panel.steps, panel.report_steps, k) for n, (panel, k) in panels.items()} == {
        "mnist": (40, (10, 20, 40), 3), "relu": (30, (10, 30), 3), "cnn": (50, (10, 50), 2), "cifar10": (60, (10, 60), 1)}
    for name, (panel, _) in panels.items():
        images = cifar if name == "cifar10" else splits
        assert panel.tune_steps == 10 and panel.problem.data is images["test_train"] and panel.tuning_problem.data is images["valid"]
        assert panel.heldout is images["test_heldout"]
    assert panels["relu"][0].problem.activation == "relu" and panels["mnist"][0].problem.activation == "sigmoid"
    assert panels["cnn"][0].problem.channels == (8, 16) and panels["cnn"][0].problem.image_shape == (28, 28, 1)
    assert panels["cifar10"][0].problem.image_shape == (32, 32, 3)
    x, y = recipes.keras_images(cifar, (32, 32, 3))("valid")
    assert x.shape == (30, 32, 32, 3) and list(y[:3]) == [0, 1, 2]


def test_the_beyond_splits_cut_only_the_held_out_images_and_only_when_asked(monkeypatch):
    from l2l import chapters, data

    mnist, cifar = _random_splits((28, 28), ("valid", "test_heldout")), _random_splits((32, 32, 3), ("valid", "test_heldout"))
    monkeypatch.setattr(data, "mnist_splits", lambda: mnist)
    monkeypatch.setattr(data, "cifar_splits", lambda: cifar)
    full = recipes.beyond_splits(chapters.Beyond())  # the full profile's: the very data objects, so every panel keeps its key
    assert all(full[i][k] is given[k] for i, given in enumerate((mnist, cifar)) for k in given)
    cut = recipes.beyond_splits(chapters.Beyond(heldout_examples=4))
    for i, given in enumerate((mnist, cifar)):
        assert cut[i]["valid"] is given["valid"] and cut[i]["test_heldout"].name == "test_heldout[:4]"
        np.testing.assert_array_equal(cut[i]["test_heldout"].x.numpy(), given["test_heldout"].x.numpy()[:4])
    with pytest.raises(chapters.ParameterError, match="Beyond.heldout_examples must be >= 0"):
        chapters.Beyond(heldout_examples=-1)


def test_each_beyond_panel_is_measured_with_its_own_runs_counts_and_tuning(monkeypatch):
    from l2l import chapters, experiment

    splits = _random_splits((28, 28), ("test_train", "valid", "test_heldout"))
    cifar = _random_splits((32, 32, 3), ("test_train", "valid", "test_heldout"))
    p = chapters.Beyond(ablation_seeds=2, final_seeds=3, horizon=10, unroll=5, curriculum=[10, 20], report_steps=[10, 20], relu_steps=20, cnn_steps=20,
                        cifar_steps=20, eval_instances=4, cnn_instances=3, cifar_instances=2, tune_instances=5, cnn_tune_instances=2,
                        cifar_tune_instances=1, lr_grid=[0.1, 1.0], nag_momenta=[0.9], adam_beta1=[0.9], multiplier_grid=[0.5, 1.0], panel_dir="panels")
    panels = recipes.beyond_panels(p, splits, cifar)
    runs = {v: [f"{v}{s}" for s in range(3)] for v in [*recipes.TECHNIQUES, "combined", "general"]}
    paper = ["paper0", "paper1", "paper2"]
    calls = {}
    monkeypatch.setattr(experiment, "run_protocol", lambda panel, learned, instances, seeds, tune, **options: calls.setdefault(
        panel.name, (panel, learned, instances, seeds, tune, options)))
    for name in recipes.BEYOND_PROTOCOLS:
        recipes.beyond_protocol(name, p, panels, runs, paper)
    grids = dict(grid=(0.1, 1.0), extra={"nag": {"momentum": (0.9,)}, "adam": {"beta_1": (0.9,)}}, multiplier_grid=(0.5, 1.0), cache_dir="panels", share=False)
    panel, learned, instances, seeds, tune, options = calls["ablation"]
    # The ablation: the MNIST MLP under its own name (its own cache key), the first ablation_seeds runs of every variant.
    assert panel.problem is panels["mnist"][0].problem and panel.report_steps == (10, 20)
    assert learned == {"lstm_paper": paper[:2], **{f"lstm_{t}": [f"{t}0", f"{t}1"] for t in recipes.TECHNIQUES}, "lstm_combined": ["combined0", "combined1"]}
    assert (instances, seeds, tune, options) == (4, [0, 1], 5, {"learned_name": "lstm_combined", **grids})
    three = {"lstm": runs["combined"], "lstm_paper": paper, "lstm_general": runs["general"]}
    expected = {"mnist": (4, 5, ["lstm_general"]), "relu": (4, 5, True), "cnn": (3, 2, True), "cifar10": (2, 1, True)}
    for name, (count, tuned_on, tune_learned) in expected.items():
        panel, learned, instances, seeds, tune, options = calls[name]
        assert panel is panels[name][0] and learned == three and seeds == [0, 1, 2]
        assert (instances, tune, options) == (count, tuned_on, {"tune_learned": tune_learned, **grids}), name
    calls.clear()
    recipes.beyond_protocol("cnn", p, panels, runs, paper, share=True)  # python -m l2l.recipes panel beyond --panel cnn --share
    assert calls["cnn"][5] == {"tune_learned": True, **grids, "share": True}
    with pytest.raises(ValueError, match="unknown beyond panel 'fashion'"):
        recipes.beyond_protocol("fashion", p, panels, runs, paper)


def test_the_panel_command_rejects_a_bad_request_before_any_compute():
    with pytest.raises(SystemExit, match="panel takes the beyond recipe and --panel"):
        recipes.main(["panel", "mnist_paper"])
    with pytest.raises(SystemExit, match="panel takes the beyond recipe and --panel"):
        recipes.main(["panel", "beyond"])
    with pytest.raises(SystemExit, match="unknown profile 'tiny' for beyond"):
        recipes.main(["panel", "beyond", "--panel", "cnn", "--profile", "tiny"])
    with pytest.raises(SystemExit):  # argparse: not one of BEYOND_PROTOCOLS
        recipes.main(["panel", "beyond", "--panel", "fashion"])


def test_the_beyond_keras_panel_is_kept_under_its_weights_and_settings_and_read_back_as_computed(tmp_path, monkeypatch):
    import json
    import types

    from l2l import chapters, keras_training, provenance
    from l2l.pretrained import maintainer

    splits = _random_splits((28, 28), ("valid", "test_train", "test_heldout"))
    cifar = _random_splits((32, 32, 3), ("valid", "test_train", "test_heldout"))
    p = chapters.Beyond(final_seeds=1, calibration_steps=20, calibration_grid=[0.1, 1.0], calibration_refine=False, keras_steps=2, keras_last=1,
                        keras_adam_grid=[0.001], panel_dir=str(tmp_path / "panels"))
    config = learned_optimizer.LSTMConfig(hidden=4)
    general = lambda seed: types.SimpleNamespace(meta_params=learned_optimizer.init_meta_params(config, seed), lstm_config=config, key=f"run{seed}")
    chosen = []

    def choose(make, steps, grid, log, refine):  # the real one trains three held-out models on MNIST for `steps` each (tests/test_pretrained.py)
        chosen.append((float(make(0.5).learning_rate), steps, grid, refine))
        return 0.1, {0.1: {"worst_ratio": 1.25, "ratios": {"mnist_mlp": 1.25}}, 1.0: {"worst_ratio": float("inf"), "ratios": {"mnist_mlp": float("inf")}}}, \
            {"mnist_mlp": 2.3}

    def against(name, build, make_optimizer, images, adam_grid, seeds, steps, batch_size, last, who, short):  # tests/test_keras_optimizer.py runs the real one
        assert build is keras_training.HELD_OUT_MODELS[name] and images("valid")[0].shape[1:] == recipes.KERAS_MODELS[name]
        assert float(make_optimizer().learning_rate) == pytest.approx(0.1) and (adam_grid, seeds, batch_size, last, short) == ([0.001], 1, 128, 1, "general") and steps in (2, 3)
        ratio = 1.0 + len(images("test_train")[0]) / 100 + steps
        return {"ratio": ratio, "adam_lr": 0.001}, {"model": name, "ratio": f"{ratio:.3f}"}, f"{name}: {who} against tuned ADAM"

    monkeypatch.setattr(maintainer, "choose_multiplier", choose)
    monkeypatch.setattr(keras_training, "against_tuned_adam", against)
    lines = []
    first = recipes.beyond_keras(p, general(0), splits, cifar, log=lines.append)
    assert chosen == [(0.5, 20, (0.1, 1.0), False)]
    assert list(first["models"]) == list(recipes.KERAS_MODELS) and [row["model"] for row in first["rows"]] == list(recipes.KERAS_MODELS)
    assert first["multiplier"] == 0.1 and first["tried"][1.0]["worst_ratio"] == float("inf") and first["general_run"] == "run0"
    assert all(s.startswith(f"{m}: ") and "the general optimiser (multiplier 0.1)" in s for m, s in zip(recipes.KERAS_MODELS, first["sentences"]))
    assert first["models"]["cifar_cnn"] == {"ratio": 3.3, "adam_lr": 0.001}
    assert first["provenance"]["commit"] == provenance.provenance()["commit"] and "tensorflow" in first["provenance"]["versions"]
    (path,) = (tmp_path / "panels").glob("keras-*.json")
    # Read back, not rerun: the same numbers as computed, the multipliers tried keyed by number again.
    again = recipes.beyond_keras(p, general(0), splits, cifar, log=lines.append)
    assert len(chosen) == 1 and any("reused" in line for line in lines)
    assert json.dumps(again, sort_keys=True, default=str) == json.dumps(first, sort_keys=True, default=str) and set(again["tried"]) == {0.1, 1.0}
    # Other weights, or other settings, are another panel.
    recipes.beyond_keras(p, general(1), splits, cifar, log=lines.append)
    recipes.beyond_keras(chapters.Beyond(**{**p.as_dict(), "keras_steps": 3}), general(0), splits, cifar, log=lines.append)
    assert len(chosen) == 3 and len(list((tmp_path / "panels").glob("keras-*.json"))) == 3
    # A damaged file is said so and computed again, whole.
    path.write_text('{"multiplier": 0.1, "tri')
    lines.clear()
    mended = recipes.beyond_keras(p, general(0), splits, cifar, log=lines.append)
    assert len(chosen) == 4 and any(f"{path} is unreadable" in line for line in lines)
    assert mended["rows"] == first["rows"] and json.loads(path.read_text())["multiplier"] == 0.1
    path.write_text('{"multiplier": 0.1}')  # JSON, but not a panel's
    recipes.beyond_keras(p, general(0), splits, cifar, log=lines.append)
    assert len(chosen) == 5 and "tried" in json.loads(path.read_text())
    path.write_text(json.dumps({k: v for k, v in json.loads(path.read_text()).items() if k != "provenance"}))  # a panel that cannot say what computed it
    recipes.beyond_keras(p, general(0), splits, cifar, log=lines.append)
    assert len(chosen) == 6 and "provenance" in json.loads(path.read_text())


def test_the_panel_command_takes_the_keras_panel_but_not_shared():
    with pytest.raises(SystemExit, match="--share goes with a protocol panel"):
        recipes.main(["panel", "beyond", "--panel", "keras", "--share"])
    with pytest.raises(SystemExit, match="--share goes with the panel command"):
        recipes.main(["status", "beyond", "--variant", "combined", "--share"])


@pytest.mark.skipif(not os.path.isdir(os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")), reason="needs the MNIST mirror")
def test_the_budget_campaign_runs_are_keyed_replicates_and_the_committed_budget_runs_keep_their_keys(monkeypatch):
    from conftest import SHARED_DATA

    from l2l import data

    monkeypatch.setenv(data.DATA_DIR_VARIABLE, SHARED_DATA)
    splits = data.mnist_splits()
    key = lambda recipe: meta.run_key(recipe.problem, recipe.lstm_config, recipe.meta_config, recipe.valid_problem)
    committed = set(os.listdir(os.path.join(os.path.dirname(__file__), "..", recipes.BUDGET_ROOT)))
    # The chapter's two counter-seeded runs (seed 0 unclipped, seed 1 clipped at 700) are still found by their keys.
    assert {key(recipes.mnist_paper(0, clip_norm=0.0, splits=splits)), key(recipes.mnist_paper(1, clip_norm=700.0, splits=splits))} <= committed
    campaign = [recipes.mnist_budget(seed, splits=splits) for seed in range(5)]
    assert len({key(r) for r in campaign}) == 5 and {key(r) for r in campaign} <= committed
    # The chapter asks for the campaign's runs with its own budget_horizon and budget_valid_instances: at their defaults, the same keys.
    p = chapters.Mnist()
    assert key(recipes.mnist_budget(4, splits=splits, horizon=p.budget_horizon, valid_instances=p.budget_valid_instances)) == key(campaign[4])
    assert all(r.meta_config.streams == "keyed" and r.meta_config.clip_norm == 0.0 and r.meta_config.epochs == 10000 for r in campaign)
    # Apart from the streams, a replicate is the paper's recipe as the chapter's first budget run has it.
    paper = recipes.mnist_paper(0, splits=splits).meta_config
    assert campaign[0].meta_config == dataclasses.replace(paper, streams="keyed")
    with pytest.raises(SystemExit, match="--clip-norm does not go with mnist_budget"):
        recipes.main(["train", "mnist_budget", "--clip-norm", "1.0"])


def test_status_is_read_only_and_names_a_damaged_newest_checkpoint(tmp_path, monkeypatch, capsys):
    """It once opened a MetaTrainer: it created the folder of a run that did not exist, and said nothing of damage."""
    monkeypatch.setitem(recipes.RECIPES, "tiny", tiny)
    assert recipes.main(["status", "tiny", "--seed", "3", "--root", str(tmp_path)]) == 0
    assert "not started" in capsys.readouterr().out and list(tmp_path.iterdir()) == []
    run = recipes.trainer("tiny", str(tmp_path), seed=3)
    run.run(log=lambda line: None)
    newest = os.path.join(run.checkpoint_dir, "ckpt-4.data-00000-of-00001")
    with open(newest, "r+b") as f:  # a flipped byte in the newest checkpoint's tensors
        f.seek(os.path.getsize(newest) // 2)
        byte = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([byte[0] ^ 0xFF]))
    before = {os.path.join(d, p): os.path.getmtime(os.path.join(d, p)) for d, _, files in os.walk(tmp_path) for p in files}
    assert recipes.main(["status", "tiny", "--seed", "3", "--root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "3/4 epochs in the newest readable checkpoint (ckpt-3); run.json records 4 epochs" in out, out
    assert "DAMAGED newest checkpoint ckpt-4" in out and "training resumes from ckpt-3" in out and "snapshots [2, 4]" in out
    assert {os.path.join(d, p): os.path.getmtime(os.path.join(d, p)) for d, _, files in os.walk(tmp_path) for p in files} == before
    report = meta.inspect_run(run.checkpoint_dir)
    assert report["trained"] == 3 and report["history"] == 4 and report["checkpoints"][3] is None and report["checkpoints"][4]


def test_the_quadratics_recipe_builds_the_chapters_runs_so_the_chapter_finds_them_by_key():
    from l2l import chapters

    p = chapters.Quadratics(meta_epochs=10000)
    # What notebooks/quadratics.py builds (its SETTINGS and meta_config), written out here as the chapter writes it.
    chapter = {
        "paper": (problems.Quadratic(distribution=p.distribution), learned_optimizer.LSTMConfig(preprocess_p=p.preprocess_p, scale=p.scale)),
        "deepmind": (problems.Quadratic(distribution="uniform"), learned_optimizer.LSTMConfig(preprocess_p=0.0, scale=1.0)),
    }
    for setting, (problem, lstm) in chapter.items():
        config = meta.MetaConfig(seed=3, epochs=p.meta_epochs, batch=p.batch, horizon=p.horizon, unroll=p.unroll, meta_lr=p.meta_lr,
                                 clip_norm=p.clip_norm, valid_every=p.valid_every, valid_instances=p.tune_instances, select_on="mean")
        r = recipes.quadratics(setting, seed=3)
        assert r.meta_config.epochs == 10000 and r.meta_config.snapshot_every == 1000
        assert meta.run_key(r.problem, r.lstm_config, r.meta_config, r.valid_problem) == meta.run_key(problem, lstm, config)
    paper, deepmind = (recipes.quadratics(s, seed=0) for s in recipes.QUADRATIC_SETTINGS)
    assert meta.run_key(paper.problem, paper.lstm_config, paper.meta_config) != meta.run_key(deepmind.problem, deepmind.lstm_config, deepmind.meta_config)
    # Every committed campaign run is one the chapter asks for (paper and deepmind, seeds 0-4), and the first is there.
    keys = {meta.run_key(r.problem, r.lstm_config, r.meta_config, r.valid_problem): (s, k) for s in recipes.QUADRATIC_SETTINGS for k in range(5)
            for r in [recipes.quadratics(s, seed=k)]}
    committed = set(os.listdir(os.path.join(os.path.dirname(__file__), "..", recipes.QUADRATICS_ROOT)))
    assert committed <= set(keys) and {key for key, run in keys.items() if run == ("paper", 0)} <= committed
    with pytest.raises(ValueError, match="unknown quadratics setting 'adam'"):
        recipes.quadratics("adam")
    with pytest.raises(SystemExit, match="--setting goes with the quadratics recipe"):
        recipes.main(["status", "quadratics"])
    with pytest.raises(SystemExit, match="--setting goes with the quadratics recipe"):
        recipes.main(["status", "mnist_budget", "--setting", "paper"])


def test_the_mnist_budget_endpoints_are_read_from_one_protocol_with_the_scheduled_baselines_tuned(monkeypatch):
    """On tiny stand-ins: the endpoints' steps shrunk to 4 and 8, two-value grids; the real ones are the chapter's."""
    import dataclasses

    from l2l import chapters, evaluate, experiment, optimizers
    from l2l.chapters import mnist

    splits = _random_splits((28, 28), ("valid", "test_train", "test_heldout"))
    small = tuple(dataclasses.replace(e, step=4 if e.step == 100 else 8) for e in mnist.ENDPOINTS)
    monkeypatch.setattr(mnist, "ENDPOINTS", small)
    monkeypatch.setattr(evaluate, "DECAY_GRID", {"decay_to": (1.0, 0.1), "cosine": (0.0,)})
    monkeypatch.setattr(evaluate, "EXTRA_GRIDS", {"nag": {"momentum": (0.9,)}, "adam": {"beta_1": (0.9,)}})
    fixed = lambda lr: type("Fixed", (), {"optimizer": lambda self, problem=None: optimizers.sgd(lr)})()
    p = chapters.Mnist(eval_instances=2, tune_instances=2)
    result, read = mnist.budget_endpoints(p, splits, [fixed(0.5), fixed(0.3), fixed(0.4)], log=lambda line: None, grid=(0.01, 0.3))
    assert list(read) == [e.name for e in small] and result.panel.report_steps == (4, 8)
    assert set(result.settings[4]["final"]) == {"sgd", "rmsprop", "adam", "nag", "nag_decay", "adam_decay"}
    assert result.settings[8]["final"]["nag_decay"]["decay_steps"] in (4.0, 8.0)  # a schedule may end at either endpoint step
    for e in small:
        # As read_endpoint reads it, with the budget the runs were trained at (here the chapter's budget_epochs: stand-ins keep no history).
        assert {k: v for k, v in read[e.name].items() if k != "preregistered_epochs"} == experiment.read_endpoint(result, e) and read[e.name]["runs"] == 3
        assert read[e.name]["preregistered_epochs"] == e.meta_epochs == read[e.name]["meta_epochs"]
        assert read[e.name]["outcome"] in ("reproduced", "not reproduced", "inconclusive")
    assert read["nag100"]["best"] == "nag" and read["primary"]["chosen_on"] == "tuning"


def test_the_campaign_curve_pairs_run_k_snapshot_with_test_seed_k_and_reads_over_runs(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from l2l import evaluate, experiment, optimizers, stats
    from l2l.chapters import mnist

    monkeypatch.setitem(recipes.RECIPES, "tiny", tiny)
    runs = [recipes.trainer("tiny", str(tmp_path), seed=s).run(log=lambda line: None) for s in (0, 1)]
    p = SimpleNamespace(budget_root=str(tmp_path), budget_every=2, eval_instances=2)
    panel = experiment.Panel("b", "t", problems.Quadratic(dims=3), problems.Quadratic(dims=3), 3, 3, (3,))
    curve = mnist.campaign_curve(p, runs, panel, 3, {"sgd": lambda s: optimizers.sgd(0.01)})
    assert curve["epochs"] == [2, 4] and curve["snapshots"][0]["final"]["runs"] == 2
    by_hand = []
    for k, run in enumerate(runs):
        path = recipes.snapshots("tiny", str(tmp_path), seed=k)[1][4]
        made = lambda s, path=path, config=run.lstm_config: learned_optimizer.learned(learned_optimizer.load_weights(path)[0], config)
        by_hand.append(experiment.metric_values(evaluate.evaluate(panel.problem, {"l": made}, 3, 2, [k]).curves["l"], 3, "final")[0])
    assert curve["snapshots"][1]["final"]["mean"] == pytest.approx(np.mean(by_hand), rel=1e-6)
    sgd = evaluate.evaluate(panel.problem, {"sgd": lambda s: optimizers.sgd(0.01)}, 3, 2, [0, 1]).curves["sgd"]
    assert curve["baselines"]["sgd"]["final"]["mean"] == pytest.approx(stats.over_runs(experiment.metric_values(sgd, 3, "final"))["mean"], rel=1e-6)
