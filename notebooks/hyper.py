# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Which settings of the meta-learner matter
#
# The study this project grows from found tuning the meta-learner "significantly
# challenging" and named, in prose, the settings it thought mattered most. This
# chapter measures it. An Optuna study searches the meta-learner's settings
# (meta learning rate, unroll length, training horizon, gradient
# preprocessing, output scale, LSTM size and depth, meta-gradient clipping,
# problem instances per meta-iteration, meta-training epochs) on the MNIST
# chapter's MLP. Each trial meta-trains an LSTM and scores it by its loss on
# MLPs of held-out training images **as a ratio to NAG's**, with NAG's learning
# rate and momentum tuned on those same MLPs: below 1, the learned optimiser
# wins. A median pruner stops trials whose validation trails the median, so
# hopeless settings cost little.
#
# From the trials: how much each setting matters (Optuna's fANOVA and
# PED-ANOVA estimators, with bootstrap intervals), how the objective moves with
# the top settings, a grid study of the top two, what each configuration cost
# and where meta-training failed. A quadratics study asks whether the ranking
# carries over. Last, the best configuration found is meta-trained several
# times and tested on the MNIST chapter's test panel with its protocol.
#
# ```bash
# python -m l2l.book run hyper                      # the full profile shown here
# python -m l2l.book run hyper --profile smoke      # minutes, into _build/smoke/
# python -m l2l.sweep run notebooks/sweeps/mnist.yaml --workers 2 --threads 1   # the main study alone
# ```

# %% tags=["parameters"]
profile = "full"  # every parameter is a field of l2l.chapters.Hyper; the runner sets them all

# %% tags=["hide-input"]
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import Markdown, display
from myst_nb import glue

from l2l import chapters, data, experiment, learned_optimizer, meta, plots, problems, recipes, sweep

p = chapters.Hyper.from_namespace(globals())
chapter = experiment.Chapter("hyper", p)
spec, second = sweep.load_spec(p.spec), sweep.load_spec(p.second_spec)  # a malformed spec fails here, before any compute
split = data.mnist_splits()
mnist_runs = experiment.saved_runs([p.mnist_weights.format(seed=s) for s in range(p.best_seeds)], "python -m l2l.book run mnist")
store_url = lambda s: sweep.default_storage(s, p.results_dir)
for name, value in p.as_dict().items():
    glue(name, value, display=False)
glue("trials", spec.trials, display=False)
glue("space_text", ", ".join(sorted(spec.space)), display=False)

# %% [markdown]
# ## The study
#
# {glue:text}`trials` trials over {glue:text}`space_text`
# (`notebooks/sweeps/mnist.yaml` gives every range), run by
# {glue:text}`workers` worker processes sharing one SQLite study file
# (`book/results/hyper/`, reloadable with Optuna or `optuna-dashboard`).
# The first trials are sampled at random, the rest by TPE.

# %% tags=["hide-input"]
for path, s in ((p.spec, spec), (p.second_spec, second)):
    sweep.run_workers(path, store_url(s), p.checkpoint_dir, workers=p.workers, log=experiment.terminal_log)
study, second_study = (sweep.study(s, sweep.storage(store_url(s))) for s in (spec, second))
frames = {s.name: sweep.trials_frame(st) for s, st in ((spec, study), (second, second_study))}
frame = frames[spec.name]
for name, f in frames.items():
    f.drop(columns=["run_key"]).to_csv(chapter.path(f"trials_{name}.csv"), index=False, float_format="%.6g")
counts = {name: sweep.outcomes(f) for name, f in frames.items()}
done = frame[frame.state == "COMPLETE"]
cpu_hours = frame.cpu_s.sum() / 3600
glue("n_complete", counts[spec.name]["complete"], display=False)
glue("n_pruned", counts[spec.name]["pruned"], display=False)
glue("n_failed", counts[spec.name]["failed"], display=False)
glue("cpu_hours", f"{cpu_hours:.2f}", display=False)
glue("n_wins", int((done.value < 1).sum()), display=False)
glue("best_ratio", f"{done.value.min():.3g}", display=False)
glue("median_ratio", f"{done.value.median():.3g}", display=False)
display(Markdown(pd.DataFrame(counts).T.rename_axis("study").reset_index().to_markdown(index=False)))

