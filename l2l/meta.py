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
one (l2l.run_folder keeps the folder). How a segment becomes a meta-gradient
is an estimator of l2l.estimators (truncated backpropagation, imitation),
picked per epoch. The meta-optimiser is any pure optimiser of l2l.optimizers;
its state is checkpointed as whatever structure its init returns. A non-finite meta-loss
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

import numpy as np
import pandas as pd
import tensorflow as tf

from l2l import estimators, learned_optimizer, optimizers
from l2l.estimators import segment_imitation_gradient, segment_meta_gradient  # noqa: F401  (their home before estimators.py)
from l2l.problems import Mixture
from l2l.rollout import STREAMS, VALID_SEED, generator, trajectory
from l2l.run_folder import RunFolder, inspect_run, snapshots_in  # noqa: F401  (their home before run_folder.py)
from l2l.streams import at_start

# Part of every run key: bump it when a change to the code alters what a run
# computes, so that old checkpoints are not resumed as if nothing changed.
CODE_VERSION = 1
# MetaConfig fields that do not change what a run computes, left out of its key:
# a run continued to more epochs, or checkpointed more often, is the same run.
NOT_IN_KEY = ("epochs", "checkpoint_every", "snapshot_every", "recompute")
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
    # How, not what: left out of the run key (tests/test_meta.py checks that the results are bit-identical).
    recompute: bool = False  # keep only the LSTM's inputs and states per step, recompute its gates backward (MNIST: 33 -> 11 kB per coordinate, 1.1-1.4x the time)

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


def _fixed_instances(tasks, rng, instances):
    """[(instances, initial parameters)] of each task, drawn in turn from `rng`: a run's fixed validation problems."""
    drawn = []
    for task in tasks:
        batch = task.sample(rng, instances)
        drawn.append((batch, task.init_params(rng, batch)))
    return drawn


