"""The MNIST chapter: its parameters, its pre-registered endpoints, the paper's MNIST recipe (the budget runs) and its test panels.

Imports no TensorFlow: the code that needs it imports it where it runs."""

import dataclasses

from l2l.chapters.base import BASELINES, SCHEDULED, ChapterParameters, Endpoint, ParameterError, Recipe, _at_least, budget_words  # noqa: F401
from l2l.paper import PAPER_LSTM, PAPER_MNIST_META


@dataclasses.dataclass(frozen=True)
class Mnist(ChapterParameters):
    meta_seeds: int = 5  # meta-training runs with the paper's settings; test seed s uses run s (the run is the unit)
    meta_epochs: int = 200  # meta-training epochs per run, each one fresh MLP over the horizon (the paper code: 10,000)
    meta_lr: float = 0.001  # learning rate of Adam on the LSTM weights
    clip_norm: float = 0.0  # meta-gradient global-norm clipping; 0: none
    horizon: int = 100  # optimisee steps per epoch, the meta-objective's horizon (paper: 100)
    unroll: int = 20  # steps per truncated-BPTT segment (paper: 20)
    valid_every: int = 10  # epochs between validations, for best-by-validation selection
    valid_instances: int = 20  # MLPs on held-out training images behind each validation (selection by mean loss over the horizon)
    deepmind_seeds: int = 5  # meta-training runs with the settings of the DeepMind code: p 5, scale 0.01
    eval_instances: int = 8  # MLPs per run on the test panels
    tune_instances: int = 10  # MLPs on held-out training images for tuning every baseline and multiplier
    long_steps: int = 200  # test runs go this far (twice the horizon)
    lr_grid: list[float] = (0.0001, 0.0003162, 0.001, 0.003162, 0.01, 0.03162, 0.1, 0.3162, 1.0, 3.162, 10.0)  # the panels' first-stage rates (l2l.evaluate.LR_GRID)
    budget_runs: int = 5  # the budget campaign's runs (l2l.recipes mnist_budget, seeds 0..budget_runs-1), read when finished; run k meets test seed k
    budget_epochs: int = 10000  # their length (the DeepMind code's)
    budget_every: int = 500  # evaluate their snapshots every this many epochs (a multiple of 500, how often they are kept)
    budget_train: bool = False  # train the budget runs here if unfinished: the smoke profile's tiny ones; the full profile reads the campaign's
    budget_horizon: int = 100  # the budget runs' horizon, a multiple of the recipe's unroll 20: the recipe's (the paper's) 100; only a smoke that trains its own shrinks it
    budget_valid_instances: int = 20  # MLPs behind each of their validations: the recipe's 20; only a smoke that trains its own shrinks it
    endpoint_lr_grid: list[float] = (0.0001, 0.0003162, 0.001, 0.003162, 0.01, 0.03162, 0.1, 0.3162, 1.0, 3.162, 10.0)  # the endpoints' first-stage rates
    endpoint_decay_to: list[float] = (1.0, 0.3, 0.1, 0.03)  # the decaying baselines' final share of their first rate, tuned (l2l.baselines.DECAY_GRID)
    budget_root: str = "book/results/mnist/runs"  # where the budget runs live (committed); the full profile only reads it
    bootstrap: int = 2000  # bootstrap resamples for 95% intervals drawn per instance
    results_dir: str = "book/results/mnist"  # summary.json, curves, trained weights
    checkpoint_dir: str = ".cache/checkpoints"  # resumable meta-training runs, one folder per run key; not in git

    def check(self):
        _at_least(self, meta_seeds=1, meta_epochs=1, horizon=1, unroll=1, valid_every=1, valid_instances=2, deepmind_seeds=1,
                  eval_instances=2, tune_instances=1, bootstrap=100, long_steps=self.horizon, budget_runs=2, budget_epochs=1, budget_every=500)
        _at_least(self, budget_horizon=PAPER_MNIST_META["unroll"], budget_valid_instances=2)
        if self.budget_horizon % PAPER_MNIST_META["unroll"]:
            raise ParameterError(f"Mnist.budget_horizon must be a multiple of the recipe's unroll {PAPER_MNIST_META['unroll']}, got {self.budget_horizon}")
        if not self.budget_train and (self.budget_horizon, self.budget_valid_instances) != (PAPER_MNIST_META["horizon"], 20):
            raise ParameterError(f"Mnist.budget_horizon {self.budget_horizon} and budget_valid_instances {self.budget_valid_instances} describe runs the "
                                 "campaign never trains (its recipe: 100 and 20); set them back, or set budget_train: true to train such runs here")
        if self.budget_every % 500:
            raise ParameterError(f"Mnist.budget_every must be a multiple of 500 (the budget runs keep a snapshot every 500 epochs), got {self.budget_every}")
        if not self.endpoint_decay_to or not all(0 < d <= 1 for d in self.endpoint_decay_to):
            raise ParameterError(f"Mnist.endpoint_decay_to needs shares in (0, 1], got {list(self.endpoint_decay_to)}")
        if not self.lr_grid or min(self.lr_grid) <= 0:
            raise ParameterError(f"Mnist.lr_grid needs positive rates, got {list(self.lr_grid)}")
        if not self.endpoint_lr_grid or min(self.endpoint_lr_grid) <= 0:
            raise ParameterError(f"Mnist.endpoint_lr_grid needs positive rates, got {list(self.endpoint_lr_grid)}")


