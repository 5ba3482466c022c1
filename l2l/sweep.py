"""Hyperparameter sweeps of the meta-learner: Optuna studies whose trials are keyed meta-training runs.

    python -m l2l.sweep run notebooks/sweeps/quadratic.yaml                       # one worker; SQLite file beside the results
    python -m l2l.sweep run SPEC --workers 2 --threads 1                          # two worker processes on this machine
    python -m l2l.sweep run SPEC --storage postgresql://user@host/l2l             # on every machine: one shared study
    python -m l2l.sweep report SPEC                                               # trials, failures, importances

A spec (YAML) names a task, a search space over the settings in SETTINGS, the
objective and the number of trials; `load_spec` rejects a malformed one with
the field and the fix, before any compute. Each trial is a meta-training run
keyed by l2l.meta.run_key under the checkpoint root, so a configuration met
again is read back, not recomputed, and a trial whose worker died resumes
from its run's last checkpoint. The objective is the trained optimiser's loss
(mean over the horizon, or final) on held-out instances, as a ratio to NAG's
with learning rate and momentum tuned on those same instances, so below 1 the
learned optimiser wins.

Storage is a URL. The default, sqlite:///<results>/<name>.db, is one small
file a reader reloads (optuna-dashboard opens it). With PostgreSQL every
worker on every machine shares one study. Workers record a heartbeat: a trial
whose worker stopped beating is failed and retried once as a new trial with
the same settings (RetryHeartbeatStaleTrialCallback), which resumes the run.
The study ends at exactly `trials` finished trials (complete, pruned or
failed with a reason); a trial asked for beyond that is closed unrun, failed
with user attribute "surplus".
"""

import argparse
import dataclasses
import logging
import math
import os
import re
import signal
import sys
import time
import warnings

# Optuna imports tqdm.auto, which inside a notebook kernel without ipywidgets warns on import: nothing here draws a bar.
warnings.filterwarnings("ignore", message="IProgress not found")

# setting -> (type, where it goes, smallest allowed value, what it is)
SETTINGS = {
    "meta_lr": (float, "meta", 1e-12, "the meta-optimiser's (Adam's) learning rate"),
    "unroll": (int, "meta", 1, "optimisee steps per truncated-BPTT segment"),
    "horizon": (int, "meta", 1, "optimisee steps per meta-training epoch (a multiple of unroll)"),
    "batch": (int, "meta", 1, "problem instances per meta-iteration"),
    "clip_norm": (float, "meta", 0.0, "meta-gradient global-norm clipping; 0: off"),
    "epochs": (int, "meta", 1, "the meta-training budget"),
    "preprocess_p": (float, "lstm", 0.0, "LogAndSign's p; 0: raw gradients"),
    "scale": (float, "lstm", 1e-12, "the LSTM's output scale"),
    "hidden": (int, "lstm", 1, "units per LSTM layer"),
    "layers": (int, "lstm", 1, "stacked LSTM layers"),
}
# setting -> the largest value a spec may give it: a bound on one trial's memory and time on one machine
# (meta-training keeps hidden x layers x unroll x batch x coordinates floats; hidden 1,024 is 50 times the paper's).
# Rates and scales are not resources: a huge one is a diverging trial, failed with its reason, not an unusable spec.
LARGEST = {"unroll": 1000, "horizon": 100000, "batch": 4096, "epochs": 1000000, "hidden": 1024, "layers": 8}
# Each task's defaults for settings neither searched nor fixed: the paper's.
DEFAULTS = {
    "quadratic": {"meta_lr": 1e-3, "unroll": 20, "horizon": 100, "batch": 128, "clip_norm": 0.0, "epochs": 100,
                  "preprocess_p": 10.0, "scale": 0.1, "hidden": 20, "layers": 2},
    "mnist": {"meta_lr": 1e-3, "unroll": 20, "horizon": 100, "batch": 1, "clip_norm": 0.0, "epochs": 200,
              "preprocess_p": 10.0, "scale": 0.1, "hidden": 20, "layers": 2},
}
TASKS = tuple(DEFAULTS)
OBJECTIVES = ("mean", "final")
SAMPLERS = ("tpe", "grid")
PRUNERS = ("median", "none")
DIMENSION_KEYS = {"low", "high", "log", "step", "choices"}


class SpecError(ValueError):
    pass


@dataclasses.dataclass(frozen=True)
class Spec:
    name: str  # the study's name in its storage, and of its default SQLite file
    task: str  # "quadratic" (10-d quadratics, seconds a trial) or "mnist" (the MNIST chapter's MLP and splits)
    space: dict  # setting -> {low, high[, log]} (float), {low, high[, step]} (int) or {choices: [...]}
    fixed: dict = dataclasses.field(default_factory=dict)  # settings held at a value; the rest take DEFAULTS[task]
    objective: str = "mean"  # "mean" loss over the horizon or "final" loss, as a ratio to tuned NAG's
    trials: int = 20  # finished trials (complete, pruned, or failed with a reason) at which the study ends
    seed: int = 0  # seeds the sampler, every trial's meta-training and the objective's instances
    sampler: str = "tpe"  # "tpe", or "grid" (every searched setting needs choices)
    pruner: str = "median"  # "median": stop a trial whose validation is worse than the median at that epoch; "none"
    startup_trials: int = 5  # trials the pruner and TPE sample before they act on what they have seen
    valid_every: int = 10  # epochs between the validations the pruner reads
    valid_instances: int = 32  # instances of that validation (MetaConfig.valid_instances)
    objective_instances: int = 32  # held-out instances the objective and tuned NAG are measured on


