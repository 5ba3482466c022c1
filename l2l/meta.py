"""Meta-training: truncated backpropagation through the optimisee's steps.

Each epoch draws `batch` fresh problem instances and runs the LSTM on them
for `horizon` steps, in segments of `unroll` steps. After each segment the
meta-loss (the sum over its steps of the mean optimisee loss) is
differentiated with respect to the LSTM's weights, second derivatives
dropped (by a hand-written backward pass, segment_meta_gradient), and Adam
updates the weights; parameters and LSTM state carry on into the next
segment. Example:

    from l2l import meta, problems, learned_optimizer
    result = meta.meta_train(problems.Quadratic(), learned_optimizer.LSTMConfig(),
                             meta.MetaConfig(epochs=200), checkpoint_root="ckpt/")
    result.meta_params  # the best weights by validation

A run is keyed by a hash of everything that determines it (run_key): its
checkpoints live in checkpoint_root/<key>/, so a changed setting starts a
sibling run, and the same settings resume a killed run from its last
checkpoint, ending where an uninterrupted run would, or reuse a finished
one. The meta-optimiser is any pure optimiser of l2l.optimizers; its state is
checkpointed as whatever structure its init returns. A non-finite meta-loss
or meta-gradient stops the run cleanly: the update is not applied, the last
checkpoint and the best weights are kept, and `result.status` says where.
"""

import dataclasses
import hashlib
import json
import math
import os
import time
from typing import NamedTuple, Optional

try:  # the run folder's lock (MetaTrainer.run); POSIX only, and without it a run trains unlocked as before
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

import numpy as np
import pandas as pd
import tensorflow as tf

from l2l import learned_optimizer, optimizers
from l2l.problems import Mixture, loss_and_grads
from l2l.rollout import STREAMS, VALID_SEED, generator, trajectory

# Part of every run key: bump it when a change to the code alters what a run
# computes, so that old checkpoints are not resumed as if nothing changed.
CODE_VERSION = 1
# MetaConfig fields that do not change what a run computes, left out of its key:
# a run continued to more epochs, or checkpointed more often, is the same run.
NOT_IN_KEY = ("epochs", "checkpoint_every", "snapshot_every")
# Fields added after runs were first keyed: at these values (what runs from before
# the field existed did) they are left out of the key, so such a run keeps its key
# and resumes. "streams" defaults to the fixed "keyed"; only old runs say "counter".
OMITTED_AT_DEFAULT = {"select_on": "final", "streams": "counter", "curriculum": (), "patience": 3, "imitation": 0.0, "teacher": "adam",
                      "teacher_lr": 0.01}


@dataclasses.dataclass(frozen=True)
class MetaConfig:
    seed: int = 0  # seeds the LSTM's initial weights and the training problems
    epochs: int = 100  # meta-training epochs, each a fresh batch of problems run over the horizon
    batch: int = 128  # problem instances per epoch (paper: 128 quadratics)
    horizon: int = 100  # optimisee steps per epoch (paper: 100)
    unroll: int = 20  # optimisee steps per truncated-BPTT segment, one meta-update each (paper: 20)
    meta_lr: float = 1e-3  # the meta-optimiser's learning rate on the LSTM's weights
    meta_optimizer: str = "adam"  # which l2l.optimizers baseline updates the LSTM's weights (paper: adam)
    clip_norm: float = 0.0  # clip the meta-gradient to this global norm; 0: no clipping
    valid_every: int = 10  # epochs between validations on fixed held-out instances
    valid_instances: int = 128  # held-out instances for validation
    checkpoint_every: int = 25  # epochs between checkpoints, when a checkpoint_dir is given
    select_on: str = "final"  # validation metric that picks the kept weights: "final" loss at the horizon, or "mean" over steps 1..horizon
    snapshot_every: int = 0  # also keep the weights every this many epochs (checkpoint_dir/snapshots/); 0: none
    streams: str = "keyed"  # how seeds become random streams (l2l.rollout.generator); "counter" only for runs made before the fix
    # Training techniques beyond the paper (Chen et al. 2020, "Training stronger baselines for learning to optimize"):
    curriculum: tuple = ()  # training horizons of successive stages, e.g. (100, 200, 500, 1000), the last equal to horizon; empty: horizon throughout
    patience: int = 3  # with a curriculum: validations without improvement before the next stage starts from the stage's best weights
    imitation: float = 0.0  # probability that an epoch trains the LSTM to reproduce a teacher's updates along the teacher's path
    teacher: str = "adam"  # the l2l.optimizers baseline imitated
    teacher_lr: float = 0.01  # the teacher's learning rate

    def __post_init__(self):
        object.__setattr__(self, "curriculum", tuple(int(h) for h in self.curriculum))  # a list from YAML or JSON reads as the same run
        positive = ["epochs", "batch", "horizon", "unroll", "valid_every", "valid_instances", "checkpoint_every"]
        bad = [f"{name}={getattr(self, name)}" for name in positive if getattr(self, name) < 1]
        if bad:
            raise ValueError(f"MetaConfig needs positive {', '.join(bad)}")
        if self.horizon % self.unroll:
            raise ValueError(f"MetaConfig.horizon ({self.horizon}) must be a multiple of unroll ({self.unroll})")
        if not self.meta_lr > 0 or self.clip_norm < 0:
            raise ValueError(f"MetaConfig needs meta_lr > 0 and clip_norm >= 0, got {self.meta_lr}, {self.clip_norm}")
        if self.select_on not in ("final", "mean") or self.snapshot_every < 0:
            raise ValueError(f"MetaConfig needs select_on 'final' or 'mean' and snapshot_every >= 0, got {self.select_on!r}, {self.snapshot_every}")
        if self.streams not in STREAMS:
            raise ValueError(f"MetaConfig.streams must be one of {STREAMS}, got {self.streams!r}")
        if self.meta_optimizer not in optimizers.BASELINES:
            raise ValueError(f"MetaConfig.meta_optimizer {self.meta_optimizer!r} is unknown; choose one of {sorted(optimizers.BASELINES)}")
        stages = self.curriculum
        if stages and (any(h % self.unroll for h in stages) or list(stages) != sorted(set(stages)) or stages[-1] != self.horizon):
            raise ValueError(f"MetaConfig.curriculum {stages} must rise strictly, hold multiples of unroll ({self.unroll}) and end at horizon ({self.horizon})")
        if self.patience < 1:
            raise ValueError(f"MetaConfig.patience must be >= 1, got {self.patience}")
        if not 0.0 <= self.imitation < 1.0 or not self.teacher_lr > 0:
            raise ValueError(f"MetaConfig needs 0 <= imitation < 1 and teacher_lr > 0, got {self.imitation}, {self.teacher_lr}")
        if self.teacher not in optimizers.BASELINES:
            raise ValueError(f"MetaConfig.teacher {self.teacher!r} is unknown; choose one of {sorted(optimizers.BASELINES)}")

    def stage_horizons(self, stage):
        """(training horizon, validation horizon) in a curriculum stage: the stage's length and the next stage's
        (the last stage validates at its own); without a curriculum, horizon for both."""
        if not self.curriculum:
            return self.horizon, self.horizon
        return self.curriculum[stage], self.curriculum[min(stage + 1, len(self.curriculum) - 1)]


