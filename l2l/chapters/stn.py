"""The spatial-transformer chapter: its parameters and its own code (meta-training its three learned optimisers, the
alignment panels with their classical anchors and robust readings, the amortised and single-template panels, the
figures and the summary). The notebook (notebooks/stn.py) holds the prose and calls these in order.

Imports no TensorFlow at import time (`python -m l2l.book list` stays fast): the code that needs it imports it where
it runs."""

import dataclasses
from typing import NamedTuple

from l2l.chapters.base import ChapterParameters, ParameterError, _at_least, budget_words  # noqa: F401  (the notebook glues budget_words)


@dataclasses.dataclass(frozen=True)
class Stn(ChapterParameters):
    meta_seeds: int = 3  # meta-training runs of each learned optimiser; test seed s uses run s (the run is the unit)
    meta_epochs: int = 200  # alignment LSTM: meta-training epochs, each `batch` fresh pairs over the horizon
    batch: int = 32  # alignment pairs per meta-training epoch
    horizon: int = 50  # alignment steps per epoch: the meta-objective's horizon
    unroll: int = 10  # steps per truncated-BPTT segment
    meta_lr: float = 0.001  # Adam's learning rate on the LSTM's weights
    valid_every: int = 20  # epochs between validations (selection by mean loss over the horizon)
    valid_instances: int = 64  # pairs (or networks) behind each validation
    preprocess_p: float = 10.0  # LogAndSign's p
    scale: float = 0.1  # the LSTM's output scale
    train_labels: list[int] = (0, 1, 2, 3, 4)  # digits of meta-training and of the seen-digit panels; the others are the unseen digits
    max_rotation: float = 30.0  # degrees, the warps of meta-training and of every panel but large_warps
    max_scale: float = 0.2  # relative scale change per axis, up to this
    max_shear: float = 0.2  # shear factor, up to this
    max_shift: float = 3.0  # pixels per axis, up to this
    large_factor: float = 1.5  # large_warps multiplies every bound by this (rotation 45 degrees, shift 4.5 px, ...)
    eval_instances: int = 32  # pairs per run on each alignment panel
    tune_instances: int = 32  # pairs (networks) on the validation images for tuning every baseline and multiplier
    long_steps: int = 100  # alignment panels run this far (twice the horizon)
    gn_damping: float = 0.001  # Gauss-Newton's fixed Levenberg-Marquardt damping (the forward-additive row kept beside Lucas-Kanade)
    lk_dampings: list[float] = (0.0001, 0.001, 0.01, 0.1, 1.0)  # inverse-compositional Lucas-Kanade: initial dampings tried on the tuning pairs
    lk_levels: list[int] = (1, 2, 3)  # and pyramid levels tried (3: 7, 14 and 28 px)
    classifier_epochs: int = 3  # the fixed digit classifier of the downstream reading: epochs of ADAM on meta_train's 40,000 digits
    classifier_hidden: int = 128  # its hidden ReLU units (784-128-10)
    stn_epochs: int = 100  # STN LSTM: meta-training epochs, each one fresh localisation network over stn_horizon
    stn_hidden: int = 32  # the localisation network's hidden units
    stn_batch: int = 32  # warped digits per minibatch of the localisation network
    stn_horizon: int = 100  # its meta-training horizon
    stn_unroll: int = 20  # its truncated-BPTT segment
    stn_instances: int = 4  # localisation networks per run on the amortised panels, and for tuning
    stn_long_steps: int = 200  # amortised panels run this far
    template_label: int = 8  # single_template: every input's target is the first validation image of this digit (the thesis used an 8)
    picture_pairs: int = 6  # pairs in each picture grid
    picture_steps: list[int] = (5, 20, 100)  # steps shown in the picture grids (each <= long_steps)
    lr_grid: list[float] = (0.0001, 0.0003162, 0.001, 0.003162, 0.01, 0.03162, 0.1, 0.3162, 1.0, 3.162, 10.0)  # first-stage rates; then quarter-decades beside the best
    results_dir: str = "book/results/stn"  # summary.json, curves, trained weights
    checkpoint_dir: str = ".cache/checkpoints"  # resumable meta-training runs, one folder per run key; not in git

    def check(self):
        _at_least(self, meta_seeds=1, meta_epochs=1, batch=1, horizon=1, unroll=1, valid_every=1, valid_instances=2, eval_instances=2,
                  tune_instances=1, long_steps=self.horizon, stn_epochs=1, stn_hidden=1, stn_batch=1, stn_horizon=1, stn_unroll=1,
                  stn_instances=1, stn_long_steps=self.stn_horizon, picture_pairs=1, classifier_epochs=1, classifier_hidden=1)
        if not self.lk_dampings or min(self.lk_dampings) <= 0 or not self.lk_levels or not all(1 <= k <= 4 for k in self.lk_levels):
            raise ParameterError(f"Stn.lk_dampings needs positive values and Stn.lk_levels levels in 1..4 (28 px halves to 4 px at 4), "
                                 f"got {list(self.lk_dampings)} and {list(self.lk_levels)}")
        if len(set(self.train_labels)) != len(self.train_labels) or not 1 <= len(self.train_labels) <= 9 or not all(0 <= k <= 9 for k in self.train_labels):
            raise ParameterError(f"Stn.train_labels needs 1 to 9 distinct digits in 0..9 (the rest are the unseen digits), got {list(self.train_labels)}")
        if not 0 <= self.template_label <= 9:
            raise ParameterError(f"Stn.template_label must be a digit 0..9, got {self.template_label}")
        if min(self.max_rotation, self.max_scale, self.max_shear, self.max_shift) < 0 or self.max_scale * self.large_factor >= 1 or self.large_factor < 1:
            raise ParameterError("Stn needs non-negative warp bounds, large_factor >= 1 and max_scale * large_factor < 1")
        if any(not 0 < s <= self.long_steps for s in self.picture_steps):
            raise ParameterError(f"Stn.picture_steps must lie in 1..long_steps ({self.long_steps}), got {list(self.picture_steps)}")
        if not self.lr_grid or min(self.lr_grid) <= 0:
            raise ParameterError(f"Stn.lr_grid needs positive values, got {list(self.lr_grid)}")


