"""One trial: the meta-training run its settings key, and its objective against tuned NAG."""

import math
import os
import time

from l2l.sweep.spec import SETTINGS, suggest


def _is_outage(error):
    """True for a lost or refused database connection (SQLAlchemy's OperationalError and its kin), not for a bug."""
    names = {cls.__name__ for cls in type(error).__mro__}
    return bool(names & {"OperationalError", "InterfaceError", "DisconnectionError"}) or "server closed the connection" in str(error)


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
    from l2l import design, learned_optimizer, meta

    if spec.budget:  # the same meta-updates for every trial: at fixed epochs, unroll 5 makes ten times unroll 50's
        settings = {**settings, "epochs": design.epochs_for_budget(spec.budget, settings["horizon"], settings["unroll"])}
    lstm = learned_optimizer.LSTMConfig(**{k: v for k, v in settings.items() if SETTINGS[k][1] == "lstm"})
    config = meta.MetaConfig(seed=settings.get("seed", spec.seed), valid_every=spec.valid_every, valid_instances=spec.valid_instances, select_on=spec.objective,
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


def tuned_baseline(problem, name, horizon, instances, seed):
    """{"final", "mean", "settings"}: a baseline's best of evaluate.tune's grid (its learning rate and, for NAG and
    ADAM, momentum or beta1, refined) on the objective's instances, each objective tuned on its own."""
    from l2l import evaluate

    settings, table = evaluate.tune(problem, [name], horizon, instances, seed=seed)
    return {"final": float(table["final"].min()), "mean": float(table["mean"].min()),
            "settings": {o: settings[o][name] for o in evaluate.OBJECTIVES}}


def tuned_nag(problem, horizon, instances, seed):
    """tuned_baseline for NAG: what every trial's score is the ratio to."""
    return tuned_baseline(problem, "nag", horizon, instances, seed)


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
        horizon = self.spec.eval_horizon or settings["horizon"]  # where the trial is scored
        nag = self.nag_for(study, horizon)
        trainer = build_run(self.spec, settings, self.task_problem, self.valid_problem, self.root)
        trial.set_user_attr("run_key", trainer.key)
        trial.set_user_attr("settings", settings)
        trial.set_user_attr("epochs", trainer.config.epochs)
        trial.set_user_attr("eval_horizon", horizon)
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
        final, mean = objective_losses(self.valid_problem, result.optimizer(self.valid_problem), horizon, self.spec.objective_instances, self.spec.seed)
        trial.set_user_attr("lstm", {"final": final, "mean": mean})
        trial.set_user_attr("ratio", {"final": final / nag["final"], "mean": mean / nag["mean"]})
        if not math.isfinite(final):
            trial.set_user_attr("failure", "the trained optimiser's loss went non-finite on the objective's instances")
            raise RunFailed(trial.user_attrs["failure"])
        return {"final": final, "mean": mean}[self.spec.objective] / nag[self.spec.objective]


# -- storage, study, workers ------------------------------------------------