class MetaResult(NamedTuple):
    meta_params: dict  # weights with the best validation loss
    last_params: dict  # weights at the end of the run
    lstm_config: learned_optimizer.LSTMConfig | dict  # or group -> LSTMConfig, with parameter groups
    history: pd.DataFrame  # per epoch: meta_loss, valid_loss (NaN where not validated), seconds
    best_epoch: int
    best_valid: float  # mean loss at the horizon on the validation instances
    status: str  # "completed" or why the run stopped
    wall_time_s: float  # meta-training time, summed over resumed runs
    key: str  # run_key(...): what the run's checkpoints are filed under

    def optimizer(self, problem=None):
        """The trained LSTM as an optimiser; with parameter groups, for `problem`'s groups."""
        return learned_optimizer.learned(self.meta_params, self.lstm_config, getattr(problem, "groups", None))


def describe_run(problem, lstm_config, config, valid_problem=None):
    """Everything that determines a meta-training run, as plain JSON-able data."""
    described = {
        "code_version": CODE_VERSION,
        "problem": problem.describe(),
        "lstm": (lstm_config.describe() if isinstance(lstm_config, learned_optimizer.LSTMConfig)
                 else {g: c.describe() for g, c in learned_optimizer.as_groups(lstm_config).items()}),
        "meta": {k: v for k, v in dataclasses.asdict(config).items() if k not in NOT_IN_KEY and OMITTED_AT_DEFAULT.get(k, ...) != v},
    }
    if valid_problem is not None and valid_problem is not problem:
        described["valid_problem"] = valid_problem.describe()
    return json.loads(json.dumps(described))  # tuples become lists, as when read back


def run_key(problem, lstm_config, config, valid_problem=None):
    """16 hex digits of the sha256 of the run's canonical description."""
    return _key(describe_run(problem, lstm_config, config, valid_problem))