def load_spec(path):
    """A Spec from a YAML file; SpecError names the file, the field and the fix."""
    import yaml

    try:
        with open(path) as f:
            raw = yaml.safe_load(f)
    except OSError as error:
        raise SpecError(f"cannot read the sweep spec {path!r}: {error.strerror}; give the path of a YAML spec (see notebooks/sweeps/)") from None
    except yaml.YAMLError as error:
        raise SpecError(f"{path}: not valid YAML ({str(error).splitlines()[0]}); fix the file") from None
    return spec_from_dict(raw, source=str(path))


def spec_from_dict(raw, source="spec"):
    if not isinstance(raw, dict):
        raise SpecError(f"{source}: a sweep spec is a mapping of fields ({', '.join(f.name for f in dataclasses.fields(Spec))}), got {type(raw).__name__}")
    known = {f.name for f in dataclasses.fields(Spec)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise SpecError(f"{source}: unknown field(s) {unknown}; fields: {sorted(known)}")
    missing = [name for name in ("name", "task", "space") if name not in raw]
    if missing:
        raise SpecError(f"{source}: missing field(s) {missing}")
    spec = Spec(**raw)
    check(spec, source)
    return spec


def check(spec, source="spec"):
    """Every field's type and range, every dimension, and horizon/unroll compatibility."""

    def fail(message):
        raise SpecError(f"{source}: {message}")

    if not isinstance(spec.name, str) or not spec.name.replace("_", "").replace("-", "").isalnum():
        fail(f"name must be letters, digits, '-' or '_', got {spec.name!r}")
    if spec.task not in TASKS:
        fail(f"unknown task {spec.task!r}; tasks: {list(TASKS)}")
    for field, allowed in (("objective", OBJECTIVES), ("sampler", SAMPLERS), ("pruner", PRUNERS)):
        if getattr(spec, field) not in allowed:
            fail(f"{field} must be one of {list(allowed)}, got {getattr(spec, field)!r}")
    for field in ("trials", "valid_every", "valid_instances", "objective_instances"):
        value = getattr(spec, field)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            fail(f"{field} must be a positive integer, got {value!r}")
    if not isinstance(spec.seed, int) or not isinstance(spec.startup_trials, int) or spec.startup_trials < 0:
        fail(f"seed must be an integer and startup_trials a non-negative one, got {spec.seed!r}, {spec.startup_trials!r}")
    if not isinstance(spec.space, dict) or not spec.space:
        fail("space must map at least one setting to its range, e.g. space: {meta_lr: {low: 1.0e-4, high: 1.0e-2, log: true}}")
    if not isinstance(spec.fixed, dict):
        fail(f"fixed must map settings to values, got {spec.fixed!r}")
    unknown = sorted((set(spec.space) | set(spec.fixed)) - set(SETTINGS))
    if unknown:
        fail(f"unknown setting(s) {unknown}; settings: {sorted(SETTINGS)}")
    both = sorted(set(spec.space) & set(spec.fixed))
    if both:
        fail(f"setting(s) {both} are both searched and fixed; keep each in one of space or fixed")
    for name, value in spec.fixed.items():
        _check_value(name, value, fail, "fixed")
    for name, dim in spec.space.items():
        _check_dimension(name, dim, fail)
    if spec.sampler == "grid":
        not_choices = sorted(n for n, d in spec.space.items() if "choices" not in d)
        if not_choices:
            fail(f"the grid sampler needs choices for every searched setting; give choices to {not_choices}")
        if spec.trials > grid_size(spec):
            fail(f"trials ({spec.trials}) exceeds the grid's {grid_size(spec)} points; ask for at most that many")
    horizons, unrolls = _values(spec, "horizon"), _values(spec, "unroll")
    if horizons is None or unrolls is None:
        fail("horizon and unroll, when searched, need choices (every horizon must be a multiple of every unroll)")
    bad = sorted({(h, u) for h in horizons for u in unrolls if h % u})
    if bad:
        fail(f"every horizon must be a multiple of every unroll; (horizon, unroll) pairs {bad} are not; change their choices")


def _check_value(name, value, fail, where):
    kind, _, low, what = SETTINGS[name]
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) if kind is float else isinstance(value, int) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or value < low:
        fail(f"{where} value {value!r} of {name} ({what}) must be a finite {kind.__name__} >= {low:g}")
    if value > LARGEST.get(name, math.inf):
        fail(f"{where} value {value!r} of {name} ({what}) is above {LARGEST[name]:g}, the most one trial may ask for on one machine; "
             "give a smaller value")


def _check_dimension(name, dim, fail):
    kind = SETTINGS[name][0]
    if not isinstance(dim, dict) or not dim or set(dim) - DIMENSION_KEYS:
        fail(f"space.{name} must be {{low, high[, log | step]}} or {{choices: [...]}}, got {dim!r}")
    if "choices" in dim:
        if set(dim) != {"choices"} or not isinstance(dim["choices"], list) or not dim["choices"]:
            fail(f"space.{name}: choices must be a non-empty list, alone, got {dim!r}")
        if len(set(dim["choices"])) != len(dim["choices"]):
            fail(f"space.{name}: choices {dim['choices']} repeat a value")
        for value in dim["choices"]:
            _check_value(name, value, fail, f"space.{name} choice")
        return
    if "low" not in dim or "high" not in dim:
        fail(f"space.{name} needs low and high (or choices), got {dim!r}")
    for bound in ("low", "high"):
        _check_value(name, dim[bound], fail, f"space.{name}.{bound}")
    if not dim["low"] < dim["high"]:
        fail(f"space.{name}: low ({dim['low']}) must be below high ({dim['high']})")
    if dim.get("log") and dim["low"] <= 0:
        fail(f"space.{name}: a log range needs low > 0, got {dim['low']}")
    if "step" in dim and (kind is float or dim.get("log") or not isinstance(dim["step"], int) or dim["step"] < 1):
        fail(f"space.{name}: step is for integer settings without log, a positive integer; got {dim!r}")