MNIST_SETUP = "MNIST MLP 784-20-10 sigmoid, the paper's recipe"


BUDGET_ROOT = "book/results/mnist/runs"  # committed: small checkpoints and snapshots of the budget runs


def mnist_paper(seed=0, epochs=10000, clip_norm=0.0, splits=None, streams="counter", horizon=100, valid_instances=20):
    """The paper's MNIST recipe (LogAndSign p = 10, output scale 0.1, one MLP per epoch, 100 steps in
    unrolls of 20, Adam at 1e-3), selected on 20 held-out MLPs by the mean loss over the horizon,
    with the weights kept every 500 epochs for the budget curve. `horizon` and `valid_instances` are the
    recipe's unless a smoke shrinks them (other values are other runs: they are in the run's key)."""
    from l2l import data, learned_optimizer, meta, problems

    splits = splits or data.mnist_splits()
    # streams="counter" (the default here): the first two budget runs started before seeds were keyed
    # (l2l.rollout.generator), and keep the streams they started with, so their checkpoints resume; runs 0 and 1
    # thus draw their MLPs and minibatches one Philox block apart. They differ in clipping, so the book reads them
    # as two settings, not two replicates. The replicated campaign (mnist_budget) uses keyed streams.
    config = meta.MetaConfig(seed=seed, epochs=epochs, batch=1, **{**PAPER_MNIST_META, "horizon": horizon}, clip_norm=clip_norm,
                             valid_every=100, valid_instances=valid_instances, checkpoint_every=50, select_on="mean", snapshot_every=500, streams=streams)
    return Recipe(problems.MLP(splits["budget_meta_train"]), problems.MLP(splits["budget_valid"]),
                  learned_optimizer.LSTMConfig(**PAPER_LSTM), config)


def mnist_budget(seed=0, epochs=10000, splits=None, horizon=100, valid_instances=20):
    """The budget campaign's replicates (issue 31): the paper's recipe at the DeepMind code's 10,000 epochs, one run per
    seed, each on its own keyed streams (training MLPs, minibatches and validation independent across seeds).
    No meta-gradient clipping: the DeepMind code's meta-optimiser (Adam at 1e-3) clips nothing, and the one unclipped
    budget run of the counter-seeded pair (mnist_paper seed 0) trained its 10,000 epochs without a non-finite step."""
    return mnist_paper(seed=seed, epochs=epochs, clip_norm=0.0, splits=splits, streams="keyed", horizon=horizon, valid_instances=valid_instances)


