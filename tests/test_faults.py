"""Fault injection: kills at random moments and damaged files, each resumed run bit-identical to an uninterrupted one."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from l2l import learned_optimizer, meta, problems

ROOT = Path(__file__).resolve().parents[1]
TINY_LSTM = learned_optimizer.LSTMConfig(hidden=4)
PROBLEM = problems.Quadratic(dims=3)
QUIET = lambda line: None


def config(epochs):
    return meta.MetaConfig(seed=0, epochs=epochs, batch=3, horizon=6, unroll=3, valid_every=2, valid_instances=4, checkpoint_every=1)


@pytest.fixture(scope="module")
def uninterrupted():
    return {epochs: meta.meta_train(PROBLEM, TINY_LSTM, config(epochs), log=QUIET) for epochs in (6, 12)}


def assert_same_run(result, reference, rtol=0.0):
    """Bit-identical by default; rtol > 0 only where part of a run was computed on another machine."""
    same = np.testing.assert_array_equal if rtol == 0 else (lambda a, b: np.testing.assert_allclose(a, b, rtol=rtol, atol=0))
    assert result.status == reference.status and result.best_epoch == reference.best_epoch
    for k in reference.last_params:
        same(result.last_params[k].numpy(), reference.last_params[k].numpy())
        same(result.meta_params[k].numpy(), reference.meta_params[k].numpy())
    same(result.history.meta_loss.to_numpy(), reference.history.meta_loss.to_numpy())
    same(result.history.valid_loss.to_numpy(), reference.history.valid_loss.to_numpy())


CHILD = """
import sys
from l2l import learned_optimizer, meta, problems
config = meta.MetaConfig(seed=0, epochs=12, batch=3, horizon=6, unroll=3, valid_every=2, valid_instances=4, checkpoint_every=1)
result = meta.meta_train(problems.Quadratic(dims=3), learned_optimizer.LSTMConfig(hidden=4), config, checkpoint_root=sys.argv[1],
                         log=lambda line: print(line, flush=True))
