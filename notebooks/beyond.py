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
# # Beyond the paper: what it takes for a learned optimiser to win
#
# The MNIST chapter measures the paper's recipe against baselines tuned as
# carefully as the LSTM is trained, at its horizon, beyond it and on other
# networks. Work since the paper has proposed fixes for where such learned
# optimisers fail: long horizons, other activations, other architectures.
# This chapter puts five of them side by side on the MNIST chapter's task,
# each added alone to the paper's recipe
# (the ablation), then all together (the combination), and tests the result
# with the rigor protocol on the MNIST MLP at 100, 200 and 1,000 steps, on a
# ReLU MLP, on a small CNN on MNIST and on the CIFAR chapter's ConvNet.
#
# The techniques, as `l2l` implements them (each is an option of
# `l2l.learned_optimizer.LSTMConfig`, `l2l.meta.MetaConfig` or a problem
# wrapper in `l2l.problems`, with its own tests):
#
# {glue:md}`techniques_text`
#
# Last, the combination is meta-trained on a mixture of tasks that no test
# panel belongs to (Fashion-MNIST MLPs of three shapes and quadratics): the
# **general** optimiser, which the package ships, and which is tested on
# standard Keras models through `model.fit` at its default step multiplier.
#
# ```bash
# python -m l2l.book run beyond                    # the full profile shown here
# python -m l2l.book run beyond --profile smoke    # minutes, into _build/smoke/
# python -m l2l.recipes train beyond --variant combined --seed 0 --threads 1   # one run, resumable
# ```

# %% tags=["parameters"]
profile = "full"  # every parameter is a field of l2l.chapters.Beyond; the runner sets them all

# %% tags=["hide-input"]
import dataclasses

import keras
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import Markdown, display
from myst_nb import glue

import l2l
from l2l import chapters, data, experiment, keras_training, plots, pretrained, problems, recipes

p = chapters.Beyond.from_namespace(globals())
chapter = experiment.Chapter("beyond", p)
split = data.mnist_splits()  # fails here, before any compute, if L2L_DATA_DIR holds no MNIST and there is no network
cifar_split = data.cifar_splits()
paper_runs = experiment.saved_runs([p.mnist_weights.format(seed=s) for s in range(p.final_seeds)], "python -m l2l.book run mnist")
adam_lr = recipes.tuned_adam_lr(split["valid"], p.horizon, p.teacher_instances)
for name, value in p.as_dict().items():
    glue(name, value, display=False)
glue("adam_lr", f"{adam_lr:.3g}", display=False)
glue("techniques_text", Markdown("\n".join(f"- **{name}**: {text}" for name, text in recipes.TECHNIQUES.items())), display=False)
glue("combined_text", ", ".join(p.combined), display=False)

# %% [markdown]
# ## Meta-training
#
# Every variant is the MNIST chapter's recipe (one MLP 784-20-10 sigmoid per
# epoch on MNIST training images 0-39,999, {glue:text}`horizon` steps in
# segments of {glue:text}`unroll`, Adam at {glue:text}`meta_lr`,
# {glue:text}`meta_epochs` epochs, selection every {glue:text}`valid_every`
# epochs by the mean loss over the horizon on {glue:text}`valid_instances`
# MLPs of images 40,000-49,999) with its technique added. Imitation copies,
# and the nominal step is, ADAM at the rate tuned for the mean loss over
# {glue:text}`horizon` steps on {glue:text}`teacher_instances` selection MLPs:
# {glue:text}`adam_lr` (for the general optimiser, which sees no MNIST image,
# the rate tuned the same way on Fashion-MNIST images 40,000-49,999). The
# paper's recipe is the MNIST chapter's
# {glue:text}`final_seeds` published runs; each technique alone gets
# {glue:text}`ablation_seeds` runs; the combination
# ({glue:text}`combined_text`) {glue:text}`final_seeds` and the general
# optimiser {glue:text}`general_seeds`. Runs are filed under their settings' hash in
# `book/results/beyond/runs/` and resume across sittings.

# %% tags=["hide-input"]
TRAINED_ON = {"mnist": "MNIST train[:40000], MLP 784-20-10 sigmoid, 100 steps",
              "general": "a task mixture: Fashion-MNIST train[:40000] MLPs (784-20-10 sigmoid and ReLU, 784-32-32-10 ReLU) and quadratics"}
counts = {**{name: p.ablation_seeds for name in recipes.TECHNIQUES}, "combined": p.final_seeds, "general": p.general_seeds}
trained = {}
for variant, count in counts.items():
    made = [recipes.beyond(variant, seed=s, params=p, splits=split) for s in range(count)]
    trained[variant] = experiment.meta_train_runs(
        made[0].problem, made[0].lstm_config, [r.meta_config for r in made], p.checkpoint_dir, chapter.results_dir, f"lstm_{variant}",
        valid_problem=made[0].valid_problem, chapter="beyond", trained_on=TRAINED_ON.get(variant, TRAINED_ON["mnist"]) + f"; variant {variant}")
