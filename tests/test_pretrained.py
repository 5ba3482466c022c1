"""The packaged optimisers are the chapters' committed weights, and publish picks the best."""

import json
import re
from pathlib import Path

import numpy as np
import pytest

from l2l import learned_optimizer, pretrained

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", pretrained.names())
def test_each_packaged_optimiser_is_its_chapter_run(name):
    """A chapter rerun without `publish` would ship weights the book no longer shows."""
    packaged, config, entry = pretrained.load(name)
    source, source_config, provenance = learned_optimizer.load_weights(str(ROOT / entry["source"]["weights"]))
    assert source_config == config
    for key in packaged:
        np.testing.assert_array_equal(packaged[key].numpy(), source[key].numpy())
    summary = json.loads((ROOT / entry["source"]["summary"]).read_text())
    assert entry["source"]["commit"] == summary["commit"] and entry["source"]["chapter"] == summary["chapter"]
    assert entry["training"]["best_valid"] == pytest.approx(float(provenance["best_valid"]))


def test_publish_keeps_the_run_with_the_best_validation_loss(tmp_path, monkeypatch):
    monkeypatch.setattr(pretrained, "HERE", tmp_path)
    monkeypatch.setattr(pretrained, "REGISTRY", tmp_path / "registry.json")
    config = learned_optimizer.LSTMConfig(hidden=3)
    for seed, valid in [(0, float("nan")), (1, 0.5), (2, 0.2), (3, 0.9)]:
        learned_optimizer.save_weights(tmp_path / f"run{seed}.weights.h5", learned_optimizer.init_meta_params(config, seed), config, best_valid=valid, seed=seed)
    entry = pretrained.publish("mine", str(tmp_path / "run*.weights.h5"))
    assert entry["training"]["seed"] == 2 and pretrained.names() == ["mine"]
    loaded, loaded_config, _ = pretrained.load("mine")
    assert loaded_config == config
    np.testing.assert_array_equal(loaded["out/kernel"].numpy(), learned_optimizer.init_meta_params(config, 2)["out/kernel"].numpy())
    with pytest.raises(FileNotFoundError, match="run the chapter first"):
        pretrained.publish("none", str(tmp_path / "missing*.h5"))
    # A calibrated multiplier survives republishing the same weights (a re-executed chapter), not new ones.
    entries = pretrained.registry()
    entries["mine"]["keras_default"] = {"learning_rate": 0.03}
    pretrained.REGISTRY.write_text(json.dumps(entries))
    assert pretrained.publish("mine", str(tmp_path / "run*.weights.h5"))["keras_default"] == {"learning_rate": 0.03}
    learned_optimizer.save_weights(tmp_path / "run4.weights.h5", learned_optimizer.init_meta_params(config, 4), config, best_valid=0.1, seed=4)
    assert "keras_default" not in pretrained.publish("mine", str(tmp_path / "run*.weights.h5"))
    # A chapter that calibrated the very run published files its choice by run key, and publish records it.
    learned_optimizer.save_weights(tmp_path / "run5.weights.h5", learned_optimizer.init_meta_params(config, 5), config, best_valid=0.05, run_key="abc")
    chosen = pretrained.calibration_entry(0.3, {0.1: {"worst_ratio": 1.2}, 0.3: {"worst_ratio": 0.9}}, {"mnist_mlp": 0.29}, steps=50)
    summary = tmp_path / "summary.json"
    summary.write_text(json.dumps({"chapter": "t", "commit": "c", "calibrations": {"other": {"learning_rate": 9.0}, "abc": chosen}}))
    entry = pretrained.publish("mine", str(tmp_path / "run*.weights.h5"), str(summary))
    assert entry["keras_default"] == {**chosen, "source": str(summary)} and pretrained.default_learning_rate("mine") == 0.3
    assert set(chosen["tried"]) == {"0.1", "0.3"} and "last 20 of 50 steps" in chosen["chosen_by"]
    # Another run's calibration in the same summary is not these weights'.
    learned_optimizer.save_weights(tmp_path / "run6.weights.h5", learned_optimizer.init_meta_params(config, 6), config, best_valid=0.01, run_key="new")
    assert "keras_default" not in pretrained.publish("mine", str(tmp_path / "run*.weights.h5"), str(summary))



