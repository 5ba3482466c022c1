"""The sweep machinery: spec validation, worker processes sharing a study on SQLite and PostgreSQL,
a worker killed mid-trial, and the recorded objective against a recomputation."""

import argparse
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from l2l import sweep

ROOT = Path(__file__).resolve().parents[1]
PG_BIN = Path("/usr/lib/postgresql/15/bin")

TINY = {
    "name": "tiny", "task": "quadratic", "trials": 4, "startup_trials": 2, "valid_every": 2, "valid_instances": 8, "objective_instances": 8,
    "space": {"meta_lr": {"low": 1e-4, "high": 1e-1, "log": True}, "hidden": {"choices": [4, 8]}},
    "fixed": {"batch": 8, "horizon": 10, "unroll": 5, "epochs": 4, "layers": 1},
}


def write_spec(folder, **changes):
    spec = {**TINY, **changes}
    path = Path(folder) / f"{spec['name']}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def worker(spec_path, tmp_path, storage, *extra, workers=1):
    command = [sys.executable, "-m", "l2l.sweep", "run", str(spec_path), "--storage", storage, "--root", str(tmp_path / "runs"),
               "--threads", "1", "--workers", str(workers), *extra]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def load(spec_path, storage):
    import optuna

    spec = sweep.load_spec(spec_path)
    return spec, optuna.load_study(study_name=spec.name, storage=storage)


@pytest.mark.parametrize("changes, message", [
    ({"task": "cifar"}, "unknown task 'cifar'"),
    ({"colour": 1}, "unknown field(s) ['colour']"),
    ({"space": {"learning_rate": {"low": 0.1, "high": 1.0}}}, "unknown setting(s) ['learning_rate']"),
    ({"space": {"meta_lr": {"low": 0.1, "high": 0.01}}}, "low (0.1) must be below high (0.01)"),
    ({"space": {"meta_lr": {"low": 0.0, "high": 0.1, "log": True}}}, "meta_lr"),
    ({"space": {"hidden": {"low": 10, "high": 40.5}}}, "must be a finite int"),
    ({"space": {"hidden": {"choices": [10, 10]}}}, "repeat a value"),
    ({"space": {"unroll": {"choices": [3, 5]}}, "fixed": {"horizon": 10}}, "(10, 3)"),
    ({"space": {"horizon": {"low": 10, "high": 50}}, "fixed": {"unroll": 5}}, "horizon and unroll, when searched, need choices"),
    ({"fixed": {"batch": 8, "horizon": 10, "unroll": 5, "epochs": 4, "layers": 1, "hidden": 4}}, "both searched and fixed"),
    ({"sampler": "grid"}, "the grid sampler needs choices"),
    ({"sampler": "grid", "space": {"hidden": {"choices": [4, 8]}}, "trials": 3}, "exceeds the grid's 2 points"),
    ({"trials": 0}, "trials must be a positive integer"),
    ({"budget": -1}, "budget must be a non-negative integer"),
    ({"budget": 100}, "with a budget, each trial's epochs follow from it"),
    ({"objective": "best"}, "objective must be one of ['mean', 'final']"),
    ({"pruner": "hyperband"}, "pruner must be one of"),
    ({"fixed": {"batch": 8, "horizon": 10, "unroll": 5, "epochs": 4, "layers": 1, "hidden": 100000000}, "space": {"meta_lr": {"low": 1e-4, "high": 1e-1}}},
     "fixed value 100000000 of hidden (units per LSTM layer) is above 1024"),
    ({"space": {"meta_lr": {"low": 1e-4, "high": 1e-1, "log": True}, "hidden": {"low": 4, "high": 4096}}}, "space.hidden.high value 4096 of hidden (units per LSTM layer) is above 1024"),
])
def test_a_malformed_spec_is_rejected_with_the_field_and_the_fix(tmp_path, changes, message):
    path = write_spec(tmp_path, **changes)
    with pytest.raises(sweep.SpecError) as error:
        sweep.load_spec(path)
    assert message in str(error.value) and str(path) in str(error.value)