class MetaTrainer:
    """One run: its state, its folder (l2l.run_folder.RunFolder, with a checkpoint_root) and the epoch loop. Each epoch
    picks a gradient estimator (l2l.estimators) and runs it over the horizon's segments, one meta-update each."""

    def __init__(self, problem, lstm_config=learned_optimizer.LSTMConfig(), config=MetaConfig(), checkpoint_root=None, valid_problem=None):
        self.problem, self.lstm_config, self.config = problem, lstm_config, config
        self.valid_problem = valid_problem or problem  # validation may use other data (e.g. held-out training images) than training
        self.meta_optimizer = optimizers.BASELINES[config.meta_optimizer](config.meta_lr)
        self.state = _State(lstm_config, config.seed, self.meta_optimizer, config.streams)
        # The problems an epoch may train on (a Mixture's tasks, or the one problem), and which coordinates each
        # LSTM trains on each (None: one LSTM for all); the validation problem may differ in size.
        self.tasks = tuple(problem.tasks) if isinstance(problem, Mixture) else (problem,)
        self.task_parts = [learned_optimizer.partition(lstm_config, getattr(t, "groups", None), t.dim) for t in self.tasks]
        self._optimizer_template = self.meta_optimizer.init(dict(self.state.weights))
        self.valid_rng = self.state.valid_rng  # restored from a checkpoint below, after the fixed instances are drawn
        self.valid_tasks = tuple(self.valid_problem.tasks) if isinstance(self.valid_problem, Mixture) else (self.valid_problem,)
        self.valid_batches = _fixed_instances(self.valid_tasks, self.valid_rng, config.valid_instances)
        self.description = describe_run(problem, lstm_config, config, valid_problem)
        self.key = _key(self.description)
        self.checkpoint_dir = os.path.join(checkpoint_root, self.key) if checkpoint_root else None
        self.folder = RunFolder(self.checkpoint_dir, self.state, self.description, self.key, config.epochs) if self.checkpoint_dir else None
        self.history = list(self.folder.history) if self.folder else []
        self.restored_from = self.folder.restored_from if self.folder else None
        # One compiled segment per estimator the run may pick: segment, meta-update, finiteness.
        self.estimators = {name: estimators.ESTIMATORS[name](config) for name in estimators.used(config)}
        self.steps = {name: tf.function(lambda *args, name=name: self._segment(name, *args)) for name in self.estimators}
        # One trace validates the run's and the initial weights (variables passed in: no retrace; a second trace took a
        # quarter of a smoke run's meta-training).
        self._validate_weights = tf.function(lambda weights, horizon=None: self._validate(None, weights, horizon))
        self._initial_weights = {k: tf.Variable(v)  # trainable, as the run's are: the flag is part of the trace's signature
                                 for k, v in learned_optimizer.init_group_params(lstm_config, config.seed).items()}

    def validate(self, horizon=None):
        return self._validate_weights(dict(self.state.weights), horizon)  # the current weights, at `horizon` (default: the run's)

    def validate_initial(self):
        """The initial weights at the run's horizon, on the validation seed's fresh stream; the run's stream is left as it was."""
        with at_start(self.valid_rng, VALID_SEED + self.config.seed, self.config.streams):
            return self._validate_weights(self._initial_weights)

    def snapshots(self):
        return self.folder.snapshots() if self.folder else {}  # epoch -> path of every snapshot this run has written

    def _save(self):
        if self.folder:
            self.folder.save(self.history)

    def _segment(self, name, params, lstm_state, carry, batch, task=0):
        """One segment of estimator `name` and its meta-update, applied only if finite: (meta-loss, params, LSTM state, carry, finite)."""
        meta = {k: w.read_value() for k, w in self.state.weights.items()}
        meta_loss, grads, params, lstm_state, carry = self.estimators[name].segment(
            self.tasks[task], self.lstm_config, self.config.unroll, meta, params, lstm_state, carry, batch, self.state.rng, self.task_parts[task])
        finite = apply_if_finite(self.meta_optimizer, self._optimizer_template, self.state, meta_loss, grads, self.config.clip_norm)
        return meta_loss, params, lstm_state, carry, finite

    def _validate(self, rng=None, weights=None, horizon=None):
        """The validation metric at `horizon` steps (default: the run's): on a Mixture, the geometric mean over its tasks."""
        weights = self.state.weights if weights is None else weights
        values = []
        for task, (batch, params) in zip(self.valid_tasks, self.valid_batches):
            optimizer = learned_optimizer.learned(weights, self.lstm_config, getattr(task, "groups", None))
            losses = trajectory(task, optimizer, batch, params, horizon or self.config.horizon, rng or self.valid_rng)
            values.append(tf.reduce_mean(losses[-1] if self.config.select_on == "final" else losses[1:]))
        return values[0] if len(values) == 1 else tf.exp(tf.reduce_mean(tf.math.log(tf.stack(values))))

    def run(self, log=print, on_validate=None):
        """Trains to config.epochs (or from where a checkpoint left off). on_validate(epoch, valid_loss),
        called after each validation, may return True to stop the run there (a sweep's pruner): the run
        is checkpointed at that epoch first, so it can be resumed later. The run folder is held for this
        process meanwhile (another process training the same run waits for it)."""
        held = self.folder.hold(log) if self.folder else None
        if self.folder:  # held again after another process trained the run: its history, and where it was restored from
            self.history, self.restored_from = list(self.folder.history), self.folder.restored_from
        try:
            return self._run(log, on_validate)
        finally:
            if held is not None:
                os.close(held)

    def _run(self, log, on_validate):
        cfg, state = self.config, self.state
        status, start_epoch = "completed", int(state.epoch.numpy())
        for line in self.folder.log_later if self.folder else []:
            log(line)
        if start_epoch:
            log(f"resumed at epoch {start_epoch} from {self.restored_from}")
        if math.isnan(float(state.initial_valid.numpy())):
            state.initial_valid.assign(self.validate_initial())
        started, elapsed_before = time.perf_counter(), float(state.wall_time.numpy())
        while int(state.epoch.numpy()) < cfg.epochs:
            row, failure = self._epoch()
            if failure:
                log(failure)
                status = failure
                break
            epoch = row["epoch"]
            if epoch % cfg.valid_every == 0 or epoch == cfg.epochs:
                row["valid_loss"] = self._validation(epoch, row.get("stage", 0), log)
            self.history.append(row)
            state.wall_time.assign(elapsed_before + time.perf_counter() - started)
            if epoch % max(1, cfg.epochs // 20) == 0 or epoch == cfg.epochs:
                log(progress(self, epoch, started, start_epoch))
            if cfg.snapshot_every and epoch % cfg.snapshot_every == 0 and self.folder:
                self.folder.snapshot(epoch, self.lstm_config)
            stop = on_validate is not None and not math.isnan(row["valid_loss"]) and bool(on_validate(epoch, row["valid_loss"]))
            if stop or epoch % cfg.checkpoint_every == 0 or epoch == cfg.epochs:
                self._save()
            if stop and epoch < cfg.epochs:
                status = f"stopped early at epoch {epoch} of {cfg.epochs}: on_validate asked to (validation {row['valid_loss']:.4g})"
                log(status)
                break
        state.wall_time.assign(elapsed_before + time.perf_counter() - started)
        return self.result(status if status != "completed" else diverged(self.config, self.state, self.history) or status)

    def _epoch(self):
        """One epoch's segments: (its history row, None), or (None, why the run stops) when a segment was not finite;
        the state is then as at the epoch's start, and checkpointed."""
        cfg, state = self.config, self.state
        epoch_start, epoch = time.perf_counter(), int(state.epoch.numpy())
        # What an epoch's segments change (weights, meta-optimiser state, the generator), kept should it go
        # non-finite; not every variable: the history string alone grows with the run.
        changing = [*state.weights.values(), *state.optimizer_state, state.rng.state]
        good = [v.numpy() for v in changing]
        stage = int(state.stage.numpy())
        segments = cfg.stage_horizons(stage)[0] // cfg.unroll
        # Draws only where a technique asks for them, so that runs without one keep their random streams.
        task = self.problem.pick(state.rng) if len(self.tasks) > 1 else 0
        name = estimators.pick(cfg, state.rng)
        problem = self.tasks[task]
        batch = problem.sample(state.rng, cfg.batch)
        params = problem.init_params(state.rng, batch)
        lstm_state = learned_optimizer.init_group_states(self.lstm_config, self.task_parts[task], cfg.batch, problem.dim)
        carry = self.estimators[name].start(params)
        losses, finites = [], []
        for _ in range(segments):
            meta_loss, params, lstm_state, carry, finite = self.steps[name](params, lstm_state, carry, batch, task)
            losses.append(meta_loss)
            finites.append(finite)
        # One host sync per epoch, not per segment. A non-finite segment applied no update, and every later one of
        # the epoch starts from its non-finite parameters and applies none either.
        losses, finites = tf.stack(losses).numpy(), tf.stack(finites).numpy()
        if not finites.all():
            segment = int(np.argmin(finites))
            for variable, value in zip(changing, good):
                variable.assign(value)
            self._save()  # the state at the start of the failed epoch: nothing trained before it is lost
            return None, (f"stopped at epoch {epoch + 1}, segment {segment + 1}/{segments}: non-finite meta-loss "
                          f"({losses[segment]}) or meta-gradient; no update of that epoch is kept: weights as after epoch {epoch}"
                          + (f", checkpointed in {self.folder.manager.latest_checkpoint}" if self.folder else ""))
        state.epoch.assign_add(1)
        row = {"epoch": epoch + 1, "meta_loss": float(losses.sum()) / segments, "valid_loss": math.nan, "seconds": time.perf_counter() - epoch_start}
        row.update({"stage": stage} if cfg.curriculum else {}, **({"task": task} if len(self.tasks) > 1 else {}),
                   **({"imitation": name == "imitation"} if cfg.imitation else {}))
        return row, None

    def _validation(self, epoch, stage, log):
        """Validates, keeps the best weights, and moves a curriculum on when it stalls; returns the validation loss."""
        cfg, state = self.config, self.state
        valid = float(self.validate(horizon=cfg.stage_horizons(stage)[1]) if cfg.curriculum else self.validate())
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
        return valid

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
            lstm_config=self.lstm_config, history=history, best_epoch=best_epoch, best_valid=float(state.best_valid.numpy()),
            status=status, wall_time_s=float(state.wall_time.numpy()), key=self.key,
        )