def test_an_optimiser_with_parameter_groups_is_published_with_its_keras_grouping(tmp_path, monkeypatch):
    import keras

    from l2l import LearnedOptimizer, keras_optimizer

    monkeypatch.setattr(pretrained, "HERE", tmp_path)
    monkeypatch.setattr(pretrained, "REGISTRY", tmp_path / "registry.json")
    config = {"conv": learned_optimizer.LSTMConfig(hidden=3), "other": learned_optimizer.LSTMConfig(hidden=2, layers=1)}
    learned_optimizer.save_weights(tmp_path / "run0.weights.h5", learned_optimizer.init_group_params(config, 0), config, best_valid=0.3)
    with pytest.raises(ValueError, match="--groups, one of \\['conv_kernels'\\]"):
        pretrained.publish("grouped", str(tmp_path / "run*.weights.h5"))
    entry = pretrained.publish("grouped", str(tmp_path / "run*.weights.h5"), groups="conv_kernels")
    assert entry["groups"] == "conv_kernels" and entry["lstm_config"]["other"]["layers"] == 1
    optimizer = LearnedOptimizer.from_pretrained("grouped")
    assert optimizer.groups is keras_optimizer.conv_kernels and optimizer.lstm_config == config
    model = keras.Sequential([keras.Input((6, 6, 1)), keras.layers.Conv2D(2, 3), keras.layers.Flatten(), keras.layers.Dense(3)])
    model.compile(optimizer=optimizer, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(np.ones((4, 6, 6, 1), np.float32), np.arange(4) % 3, batch_size=4, epochs=1, verbose=0)
    assert optimizer._var_groups == ["conv", "other", "other", "other"]  # the kernel, then the conv bias and the dense layer
    plain = learned_optimizer.LSTMConfig(hidden=3)
    learned_optimizer.save_weights(tmp_path / "flat0.weights.h5", learned_optimizer.init_meta_params(plain, 0), plain, best_valid=0.3)
    with pytest.raises(ValueError, match="no parameter groups"):
        pretrained.publish("flat", str(tmp_path / "flat*.weights.h5"), groups="conv_kernels")

def test_calibrate_picks_the_multiplier_with_the_best_worst_case_ratio_and_records_it(tmp_path, monkeypatch):
    import shutil

    from l2l import keras_training

    monkeypatch.setattr(pretrained, "HERE", tmp_path)
    monkeypatch.setattr(pretrained, "REGISTRY", tmp_path / "registry.json")
    shutil.copy(ROOT / "l2l/pretrained/registry.json", tmp_path / "registry.json")
    shutil.copy(ROOT / "l2l/pretrained/mnist.weights.h5", tmp_path / "mnist.weights.h5")
    # A fake world: model "a" wants lr near 0.1, model "b" near 0.03; Adam scores 1 on both.
    def fake(make_optimizer, steps, examples, seeds):
        optimizer = make_optimizer()
        lr = float(optimizer.learning_rate.numpy()) if hasattr(optimizer, "pretrained") else None
        if lr is None:
            return {"a": (1.0, 1.0), "b": (1.0, 1.0)}
        return {"a": (1 + abs(np.log10(lr / 0.1)), 0.0), "b": (1 + 2 * abs(np.log10(lr / 0.03)), 0.0)}

    monkeypatch.setattr(keras_training, "final_losses", fake)
    chosen = pretrained.calibrate("mnist", log=lambda line: None)
    # Half-decades pick 0.03 (worst ratio 1.52); the quarter-decades beside it are 0.0169 and 0.0533 (worst 1.34 at 0.0533).
    assert chosen["learning_rate"] == 0.0533
    assert set(chosen["tried"]) == {"0.01", "0.0169", "0.03", "0.0533", "0.1", "0.3", "1"}
    assert chosen["tried"]["0.0533"]["worst_ratio"] == pytest.approx(min(t["worst_ratio"] for t in chosen["tried"].values()))
    assert pretrained.default_learning_rate("mnist") == 0.0533
    import l2l

    assert float(l2l.LearnedOptimizer.from_pretrained("mnist").learning_rate.numpy()) == pytest.approx(0.0533)
    assert float(l2l.LearnedOptimizer.from_pretrained("mnist", learning_rate=1.0).learning_rate.numpy()) == 1.0
    # Without refinement only the half-decades are tried, and the best of them wins.
    best, tried, _ = pretrained.choose_multiplier(lambda lr: l2l.LearnedOptimizer.from_pretrained("mnist", learning_rate=lr), log=lambda line: None, refine=False)
    assert best == 0.03 and set(tried) == set(pretrained.CALIBRATION_GRID)
    # Publishing new weights drops the multiplier chosen for the old ones.
    config = learned_optimizer.LSTMConfig()
    learned_optimizer.save_weights(tmp_path / "run0.weights.h5", learned_optimizer.init_meta_params(config, 0), config, best_valid=0.5)
    pretrained.publish("mnist", str(tmp_path / "run0.weights.h5"))
    assert pretrained.default_learning_rate("mnist") == 1.0


@pytest.mark.parametrize("name", pretrained.names())
def test_each_packaged_optimiser_carries_a_calibrated_keras_default(name):
    entry = pretrained.info(name)["keras_default"]
    best = min(entry["tried"].items(), key=lambda item: item[1]["worst_ratio"])
    assert float(best[0]) == entry["learning_rate"] == pretrained.default_learning_rate(name)
    assert set(best[1]["ratios"]) == {"mnist_mlp", "mnist_convnet", "cifar_cnn"}


def test_the_command_names_a_bad_name_or_file_and_the_fix_before_anything_is_copied(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(pretrained, "HERE", tmp_path)
    monkeypatch.setattr(pretrained, "REGISTRY", tmp_path / "registry.json")
    config = learned_optimizer.LSTMConfig(hidden=3)
    learned_optimizer.save_weights(tmp_path / "run0.weights.h5", learned_optimizer.init_meta_params(config, 0), config, best_valid=0.5)
    weights = str(tmp_path / "run*.weights.h5")
    (tmp_path / "damaged.json").write_text('{"chapter": "beyond", "pan')
    (tmp_path / "list.json").write_text("[1, 2]")
    for argv, message in [
        (["calibrate", "imagenet"], "no pretrained optimiser 'imagenet'; available: \\[\\]"),
        (["publish", "mine", str(tmp_path / "none*.h5")], "run the chapter first"),
        (["publish", "mine", weights, "--summary", str(tmp_path / "missing.json")], "no chapter summary at .*missing.json.*run the chapter"),
        (["publish", "mine", weights, "--summary", str(tmp_path / "damaged.json")], "damaged.json' cannot be read as a chapter summary.*git checkout"),
        (["publish", "mine", weights, "--summary", str(tmp_path / "list.json")], "holds list, not a chapter summary"),
        (["publish", "mine", weights, "--groups", "conv_kernels"], "no parameter groups"),
        (["publish", "../x", weights], r"publish needs a plain name .*got '../x'"),
        (["publish", str(tmp_path / "abs"), weights], r"publish needs a plain name"),
        (["publish", "", weights], r"publish needs a plain name .*got ''"),
        (["publish", "a/b", weights], r"publish needs a plain name"),
    ]:
        assert pretrained.main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("error: ") and re.search(message, err), (argv, err)
    assert not (tmp_path / "mine.weights.h5").exists() and not pretrained.REGISTRY.exists()  # nothing copied, nothing registered
    assert pretrained.main(["publish", "mine", weights]) == 0 and (tmp_path / "mine.weights.h5").exists()


def test_a_registry_write_stopped_midway_leaves_the_previous_registry_whole(tmp_path, monkeypatch):
    monkeypatch.setattr(pretrained, "HERE", tmp_path)
    monkeypatch.setattr(pretrained, "REGISTRY", tmp_path / "registry.json")
    config = learned_optimizer.LSTMConfig(hidden=3)
    learned_optimizer.save_weights(tmp_path / "run0.weights.h5", learned_optimizer.init_meta_params(config, 0), config, best_valid=0.5)
    pretrained.publish("mine", str(tmp_path / "run*.weights.h5"))
    before = pretrained.REGISTRY.read_text()

    def dies_midway(value, f, **kwargs):
        f.write('{"mine": {"fi')
        raise KeyboardInterrupt  # a stop while the registry is being written

    monkeypatch.setattr(json, "dump", dies_midway)
    with pytest.raises(KeyboardInterrupt):
        pretrained.publish("other", str(tmp_path / "run*.weights.h5"))
    assert pretrained.REGISTRY.read_text() == before and pretrained.names() == ["mine"]


def test_listing_the_packaged_optimisers_does_not_import_tensorflow():
    import subprocess
    import sys

    code = "import sys; from l2l import pretrained; pretrained.main(['list']); print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.stdout.splitlines()[-1] == "False" and "general:" in out.stdout, out.stderr[-2000:]


def test_a_packaged_optimiser_no_multiplier_made_usable_on_keras_warns_when_loaded_and_names_the_best():
    import warnings

    from l2l.keras_optimizer import LearnedOptimizer

    ratios = {name: pretrained.calibrated_ratio(name) for name in pretrained.names()}
    best = pretrained.best_for_keras()
    assert ratios[best[0]] == min(r for r in ratios.values() if r is not None)
    assert all(ratios[n] <= pretrained.TIE * ratios[best[0]] for n in best)
    for name, ratio in ratios.items():
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            LearnedOptimizer.from_pretrained(name)
        said = [str(w.message) for w in caught if issubclass(w.category, UserWarning) and "pretrained optimiser" in str(w.message)]
        if ratio is not None and ratio > pretrained.USABLE_RATIO:
            assert len(said) == 1 and pretrained.info(name)["trained_on"] in said[0] and f"do best are {best[0]!r}" in said[0], said
        else:
            assert said == [], said
    assert pretrained.keras_warning("quadratic") is not None  # its best multiplier left a held-out model at 5.8x default Adam's loss


def test_the_readme_recommends_a_packaged_optimiser_that_does_best_on_keras_and_shows_the_registrys_table():
    readme = (ROOT / "README.md").read_text()
    recommended = re.search(r'from_pretrained\("(\w+)"\)', readme).group(1)  # the first one the README shows
    assert recommended in pretrained.best_for_keras()
    assert pretrained.keras_table() in readme  # the table as the registry has it, not typed
