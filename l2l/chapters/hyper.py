"""The hyperparameter chapter: its parameters.

Imports no TensorFlow: the code that needs it imports it where it runs."""

import dataclasses

from l2l.chapters.base import ChapterParameters, ParameterError, _at_least, _names_a_seed


@dataclasses.dataclass(frozen=True)
class Hyper(ChapterParameters):
    spec: str = "notebooks/sweeps/mnist.yaml"  # the main study's l2l.sweep spec (the MNIST chapter's MLP)
    second_spec: str = "notebooks/sweeps/quadratic.yaml"  # the fast second study: do its conclusions carry over?
    workers: int = 2  # worker processes per study on this machine, one thread each
    grid_points: int = 2  # values per setting in the two-way grid study of the top two settings: the ends, so its runs fit the two hours
    importance_repeats: int = 20  # bootstrap refits of each importance estimator, for its interval
    best_seeds: int = 3  # meta-training runs of the best configuration found (the run is the unit)
    best_epochs: int = 200  # their budget: the MNIST chapter's, so the best settings meet its paper-settings LSTMs at equal meta-training
    eval_instances: int = 8  # MLPs per run on the MNIST chapter's base test panel
    tune_instances: int = 10  # MLPs on held-out training images for tuning every baseline
    horizon: int = 100  # the test panel's tuning and first reported step (the MNIST chapter's horizon)
    long_steps: int = 200  # test runs go this far (twice the MNIST chapter's horizon)
    mnist_weights: str = "book/results/mnist/lstm_paper_seed{seed}.weights.h5"  # the MNIST chapter's LSTMs (paper settings), compared beside
    results_dir: str = "book/results/hyper"  # the study files (SQLite), summary.json, trials.csv
    checkpoint_dir: str = ".cache/checkpoints/sweeps"  # every trial's meta-training run, one folder per run key; not in git

    def check(self):
        _at_least(self, workers=1, grid_points=2, importance_repeats=2, best_seeds=1, best_epochs=1, eval_instances=2, tune_instances=1, horizon=1, long_steps=self.horizon)
        for name in ("spec", "second_spec"):
            if not getattr(self, name).endswith((".yaml", ".yml")):
                raise ParameterError(f"Hyper.{name} must be the path of an l2l.sweep YAML spec, got {getattr(self, name)!r}")
        _names_a_seed(self)