def _values(spec, name):
    """Every value a setting can take in the spec, or None for a range."""
    if name in spec.space:
        return spec.space[name].get("choices")
    return [spec.fixed.get(name, DEFAULTS[spec.task][name])]


def grid_size(spec):
    return math.prod(len(d["choices"]) for d in spec.space.values() if "choices" in d)


# -- a trial ----------------------------------------------------------------

def suggest(trial, spec):
    """The trial's settings: searched ones suggested, the rest fixed or the task's defaults."""
    settings = dict(DEFAULTS[spec.task], **spec.fixed)
    for name, dim in spec.space.items():
        kind = SETTINGS[name][0]
        if "choices" in dim:
            settings[name] = trial.suggest_categorical(name, dim["choices"])
        elif kind is int:
            settings[name] = trial.suggest_int(name, dim["low"], dim["high"], step=dim.get("step", 1), log=bool(dim.get("log")))
        else:
            settings[name] = trial.suggest_float(name, dim["low"], dim["high"], log=bool(dim.get("log")))
    return settings


def task_problems(task):
    """(meta-training problem, held-out problem) of a task: the held-out one gives validation, objective and NAG."""
    from l2l import data, problems

    if task == "quadratic":
        return problems.Quadratic(), problems.Quadratic()
    splits = data.mnist_splits()
    return problems.MLP(splits["meta_train"]), problems.MLP(splits["valid"])


def build_run(spec, settings, task_problem, valid_problem, root):
    """The trial's MetaTrainer: checkpoints under root/epochs<N>/<run key>. epochs is left out of run keys
    (a run continued is the same run), so budgets get folders of their own: a 100-epoch trial never meets
    the checkpoint of a 200-epoch one."""
    from l2l import learned_optimizer, meta

    lstm = learned_optimizer.LSTMConfig(**{k: v for k, v in settings.items() if SETTINGS[k][1] == "lstm"})
    config = meta.MetaConfig(seed=spec.seed, valid_every=spec.valid_every, valid_instances=spec.valid_instances, select_on=spec.objective,
                             checkpoint_every=max(1, min(spec.valid_every, 25)), **{k: v for k, v in settings.items() if SETTINGS[k][1] == "meta"})
    return meta.MetaTrainer(task_problem, lstm, config, checkpoint_root=os.path.join(root, f"epochs{config.epochs}"), valid_problem=valid_problem)


def objective_losses(problem, optimizer, horizon, instances, seed):
    """(final, mean over steps 1..horizon) of an optimiser on the objective's held-out instances, with the
    instances, starting points and minibatches that evaluate.tune gives NAG; inf where a loss is non-finite."""
    from l2l import evaluate
    from l2l.rollout import TUNE_SEED, fresh_instances

    batch, params = fresh_instances(problem, seed, instances, TUNE_SEED)
    losses, _, _ = evaluate.run(problem, optimizer, batch, params, horizon, seed)
    return evaluate._scores(losses.T, [horizon])[horizon]


def tuned_nag(problem, horizon, instances, seed):
    """{"final", "mean", "settings"}: NAG's best of evaluate.tune's grid (learning rate x momentum, refined)
    on the objective's instances, each objective tuned on its own."""
    from l2l import evaluate

    settings, table = evaluate.tune(problem, ["nag"], horizon, instances, seed=seed)
    return {"final": float(table["final"].min()), "mean": float(table["mean"].min()),
            "settings": {o: settings[o]["nag"] for o in evaluate.OBJECTIVES}}


class Surplus(Exception):
    """A trial asked for after the study had all its trials (another worker asked first)."""


class RunFailed(Exception):
    """Meta-training stopped on a non-finite value, or the trained optimiser went non-finite: a failed trial with a reason."""


def finished(trial):
    """Whether a trial counts towards the study's budget: complete, pruned, or failed with a reason of ours
    (not a worker's death, which is retried, nor a surplus trial, which never ran)."""
    from optuna.trial import TrialState

    return trial.state in (TrialState.COMPLETE, TrialState.PRUNED) or (trial.state == TrialState.FAIL and "failure" in trial.user_attrs)


def taken(trial):
    """Whether a trial holds one of the study's places: finished, running, or waiting to be (a retry)."""
    from optuna.trial import TrialState

    return finished(trial) or trial.state in (TrialState.RUNNING, TrialState.WAITING)