# -- the chapter's own code ------------------------------------------------------------------------------------------

GEOMETRY = {  # alignment panel -> (its learned optimiser, whether it is transferred there so its multiplier is tuned)
    "exemplar": ("exemplar LSTM", False),
    "exemplar_unseen": ("exemplar LSTM", True),
    "pairs": ("alignment LSTM", False),
    "unseen_digits": ("alignment LSTM", True),
    "large_warps": ("alignment LSTM", True),
    "fashion": ("alignment LSTM", True),
}
DIGIT_PANELS = ("exemplar", "exemplar_unseen", "pairs", "unseen_digits", "large_warps")  # the downstream classifier reads digits only


class Setting(NamedTuple):
    p: Stn  # the chapter's parameters
    split: dict  # l2l.data.mnist_splits()
    seen: object  # part name -> that part's images of the meta-training digits
    unseen: object  # part name -> that part's images of the other digits
    unseen_labels: list  # the other digits


def setting(p):
    """The chapter's data and its seen and unseen digits (fails before any compute if the data cannot be read)."""
    from l2l import data, problems

    split = data.mnist_splits()
    unseen_labels = [k for k in range(10) if k not in p.train_labels]
    return Setting(p, split, lambda part: problems.label_subset(split[part], p.train_labels),
                   lambda part: problems.label_subset(split[part], unseen_labels), unseen_labels)


def _bounds(p, factor=1.0):
    return {"max_rotation": p.max_rotation * factor, "max_scale": p.max_scale * factor, "max_shear": p.max_shear * factor,
            "max_shift": p.max_shift * factor}


