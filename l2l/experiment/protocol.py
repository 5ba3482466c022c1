"""The rigor protocol: runs as the unit, every metric with its own tuned baselines, verdicts against the best baseline
chosen on the tuning split, and pre-registered endpoints read from a protocol result."""

import dataclasses
import os
import shutil
from typing import NamedTuple, Optional

import numpy as np

from l2l import evaluate, optimizers, stats
from l2l.experiment.log import terminal_log
from l2l.experiment.panel import BASELINES, Panel
from l2l.experiment.store import (
    _load_baselines,
    _load_scores,
    _load_tuning,
    _read_pair,
    _save_baselines,
    _save_tuning,
    _write_pair,
    protocol_key,
)

METRICS = {  # verdict metric -> what it measures, in words
    "final": "training loss at step {step}",
    "mean": "mean training loss over steps 1-{step}",
    "heldout": "held-out loss at step {step}",
    "corner": "mean corner error in pixels at step {step}",
    "median": "median pair's corner error in pixels at step {step}",
    "success": "share of pairs not within 1 px at step {step}",
    "time": "training loss at equal wall-clock time (the LSTM's step {step})",
}

VERDICT_OF = {"heldout_loss": "heldout", "corner_error": "corner"}  # a panel's first measure -> the verdict metric it gets

TUNED = "{}_tuned"  # the entry of a learned optimiser with its step multiplier tuned per step and metric

def metric_values(curves, step, metric):
    """[seeds, instances]: the loss at `step` ("final") or its mean over steps 1..step ("mean"); a NaN loss
    (a diverged run) is +inf."""
    curves = np.nan_to_num(np.asarray(curves, np.float64), nan=np.inf)
    return curves[:, :, step] if metric == "final" else stats.trajectory_mean(curves, step)

class ProtocolResult(NamedTuple):
    panel: Panel
    settings: dict  # step -> objective -> baseline -> keyword arguments of its factory
    multipliers: dict  # learned name -> step -> objective -> [tuned multiplier of each run]; empty unless tuned
    curves: dict  # run name ("lstm", "lstm~100:mean", "adam@100:mean") -> losses [seeds, instances, steps + 1]
    runs: dict  # entry name -> step -> objective -> run name in curves
    seconds_per_step: dict  # run name -> mean wall time of one step on all instances
    metrics: dict  # run name -> step -> (held-out loss, accuracy) [seeds, instances]; empty without held-out data
    entries: dict  # optimiser -> {"lr", "settings", "loss", "trajectory_mean", ["heldout_loss", "accuracy"], "ms_per_step"}
    verdicts: dict  # step -> metric -> {"learned", "best", "mean", "ci95", "runs", "wins", "verdict"[, "step", "capped"]}
    tuning_s: float  # seconds all the tuning's settings took (baselines and multipliers), kept across resumes; NaN if a part's time was never recorded
    tuning_scores: Optional[dict] = None  # step -> objective -> baseline -> its best loss on the tuning split; None: a panel tuned before they were kept

def tune_multipliers(problem, runs, steps, instances, grid=evaluate.MULTIPLIER_GRID, used=None, cache=None):
    """Each run's step multiplier tuned on `problem` like a baseline's learning rate (two stages, both
    objectives): returns (step -> objective -> [multiplier of run k] for the runs in `used` (default all),
    the seconds their tuning took: NaN if a kept run's time was not recorded).

    With `cache` (a JSON path), each run's multipliers are written there as soon as they are tuned and
    read back instead of tuned again: one run's tuning on a 1,000-step panel takes about ten minutes
    (the beyond chapter's MNIST panel), so a panel stopped midway keeps what it finished.
    """
    used = sorted(used if used is not None else range(len(runs)))
    if used and used[-1] >= len(runs):
        raise ValueError(f"runs {[k for k in used if k >= len(runs)]} asked for, of {len(runs)} runs")
    done, seconds = (_load_tuning(cache) if cache else None) or ({}, {})
    seconds = dict(seconds) if isinstance(seconds, dict) else {}  # run index (a string, as in JSON) -> seconds its tuning took
    tuned = {}
    for k in used:
        if k not in done:
            make = lambda learning_rate, run=runs[k]: optimizers.scaled(run.optimizer(problem), learning_rate)
            settings, table = evaluate.tune(problem, ["learned"], tuple(steps), instances, grid=grid, extra={}, makers={"learned": make})
            done[k] = {s: {o: by_name["learned"]["learning_rate"] for o, by_name in by_o.items()} for s, by_o in settings.items()}
            seconds[str(k)] = evaluate.tuning_seconds(table)
            if cache:
                _save_tuning(cache, done, seconds)
        for s, by_objective in done[k].items():
            for objective, multiplier in by_objective.items():
                tuned.setdefault(int(s), {}).setdefault(objective, {})[k] = multiplier
    multipliers = {s: {o: [m.get(k, 1.0) for k in range(len(runs))] for o, m in by_o.items()} for s, by_o in tuned.items()}
    return multipliers, float(sum(seconds.get(str(k), float("nan")) for k in used))

