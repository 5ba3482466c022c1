"""Seaborn figures shared by the chapters."""

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns

from l2l import baselines

# One colour per optimiser across every chapter (Seaborn's colour-blind palette): the four baselines of the paper, their
# scheduled variants, the LSTM and its variants; the classical alignment anchors in black (told apart by line style).
_PALETTE = sns.color_palette("colorblind", 10)
COLOURS = {"lstm": _PALETTE[0], "sgd": _PALETTE[1], "rmsprop": _PALETTE[2], "adam": _PALETTE[3], "nag": _PALETTE[4],
           "adam_decay": _PALETTE[5], "nag_decay": _PALETTE[6], "lstm_paper": _PALETTE[9], "lstm_one": _PALETTE[8], "lstm_sub": _PALETTE[7],
           "lstm_mnist": _PALETTE[9], "lstm_align": _PALETTE[9], "gauss_newton": (0.0, 0.0, 0.0), "lucas_kanade": (0.0, 0.0, 0.0)}


def colour(name):
    """An optimiser's colour (COLOURS), the same in every figure: a tuned multiplier keeps its optimiser's; any other
    learned optimiser ("lstm_<x>": the chapter's own LSTM under another name, as lstm_budget or lstm_best) the LSTM's."""
    name = name[: -len("_tuned")] if name.endswith("_tuned") else name
    if name in COLOURS:
        return COLOURS[name]
    return COLOURS["lstm"] if name.startswith("lstm") else (0.4, 0.4, 0.4)
LABELS = {"lstm": "LSTM", **baselines.LABELS, "lstm_paper": "LSTM (paper settings)",
          "lstm_one": "one LSTM for all parameters", "lstm_sub": "LSTM-sub (held-out labels)", "lstm_mnist": "LSTM trained on MNIST",
          "lstm_align": "LSTM trained on alignment", "lstm_budget": "LSTM", "gauss_newton": "Gauss-Newton", "lucas_kanade": "Lucas-Kanade"}


def label(name):
    """How an optimiser's entry name reads in tables and legends: LABELS, "<name>_tuned" as the name with its
    multiplier tuned, and any other "lstm_<x>" as "LSTM (<x>)"."""
    if name.endswith("_tuned"):
        return f"{label(name[: -len('_tuned')])}, multiplier tuned"
    if name in LABELS:
        return LABELS[name]
    return f"LSTM ({name[len('lstm_'):]})" if name.startswith("lstm_") else name


def style():
    sns.set_theme(context="notebook", style="whitegrid")
    plt.rcParams.update({"figure.dpi": 80, "savefig.dpi": 80, "figure.figsize": (7, 4.2)})


def legend_below(ax):
    """The axes' legend below it, outside the data: beside it, a panel's legend ran into its neighbour's in a row."""
    return ax.legend(frameon=False, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2)


DIVERGED_ABOVE = 10.0  # a loss figure's axis stops at this many times the highest starting loss: curves above it diverged


def loss_curves(band_table, ax=None, title=None, log_x=False, lrs=None):
    """Mean loss against step on a log scale, with the table's 95% bands.

    band_table: columns optimiser, step, mean, low, high (l2l.stats.run_bands).
    lrs: optional name -> learning rate, shown in the legend.
    A curve that climbs above DIVERGED_ABOVE times the highest loss at the first step drawn does not set the axis
    (one diverged SGD run at 1e15 flattened every other curve of the book's first figure): the axis stops there and
    the curve's legend entry says it left the axis.
    """
    ax = ax or plt.gca()
    first = band_table.step.min()
    starts = band_table[band_table.step == first]["mean"]
    top = DIVERGED_ABOVE * float(starts[np.isfinite(starts)].max()) if np.isfinite(starts).any() else None
    for name, part in band_table.groupby("optimiser", sort=False):
        label = globals()["label"](name) + (f" (lr {lrs[name]:.3g})" if lrs and lrs.get(name) else "")
        if top is not None and not (part["mean"].fillna(np.inf) <= top).all():
            label += ", diverged (leaves the axis)"
        hue = colour(name)
        sns.lineplot(x=part.step, y=part["mean"], ax=ax, label=label, color=hue, linewidth=2 if name == "lstm" else 1.4)
        ax.fill_between(part.step, part.low, part.high, color=hue, alpha=0.2, linewidth=0)
    ax.set_yscale("log")
    if top is not None:
        ax.set_ylim(top=top)
    if log_x:
        ax.set_xscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    if title:
        ax.set_title(title)
    legend_below(ax)
    return ax


