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
# ## Result
#
# The study this project grows from used a spatial transformer "to learn how
# to geometrically correct an input image to fit a given example image". Its
# well-posed form is **exemplar alignment**: a digit, warped by a known random
# affine map, is aligned to *another* image of the same digit, both from
# images no optimiser was meta-trained or tuned on. On that panel, at step
# {glue:text}`horizon` (the meta-training horizon), over
# {glue:text}`meta_seeds` meta-training runs of {glue:text}`eval_instances`
# pairs each, the LSTM meta-trained on exemplar pairs
# ({glue:text}`meta_budget`) compares as follows with the best tuned
# gradient baseline and with the two classical anchors:
#
# ```{glue:md} result_exemplar
# :format: myst
# ```
#
# ```{glue:figure} fig_result
# :name: fig-stn-result
#
# The exemplar panel. Left: photometric loss, each run's mean over its pairs,
# then the geometric mean over runs with a 95% band on the log scale, every
# gradient optimiser tuned for the loss at step {glue:text}`horizon`;
# Gauss-Newton dotted, Lucas-Kanade dashed (mean over all pairs). Right: each
# run's median pair's corner error, mean and 95% interval over runs, at the
# two report steps; the dotted line is 1 pixel.
# ```
#
# The amortised spatial transformer and the thesis' one-template setting
# (below) read:
#
# ```{glue:md} amortised_sentence
# :format: myst
# ```
#
# ```{glue:md} template_sentence
# :format: myst
# ```
#
# Every verdict in this chapter is **exploratory**: none was pre-registered
# and none is corrected for the chapter's many comparisons; read them as
# where to look, with their intervals.
#
# ## Method
#
# **Alignment as optimisation.** An instance is a pair: an image to align to
# (the example) and a moving image, warped by a random affine map (rotation,
# scale per axis, shear, shift, each uniform within its bound). The
# optimisee's parameters are the 6 entries of the affine map that warps the
# moving image back, starting at the identity; the loss is the photometric
# mean squared error against the example. In the *own-copy* panels the moving
# image is the example's own warped copy (an exact inverse exists); in the
# *exemplar* panels it is a different image of the same digit, so no map
# matches exactly. The synthetic warp is known, so the geometric error is
# measurable either way: the mean distance in pixels between where the found
# map and the true inverse send the image's corners (MNIST's digits are
# centred and size-normalised, so another image of the digit counts as
# aligned in its own pose). Because a few divergent pairs set a mean, each
# run is read by its **median** pair and by its **share of pairs within
# 1 px**, with runs as the unit; the mean stays in the summary.
#
# **Anchors.** Every gradient optimiser ({glue:text}`baselines_text`) is
# tuned for each reported step and metric on
# {glue:text}`tune_instances` validation pairs. The classical anchor is the
# method the alignment literature runs: **inverse-compositional
# Lucas-Kanade** (Baker and Matthews 2004) with Levenberg-Marquardt
# accept/reject and a Gaussian pyramid, its initial damping and number of
# levels tuned on the same validation pairs. Forward-additive Gauss-Newton at
# a fixed damping of {glue:text}`gn_damping` stays as a row. Learned methods
# this chapter sits beside: inverse-compositional spatial transformers (Lin
# and Lucey 2017) and the supervised descent method (Xiong and De la Torre
# 2013), which learn the update of this very loop.
#
# **A downstream reading.** A fixed classifier (an MLP trained once on the
# meta-training digits, {glue:text}`classifier_accuracy`% accurate on unwarped
# test digits) reads each aligned digit; alignment that works restores its
# accuracy.
#
# The parameters (folded below) are the full profile's; `python -m l2l.book
# run stn --profile smoke` runs the same code in minutes, outside the book.

# %% tags=["parameters"]
profile = "full"  # every parameter is a field of l2l.chapters.Stn; the runner sets them all

# %% tags=["hide-input"]
import matplotlib.pyplot as plt
from IPython.display import Markdown
from myst_nb import glue

from l2l import alignment, experiment, plots
from l2l.chapters import Stn, stn

p = Stn.from_namespace(globals())
chapter = experiment.Chapter("stn", p)
s = stn.setting(p)  # fails here, before any compute, if L2L_DATA_DIR holds no MNIST
glue("solve_text", f"{alignment.SUCCESS_TO_SOLVE:.0%}", display=False)
glue("plausible_text", "{:g}-{:g}".format(*alignment.PLAUSIBLE_DETERMINANT), display=False)
glue("area_text", f"{(1 + p.max_scale) ** 2:.2f}", display=False)
texts = {"train_labels_text": p.train_labels, "unseen_labels_text": s.unseen_labels, "picture_steps_text": sorted(set(p.picture_steps)),
         "baselines_text": [plots.label(n) for n in experiment.BASELINES]}