class Objective:
    """What one worker runs for each trial; NAG's tuned losses are computed once per horizon and kept in the study."""

    def __init__(self, spec, root, log=print):
        self.spec, self.root, self.log = spec, root, log
        self.task_problem, self.valid_problem = task_problems(spec.task)
        self.nag = {}
        self.finished = 0  # trials this worker brought to an end (complete, pruned, failed with a reason)
        self.provenance = None

    def nag_for(self, study, horizon):
        if horizon not in self.nag:
            key = f"nag_h{horizon}"
            stored = study.user_attrs.get(key)
            if stored is None:
                stored = tuned_nag(self.valid_problem, horizon, self.spec.objective_instances, self.spec.seed)
                study.set_user_attr(key, stored)  # deterministic: two workers computing it store the same
            self.nag[horizon] = stored
        return self.nag[horizon]

    def __call__(self, trial):
        import optuna

        study = trial.study
        ahead = [t for t in study.get_trials(deepcopy=False) if t.number < trial.number and taken(t)]
        if len(ahead) >= self.spec.trials:
            trial.set_user_attr("surplus", f"the study had its {self.spec.trials} trials when this one was asked for")
            raise Surplus(f"trial {trial.number}: the study already has its {self.spec.trials} trials")
        settings = suggest(trial, self.spec)
        nag = self.nag_for(study, settings["horizon"])
        trainer = build_run(self.spec, settings, self.task_problem, self.valid_problem, self.root)
        trial.set_user_attr("run_key", trainer.key)
        trial.set_user_attr("settings", settings)
        if self.provenance is None:
            from l2l.provenance import provenance

            self.provenance = provenance()
        trial.set_user_attr("provenance", self.provenance)
        cpu, wall = time.process_time(), time.perf_counter()

        def report(epoch, valid):
            # The pruner reads the run's own validation (its selection instances) over NAG's on the objective's:
            # an approximate ratio, on the same scale for every horizon. Without its database the trial trains on
            # unpruned rather than losing its epochs; the result is stored, or the trial retried, once it is back.
            try:
                trial.report(valid / nag[self.spec.objective], epoch)
                return trial.should_prune()
            except Exception as error:
                if not _is_outage(error):
                    raise
                self.log(f"trial {trial.number}: epoch {epoch} not reported, the study storage is unreachable; training on")
                return False

        result = trainer.run(log=lambda line: self.log(f"trial {trial.number}: {line}"), on_validate=report if self.spec.pruner != "none" else None)
        trial.set_user_attr("cpu_s", time.process_time() - cpu)
        trial.set_user_attr("wall_s", time.perf_counter() - wall)
        trial.set_user_attr("meta_wall_s", result.wall_time_s)  # summed over every process that trained the run
        trial.set_user_attr("status", result.status)
        trial.set_user_attr("best_epoch", result.best_epoch)
        self.finished += 1
        if result.status.startswith("stopped early"):
            raise optuna.TrialPruned(result.status)
        if result.status.startswith("stopped at epoch"):  # non-finite meta-loss or meta-gradient
            trial.set_user_attr("failure", result.status)
            raise RunFailed(result.status)
        final, mean = objective_losses(self.valid_problem, result.optimizer(self.valid_problem), settings["horizon"], self.spec.objective_instances, self.spec.seed)
        trial.set_user_attr("lstm", {"final": final, "mean": mean})
        trial.set_user_attr("ratio", {"final": final / nag["final"], "mean": mean / nag["mean"]})
        if not math.isfinite(final):
            trial.set_user_attr("failure", "the trained optimiser's loss went non-finite on the objective's instances")
            raise RunFailed(trial.user_attrs["failure"])
        return {"final": final, "mean": mean}[self.spec.objective] / nag[self.spec.objective]


# -- storage, study, workers ------------------------------------------------

HEARTBEAT_S = 30  # a worker records it is alive this often
GRACE_S = 120  # a running trial silent this long is failed and retried
CONNECT_TIMEOUT_S = 10  # a server that accepts and never answers is given up on after this (libpq's own default waits 2 minutes)
OUTAGE_S = 300  # a worker that loses its database retries, with backoff, this long before it stops with a non-zero exit
# Workers spawned by --workers, and the chapter's launcher, get the storage URL here: on a command line its password is visible in ps.
STORAGE_VARIABLE = "L2L_SWEEP_STORAGE"


def masked(text, url=None):
    """`text` with every URL's password shown as ***; given `url`, its password is hidden wherever it appears."""
    text = re.sub(r"(\w+(?:\+\w+)?://[^:/@\s]+:)[^@\s]*@", r"\1***@", str(text))
    password = re.match(r"\w+(?:\+\w+)?://[^:/@\s]+:([^@\s]*)@", url or "")
    return text.replace(password.group(1), "***") if password and password.group(1) else text


class StorageDown(RuntimeError):
    """The study's database stayed unreachable for the whole retry window."""


def _is_outage(error):
    """True for a lost or refused database connection (SQLAlchemy's OperationalError and its kin), not for a bug."""
    names = {cls.__name__ for cls in type(error).__mro__}
    return bool(names & {"OperationalError", "InterfaceError", "DisconnectionError"}) or "server closed the connection" in str(error)


def default_storage(spec, results):
    return f"sqlite:///{os.path.abspath(os.path.join(results, spec.name + '.db'))}"


def storage(url, heartbeat=HEARTBEAT_S, grace=GRACE_S, connect_timeout=CONNECT_TIMEOUT_S):
    """An Optuna RDB storage with heartbeats; a stale trial is failed and retried once, with its settings. A server
    that does not complete a connection within `connect_timeout` seconds is an error naming the (masked) URL."""
    import optuna

    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)  # heartbeats: experimental since Optuna 2.8, relied on here

    if url.startswith("sqlite:///"):
        folder = os.path.dirname(url[len("sqlite:///"):])
        if folder and not os.path.isdir(folder):
            raise SpecError(f"the study's folder {folder!r} does not exist; create it or pass --results / --storage")
    engine = ({"connect_args": {"timeout": 60}} if url.startswith("sqlite")
              else {"pool_pre_ping": True, "connect_args": {"connect_timeout": connect_timeout}} if url.startswith("postgres") else {"pool_pre_ping": True})
    for attempt in range(5):
        try:
            return optuna.storages.RDBStorage(url, engine_kwargs=engine, heartbeat_interval=heartbeat, grace_period=grace,
                                              heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=1))
        except ImportError as error:
            raise SpecError(f"cannot open the study storage {masked(url)!r}: {masked(error, url)}; for PostgreSQL install the postgres extra (pip install -e '.[postgres]')") from None
        except Exception as error:  # sqlalchemy's OperationalError, ArgumentError, IntegrityError...
            # Workers started together on a fresh database race to create its tables; the loser finds them made on a retry.
            racing = "IntegrityError" in type(error).__name__ or "UniqueViolation" in str(error)
            if attempt == 4 or not racing:
                raise SpecError(f"cannot open the study storage {masked(url)!r}: {type(error).__name__}: {masked(str(error).splitlines()[0], url)}; "
                                "check the URL and that the server is up (--connect-timeout sets how long a connection may take)") from None
            time.sleep(0.5 * (attempt + 1))