# %% [markdown]
# Of the main study's trials, {glue:text}`n_complete` completed,
# {glue:text}`n_pruned` were pruned and {glue:text}`n_failed` failed
# (meta-training went non-finite); together they used
# {glue:text}`cpu_hours` CPU hours. {glue:text}`n_wins` complete trials scored
# below 1 (their LSTM beat tuned NAG on the held-out MLPs); the best scored
# {glue:text}`best_ratio`, the median {glue:text}`median_ratio`.
#
# ## Cost against quality, and where meta-training fails
#
# Left: each trial's CPU seconds against its score (pruned trials at their
# last validation, which the pruner read). Right: the trials over the two most
# important settings (next section), by outcome.

# %% tags=["hide-input"]
ranking = {s.name: {e: sweep.importances(st, e, repeats=p.importance_repeats, seed=s.seed) for e in ("fanova", "ped_anova")}
           for s, st in ((spec, study), (second, second_study))}
top = list(ranking[spec.name]["fanova"].setting[:2])
fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
plots.cost_quality(frame, ax=axes[0])
if len(top) == 2:
    plots.outcome_map(frame, top, log=[bool(spec.space[name].get("log")) for name in top], ax=axes[1])
plt.show()

# %% [markdown]
# ## Which settings matter
#
# Each setting's share of the objective's variance (fANOVA, random forests on
# the complete trials) and PED-ANOVA's importance of where good trials sit;
# bars span the 2.5 to 97.5 percentiles over {glue:text}`importance_repeats`
# bootstrap resamples of the trials. The quadratics study beside it asks
# whether the ranking carries over to another task.
#
# {glue:md}`importance_sentence`

# %% tags=["hide-input"]
fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharex=True)
for ax, (name, by) in zip(axes, ranking.items()):
    plots.importance_bars(by, ax=ax, title=f"study {name}")
plt.show()
main_rank = list(ranking[spec.name]["fanova"].setting)
estimators_rho, _ = sweep.rank_agreement(main_rank, ranking[spec.name]["ped_anova"].setting)
tasks_rho, _ = sweep.rank_agreement(main_rank, ranking[second.name]["fanova"].setting)
glue("importance_sentence", Markdown(sweep.importance_sentence(ranking[spec.name], ranking[second.name], counts[spec.name]["complete"])), display=False)

# %% [markdown]
# ## How the objective moves with the top settings
#
# Geometric mean of the score per choice, or per quarter of the trials' values
# for a range, with 95% intervals on its log (complete trials only: pruned
# trials stopped early and failed ones have no score).

# %% tags=["hide-input"]
shown = main_rank[:3]
fig, axes = plt.subplots(1, len(shown), figsize=(4.2 * len(shown), 3.8), sharey=True)
dependence = {}
for ax, name in zip(np.atleast_1d(axes), shown):
    table = sweep.partial_dependence(frame, name)
    dependence[name] = table.to_dict("records")
    plots.dependence(table, ax=ax, title=name)
np.atleast_1d(axes)[0].set_ylabel("loss / tuned NAG's (geometric mean)")
plt.show()

# %% [markdown]
# ## The top two settings on a grid
#
# A grid study over the two most important settings, {glue:text}`grid_points`
# values each, every other setting held at the best trial's.
#
# {glue:md}`grid_sentence`