def _save_protocol(path, result):
    """A ProtocolResult as <path>.json (everything but arrays) and <path>.npz (curves and measures)."""
    plain = {"settings": result.settings, "multipliers": result.multipliers, "runs": result.runs, "seconds_per_step": result.seconds_per_step,
             "entries": result.entries, "verdicts": result.verdicts, "tuning_s": result.tuning_s, "tuning_scores": result.tuning_scores}
    _write_pair(path, plain, result.curves, result.metrics)

def _load_protocol(path, panel):
    """The ProtocolResult saved at `path`, or None if it is missing or unreadable (then it is recomputed)."""
    read = _read_pair(path)
    if read is None:
        return None
    plain, curves, metrics = read
    by_int = lambda d: {int(k): v for k, v in d.items()}
    return ProtocolResult(panel, by_int(plain["settings"]), {n: by_int(m) for n, m in plain["multipliers"].items()}, curves,
                          {n: by_int(r) for n, r in plain["runs"].items()}, plain["seconds_per_step"], metrics,
                          plain["entries"], by_int(plain["verdicts"]), plain["tuning_s"], by_int(plain["tuning_scores"]) if plain.get("tuning_scores") else None)

def run_protocol(panel, learned, instances, seeds, tune_instances, baselines=BASELINES, extra=evaluate.EXTRA_GRIDS,
                 learned_name="lstm", tune_learned=False, multiplier_grid=evaluate.MULTIPLIER_GRID, log=terminal_log, cache_dir=None,
                 grid=evaluate.LR_GRID, share=False):
    """The rigor protocol on one panel; with cache_dir, a finished panel is kept under its protocol_key
    there and reused, so a chapter killed after some panels resumes at the next one.

    share=True makes this call a second process beside the one computing the panel: it evaluates the panel's
    settings from the last one backwards into the same kept runs (which the other process reads instead of
    rerunning), tunes nothing, saves no panel, stops once the panel is saved, and returns None. It needs
    the cache and a finished tuning, and says so before any compute."""
    if share and not cache_dir:
        raise ValueError("share=True shares a panel's kept runs with another process: give the panel's cache_dir")
    key = (protocol_key(panel, learned, instances, seeds, tune_instances, baselines, extra, learned_name, tune_learned, multiplier_grid, grid)
           if cache_dir else None)
    if share and key is None:
        raise ValueError(f"panel {panel.name}: a learned optimiser has no weights to key the panel by, so there are no kept runs to share")
    # A geometry panel's files hold its measures at every step ("-path"); those cached before that hold them at the
    # report steps only, and are not read. Its baselines' tuning does not depend on it and is shared.
    path_tag = "-path" if panel.geometry else ""
    path = os.path.join(cache_dir, f"{panel.name}{path_tag}-{key}") if key else None
    if share and os.path.exists(path + ".json"):
        log(f"panel {panel.name}: already saved at {path}; nothing to share")
        return None
    if path and (cached := _load_protocol(path, panel)) is not None:
        log(f"panel {panel.name}: reused {path}")
        return cached
    # The baselines' tuning and runs depend on the panel, not on the learned optimisers: kept apart, so that a panel
    # whose learned weights changed (a re-executed chapter upstream) reruns only the learned optimisers.
    base_key = protocol_key(panel, {}, instances, seeds, tune_instances, baselines, extra, "", False, (), grid) if cache_dir else None
    base_path = os.path.join(cache_dir, f"{panel.name}-baselines{path_tag}-{base_key}") if base_key else None
    tuning_path = os.path.join(cache_dir, f"{panel.name}-baselines-{base_key}-tuning.json") if base_key else None
    # Each baseline's own tuning, kept under a key of what it alone depends on: a panel that gains a baseline tunes that one only.
    own_tuning = {name: os.path.join(cache_dir, f"{panel.name}-tuned-{name}-" + protocol_key(
        panel, {}, instances, seeds, tune_instances, (name,), {name: extra[name]} if name in extra else {}, "", False, (), grid) + ".json")
        for name in baselines} if cache_dir else None
    result = _run_protocol(panel, learned, instances, seeds, tune_instances, baselines, extra, learned_name, tune_learned, multiplier_grid, log, grid,
                           base_path, tuning_path, own_tuning=own_tuning, multiplier_cache=path, evaluation_cache=path and path + "-evaluated",
                           share_until=path + ".json" if share else None)
    if share:
        return None
    if path:
        os.makedirs(cache_dir, exist_ok=True)
        _save_protocol(path, result)
        shutil.rmtree(path + "-evaluated", ignore_errors=True)  # the panel's files now hold every run
    return result

