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
# ## Result
#
# The study this project grows from found tuning the meta-learner
# "significantly challenging" and named, in prose, the settings it thought
# mattered. This chapter measures it with a **designed experiment**: a
# two-level fractional factorial over {glue:text}`factor_count` settings
# around the best configuration a TPE search found, every point meta-trained
# with {glue:text}`design_seeds` seeds at one budget in meta-updates
# ({glue:text}`design_budget`), every trial scored at step
# {glue:text}`eval_horizon` on held-out MLPs against the better of NAG and
# ADAM, each tuned there. Each setting's effect is the factor by which moving
# it from its low to its high level multiplies that ratio (mean over the
# trials that trained, 95% interval from the design's residuals):
#
# ```{glue:md} effects_sentence
# :format: myst
# ```
#
# ```{glue:md} failure_sentence
# :format: myst
# ```
#
# ```{glue:figure} fig_effects
# :name: fig-hyper-effects
#
# Each setting's effect on the LSTM's loss over the better tuned baseline's at
# step {glue:text}`eval_horizon` (the final loss, then the mean over the
# steps), with its 95% interval, on both tasks; 1 (dotted) is no effect.
# ```
#
# The design's best point, meta-trained again with {glue:text}`best_seeds`
# fresh seeds and tested with the MNIST chapter's protocol on its test panel:
#
# ```{glue:md} verdict_hyper_final
# :format: myst
# ```
#
# ```{glue:md} verdict_hyper_mean
# :format: myst
# ```
#
# **What the design can and cannot support.** Its settings' main effects are
# estimated free of every two-setting interaction (resolution IV), but
# two-setting interactions are aliased with each other and not estimated;
# each effect holds between the two levels tried, near the best
# configuration, at this budget, not across the whole range the search
# explored. The design is exploratory: it was fixed before its runs, but its
# intervals are not corrected for its {glue:text}`factor_count` settings and
# two metrics.
#
# ```bash
# python -m l2l.book run hyper                      # the full profile shown here
# python -m l2l.book run hyper --profile smoke      # minutes, into _build/smoke/
# python -m l2l.sweep run notebooks/sweeps/mnist_design.yaml --workers 2 --threads 1   # the design alone
# ```

# %% tags=["parameters"]
profile = "full"  # every parameter is a field of l2l.chapters.Hyper; the runner sets them all

# %% tags=["hide-input"]
import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import Markdown, display
from myst_nb import glue

from l2l import experiment, plots, sweep
from l2l.chapters import Hyper, hyper

p = Hyper.from_namespace(globals())
chapter = experiment.Chapter("hyper", p)
specs = [sweep.load_spec(path) for path in (p.spec, p.design_spec, p.second_spec)]  # a malformed spec fails here, before any compute
design_spec = specs[1]
for name, value in {**p.as_dict(), "factor_count": len(hyper.factors(design_spec)), "design_seeds": len(design_spec.space.get("seed", {}).get("choices", [0])),
                    "design_budget": f"{design_spec.budget:,} meta-updates a trial", "eval_horizon": design_spec.eval_horizon,
                    "point_count": len(sweep.design_points(design_spec)) // len(design_spec.space.get("seed", {}).get("choices", [0])),
                    "search_count": len(specs[0].space)}.items():
    glue(name, value, display=False)

# %% [markdown]
# ## The search that found the region
#
# A TPE study ({glue:text}`spec`) searched {glue:text}`search_count`
# settings of the meta-learner on the MNIST chapter's MLP, each trial scored by its loss on
# held-out MLPs as a ratio to tuned NAG's. A search concentrates its trials
# where it found good ones, so its trail says where to look, not how much
# each setting matters: this chapter reads only its outcomes and its best
# trial, around which the design sits. Left: each trial's CPU time against
# its score; counts of how its trials ended below.

# %% tags=["hide-input"]
search, search_study, search_frame = hyper.run_study(p.spec, p)
plots.cost_quality(search_frame)
plt.show()
display(Markdown(pd.DataFrame([sweep.outcomes(search_frame)]).to_markdown(index=False)))