def test_missing_and_unreadable_spec_files_name_the_file(tmp_path):
    with pytest.raises(sweep.SpecError, match="cannot read the sweep spec"):
        sweep.load_spec(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(sweep.SpecError, match="not valid YAML"):
        sweep.load_spec(bad)
    (tmp_path / "list.yaml").write_text("- 1\n")
    with pytest.raises(sweep.SpecError, match="a mapping of fields"):
        sweep.load_spec(tmp_path / "list.yaml")


def test_the_cli_rejects_a_bad_spec_before_any_compute(tmp_path):
    path = write_spec(tmp_path, space={"nope": {"choices": [1]}})
    out = subprocess.run([sys.executable, "-m", "l2l.sweep", "run", str(path), "--results", str(tmp_path)], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 2 and "unknown setting(s) ['nope']" in out.stderr
    assert not list(tmp_path.glob("*.db"))  # nothing created


def test_the_book_specs_are_valid():
    for path in sorted((ROOT / "notebooks" / "sweeps").glob("*.yaml")):
        spec = sweep.load_spec(path)
        assert spec.name == path.stem


def check_complete(spec_path, storage, trials):
    """Every trial finished exactly once: `trials` finished trials, none running or waiting, objective = recorded ratio."""
    spec, study = load(spec_path, storage)
    frame = sweep.trials_frame(study)
    done = frame[frame.state.isin(["COMPLETE", "PRUNED"]) | frame.failure.notna()]
    assert len(done) == trials, frame
    assert not frame.state.isin(["RUNNING", "WAITING"]).any(), frame
    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert complete
    for t in complete:
        assert t.value == pytest.approx(t.user_attrs["ratio"][spec.objective], rel=1e-12)
        assert t.user_attrs["provenance"]["versions"]["optuna"]
    return spec, study, frame


def test_two_workers_share_a_sqlite_study_and_the_recorded_objective_recomputes(tmp_path):
    spec_path = write_spec(tmp_path)
    storage = f"sqlite:///{tmp_path / 'tiny.db'}"
    process = worker(spec_path, tmp_path, storage, workers=2)
    output, _ = process.communicate(timeout=900)
    assert process.returncode == 0, output
    assert output.count("is complete") == 2, output  # both workers ran and both saw the study end
    spec, study, frame = check_complete(spec_path, storage, 4)
    assert frame.surplus.sum() == len(frame) - 4  # any extra trial was closed unrun, and says so

    # Recompute one trial's objective: NAG with its recorded tuned settings, and the LSTM read back from its run's checkpoint.
    from l2l import optimizers

    trial = next(t for t in study.trials if t.state.name == "COMPLETE")
    settings = trial.user_attrs["settings"]
    task_problem, valid_problem = sweep.task_problems(spec.task)
    nag = study.user_attrs[f"nag_h{settings['horizon']}"]
    for objective in ("final", "mean"):
        tuned = nag["settings"][objective]
        scores = sweep.objective_losses(valid_problem, optimizers.nag(tuned["learning_rate"], tuned["momentum"]), settings["horizon"],
                                        spec.objective_instances, spec.seed)
        assert scores[0 if objective == "final" else 1] == pytest.approx(nag[objective], rel=1e-6)
    trainer = sweep.build_run(spec, settings, task_problem, valid_problem, str(tmp_path / "runs"))
    assert trainer.key == trial.user_attrs["run_key"] and int(trainer.state.epoch.numpy()) == settings["epochs"]  # read back, not recomputed
    result = trainer.run(log=lambda line: None)
    final, mean = sweep.objective_losses(valid_problem, result.optimizer(valid_problem), settings["horizon"], spec.objective_instances, spec.seed)
    assert (final, mean) == pytest.approx((trial.user_attrs["lstm"]["final"], trial.user_attrs["lstm"]["mean"]), rel=1e-6)
    assert np.isfinite(sweep.importances(study, repeats=3).importance).all()


def test_a_worker_killed_mid_trial_is_retried_and_every_trial_finishes_once(tmp_path):
    spec_path = write_spec(tmp_path, name="killed", trials=2, pruner="none", fixed={**TINY["fixed"], "epochs": 40})
    storage = f"sqlite:///{tmp_path / 'killed.db'}"
    first = worker(spec_path, tmp_path, storage, "--heartbeat", "1", "--grace", "3")
    runs = tmp_path / "runs" / "epochs40"
    deadline = time.time() + 600
    while not list(runs.glob("*/ckpt-*.index")):  # the first trial has checkpointed at least once
        assert first.poll() is None and time.time() < deadline, first.communicate()[0]
        time.sleep(0.5)
    first.send_signal(signal.SIGKILL)
    first.communicate()
    _, study = load(spec_path, storage)
    killed = [t for t in study.trials if t.state.name == "RUNNING"]
    assert len(killed) == 1

    second = worker(spec_path, tmp_path, storage, "--heartbeat", "1", "--grace", "3")
    output, _ = second.communicate(timeout=900)
    assert second.returncode == 0, output
    assert "resumed at epoch" in output, output  # the retry picked the run up from its checkpoint
    spec, study, frame = check_complete(spec_path, storage, 2)
    original = study.trials[killed[0].number]
    assert original.state.name == "FAIL" and "failure" not in original.user_attrs  # the worker's death: not a result, not counted
    retries = [t for t in study.trials if t.system_attrs.get("failed_trial") == original.number]
    assert len(retries) == 1 and retries[0].state.name == "COMPLETE"
    assert retries[0].user_attrs["run_key"] == original.user_attrs["run_key"] and retries[0].params == original.params


def test_a_non_finite_run_is_a_failed_trial_with_its_reason(tmp_path):
    import optuna

    spec = sweep.spec_from_dict({**TINY, "name": "nan", "trials": 1, "pruner": "none", "space": {"meta_lr": {"choices": [1e9]}},
                                 "fixed": {**TINY["fixed"], "scale": 1e6, "preprocess_p": 0.0, "hidden": 4}})
    store = sweep.storage(f"sqlite:///{tmp_path / 'nan.db'}")
    assert sweep.work(spec, store, str(tmp_path / "runs"), log=lambda line: None) == 1
    (trial,) = optuna.load_study(study_name="nan", storage=store).trials
    assert trial.state.name == "FAIL" and trial.value is None
    assert "non-finite" in trial.user_attrs["failure"]


def test_a_study_name_made_from_another_spec_is_refused(tmp_path):
    store = sweep.storage(f"sqlite:///{tmp_path / 's.db'}")
    sweep.study(sweep.spec_from_dict(TINY), store)
    with pytest.raises(sweep.SpecError, match=r"made from another spec \(changed: objective: 'mean' in the study, 'final' in the spec\)"):
        sweep.study(sweep.spec_from_dict({**TINY, "objective": "final"}), store)
    # The budget is not the study's identity: a study is extended (or cut) under its name, and records its new budget.
    extended = sweep.study(sweep.spec_from_dict({**TINY, "trials": TINY["trials"] + 5}), store)
    assert extended.user_attrs["spec"]["trials"] == TINY["trials"] + 5


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_checked(*args):
    out = subprocess.run([*map(str, args)], capture_output=True, text=True)
    assert out.returncode == 0, f"{' '.join(map(str, args))}: {out.stdout}{out.stderr}"


@pytest.fixture
def postgres():
    """A PostgreSQL 15 server of our own: initdb and pg_ctl into a temporary folder, loopback only, as the postgres user when root
    (initdb refuses root); the folder is outside pytest's, which only root may enter."""
    if not (PG_BIN / "initdb").exists():
        pytest.skip("PostgreSQL 15 is not installed (apt-get install postgresql; .ci/run does)")
    folder = Path(tempfile.mkdtemp(prefix="l2l-pg-"))
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_user:
        shutil.chown(folder, "postgres")
    data, port = folder / "data", free_port()
    run = lambda *args: run_checked(*as_user, *args)
    run(PG_BIN / "initdb", "-D", data, "-A", "trust", "-U", "postgres")
    run(PG_BIN / "pg_ctl", "-D", data, "-l", folder / "log", "-w", "-o", f"-h 127.0.0.1 -p {port} -k {folder}", "start")
    try:
        run(PG_BIN / "createdb", "-h", "127.0.0.1", "-p", port, "-U", "postgres", "l2l")
        yield f"postgresql://postgres@127.0.0.1:{port}/l2l"
    finally:
        run(PG_BIN / "pg_ctl", "-D", data, "-m", "fast", "stop")
        shutil.rmtree(folder, ignore_errors=True)


def test_a_worker_that_loses_the_race_to_create_the_tables_opens_the_storage_on_a_retry(monkeypatch):
    """Two workers on a fresh PostgreSQL database once failed one of them with DuplicateTable (both creating "studies")."""
    import optuna

    class ProgrammingError(Exception):
        pass

    calls = []

    def racing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise ProgrammingError('(psycopg.errors.DuplicateTable) relation "studies" already exists')
        return "storage"

    monkeypatch.setattr(optuna.storages, "RDBStorage", racing)
    monkeypatch.setattr(time, "sleep", lambda s: None)
    assert sweep.storage("postgresql://me@127.0.0.1:1/l2l") == "storage" and len(calls) == 2
    calls.clear()
    monkeypatch.setattr(optuna.storages, "RDBStorage", lambda *a, **k: (_ for _ in ()).throw(ProgrammingError("syntax error")))
    with pytest.raises(sweep.SpecError, match="cannot open the study storage"):
        sweep.storage("postgresql://me@127.0.0.1:1/l2l")  # not a race: said at once


def test_two_workers_share_a_study_on_a_postgresql_server(tmp_path, postgres):
    spec_path = write_spec(tmp_path, name="pg")
    first, second = worker(spec_path, tmp_path, postgres), worker(spec_path, tmp_path, postgres)  # as if on two machines
    for process in (first, second):
        output, _ = process.communicate(timeout=900)
        assert process.returncode == 0, output
    check_complete(spec_path, postgres, 4)


def test_partial_dependence_is_the_geometric_mean_per_level_with_a_t_interval():
    import pandas as pd
    from scipy import stats as st

    frame = pd.DataFrame({"state": ["COMPLETE"] * 6 + ["PRUNED"], "hidden": [4, 4, 4, 8, 8, 8, 4],
                          "value": [0.5, 1.0, 2.0, 1.0, 1.0, 1.0, 100.0]})
    table = sweep.partial_dependence(frame, "hidden").set_index("level")
    assert table.loc["4", "ratio"] == pytest.approx(1.0) and table.loc["4", "trials"] == 3  # the pruned trial is left out
    half = st.t.ppf(0.975, 2) * np.log([0.5, 1.0, 2.0]).std(ddof=1) / np.sqrt(3)
    assert (table.loc["4", "low"], table.loc["4", "high"]) == pytest.approx((np.exp(-half), np.exp(half)))
    assert table.loc["8", "low"] == table.loc["8", "high"] == pytest.approx(1.0)
    ranged = pd.DataFrame({"state": ["COMPLETE"] * 8, "meta_lr": np.geomspace(1e-4, 1e-2, 8), "value": np.arange(1.0, 9.0)})
    binned = sweep.partial_dependence(ranged, "meta_lr", bins=4)
    assert list(binned.trials) == [2, 2, 2, 2]
    assert binned.ratio.to_numpy() == pytest.approx([np.sqrt(1 * 2), np.sqrt(3 * 4), np.sqrt(5 * 6), np.sqrt(7 * 8)])


def test_a_grid_spec_holds_every_other_setting_at_the_given_values_and_round_trips(tmp_path):
    fixed = {k: v for k, v in TINY["fixed"].items() if k != "layers"}
    spec = sweep.spec_from_dict({**TINY, "fixed": fixed, "space": {**TINY["space"], "scale": {"low": 0.01, "high": 1.0, "log": True}, "layers": {"low": 1, "high": 3}}})
    around = {**sweep.DEFAULTS["quadratic"], **TINY["fixed"], "meta_lr": 3e-3, "hidden": 8, "scale": 0.1, "layers": 2}
    grid = sweep.grid_spec(spec, around, ("scale", "layers"), points=3)
    assert grid.space == {"scale": {"choices": [0.01, 0.1, 1.0]}, "layers": {"choices": [1, 2, 3]}}
    assert grid.fixed["meta_lr"] == 3e-3 and grid.fixed["hidden"] == 8 and "scale" not in grid.fixed
    assert grid.sampler == "grid" and grid.trials == 9 and grid.name == "tiny_grid"
    assert sweep.grid_points(spec, "hidden", 3) == [4, 8]  # choices stay choices
    three = sweep.spec_from_dict({**TINY, "space": {**TINY["space"], "hidden": {"choices": [4, 8, 16]}}})
    assert sweep.grid_points(three, "hidden", 2) == [4, 16] and sweep.grid_points(three, "hidden", 3) == [4, 8, 16]
    assert sweep.load_spec(sweep.dump_spec(grid, tmp_path / "tiny_grid.yaml")) == grid


def test_a_trial_asked_for_after_the_study_has_its_trials_is_closed_unrun_as_surplus(tmp_path):
    import optuna

    spec = sweep.spec_from_dict({**TINY, "name": "full", "trials": 2})
    store = sweep.storage(f"sqlite:///{tmp_path / 'full.db'}")
    study = sweep.study(spec, store)
    distributions = {"meta_lr": optuna.distributions.FloatDistribution(1e-4, 1e-1, log=True),
                     "hidden": optuna.distributions.CategoricalDistribution([4, 8])}
    finished_one = optuna.create_trial(params={"meta_lr": 1e-3, "hidden": 4}, distributions=distributions, value=0.9)
    failed_with_reason = optuna.create_trial(params={"meta_lr": 1e-1, "hidden": 8}, distributions=distributions, state=optuna.trial.TrialState.FAIL,
                                             user_attrs={"failure": "stopped at epoch 2: non-finite"})
    died = optuna.create_trial(params={"meta_lr": 1e-2, "hidden": 8}, distributions=distributions, state=optuna.trial.TrialState.FAIL)
    study.add_trials([finished_one, failed_with_reason, died])
    assert [sweep.finished(t) for t in study.trials] == [True, True, False]  # a worker's death is retried, not counted
    objective = sweep.Objective(spec, str(tmp_path / "runs"), log=lambda line: None)
    study.optimize(objective, n_trials=1, catch=(sweep.Surplus,))
    last = study.trials[-1]
    assert last.state.name == "FAIL" and "surplus" in last.user_attrs and "run_key" not in last.user_attrs  # nothing ran
    assert objective.finished == 0 and not (tmp_path / "runs").exists()
    assert sweep.work(spec, store, str(tmp_path / "runs"), log=lambda line: None) == 0  # the study is complete: a worker leaves at once


def _frozen(state, value=None, intermediate=None, **attrs):
    import optuna

    return optuna.trial.create_trial(state=optuna.trial.TrialState[state], value=value, params={"hidden": 4},
                                     distributions={"hidden": optuna.distributions.CategoricalDistribution([4, 8])},
                                     intermediate_values=intermediate or {}, user_attrs=attrs)


def test_a_trials_score_is_its_value_or_a_pruned_trials_last_validation_and_outcomes_count_each_end_once():
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    s = optuna.create_study()
    s.add_trials([_frozen("COMPLETE", 0.8, {2: 1.5, 4: 0.9}, status="complete"),
                  _frozen("PRUNED", None, {2: 3.0, 6: 2.5}, status="pruned"),
                  _frozen("FAIL", None, {}, status="failed", failure="non-finite meta-loss at epoch 3"),
                  _frozen("FAIL", None, {}, surplus=True)])
    frame = sweep.trials_frame(s)
    assert frame.score.iloc[0] == 0.8 and frame.score.iloc[1] == 2.5 and np.isnan(frame.score.iloc[2])
    assert sweep.outcomes(frame) == {"complete": 1, "pruned": 1, "failed": 1, "retried": 0, "surplus": 1}


def test_rank_agreement_is_spearmans_rho_over_the_shared_settings():
    assert sweep.rank_agreement(["a", "b", "c", "d"], ["a", "b", "c", "d"]) == (pytest.approx(1.0), 4)
    assert sweep.rank_agreement(["a", "b", "c"], ["c", "b", "a"]) == (pytest.approx(-1.0), 3)
    # "x" is searched in one study only: the comparison is over a, b, c, whose orders are a b c and b a c.
    rho, shared = sweep.rank_agreement(["a", "x", "b", "c"], ["b", "a", "c"])
    assert shared == 3 and rho == pytest.approx(1 - 6 * (1 + 1) / (3 * (9 - 1)))
    rho, shared = sweep.rank_agreement(["a", "b"], ["b", "a", "c"])
    assert shared == 2 and np.isnan(rho)
    # In words: a negative rho is a disagreement, never "agrees" (the chapter's first sentence said so of rho = -0.62).
    assert [sweep.agreement(r) for r in (1.0, 0.5, 0.0, -0.62, math.nan)] == [
        "they agree", "they agree in part", "they are unrelated", "they disagree", "not measurable"]
    import pandas as pd

    frame = lambda order: pd.DataFrame({"setting": order, "importance": [0.5, 0.3, 0.2], "low": [0.1] * 3, "high": [0.9] * 3})
    sentence = sweep.importance_sentence({"fanova": frame(["a", "b", "c"]), "ped_anova": frame(["c", "b", "a"])}, {"fanova": frame(["a", "b", "c"])}, 7)
    assert "ρ = -1.00: they disagree" in sentence and "ρ = 1.00: they agree" in sentence and "(first: c)" in sentence


def test_the_grid_table_and_sentence_read_the_complete_points():
    import pandas as pd

    frame = pd.DataFrame({"state": ["COMPLETE"] * 3 + ["FAIL"], "unroll": [5, 10, 5, 10], "meta_lr": [1e-3, 1e-3, 1e-2, 1e-2],
                          "value": [0.9, 1.2, 0.5, None]})
    heat = sweep.grid_heat(frame, ("unroll", "meta_lr"))
    assert heat.loc[1e-3, 5] == 0.9 and heat.loc[1e-2, 5] == 0.5 and np.isnan(heat.loc[1e-2, 10])
    sentence = sweep.grid_sentence(heat, "mean")
    assert "On the 3 complete grid points (mean loss over the horizon" in sentence
    assert "meta_lr = 0.01, unroll = 5 at 0.5; the worst 1.2; 2 of 3 points beat NAG." in sentence


def test_a_worker_joining_or_resuming_a_study_does_not_replay_its_random_trials(tmp_path, monkeypatch):
    """Seeded by the spec alone, every worker process re-sampled the startup trials the first one had run."""
    spec = sweep.load_spec(write_spec(tmp_path, trials=20, startup_trials=20))
    store = sweep.storage(f"sqlite:///{tmp_path / 'seeds.db'}")
    first = sweep.study(spec, store)
    def sampled(s):
        trial = s.ask()
        sweep.suggest(trial, spec)
        s.tell(trial, 1.0)
        return trial.params

    monkeypatch.delenv("L2L_SWEEP_WORKER", raising=False)
    before = [sampled(first) for _ in range(3)]
    later = sweep.study(spec, store)  # a worker opening the study after 3 trials
    after = [sampled(later) for _ in range(3)]
    assert len(before[0]) == 2 and not any(a == b for a in after for b in before)
    monkeypatch.setenv("L2L_SWEEP_WORKER", "1")
    assert sweep.sampler_seed(spec, store) != (monkeypatch.setenv("L2L_SWEEP_WORKER", "0") or sweep.sampler_seed(spec, store))
    # From scratch, one worker's sequence is reproducible: the same seed for the same study state.
    assert sweep.sampler_seed(spec, store) == sweep.sampler_seed(spec, store)


def test_two_workers_on_a_grid_study_run_every_point_exactly_once(tmp_path):
    # Optuna's GridSampler, asked by two workers at once, can give both the same point: the launcher enqueues them.
    around = {**sweep.DEFAULTS["quadratic"], **TINY["fixed"], "meta_lr": 3e-3, "hidden": 4}
    grid = sweep.grid_spec(sweep.spec_from_dict(TINY), around, ("meta_lr", "hidden"), points=2)
    spec_path = sweep.dump_spec(grid, tmp_path / f"{grid.name}.yaml")
    storage = f"sqlite:///{tmp_path / 'grid.db'}"
    store = sweep.storage(storage)
    assert sweep.enqueue_grid(grid, sweep.study(grid, store)) == 4
    assert sweep.enqueue_grid(grid, sweep.study(grid, store)) == 0  # idempotent: each point is held once
    process = worker(spec_path, tmp_path, storage, workers=2)
    output, _ = process.communicate(timeout=900)
    assert process.returncode == 0, output
    _, study, frame = check_complete(spec_path, storage, 4)
    points = sorted((t.params["meta_lr"], t.params["hidden"]) for t in study.trials if t.state.name == "COMPLETE")
    assert points == sorted((a, b) for a in grid.space["meta_lr"]["choices"] for b in grid.space["hidden"]["choices"])


def test_a_storage_password_is_never_printed_nor_put_on_a_workers_command_line(tmp_path, monkeypatch, capsys):
    url = "postgresql://me:s3cret-pw@127.0.0.1:1/l2l"
    assert sweep.masked(f"cannot open {url}: it said s3cret-pw", url) == "cannot open postgresql://me:***@127.0.0.1:1/l2l: it said ***"
    spec_path = write_spec(tmp_path)
    assert sweep.main(["check", str(spec_path), "--storage", url]) == 0
    assert sweep.main(["run", str(spec_path), "--storage", url, "--connect-timeout", "2"]) == 2  # nothing listens on port 1
    out = capsys.readouterr()
    assert "s3cret" not in out.out + out.err and "me:***@" in out.out and "cannot open the study storage" in out.err
    # Spawned workers read the URL from the environment: their command lines (what ps shows) do not hold it.
    import subprocess

    started = []

    class Recorder:
        def __init__(self, command, env):
            started.append((command, env))

        def wait(self):
            return 0

        def poll(self):
            return 0

    monkeypatch.setattr(subprocess, "Popen", Recorder)
    args = argparse.Namespace(spec=str(spec_path), storage=url, root="r", threads=1, heartbeat=30, grace=120, gpus="", connect_timeout=10, outage=300)
    assert sweep._spawn(args, 2) == 0
    assert all(url not in " ".join(command) and "s3cret" not in " ".join(command) and env[sweep.STORAGE_VARIABLE] == url for command, env in started)


def test_a_server_that_accepts_and_never_answers_is_given_up_on_within_the_connect_timeout():
    pytest.importorskip("psycopg")
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]
        started = time.monotonic()
        with pytest.raises(sweep.SpecError, match=r"cannot open the study storage 'postgresql://me:\*\*\*@127.0.0.1:.*--connect-timeout"):
            sweep.storage(f"postgresql://me:pw@127.0.0.1:{port}/l2l", connect_timeout=2)
        assert time.monotonic() - started < 30  # libpq's default waited 131 s here


def test_a_surplus_trial_is_closed_quietly(tmp_path, capfd):
    import optuna

    spec = sweep.spec_from_dict({**TINY, "name": "quiet", "trials": 1})
    store = sweep.storage(f"sqlite:///{tmp_path / 'quiet.db'}")
    study = sweep.study(spec, store)
    study.add_trial(optuna.create_trial(params={"meta_lr": 1e-3, "hidden": 4}, value=0.9, distributions={
        "meta_lr": optuna.distributions.FloatDistribution(1e-4, 1e-1, log=True), "hidden": optuna.distributions.CategoricalDistribution([4, 8])}))
    sweep._quiet_surplus()
    study.optimize(sweep.Objective(spec, str(tmp_path / "runs"), log=lambda line: None), n_trials=1, catch=(sweep.Surplus,))
    assert "surplus" in study.trials[-1].user_attrs
    err = capfd.readouterr().err
    assert "Traceback" not in err and "Surplus" not in err, err


def test_a_worker_rides_out_a_database_outage_and_stops_with_one_line_when_it_lasts(tmp_path, monkeypatch):
    """Storage calls fail while the 'server' is down: the worker waits, then carries on and finishes the study; an
    outage longer than the window ends it with StorageDown, whose message names the fix and hides the password."""
    import optuna

    spec = sweep.spec_from_dict({**TINY, "name": "outage", "trials": 2})
    store = sweep.storage(f"sqlite:///{tmp_path / 'outage.db'}")
    monkeypatch.setattr(time, "sleep", lambda s: None)
    real = optuna.storages.fail_stale_trials
    monkeypatch.setattr(optuna.storages, "fail_stale_trials", _failing_then(real, fails=2))
    lines = []
    assert sweep.work(spec, store, str(tmp_path / "runs"), log=lines.append, url="postgresql://me:pw@h/db") == 2
    assert any("lost the study storage (OperationalError" in line for line in lines) and any("answers again" in line for line in lines)
    assert not any("pw" in line.replace("postgresql://me:***", "") for line in lines if "storage" in line)
    monkeypatch.setattr(optuna.storages, "fail_stale_trials", _failing_then(real, fails=10 ** 9))
    with pytest.raises(sweep.StorageDown, match=r"postgresql://me:\*\*\*@h/db did not answer for 0 s .*start the workers again once it is back"):
        sweep.work(spec, store, str(tmp_path / "runs"), log=lines.append, outage_s=0, url="postgresql://me:pw@h/db")


def _failing_then(call, fails):
    from sqlalchemy.exc import OperationalError

    count = {"n": 0}

    def wrapped(*args, **kwargs):
        count["n"] += 1
        if count["n"] <= fails:
            raise OperationalError("SELECT 1", {}, Exception("could not connect to server"))
        return call(*args, **kwargs)

    return wrapped


def test_sigterm_to_the_launcher_reaches_its_workers_and_it_waits_for_them(tmp_path):
    spec_path = write_spec(tmp_path, name="term", fixed={**TINY["fixed"], "epochs": 200000})  # trials that outlast the test
    launcher = worker(spec_path, tmp_path, f"sqlite:///{tmp_path / 'term.db'}", workers=2)
    import psutil

    deadline = time.monotonic() + 120
    children = []
    while time.monotonic() < deadline and len(children) < 2:
        children = psutil.Process(launcher.pid).children()
        time.sleep(0.2)
    assert len(children) == 2
    time.sleep(5)  # the workers are training
    assert all(child.is_running() for child in children)
    launcher.send_signal(signal.SIGTERM)
    launcher.communicate(timeout=120)
    alive = [child for child in children if child.is_running() and child.status() != psutil.STATUS_ZOMBIE]
    for child in alive:  # the old launcher's orphans: end them, then fail
        child.kill()
    assert not alive


def test_a_budgeted_study_gives_every_trial_the_same_meta_updates_and_scores_it_at_one_horizon(tmp_path):
    """budget: epochs = budget / (horizon / unroll), so unroll 2 trains 5 epochs of 5 segments and unroll 5 trains
    13 epochs of 2 (26 updates: the budget rounded up to whole epochs); eval_horizon: every trial and NAG at step 6."""
    import optuna

    fixed = {k: v for k, v in TINY["fixed"].items() if k not in ("epochs", "unroll")}
    path = write_spec(tmp_path, name="budgeted", trials=2, sampler="grid", pruner="none", budget=25, eval_horizon=6,
                      space={"unroll": {"choices": [2, 5]}}, fixed=fixed)
    spec = sweep.load_spec(path)
    task, valid = sweep.task_problems(spec.task)
    epochs = {u: sweep.build_run(spec, {**sweep.DEFAULTS[spec.task], **fixed, "unroll": u}, task, valid, str(tmp_path / "keys")).config.epochs
              for u in (2, 5)}
    assert epochs == {2: 5, 5: 13}
    storage = f"sqlite:///{tmp_path / 'budgeted.db'}"
    store = sweep.storage(storage)
    sweep.enqueue_grid(spec, sweep.study(spec, store))
    sweep.work(spec, store, str(tmp_path / "runs"), log=lambda line: None)
    study = optuna.load_study(study_name="budgeted", storage=storage)
    done = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert sorted(t.user_attrs["epochs"] for t in done) == [5, 13] and {t.user_attrs["eval_horizon"] for t in done} == {6}
    assert "nag_h6" in study.user_attrs and "nag_h10" not in study.user_attrs


def test_a_study_made_before_a_spec_field_existed_is_read_with_that_fields_default(tmp_path):
    """The committed studies were made before budget and eval_horizon were fields: at their defaults (off) the study is
    the same, and it must open; given other values it is another study, refused."""
    store = sweep.storage(f"sqlite:///{tmp_path / 's.db'}")
    made = sweep.study(sweep.spec_from_dict(TINY), store)
    old = {k: v for k, v in made.user_attrs["spec"].items() if k not in ("budget", "eval_horizon")}
    made.set_user_attr("spec", old)
    assert sweep.study(sweep.spec_from_dict(TINY), store).user_attrs["spec"] == old  # opened, and left as it was
    with pytest.raises(sweep.SpecError, match=r"eval_horizon: 0 in the study, 7 in the spec"):
        sweep.study(sweep.spec_from_dict({**TINY, "eval_horizon": 7}), store)


DESIGN = {**TINY, "name": "design", "sampler": "design", "pruner": "none", "trials": 8,
          "space": {"meta_lr": {"choices": [1e-3, 1e-2]}, "hidden": {"choices": [4, 8]}, "seed": {"choices": [0, 1]}}}


@pytest.mark.parametrize("change, message", [
    ({"space": {**DESIGN["space"], "hidden": {"choices": [4, 8, 16]}}}, r"exactly two choices \(low, high\) for every searched setting but seed; give them to \['hidden'\]"),
    ({"space": {**DESIGN["space"], "seed": {"low": 0, "high": 3}}}, r"space.seed lists the replicates' seeds as choices"),
    ({"trials": 9}, r"trials \(9\) exceeds the design's 8 points"),
])
def test_a_design_spec_names_what_it_needs(change, message):
    with pytest.raises(sweep.SpecError, match=message):
        sweep.spec_from_dict({**DESIGN, **change})


def test_a_six_setting_design_is_the_16_point_fractional_factorial_once_per_seed():
    space = {"meta_lr": {"choices": [1e-3, 4e-3]}, "unroll": {"choices": [5, 25]}, "horizon": {"choices": [50, 100]},
             "scale": {"choices": [0.05, 0.2]}, "layers": {"choices": [1, 3]}, "batch": {"choices": [1, 2]}, "seed": {"choices": [0, 1]}}
    spec = sweep.spec_from_dict({**DESIGN, "task": "mnist", "trials": 32, "space": space, "fixed": {}})
    points = sweep.design_points(spec)
    assert len(points) == sweep.grid_size(spec) == 32 and len({tuple(sorted(p.items())) for p in points}) == 32
    for name, dim in space.items():  # balanced: every level of every setting in half the points
        assert [sum(p[name] == v for p in points) for v in dim["choices"]] == [16, 16], name
    # Resolution IV: no two settings' columns coincide, and none is the product of two others.
    from l2l import design

    coded = design.fractional_factorial(6)
    assert all(abs(coded[:, i] @ coded[:, j]) == 0 for i in range(6) for j in range(i))
    assert all(abs(coded[:, i] @ (coded[:, j] * coded[:, k])) < 16 for i in range(6) for j in range(6) for k in range(j) if i not in (j, k))


def test_a_design_study_runs_each_point_once_with_its_own_seed(tmp_path):
    import optuna

    spec = sweep.spec_from_dict(DESIGN)
    store = sweep.storage(f"sqlite:///{tmp_path / 'd.db'}")
    s = sweep.study(spec, store)
    assert sweep.enqueue_points(spec, s) == 8 and sweep.enqueue_points(spec, s) == 0  # held while waiting
    assert sweep.work(spec, store, str(tmp_path / "runs"), log=lambda line: None) == 8
    trials = optuna.load_study(study_name="design", storage=store).trials
    assert sorted(tuple(sorted(t.params.items())) for t in trials) == sorted(tuple(sorted(p.items())) for p in sweep.design_points(spec))
    assert all(t.state.name == "COMPLETE" for t in trials)
    by_point = {}
    for t in trials:
        assert t.user_attrs["settings"]["seed"] == t.params["seed"]
        by_point.setdefault((t.params["meta_lr"], t.params["hidden"]), set()).add(t.user_attrs["run_key"])
    assert all(len(keys) == 2 for keys in by_point.values())  # the two seeds of a point are two runs


def test_a_worker_carries_on_when_another_told_the_same_queued_trial_first(tmp_path, monkeypatch):
    """Two workers on SQLite can pop one waiting trial at once (seen in the two-worker grid test under load): the one
    that tells second gets Optuna's "Cannot tell a COMPLETE trial." and must carry on, not die; any other error still
    stops it."""
    import optuna

    spec = sweep.spec_from_dict({**TINY, "name": "race", "trials": 2})
    store = sweep.storage(f"sqlite:///{tmp_path / 'race.db'}")
    real = optuna.study.Study.optimize
    calls = {"n": 0}

    def once_told_elsewhere(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise ValueError("Cannot tell a COMPLETE trial.")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(optuna.study.Study, "optimize", once_told_elsewhere)
    lines = []
    assert sweep.work(spec, store, str(tmp_path / "runs"), log=lines.append) == 2
    assert any("another worker took and finished the same queued trial" in line for line in lines)
    monkeypatch.setattr(optuna.study.Study, "optimize", lambda self, *a, **k: (_ for _ in ()).throw(ValueError("a bug")))
    with pytest.raises(ValueError, match="a bug"):
        sweep.work(sweep.spec_from_dict({**TINY, "name": "race2", "trials": 1}), store, str(tmp_path / "runs"), log=lines.append)