# %% tags=["hide-input"]
best = study.best_trial
best_settings = sweep.settings_of(best)
grid = sweep.grid_spec(spec, best_settings, top, p.grid_points)
grid_path = sweep.dump_spec(grid, chapter.path(f"{grid.name}.yaml"))
sweep.run_workers(grid_path, store_url(grid), p.checkpoint_dir, workers=p.workers, log=experiment.terminal_log)
grid_frame = sweep.trials_frame(sweep.study(grid, sweep.storage(store_url(grid))))
grid_frame.drop(columns=["run_key"]).to_csv(chapter.path("trials_grid.csv"), index=False, float_format="%.6g")
heat = sweep.grid_heat(grid_frame, top)
fig, ax = plt.subplots(figsize=(5.5, 4.2))
plots.ratio_heatmap(heat, ax=ax)
plt.show()
glue("grid_sentence", Markdown(sweep.grid_sentence(heat, grid.objective)), display=False)

# %% [markdown]
# ## The best configuration at the MNIST chapter's budget, on its test panel
#
# The best trial's settings ({glue:text}`best_text`), meta-trained
# {glue:text}`best_seeds` times (seeds 0 to {glue:text}`best_seeds_last`) for
# {glue:text}`best_epochs` epochs (the MNIST chapter's budget), then tested with the MNIST chapter's
# protocol on its base panel: {glue:text}`eval_instances` test MLPs per run on
# images the study never saw, every baseline tuned for each step and metric,
# the MNIST chapter's paper-settings LSTMs beside it.
#
# {glue:md}`verdict_hyper_final`
#
# {glue:md}`verdict_hyper_mean`

# %% tags=["hide-input"]
full_epochs = p.best_epochs
lstm = learned_optimizer.LSTMConfig(**{k: v for k, v in best_settings.items() if sweep.SETTINGS[k][1] == "lstm"})
configs = [meta.MetaConfig(seed=s, valid_every=spec.valid_every, valid_instances=spec.valid_instances, select_on=spec.objective,
                           **{**{k: v for k, v in best_settings.items() if sweep.SETTINGS[k][1] == "meta"}, "epochs": full_epochs})
           for s in range(p.best_seeds)]
best_runs = experiment.meta_train_runs(problems.MLP(split["meta_train"]), lstm, configs, p.checkpoint_dir, chapter.results_dir, "lstm_best",
                                       valid_problem=problems.MLP(split["valid"]), chapter="hyper", trained_on="MNIST train[:40000], the study's best settings")
base = recipes.mnist_panel(split, horizon=p.horizon, long_steps=p.long_steps)
result = experiment.run_protocol(base, {"lstm": list(best_runs.values()), "lstm_paper": mnist_runs}, p.eval_instances, list(range(p.best_seeds)),
                                 p.tune_instances, cache_dir=f"{p.checkpoint_dir}/panels")
fig = experiment.protocol_figure(result, p.horizon, steps=p.long_steps, objective="mean", title="MNIST base: the study's best settings, the paper's, tuned baselines")
plt.show()
display(Markdown(experiment.protocol_table(result).to_markdown(index=False)))
glue("best_text", ", ".join(f"{k} {v:g}" for k, v in sorted(best_settings.items())), display=False)
glue("best_seeds_last", p.best_seeds - 1, display=False)
for metric in ("final", "mean"):
    chapter.glue_verdict(f"verdict_hyper_{metric}", experiment.protocol_sentence(result, p.horizon, metric, "MLPs"))
chapter.save_protocols({"best": result}, range(p.best_seeds), dense_until=p.horizon)
summary = chapter.finish(
    {"best": experiment.protocol_summary(result)},
    studies={s: {"outcomes": counts[s], "importance": {e: r.to_dict("records") for e, r in ranking[s].items()}} for s in ranking},
    best_trial={"number": best.number, "value": best.value, "settings": best_settings, "full_epochs": full_epochs},
    dependence=dependence, grid={"pair": top, "values": grid_frame[["number", "state", "value", *top]].to_dict("records")},
    rank_agreement={"estimators": estimators_rho, "tasks": tasks_rho}, cpu_hours=cpu_hours,
    meta_training_s={"lstm_best": [r.wall_time_s for r in best_runs.values()],
                     **{f"trials_{name}": f.wall_s.dropna().tolist() for name, f in frames.items()}})
print(f"wrote {chapter.results_dir}/summary.json; chapter wall time {summary['wall_time_s']} s")