def evaluate_each(problem, factories, steps, instances, seeds, folder=None, log=terminal_log, share_until=None, **options):
    """evaluate.evaluate(problem, factories, ...), one run (factory) at a time; with `folder`, each run is kept
    there as soon as it is evaluated and read back, not rerun, by a later call, so an evaluation stopped after
    hours loses one run at most. Runs are independent (their own instances, start and minibatches per seed),
    so the runs are those of one call over every factory.

    share_until (a path): this call helps another one working through the same folder. It goes from the last
    run backwards, so the two meet once, and it stops, keeping nothing more, as soon as that path exists (the
    other call's panel is saved and its folder removed). Its Evaluation then holds the runs it went through."""
    options.setdefault("traced", {})  # a baseline's settings share one trace across the runs (evaluate.at_setting)
    if folder is None:
        return evaluate.evaluate(problem, factories, steps, instances, seeds, **options)
    import hashlib

    finished = lambda: share_until is not None and os.path.exists(share_until)
    curves, seconds, metrics, kept = {}, {}, {}, 0
    for run, factory in (reversed(list(factories.items())) if share_until else factories.items()):
        if finished():
            log(f"{share_until} is saved: stopped sharing its evaluation")
            break
        path = os.path.join(folder, hashlib.sha256(run.encode()).hexdigest()[:16])  # run names hold "@", ":" and "~"
        read = _read_pair(path)
        if read is not None and read[0].get("run") == run:
            kept += 1
            curves[run], seconds[run], metrics[run] = read[1][run], read[0]["seconds_per_step"], read[2].get(run, {})
            continue
        one = evaluate.evaluate(problem, {run: factory}, steps, instances, seeds, **options)
        curves[run], seconds[run], metrics[run] = one.curves[run], one.seconds_per_step[run], one.metrics[run]
        if finished():  # the other process saved the panel and removed the folder while this run went on: leave no folder behind
            log(f"{share_until} is saved: stopped sharing its evaluation")
            break
        _write_pair(path, {"run": run, "seconds_per_step": seconds[run]}, {run: curves[run]}, {run: metrics[run]})
    if kept:
        log(f"read {kept} of {len(factories)} runs evaluated before from {folder}")
    return evaluate.Evaluation(curves=curves, seconds_per_step=seconds, metrics=metrics)