def apply_if_finite(meta_optimizer, template, state, meta_loss, grads, clip_norm=0.0):
    """The meta-update of state.weights (and state.optimizer_state, packed as `template`) from one segment's gradient,
    clipped to clip_norm if > 0, and applied only if it and the meta-loss are finite; returns that finiteness."""
    weights = state.weights
    finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(g)) for g in grads.values()])
    finite = tf.logical_and(finite, tf.math.is_finite(meta_loss))
    if clip_norm > 0:
        names = list(grads)
        clipped, _ = tf.clip_by_global_norm([grads[k] for k in names], clip_norm)
        grads = dict(zip(names, clipped))
    variables = state.optimizer_state
    old_state = tf.nest.pack_sequence_as(template, [v.read_value() for v in variables])
    updates, new_state = meta_optimizer.update(grads, old_state, weights)
    keep = lambda new, old: tf.where(finite, new, old)
    for k, w in weights.items():
        w.assign(keep(w + updates[k], w))
    for variable, new, old in zip(variables, tf.nest.flatten(new_state), tf.nest.flatten(old_state)):
        variable.assign(keep(new, old))
    return finite


def diverged(config, state, history):
    """Why a finished run counts as diverged, or "": its best validation is no better than its initial weights'.
    A curriculum run that ended before its last stage says so instead: its validations ran to another horizon."""
    if config.curriculum and int(state.stage.numpy()) + 1 < len(config.curriculum):
        stage = int(state.stage.numpy())
        return (f"completed in curriculum stage {stage + 1} of {len(config.curriculum)}: training horizon {config.stage_horizons(stage)[0]}, "
                f"best validation at {config.stage_horizons(stage)[1]} steps")
    best, initial = float(state.best_valid.numpy()), float(state.initial_valid.numpy())
    if int(state.best_epoch.numpy()) >= 0 and not best < initial:
        return f"diverged: best validation loss {best:.4g} is no better than the initial weights' {initial:.4g}"
    if int(state.best_epoch.numpy()) < 0 and history and any(not math.isnan(r["valid_loss"]) for r in history):
        return f"diverged: no validation loss was finite (the initial weights' was {initial:.4g})"
    return ""