def mnist_panel(split, name="base", title="MNIST, MLP 784-20-10 sigmoid", horizon=100, long_steps=200, train="test_train", heldout="test_heldout",
                tune="valid", **architecture):
    """A test panel of the MNIST chapter: every optimiser tested on `train` images to `long_steps`, measured on
    `heldout`, tuned on `tune` for the horizon; reported at the horizon and at long_steps."""
    from l2l import experiment, problems

    return experiment.Panel(name, title, problems.MLP(split[train], **architecture), problems.MLP(split[tune], **architecture),
                            tune_steps=horizon, steps=long_steps, report_steps=tuple(sorted({horizon, long_steps})), heldout=split[heldout])



# Pre-registered (book/preregistration.md): fixed before the runs that answer them finished.
ENDPOINTS = (
    Endpoint("mnist", "primary", f"{MNIST_SETUP}: final training loss at step 100", "final", 100, "lstm_budget", BASELINES + SCHEDULED, 10000, 5, True),
    Endpoint("mnist", "step200", f"{MNIST_SETUP}: training loss at step 200 (twice the horizon)", "final", 200, "lstm_budget", BASELINES + SCHEDULED, 10000, 5, False),
    Endpoint("mnist", "mean100", f"{MNIST_SETUP}: mean training loss over steps 1-100", "mean", 100, "lstm_budget", BASELINES + SCHEDULED, 10000, 5, False),
    Endpoint("mnist", "heldout100", f"{MNIST_SETUP}: held-out test loss at step 100", "heldout_loss", 100, "lstm_budget", BASELINES + SCHEDULED, 10000, 5, False),
    Endpoint("mnist", "accuracy100", f"{MNIST_SETUP}: held-out accuracy at step 100 (higher is better: the difference is reversed)", "accuracy", 100, "lstm_budget",
             BASELINES + SCHEDULED, 10000, 5, False),
    Endpoint("mnist", "nag100", f"{MNIST_SETUP}: final training loss at step 100 against tuned NAG alone", "final", 100, "lstm_budget", ("nag",), 10000, 5, False),
    Endpoint("mnist", "adam100", f"{MNIST_SETUP}: final training loss at step 100 against tuned ADAM alone", "final", 100, "lstm_budget", ("adam",), 10000, 5, False),
    Endpoint("mnist", "time100", f"{MNIST_SETUP}: training loss at equal wall-clock time (the LSTM's 100 steps)", "time", 100, "lstm_budget", BASELINES + SCHEDULED, 10000, 5, False),
)


def budget_endpoints(params, splits, runs, cache_dir=None, log=print, grid=None):
    """The MNIST chapter's pre-registered endpoints (ENDPOINTS), read from the budget campaign's finished runs.

    runs: the mnist_budget runs (MetaResults or saved runs, in seed order), each at its best-by-validation weights;
    run k meets the baselines on test seed k. Every baseline of the endpoints (the four of the paper and the scheduled
    NAG and ADAM, their schedules ending at 100 or 200 steps) is tuned on the chapter's tuning images for each step and
    metric, on params.tune_instances MLPs; the test panel trains params.eval_instances MLPs per seed on the chapter's
    test images to 200 steps, measured on the held-out images. Returns (the protocol result, endpoint name -> its
    reading by l2l.experiment.read_endpoint). grid: the baselines' first-stage rates (default l2l.evaluate.LR_GRID)."""
    from l2l import evaluate, experiment

    steps = sorted({e.step for e in ENDPOINTS})
    panel = mnist_panel(splits, "budget_endpoints", "MNIST, MLP 784-20-10 sigmoid: the 10,000-epoch runs", horizon=min(steps), long_steps=max(steps))
    baselines = tuple(dict.fromkeys(b for e in ENDPOINTS for b in e.against))
    decay_to = tuple(float(d) for d in params.endpoint_decay_to)  # DECAY_GRID's by default, so the full profile's panel key is unchanged
    scheduled = {name: {**grids, "decay_to": decay_to} for name, grids in evaluate.scheduled_grids(*steps).items()}
    result = experiment.run_protocol(panel, {"lstm_budget": list(runs)}, instances=params.eval_instances, seeds=list(range(len(runs))),
                                     tune_instances=params.tune_instances, baselines=baselines,
                                     extra={**evaluate.EXTRA_GRIDS, **scheduled}, learned_name="lstm_budget",
                                     cache_dir=cache_dir, log=log, grid=grid or evaluate.LR_GRID)
    # The budget the runs were trained at, as measured (the smoke profile's are tiny): the sentence says when it is
    # short of the pre-registered one.
    epochs = min(len(getattr(r, "history", ())) or params.budget_epochs for r in runs)  # saved runs keep no history
    readings = {e.name: {**experiment.read_endpoint(result, e), "meta_epochs": epochs, "budget": budget_words(epochs),
                         "preregistered_epochs": e.meta_epochs} for e in ENDPOINTS}
    return result, readings