def best_baseline(baselines, step, objective, scores, entries):
    """(the baseline to compare with at `step` on `objective`, what it was chosen on). On the tuning split when the
    panel kept its tuning scores: the lowest tuned score, with test curves never read; else ("test", from a panel
    tuned before the scores were kept) the lowest test mean, as the book's first panels chose."""
    if scores is not None:
        return min(baselines, key=lambda n: stats.finite_or_inf(scores[step][objective][n])), "tuning"
    measure = {"final": "loss", "mean": "trajectory_mean"}.get(objective, objective)
    return min(baselines, key=lambda n: stats.finite_or_inf(entries[n][measure][str(step)]["mean"])), "test"

def _run_protocol(panel, learned, instances, seeds, tune_instances, baselines=BASELINES, extra=evaluate.EXTRA_GRIDS,
                  learned_name="lstm", tune_learned=False, multiplier_grid=evaluate.MULTIPLIER_GRID, log=terminal_log, grid=evaluate.LR_GRID,
                  baseline_cache=None, tuning_cache=None, multiplier_cache=None, evaluation_cache=None, share_until=None, own_tuning=None):
    """The rigor protocol on one panel.

    Every baseline is tuned for every reported step and both objectives (two
    stages, evaluate.tune over `grid`, on the panel's tuning problem); with
    tune_learned (True: every learned optimiser; or a collection of their
    names), so is each learned run's step multiplier (`<name>_tuned` entries;
    the plain entry stays at multiplier 1, as meta-trained). Every distinct
    setting then runs once to the panel's end on the same test instances
    (seed s uses learned run s mod n). Numbers are over runs (seeds): each
    step and metric reads the run tuned for it. Verdicts compare the learned
    optimiser (tuned, where tuned) with the best baseline for each step and
    metric in METRICS: the final loss, the trajectory mean, the held-out loss
    (with held-out data) and the loss at equal wall-clock time, where each
    baseline, tuned for the step's final loss, is read at the step it reaches
    in the learned optimiser's time (capped at the panel's end, which can
    only flatter the learned optimiser).
    """
    steps = tuple(sorted(set(panel.report_steps)))
    kept = _load_baselines(baseline_cache) if baseline_cache else None
    tuning_cache = tuning_cache or (baseline_cache + "-tuning.json" if baseline_cache else None)
    tuned = _load_tuning(tuning_cache) if tuning_cache else None
    # The tuning's time is the sum of its settings' times, kept with it, so a resumed panel reports what the tuning took.
    if share_until and kept is None and tuned is None:
        raise RuntimeError(f"panel {panel.name}: the baselines' tuning is not finished (no {tuning_cache}); a process sharing the evaluation "
                           "tunes nothing: start it once the panel's own process logs its distinct settings")
    if kept is not None:
        log(f"panel {panel.name}: reused the baselines' tuning and runs from {baseline_cache}")
        settings, tuning_s = kept[0], tuned[1] if tuned else float("nan")
    elif tuned is not None:
        log(f"panel {panel.name}: reused the baselines' tuning from {tuning_cache}")
        settings, tuning_s = tuned
    else:
        # Each baseline's tuning is kept as soon as it is done (a CNN's takes most of an hour): a panel stopped during it keeps those.
        kept_apart = [n for n in baselines if own_tuning and os.path.exists(own_tuning[n])]
        if kept_apart:
            log(f"panel {panel.name}: reused the tuning of {', '.join(kept_apart)}, kept per baseline")
        if len(kept_apart) < len(baselines):
            log(f"panel {panel.name}: tuning {', '.join(n for n in baselines if n not in kept_apart)} for steps {steps}")
        settings, table = evaluate.tune(panel.tuning_problem, list(baselines), steps, tune_instances, grid=grid, extra=extra, cache=own_tuning)
        tuning_s = evaluate.tuning_seconds(table)
        scores = evaluate.tuning_scores(table, baselines, steps)
        if tuning_cache:  # tuning can take as long as the runs: a panel killed during its runs keeps it
            _save_tuning(tuning_cache, settings, tuning_s, scores)
    if kept is not None or tuned is not None:
        scores = _load_scores(tuning_cache) if tuning_cache else None
    tuned_names = [n for n in learned if tune_learned is True or (not isinstance(tune_learned, bool) and n in tune_learned)]
    unknown = sorted(set(tune_learned) - set(learned)) if not isinstance(tune_learned, bool) else []
    if unknown:
        raise ValueError(f"tune_learned names {unknown}, which are not learned optimisers of this panel ({sorted(learned)})")
    multipliers = {}
    for name in tuned_names:
        # Each name's own runs: seed s uses run s mod n, and n differs between names (5 combination runs, 3 general).
        used = sorted({s % len(learned[name]) for s in seeds})
        cache = f"{multiplier_cache}-{name}-multipliers-tuning.json" if multiplier_cache else None
        kept_runs = sorted(set((_load_tuning(cache) or ({},))[0]) & set(used)) if cache else []
        if share_until and kept_runs != used:
            raise RuntimeError(f"panel {panel.name}: the step multipliers of {name} are not all tuned ({len(kept_runs)} of {len(used)} in {cache}); "
                               "a process sharing the evaluation tunes nothing: start it once the panel's own process logs its distinct settings")
        log(f"panel {panel.name}: tuning the step multiplier of {len(used) - len(kept_runs)} of {len(used)} runs of {name}"
            + (f" (the others' from {cache})" if kept_runs else ""))
        multipliers[name], spent = tune_multipliers(panel.tuning_problem, learned[name], steps, tune_instances, multiplier_grid, used, cache=cache)
        tuning_s += spent

    made, runs_of, slots = {}, {}, {}  # slots: the learned runs' shared optimisers (evaluate.learned_runs)
    for name, lruns in learned.items():
        made[name] = evaluate.learned_runs(lruns, panel.problem, slots)
        runs_of[name] = {s: {o: name for o in evaluate.OBJECTIVES} for s in steps}
        if name in multipliers:
            chosen = {}
            for s in steps:
                for o in evaluate.OBJECTIVES:
                    factors = tuple(multipliers[name][s][o])
                    run = chosen.setdefault(factors, f"{name}~{s}:{o}")
                    made.setdefault(run, evaluate.learned_runs(lruns, panel.problem, slots, factors))
                    runs_of.setdefault(TUNED.format(name), {}).setdefault(s, {})[o] = run
    chosen, shared = {}, {}  # (baseline, frozen settings) -> run name; a baseline's one optimiser for all its settings (evaluate.at_setting)
    for s in steps:
        for o in evaluate.OBJECTIVES:
            for name in baselines:
                kwargs = settings[s][o][name]
                run = chosen.setdefault((name, tuple(sorted(kwargs.items()))), f"{name}@{s}:{o}")
                made.setdefault(run, evaluate.at_setting(name, kwargs, shared))
                runs_of.setdefault(name, {}).setdefault(s, {})[o] = run

    metric = panel.metric()
    baseline_runs = sorted(set(chosen.values()))
    todo = {run: make for run, make in made.items() if kept is None or run not in baseline_runs}
    log(f"panel {panel.name}: {len(todo)} distinct settings on {len(seeds)} seeds x {instances} instances, {panel.steps} steps")
    # Every run is independent of the others (its own instances, start and minibatch stream per seed), so runs
    # evaluated in separate calls are the runs one call would make.
    # A geometry panel keeps its measures at every step, for the steps each pair takes to come within 1 px.
    if share_until:
        log(f"panel {panel.name}: sharing the evaluation, from its last setting backwards, until {share_until} is saved")
    evaluation = evaluate_each(panel.problem, todo, panel.steps, instances, seeds, evaluation_cache, log, share_until, metric=metric,
                               snapshots=steps if metric else (), every_step=panel.geometry)
    if share_until:
        return None
    fresh_metrics = {run: {s: tuple(np.asarray(v) for v in m[s]) for s in m} for run, m in evaluation.metrics.items() if m}
    if kept is None and baseline_cache:
        _save_baselines(baseline_cache, settings, {r: evaluation.curves[r] for r in baseline_runs},
                        {r: evaluation.seconds_per_step[r] for r in baseline_runs}, {r: fresh_metrics[r] for r in baseline_runs if r in fresh_metrics})
    old_curves, old_seconds, old_metrics = kept[1:] if kept is not None else ({}, {}, {})
    curves = {run: old_curves[run] if run in old_curves else evaluation.curves[run] for run in made}
    seconds = {run: old_seconds[run] if run in old_seconds else evaluation.seconds_per_step[run] for run in made}
    metrics = {run: old_metrics[run] if run in old_metrics else fresh_metrics[run] for run in made if run in old_metrics or run in fresh_metrics}

    entries = {}
    for name, by_step in runs_of.items():
        final_run = by_step[steps[-1]]["final"]
        tuned_for = panel.tune_steps if panel.tune_steps in settings else steps[-1]
        entry = {"lr": settings[tuned_for]["final"][name]["learning_rate"] if name in baselines else None,
                 "settings": {str(s): settings[s]["final"][name] for s in steps} if name in baselines else None}
        base = name[: -len(TUNED.format(""))] if name.endswith(TUNED.format("")) else None
        if base in multipliers:
            entry["multiplier"] = {str(s): {o: multipliers[base][s][o] for o in evaluate.OBJECTIVES} for s in steps}
        for o, key in [("final", "loss"), ("mean", "trajectory_mean")]:
            entry[key] = {str(s): stats.within(stats.over_runs(metric_values(curves[by_step[s][o]], s, o)), key) for s in steps}
        if metrics:
            for i, measure in enumerate(panel.measures):
                entry[measure] = {str(s): stats.within(stats.over_runs(metrics[by_step[s]["final"]][s][i]), measure) for s in steps}
        entry["ms_per_step"] = 1000 * seconds[final_run]
        if panel.geometry:
            for s in steps:
                run = by_step[s]["final"]
                entry.update(reaching(corner_path(metrics[run], panel.steps), seconds[run], s, entry))
        entries[name] = entry

    verdicts = _verdicts(panel, list(baselines), entries, curves, runs_of, seconds, metrics, learned_name, multipliers, scores)
    return ProtocolResult(panel, settings, multipliers, curves, runs_of, seconds, metrics, entries, verdicts, tuning_s, scores)

