"""Named long runs: the chapter reads a recipe's snapshots by key without opening its checkpoints."""

import os

import pytest

from l2l import learned_optimizer, meta, problems, recipes


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


def test_the_cifar_recipe_builds_each_learner_from_the_chapters_parameters():
    import numpy as np

    from l2l import chapters

    x = np.random.default_rng(0).integers(0, 256, size=(40, 32, 32, 3), dtype=np.uint8)
    part = problems.image_data(x, np.arange(40) % 10, "tiny")
    splits = {"meta_train": part, "valid": part}
    p = chapters.Cifar(meta_epochs=7, sub_labels=[6, 7, 8])
    two, one, sub = (recipes.cifar(name, seed=2, params=p, splits=splits) for name in recipes.CIFAR_LEARNERS)
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