print("DONE", result.status, flush=True)
"""


@pytest.mark.slow
@pytest.mark.parametrize("moment_seed", [0, 1, 2])
def test_sigkill_at_random_moments_then_resume_ends_bit_identical(tmp_path, uninterrupted, moment_seed):
    rng = np.random.default_rng(moment_seed)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT)}
    kills = 0
    for _ in range(12):
        child = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
        lines_before_kill = int(rng.integers(1, 5))  # progress lines: one per epoch here
        seen, done = 0, False
        for line in child.stdout:
            done = done or line.startswith("DONE")
            seen += line.startswith("[")
            if seen >= lines_before_kill and not done:
                # A moment inside the next epoch (or its checkpoint write), not on a line boundary.
                import time

                time.sleep(float(rng.uniform(0.0, 0.25)))
                child.send_signal(signal.SIGKILL)
                kills += 1
                break
        child.wait()
        if done:
            break
    assert done and kills >= 1
    trainer = meta.MetaTrainer(PROBLEM, TINY_LSTM, config(12), checkpoint_root=str(tmp_path))
    assert trainer.restored_from.endswith("ckpt-12")
    assert_same_run(trainer.run(log=QUIET), uninterrupted[12])


def trained_four_epochs(root):
    meta.meta_train(PROBLEM, TINY_LSTM, config(4), checkpoint_root=str(root), log=QUIET)
    return Path(meta.MetaTrainer(PROBLEM, TINY_LSTM, config(4), checkpoint_root=str(root)).checkpoint_dir)


def truncate(path):
    path.write_bytes(path.read_bytes()[: max(1, path.stat().st_size // 3)])


@pytest.mark.parametrize("damage, said", [
    (lambda run: truncate(run / "ckpt-4.data-00000-of-00001"), "resumed from the older ckpt-3"),
    (lambda run: truncate(run / "ckpt-4.index"), "resumed from the older ckpt-3"),
    (lambda run: (run / "ckpt-4.index").write_bytes(np.random.default_rng(0).bytes(300)), "resumed from the older ckpt-3"),
    (lambda run: (run / "checkpoint").write_text("model_checkpoint_path: {{{ not a proto"), "kept as checkpoint.unreadable"),
    (lambda run: (run / "checkpoint").unlink(), "resumed at epoch 4"),
    (lambda run: (run / "run.json").write_text('{"history": [1, 2'), "run.json' unreadable"),
    (lambda run: (run / "run.json").unlink(), "resumed at epoch 4"),
    (lambda run: (run / "run.json").write_text("[]"), "run.json' unreadable"),
])
def test_a_damaged_file_falls_back_or_is_rebuilt_and_the_run_ends_bit_identical(tmp_path, uninterrupted, damage, said):
    run = trained_four_epochs(tmp_path)
    damage(run)
    lines = []
    result = meta.meta_train(PROBLEM, TINY_LSTM, config(6), checkpoint_root=str(tmp_path), log=lines.append)
    assert any(said in line for line in lines), lines
    assert_same_run(result, uninterrupted[6])
    assert meta.MetaTrainer(PROBLEM, TINY_LSTM, config(6), checkpoint_root=str(tmp_path)).folder.read_run_file()["history"][-1]["epoch"] == 6


def test_when_no_checkpoint_can_be_read_the_error_says_so_and_nothing_is_deleted(tmp_path):
    run = trained_four_epochs(tmp_path)
    for name in ["ckpt-3.index", "ckpt-4.index"]:
        truncate(run / name)
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    with pytest.raises(ValueError, match=r"no checkpoint in .* can be read \(tried \['ckpt-4 .*ckpt-3 .*\]\); delete that folder to start the run over"):
        meta.MetaTrainer(PROBLEM, TINY_LSTM, config(6), checkpoint_root=str(tmp_path))
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before


def test_a_checkpoint_of_another_run_copied_into_a_keyed_folder_is_refused(tmp_path):
    run = trained_four_epochs(tmp_path)
    other = dict(config(4).__dict__, meta_lr=0.01)
    trainer = meta.MetaTrainer(PROBLEM, TINY_LSTM, meta.MetaConfig(**other), checkpoint_root=str(tmp_path / "other"))
    trainer.run(log=QUIET)
    for name in ["ckpt-4.index", "ckpt-4.data-00000-of-00001", "ckpt-3.index", "ckpt-3.data-00000-of-00001"]:
        (run / name).write_bytes((Path(trainer.checkpoint_dir) / name).read_bytes())
    with pytest.raises(ValueError, match="another run's description.*delete that folder"):
        meta.MetaTrainer(PROBLEM, TINY_LSTM, config(6), checkpoint_root=str(tmp_path))


def test_a_run_checkpointed_before_the_history_travelled_inside_it_resumes_where_it_stopped(tmp_path, uninterrupted):
    """tests/data/legacy_run: 4 epochs written by commit 344ef5b (history only in run.json)."""
    import dataclasses
    import json
    import shutil

    shutil.copytree(ROOT / "tests" / "data" / "legacy_run", tmp_path / "root")
    legacy = dataclasses.replace(config(6), streams="counter")  # it predates keyed seeds, and keeps its key and streams
    trainer = meta.MetaTrainer(PROBLEM, TINY_LSTM, legacy, checkpoint_root=str(tmp_path / "root"))
    assert trainer.restored_from.endswith("ckpt-4") and len(trainer.history) == 4
    written = json.loads((ROOT / "tests/data/legacy_run/c0a7c43f1f236200/run.json").read_text())["history"]
    result = trainer.run(log=QUIET)
    np.testing.assert_array_equal(result.history.meta_loss.to_numpy()[:4], [h["meta_loss"] for h in written])  # read back, not recomputed
    # Its four epochs were computed on the machine that wrote it. Another CPU's kernels round differently: on a CI
    # machine the fresh run's LSTM weights after 6 epochs differed from the resumed one's by 1.1e-7 relative at most
    # (1 ulp), so the two are compared to 1e-5; resuming at a wrong epoch or state differs by far more.
    assert_same_run(result, meta.meta_train(PROBLEM, TINY_LSTM, legacy, log=QUIET), rtol=1e-5)


def test_a_trainer_waits_for_a_run_folder_another_process_holds_then_resumes_from_its_newer_checkpoint(tmp_path, uninterrupted):
    import fcntl
    import threading
    import time

    run = trained_four_epochs(tmp_path)
    stale = meta.MetaTrainer(PROBLEM, TINY_LSTM, config(6), checkpoint_root=str(tmp_path))  # opened at ckpt-4
    meta.MetaTrainer(PROBLEM, TINY_LSTM, config(6), checkpoint_root=str(tmp_path)).run(log=QUIET)  # another trainer finishes it
    finished = {p.name: p.read_bytes() for p in run.iterdir()}
    held = os.open(run, os.O_RDONLY)  # as a training process holds it (flock: separate opens conflict, in one process too)
    fcntl.flock(held, fcntl.LOCK_EX)
    lines, results = [], []
    waiting = threading.Thread(target=lambda: results.append(stale.run(log=lines.append)), daemon=True)
    try:
        waiting.start()
        for _ in range(200):
            if lines:
                break
            time.sleep(0.05)
        assert lines and "is being trained by another process; waiting until it ends" in lines[0]
        time.sleep(0.3)
        assert waiting.is_alive() and {p.name: p.read_bytes() for p in run.iterdir()} == finished  # it waits, writing nothing
    finally:
        os.close(held)  # released even if an assertion failed, so the waiting thread ends
    waiting.join(timeout=120)
    assert any("opened again: another process trained the run after this trainer opened it at ckpt-4" in line for line in lines), lines
    assert_same_run(results[0], uninterrupted[6])  # the finished run, not the stale one trained on from epoch 4
    assert stale.folder.read_run_file()["history"] == meta.MetaTrainer(PROBLEM, TINY_LSTM, config(6), checkpoint_root=str(tmp_path)).history


def _image_problems():
    """Problems whose validation draws minibatches: a small MLP and a small ConvNet on synthetic images."""
    x = np.random.default_rng(5).integers(0, 256, size=(40, 8, 8, 1), dtype=np.uint8)
    data = problems.image_data(x, np.arange(40) % 4, "tiny")
    return {"mlp": problems.MLP(data, hidden=(3,), batch_size=5, classes=4),
            "convnet": problems.ConvNet(data, image_shape=(8, 8, 1), channels=(2,), kernel=3, hidden=3, classes=4, batch_size=5)}


@pytest.mark.parametrize("name", ["mlp", "convnet"])
def test_a_run_that_validates_on_minibatches_resumes_bit_identical(tmp_path, name):
    """Validation draws minibatches from a stream of its own: restarted at each resume (the old code), the validation
    losses after a resume, and so the kept epoch, depended on where the run was interrupted."""
    problem = _image_problems()[name]
    cfg = lambda epochs: meta.MetaConfig(seed=0, epochs=epochs, batch=2, horizon=4, unroll=2, valid_every=1, valid_instances=2, checkpoint_every=1)
    reference = meta.meta_train(problem, TINY_LSTM, cfg(6), log=QUIET)
    for stop in (2, 4):  # two resumes, each after validations that drew from the stream
        meta.meta_train(problem, TINY_LSTM, cfg(stop), checkpoint_root=str(tmp_path), log=QUIET)
    resumed = meta.MetaTrainer(problem, TINY_LSTM, cfg(6), checkpoint_root=str(tmp_path))
    assert resumed.restored_from.endswith("ckpt-4")
    assert_same_run(resumed.run(log=QUIET), reference)