def _stn(p, images, template=-1):
    from l2l import problems

    return problems.SpatialTransformer(images, hidden=p.stn_hidden, batch_size=p.stn_batch, template=template, **_bounds(p))


def meta_train(s, chapter):
    """The three learned optimisers, p.meta_seeds runs each (label -> seed -> l2l.meta.MetaResult): the alignment
    LSTM on pairs of a digit and its own warped copy, the exemplar LSTM on pairs of two images of one digit, the STN
    LSTM on localisation networks; each selected by the mean loss over its horizon on validation images."""
    from l2l import experiment, learned_optimizer, meta, problems

    p = s.p
    lstm = learned_optimizer.LSTMConfig(preprocess_p=p.preprocess_p, scale=p.scale)
    config = lambda seed, epochs, horizon, unroll, batch, valid: meta.MetaConfig(
        seed=seed, epochs=epochs, batch=batch, horizon=horizon, unroll=unroll, meta_lr=p.meta_lr, valid_every=p.valid_every,
        valid_instances=valid, select_on="mean")
    pairs = [config(k, p.meta_epochs, p.horizon, p.unroll, p.batch, p.valid_instances) for k in range(p.meta_seeds)]
    networks = [config(k, p.stn_epochs, p.stn_horizon, p.stn_unroll, 1, max(2, p.stn_instances)) for k in range(p.meta_seeds)]
    digits = list(p.train_labels)
    train = lambda problem, valid, configs, label, what: experiment.meta_train_runs(
        problem, lstm, configs, p.checkpoint_dir, chapter.results_dir, label, valid_problem=valid, chapter="stn",
        trained_on=f"{what} of MNIST train[:40000] digits {digits}")
    return {
        "alignment LSTM": train(problems.Alignment(s.seen("meta_train"), **_bounds(p)), problems.Alignment(s.seen("valid"), **_bounds(p)),
                                pairs, "lstm_align", "alignment pairs"),
        "exemplar LSTM": train(problems.ExemplarAlignment(s.seen("meta_train"), **_bounds(p)),
                               problems.ExemplarAlignment(s.seen("valid"), **_bounds(p)), pairs, "lstm_exemplar", "exemplar pairs"),
        "STN LSTM": train(_stn(p, s.seen("meta_train")), _stn(p, s.seen("valid")), networks, "lstm_stn", "a localisation network"),
    }


def geometry_panels(s):
    """name -> l2l.experiment.Panel of every alignment panel (GEOMETRY): test pairs from images no learned optimiser
    saw (MNIST train[50000:60000]), tuning pairs from the validation images."""
    from l2l import experiment, problems

    p = s.p
    made = lambda name, title, kind, test, tune, factor=1.0: experiment.Panel(
        name, title, kind(test, **_bounds(p, factor)), kind(tune, **_bounds(p, factor)), tune_steps=p.horizon, steps=p.long_steps,
        report_steps=(p.horizon, p.long_steps), geometry=True)
    seen, unseen, A, E = s.seen, s.unseen, problems.Alignment, problems.ExemplarAlignment
    return {
        "exemplar": made("exemplar", f"Exemplar: another image of the digit, seen digits {list(p.train_labels)}", E, seen("test_train"), seen("valid")),
        "exemplar_unseen": made("exemplar_unseen", f"Exemplar, unseen digits {s.unseen_labels}", E, unseen("test_train"), unseen("valid")),
        "pairs": made("pairs", f"Own copy, seen digits {list(p.train_labels)}", A, seen("test_train"), seen("valid")),
        "unseen_digits": made("unseen_digits", f"Own copy, unseen digits {s.unseen_labels}", A, unseen("test_train"), unseen("valid")),
        "large_warps": made("large_warps", f"Own copy, warps {p.large_factor:g}x larger", A, seen("test_train"), seen("valid"), p.large_factor),
        "fashion": made("fashion", "Own copy, Fashion-MNIST items", A, s.split["fashion_train"], s.split["fashion_tune"]),
    }