# -- the chapter's own code ------------------------------------------------------------------------------------------

# The paper's Figure 3 at step 100, read off the figure by eye (log scale, about +-25%): literature values printed beside
# ours, never compared with them as measurements. Its SGD and RMSprop curves sit above these and were not read.
PAPER_FIGURE3_STEP100 = {"lstm": 0.25, "nag": 0.33, "adam": 0.36}


def budget_runs(p, split, log=print):
    """The budget campaign's runs (mnist_budget seeds 0..p.budget_runs-1), each at its best-by-validation weights:
    read finished from p.budget_root (chapters.base.finished_runs names any unfinished one and its command), or, with
    p.budget_train (the smoke profile), trained there first."""
    from l2l.chapters.base import finished_runs, recipe_trainer

    seeds = list(range(p.budget_runs))
    size = {"epochs": p.budget_epochs, "splits": split, "horizon": p.budget_horizon, "valid_instances": p.budget_valid_instances}
    if p.budget_train:
        for seed in seeds:
            recipe_trainer(mnist_budget(seed=seed, **size), p.budget_root).run(log=log)
    return finished_runs(mnist_budget, "mnist_budget", seeds, p.budget_root, **size)


def save_budget_weights(runs, results_dir):
    """Each budget run's best weights as results_dir/lstm_budget_seed<k>.weights.h5 with its provenance (what
    `python -m l2l.pretrained publish mnist` chooses from, by validation)."""
    import os

    from l2l import learned_optimizer

    for seed, run in enumerate(runs):
        learned_optimizer.save_weights(os.path.join(results_dir, f"lstm_budget_seed{seed}.weights.h5"), run.meta_params, run.lstm_config,
                                       chapter="mnist", trained_on="MNIST train[:50000] (budget split), MLP 784-20-10 sigmoid, 100 steps",
                                       seed=seed, best_epoch=run.best_epoch, best_valid=run.best_valid, epochs=len(run.history), status=run.status,
                                       run_key=run.key)


