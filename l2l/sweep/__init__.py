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

import warnings

# Optuna imports tqdm.auto, which inside a notebook kernel without ipywidgets warns on import: nothing here draws a bar.
warnings.filterwarnings("ignore", message="IProgress not found")

# The package's parts, each a concern: spec (the settings and their checks), trials (a trial's run and objective),
# workers (storage, study, the worker loop), analysis (what a study says), cli (python -m l2l.sweep).
from l2l.sweep.analysis import agreement, grid_heat, grid_sentence, importance_sentence, importances, outcomes, partial_dependence, rank_agreement, settings_of, trials_frame  # noqa: E402, F401
from l2l.sweep.cli import _spawn, main, run_workers  # noqa: E402, F401
from l2l.sweep.spec import (  # noqa: E402, F401
                            DEFAULTS,
                            DIMENSION_KEYS,
                            LARGEST,
                            OBJECTIVES,
                            PRUNERS,
                            SAMPLERS,
                            SETTINGS,
                            TASKS,
                            Spec,
                            SpecError,
                            check,
                            design_points,
                            dump_spec,
                            grid_points,
                            grid_size,
                            grid_spec,
                            load_spec,
                            spec_from_dict,
                            suggest,
)
from l2l.sweep.trials import Objective, RunFailed, Surplus, build_run, finished, objective_losses, taken, task_problems, tuned_baseline, tuned_nag  # noqa: E402, F401
from l2l.sweep.workers import (  # noqa: E402, F401
                            CONNECT_TIMEOUT_S,
                            GRACE_S,
                            HEARTBEAT_S,
                            OUTAGE_S,
                            STORAGE_VARIABLE,
                            StorageDown,
                            _quiet_surplus,
                            default_storage,
                            enqueue_grid,
                            enqueue_points,
                            masked,
                            sampler_seed,
                            storage,
                            study,
                            work,
)
