"""Seaborn figures shared by the chapters."""

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns

# One colour per optimiser across every chapter.
COLOURS = dict(zip(["lstm", "sgd", "rmsprop", "adam", "nag"], sns.color_palette("colorblind", 5)))
LABELS = {"lstm": "LSTM", "sgd": "SGD", "rmsprop": "RMSprop", "adam": "ADAM", "nag": "NAG", "lstm_paper": "LSTM (paper settings)",
          "lstm_one": "one LSTM for all parameters", "lstm_sub": "LSTM-sub (held-out labels)", "lstm_mnist": "LSTM trained on MNIST",
          "lstm_align": "LSTM trained on alignment", "gauss_newton": "Gauss-Newton"}


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


def loss_curves(band_table, ax=None, title=None, log_x=False, lrs=None):
    """Mean loss against step on a log scale, with the table's 95% bands.

    band_table: columns optimiser, step, mean, low, high (l2l.evaluate.bands).
    lrs: optional name -> learning rate, shown in the legend.
    """
    ax = ax or plt.gca()
    for name, part in band_table.groupby("optimiser", sort=False):
        label = globals()["label"](name) + (f" (lr {lrs[name]:.3g})" if lrs and lrs.get(name) else "")
        colour = COLOURS.get(name)
        sns.lineplot(x=part.step, y=part["mean"], ax=ax, label=label, color=colour, linewidth=2 if name == "lstm" else 1.4)
        ax.fill_between(part.step, part.low, part.high, color=colour, alpha=0.2, linewidth=0)
    ax.set_yscale("log")
    if log_x:
        ax.set_xscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    if title:
        ax.set_title(title)
    ax.legend(frameon=False)
    return ax


def tuning_curves(table, chosen, ax=None):
    """Final loss against learning rate for each baseline; the chosen rate marked."""
    ax = ax or plt.gca()
    table = table.replace(np.inf, np.nan)
    for name, part in table.groupby("optimiser", sort=False):
        colour = COLOURS.get(name)
        sns.lineplot(x=part.lr, y=part.final_loss, ax=ax, marker="o", label=LABELS.get(name, name), color=colour)
        best = part[part.lr == chosen[name]]
        ax.scatter(best.lr, best.final_loss, s=160, facecolors="none", edgecolors=colour, linewidths=2)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("mean final loss (tuning set)")
    ax.legend(frameon=False)
    return ax


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
