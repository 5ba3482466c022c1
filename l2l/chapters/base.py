"""What every chapter shares: its parameters' dataclass (typed, and checked before any compute), the pre-registered
endpoint, and a recipe (what a meta-training run is built from). Imports no TensorFlow, so `python -m l2l.book list`
is fast.

    from l2l.chapters import Quadratics
    p = Quadratics(meta_epochs=50)        # a ParameterError names any bad field and the fix

The runner (`python -m l2l.book`) resolves defaults < profile < overrides
into one of these, so bad values are rejected in a second, before papermill
starts; it then hands every field to the notebook, which rebuilds the same
object with `from_namespace(globals())`. Types come from the annotations
(an int field may be negative where the chapter allows it: its `check` says);
ranges from each class's `check`.
"""

import dataclasses
import math
import typing
from typing import NamedTuple

from l2l import baselines
from l2l.paper import PAPER_EPOCHS, budget_words  # noqa: F401


class ParameterError(ValueError):
    pass


def _coerce(name, value, kind):
    """value as `kind` (int, float, str, bool, list[...]), or a ParameterError naming the field."""

    def fail():
        shown = getattr(kind, "__name__", str(kind))
        raise ParameterError(f"parameter {name!r} expects {shown}, got {type(value).__name__} {value!r}")

    origin = typing.get_origin(kind)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            fail()
        (inner,) = set(typing.get_args(kind)) - {Ellipsis}
        return origin(_coerce(f"{name}[{i}]", v, inner) for i, v in enumerate(value))
    if kind is bool or isinstance(value, bool):
        if not (kind is bool and isinstance(value, bool)):
            fail()
        return value
    if kind is float:
        if not isinstance(value, (int, float)):
            fail()
        if not math.isfinite(value):  # every float parameter is a rate, a scale or a bound: inf and nan would only fail later, in the kernel
            raise ParameterError(f"parameter {name!r} must be a finite number, got {value!r}")
        return float(value)
    if not isinstance(value, kind):
        fail()
    return value


@dataclasses.dataclass(frozen=True)
class ChapterParameters:
    profile: str = "full"  # "full" is what the book shows; other profiles live in notebooks/profiles.yaml

    def __post_init__(self):
        hints = typing.get_type_hints(type(self))
        for field in dataclasses.fields(self):
            object.__setattr__(self, field.name, _coerce(field.name, getattr(self, field.name), hints[field.name]))
        self.check()
        _meta_training_rules(self)

    def check(self):
        """Ranges and relations between fields; raise ParameterError with the fix."""

    @classmethod
    def from_namespace(cls, namespace):
        """The parameters found in `namespace` (a notebook's globals()), defaults for the rest."""
        return cls(**{f.name: namespace[f.name] for f in dataclasses.fields(cls) if f.name in namespace})

    def as_dict(self):
        return {f.name: (list(v) if isinstance(v := getattr(self, f.name), tuple) else v) for f in dataclasses.fields(self)}


# Fields that reach l2l.meta.MetaConfig (or the LSTM) keep their names in every chapter; their rules are checked here, once,
# so that a bad value fails in a second rather than 17-26 s into the kernel, where MetaConfig would raise.
POSITIVE = ("meta_lr", "preprocess_p", "scale")  # Adam's rate on the LSTM, LogAndSign's p, the LSTM's output scale


NON_NEGATIVE = ("clip_norm",)  # 0: no clipping


SEGMENTS = (("horizon", "unroll"), ("stn_horizon", "stn_unroll"))  # a horizon must split into whole truncated-BPTT segments


def _meta_training_rules(params):
    cls, names = type(params).__name__, {f.name for f in dataclasses.fields(params)}
    for name in POSITIVE:
        if name in names and not getattr(params, name) > 0:
            raise ParameterError(f"{cls}.{name} must be > 0, got {getattr(params, name)}")
    for name in NON_NEGATIVE:
        if name in names and getattr(params, name) < 0:
            raise ParameterError(f"{cls}.{name} must be >= 0 (0: none), got {getattr(params, name)}")
    for horizon, unroll in SEGMENTS:
        if {horizon, unroll} <= names and getattr(params, unroll) >= 1 and getattr(params, horizon) % getattr(params, unroll):
            raise ParameterError(f"{cls}.{horizon} ({getattr(params, horizon)}) must be a multiple of {unroll} ({getattr(params, unroll)}): "
                                 f"truncated backpropagation splits the horizon into whole segments; try {unroll} "
                                 f"{max(d for d in range(1, getattr(params, unroll) + 1) if getattr(params, horizon) % d == 0)}")