def rate_sweeps(sweeps, xlabel, ylabel, ax=None):
    """Final loss against rate for each optimiser's sweep, name -> (frame with lr and final_loss, chosen rate, legend
    label); the chosen rate circled. Diverged settings (inf) are left out of the line."""
    ax = ax or plt.gca()
    for name, (sweep, chosen, legend) in sweeps.items():
        finite = sweep.replace(np.inf, np.nan)
        ax.plot(finite.lr, finite.final_loss, marker="o", color=colour(name), label=legend)
        ax.scatter([chosen], finite.final_loss[finite.lr == chosen], s=160, facecolors="none", edgecolors=colour(name), linewidths=2)
    ax.set(xscale="log", yscale="log", xlabel=xlabel, ylabel=ylabel)
    ax.legend(frameon=False)
    return ax


def update_ratio_panels(ratios, steps):
    """One panel per kernel: ||update|| / ||weights|| at every step for each optimiser (name -> update_ratios()).
    An "lstm_*" name takes the LSTM's colour. Returns the figure."""
    kernels = [k for k in next(iter(ratios.values())) if k.endswith("kernel")]
    fig, axes = plt.subplots(1, len(kernels), figsize=(4 * len(kernels), 3.6), sharey=True)
    axes = np.atleast_1d(axes)
    for ax, k in zip(axes, kernels):
        for name, ratio in ratios.items():
            ax.plot(range(1, steps + 1), ratio[k], color=colour(name), label=LABELS.get(name, label(name)))
        ax.set(yscale="log", title=k.split("/")[0], xlabel="step")
    axes[0].set_ylabel("||update|| / ||weights||")
    axes[0].legend(frameon=False)
    return fig


def meta_training(runs, ax=None):
    """Validation loss against epoch, one line per meta-training run, the kept (best) epoch circled.

    runs: seed -> l2l.meta.MetaResult.
    """
    ax = ax or plt.gca()
    for seed, run in runs.items():
        valid = run.history.dropna(subset=["valid_loss"])
        line = sns.lineplot(x=valid.epoch, y=valid.valid_loss, ax=ax, label=f"seed {seed}").lines[-1]
        if run.best_epoch >= 0:
            ax.scatter([run.best_epoch], [run.best_valid], s=90, facecolors="none", edgecolors=line.get_color(), linewidths=2)
    ax.set_yscale("log")
    ax.set_xlabel("meta-training epoch (circled: kept)")
    ax.set_ylabel("validation loss at the horizon")
    ax.legend(frameon=False)
    return ax


def image_grid(rows, title=None, size=1.1):
    """One row per entry of `rows` (label -> images [k, H, W] or [k, H, W, 1] in [0, 1]), k columns, grey levels."""
    labels = list(rows)
    k = max(len(v) for v in rows.values())
    fig, axes = plt.subplots(len(labels), k, figsize=(size * k + 1.6, size * len(labels)), squeeze=False)
    for i, name in enumerate(labels):
        for j in range(k):
            ax = axes[i, j]
            ax.set_xticks([])
            ax.set_yticks([])
            ax.grid(False)
            if j < len(rows[name]):
                ax.imshow(np.squeeze(np.clip(rows[name][j], 0.0, 1.0)), cmap="gray", vmin=0.0, vmax=1.0)
        axes[i, 0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=9)
    if title:
        fig.suptitle(title)
    return fig


def interval_points(entries, key, steps, ax=None, threshold=None, ylabel=None, title=None):
    """One point per optimiser and report step with its 95% interval over runs, on a log scale.

    entries: name -> summary entry holding entry[key][str(step)] = {"mean", "ci95"} (l2l.experiment.protocol_summary's
    entries, or Gauss-Newton's); steps: the report steps, drawn side by side (circles, then squares);
    threshold: a dotted horizontal line (e.g. 1 pixel of corner error).
    """
    ax = ax or plt.gca()
    names = list(entries)
    for k, step in enumerate(steps):
        shift = (k - (len(steps) - 1) / 2) * 0.3
        for i, name in enumerate(names):
            v = entries[name][key][str(step)]
            ax.errorbar([i + shift], [v["mean"]], yerr=[[v["mean"] - v["ci95"][0]], [v["ci95"][1] - v["mean"]]], marker="os^D"[k % 4],
                        color=colour(name), capsize=3, label=f"step {step}" if i == 0 else None)
    if threshold is not None:
        ax.axhline(threshold, color="grey", linestyle=":")
    ax.set_xticks(range(len(names)), [label(n) for n in names], rotation=30, ha="right", fontsize=8)
    ax.set(yscale="log", ylabel=ylabel or key, title=title)
    ax.legend(frameon=False, fontsize=8)
    return ax