def progress(trainer, epoch, started, start_epoch):
    """The progress line: a bar, the recent meta-loss, the best validation so far, speed and time left."""
    cfg = trainer.config
    per_epoch = (time.perf_counter() - started) / max(epoch - start_epoch, 1)
    recent = [r["meta_loss"] for r in trainer.history[-max(1, cfg.epochs // 20):]]
    best_epoch = int(trainer.state.best_epoch.numpy())
    best = f"{float(trainer.state.best_valid.numpy()):.4g} (epoch {best_epoch})" if best_epoch >= 0 else "not yet validated"
    filled = int(20 * epoch / cfg.epochs)
    return (
        f"[{'#' * filled}{'.' * (20 - filled)}] epoch {epoch}/{cfg.epochs}  "
        f"meta-loss {sum(recent) / len(recent):.4g}  best valid {best}  "
        f"{per_epoch:.2f} s/epoch  eta {per_epoch * (cfg.epochs - epoch) / 60:.1f} min"
    )


def meta_train(problem, lstm_config=learned_optimizer.LSTMConfig(), config=MetaConfig(), checkpoint_root: Optional[str] = None, log=print, valid_problem=None):
    """Meta-trains an LSTM optimiser on `problem`; see the module docstring."""
    return MetaTrainer(problem, lstm_config, config, checkpoint_root, valid_problem).run(log)