meta_seconds = chapter.report_meta_training(trained, p.horizon)
cost = pd.DataFrame([{"variant": v, "runs": len(s), "hours per run (one thread)": np.mean(s) / 3600, "total hours": np.sum(s) / 3600}
                     for v, s in meta_seconds.items()])
glue("cost_table", Markdown(cost.to_markdown(index=False, floatfmt=".2f")), display=False)
glue("total_hours", f"{cost['total hours'].sum():.1f}", display=False)
glue("curriculum_sentence", Markdown(experiment.curriculum_sentence(trained, p.curriculum)), display=False)

# %% [markdown]
# Meta-training cost, in hours of one CPU thread (the runs ran at one thread
# each on this machine's CPU); {glue:text}`total_hours` hours in all.
#
# ```{glue:md} cost_table
# ```
#
# A run advances to the curriculum's next stage after
# {glue:text}`patience` validations without improvement, so within
# a run's epochs it may not reach the last stage.
# {glue:md}`curriculum_sentence`
#
# ## The ablation: each technique alone, then together
#
# The first {glue:text}`ablation_seeds` runs of every variant on the same
# {glue:text}`eval_instances` test MLPs per run (MNIST training images
# 50,000-59,999, loss on the official test images held out), every baseline
# tuned for each reported step and metric on the selection images. A cell is
# the mean over runs of the loss at that step (of the mean loss over steps 1
# to that step); below it, the variant minus the best tuned baseline, with
# the number of runs in which the variant was lower.

# %% tags=["hide-input"]
panel_for = lambda name, title, steps, **mlp: recipes.mnist_panel(split, name, title, horizon=p.horizon, long_steps=steps, **mlp)
mnist_panel = dataclasses.replace(panel_for("mnist", "MNIST, MLP 784-20-10 sigmoid", max(p.report_steps)), report_steps=tuple(p.report_steps))
runs = {v: list(r.values()) for v, r in trained.items()}
ablation_names = {"lstm_paper": paper_runs, **{f"lstm_{v}": runs[v] for v in recipes.TECHNIQUES}, "lstm_combined": runs["combined"]}
ablation = experiment.run_protocol(
    dataclasses.replace(mnist_panel, name="ablation", title="MNIST MLP: the ablation"),
    {name: rs[: p.ablation_seeds] for name, rs in ablation_names.items()}, p.eval_instances, list(range(p.ablation_seeds)), p.tune_instances,
    learned_name="lstm_combined", cache_dir=p.panel_dir)
rows = experiment.ablation_rows(ablation, ablation_names, p.report_steps)
glue("ablation_table", Markdown(pd.DataFrame(rows).to_markdown(index=False)), display=False)
fig, axes = plt.subplots(1, 2, figsize=(12, 4.2), sharey=True)
for ax, objective in zip(axes, ("final", "mean")):
    experiment.protocol_figure(ablation, p.horizon, steps=max(p.report_steps), objective=objective, ax=ax,
                               title=f"baselines tuned for the {experiment.METRICS[objective].format(step=p.horizon)}")
    ax.set_xscale("log")
plt.show()

# %% [markdown]
# ```{glue:md} ablation_table
# ```
#
# Each cell: the mean loss over {glue:text}`ablation_seeds` runs; in brackets
# the variant minus the best tuned baseline at that step and metric, and in
# how many runs the variant was lower.
#
# ## The combination against tuned NAG and ADAM on the MNIST MLP
#
# {glue:text}`final_seeds` runs of the combination and of the paper's recipe
# on the same test MLPs, at each reported step, against each baseline tuned
# for that step and metric.
#
# {glue:md}`mnist_verdicts`
#
# ```{glue:md} table_mnist
# ```

# %% tags=["hide-input"]
seeds = list(range(p.final_seeds))
protocol = dict(instances=p.eval_instances, seeds=seeds, tune_instances=p.tune_instances, cache_dir=p.panel_dir)
mnist = experiment.run_protocol(mnist_panel, {"lstm": runs["combined"], "lstm_paper": paper_runs, "lstm_general": runs["general"]},
                                tune_learned=["lstm_general"], **protocol)