for name, value in {**p.as_dict(), **{k: ", ".join(map(str, v)) for k, v in texts.items()}, "meta_budget": stn.budget_words(p.meta_epochs)}.items():
    glue(name, value, display=False)

# %% [markdown]
# ## Meta-training
#
# Three learned optimisers, {glue:text}`meta_seeds` runs each, with the
# paper's LSTM (two layers of 20, LogAndSign $p = 10$, output scale 0.1),
# meta-trained on digits {glue:text}`train_labels_text` and selected every
# {glue:text}`valid_every` epochs by the mean loss over the horizon on
# validation images of the same digits:
#
# - the **exemplar LSTM** and the **alignment LSTM**, meta-trained
#   {glue:text}`meta_budget`: each epoch {glue:text}`batch` fresh
#   exemplar pairs (or own-copy pairs) aligned for {glue:text}`horizon` steps,
#   the meta-gradient taken every {glue:text}`unroll` steps;
# - the **STN LSTM**: {glue:text}`stn_epochs` epochs, each one fresh
#   localisation network ({glue:text}`stn_hidden` tanh units) trained for
#   {glue:text}`stn_horizon` steps on minibatches of {glue:text}`stn_batch`
#   warped digits.

# %% tags=["hide-input"]
trained = stn.meta_train(s, chapter)
meta_seconds = chapter.report_meta_training(trained, p.horizon)

# %% [markdown]
# ## Alignment: six panels
#
# Every panel: {glue:text}`eval_instances` test pairs per run (MNIST train
# images 50,000-59,999 or Fashion-MNIST items, never seen in meta-training or
# tuning), each optimiser run to step {glue:text}`long_steps` from the
# identity. Where a panel's pairs differ from the learned optimiser's
# meta-training pairs (unseen digits {glue:text}`unseen_labels_text`, larger
# warps, Fashion-MNIST items), its step multiplier is tuned like a learning
# rate. Below, each panel's loss curves, then its verdicts at step
# {glue:text}`horizon`; the tables are under *All comparisons*.

# %% tags=["hide-input"]
classify, clean = stn.digit_classifier(s)
glue("classifier_accuracy", f"{100 * clean:.1f}", display=False)
geometry = stn.run_geometry(s, trained, classify)
stn.glue_geometry(geometry, p, clean, glue)
figure = stn.result_figure(geometry["exemplar"], p.horizon)
glue("fig_result", figure, display=False)
plt.close(figure)
stn.geometry_figure(geometry, p.horizon)
plt.show()

# %% [markdown]
# Photometric loss of every panel (each run's mean over its pairs, then the
# geometric mean over runs with a 95% band on the log scale; gradient
# optimisers tuned for the loss at step {glue:text}`horizon`; Gauss-Newton
# dotted, Lucas-Kanade dashed). Each panel's verdicts at step
# {glue:text}`horizon`, one sentence per metric and comparison:
#
# ````{dropdown} Exemplar, seen digits (held-out images and held-out exemplars)
# ```{glue:md} verdicts_exemplar
# :format: myst
# ```
# ````
#
# ````{dropdown} Exemplar, unseen digits
# ```{glue:md} verdicts_exemplar_unseen
# :format: myst
# ```
# ````
#
# ````{dropdown} Own copy, seen digits
# ```{glue:md} verdicts_pairs
# :format: myst
# ```
# ````
#
# ````{dropdown} Own copy, unseen digits
# ```{glue:md} verdicts_unseen_digits
# :format: myst
# ```
# ````
#
# ````{dropdown} Own copy, larger warps
# ```{glue:md} verdicts_large_warps
# :format: myst
# ```
# ````
#
# ````{dropdown} Own copy, Fashion-MNIST items
# ```{glue:md} verdicts_fashion
# :format: myst
# ```
# ````
#
# ## What the optimisers do to the images
#
# For seed 0: the moving images, then what the learned optimiser (as the
# panel's verdict reads it), the best tuned baseline for the loss at step
# {glue:text}`horizon`, Gauss-Newton and Lucas-Kanade make of them after each of steps
# {glue:text}`picture_steps_text`, and the example they should match.

# %% tags=["hide-input"]
for name, learner in (("exemplar", "exemplar LSTM"), ("pairs", "alignment LSTM")):
    lk = {k: geometry[name].lucas_kanade.entry[k] for k in ("damping", "levels")}
    rows = alignment.picture_rows(geometry[name].result, trained[learner][0], p.horizon, p.picture_pairs, p.picture_steps, p.gn_damping, lucas_kanade=lk)
    plots.image_grid(rows, title=geometry[name].result.panel.title)
    plt.show()