class Geometry(NamedTuple):
    result: object  # l2l.experiment.ProtocolResult
    gauss_newton: object  # l2l.alignment.AnchorPanel at the fixed damping
    lucas_kanade: object  # l2l.alignment.AnchorPanel, damping and levels tuned on the tuning pairs
    robust: dict  # l2l.alignment.robust_geometry at the horizon
    downstream: dict  # l2l.alignment.downstream_accuracy at the horizon, or {} (Fashion-MNIST)


def run_geometry(s, trained, classify=None):
    """Every alignment panel through the rigor protocol, with both classical anchors, the robust corner reading and
    (digit panels, given a classifier) the downstream reading: name -> Geometry."""
    from l2l import alignment, experiment

    p = s.p
    out = {}
    for name, panel in geometry_panels(s).items():
        learner, transferred = GEOMETRY[name]
        runs = list(trained[learner].values())
        result = experiment.run_protocol(panel, {"lstm": runs}, p.eval_instances, seeds=list(range(p.meta_seeds)), tune_instances=p.tune_instances,
                                         tune_learned=transferred, grid=tuple(p.lr_grid), cache_dir=f"{p.checkpoint_dir}/panels")
        lk = alignment.lucas_kanade_panel(result, p.tune_instances, grid=tuple(p.lk_dampings), levels=tuple(p.lk_levels))
        reader = classify and name in DIGIT_PANELS and classify(s.p.train_labels if name in ("exemplar", "pairs", "large_warps") else s.unseen_labels)
        read = alignment.downstream_accuracy(result, runs, p.horizon, reader, {"damping": lk.entry["damping"], "levels": lk.entry["levels"]}) if reader else {}
        out[name] = Geometry(result, alignment.gauss_newton_panel(result, damping=p.gn_damping), lk, alignment.robust_geometry(result, p.horizon), read)
    return out