def corner_path(metrics, steps):
    """Corner errors [seeds, instances, steps] at steps 1..steps, from a geometry run's measures by step."""
    return np.stack([np.asarray(metrics[t][0]) for t in range(1, steps + 1)], axis=-1)

def reaching(corners, seconds_per_step, step, entry=None, tolerance=1.0):
    """`entry`'s "steps_to_1px" and "seconds_to_1px" with `step`'s interval added: over runs, the median pair's
    first step within `tolerance` pixels (corners [seeds, instances, steps] at steps 1..steps), and that many
    steps' wall-clock. A run whose median pair never gets there counts as inf ("diverged" in the interval:
    read it as not reached)."""
    first = stats.first_within(corners, tolerance)
    per_run = np.median(first, axis=1)
    entry = entry or {}
    return {"steps_to_1px": {**entry.get("steps_to_1px", {}), str(step): stats.over_runs(per_run)},
            "seconds_to_1px": {**entry.get("seconds_to_1px", {}), str(step): stats.over_runs(per_run * seconds_per_step)}}

def _verdicts(panel, baselines, entries, curves, runs_of, seconds, metrics, learned_name, multipliers, scores=None):
    """step -> metric -> the paired comparison of `learned_name` (its tuned entry, where tuned) with the best baseline,
    chosen on the tuning split where the panel kept its tuning scores (best_baseline; "chosen_on" says which)."""
    steps = tuple(sorted(set(panel.report_steps)))
    competitor = TUNED.format(learned_name) if learned_name in multipliers else learned_name
    verdicts = {}
    for s in steps:
        verdicts[s] = {}
        for o in ("final", "mean"):
            best, chosen_on = best_baseline(baselines, s, o, scores, entries)
            ours = metric_values(curves[runs_of[competitor][s][o]], s, o)
            theirs = metric_values(curves[runs_of[best][s][o]], s, o)
            verdicts[s][o] = {"learned": competitor, "best": best, "chosen_on": chosen_on, **stats.compare_runs(ours, theirs)}
        if metrics:
            measure = panel.measures[0]
            # The held-out measure was not tuned for: its best baseline is the one best on the tuning split's final loss.
            best, chosen_on = best_baseline(baselines, s, "final", scores, entries) if scores is not None else best_baseline(baselines, s, measure, None, entries)
            verdicts[s][VERDICT_OF[measure]] = {"learned": competitor, "best": best, "chosen_on": chosen_on, **stats.compare_runs(
                metrics[runs_of[competitor][s]["final"]][s][0], metrics[runs_of[best][s]["final"]][s][0])}
        ours_run = runs_of[competitor][s]["final"]
        reach = {n: min(panel.steps, int(s * seconds[ours_run] / seconds[runs_of[n][s]["final"]])) for n in baselines}
        best = min(baselines, key=lambda n: stats.finite_or_inf(np.mean(metric_values(curves[runs_of[n][s]["final"]], reach[n], "final"))))
        verdicts[s]["time"] = {"learned": competitor, "best": best, "chosen_on": "test", "step": reach[best],  # no tuning score at the step reached
                               "capped": reach[best] == panel.steps and s * seconds[ours_run] / seconds[runs_of[best][s]["final"]] > panel.steps,
                               **stats.compare_runs(metric_values(curves[ours_run], s, "final"),
                                                    metric_values(curves[runs_of[best][s]["final"]], reach[best], "final"))}
    return verdicts