def sampler_seed(spec, store):
    """The sampler's seed in this process: from the spec's seed, this worker's index (L2L_SWEEP_WORKER, set by
    --workers) and how many trials the study held when the process opened it. Every process seeded with the spec's
    seed alone replays the same random startup trials: a worker started on a study with 5 trials re-sampled trials
    0-3 as trials 8-11. A study run from scratch by one worker keeps one seed sequence, so it is reproducible."""
    import numpy as np
    import optuna

    try:
        existing = len(optuna.load_study(study_name=spec.name, storage=store).trials)
    except KeyError:  # no such study yet
        existing = 0
    worker = int(os.environ.get("L2L_SWEEP_WORKER", "0"))
    return int(np.random.SeedSequence([spec.seed, worker, existing]).generate_state(1)[0])


def study(spec, store):
    """The spec's study in `store`, created on first use; a study of that name made from another spec is refused.
    Its budget (`trials`) may change: a study is extended, or cut to what has finished, without a new name."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)

    seed = sampler_seed(spec, store)
    sampler = (optuna.samplers.GridSampler({n: d["choices"] for n, d in spec.space.items()}, seed=seed) if spec.sampler == "grid"
               else optuna.samplers.TPESampler(seed=seed, n_startup_trials=spec.startup_trials))
    pruner = optuna.pruners.MedianPruner(n_startup_trials=spec.startup_trials, n_warmup_steps=0) if spec.pruner == "median" else optuna.pruners.NopPruner()
    s = optuna.create_study(study_name=spec.name, storage=store, sampler=sampler, pruner=pruner, direction="minimize", load_if_exists=True)
    described = dataclasses.asdict(spec)
    recorded = s.user_attrs.get("spec")
    budget = lambda d: {k: v for k, v in d.items() if k != "trials"}
    if recorded is None or (budget(recorded) == budget(described) and recorded != described):
        s.set_user_attr("spec", described)
    elif recorded != described:
        changed = sorted(k for k in set(recorded) | set(described) if k != "trials" and recorded.get(k) != described.get(k))
        differences = "; ".join(f"{k}: {recorded.get(k)!r} in the study, {described.get(k)!r} in the spec" for k in changed)
        raise SpecError(f"study {spec.name!r} in this storage was made from another spec (changed: {differences}); "
                        "give the spec a new name, or restore the old values")
    return s


def enqueue_grid(spec, s):
    """A grid study's points, each enqueued once unless a trial already holds it (any state but a worker's death):
    workers then take points from the queue, where Optuna's GridSampler, asked by two workers at once, can give
    both the same point (found in the hyper chapter: two workers trained one point side by side). Call it from one
    process before the workers start. Returns the number enqueued."""
    import itertools

    from optuna.trial import TrialState

    if spec.sampler != "grid":
        return 0
    # A waiting trial holds its point in system_attrs["fixed_params"] until a worker takes it.
    held = {tuple(sorted((t.params or t.system_attrs.get("fixed_params", {})).items())) for t in s.get_trials(deepcopy=False)
            if t.state != TrialState.FAIL or "failure" in t.user_attrs}
    names = sorted(spec.space)
    added = 0
    for values in itertools.product(*(spec.space[n]["choices"] for n in names)):
        point = dict(zip(names, values))
        if tuple(sorted(point.items())) not in held:
            s.enqueue_trial(point)
            added += 1
    return added


class _QuietSurplus(logging.Filter):
    """Optuna logs every caught exception of a trial with its traceback; a surplus trial (closed unrun) is routine."""

    def filter(self, record):
        return not (record.exc_info and isinstance(record.exc_info[1], Surplus)) and "Surplus(" not in record.getMessage()


def _quiet_surplus():
    import optuna

    optuna.logging.get_logger("optuna")  # makes Optuna's handler
    for handler in logging.getLogger("optuna").handlers:
        if not any(isinstance(f, _QuietSurplus) for f in handler.filters):
            handler.addFilter(_QuietSurplus())


def work(spec, store, root, log=print, poll_s=None, outage_s=OUTAGE_S, url=""):
    """One worker: runs trials until the study has `spec.trials` finished ones, retrying trials whose worker
    died. Returns the number of trials this worker finished.

    A lost database is waited out: the worker retries with backoff (1, 2, 4... 30 s) for up to `outage_s` seconds,
    then raises StorageDown. A trial whose result could not be stored is failed by the heartbeat once the database
    is back and retried with its settings; its run, checkpointed and finished, is read back, not retrained."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    _quiet_surplus()
    s = study(spec, store)
    objective = Objective(spec, root, log)
    poll_s = poll_s or max(1, store.heartbeat_interval or HEARTBEAT_S)
    down_since, wait = None, 1.0
    while True:
        try:
            if down_since is not None:
                s = study(spec, store)
                log(f"worker {os.getpid()}: the study storage answers again after {time.monotonic() - down_since:.0f} s; carrying on")
                down_since, wait = None, 1.0
            optuna.storages.fail_stale_trials(s)
            trials = s.get_trials(deepcopy=False)
            if sum(map(finished, trials)) >= spec.trials:
                return objective.finished
            waiting = any(t.state == optuna.trial.TrialState.WAITING for t in trials)
            if sum(map(taken, trials)) >= spec.trials and not waiting:
                time.sleep(poll_s)  # the last trials run elsewhere: stay to retry any whose worker dies
                continue
            s.optimize(objective, n_trials=1, catch=(Surplus, RunFailed))
        except Exception as error:
            if not _is_outage(error):
                raise
            first_line = masked(str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__, url)
            if down_since is None:
                down_since = time.monotonic()
                log(f"worker {os.getpid()}: lost the study storage ({type(error).__name__}: {first_line}); retrying for up to {outage_s:.0f} s")
            if time.monotonic() - down_since >= outage_s:
                raise StorageDown(f"the study storage {masked(url) or 'of this study'} did not answer for {outage_s:.0f} s ({first_line}); "
                                  f"the trials' runs are checkpointed under {root!r}: start the workers again once it is back") from None
            time.sleep(min(wait, max(0.0, outage_s - (time.monotonic() - down_since))))
            wait = min(wait * 2, 30.0)