def digit_classifier(s, seed=0):
    """A fixed classifier for the downstream reading: an MLP (784-hidden-10, ReLU) trained by ADAM on meta_train's
    digits, all ten. Returns (labels -> classify(images [n, H, W, C]) -> index into `labels`, or -1 for another digit;
    its accuracy on the official test digits, unwarped)."""
    import numpy as np
    import tensorflow as tf

    tf.keras.utils.set_random_seed(seed)
    train, test = s.split["meta_train"], s.split["test_heldout"]
    model = tf.keras.Sequential([tf.keras.Input((int(train.x.shape[1]),)), tf.keras.layers.Dense(s.p.classifier_hidden, activation="relu"),
                                 tf.keras.layers.Dense(10)])
    model.compile(optimizer=tf.keras.optimizers.Adam(1e-3), loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(train.x, train.y, batch_size=128, epochs=s.p.classifier_epochs, verbose=0, shuffle=True)
    digit = lambda images: np.argmax(model.predict(np.reshape(images, [len(images), -1]), verbose=0, batch_size=1024), axis=-1)
    clean = float(np.mean(digit(test.x.numpy()) == test.y.numpy()))

    def reader(labels):
        index = np.full(10, -1)
        index[list(labels)] = np.arange(len(labels))  # label_subset relabels a panel's digits 0..k-1 in this order
        return lambda images: index[digit(images)]

    return reader, clean


def _stn_panel(p, name, title, test, tune, heldout):
    from l2l import experiment

    return experiment.Panel(name, title, test, tune, tune_steps=p.stn_horizon, steps=p.stn_long_steps,
                            report_steps=(p.stn_horizon, p.stn_long_steps), heldout=heldout)


def _protocol(p, panel, learned, **options):
    from l2l import experiment

    return experiment.run_protocol(panel, learned, p.stn_instances, seeds=list(range(p.meta_seeds)), tune_instances=p.stn_instances,
                                   grid=tuple(p.lr_grid), cache_dir=f"{p.checkpoint_dir}/panels", **options)


def amortised(s, trained):
    """The amortised panel: localisation networks trained on warped seen digits, measured on warped unseen test
    digits, by the STN LSTM, the alignment LSTM transferred (multiplier tuned) and the tuned baselines. Returns
    (its protocol result, alignment.amortised_reading at the panel's last step)."""
    from l2l import alignment

    p = s.p
    panel = _stn_panel(p, "amortised", "Amortised STN: trained on seen digits, measured on unseen ones", _stn(p, s.seen("test_train")),
                       _stn(p, s.seen("valid")), s.unseen("test_heldout"))
    result = _protocol(p, panel, {"lstm": list(trained["STN LSTM"].values()), "lstm_align": list(trained["alignment LSTM"].values())},
                       tune_learned=["lstm_align"])
    return result, alignment.amortised_reading(result, p.stn_long_steps)


def amortised_sentence(reading, result, unit="localisation networks"):
    """The amortised panel's sentence: a plain statement where the meta-training failed or nothing solves the task,
    the protocol's verdict otherwise."""
    from l2l import experiment, plots

    step, v = reading["step"], reading["vs_identity"]
    best = max(reading["success"], key=reading["success"].get)
    reach = (f"The best held-out reading is {plots.label(best)}'s: {100 * reading['success'][best]:.0f}% of unseen test digits within 1 px "
             f"at step {step}")
    if reading["failed"]:
        return (f"**The STN LSTM's meta-training failed**: over {v['runs']} runs, its training loss at step {step} "
                f"({reading['at_step']:.3g}) is above the untrained network's identity map ({reading['identity']:.3g} at step 0) by "
                f"{v['mean']:.3g} (95% CI {v['ci95'][0]:.3g} to {v['ci95'][1]:.3g}), so there is no comparison to make. {reach}.")
    if not reading["solved_by"]:
        return (f"**No optimiser solves the amortised task** (none brings {100 * reading['solve']:.0f}% of held-out digits within 1 px), "
                f"so the losses below compare optimisers that all fail. {reach}.")
    return experiment.protocol_sentence(result, step, "final", unit) + f" {reach}."


def single_template(s, trained):
    """The thesis' setting: every input's target is one example (the first test or validation image of
    p.template_label). Returns (protocol result, picture rows, name -> map_scale_check) for seed 0."""
    import numpy as np

    from l2l import alignment

    p, split = s.p, s.split
    first = lambda images: int(np.flatnonzero(images.y.numpy() == p.template_label)[0])
    panel = _stn_panel(p, "single_template", f"One example (a {p.template_label}) as every input's target",
                       _stn(p, split["test_train"], first(split["test_train"])), _stn(p, split["valid"], first(split["valid"])), split["test_heldout"])
    runs = list(trained["STN LSTM"].values())
    result = _protocol(p, panel, {"lstm": runs}, tune_learned=True)
    rows, checks = alignment.template_rows(result, runs[0], p.stn_horizon, p.stn_long_steps, split["test_heldout"], p.picture_pairs)
    return result, rows, checks


def template_sentence(result, checks, step, collapsed_below=0.5):
    """The single-template verdict, read after the map-scale check: a learned optimiser whose maps mostly leave the
    plausible range (alignment.PLAUSIBLE_DETERMINANT) shrank or flipped the digit, and its photometric loss does not
    count as alignment."""
    from l2l import experiment

    learned = next(k for k in checks if "LSTM" in k)
    low, high = checks[learned]["plausible"]
    scale = "; ".join(f"{k}: median determinant {c['median_determinant']:.2f}, {100 * c['plausible_share']:.0f}% of maps within {low:g}-{high:g}"
                      for k, c in checks.items())
    check = f"Map scale after {step} steps (seed 0, 500 held-out digits): {scale}."
    if checks[learned]["plausible_share"] < collapsed_below:
        return (check + f" **The LSTM's maps collapsed** (under {100 * collapsed_below:.0f}% plausible), so its photometric loss is not "
                "alignment and no loss verdict is stated.")
    return check + " " + experiment.protocol_sentence(result, result.panel.tune_steps, "final", "localisation networks")


# -- reading the alignment panels ---------------------------------------------------------------------------------

ANCHORS = {"gauss_newton": "Gauss-Newton", "lucas_kanade": "Lucas-Kanade"}


def medians(g, step):
    """name -> each run's median corner error at `step`, over runs, for every optimiser and both anchors."""
    from l2l import alignment

    return alignment.anchor_medians(g.result, {name: getattr(g, name) for name in ANCHORS}, step)


def geometry_table(g, step):
    """One alignment panel at `step` in seven columns: optimiser, setting (tuned for that step's final loss), final
    loss, the median pair's corner error and the share within 1 px (each over runs), steps to 1 px, ms per step."""
    import pandas as pd

    from l2l import alignment, plots
    from l2l.experiment.reports import _settings_text, fmt_interval, fmt_reach

    robust = alignment.robust_geometry(g.result, step)
    entries = {**g.result.entries, **{name: getattr(g, name).entry for name in ANCHORS}}
    median = medians(g, step)
    success = {**{n: v["mean"] for n, v in robust["success"].items()}, **{n: getattr(g, n).entry["success"][str(step)]["mean"] for n in ANCHORS}}
    setting = lambda n, e: (f"damping {e['damping']:g}" + (f", {e['levels']} levels" if "levels" in e else "")) if n in ANCHORS else _settings_text(n, e, step)
    return pd.DataFrame({
        "optimiser": [plots.label(n) for n in entries], "setting": [setting(n, e) for n, e in entries.items()],
        f"loss at step {step}": [fmt_interval(e["loss"][str(step)]) for e in entries.values()],
        "median pair's corner error (px)": [fmt_interval(median[n]) for n in entries],
        "within 1 px": [f"{100 * success[n]:.0f}%" for n in entries],
        "steps to 1 px": [fmt_reach(e["steps_to_1px"][str(step)], "{:.0f}") for e in entries.values()],
        "ms per step": [f"{e['ms_per_step']:.2f}" for e in entries.values()]})


def geometry_sentences(g, step, unit="pairs"):
    """The panel's verdicts at `step`, one sentence each, keyed (metric, against): the final loss against the best
    tuned baseline ("best"); the median pair's corner error and the 1-px success rate against it, against
    Lucas-Kanade and against Gauss-Newton. In that order."""
    from l2l import alignment, experiment, plots

    robust = alignment.robust_geometry(g.result, step)
    best = f"the best tuned baseline ({plots.label(robust['verdicts']['median']['best'])}, chosen on the tuning pairs)"
    out = {("final", "best"): experiment.protocol_sentence(g.result, step, "final", unit)}
    for metric in ("median", "success"):
        out[metric, "best"] = alignment.anchor_sentence(robust["verdicts"][metric], metric, step, unit, anchor=best)
        for name in ("lucas_kanade", "gauss_newton"):
            out[metric, name] = alignment.anchor_sentence(getattr(g, name).verdicts[step][metric], metric, step, unit, anchor=ANCHORS[name])
    return out


HEADLINE = (("median", "best"), ("median", "lucas_kanade"), ("success", "lucas_kanade"))  # the exemplar verdicts the chapter opens with


def downstream_sentence(g, clean, unit="pairs"):
    """The downstream reading in one sentence: the classifier's accuracy on each method's aligned pairs, and the
    learned optimiser's error rate against the best baseline's and Lucas-Kanade's, paired by run."""
    from l2l import plots

    read = g.downstream
    acc = read["accuracy"]
    names = [n for n in acc if n not in ("unaligned", "true map")]
    shares = ", ".join(f"{plots.label(n)} {100 * acc[n]['mean']:.0f}%" for n in names)
    gaps = "; ".join(f"minus {plots.label(v['other'])}'s {100 * v['mean']:.1f} points (95% CI {100 * v['ci95'][0]:.1f} to {100 * v['ci95'][1]:.1f}): "
                     f"**{v['verdict']}** it" for v in read["verdicts"].values())
    runs = acc["unaligned"]["runs"]
    return (f"A fixed classifier ({100 * clean:.1f}% accurate on unwarped test digits) reads the digit of {100 * acc['unaligned']['mean']:.0f}% of "
            f"the unaligned moving images and {100 * acc['true map']['mean']:.0f}% under the true map; of those aligned at the panel's horizon: "
            f"{shares} (mean over {runs} runs of {unit}). The LSTM's error rate {gaps}.")


def _curves(ax, g, step):
    """A panel's mean loss curves (every optimiser tuned for the final loss at `step`, 95% bands over runs) with the
    two anchors' mean curves, dotted (Gauss-Newton) and dashed (Lucas-Kanade)."""
    from l2l import experiment

    experiment.protocol_figure(g.result, step, objective="final", ax=ax)
    for anchor, style in (("gauss_newton", ":"), ("lucas_kanade", "--")):
        ax.plot(range(g.result.panel.steps + 1), getattr(g, anchor).curves.mean(axis=(0, 1)), color="black", linestyle=style, label=ANCHORS[anchor])


def geometry_figure(geometry, step, names=None, width=3):
    """Loss curves of every optimiser tuned for the final loss at `step` with both anchors dashed (top row of each
    pair), small multiples `width` to a row."""
    import matplotlib.pyplot as plt

    names = list(names or geometry)
    rows = -(-len(names) // width)
    fig, axes = plt.subplots(rows, width, figsize=(5 * width, 3.8 * rows), squeeze=False)
    for ax, name in zip(axes.flat, names):
        _curves(ax, geometry[name], step)
        ax.set_title(geometry[name].result.panel.title, fontsize=10)
        ax.get_legend() and ax.get_legend().remove()
    for ax in list(axes.flat)[len(names):]:
        ax.remove()
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 7), frameon=False, bbox_to_anchor=(0.5, -0.02))
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return fig


