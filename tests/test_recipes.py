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