# %% [markdown]
# ## The design
#
# Around the search's best trial, {glue:text}`factor_count` settings at two
# levels each ({glue:text}`design_spec` lists them and the settings held), in
# a {glue:text}`point_count`-point two-level design, each point meta-trained
# with {glue:text}`design_seeds` seeds. Every trial gets the same number of
# meta-updates, so a short unroll is not a proxy for more updates, and is
# scored at step {glue:text}`eval_horizon` whatever its training horizon. A
# trial whose optimiser never trained (its final loss not below the
# parameters' untrained level) scores a ratio that only says the baselines'
# level: those trials are counted apart, per setting, and the effects are
# estimated on the rest. The same design on a second task
# ({glue:text}`second_spec`) asks whether the effects carry over.

# %% tags=["hide-input"]
reads = {}
for part, path in (("main", p.design_spec), ("second", p.second_spec)):
    spec, study, _ = hyper.run_study(path, p)
    frame = hyper.design_frame(spec, study, hyper.baselines(spec, study), hyper.untrained_level(spec))
    frame.to_csv(chapter.path(f"design_{spec.name}.csv"), index=False, float_format="%.6g")
    reads[part] = (spec, frame, {m: hyper.effects(frame, spec, m) for m in hyper.METRICS}, hyper.failures(frame, spec))
spec, frame, by_metric, failed = reads["main"]
glue("effects_sentence", Markdown(hyper.effects_sentence(frame, by_metric, spec)), display=False)
glue("failure_sentence", Markdown(hyper.failure_sentence(failed, frame)), display=False)
figure = hyper.effects_figure({f"{hyper.TASK_WORDS[sp.task]}, {m}": e for sp, _, by, _ in reads.values() for m, e in by.items()})
glue("fig_effects", figure, display=False)
plt.close(figure)
for part, (sp, fr, by, failed) in reads.items():
    glue(f"effects_table_{part}", Markdown(hyper.effects_markdown(by)), display=False)
    glue(f"failures_{part}", Markdown(failed.to_markdown(index=False)), display=False)
    glue(f"effects_sentence_{part}", Markdown(hyper.effects_sentence(fr, by, sp)), display=False)

# %% [markdown]
# The same design on the second task:
#
# ```{glue:md} effects_sentence_second
# :format: myst
# ```
#
# Effects on the main task (the ratio's factor from each setting's low to its high
# level, then its 95% interval; * marks an interval that excludes 1), and
# the trials that trained per setting and level:
#
# ```{glue:md} effects_table_main
# ```
#
# ````{dropdown} Trials that trained, per setting and level; the same for the second task
# ```{glue:md} failures_main
# ```
# ```{glue:md} effects_table_second
# ```
# ```{glue:md} failures_second
# ```
# ````
#
# ## The best point, replicated
#
# The design point with the lowest mean ratio over its seeds (all of which
# trained; {glue:text}`best_text`), meta-trained again with {glue:text}`best_seeds` fresh seeds at the
# design's budget and tested with the MNIST chapter's protocol on its base
# panel: {glue:text}`eval_instances` test MLPs per run on images the study
# never saw, every baseline tuned for each step and metric on
# {glue:text}`tune_instances` MLPs of held-out training images, the MNIST
# chapter's paper-settings LSTMs beside it.

# %% tags=["hide-input"]
best = hyper.best_point(frame, spec)
glue("best_text", ", ".join(f"{k} {best['settings'][k]:g}" for k in hyper.factors(spec)) if best else "none", display=False)
best_runs, best_epochs, result = hyper.replicate_best(p, best, spec, chapter)
if result is not None:
    experiment.protocol_figure(result, p.horizon, steps=p.long_steps, objective="mean", title="MNIST base: the design's best point, the paper's, tuned baselines")
    plt.show()
    chapter.save_protocols({"best": result}, range(p.best_seeds), dense_until=p.horizon)
for metric, sentence in hyper.replicated_sentences(result, p.horizon).items():
    chapter.glue_verdict(f"verdict_hyper_{metric}", sentence)
summary = chapter.finish(
    {"best": experiment.protocol_summary(result)} if result is not None else {}, best_point=best, search=sweep.outcomes(search_frame),
    designs=hyper.design_summary(reads), meta_training_s={"lstm_best": [r.wall_time_s for r in best_runs.values()],
                                                          **{f"trials_{sp.name}": fr.wall_s.dropna().tolist() for sp, fr, _, _ in reads.values()}},
    meta_epochs={"lstm_best": best_epochs})
