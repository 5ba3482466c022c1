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
# # Spatial transformers: learned optimisers that align an image to an example
#
# The study this project grows from used a spatial transformer "to learn how to
# geometrically correct an input image to fit a given example image"; its LSTM
# shrank the digit instead, and ADAM did best. This chapter asks the question
# properly, in two forms.
#
# **Alignment as optimisation.** An instance is a pair: an MNIST digit and a
# copy warped by a random affine map (rotation, scale per axis, shear, shift,
# each uniform within its bound). The optimisee's parameters are the 6 entries
# of the affine map that warps the copy back, starting at the identity; the
# loss is the photometric mean squared error against the digit. The true warp
# is known, so we also measure the geometric error: the mean distance in
# pixels between where the found map and the true inverse send the image's
# corners, the share of pairs within 1 pixel, and the steps (and wall-clock)
# the median pair takes to get there. An LSTM is meta-trained on
# pairs of training digits {glue:text}`train_labels_text` and tested on
# held-out images of those digits, on the other digits, on larger warps and on
# Fashion-MNIST items, against SGD, RMSprop, ADAM and NAG tuned as in the rigor
# protocol, and against **Gauss-Newton** (forward-additive Lucas-Kanade, damped
# as Levenberg-Marquardt): the method the image-alignment field uses, which
# sees the residuals and their Jacobian where gradient-only optimisers see one
# gradient.
#
# **An amortised spatial transformer.** A localisation network (an MLP on the
# warped digit) learns to predict the map back to the canonical pose; each
# optimiser trains it, and it is measured on digits it never saw. Last, the
# thesis' setting: one example image (an {glue:text}`template_label`) as the
# target of every input, and what goes wrong there.
#
# ```bash
# python -m l2l.book run stn                   # the full profile shown here
# python -m l2l.book run stn --profile smoke   # minutes, into _build/smoke/
# ```

# %% tags=["parameters"]
profile = "full"  # every parameter is a field of l2l.chapters.Stn; the runner sets them all

# %% tags=["hide-input"]
import matplotlib.pyplot as plt
import numpy as np
from IPython.display import HTML, Markdown
from myst_nb import glue

from l2l import alignment, chapters, data, experiment, learned_optimizer, meta, plots, problems

p = chapters.Stn.from_namespace(globals())
chapter = experiment.Chapter("stn", p)
split = data.mnist_splits()  # fails here, before any compute, if L2L_DATA_DIR holds no MNIST and there is no network
unseen_labels = [k for k in range(10) if k not in p.train_labels]
seen = lambda part: problems.label_subset(split[part], p.train_labels)
unseen = lambda part: problems.label_subset(split[part], unseen_labels)
bounds = {"max_rotation": p.max_rotation, "max_scale": p.max_scale, "max_shear": p.max_shear, "max_shift": p.max_shift}
large = {k: v * p.large_factor for k, v in bounds.items()}
align = lambda images, warps=bounds: problems.Alignment(images, **warps)
stn = lambda images, template=-1: problems.SpatialTransformer(images, hidden=p.stn_hidden, batch_size=p.stn_batch, template=template, **bounds)
lstm = learned_optimizer.LSTMConfig(preprocess_p=p.preprocess_p, scale=p.scale)
seeds = list(range(p.meta_seeds))
for name, value in p.as_dict().items():
    glue(name, value, display=False)
glue("train_labels_text", ", ".join(map(str, p.train_labels)), display=False)
glue("unseen_labels_text", ", ".join(map(str, unseen_labels)), display=False)

# %% [markdown]
# ## Meta-training
#
# Two learned optimisers, {glue:text}`meta_seeds` runs each, with the paper's
# LSTM (two layers of 20, LogAndSign $p = 10$, output scale 0.1), selected
# every {glue:text}`valid_every` epochs by the mean loss over the horizon on
# validation images of the same digits:
#
# - **alignment LSTM**: {glue:text}`meta_epochs` epochs, each {glue:text}`batch`
#   fresh pairs aligned for {glue:text}`horizon` steps, the meta-gradient taken
#   every {glue:text}`unroll` steps;
# - **STN LSTM**: {glue:text}`stn_epochs` epochs, each one fresh localisation
#   network ({glue:text}`stn_hidden` tanh units) trained for
#   {glue:text}`stn_horizon` steps on minibatches of {glue:text}`stn_batch`
#   warped digits.