against = {(s, m, b): experiment.versus(mnist, "lstm", b, s, m) for s in p.report_steps for m in ("final", "mean") for b in ("nag", "adam")}
sentence = lambda s, m, b: (f"On the {experiment.METRICS[m].format(step=s)}, the combination minus {plots.label(b)} (tuned for it) is "
                            f"{against[s, m, b]['mean']:.3g} (95% CI {against[s, m, b]['ci95'][0]:.3g} to {against[s, m, b]['ci95'][1]:.3g}), "
                            f"lower in {against[s, m, b]['wins']} of {against[s, m, b]['runs']} runs.")
glue("mnist_verdicts", Markdown("\n".join(f"- {sentence(s, m, b)}" for s in p.report_steps for m in ("final", "mean") for b in ("nag", "adam"))),
     display=False)
chapter.glue_protocols({"mnist": mnist}, "MLPs")
fig = experiment.protocol_figure(mnist, max(p.report_steps), objective="final", title="MNIST MLP: the combination, the paper's recipe, tuned baselines")
fig.axes[0].set_xscale("log")
plt.show()

# %% [markdown]
# Every step and metric against the best tuned baseline, including held-out
# loss and equal wall-clock time:
#
# {glue:md}`verdicts_mnist`
#
# ## Transfer: a ReLU MLP, a CNN on MNIST, the CIFAR-10 ConvNet
#
# The combination and the general optimiser as trained, and with their step
# multiplier tuned per run like a baseline's rate, on networks the
# combination never saw.
#
# {glue:md}`transfer_verdicts`

# %% tags=["hide-input"]
cnn_problem = lambda part: problems.ConvNet(split[part], image_shape=(28, 28, 1), channels=(8, 16), kernel=3, hidden=32)
cifar_net = lambda part: recipes.cifar_convnet(cifar_split, part)
TRANSFER = {
    "relu": (panel_for("relu", "MNIST, MLP 784-20-10 ReLU", p.relu_steps, activation="relu"), p.eval_instances),
    "cnn": (experiment.Panel("cnn", "MNIST, CNN (3x3 convolutions of 8 and 16 channels, dense 32)", cnn_problem("test_train"), cnn_problem("valid"),
                             tune_steps=p.horizon, steps=p.cnn_steps, report_steps=(p.horizon, p.cnn_steps), heldout=split["test_heldout"]),
            p.cnn_instances),
    "cifar10": (experiment.Panel("cifar10", "CIFAR-10, the CIFAR chapter's ConvNet", cifar_net("test_train"), cifar_net("valid"), tune_steps=p.horizon,
                                 steps=p.cifar_steps, report_steps=tuple(sorted({p.horizon, p.cifar_steps})), heldout=cifar_split["test_heldout"]),
                p.cifar_instances),
}
transfer = {name: experiment.run_protocol(panel, {"lstm": runs["combined"], "lstm_paper": paper_runs, "lstm_general": runs["general"]},
                                          tune_learned=True, **{**protocol, "instances": instances})
            for name, (panel, instances) in TRANSFER.items()}
last_step = lambda result: max(result.verdicts)
within = {name: experiment.within_interval(result, "lstm_tuned") for name, result in transfer.items()}
glue("transfer_verdicts", Markdown("\n".join(f"- {TRANSFER[n][0].title}: {experiment.protocol_sentence(r, last_step(r), 'final', 'networks')}"
                                             for n, r in transfer.items())), display=False)
fig, axes = plt.subplots(1, len(transfer), figsize=(6 * len(transfer), 4.2))
for ax, result in zip(np.atleast_1d(axes), transfer.values()):
    experiment.protocol_figure(result, last_step(result), objective="final", ax=ax)
plt.show()
for result in transfer.values():
    display(Markdown(f"**{result.panel.title}**\n\n" + experiment.protocol_table(result).to_markdown(index=False)))

# %% [markdown]
# ## Through Keras with its defaults: the general optimiser
#
# The general optimiser is the run of the {glue:text}`general_seeds` with the
# best validation. Its default step multiplier is chosen as the package
# chooses every packaged optimiser's (`l2l.pretrained.choose_multiplier`:
# the lowest worst-case ratio to Keras' default Adam on three held-out models
# and images): {glue:text}`general_multiplier`. Each standard model (an MLP
# and a convnet on MNIST training images 50,000-59,999, a small CNN on CIFAR-10
# data_batch_5) is then trained for {glue:text}`keras_steps` minibatches of
# 128 through `model.fit` with it and with ADAM at the rate tuned on the
# selection images; {glue:text}`final_seeds` seeds of the model's initial
# weights.
#
# {glue:md}`keras_verdicts`
#
# ```{glue:md} keras_table
# ```