def campaign_curve(p, runs, panel, step, baselines):
    """The budget campaign over meta-training: at each snapshot epoch (a multiple of p.budget_every) that every run
    kept, run k's snapshot trains test seed k's MLPs (as the endpoints pair them), read over runs: {"epochs",
    "snapshots": [{"final", "mean"} over runs], "baselines": name -> {"final", "mean"} over the same seeds}.
    baselines: name -> factory(seed). Empty epochs where no snapshot is common to every run."""
    import os

    from l2l import evaluate, learned_optimizer, run_folder, stats
    from l2l.experiment import metric_values

    kept = [run_folder.snapshots_in(os.path.join(p.budget_root, run.key)) for run in runs]
    epochs = sorted(e for e in set.intersection(*(set(k) for k in kept)) if e % p.budget_every == 0) if kept else []
    seeds = list(range(len(runs)))
    rows = []
    for e in epochs:
        made = {f"run{k}": (lambda s, path=kept[k][e]: learned_optimizer.learned(learned_optimizer.load_weights(path)[0], runs[0].lstm_config))
                for k in seeds}
        per_run = {m: [] for m in ("final", "mean")}
        for k in seeds:  # run k on test seed k only
            curves = evaluate.evaluate(panel.problem, {"lstm": made[f"run{k}"]}, step, p.eval_instances, [k]).curves["lstm"]
            for m in per_run:
                per_run[m].append(metric_values(curves, step, m)[0])
        rows.append({m: stats.within(stats.over_runs(v), "loss") for m, v in per_run.items()})
    curves = evaluate.evaluate(panel.problem, baselines, step, p.eval_instances, seeds).curves if baselines else {}
    return {"epochs": epochs, "snapshots": rows,
            "baselines": {n: {m: stats.within(stats.over_runs(metric_values(c, step, m)), "loss") for m in ("final", "mean")} for n, c in curves.items()}}


def endpoint_markdown(readings, unit="MLPs"):
    """(the primary endpoint's sentence, the secondaries as Markdown bullets), in ENDPOINTS' order."""
    from l2l import experiment

    by_name = {e.name: e for e in ENDPOINTS}
    primary = [experiment.endpoint_sentence(readings[e.name], e, unit) for e in ENDPOINTS if e.primary]
    secondary = [f"- {experiment.endpoint_sentence(readings[e.name], by_name[e.name], unit)}" for e in ENDPOINTS if not e.primary]
    return " ".join(primary), "\n".join(secondary)


