"""The quadratics chapter: its parameters, its pre-registered endpoints and the recipe of its meta-training runs.

Imports no TensorFlow: the code that needs it imports it where it runs."""

import dataclasses

from l2l.chapters.base import BASELINES, ChapterParameters, Endpoint, ParameterError, Recipe, _at_least, budget_words
from l2l.paper import DEEPMIND_LSTM


@dataclasses.dataclass(frozen=True)
class Quadratics(ChapterParameters):
    meta_seeds: int = 5  # meta-training runs with the paper's settings; test seed s uses run s (the run is the unit)
    deepmind_seeds: int = 5  # runs with the DeepMind code's settings: W, y ~ U[0, 1), raw gradients, output scale 1
    meta_epochs: int = 1000  # meta-training epochs per run, each a fresh batch of quadratics (the paper code: 10,000)
    meta_lr: float = 0.001  # learning rate of Adam on the LSTM weights
    clip_norm: float = 0.0  # meta-gradient global-norm clipping; 0: none
    batch: int = 128  # quadratics per meta-training epoch (paper: 128)
    horizon: int = 100  # optimisee steps per epoch, the meta-objective's horizon (paper: 100)
    unroll: int = 20  # steps per truncated-BPTT segment (paper: 20)
    valid_every: int = 20  # epochs between validations, for best-by-validation selection
    preprocess_p: float = 10.0  # p of LogAndSign in the paper-settings runs (paper: 10)
    scale: float = 0.1  # the LSTM output scale in the paper-settings runs (paper: 0.1)
    distribution: str = "normal"  # W, y of the paper-settings panel: N(0, 1) as the paper's text; "uniform": U[0, 1)
    eval_instances: int = 128  # unseen test quadratics per run
    tune_instances: int = 128  # held-out quadratics for tuning (baselines) and selection (LSTM checkpoints)
    long_steps: int = 1000  # test runs go this far past the training horizon
    bootstrap: int = 2000  # bootstrap resamples for the 95% bands of figures drawn per instance
    results_dir: str = "book/results/quadratics"  # summary.json, curves, trained weights
    runs_root: str = ".cache/checkpoints"  # the meta-training runs, one folder per run key; QUADRATICS_ROOT (committed) holds the 10,000-epoch campaign's
    checkpoint_dir: str = ".cache/checkpoints"  # resumable panels (under panels/); not in git

    def check(self):
        _at_least(self, meta_seeds=1, deepmind_seeds=1, meta_epochs=1, batch=1, horizon=1, unroll=1, valid_every=1, eval_instances=2,
                  tune_instances=1, bootstrap=100, long_steps=self.horizon)
        if self.distribution not in ("normal", "uniform"):
            raise ParameterError(f"Quadratics.distribution must be 'normal' (the paper) or 'uniform' (the DeepMind code), got {self.distribution!r}")


QUADRATICS_ROOT = "book/results/quadratics/runs"  # committed: the budget campaign's quadratic runs (10,000 epochs) outlast a session


QUADRATIC_SETTINGS = ("paper", "deepmind")  # the paper's text (W, y ~ N(0, 1), p 10, scale 0.1); the DeepMind code (U[0, 1), raw gradients, scale 1)