# %% tags=["hide-input"]
general = min(runs["general"], key=lambda r: r.best_valid if np.isfinite(r.best_valid) else np.inf)
make_general = lambda m=1.0: l2l.LearnedOptimizer(general.meta_params, general.lstm_config, learning_rate=m)
multiplier, multiplier_tried, _ = pretrained.choose_multiplier(make_general, steps=p.calibration_steps, log=experiment.terminal_log)
glue("general_multiplier", f"{multiplier:g}", display=False)
mnist_images = lambda part: (split[part].x.numpy().reshape(-1, 28, 28, 1), split[part].y.numpy())
cifar_images = lambda part: (cifar_split[part].x.numpy().reshape(-1, 32, 32, 3), cifar_split[part].y.numpy())
KERAS = {"mnist_mlp": mnist_images, "mnist_convnet": mnist_images, "cifar_cnn": cifar_images}
keras_runs, keras_rows, keras_sentences = {}, [], []
for model_name, images in KERAS.items():
    build = keras_training.HELD_OUT_MODELS[model_name]
    (x_tune, y_tune), (x_train, y_train), (x_test, y_test) = images("valid"), images("test_train"), images("test_heldout")
    lr, _ = keras_training.tune_learning_rate(build, keras.optimizers.Adam, p.keras_adam_grid, x_tune, y_tune, p.keras_steps, 128, last=p.keras_last)
    fit = keras_training.compare(build, {"lstm": lambda: make_general(multiplier), "adam": lambda lr=lr: keras.optimizers.Adam(lr)},
                                 p.final_seeds, x_train, y_train, x_test, y_test, p.keras_steps, 128)
    result, verdicts, endpoint = keras_training.fit_panel(model_name, model_name, fit, {"adam": lr}, p.keras_steps, p.keras_last)
    ratio = float(np.mean(endpoint["lstm"]) / np.mean(endpoint["adam"]))
    keras_runs[model_name] = {"optimisers": result.entries, "verdicts": verdicts, "adam_lr": lr, "ratio": ratio}
    keras_rows.append({"model": model_name, "ADAM rate (tuned)": f"{lr:g}", f"general / ADAM, last {p.keras_last} steps": f"{ratio:.3f}",
                       "test accuracy, general": f"{100 * np.mean(fit['lstm']['accuracy']):.1f}%",
                       "test accuracy, ADAM": f"{100 * np.mean(fit['adam']['accuracy']):.1f}%"})
    keras_sentences.append(f"{model_name}: " + keras_training.fit_sentence(verdicts["lstm"], fit, "lstm", "adam", p.keras_last, p.keras_steps,
                                                                          f"the general optimiser (multiplier {multiplier:g})", "tuned ADAM"))
glue("keras_table", Markdown(pd.DataFrame(keras_rows).to_markdown(index=False)), display=False)
glue("keras_verdicts", Markdown("\n".join(f"- {s}" for s in keras_sentences)), display=False)

# %% [markdown]
# ## Against the targets
#
# The targets this chapter set itself before any run, and what was measured.
#
# ```{glue:md} targets_table
# ```
#
# {glue:md}`verdict_beyond`

# %% tags=["hide-input"]
targets = experiment.targets_table(against, {n: within[n] for n in ("relu", "cnn")}, keras_runs, cost["total hours"].sum(), p.report_steps,
                                   {n: panel.title for n, (panel, _) in TRANSFER.items()}, p.keras_last)
glue("targets_table", Markdown(targets.to_markdown(index=False)), display=False)
outcome = (f"{int((targets.met == 'yes').sum())} of {len(targets)} targets met. "
           + experiment.protocol_sentence(mnist, p.horizon, "final", "MLPs").replace("the LSTM", "the combination"))
chapter.glue_verdict("verdict_beyond", outcome)

# %% tags=["hide-input"]
chapter.save_protocols({"mnist": mnist, "ablation": ablation, **transfer}, seeds, dense_until=p.horizon)
panels = {f"mnist{s}": experiment.step_summary(mnist, s) for s in p.report_steps}
for s in p.report_steps:
    panels[f"mnist{s}"]["against"] = {f"{m}/{b}": against[s, m, b] for m in ("final", "mean") for b in ("nag", "adam")}
panels.update({name: experiment.protocol_summary(result) for name, result in transfer.items()})
panels["keras"] = {"models": keras_runs, "general_multiplier": multiplier, "multipliers_tried": {f"{k:g}": v for k, v in multiplier_tried.items()},
                   "general_run": getattr(general, "key", None)}
panels["ablation"] = {**experiment.protocol_summary(ablation), "table": rows}
summary = chapter.finish(panels, meta_training_s=meta_seconds, meta_training={k: experiment.meta_training_entry(v) for k, v in trained.items()},
                         cost_hours=cost.set_index("variant")["total hours"].to_dict(),
                         targets=targets.to_dict("records"), adam_lr=adam_lr)
print(f"wrote {chapter.results_dir}/summary.json; chapter wall time {summary['wall_time_s']} s")
