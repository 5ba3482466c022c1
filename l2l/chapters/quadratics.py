"""The quadratics chapter: its parameters, its pre-registered endpoints and the recipe of its meta-training runs.

Imports no TensorFlow: the code that needs it imports it where it runs."""

import dataclasses

from l2l.chapters.base import BASELINES, ChapterParameters, Endpoint, ParameterError, Recipe, _at_least
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
    checkpoint_dir: str = ".cache/checkpoints"  # resumable meta-training runs, one folder per run key; not in git

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