def trials_frame(s):
    """One row per trial: number, state, value, score (the value, or a pruned trial's last validation), settings,
    ratios, costs, status, failure."""
    import pandas as pd

    rows = []
    for t in s.get_trials(deepcopy=False):
        attrs = t.user_attrs
        # A pruned trial's score is the last validation the pruner read; a complete trial's is its value.
        score = t.value if t.value is not None else t.intermediate_values.get(max(t.intermediate_values, default=-1), math.nan)
        rows.append({"number": t.number, "state": t.state.name, "value": t.value, "score": score, **t.params,
                     "ratio_final": attrs.get("ratio", {}).get("final"), "ratio_mean": attrs.get("ratio", {}).get("mean"),
                     "cpu_s": attrs.get("cpu_s"), "wall_s": attrs.get("wall_s"), "status": attrs.get("status"),
                     "failure": attrs.get("failure"), "surplus": "surplus" in attrs, "retry_of": t.system_attrs.get("failed_trial"),
                     "last_epoch": max(t.intermediate_values, default=None), "run_key": attrs.get("run_key")})
    return pd.DataFrame(rows)


def outcomes(frame):
    """How a study's trials (trials_frame) ended: counts of complete, pruned, failed (with a reason), retries of
    trials whose worker died, and surplus trials closed unrun."""
    return {"complete": int((frame.state == "COMPLETE").sum()), "pruned": int((frame.state == "PRUNED").sum()),
            "failed": int(frame.failure.notna().sum()), "retried": int(frame.retry_of.notna().sum()), "surplus": int(frame.surplus.sum())}


def rank_agreement(first, second):
    """Spearman's rho between two importance rankings (setting names, most important first) over the settings
    both hold, and that count; rho is NaN below 3 shared settings, where it says nothing."""
    from scipy.stats import spearmanr

    shared = [name for name in first if name in set(second)]
    if len(shared) < 3:
        return math.nan, len(shared)
    first, second = list(first), list(second)
    return float(spearmanr([first.index(n) for n in shared], [second.index(n) for n in shared]).statistic), len(shared)


def importance_sentence(main, second, complete):
    """What the importance ranking says: main and second are {"fanova": frame, "ped_anova": frame} (importances) of
    the main study and of the second task's; complete is the main study's count of complete trials."""
    head = main["fanova"].iloc[0]
    estimators, _ = rank_agreement(main["fanova"].setting, main["ped_anova"].setting)
    tasks, shared = rank_agreement(main["fanova"].setting, second["fanova"].setting)
    rest = ", ".join(f"{r.setting} {r.importance:.2f}" for r in main["fanova"].iloc[1:4].itertuples())
    return (f"On MNIST ({complete} complete trials), fANOVA ranks **{head.setting}** first with {head.importance:.2f} of the variance "
            f"(bootstrap interval {head.low:.2f} to {head.high:.2f}), then {rest}. Against it, PED-ANOVA's ranking (first: "
            f"{main['ped_anova'].setting.iloc[0]}) has Spearman's ρ = {estimators:.2f}: {agreement(estimators)}; the quadratics study's "
            f"fANOVA ranking, over the {shared} settings both searched, ρ = {tasks:.2f}: {agreement(tasks)}.")


def agreement(rho):
    """Spearman's ρ between two rankings, in words."""
    if not math.isfinite(rho):
        return "not measurable"
    if rho >= 0.7:
        return "they agree"
    if rho >= 0.3:
        return "they agree in part"
    if rho > -0.3:
        return "they are unrelated"
    return "they disagree"


def grid_heat(frame, pair):
    """A grid study's complete trials (trials_frame) as a table of their values: rows pair[1], columns pair[0]."""
    return frame[frame.state == "COMPLETE"].pivot_table(index=pair[1], columns=pair[0], values="value")