def result_figure(g, step):
    """The chapter's headline figure: the exemplar panel's loss curves and each optimiser's median corner error at
    the panel's report steps, with both anchors."""
    import matplotlib.pyplot as plt

    from l2l import plots

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.2))
    _curves(left, g, step)
    plots.legend_below(left)
    steps = sorted(g.result.verdicts)
    entries = {}
    for s in steps:
        for name, value in medians(g, s).items():
            entries.setdefault(name, {"median": {}})["median"][str(s)] = value
    plots.interval_points(entries, "median", steps, ax=right, threshold=1.0, ylabel="median pair's corner error (px)", title="Corner error, 95% CI over runs")
    fig.tight_layout()
    return fig


# -- glue and summary ------------------------------------------------------------------------------------------------

def _bullets(sentences):
    from IPython.display import Markdown

    return Markdown("\n".join(f"- {s}" for s in sentences))


def glue_geometry(geometry, p, clean, glue):
    """Glues, for every alignment panel: table_{name} and table_{name}_long (geometry_table at the horizon and at
    long_steps) and verdicts_{name} (geometry_sentences at the horizon, then the downstream sentence); and the
    chapter's result: result_exemplar (its verdicts on the exemplar panel) and fig_result."""
    from IPython.display import Markdown

    for name, g in geometry.items():
        for suffix, step in (("", p.horizon), ("_long", p.long_steps)):
            glue(f"table_{name}{suffix}", Markdown(geometry_table(g, step).to_markdown(index=False)), display=False)
        sentences = list(geometry_sentences(g, p.horizon).values()) + ([downstream_sentence(g, clean)] if g.downstream else [])
        glue(f"verdicts_{name}", _bullets(sentences), display=False)
    g = geometry["exemplar"]
    said = geometry_sentences(g, p.horizon)
    glue("result_exemplar", _bullets([said[k] for k in HEADLINE] + ([downstream_sentence(g, clean)] if g.downstream else [])), display=False)