# %% tags=["hide-input"]
config = lambda s, epochs, horizon, unroll, batch, valid: meta.MetaConfig(
    seed=s, epochs=epochs, batch=batch, horizon=horizon, unroll=unroll, meta_lr=p.meta_lr, valid_every=p.valid_every, valid_instances=valid,
    select_on="mean")
trained = {
    "alignment LSTM": experiment.meta_train_runs(
        align(seen("meta_train")), lstm, [config(s, p.meta_epochs, p.horizon, p.unroll, p.batch, p.valid_instances) for s in seeds],
        p.checkpoint_dir, chapter.results_dir, "lstm_align", valid_problem=align(seen("valid")), chapter="stn",
        trained_on=f"alignment pairs of MNIST train[:40000] digits {list(p.train_labels)}"),
    "STN LSTM": experiment.meta_train_runs(
        stn(seen("meta_train")), lstm, [config(s, p.stn_epochs, p.stn_horizon, p.stn_unroll, 1, max(2, p.stn_instances)) for s in seeds],
        p.checkpoint_dir, chapter.results_dir, "lstm_stn", valid_problem=stn(seen("valid")), chapter="stn",
        trained_on=f"a localisation network on MNIST train[:40000] digits {list(p.train_labels)}"),
}
meta_seconds = chapter.report_meta_training(trained, p.horizon)
align_runs, stn_runs = list(trained["alignment LSTM"].values()), list(trained["STN LSTM"].values())
glue("align_minutes", f"{np.mean(meta_seconds['alignment LSTM']) / 60:.1f}", display=False)
glue("stn_minutes", f"{np.mean(meta_seconds['STN LSTM']) / 60:.1f}", display=False)

# %% [markdown]
# A run took {glue:text}`align_minutes` minutes (alignment) and
# {glue:text}`stn_minutes` minutes (STN).
#
# ## Alignment: four panels
#
# Every panel: {glue:text}`eval_instances` test pairs per run, each optimiser
# run to step {glue:text}`long_steps` from the identity; the baselines (and,
# where the LSTM is transferred, its step multiplier) tuned for each reported
# step and metric on {glue:text}`tune_instances` validation pairs; Gauss-Newton
# on the same test pairs at damping {glue:text}`gn_damping`. Verdicts compare
# the LSTM with the best tuned baseline and with Gauss-Newton, with runs as the
# unit. The steps to 1 px are each pair's first step with a corner error of at
# most 1 pixel (never, if it does not get there by step
# {glue:text}`long_steps`); a run's figure is its median pair's, and the
# wall-clock is those steps at the optimiser's measured time per step.

# %% tags=["hide-input"]
def align_panel(name, title, test, tune, warps=bounds):
    return experiment.Panel(name, title, align(test, warps), align(tune, warps), tune_steps=p.horizon, steps=p.long_steps,
                            report_steps=(p.horizon, p.long_steps), geometry=True)


PANELS = {  # name -> (panel, whether the LSTM is transferred there, so its multiplier is tuned)
    "pairs": (align_panel("pairs", f"Seen digits {list(p.train_labels)}, held-out images", seen("test_train"), seen("valid")), False),
    "unseen_digits": (align_panel("unseen_digits", f"Unseen digits {unseen_labels}", unseen("test_train"), unseen("valid")), True),
    "large_warps": (align_panel("large_warps", f"Warps {p.large_factor:g}x larger than in meta-training", seen("test_train"), seen("valid"), large), True),
    "fashion": (align_panel("fashion", "Fashion-MNIST items", split["fashion_train"], split["fashion_tune"]), True),
}
protocol = dict(seeds=seeds, grid=tuple(p.lr_grid), cache_dir=f"{p.checkpoint_dir}/panels")
results = {name: experiment.run_protocol(panel, {"lstm": align_runs}, p.eval_instances, tune_instances=p.tune_instances, tune_learned=transferred, **protocol)
           for name, (panel, transferred) in PANELS.items()}
gauss = {name: alignment.gauss_newton_panel(result, damping=p.gn_damping) for name, result in results.items()}


