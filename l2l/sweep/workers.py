"""Storage and workers: Optuna storages with heartbeats, outages ridden out, the worker loop."""

import dataclasses
import logging
import os
import re
import time
import warnings

from l2l.sweep.spec import SpecError, design_points
from l2l.sweep.trials import Objective, RunFailed, Surplus, _is_outage, finished, taken

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
            # PostgreSQL says so as a unique violation, or (both creating a table at once) as DuplicateTable.
            racing = "IntegrityError" in type(error).__name__ or any(word in str(error) for word in ("UniqueViolation", "DuplicateTable"))
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
    if spec.sampler == "grid":
        sampler = optuna.samplers.GridSampler({n: d["choices"] for n, d in spec.space.items()}, seed=seed)
    elif spec.sampler == "design":  # its points are enqueued (enqueue_points); nothing is sampled beyond them
        sampler = optuna.samplers.RandomSampler(seed=seed)
    else:
        sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=spec.startup_trials)
    pruner = optuna.pruners.MedianPruner(n_startup_trials=spec.startup_trials, n_warmup_steps=0) if spec.pruner == "median" else optuna.pruners.NopPruner()
    s = optuna.create_study(study_name=spec.name, storage=store, sampler=sampler, pruner=pruner, direction="minimize", load_if_exists=True)
    described = dataclasses.asdict(spec)
    recorded = s.user_attrs.get("spec")
    if recorded is not None:
        # A field added to Spec after the study was made (budget, eval_horizon) is read at its default, which keeps
        # the behaviour the study ran with: the committed studies stay readable by the code that added it.
        later = {f.name: f.default for f in dataclasses.fields(spec) if f.name not in recorded and f.default is not dataclasses.MISSING}
        recorded = {**recorded, **later}
    budget = lambda d: {k: v for k, v in d.items() if k != "trials"}
    if recorded is None or (budget(recorded) == budget(described) and recorded != described):
        s.set_user_attr("spec", described)
    elif recorded != described:
        changed = sorted(k for k in set(recorded) | set(described) if k != "trials" and recorded.get(k) != described.get(k))
        differences = "; ".join(f"{k}: {recorded.get(k)!r} in the study, {described.get(k)!r} in the spec" for k in changed)
        raise SpecError(f"study {spec.name!r} in this storage was made from another spec (changed: {differences}); "
                        "give the spec a new name, or restore the old values")
    return s


def enqueue_points(spec, s):
    """A grid or design study's points, each enqueued once unless a trial already holds it (any state but a worker's
    death): workers then take points from the queue, where Optuna's GridSampler, asked by two workers at once, can
    give both the same point (found in the hyper chapter: two workers trained one point side by side). Call it from
    one process before the workers start. Returns the number enqueued."""
    import itertools

    from optuna.trial import TrialState

    if spec.sampler not in ("grid", "design"):
        return 0
    # A waiting trial holds its point in system_attrs["fixed_params"] until a worker takes it.
    held = {tuple(sorted((t.params or t.system_attrs.get("fixed_params", {})).items())) for t in s.get_trials(deepcopy=False)
            if t.state != TrialState.FAIL or "failure" in t.user_attrs}
    if spec.sampler == "grid":
        names = sorted(spec.space)
        points = [dict(zip(names, values)) for values in itertools.product(*(spec.space[n]["choices"] for n in names))]
    else:
        points = design_points(spec)
    added = 0
    for point in points:
        if tuple(sorted(point.items())) not in held:
            s.enqueue_trial(point)
            added += 1
    return added


enqueue_grid = enqueue_points  # the name before designs


def _told_elsewhere(error):
    """True for Optuna's refusal to tell a trial another worker already finished ("Cannot tell a COMPLETE trial.")."""
    return isinstance(error, ValueError) and str(error).startswith("Cannot tell a ") and str(error).rstrip(".").endswith(" trial")


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
            if _told_elsewhere(error):
                # Two workers on SQLite can pop the same waiting trial (SQLite has no row lock for Optuna's WAITING ->
                # RUNNING update; seen in the grid test under load): the run-folder lock had this worker wait and read
                # the run the other trained, and the other told the result first. Nothing is lost: carry on.
                log(f"worker {os.getpid()}: another worker took and finished the same queued trial at the same time; its result stands")
                continue
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