def read_endpoint(result, endpoint):
    """A pre-registered endpoint (l2l.chapters.Endpoint) read from a protocol result: the learned optimiser's runs
    against the best of endpoint.against chosen on the tuning split, by stats.endpoint_verdict, plus "best",
    "chosen_on", "metric", "step", "budget" (the endpoint's meta-training epochs in words), "meta_epochs", and each
    side's own "learned_value" and "baseline_value" over runs. A chapter records these under summary.json's "endpoints".

    final / mean: each optimiser's run tuned for that step and metric; heldout_loss / accuracy: the runs tuned for the
    step's final loss, accuracy read as error (1 - accuracy) so that lower is better throughout; time: the baseline
    best on the tuning split's final loss at the step, read at the step it reaches in the learned optimiser's
    wall-clock time (capped at the panel's end, which can only flatter the learned optimiser)."""
    from l2l.paper import budget_words

    s, learned = endpoint.step, endpoint.learned
    unknown = [n for n in (learned, *endpoint.against) if n not in result.runs]
    if unknown:
        raise ValueError(f"endpoint {endpoint.name!r} names {unknown}, which panel {result.panel.name!r} did not run; it ran {sorted(result.runs)}")
    if s not in result.runs[learned]:
        raise ValueError(f"endpoint {endpoint.name!r} is read at step {s}, not a report step of panel {result.panel.name!r} ({sorted(result.runs[learned])})")
    objective = endpoint.metric if endpoint.metric in ("final", "mean") else "final"
    if len(endpoint.against) == 1:
        best, chosen_on = endpoint.against[0], "named"
    elif result.tuning_scores is None:
        raise ValueError(f"panel {result.panel.name!r} kept no tuning scores: its best baseline cannot be chosen on the tuning split; recompute it")
    else:
        best, chosen_on = best_baseline(list(endpoint.against), s, objective, result.tuning_scores, None)
    ours_run, theirs_run = result.runs[learned][s][objective], result.runs[best][s][objective]
    if endpoint.metric in ("final", "mean"):
        ours, theirs = metric_values(result.curves[ours_run], s, objective), metric_values(result.curves[theirs_run], s, objective)
    elif endpoint.metric in ("heldout_loss", "accuracy"):
        i = result.panel.measures.index(endpoint.metric)
        ours, theirs = (np.asarray(result.metrics[run][s][i], np.float64) for run in (ours_run, theirs_run))
        if endpoint.metric == "accuracy":
            ours, theirs = 1.0 - ours, 1.0 - theirs
    elif endpoint.metric == "time":
        reach = min(result.panel.steps, int(s * result.seconds_per_step[ours_run] / result.seconds_per_step[theirs_run]))
        ours, theirs = metric_values(result.curves[ours_run], s, "final"), metric_values(result.curves[theirs_run], reach, "final")
    else:
        raise ValueError(f"endpoint {endpoint.name!r}: unknown metric {endpoint.metric!r}")
    return {**stats.endpoint_verdict(ours, theirs), "best": best, "chosen_on": chosen_on, "metric": endpoint.metric, "step": s,
            "budget": budget_words(endpoint.meta_epochs), "meta_epochs": endpoint.meta_epochs,
            # Each side on its own, over runs (accuracy as error, as compared): what a headline table prints beside the difference.
            "learned_value": stats.over_runs(ours), "baseline_value": stats.over_runs(theirs)}