def quadratics(setting="paper", seed=0, epochs=10000, params=None):
    """The quadratics chapter's meta-training run of `setting` (QUADRATIC_SETTINGS), built as the chapter builds it from
    `params` (l2l.chapters.Quadratics; default its full profile at `epochs`), so that the chapter at meta_epochs 10,000 and
    checkpoint_dir QUADRATICS_ROOT finds the campaign's runs by their keys (epochs are not in a run's key).
    Checkpoints every 100 epochs; snapshots every 1,000, for the budget curve."""
    from l2l import learned_optimizer, meta, problems

    if setting not in QUADRATIC_SETTINGS:
        raise ValueError(f"unknown quadratics setting {setting!r}; settings: {list(QUADRATIC_SETTINGS)}")
    p = params or Quadratics(meta_epochs=epochs)
    problem, lstm_config = {
        "paper": (problems.Quadratic(distribution=p.distribution), learned_optimizer.LSTMConfig(preprocess_p=p.preprocess_p, scale=p.scale)),
        "deepmind": (problems.Quadratic(distribution="uniform"), learned_optimizer.LSTMConfig(**DEEPMIND_LSTM["quadratic"])),
    }[setting]
    config = meta.MetaConfig(seed=seed, epochs=p.meta_epochs, batch=p.batch, horizon=p.horizon, unroll=p.unroll, meta_lr=p.meta_lr,
                             clip_norm=p.clip_norm, valid_every=p.valid_every, valid_instances=p.tune_instances, select_on="mean",
                             checkpoint_every=100, snapshot_every=1000)
    return Recipe(problem, None, lstm_config, config)



# Pre-registered (book/preregistration.md): fixed before the runs that answer them finished.
ENDPOINTS = (
    Endpoint("quadratics", "paper", "10-d quadratics, W, y ~ N(0, 1) (the paper's text), paper LSTM settings: loss at step 100", "final", 100, "lstm_paper",
             BASELINES, 10000, 5, True),
    Endpoint("quadratics", "deepmind", "10-d quadratics, W, y ~ U[0, 1) (the DeepMind code), its LSTM settings: loss at step 100", "final", 100, "lstm_deepmind",
             BASELINES, 10000, 5, True),
)


# -- the chapter's own code ------------------------------------------------------------------------------------------

PANELS = {"base": "paper", "deepmind": "deepmind"}  # panel -> the recipe setting (QUADRATIC_SETTINGS) whose runs it tests
ENDPOINT_PANEL = {"paper": "base", "deepmind": "deepmind"}  # endpoint -> the panel it is read from
# The paper's Figure 2 at step 100, read off the figure by eye (log scale, about +-25%): literature values printed beside
# ours, never compared with them as measurements. Its SGD, RMSprop and NAG curves were not read.
PAPER_FIGURE2_STEP100 = {"lstm": 0.04, "adam": 0.05}


def meta_train(p, chapter):
    """Both settings' runs (panel -> seed -> MetaResult), each built by the campaign's recipe (quadratics(setting,
    seed, params=p)), so that a run the campaign trained under p.runs_root is found by its key and read, not retrained."""
    from l2l import experiment

    counts = {"base": p.meta_seeds, "deepmind": p.deepmind_seeds}
    out = {}
    for name, setting in PANELS.items():
        recipes = [quadratics(setting, seed=s, params=p) for s in range(counts[name])]
        about = "the paper's text: W, y ~ N(0, 1), LogAndSign p 10, scale 0.1" if setting == "paper" else "the DeepMind code: W, y ~ U[0, 1), raw gradients, scale 1"
        out[name] = experiment.meta_train_runs(recipes[0].problem, recipes[0].lstm_config, [r.meta_config for r in recipes], p.runs_root, chapter.results_dir,
                                               "lstm" if name == "base" else f"lstm_{name}", chapter="quadratics",
                                               trained_on=f"10-d quadratics ||W theta - y||^2, {about}, {p.horizon} steps")
    return out


def run_panels(p, trained):
    """Each setting's panel (unseen quadratics of its distribution, tested to p.long_steps, reported at the horizon, twice
    it and long_steps) through the protocol with its own runs: panel -> ProtocolResult."""
    from l2l import experiment

    steps = tuple(sorted({p.horizon, min(2 * p.horizon, p.long_steps), p.long_steps}))
    results = {}
    for name, setting in PANELS.items():
        problem = quadratics(setting, params=p).problem
        title = "Unseen quadratics (the paper's text)" if setting == "paper" else "Unseen quadratics (the DeepMind code)"
        panel = experiment.Panel(name, title, problem, problem, tune_steps=p.horizon, steps=p.long_steps, report_steps=steps)
        runs = list(trained[name].values())
        results[name] = experiment.run_protocol(panel, {"lstm": runs}, p.eval_instances, list(range(len(runs))), p.tune_instances,
                                                cache_dir=f"{p.checkpoint_dir}/panels")
    return results