def summary_panels(geometry, amortised_result, reading, template_result, checks):
    """summary.json's panels: each protocol summary, with the alignment panels' anchors, robust corner reading and
    downstream reading, the amortised panel's reading and the single-template map checks."""
    from l2l import alignment, experiment

    panels = {}
    for name, g in geometry.items():
        steps = sorted(g.result.verdicts)
        panels[name] = {**experiment.protocol_summary(g.result),
                        **{anchor: {"entry": getattr(g, anchor).entry, "verdicts": {str(s): v for s, v in getattr(g, anchor).verdicts.items()}}
                           for anchor in ANCHORS},
                        "robust": {str(s): alignment.robust_geometry(g.result, s) for s in steps}, "downstream": g.downstream}
    panels["amortised"] = {**experiment.protocol_summary(amortised_result), "reading": reading}
    panels["single_template"] = {**experiment.protocol_summary(template_result), "map_scale": checks}
    return panels


def network_table(result):
    """A localisation-network panel (amortised or one template) in six columns: optimiser, setting (tuned for the
    final loss at the panel's tuning step), training loss at both report steps, held-out share within 1 px at the
    last, ms per step."""
    import pandas as pd

    from l2l import plots
    from l2l.experiment.reports import _settings_text, fmt_interval

    first, last = sorted(result.verdicts)[0], sorted(result.verdicts)[-1]
    entries = result.entries
    return pd.DataFrame({
        "optimiser": [plots.label(n) for n in entries], "setting": [_settings_text(n, e, first) for n, e in entries.items()],
        f"loss at step {first}": [fmt_interval(e["loss"][str(first)]) for e in entries.values()],
        f"loss at step {last}": [fmt_interval(e["loss"][str(last)]) for e in entries.values()],
        f"held-out within 1 px, step {last}": [f"{100 * e['success'][str(last)]['mean']:.0f}%" for e in entries.values()],
        "ms per step": [f"{e['ms_per_step']:.2f}" for e in entries.values()]})


