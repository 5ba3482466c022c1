"""Meta-training runs as a chapter uses them: trained or reused by key, weights written with provenance, and their reports."""

import math
import os
import re
from typing import NamedTuple

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from l2l import learned_optimizer, meta, plots, stats
from l2l.experiment.log import terminal_log


def meta_train_runs(problem, lstm_config, configs, checkpoint_root, results_dir, label, valid_problem=None, log=terminal_log, **about):
    """Meta-trains one run per config (resumed or reused by run key); returns seed -> MetaResult.

    Writes each run's best weights to results_dir/<label>_seed<seed>.weights.h5
    with its provenance (`about`, e.g. chapter and trained_on, plus seed,
    epochs, best epoch and validation, status and run key), and removes the
    label's weights files of other seeds, left by an earlier run.
    """
    os.makedirs(results_dir, exist_ok=True)
    runs = {}
    for config in configs:
        log(f"meta-training {label}, seed {config.seed}")
        result = meta.meta_train(problem, lstm_config, config, checkpoint_root=checkpoint_root, log=log, valid_problem=valid_problem)
        learned_optimizer.save_weights(
            os.path.join(results_dir, f"{label}_seed{config.seed}.weights.h5"), result.meta_params, lstm_config,
            **about, seed=config.seed, best_epoch=result.best_epoch, best_valid=result.best_valid,
            epochs=config.epochs, status=result.status, run_key=result.key)
        runs[config.seed] = result
    # A weights file of a seed this call does not train is an earlier run's (a profile with more seeds), which
    # publish's pattern would still match: only this call's runs stay under the label.
    mine = {f"{label}_seed{config.seed}.weights.h5" for config in configs}
    for name in os.listdir(results_dir):
        if re.fullmatch(rf"{re.escape(label)}_seed\d+\.weights\.h5", name) and name not in mine:
            log(f"removed {name} from {results_dir}: seed not among this run's {label} seeds")
            os.remove(os.path.join(results_dir, name))
    return runs

def best_run(runs):
    """The run (a MetaResult or anything with best_valid) with the lowest validation; one that never validated
    finitely ranks last, as l2l.pretrained.publish ranks weights files (NaN compares as neither better nor worse)."""
    return min(runs, key=lambda r: stats.validation_rank(r.best_valid))

class SavedRun(NamedTuple):
    """A learned optimiser read from a weights file (another chapter's run), usable wherever a MetaResult is."""

    path: str
    meta_params: dict
    lstm_config: object  # LSTMConfig, or group -> LSTMConfig
    provenance: dict

    def optimizer(self, problem=None):
        return learned_optimizer.learned(self.meta_params, self.lstm_config, getattr(problem, "groups", None))

def saved_runs(paths, made_by):
    """SavedRun of each weights file; a missing one is named with `made_by`, the command that writes it, before any compute."""
    missing = [p for p in paths if not os.path.exists(p)]
    if missing:
        raise FileNotFoundError(f"missing learned optimiser weights {missing}: {made_by} writes them")
    return [SavedRun(p, *learned_optimizer.load_weights(p)) for p in paths]

def curriculum_stages(groups):
    """label -> the curriculum stage (1-based) each run ended in, for the groups whose runs have a curriculum
    (a "stage" column in their history); groups without one are left out."""
    return {label: [int(r.history["stage"].max()) + 1 for r in runs.values()] for label, runs in groups.items()
            if runs and all("stage" in r.history for r in runs.values())}

def curriculum_sentence(groups, stages):
    """Which stage of the curriculum `stages` (training horizons) each run ended in, run by run, per group."""
    ended = curriculum_stages(groups)
    if not ended:
        return "No run here has a curriculum."
    return (f"The curriculum has {len(stages)} stages ({', '.join(str(h) for h in stages)} training steps); the stage each run ended in, "
            f"run by run: " + "; ".join(f"{label} {', '.join(str(s) for s in stages_of)}" for label, stages_of in ended.items()) + ".")

def meta_training_entry(runs):
    """What summary.json records of a group of runs beside the learned optimiser's results."""
    return {"meta_training_s": [r.wall_time_s for r in runs.values()], "best_epoch": [r.best_epoch for r in runs.values()],
            "status": [r.status for r in runs.values()]}

def history_frame(groups):
    """Long table of every run's history: groups is label -> {seed: MetaResult}."""
    return pd.concat([r.history.assign(run=label, seed=s) for label, runs in groups.items() for s, r in runs.items()], ignore_index=True)

def meta_training_table(groups):
    """One row per run: epochs, best epoch and validation loss, status, minutes."""
    rows = [{"run": label, "seed": s, "epochs": len(r.history), "best epoch": r.best_epoch,
             "best validation loss": f"{r.best_valid:.4g}", "status": r.status, "minutes": f"{r.wall_time_s / 60:.1f}"}
            for label, runs in groups.items() for s, r in runs.items()]
    return pd.DataFrame(rows)

def meta_training_figure(groups, horizon):
    """Validation loss over epochs, a line per run, the kept (best) epoch circled; one axis per group."""
    fig, axes = plt.subplots(1, len(groups), figsize=(5.5 * len(groups), 3.8), sharey=True, squeeze=False)
    for ax, (label, runs) in zip(axes[0], groups.items()):
        plots.meta_training(runs, ax=ax)
        ax.set_title(f"{label}: validation loss at step {horizon}")
    return fig

def validation_jitter(runs):
    """Mean absolute change of the validation loss between consecutive validations, second half of each run."""
    jumps = [np.mean(np.abs(np.diff(v[len(v) // 2:]))) for v in (r.history["valid_loss"].dropna().to_numpy() for r in runs) if len(v) >= 4]
    return float(np.mean(jumps)) if jumps else math.nan