def endpoint_sentence(reading, endpoint, unit="problems"):
    """A pre-registered endpoint's reading (read_endpoint) in one sentence: which endpoint, what was measured, over how
    many runs, the paired difference with its interval and k of n, and the pre-registered outcome; an inconclusive
    one says the smallest difference the design could have detected."""
    from l2l import plots

    r = reading
    kind = "Primary" if endpoint.primary else "Secondary"
    gap = (f"{r['mean']:.3g} (95% CI {r['ci95'][0]:.3g} to {r['ci95'][1]:.3g})" if all(map(np.isfinite, [r["mean"], *r["ci95"]]))
           else "not finite (a run diverged)")
    outcome = {"reproduced": "**reproduced**", "not reproduced": "**not reproduced**",
               "inconclusive": f"**inconclusive at {r['runs']} runs** (the design could detect a difference of {r['detectable']:.3g} or more)"}[r["outcome"]]
    chosen = "chosen on the tuning split" if r["chosen_on"] != "named" else "named in advance"
    if r["meta_epochs"] < endpoint.meta_epochs:  # runs short of the budget the endpoint was registered at
        outcome += f"; not the pre-registered reading, which is at {endpoint.meta_epochs:,} meta-training epochs"
    return (f"{kind} endpoint `{endpoint.name}` ({endpoint.claim}): over {r['runs']} runs of {unit}, {plots.label(endpoint.learned)} "
            f"meta-trained {r['budget']} minus {plots.label(r['best'])} ({chosen}) is {gap}, lower in {r['wins']} of {r['runs']} runs "
            f"(reproduced needs {r['needed']} and an interval below 0): {outcome}.")