def endpoint_readings(p, results):
    """Each pre-registered endpoint read from its panel (the LSTM there is the endpoint's learned optimiser), with the
    budget the runs were trained at: endpoint name -> reading (l2l.experiment.read_endpoint)."""
    import dataclasses

    from l2l import experiment

    out = {}
    for e in ENDPOINTS:
        reading = experiment.read_endpoint(results[ENDPOINT_PANEL[e.name]], dataclasses.replace(e, learned="lstm"))
        reading.update(meta_epochs=p.meta_epochs, budget=budget_words(p.meta_epochs), preregistered_epochs=e.meta_epochs)
        out[e.name] = reading
    return out


def figure2(results, horizon):
    """Figure 2 for both settings side by side: every optimiser tuned for the loss at the horizon, to the horizon, with
    the paper's read values marked at step 100."""
    import matplotlib.pyplot as plt

    from l2l import experiment, plots

    fig, axes = plt.subplots(1, 2, figsize=(12.5, 4.4), sharey=True)
    for ax, name in zip(axes, PANELS):
        experiment.protocol_figure(results[name], horizon, steps=horizon, ax=ax)
        if horizon == 100:
            ax.scatter([100] * len(PAPER_FIGURE2_STEP100), list(PAPER_FIGURE2_STEP100.values()), marker="x", color="black", zorder=5,
                       label="paper's Figure 2 (read by eye)")
            plots.legend_below(ax)
    fig.tight_layout()
    return fig


def long_figure(results, p):
    """Past the training horizon: every optimiser tuned for the loss at long_steps, on a log step axis."""
    import matplotlib.pyplot as plt
    import numpy as np

    from l2l import experiment

    fig, axes = plt.subplots(1, 2, figsize=(12.5, 4.4), sharey=True)
    for ax, name in zip(axes, PANELS):
        experiment.protocol_figure(results[name], p.long_steps, grid=np.unique(np.geomspace(1, p.long_steps, 120).astype(int)), log_x=True, ax=ax)
        ax.axvline(p.horizon, color="grey", linestyle=":")
    fig.tight_layout()
    return fig


def glue_all(results, readings, p, glue):
    """The chapter's glue: each endpoint's sentence (endpoint_<name>), each panel's verdict bullets and its tables at
    every report step (six columns), the equal-wall-clock verdict, the cost figures."""
    from IPython.display import Markdown

    from l2l import experiment

    by_name = {e.name: e for e in ENDPOINTS}
    for name, reading in readings.items():
        glue(f"endpoint_{name}", Markdown(experiment.endpoint_sentence(reading, by_name[name], "quadratics")), display=False)
    for name, result in results.items():
        glue(f"verdicts_{name}", Markdown(experiment.protocol_verdicts(result, "quadratics")), display=False)
        tables = [f"**Step {s}**\n\n" + experiment.protocol_table_at(result, s).to_markdown(index=False) for s in sorted(result.verdicts)]
        glue(f"tables_{name}", Markdown("\n\n".join(tables)), display=False)
    ms = {name: entry["ms_per_step"] for name, entry in results["base"].entries.items()}
    for key, value in {"lstm_ms": f"{ms['lstm']:.2f}", "adam_ms": f"{ms['adam']:.2f}", "cost_ratio": f"{ms['lstm'] / ms['adam']:.1f}",
                       "tuning_seconds": f"{sum(r.tuning_s for r in results.values()) / len(results):.0f}"}.items():
        glue(key, value, display=False)
    glue("verdict_time", Markdown(experiment.protocol_sentence(results["base"], p.horizon, "time", "quadratics")), display=False)