# How a sweep's trials are drawn, by Optuna state.
OUTCOMES = {"COMPLETE": ("o", COLOURS["lstm"], "complete"), "PRUNED": ("s", "grey", "pruned"), "FAIL": ("x", "crimson", "failed")}


def _by_outcome(frame, draw):
    """Calls draw(part, marker, colour, label) for the trials of each state that ran (not surplus, not waiting)."""
    ran = frame[~frame.surplus.astype(bool) & frame.status.notna()]
    for state, (marker, colour, name) in OUTCOMES.items():
        part = ran[ran.state == state]
        if len(part):
            draw(part, marker, colour, name)


def cost_quality(frame, ax=None):
    """Each trial's CPU seconds against its score (l2l.sweep.trials_frame; pruned trials at the last validation the
    pruner read), by outcome; the dotted line is a ratio of 1 (tuned NAG's loss)."""
    ax = ax or plt.gca()
    _by_outcome(frame, lambda part, marker, colour, name: ax.scatter(part.cpu_s, part.score, marker=marker, color=colour, label=name))
    ax.axhline(1, color="grey", linestyle=":")
    ax.set(xscale="log", yscale="log", xlabel="CPU seconds of the trial", ylabel="loss / tuned NAG's", title="Cost and quality")
    ax.legend(frameon=False)
    return ax


def outcome_map(frame, pair, log=(False, False), ax=None):
    """The trials over two settings, by outcome: where meta-training completes, is pruned or fails."""
    ax = ax or plt.gca()
    a, b = pair
    _by_outcome(frame, lambda part, marker, colour, name: ax.scatter(part[a], part[b], marker=marker, color=colour, label=name))
    ax.set(xscale="log" if log[0] else "linear", yscale="log" if log[1] else "linear", xlabel=a, ylabel=b,
           title="Outcomes over the top two settings")
    ax.legend(frameon=False)
    return ax


def importance_bars(by, ax=None, title=None):
    """Two importance estimators side by side per setting (by: {"fanova": frame, "ped_anova": frame} of
    l2l.sweep.importances), bars to each estimate with the resamples' 2.5-97.5 percentile span, ordered by fANOVA."""
    ax = ax or plt.gca()
    table = by["fanova"].merge(by["ped_anova"], on="setting", suffixes=("_fanova", "_ped"), how="outer").fillna(0.0)
    rows = table.sort_values("importance_fanova").set_index("setting")
    y = np.arange(len(rows))
    for shift, suffix, colour, name in ((-0.18, "_fanova", COLOURS["lstm"], "fANOVA"), (0.18, "_ped", COLOURS["nag"], "PED-ANOVA")):
        value = rows["importance" + suffix].to_numpy()
        span = np.clip([value - rows["low" + suffix].to_numpy(), rows["high" + suffix].to_numpy() - value], 0, None)
        ax.barh(y + shift, value, height=0.34, color=colour, label=name, xerr=span)
    ax.set(yticks=y, yticklabels=list(rows.index), xlabel="importance (normalised)", title=title)
    ax.legend(frameon=False)
    return ax


def dependence(table, ax=None, title=None):
    """A partial-dependence table (l2l.sweep.partial_dependence): the geometric-mean ratio per level with its interval."""
    ax = ax or plt.gca()
    ratio = table.ratio.to_numpy()
    ax.errorbar(range(len(table)), ratio, yerr=[ratio - table.low.to_numpy(), table.high.to_numpy() - ratio], marker="o", color=COLOURS["lstm"], capsize=3)
    ax.set_xticks(range(len(table)), list(table.level), rotation=30, fontsize=8)
    ax.axhline(1, color="grey", linestyle=":")
    ax.set(yscale="log", title=title)
    return ax


def ratio_heatmap(heat, ax=None, title="log10(loss / tuned NAG's)"):
    """A grid study's ratios (a frame: rows one setting's values, columns the other's) coloured by log10, 0 (a tie
    with NAG) white, each cell written."""
    ax = ax or plt.gca()
    values = heat.to_numpy(dtype=float)
    image = ax.imshow(np.log10(values), cmap="coolwarm", vmin=-1, vmax=1, origin="lower")
    ax.set(xticks=range(heat.shape[1]), xticklabels=[f"{v:g}" for v in heat.columns], yticks=range(heat.shape[0]),
           yticklabels=[f"{v:g}" for v in heat.index], xlabel=heat.columns.name, ylabel=heat.index.name, title=title)
    for (i, j), v in np.ndenumerate(values):
        ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=8)
    ax.figure.colorbar(image, ax=ax)
    return ax