def _at_least(params, **minimums):
    bad = [f"{name} >= {low} (got {getattr(params, name)})" for name, low in minimums.items() if getattr(params, name) < low]
    if bad:
        raise ParameterError(f"{type(params).__name__} needs {', '.join(bad)}")


# Fixed here, and in book/preregistration.md (a test keeps the page equal to endpoints_markdown()), before the
# runs that answer them finish. Each is read by l2l.stats.endpoint_verdict: learned minus the best baseline,
# paired by run; the best baseline is chosen on the tuning split (l2l.experiment.best_baseline), never on test.


BASELINES = baselines.PLAIN  # ("sgd", "rmsprop", "adam", "nag"), declared in l2l.baselines


SCHEDULED = baselines.SCHEDULED  # NAG and ADAM with a tuned decaying rate (l2l.optimizers.scheduled)


@dataclasses.dataclass(frozen=True)
class Endpoint:
    chapter: str  # the chapter that reports it
    name: str  # its key in that chapter's summary.json
    claim: str  # what it measures, in words
    metric: str  # "final": loss at the step; "mean": mean loss over steps 1..step; "heldout_loss", "accuracy"; "time": equal wall-clock
    step: int  # the optimisee step it is read at
    learned: str  # the learned optimiser (its runs are the replicates)
    against: tuple  # the baselines; the comparison is with the best of them on the tuning split
    meta_epochs: int  # the meta-training budget it is read at (at least)
    runs: int  # independent meta-training runs, one per test seed
    primary: bool  # primary: the chapter's answer; the others are secondary (exploratory)


class Recipe(NamedTuple):
    problem: object
    valid_problem: object
    lstm_config: object
    meta_config: object


def _positive_grids(params, *names):
    """Each named grid holds at least one value and only positive ones (rates, momenta, multipliers)."""
    for name in names:
        values = getattr(params, name)
        if not values or min(values) <= 0:
            raise ParameterError(f"{type(params).__name__}.{name} needs at least one positive value, got {list(values)}")


def _names_a_seed(params, name="mnist_weights"):
    """A path pattern of another chapter's weights holds {seed}: run k of that chapter."""
    if "{seed}" not in getattr(params, name):
        raise ParameterError(f"{type(params).__name__}.{name} must contain {{seed}} (run k of the MNIST chapter), got {getattr(params, name)!r}")


def recipe_trainer(recipe, root):
    """The MetaTrainer of a Recipe, its checkpoints under root: the same run key as the chapter that builds it."""
    from l2l import meta

    return meta.MetaTrainer(recipe.problem, recipe.lstm_config, recipe.meta_config, checkpoint_root=root, valid_problem=recipe.valid_problem)


def finished_runs(make, name, seeds, root, **options):
    """The MetaResults (best-by-validation weights) of recipe `make`'s runs (named `name` for the command) for `seeds`,
    each finished: what a chapter reads from a campaign trained in the background. Read only (nothing in the run
    folders is written). A run that is not finished is named with its progress and the command that finishes it,
    before any compute."""
    runs, unfinished = [], []
    for seed in seeds:
        run = recipe_trainer(make(seed=seed, **options), root)
        done = int(run.state.epoch.numpy())
        if done < run.config.epochs:
            unfinished.append(f"seed {seed} at epoch {done} of {run.config.epochs} (python -m l2l.recipes train {name} --seed {seed} --threads 1)")
        else:
            runs.append(run.result())
    if unfinished:
        raise ValueError(f"{name}: runs not finished under {root}: " + "; ".join(unfinished) + ". Finish them first, then run the chapter.")
    return runs