def protocol_view(result, learned_name, name=None, title=None, others=()):
    """One learned optimiser's panel out of a run_protocol result that evaluated several on the same instances.

    Keeps `learned_name` (and its tuned entry), the `others` learned entries
    for comparison and every baseline, with the verdicts recomputed for
    `learned_name`. Panels that share a test problem (CIFAR-10 with two LSTMs,
    one LSTM, the MNIST-trained LSTM) thus share their baselines' tuning and
    runs: the same numbers, computed once.
    """
    baselines = [n for n, e in result.entries.items() if e.get("settings")]
    learned = [n for n in result.entries if n not in baselines and not n.endswith(TUNED.format(""))]
    unknown = [n for n in (learned_name, *others) if n not in learned]
    if unknown:
        raise ValueError(f"{unknown} are not learned optimisers of panel {result.panel.name!r}; it has {learned}")
    keep = [n for base in (learned_name, *others) for n in (base, TUNED.format(base)) if n in result.entries] + baselines
    panel = dataclasses.replace(result.panel, name=name or result.panel.name, title=title or result.panel.title)
    runs = {n: result.runs[n] for n in keep}
    used = {run for by_step in runs.values() for by_o in by_step.values() for run in by_o.values()}
    verdicts = _verdicts(panel, baselines, result.entries, result.curves, result.runs, result.seconds_per_step, result.metrics, learned_name,
                         result.multipliers, result.tuning_scores)
    return result._replace(panel=panel, runs=runs, entries={n: result.entries[n] for n in keep}, verdicts=verdicts,
                           multipliers={n: m for n, m in result.multipliers.items() if n in keep},
                           curves={r: c for r, c in result.curves.items() if r in used},
                           metrics={r: m for r, m in result.metrics.items() if r in used},
                           seconds_per_step={r: v for r, v in result.seconds_per_step.items() if r in used})