def grid_sentence(heat, objective):
    """The best and worst points of a grid table (grid_heat) and how many beat tuned NAG (a ratio below 1)."""
    cells = heat.stack().dropna()  # pandas 3 keeps the missing cells of a failed point in stack()
    row, column = cells.idxmin()
    what = {"mean": "mean loss over the horizon", "final": "loss at the horizon"}[objective]
    return (f"On the {cells.size} complete grid points ({what} relative to tuned NAG's), the best is "
            f"{heat.index.name} = {row:g}, {heat.columns.name} = {column:g} at {cells.min():.3g}; the worst {cells.max():.3g}; "
            f"{int((cells < 1).sum())} of {cells.size} points beat NAG.")


def importances(s, evaluator="fanova", repeats=20, seed=0):
    """Each searched setting's importance (Optuna's fANOVA, or PED-ANOVA), refitted on `repeats` bootstrap
    resamples of the complete trials: a frame of setting, importance (on all trials), low and high (2.5 and
    97.5 percentiles over resamples; the estimate on all trials can fall outside them, as a bootstrap allows)."""
    import numpy as np
    import optuna
    import pandas as pd

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # each refit creates an in-memory study, and Optuna says so
    complete = [t for t in s.get_trials(deepcopy=False) if t.state == optuna.trial.TrialState.COMPLETE]
    if len(complete) < 2:
        raise ValueError(f"importances need at least 2 complete trials, the study has {len(complete)}")
    make = {"fanova": lambda k: optuna.importance.FanovaImportanceEvaluator(seed=k),
            "ped_anova": lambda k: optuna.importance.PedAnovaImportanceEvaluator()}[evaluator]

    def fit(trials, k):
        sub = optuna.create_study(direction="minimize")
        sub.add_trials(trials)
        return optuna.importance.get_param_importances(sub, evaluator=make(k), normalize=True)

    whole = fit(complete, seed)
    rng = np.random.default_rng(seed)
    draws = []
    for k in range(repeats):
        picked = [complete[i] for i in rng.integers(0, len(complete), len(complete))]
        try:
            draws.append(fit(picked, seed + 1 + k))
        except (ValueError, RuntimeError):  # a resample where a setting takes one value only
            continue
    rows = []
    for name, value in whole.items():
        values = [d.get(name, 0.0) for d in draws]
        low, high = (np.percentile(values, [2.5, 97.5]) if values else (math.nan, math.nan))
        rows.append({"setting": name, "importance": float(value), "low": float(low), "high": float(high), "resamples": len(values)})
    return pd.DataFrame(rows).sort_values("importance", ascending=False, ignore_index=True)


def settings_of(trial):
    """Every setting of a finished trial (searched or not), as its run used them."""
    return dict(trial.user_attrs["settings"])


def dump_spec(spec, path):
    """Writes a spec as YAML (a generated study's record, loadable by load_spec)."""
    import yaml

    with open(path, "w") as f:
        yaml.safe_dump(dataclasses.asdict(spec), f, sort_keys=False)
    return path


def grid_points(spec, name, points):
    """`points` values of a searched setting for a grid: its choices (`points` of them, from the first to the last,
    when there are more), or points spread over its range (log-spaced where the range is log), rounded for integers."""
    import numpy as np

    dim = spec.space[name]
    if "choices" in dim:  # all of them, or `points` of them spread from the first to the last
        choices = list(dim["choices"])
        return choices if points >= len(choices) else [choices[i] for i in sorted({int(round(i)) for i in np.linspace(0, len(choices) - 1, points)})]
    low, high = dim["low"], dim["high"]
    values = np.geomspace(low, high, points) if dim.get("log") else np.linspace(low, high, points)
    if SETTINGS[name][0] is int:
        return sorted({int(round(v)) for v in values})
    return [float(f"{v:.3g}") for v in values]


def grid_spec(spec, around, pair, points=3, name=None):
    """A grid study over two settings, every other setting held at `around` (e.g. the best trial's): the two-way map."""
    a, b = pair
    fixed = {k: v for k, v in around.items() if k not in pair}
    space = {k: {"choices": grid_points(spec, k, points)} for k in pair}
    size = len(space[a]["choices"]) * len(space[b]["choices"])
    return spec_from_dict({**dataclasses.asdict(spec), "name": name or f"{spec.name}_grid", "space": space, "fixed": fixed,
                           "sampler": "grid", "pruner": "none", "trials": size}, source=f"grid over {a} x {b}")


def run_workers(spec_path, store_url, root, workers=1, threads=1, heartbeat=HEARTBEAT_S, grace=GRACE_S, log=print):
    """Runs a study to completion with `workers` processes of this machine (a finished study returns at once);
    their output goes to `log` line by line."""
    import subprocess

    command = [sys.executable, "-m", "l2l.sweep", "run", str(spec_path), "--root", str(root), "--workers", str(workers),
               "--threads", str(threads), "--heartbeat", str(heartbeat), "--grace", str(grace)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, STORAGE_VARIABLE: store_url})
    for line in process.stdout:
        if "trial" in line or "error" in line.lower() or "worker" in line:
            log(line.rstrip())
    if process.wait():
        raise RuntimeError(f"sweep workers for {spec_path} exited with {process.returncode}; rerun: "
                           f"{STORAGE_VARIABLE}={masked(store_url)!r} {' '.join(command)}")


