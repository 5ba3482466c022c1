"""The MNIST chapter: its parameters, its pre-registered endpoints, the paper's MNIST recipe (the budget runs) and its test panels.

Imports no TensorFlow: the code that needs it imports it where it runs."""

import dataclasses

from l2l.chapters.base import BASELINES, SCHEDULED, ChapterParameters, Endpoint, ParameterError, Recipe, _at_least
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
    budget_clip_norms: list[float] = (0.0, 700.0)  # the budget runs (l2l.recipes mnist_paper): run k has seed k and this clipping
    budget_epochs: int = 10000  # their length (the DeepMind code's)
    budget_every: int = 500  # evaluate their snapshots every this many epochs (a multiple of 500, how often they are kept)
    budget_seeds: int = 3  # test seeds per snapshot (eval_instances MLPs each)
    budget_root: str = "book/results/mnist/runs"  # where the budget runs live (committed); the chapter only reads it
    bootstrap: int = 2000  # bootstrap resamples for 95% intervals drawn per instance
    results_dir: str = "book/results/mnist"  # summary.json, curves, trained weights
    checkpoint_dir: str = ".cache/checkpoints"  # resumable meta-training runs, one folder per run key; not in git

    def check(self):
        _at_least(self, meta_seeds=1, meta_epochs=1, horizon=1, unroll=1, valid_every=1, valid_instances=2, deepmind_seeds=1,
                  eval_instances=2, tune_instances=1, bootstrap=100, long_steps=self.horizon, budget_epochs=500, budget_every=500, budget_seeds=1)
        if self.budget_every % 500:
            raise ParameterError(f"Mnist.budget_every must be a multiple of 500 (the budget runs keep a snapshot every 500 epochs), got {self.budget_every}")
        if any(c < 0 for c in self.budget_clip_norms):
            raise ParameterError(f"Mnist.budget_clip_norms must be >= 0 (0: no clipping), got {list(self.budget_clip_norms)}")


MNIST_SETUP = "MNIST MLP 784-20-10 sigmoid, the paper's recipe"


BUDGET_ROOT = "book/results/mnist/runs"  # committed: small checkpoints and snapshots of the budget runs


def mnist_paper(seed=0, epochs=10000, clip_norm=0.0, splits=None, streams="counter"):
    """The paper's MNIST recipe (LogAndSign p = 10, output scale 0.1, one MLP per epoch, 100 steps in
    unrolls of 20, Adam at 1e-3), selected on 20 held-out MLPs by the mean loss over the horizon,
    with the weights kept every 500 epochs for the budget curve."""
    from l2l import data, learned_optimizer, meta, problems

    splits = splits or data.mnist_splits()
    # streams="counter" (the default here): the first two budget runs started before seeds were keyed
    # (l2l.rollout.generator), and keep the streams they started with, so their checkpoints resume; runs 0 and 1
    # thus draw their MLPs and minibatches one Philox block apart. They differ in clipping, so the book reads them
    # as two settings, not two replicates. The replicated campaign (mnist_budget) uses keyed streams.
    config = meta.MetaConfig(seed=seed, epochs=epochs, batch=1, **PAPER_MNIST_META, clip_norm=clip_norm,
                             valid_every=100, valid_instances=20, checkpoint_every=50, select_on="mean", snapshot_every=500, streams=streams)
    return Recipe(problems.MLP(splits["budget_meta_train"]), problems.MLP(splits["budget_valid"]),
                  learned_optimizer.LSTMConfig(**PAPER_LSTM), config)


def mnist_budget(seed=0, epochs=10000, splits=None):
    """The budget campaign's replicates (issue 31): the paper's recipe at the DeepMind code's 10,000 epochs, one run per
    seed, each on its own keyed streams (training MLPs, minibatches and validation independent across seeds).
    No meta-gradient clipping: the DeepMind code's meta-optimiser (Adam at 1e-3) clips nothing, and the one unclipped
    budget run of the counter-seeded pair (mnist_paper seed 0) trained its 10,000 epochs without a non-finite step."""
    return mnist_paper(seed=seed, epochs=epochs, clip_norm=0.0, splits=splits, streams="keyed")


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
    result = experiment.run_protocol(panel, {"lstm_budget": list(runs)}, instances=params.eval_instances, seeds=list(range(len(runs))),
                                     tune_instances=params.tune_instances, baselines=baselines,
                                     extra={**evaluate.EXTRA_GRIDS, **evaluate.scheduled_grids(*steps)}, learned_name="lstm_budget",
                                     cache_dir=cache_dir, log=log, grid=grid or evaluate.LR_GRID)
    return result, {e.name: experiment.read_endpoint(result, e) for e in ENDPOINTS}