def table_with_gauss_newton(name):
    result, entry = results[name], gauss[name].entry
    shown = result._replace(entries={**result.entries, "gauss_newton": {**entry, "setting_text": f"damping {p.gn_damping:g}"}})
    return experiment.protocol_table(shown)


steps = (p.horizon, p.long_steps)
for name in results:
    glue(f"table_{name}", Markdown(table_with_gauss_newton(name).to_markdown(index=False)), display=False)
    sentences = [experiment.protocol_sentence(results[name], p.horizon, m, "pairs") for m in ("final", "corner")]
    sentences += [alignment.gauss_newton_sentence(gauss[name].verdicts[p.horizon][m], m, p.horizon) for m in ("final", "corner")]
    sentences += [alignment.reach_sentence(results[name], gauss[name].entry, p.horizon)]
    glue(f"verdicts_{name}", Markdown("\n".join(f"- {s}" for s in sentences)), display=False)
    glue(f"verdicts_{name}_all", Markdown(experiment.protocol_verdicts(results[name], "pairs")), display=False)
for metric in ("final", "corner"):
    sentence = experiment.protocol_sentence(results["pairs"], p.horizon, metric, "pairs")
    glue(f"verdict_stn_{metric}_html", HTML(experiment.verdict_html(sentence)), display=False)
    gn_sentence = alignment.gauss_newton_sentence(gauss["pairs"].verdicts[p.horizon][metric], metric, p.horizon)
    glue(f"verdict_stn_gn_{metric}_html", HTML(experiment.verdict_html(gn_sentence)), display=False)


fig, axes = plt.subplots(2, 4, figsize=(18, 8))
for k, name in enumerate(results):
    experiment.protocol_figure(results[name], p.horizon, objective="final", ax=axes[0, k])
    axes[0, k].plot(range(p.long_steps + 1), gauss[name].curves.mean(axis=(0, 1)), color="black", linestyle="--", label="Gauss-Newton")
    axes[0, k].legend(frameon=False, fontsize=8)
    entries = {**results[name].entries, "gauss_newton": gauss[name].entry}
    plots.interval_points(entries, "corner_error", steps, ax=axes[1, k], threshold=1.0, ylabel="corner error (px)", title=results[name].panel.title)
plt.tight_layout()
plt.show()

# %% [markdown]
# Top: photometric loss (bands 95% over runs; baselines tuned for the loss at
# step {glue:text}`horizon`). Bottom: corner error at steps
# {glue:text}`horizon` and {glue:text}`long_steps`; the dotted line is 1 pixel.
#
# ### Seen digits, held-out images
#
# {glue:md}`verdicts_pairs`
#
# ```{glue:md} table_pairs
# ```
#
# ### Unseen digits ({glue:text}`unseen_labels_text`)
#
# {glue:md}`verdicts_unseen_digits`
#
# ```{glue:md} table_unseen_digits
# ```
#
# ### Larger warps
#
# {glue:md}`verdicts_large_warps`
#
# ```{glue:md} table_large_warps
# ```
#
# ### Fashion-MNIST items
#
# {glue:md}`verdicts_fashion`
#
# ```{glue:md} table_fashion
# ```
#
# ## What the optimisers do to the images
#
# For seed 0: the warped inputs, then what each optimiser's map makes of them
# after {glue:text}`picture_steps_text` steps (the LSTM as meta-trained or
# with its tuned multiplier, the best tuned baseline for the loss at step
# {glue:text}`horizon`, Gauss-Newton), and the example they should match.

# %% tags=["hide-input"]
picture = lambda name: plots.image_grid(alignment.picture_rows(results[name], align_runs[0], p.horizon, p.picture_pairs, p.picture_steps, p.gn_damping),
                                        title=results[name].panel.title)


glue("picture_steps_text", ", ".join(map(str, sorted(set(p.picture_steps)))), display=False)
for name in ("pairs", "unseen_digits"):
    picture(name)
    plt.show()

# %% [markdown]
# ## An amortised spatial transformer
#
# A localisation network trained by each optimiser on warped digits
# {glue:text}`train_labels_text` (minibatches of {glue:text}`stn_batch`, fresh
# warps each step), {glue:text}`stn_instances` networks per run to step
# {glue:text}`stn_long_steps`; held-out: 500 warped test images of the unseen
# digits {glue:text}`unseen_labels_text`, with the share whose predicted map
# is within 1 pixel of the truth at every corner. Two learned optimisers: the
# STN LSTM, and the alignment LSTM transferred with its multiplier tuned.
#
# {glue:md}`verdicts_amortised`
#
# ```{glue:md} table_amortised
# ```

