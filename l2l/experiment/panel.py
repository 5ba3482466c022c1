"""A panel: one comparison (a test problem, where the baselines are tuned, how far the runs go, which steps are reported)."""

import dataclasses

from l2l import optimizers
from l2l.problems import ImageData, Problem

BASELINES = tuple(optimizers.BASELINES)

@dataclasses.dataclass(frozen=True)
class Panel:
    name: str  # the key in summary.json
    title: str  # figure title
    problem: Problem  # the test problem every optimiser trains
    tuning_problem: Problem  # where the baselines' learning rates are tuned: held-out data, never the test data
    tune_steps: int  # the step the baselines are tuned for
    steps: int  # how far the test runs go
    report_steps: tuple  # steps in tables and summary.json
    heldout: ImageData | None = None  # data the optimisee never trains on: held-out loss and accuracy at report_steps
    geometry: bool = False  # an alignment panel: the corner error in pixels and the 1-px success rate of its own instances at report_steps

    def __post_init__(self):
        bad = [s for s in (self.tune_steps, *self.report_steps) if not 0 < s <= self.steps]
        if bad:
            raise ValueError(f"Panel {self.name!r}: steps {bad} are outside 1..{self.steps}")
        if self.geometry and self.heldout is not None:
            raise ValueError(f"Panel {self.name!r}: measures either held-out data or the instances' geometry, not both")

    @property
    def measures(self):
        """The names of what metric() returns, as summary.json entries call them: a loss-like first (lower wins), then a rate."""
        if self.geometry:
            return ("corner_error", "success")
        return getattr(self.problem, "measures", ("heldout_loss", "accuracy"))

    def metric(self):
        """metric(params, instances) -> two arrays [n] at report steps, or None when the panel measures nothing beyond the loss."""
        if self.geometry:
            return lambda params, instances: self.problem.geometry(params, instances)
        if self.heldout is not None:
            return lambda params, instances: self.problem.metrics(params, self.heldout)
        return None

def factories(learned, lrs, problem=None):
    """name -> factory(seed): learned run lists (seed s uses run s mod n) and baselines at their rates.

    problem: where the optimisers will run (its groups, for learned optimisers with parameter groups).
    """
    made = {name: (lambda s, runs=runs: runs[s % len(runs)].optimizer(problem)) for name, runs in learned.items()}
    made.update({name: (lambda s, name=name, lr=lr: optimizers.FACTORIES[name](lr)) for name, lr in lrs.items()})
    return made