def partial_dependence(frame, setting, bins=4):
    """The objective against one setting over the complete trials: per choice (categorical) or per quantile bin
    (numeric), the geometric mean of the ratio to NAG with a 95% t-interval on its log, and the trial count."""
    import numpy as np
    import pandas as pd
    from scipy import stats as st

    done = frame[(frame.state == "COMPLETE") & frame[setting].notna()].copy()
    groups = done[setting] if done[setting].nunique() <= bins else pd.qcut(done[setting], bins, duplicates="drop")
    rows = []
    for level, part in done.groupby(groups, observed=True):
        logs = np.log(part.value.to_numpy())
        half = st.t.ppf(0.975, len(logs) - 1) * logs.std(ddof=1) / np.sqrt(len(logs)) if len(logs) > 1 else math.nan
        rows.append({"setting": setting, "level": str(level), "ratio": float(np.exp(logs.mean())), "low": float(np.exp(logs.mean() - half)),
                     "high": float(np.exp(logs.mean() + half)), "trials": len(logs)})
    return pd.DataFrame(rows)


def _spawn(args, count):
    """`count` worker processes of this command, each pinned to a GPU of --gpus in turn; waits for all. The storage
    URL reaches them through STORAGE_VARIABLE, and SIGTERM or SIGINT sent to this launcher is passed on to each
    worker, which it then waits for (killed alone, the launcher once left its workers running as orphans)."""
    import subprocess

    gpus = [g for g in (args.gpus or "").split(",") if g]
    processes = []

    def forward(signum, frame):
        for p in processes:
            if p.poll() is None:
                p.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        for i in range(count):
            env = dict(os.environ, L2L_SWEEP_WORKER=str(i), **{STORAGE_VARIABLE: args.storage})
            if gpus:
                env["CUDA_VISIBLE_DEVICES"] = gpus[i % len(gpus)]
            command = [sys.executable, "-m", "l2l.sweep", "run", args.spec, "--workers", "1", "--root", args.root, "--threads", str(args.threads),
                       "--heartbeat", str(args.heartbeat), "--grace", str(args.grace), "--connect-timeout", str(args.connect_timeout),
                       "--outage", str(args.outage)]
            processes.append(subprocess.Popen(command, env=env))
        codes = [p.wait() for p in processes]
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return max((abs(c) for c in codes), default=0)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m l2l.sweep", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["run", "report", "check"])
    parser.add_argument("spec", help="the study's YAML spec")
    parser.add_argument("--storage", default=None, help=f"an Optuna storage URL (default: ${STORAGE_VARIABLE}, else sqlite:///<results>/<name>.db); "
                                                         f"a URL with a password is better given in ${STORAGE_VARIABLE}, which ps does not show")
    parser.add_argument("--results", default="book/results/hyper", help="folder of the default SQLite study file")
    parser.add_argument("--root", default=".cache/checkpoints/sweeps", help="checkpoint root of the trials' runs (shared by every worker of a machine)")
    parser.add_argument("--workers", type=int, default=1, help="worker processes on this machine")
    parser.add_argument("--gpus", default="", help="comma-separated GPU ids; worker i gets CUDA_VISIBLE_DEVICES = gpus[i %% len]")
    parser.add_argument("--threads", type=int, default=0, help="TF threads per worker (1: one core each); 0: TF's default")
    parser.add_argument("--heartbeat", type=int, default=HEARTBEAT_S, help="seconds between a worker's heartbeats")
    parser.add_argument("--grace", type=int, default=GRACE_S, help="seconds without a heartbeat before a running trial is retried")
    parser.add_argument("--connect-timeout", type=int, default=CONNECT_TIMEOUT_S, help="seconds a database connection may take before it is an error")
    parser.add_argument("--outage", type=float, default=OUTAGE_S, help="seconds a worker retries a lost database before it stops (exit 3)")
    args = parser.parse_args(argv)
    try:
        spec = load_spec(args.spec)
        args.storage = args.storage or os.environ.get(STORAGE_VARIABLE) or default_storage(spec, args.results)
        if args.workers < 1 or args.threads < 0 or args.heartbeat < 1 or args.grace <= args.heartbeat or args.connect_timeout < 1 or not args.outage >= 0:
            raise SpecError(f"need --workers >= 1, --threads >= 0, --heartbeat >= 1, --grace > --heartbeat, --connect-timeout >= 1 and --outage >= 0, "
                            f"got {args.workers}, {args.threads}, {args.heartbeat}, {args.grace}, {args.connect_timeout}, {args.outage}")
        if args.command == "check":
            print(f"{args.spec}: a valid spec; study {spec.name!r}, {spec.trials} trials, storage {masked(args.storage)}")
            return 0
        store = storage(args.storage, args.heartbeat, args.grace, args.connect_timeout)
    except SpecError as error:
        print(f"error: {masked(error, args.storage)}", file=sys.stderr)
        return 2
    if args.command == "run" and os.environ.get("L2L_SWEEP_WORKER") is None:  # the launching process, before any worker
        enqueue_grid(spec, study(spec, store))
    if args.command == "run" and args.workers > 1:
        return _spawn(args, args.workers)
    if args.command == "run":
        if args.threads:
            os.environ["L2L_THREADS"] = str(args.threads)
        from l2l import provenance

        provenance.limit_threads()
        try:
            done = work(spec, store, args.root, log=lambda line: print(line, flush=True), outage_s=args.outage, url=args.storage)
        except StorageDown as error:
            print(f"error: worker {os.getpid()}: {error}", file=sys.stderr, flush=True)
            return 3
        print(f"worker {os.getpid()}: finished {done} trial(s); study {spec.name!r} is complete", flush=True)
        return 0
    import pandas as pd

    s = study(spec, store)
    frame = trials_frame(s)
    with pd.option_context("display.width", 200, "display.max_columns", 30):
        print(frame.drop(columns=["run_key"]).to_string(index=False))
        if (frame.state == "COMPLETE").sum() >= 2:
            print(importances(s).to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