# %% [markdown]
# ## An amortised spatial transformer
#
# A localisation network trained by each optimiser on warped digits
# {glue:text}`train_labels_text` (minibatches of {glue:text}`stn_batch`, fresh
# warps each step), {glue:text}`stn_instances` networks per run to step
# {glue:text}`stn_long_steps`, measured on 500 warped test images of the unseen
# digits by the share whose predicted map puts every corner within 1 pixel of
# the truth. Two learned optimisers: the STN LSTM, and the alignment LSTM
# transferred with its multiplier tuned. Before any comparison the chapter asks
# whether the STN LSTM's meta-training worked at all (does it end below the
# untrained network's identity map?) and whether any optimiser solves the task
# (brings {glue:text}`solve_text` of the held-out digits within 1 px); only then is a verdict
# stated.

# %% tags=["hide-input"]
amortised, reading = stn.amortised(s, trained)
said = {"amortised": stn.amortised_sentence(reading, amortised)}
glue("amortised_sentence", Markdown(said["amortised"]), display=False)
glue("table_amortised", Markdown(stn.network_table(amortised).to_markdown(index=False)), display=False)
experiment.protocol_figure(amortised, p.stn_horizon, objective="final")
plt.show()

# %% [markdown]
# ## The thesis' setting: one example as every input's target
#
# The same localisation network, but every warped digit's target is one
# example image, the first {glue:text}`template_label` of the test images (of
# the validation images, for tuning). The photometric loss then rewards
# whatever map makes any digit look most like that
# {glue:text}`template_label`, including one that shrinks the digit away. So
# the verdict reads each trained network's maps first: the median determinant
# of their linear part over 500 held-out digits and the share within
# {glue:text}`plausible_text` (the panels' warps change the area by at most
# {glue:text}`area_text` times); a learned
# optimiser whose maps mostly leave that range gets no loss verdict. Below,
# for each optimiser (tuned for the loss at step {glue:text}`stn_horizon`),
# one network trained to step {glue:text}`stn_long_steps` on seed 0 and what it
# makes of held-out digits.

# %% tags=["hide-input"]
template, rows, checks = stn.single_template(s, trained)
said["template"] = stn.template_sentence(template, checks, p.stn_long_steps)
glue("template_sentence", Markdown(said["template"]), display=False)
glue("table_single_template", Markdown(stn.network_table(template).to_markdown(index=False)), display=False)
plots.image_grid(rows, title=template.panel.title)
plt.show()

# %% [markdown]
# ## All comparisons
#
# Each alignment panel at step {glue:text}`horizon`, then at step
# {glue:text}`long_steps`: every optimiser's setting (tuned for that step's
# final loss), its loss and median pair's corner error (mean over runs, 95%
# CI), its share of pairs within 1 px, the steps its median pair takes to get
# there, and its time per step on this machine.
#
# ````{dropdown} Exemplar, seen digits
# ```{glue:md} table_exemplar
# ```
# ```{glue:md} table_exemplar_long
# ```
# ````
#
# ````{dropdown} Exemplar, unseen digits
# ```{glue:md} table_exemplar_unseen
# ```
# ```{glue:md} table_exemplar_unseen_long
# ```
# ````
#
# ````{dropdown} Own copy, seen digits
# ```{glue:md} table_pairs
# ```
# ```{glue:md} table_pairs_long
# ```
# ````
#
# ````{dropdown} Own copy, unseen digits
# ```{glue:md} table_unseen_digits
# ```
# ```{glue:md} table_unseen_digits_long
# ```
# ````
#
# ````{dropdown} Own copy, larger warps
# ```{glue:md} table_large_warps
# ```
# ```{glue:md} table_large_warps_long
# ```
# ````
#
# ````{dropdown} Own copy, Fashion-MNIST items
# ```{glue:md} table_fashion
# ```
# ```{glue:md} table_fashion_long
# ```
# ````
#
# ````{dropdown} Amortised STN and one template
# ```{glue:md} table_amortised
# ```
# ```{glue:md} table_single_template
# ```
# ````

# %% tags=["hide-input"]
stn.glue_intro(geometry, p, clean, said, chapter, glue)  # the introduction's verdicts
chapter.save_protocols({**{n: g.result for n, g in geometry.items()}, "amortised": amortised, "single_template": template}, list(range(p.meta_seeds)),
                       dense_until=p.horizon)
summary = chapter.finish(stn.summary_panels(geometry, amortised, reading, template, checks), meta_training_s=meta_seconds,
                         meta_training={k: experiment.meta_training_entry(v) for k, v in trained.items()},
                         meta_epochs={"exemplar LSTM": p.meta_epochs, "alignment LSTM": p.meta_epochs, "STN LSTM": p.stn_epochs},
                         classifier_accuracy=clean)