def result_figure(result, curve, step=100):
    """The chapter's headline figure: left, the budget runs' loss curves against every tuned baseline (each tuned for
    the loss at `step`), to the panel's end; right, the campaign's loss at `step` over meta-training epochs, mean over
    runs with its 95% interval, against the best tuned NAG and ADAM lines."""
    import matplotlib.pyplot as plt
    import numpy as np

    from l2l import experiment, plots

    fig, (left, right) = plt.subplots(1, 2, figsize=(12.5, 4.2))
    experiment.protocol_figure(result, step, objective="final", ax=left, title="The budget runs' LSTMs on the test MLPs")
    left.axvline(step, color="grey", linestyle=":")
    if curve["epochs"]:
        means = np.array([r["final"]["mean"] for r in curve["snapshots"]])
        errors = [means - [r["final"]["ci95"][0] for r in curve["snapshots"]], [r["final"]["ci95"][1] for r in curve["snapshots"]] - means]
        right.errorbar(curve["epochs"], means, yerr=errors, marker="o", capsize=3, color=plots.colour("lstm"), label="LSTM, over runs")
    for name, value in curve["baselines"].items():
        right.axhline(value["final"]["mean"], color=plots.colour(name), linestyle="--", label=f"{plots.label(name)}, tuned")
    right.set(xlabel="meta-training epoch", ylabel=f"loss at step {step}", yscale="log", title="Over meta-training")
    right.legend(frameon=False, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return fig


# -- the chapter's own runs, at 200 epochs -------------------------------------------------------------------------

TRANSFER_PANELS = ("hidden40", "layers2", "relu", "fashion")  # Figure 4: the LSTM transferred, its step multiplier tuned per run


def chapter_runs(p, split, chapter):
    """The chapter's own meta-training runs (label -> seed -> MetaResult): p.meta_seeds with the paper's settings
    (LogAndSign p 10, output scale 0.1) and p.deepmind_seeds with the DeepMind code's (p 5, scale 0.01), each
    p.meta_epochs epochs of one fresh MLP over the horizon, selected by the mean loss over it on validation MLPs."""
    from l2l import experiment, learned_optimizer, meta, problems
    from l2l.paper import DEEPMIND_LSTM

    settings = {"paper": (learned_optimizer.LSTMConfig(**PAPER_LSTM), p.meta_seeds), "deepmind": (learned_optimizer.LSTMConfig(**DEEPMIND_LSTM["mnist"]), p.deepmind_seeds)}
    configs = [meta.MetaConfig(seed=s, epochs=p.meta_epochs, batch=1, horizon=p.horizon, unroll=p.unroll, meta_lr=p.meta_lr, clip_norm=p.clip_norm,
                               valid_every=p.valid_every, valid_instances=p.valid_instances, select_on="mean")
               for s in range(max(p.meta_seeds, p.deepmind_seeds))]
    return {setting: experiment.meta_train_runs(problems.MLP(split["meta_train"]), lstm, configs[:count], p.checkpoint_dir, chapter.results_dir,
                                                f"lstm_{setting}", valid_problem=problems.MLP(split["valid"]), chapter="mnist",
                                                trained_on="MNIST train[:40000], MLP 784-20-10 sigmoid, 100 steps")
            for setting, (lstm, count) in settings.items()}


def chapter_panels(p, split, trained):
    """The base panel (Figure 3), the four transfer panels (Figure 4) and the settings ablation, through the protocol
    with the chapter's paper-settings runs: name -> ProtocolResult."""
    import dataclasses

    from l2l import experiment

    panel = lambda name, title, **options: mnist_panel(split, name, title, horizon=p.horizon, long_steps=p.long_steps, **options)
    panels = {"base": panel("base", "MNIST, MLP 784-20-10 sigmoid"), "hidden40": panel("hidden40", "MNIST, MLP 784-40-10", hidden=(40,)),
              "layers2": panel("layers2", "MNIST, MLP 784-20-20-10", hidden=(20, 20)), "relu": panel("relu", "MNIST, MLP 784-20-10 ReLU", activation="relu"),
              "fashion": panel("fashion", "Fashion-MNIST, MLP 784-20-10 sigmoid", train="fashion_train", heldout="fashion_heldout", tune="fashion_tune")}
    paper, deepmind = list(trained["paper"].values()), list(trained["deepmind"].values())
    cache = f"{p.checkpoint_dir}/panels"  # a finished panel is kept here, so a killed chapter resumes at the next one
    results = {name: experiment.run_protocol(pan, {"lstm": paper}, p.eval_instances, list(range(p.meta_seeds)), p.tune_instances,
                                             tune_learned=name in TRANSFER_PANELS, cache_dir=cache, grid=tuple(p.lr_grid)) for name, pan in panels.items()}
    results["deepmind_settings"] = experiment.run_protocol(
        dataclasses.replace(panels["base"], name="deepmind_settings", title="MNIST: DeepMind settings (LSTM) and paper settings"),
        {"lstm": deepmind, "lstm_paper": paper}, p.eval_instances, list(range(min(p.meta_seeds, p.deepmind_seeds))), p.tune_instances, cache_dir=cache,
        grid=tuple(p.lr_grid))
    return results


def transfer_figure(results, step):
    """Figure 4's four panels in a row of two by two: every optimiser tuned for the final loss at `step`."""
    import matplotlib.pyplot as plt

    from l2l import experiment

    fig, axes = plt.subplots(2, 2, figsize=(12, 8))
    for ax, name in zip(axes.flat, TRANSFER_PANELS):
        experiment.protocol_figure(results[name], step, objective="final", ax=ax)
    fig.tight_layout()
    return fig


def glue_panels(results, p, glue):
    """Glues each panel's tables (at the horizon and at long_steps, six columns) and verdict bullets."""
    from IPython.display import Markdown

    from l2l import experiment

    for name, result in results.items():
        for suffix, step in (("", p.horizon), ("_long", p.long_steps)):
            glue(f"table_{name}{suffix}", Markdown(experiment.protocol_table_at(result, step).to_markdown(index=False)), display=False)
        glue(f"verdicts_{name}", Markdown(experiment.protocol_verdicts(result, "MLPs")), display=False)