def _key(description):
    return hashlib.sha256(json.dumps(description, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]


def snapshots_in(run_folder):
    """epoch -> path of every snapshot in a run's folder (<root>/<key>), read without opening its checkpoints,
    so a chapter can read a run another process is training."""
    folder = os.path.join(run_folder, "snapshots")
    names = sorted(os.listdir(folder)) if os.path.isdir(folder) else []
    return {int(n[5:11]): os.path.join(folder, n) for n in names if n.startswith("epoch") and n.endswith(".weights.h5")}


def inspect_run(run_folder):
    """What a run folder holds, read only (nothing is created, moved or locked, so a run another process trains can be
    looked at): {"exists", "trained" (epochs of the newest readable checkpoint; 0: none), "checkpoints" (epoch -> None
    if readable, else why not, newest first), "history" (epochs run.json records; None: missing or unreadable),
    "snapshots" (epoch -> path)}. A checkpoint counts as readable when every tensor in it reads back (TF checks each one's
    checksum), as MetaTrainer's restore would need."""
    report = {"exists": os.path.isdir(run_folder), "trained": 0, "checkpoints": {}, "history": None, "snapshots": snapshots_in(run_folder)}
    try:
        with open(os.path.join(run_folder, "run.json")) as f:
            report["history"] = len(json.load(f)["history"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    for prefix in sorted(_checkpoints_on_disk(run_folder), key=_checkpoint_number, reverse=True):
        try:
            reader = tf.train.load_checkpoint(prefix)
            for name in reader.get_variable_to_shape_map():
                reader.get_tensor(name)
            epoch = int(reader.get_tensor("state/epoch/.ATTRIBUTES/VARIABLE_VALUE"))
            report["checkpoints"][_checkpoint_number(prefix)] = None
            report["trained"] = max(report["trained"], epoch)
        except Exception as error:  # TF raises DataLossError, OpError, NotFoundError... for a damaged or partial file
            report["checkpoints"][_checkpoint_number(prefix)] = f"{type(error).__name__}: {str(error).splitlines()[0][:120]}" if str(error) else type(error).__name__
    return report


class _State(tf.Module):
    """Everything a checkpoint holds."""

    def __init__(self, lstm_config, seed, meta_optimizer, streams="keyed"):
        super().__init__()
        initial = learned_optimizer.init_group_params(lstm_config, seed)
        self.weights = {k: tf.Variable(v) for k, v in initial.items()}
        self.best = {k: tf.Variable(v) for k, v in initial.items()}
        # The meta-optimiser's own state, whatever its structure, flattened into variables.
        self.optimizer_state = [tf.Variable(t) for t in tf.nest.flatten(meta_optimizer.init(initial))]
        self.epoch = tf.Variable(0, dtype=tf.int64)
        self.best_valid = tf.Variable(math.inf)
        self.best_epoch = tf.Variable(-1, dtype=tf.int64)
        self.wall_time = tf.Variable(0.0, dtype=tf.float64)
        self.rng = generator(seed, streams)
        # Validation's own stream (minibatches on image problems). Checkpointed, so a resumed run validates on the
        # minibatches an uninterrupted one would: restarted on every resume, a run's chosen epoch depended on where
        # it was interrupted (tests/test_faults.py, the MLP and ConvNet cases). MetaTrainer draws the fixed
        # validation instances from it first, as before, so an uninterrupted run's numbers are unchanged.
        self.valid_rng = generator(VALID_SEED + seed, streams)
        # The per-epoch history and the run's description travel inside the checkpoint,
        # so that run.json (a readable mirror) can be lost or stale without a gap.
        self.history = tf.Variable("[]")
        self.description = tf.Variable("")
        self.initial_valid = tf.Variable(math.nan)  # validation loss of the initial weights: the bar for "diverged"
        self.stage = tf.Variable(0, dtype=tf.int64)  # curriculum stage
        self.stale = tf.Variable(0, dtype=tf.int64)  # validations since the stage's best


def _checkpoints_on_disk(directory):
    """The prefixes of every ckpt-N.index in a run folder, readable or not."""
    import glob

    return [p[: -len(".index")] for p in glob.glob(os.path.join(directory, "ckpt-*.index"))]


def _checkpoint_number(prefix):
    import re

    return int(re.search(r"ckpt-(\d+)$", prefix).group(1))


class MetaTrainer:
    def __init__(self, problem, lstm_config=learned_optimizer.LSTMConfig(), config=MetaConfig(), checkpoint_root=None, valid_problem=None):
        self.problem, self.lstm_config, self.config = problem, lstm_config, config
        # Validation may use other data (e.g. held-out training images) than training.
        self.valid_problem = valid_problem or problem
        self.meta_optimizer = optimizers.BASELINES[config.meta_optimizer](config.meta_lr)
        self.state = _State(lstm_config, config.seed, self.meta_optimizer, config.streams)
        # The problems an epoch may train on (a Mixture's tasks, or the one problem), and which coordinates each
        # LSTM trains on each (None: one LSTM for all); the validation problem may differ in size.
        self.tasks = tuple(problem.tasks) if isinstance(problem, Mixture) else (problem,)
        self.task_parts = [learned_optimizer.partition(lstm_config, getattr(t, "groups", None), t.dim) for t in self.tasks]
        self.parts = self.task_parts[0]
        self.teacher = optimizers.BASELINES[config.teacher](config.teacher_lr)
        self._optimizer_template = self.meta_optimizer.init(dict(self.state.weights))
        valid_rng = self.state.valid_rng  # restored from a checkpoint below, after the fixed instances are drawn
        self.valid_tasks = tuple(self.valid_problem.tasks) if isinstance(self.valid_problem, Mixture) else (self.valid_problem,)
        self.valid_batches = []
        for task in self.valid_tasks:
            batch = task.sample(valid_rng, config.valid_instances)
            self.valid_batches.append((batch, task.init_params(valid_rng, batch)))
        self.valid_batch, self.valid_params = self.valid_batches[0]
        self.valid_rng = valid_rng
        self.history = []
        self.manager = None
        self.log_later = []  # what opening the checkpoints found, said when the run starts
        self.restored_from = None
        self.description = describe_run(problem, lstm_config, config, valid_problem)
        self.key = _key(self.description)
        self.checkpoint_dir = os.path.join(checkpoint_root, self.key) if checkpoint_root else None
        if self.checkpoint_dir:
            self._open_checkpoints(self.checkpoint_dir)
        self.train_unroll = tf.function(self._train_unroll)
        self.imitate_unroll = tf.function(self._imitate_unroll)
        self.validate = tf.function(self._validate)
        # The initial weights' validation draws its minibatches from a generator of its own, so that
        # the run's own validations see the minibatches they would see without it.
        self._initial_rng = generator(VALID_SEED + config.seed, config.streams)
        initial = learned_optimizer.init_group_params(lstm_config, config.seed)
        # At the run's horizon: with a curriculum, what its last stage's validations are compared with.
        self.validate_initial = tf.function(lambda: self._validate(self._initial_rng, initial))

    # -- checkpoints -------------------------------------------------------
    def _open_checkpoints(self, directory):
        from l2l.provenance import provenance

        os.makedirs(directory, exist_ok=True)
        self.run_file = os.path.join(directory, "run.json")
        saved = self._read_run_file()
        self.sessions = saved.get("sessions", []) + [provenance()]  # every process that trained this run, in order
        if saved.get("config", self.description) != self.description:
            raise ValueError(f"{directory!r} holds checkpoints of a different run ({saved['config']}), though its key matches; delete that folder to start over")
        self.manager = tf.train.CheckpointManager(tf.train.Checkpoint(state=self.state), directory, max_to_keep=2)
        index = os.path.join(directory, "checkpoint")
        if os.path.exists(index) and not self.manager.checkpoints and self._candidates(directory):
            # TF ignores an unparsable index and would list no checkpoint: keep it aside, find them by name.
            os.replace(index, index + ".unreadable")
            self.log_later.append(f"checkpoint index {index!r} unreadable; kept as checkpoint.unreadable, checkpoints found by name")
        self.restored_from = self._restore(directory, saved)
        self._newest_known = self._newest_on_disk()

    def _read_run_file(self):
        """run.json's content, or {} when it is missing or unreadable (the checkpoint holds what matters)."""
        if not os.path.exists(self.run_file):
            return {}
        try:
            with open(self.run_file) as f:
                saved = json.load(f)
            if not isinstance(saved, dict):
                raise ValueError("not a JSON object")
            return saved
        except (ValueError, OSError) as error:
            self.log_later.append(f"{self.run_file!r} unreadable ({error}); it is rewritten from the checkpoint at the next save")
            return {}

    def _candidates(self, directory):
        """Checkpoint prefixes, newest first: those the index lists, and any ckpt-N.index on disk it does not."""
        return sorted(set(self.manager.checkpoints) | set(_checkpoints_on_disk(directory)), key=_checkpoint_number, reverse=True)

    def _newest_on_disk(self):
        """The highest N of a ckpt-N.index in the run folder (-1: none), damaged or not."""
        return max(map(_checkpoint_number, _checkpoints_on_disk(self.checkpoint_dir)), default=-1)

    def _hold_folder(self, log):
        """Takes the run folder for this process while it trains, by an advisory lock on the folder, and returns its
        descriptor (None: no folder, or no fcntl). Two processes training one run at once would each overwrite the
        other's checkpoints: the second waits until the first ends (two sweep workers may draw the same settings).
        If another process trained the run further after this trainer opened it, the trainer opens it again, so
        that it resumes from the newest checkpoint instead of overwriting it with a stale state."""
        if self.checkpoint_dir is None or fcntl is None:
            return None
        fd = os.open(self.checkpoint_dir, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"run folder {self.checkpoint_dir!r} is being trained by another process; waiting until it ends, then resuming from its checkpoint")
            fcntl.flock(fd, fcntl.LOCK_EX)
        if self._newest_on_disk() > self._newest_known:
            self.log_later = [f"opened again: another process trained the run after this trainer opened it at ckpt-{self._newest_known}"]
            try:
                self._open_checkpoints(self.checkpoint_dir)
            except BaseException:
                os.close(fd)  # the folder's errors reach the caller with the lock released
                raise
        return fd

    def _restore(self, directory, saved):
        """Restores the newest readable checkpoint; returns its path (None: a fresh run)."""
        tried = []
        for prefix in self._candidates(directory):
            try:
                self._restore_one(prefix)
                description = self.state.description.numpy().decode()
                if description and json.loads(description) != self.description:
                    raise ValueError("it holds another run's description")
            except Exception as error:  # TF raises OpError, IndexError, ValueError... for a damaged file
                tried.append(f"{os.path.basename(prefix)} ({type(error).__name__}: {str(error).splitlines()[0][:120]})")
                continue
            if tried:
                self.log_later.append(f"unreadable checkpoints {tried}; resumed from the older {os.path.basename(prefix)}")
            self._after_restore(directory, saved)
            return prefix
        if tried:
            raise ValueError(f"no checkpoint in {directory!r} can be read (tried {tried}); delete that folder to start the run over")
        return None

    # Variables added to the checkpoint after runs already existed: a checkpoint
    # without them is an older run's, restored as it is (history from run.json).
    # A checkpoint without valid_rng validates on a stream restarted at the resume, as the code that wrote it did.
    ADDED_LATER = ("history", "description", "initial_valid", "stage", "stale", "valid_rng")

    def _restore_one(self, prefix):
        status = self.manager.checkpoint.restore(prefix)
        try:
            status.assert_existing_objects_matched()
        except AssertionError:
            names = {name for name, _ in tf.train.list_variables(prefix)}
            missing = [v for v in self.ADDED_LATER if not any(n.startswith(f"state/{v}/") for n in names)]
            core = all(any(n.startswith(f"state/{v}/") for n in names) for v in ("weights", "best", "optimizer_state", "epoch", "rng"))
            if not (missing and core):
                raise
            status.expect_partial()

    def _after_restore(self, directory, saved):
        trained = int(self.state.epoch.numpy())
        if trained > self.config.epochs:
            raise ValueError(
                f"the run in {directory!r} has already trained {trained} epochs, more than the {self.config.epochs} asked for; "
                f"ask for epochs >= {trained} to reuse it, or give another checkpoint root to train a shorter run from scratch"
            )
        history = json.loads(self.state.history.numpy().decode())
        if len(history) < trained:  # a checkpoint from before the history travelled inside it
            history = saved.get("history", [])
        if len(history) < trained:
            raise ValueError(f"the run in {directory!r} has trained {trained} epochs but its history records {len(history)}; delete that folder to start the run over")
        self.history = history[:trained]

    def _save(self):
        if self.manager is None:
            return
        self.state.history.assign(json.dumps(self.history))
        self.state.description.assign(json.dumps(self.description))
        self.manager.save(checkpoint_number=int(self.state.epoch.numpy()))
        tmp = self.run_file + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"key": self.key, "config": self.description, "sessions": self.sessions, "history": self.history}, f)
        os.replace(tmp, self.run_file)
        self._newest_known = max(self._newest_known, int(self.state.epoch.numpy()))

    def _snapshot(self, epoch):
        """The weights at this epoch, for curves over meta-training (written whole, then renamed)."""
        if self.checkpoint_dir is None:
            return
        folder = os.path.join(self.checkpoint_dir, "snapshots")
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, f"epoch{epoch:06d}.weights.h5")
        learned_optimizer.save_weights(path + ".tmp", {k: v.numpy() for k, v in self.state.weights.items()}, self.lstm_config,
                                       epoch=epoch, run_key=self.key)
        os.replace(path + ".tmp", path)

    def snapshots(self):
        """epoch -> path of every snapshot this run has written."""
        return snapshots_in(self.checkpoint_dir) if self.checkpoint_dir else {}

    # -- compiled pieces ---------------------------------------------------
    def meta_gradient(self, params, lstm_state, batch, task=0):
        """(meta-loss, its gradient by weight name, params, LSTM state) after one segment on task `task`."""
        meta = {k: w.read_value() for k, w in self.state.weights.items()}
        return segment_meta_gradient(self.tasks[task], self.lstm_config, self.config.unroll, meta, params, lstm_state, batch, self.state.rng,
                                     parts=self.task_parts[task])

    def _train_unroll(self, params, lstm_state, batch, task=0):
        """One truncated-BPTT segment and one meta-update; applied only if finite."""
        meta_loss, grads, params, lstm_state = self.meta_gradient(params, lstm_state, batch, task)
        meta_loss, finite = self._apply(meta_loss, grads)
        return meta_loss, params, lstm_state, finite

    def _imitate_unroll(self, params, lstm_state, teacher_state, batch, task=0):
        """One segment of imitation (segment_imitation_gradient) and one meta-update; applied only if finite."""
        meta = {k: w.read_value() for k, w in self.state.weights.items()}
        meta_loss, grads, params, lstm_state, teacher_state = segment_imitation_gradient(
            self.tasks[task], self.lstm_config, self.config.unroll, self.teacher, meta, params, lstm_state, teacher_state, batch, self.state.rng,
            parts=self.task_parts[task])
        meta_loss, finite = self._apply(meta_loss, grads)
        return meta_loss, params, lstm_state, teacher_state, finite

    def _apply(self, meta_loss, grads):
        """The meta-update from one segment's gradient, applied only if it and the meta-loss are finite: (meta-loss, finite)."""
        weights = self.state.weights
        finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(g)) for g in grads.values()])
        finite = tf.logical_and(finite, tf.math.is_finite(meta_loss))
        if self.config.clip_norm > 0:
            names = list(grads)
            clipped, _ = tf.clip_by_global_norm([grads[k] for k in names], self.config.clip_norm)
            grads = dict(zip(names, clipped))
        variables = self.state.optimizer_state
        old_state = tf.nest.pack_sequence_as(self._optimizer_template, [v.read_value() for v in variables])
        updates, new_state = self.meta_optimizer.update(grads, old_state, weights)
        keep = lambda new, old: tf.where(finite, new, old)
        for k, w in weights.items():
            w.assign(keep(w + updates[k], w))
        for variable, new, old in zip(variables, tf.nest.flatten(new_state), tf.nest.flatten(old_state)):
            variable.assign(keep(new, old))
        return meta_loss, finite

    def _validate(self, rng=None, weights=None, horizon=None):
        """The validation metric at `horizon` steps (default: the run's): on a Mixture, the geometric mean over its tasks."""
        weights = self.state.weights if weights is None else weights
        values = []
        for task, (batch, params) in zip(self.valid_tasks, self.valid_batches):
            optimizer = learned_optimizer.learned(weights, self.lstm_config, getattr(task, "groups", None))
            losses = trajectory(task, optimizer, batch, params, horizon or self.config.horizon, rng or self.valid_rng)
            values.append(tf.reduce_mean(losses[-1] if self.config.select_on == "final" else losses[1:]))
        return values[0] if len(values) == 1 else tf.exp(tf.reduce_mean(tf.math.log(tf.stack(values))))

    # -- the loop ----------------------------------------------------------
    def run(self, log=print, on_validate=None):
        """Trains to config.epochs (or from where a checkpoint left off). on_validate(epoch, valid_loss),
        called after each validation, may return True to stop the run there (a sweep's pruner): the run
        is checkpointed at that epoch first, so it can be resumed later. The run folder is held for this
        process meanwhile (another process training the same run waits for it)."""
        held = self._hold_folder(log)
        try:
            return self._run(log, on_validate)
        finally:
            if held is not None:
                os.close(held)

    def _run(self, log, on_validate):
        cfg, state = self.config, self.state
        report_every = max(1, cfg.epochs // 20)
        status = "completed"
        start_epoch = int(state.epoch.numpy())
        for line in self.log_later:
            log(line)
        if start_epoch:
            log(f"resumed at epoch {start_epoch} from {self.restored_from}")
        if math.isnan(float(state.initial_valid.numpy())):
            state.initial_valid.assign(self.validate_initial())
        started = time.perf_counter()
        elapsed_before = float(state.wall_time.numpy())
        while int(state.epoch.numpy()) < cfg.epochs:
            epoch_start = time.perf_counter()
            epoch = int(state.epoch.numpy())
            # What an epoch's segments change (weights, meta-optimiser state, the generator), kept should it go
            # non-finite; not every variable: the history string alone grows with the run.
            changing = [*state.weights.values(), *state.optimizer_state, state.rng.state]
            good = [v.numpy() for v in changing]
            stage = int(state.stage.numpy())
            horizon, valid_horizon = cfg.stage_horizons(stage)
            segments = horizon // cfg.unroll
            # Draws only where a technique asks for them, so that runs without one keep their random streams.
            task = self.problem.pick(state.rng) if len(self.tasks) > 1 else 0
            imitate = cfg.imitation > 0 and float(state.rng.uniform([], dtype=tf.float64)) < cfg.imitation
            problem = self.tasks[task]
            batch = problem.sample(state.rng, cfg.batch)
            params = problem.init_params(state.rng, batch)
            lstm_state = learned_optimizer.init_group_states(self.lstm_config, self.task_parts[task], cfg.batch, problem.dim)
            teacher_state = self.teacher.init(params) if imitate else None
            losses, finites = [], []
            for _ in range(segments):
                if imitate:
                    meta_loss, params, lstm_state, teacher_state, finite = self.imitate_unroll(params, lstm_state, teacher_state, batch, task)
                else:
                    meta_loss, params, lstm_state, finite = self.train_unroll(params, lstm_state, batch, task)
                losses.append(meta_loss)
                finites.append(finite)
            # One host sync per epoch, not per segment. A non-finite segment
            # applied no update, and every later one of the epoch starts from
            # its non-finite parameters and applies none either.
            losses, finites = tf.stack(losses).numpy(), tf.stack(finites).numpy()
            if not finites.all():
                segment = int(np.argmin(finites))
                for variable, value in zip(changing, good):
                    variable.assign(value)
                self._save()  # the state at the start of the failed epoch: nothing trained before it is lost
                status = (
                    f"stopped at epoch {epoch + 1}, segment {segment + 1}/{segments}: non-finite meta-loss "
                    f"({losses[segment]}) or meta-gradient; no update of that epoch is kept: weights as after epoch {epoch}"
                    + (f", checkpointed in {self.manager.latest_checkpoint}" if self.manager else "")
                )
                log(status)
                break
            total = float(losses.sum())
            state.epoch.assign_add(1)
            epoch += 1
            row = {"epoch": epoch, "meta_loss": total / segments, "valid_loss": math.nan, "seconds": time.perf_counter() - epoch_start}
            row.update({"stage": stage} if cfg.curriculum else {}, **({"task": task} if len(self.tasks) > 1 else {}),
                       **({"imitation": imitate} if cfg.imitation else {}))
            if epoch % cfg.valid_every == 0 or epoch == cfg.epochs:
                valid = float(self.validate(horizon=valid_horizon) if cfg.curriculum else self.validate())
                row["valid_loss"] = valid
                if math.isfinite(valid) and valid < float(state.best_valid.numpy()):
                    state.best_valid.assign(valid)
                    state.best_epoch.assign(epoch)
                    state.stale.assign(0)
                    for k, w in state.weights.items():
                        state.best[k].assign(w)
                else:
                    state.stale.assign_add(1)
                if cfg.curriculum and stage + 1 < len(cfg.curriculum) and int(state.stale.numpy()) >= cfg.patience and epoch < cfg.epochs:
                    self._next_stage(log, epoch, stage)
            self.history.append(row)
            state.wall_time.assign(elapsed_before + time.perf_counter() - started)
            if epoch % report_every == 0 or epoch == cfg.epochs:
                log(self._progress(epoch, started, start_epoch))
            if cfg.snapshot_every and epoch % cfg.snapshot_every == 0:
                self._snapshot(epoch)
            stop = on_validate is not None and not math.isnan(row["valid_loss"]) and bool(on_validate(epoch, row["valid_loss"]))
            if stop or epoch % cfg.checkpoint_every == 0 or epoch == cfg.epochs:
                self._save()
            if stop and epoch < cfg.epochs:
                status = f"stopped early at epoch {epoch} of {cfg.epochs}: on_validate asked to (validation {row['valid_loss']:.4g})"
                log(status)
                break
        state.wall_time.assign(elapsed_before + time.perf_counter() - started)
        return self.result(status if status != "completed" else self._diverged() or status)

    def _next_stage(self, log, epoch, stage):
        """A curriculum's next stage (Chen et al. 2020): training resumes from this stage's best weights, and the best
        is sought anew, since validation now runs to another horizon."""
        if int(self.state.best_epoch.numpy()) >= 0:
            for k, w in self.state.weights.items():
                w.assign(self.state.best[k])
        self.state.stage.assign(stage + 1)
        self.state.stale.assign(0)
        self.state.best_valid.assign(math.inf)
        horizon, valid_horizon = self.config.stage_horizons(stage + 1)
        log(f"epoch {epoch}: {self.config.patience} validations without improvement; curriculum stage {stage + 2} of {len(self.config.curriculum)} "
            f"(training horizon {horizon}, validation {valid_horizon}) from the best weights of epoch {int(self.state.best_epoch.numpy())}")

    def _diverged(self):
        """Why the run counts as diverged, or "": its best validation is no better than its initial weights'.
        A curriculum run that ended before its last stage says so instead: its validations ran to another horizon."""
        cfg = self.config
        if cfg.curriculum and int(self.state.stage.numpy()) + 1 < len(cfg.curriculum):
            stage = int(self.state.stage.numpy())
            return (f"completed in curriculum stage {stage + 1} of {len(cfg.curriculum)}: training horizon {cfg.stage_horizons(stage)[0]}, "
                    f"best validation at {cfg.stage_horizons(stage)[1]} steps")
        best, initial = float(self.state.best_valid.numpy()), float(self.state.initial_valid.numpy())
        if int(self.state.best_epoch.numpy()) >= 0 and not best < initial:
            return f"diverged: best validation loss {best:.4g} is no better than the initial weights' {initial:.4g}"
        if int(self.state.best_epoch.numpy()) < 0 and self.history and any(not math.isnan(r["valid_loss"]) for r in self.history):
            return f"diverged: no validation loss was finite (the initial weights' was {initial:.4g})"
        return ""

    def _progress(self, epoch, started, start_epoch):
        cfg = self.config
        done = epoch - start_epoch
        per_epoch = (time.perf_counter() - started) / max(done, 1)
        recent = [r["meta_loss"] for r in self.history[-max(1, cfg.epochs // 20):]]
        best_epoch = int(self.state.best_epoch.numpy())
        best = f"{float(self.state.best_valid.numpy()):.4g} (epoch {best_epoch})" if best_epoch >= 0 else "not yet validated"
        width = 20
        filled = int(width * epoch / cfg.epochs)
        return (
            f"[{'#' * filled}{'.' * (width - filled)}] epoch {epoch}/{cfg.epochs}  "
            f"meta-loss {sum(recent) / len(recent):.4g}  best valid {best}  "
            f"{per_epoch:.2f} s/epoch  eta {per_epoch * (cfg.epochs - epoch) / 60:.1f} min"
        )

    def result(self, status="completed"):
        state = self.state
        extra = [k for k in ("stage", "task", "imitation") if any(k in r for r in self.history)]
        history = pd.DataFrame(self.history, columns=["epoch", "meta_loss", "valid_loss", "seconds", *extra])
        best_epoch = int(state.best_epoch.numpy())
        # Never validated finitely: the initial weights, not whatever the last update left.
        best = state.best if best_epoch >= 0 else learned_optimizer.init_group_params(self.lstm_config, self.config.seed)
        return MetaResult(
            meta_params={k: tf.constant(np.asarray(v)) for k, v in best.items()},
            last_params={k: tf.constant(v.numpy()) for k, v in state.weights.items()},
            lstm_config=self.lstm_config,
            history=history,
            best_epoch=best_epoch,
            best_valid=float(state.best_valid.numpy()),
            status=status,
            wall_time_s=float(state.wall_time.numpy()),
            key=self.key,
        )


def segment_meta_gradient(problem, lstm_config, unroll, meta_params, params, lstm_state, batch, rng=None, fused=True, parts=None):
    """One truncated-BPTT segment: (meta-loss, its gradient by meta-parameter name, params, LSTM state).

    The meta-loss is the sum over the segment's steps t = 1..unroll of the
    mean optimisee loss. With second derivatives dropped, its gradient with
    respect to the params at step t is just the optimisee's own gradient
    there (over the number of instances), which the forward pass computes
    anyway; so the backward pass needs no tape: it runs lstm_backward from
    the last step to the first, feeding each step the sum of the optimisee
    gradients of all later steps. benchmarks/reference.py computes the same
    with tf.GradientTape, and tests/test_reference.py compares the two.
    With parameter groups, lstm_config maps group -> LSTMConfig and parts is
    learned_optimizer.partition(...) of the problem; lstm_state then maps
    group -> LSTMState.
    """
    n = tf.cast(tf.shape(params)[0], params.dtype)
    saved, later_grads, meta_loss = [], [], 0.0
    for t in range(unroll):
        loss, grads = loss_and_grads(problem, params, batch, rng)
        if t > 0:  # the segment's first loss does not depend on this segment's updates
            meta_loss += tf.reduce_mean(loss)
            later_grads.append(grads)
        updates, lstm_state, step = learned_optimizer.grouped_forward(meta_params, lstm_state, grads, lstm_config, parts, fused)
        saved.append(step)
        params = params + updates
    loss, grads = loss_and_grads(problem, params, batch, rng)
    meta_loss += tf.reduce_mean(loss)

    d_params, d_state, total = grads / n, None, None
    for t in reversed(range(unroll)):
        d_meta, d_state = learned_optimizer.grouped_backward(meta_params, saved[t], d_params, d_state, lstm_config, parts, fused)
        total = d_meta if total is None else {k: total[k] + d_meta[k] for k in total}
        if t > 0:
            d_params += later_grads[t - 1] / n
    return meta_loss, total, params, lstm_state


def segment_imitation_gradient(problem, lstm_config, unroll, teacher, meta_params, params, lstm_state, teacher_state, batch, rng=None, fused=True,
                               parts=None):
    """One segment of imitation learning (Chen et al. 2020): the teacher (an l2l.optimizers optimiser) takes the
    steps, and the LSTM, fed the same gradients, is trained to reproduce its updates. Meta-loss: the sum over the
    segment's steps of the mean over instances and coordinates of (LSTM update - teacher update)^2. The gradients
    along the teacher's path do not depend on the LSTM, so the backward pass runs through the LSTM's own state
    only, never through the optimisee. Returns (meta-loss, its gradient by meta-parameter name, params, LSTM state,
    teacher state)."""
    size = tf.cast(tf.size(params), params.dtype)
    saved, differences, meta_loss = [], [], 0.0
    for _ in range(unroll):
        _, grads = loss_and_grads(problem, params, batch, rng)
        updates, lstm_state, step = learned_optimizer.grouped_forward(meta_params, lstm_state, grads, lstm_config, parts, fused)
        target, teacher_state = teacher.update(grads, teacher_state, params)
        difference = updates - target
        meta_loss += tf.reduce_sum(tf.square(difference)) / size
        saved.append(step)
        differences.append(difference)
        params = params + target
    d_state, total = None, None
    for t in reversed(range(unroll)):
        d_meta, d_state = learned_optimizer.grouped_backward(meta_params, saved[t], 2.0 * differences[t] / size, d_state, lstm_config, parts, fused)
        total = d_meta if total is None else {k: total[k] + d_meta[k] for k in total}
    return meta_loss, total, params, lstm_state, teacher_state


def meta_train(problem, lstm_config=learned_optimizer.LSTMConfig(), config=MetaConfig(), checkpoint_root: Optional[str] = None, log=print, valid_problem=None):
    """Meta-trains an LSTM optimiser on `problem`; see the module docstring."""
    return MetaTrainer(problem, lstm_config, config, checkpoint_root, valid_problem).run(log)
