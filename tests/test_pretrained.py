"""The packaged optimisers are the chapters' committed weights, and publish picks the best."""

import json
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