def glue_intro(geometry, p, clean, sentences, chapter, glue):
    """The verdicts the introduction reads (Chapter.glue_verdict: Markdown and HTML) from the exemplar panel at the
    horizon: verdict_stn_{final, corner, gn_final, gn_corner} keep their meaning (final loss and mean corner error
    against the best tuned baseline, then against Gauss-Newton), and verdict_stn_{median, lk_median, lk_success,
    downstream, amortised, template} add the robust, Lucas-Kanade, downstream, amortised and one-template readings.
    sentences: {"amortised": ..., "template": ...}."""
    from l2l import alignment, experiment

    g, h = geometry["exemplar"], p.horizon
    robust = geometry_sentences(g, h)
    said = {"final": experiment.protocol_sentence(g.result, h, "final", "pairs"), "corner": experiment.protocol_sentence(g.result, h, "corner", "pairs"),
            "gn_final": alignment.anchor_sentence(g.gauss_newton.verdicts[h]["final"], "final", h),
            "gn_corner": alignment.anchor_sentence(g.gauss_newton.verdicts[h]["corner"], "corner", h),
            "median": robust["median", "best"], "lk_median": robust["median", "lucas_kanade"], "lk_success": robust["success", "lucas_kanade"],
            **sentences}
    if g.downstream:
        said["downstream"] = downstream_sentence(g, clean)
    for name, sentence in said.items():
        chapter.glue_verdict(f"verdict_stn_{name}", sentence, glue)