# %% tags=["hide-input"]
def stn_panel(name, title, test, tune, heldout):
    return experiment.Panel(name, title, test, tune, tune_steps=p.stn_horizon, steps=p.stn_long_steps,
                            report_steps=(p.stn_horizon, p.stn_long_steps), heldout=heldout)


amortised = stn_panel("amortised", "Amortised STN: trained on seen digits, measured on unseen ones", stn(seen("test_train")), stn(seen("valid")),
                      unseen("test_heldout"))
results["amortised"] = experiment.run_protocol(amortised, {"lstm": stn_runs, "lstm_align": align_runs}, p.stn_instances, tune_instances=p.stn_instances,
                                               tune_learned=["lstm_align"], **protocol)
glue("table_amortised", Markdown(experiment.protocol_table(results["amortised"]).to_markdown(index=False)), display=False)
glue("verdicts_amortised", Markdown(experiment.protocol_verdicts(results["amortised"], "localisation networks")), display=False)
experiment.protocol_figure(results["amortised"], p.stn_horizon, objective="final")
plt.show()

# %% [markdown]
# ## The thesis' setting: one example as every input's target
#
# The same localisation network, but every warped digit's target is one
# example image, the first {glue:text}`template_label` of the validation
# images (of the test images, for the test runs). The photometric loss then
# rewards whatever map makes any digit look most like that
# {glue:text}`template_label`, not the map that undoes its warp. Below, for
# each optimiser (tuned for the loss at step {glue:text}`stn_horizon`), one
# network trained to step {glue:text}`stn_long_steps` on seed 0 and what it
# makes of held-out digits, with the mean determinant of its maps' linear
# part: above 1 it samples a larger region than the image, so the digit it
# shows shrinks.
#
# {glue:md}`template_sentence`
#
# ```{glue:md} table_single_template
# ```

# %% tags=["hide-input"]
first = lambda images, label: int(np.flatnonzero(images.y.numpy() == label)[0])
template = stn_panel("single_template", f"One example (a {p.template_label}) as every input's target",
                     stn(split["test_train"], first(split["test_train"], p.template_label)), stn(split["valid"], first(split["valid"], p.template_label)),
                     split["test_heldout"])
results["single_template"] = experiment.run_protocol(template, {"lstm": stn_runs}, p.stn_instances, tune_instances=p.stn_instances, tune_learned=True,
                                                     **protocol)
glue("table_single_template", Markdown(experiment.protocol_table(results["single_template"]).to_markdown(index=False)), display=False)
rows, shrink = alignment.template_rows(results["single_template"], stn_runs[0], p.stn_horizon, p.stn_long_steps, split["test_heldout"], p.picture_pairs)
plots.image_grid(rows, title=template.title)
plt.show()
template_sentence = (f"After {p.stn_long_steps} steps the networks' maps have mean determinants " + ", ".join(f"{k} {v:.2f}" for k, v in shrink.items())
                     + " (seed 0, 500 held-out digits; 1 keeps the size). " + experiment.protocol_sentence(results["single_template"], p.stn_horizon, "final",
                                                                                                            "localisation networks"))
glue("template_sentence", Markdown(template_sentence), display=False)

# %% tags=["hide-input"]
experiment.protocol_curves_frame(results, seeds, dense_until=p.horizon).to_csv(chapter.path("curves.csv"), index=False, float_format="%.6g")
experiment.protocol_tuning_frame(results).to_csv(chapter.path("tuning.csv"), index=False)
panels = {name: experiment.protocol_summary(result) for name, result in results.items()}
for name, gn in gauss.items():
    panels[name]["gauss_newton"] = {"entry": gn.entry, "verdicts": {str(s): v for s, v in gn.verdicts.items()}}
panels["single_template"]["determinants"] = shrink
summary = chapter.finish(panels, meta_training_s=meta_seconds, meta_training={k: experiment.meta_training_entry(v) for k, v in trained.items()})
print(f"wrote {chapter.results_dir}/summary.json; chapter wall time {summary['wall_time_s']} s")
