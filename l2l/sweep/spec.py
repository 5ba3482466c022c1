"""Sweep specs: the settings a study may search, their bounds, and checks that name the field and the fix."""

import dataclasses
import math

# setting -> (type, where it goes, smallest allowed value, what it is)
SETTINGS = {
    "meta_lr": (float, "meta", 1e-12, "the meta-optimiser's (Adam's) learning rate"),
    "unroll": (int, "meta", 1, "optimisee steps per truncated-BPTT segment"),
    "horizon": (int, "meta", 1, "optimisee steps per meta-training epoch (a multiple of unroll)"),
    "batch": (int, "meta", 1, "problem instances per meta-iteration"),
    "clip_norm": (float, "meta", 0.0, "meta-gradient global-norm clipping; 0: off"),
    "epochs": (int, "meta", 1, "the meta-training budget"),
    "preprocess_p": (float, "lstm", 0.0, "LogAndSign's p; 0: raw gradients"),
    "scale": (float, "lstm", 1e-12, "the LSTM's output scale"),
    "hidden": (int, "lstm", 1, "units per LSTM layer"),
    "layers": (int, "lstm", 1, "stacked LSTM layers"),
    "seed": (int, "run", 0, "the trial's meta-training seed (a design's replicates); without it, the spec's seed"),
}
# setting -> the largest value a spec may give it: a bound on one trial's memory and time on one machine
# (meta-training keeps hidden x layers x unroll x batch x coordinates floats; hidden 1,024 is 50 times the paper's).
# Rates and scales are not resources: a huge one is a diverging trial, failed with its reason, not an unusable spec.
LARGEST = {"unroll": 1000, "horizon": 100000, "batch": 4096, "epochs": 1000000, "hidden": 1024, "layers": 8}
# Each task's defaults for settings neither searched nor fixed: the paper's.
DEFAULTS = {
    "quadratic": {"meta_lr": 1e-3, "unroll": 20, "horizon": 100, "batch": 128, "clip_norm": 0.0, "epochs": 100,
                  "preprocess_p": 10.0, "scale": 0.1, "hidden": 20, "layers": 2},
    "mnist": {"meta_lr": 1e-3, "unroll": 20, "horizon": 100, "batch": 1, "clip_norm": 0.0, "epochs": 200,
              "preprocess_p": 10.0, "scale": 0.1, "hidden": 20, "layers": 2},
}
TASKS = tuple(DEFAULTS)
OBJECTIVES = ("mean", "final")
SAMPLERS = ("tpe", "grid", "design")  # design: a two-level fractional factorial (l2l.design) x the seed's choices
PRUNERS = ("median", "none")
DIMENSION_KEYS = {"low", "high", "log", "step", "choices"}


class SpecError(ValueError):
    pass


@dataclasses.dataclass(frozen=True)
class Spec:
    name: str  # the study's name in its storage, and of its default SQLite file
    task: str  # "quadratic" (10-d quadratics, seconds a trial) or "mnist" (the MNIST chapter's MLP and splits)
    space: dict  # setting -> {low, high[, log]} (float), {low, high[, step]} (int) or {choices: [...]}
    fixed: dict = dataclasses.field(default_factory=dict)  # settings held at a value; the rest take DEFAULTS[task]
    objective: str = "mean"  # "mean" loss over the horizon or "final" loss, as a ratio to tuned NAG's
    trials: int = 20  # finished trials (complete, pruned, or failed with a reason) at which the study ends
    seed: int = 0  # seeds the sampler, every trial's meta-training and the objective's instances
    sampler: str = "tpe"  # "tpe"; "grid" (every searched setting needs choices); "design" (two choices each, a factorial; seed replicates it)
    pruner: str = "median"  # "median": stop a trial whose validation is worse than the median at that epoch; "none"
    startup_trials: int = 5  # trials the pruner and TPE sample before they act on what they have seen
    valid_every: int = 10  # epochs between the validations the pruner reads
    valid_instances: int = 32  # instances of that validation (MetaConfig.valid_instances)
    objective_instances: int = 32  # held-out instances the objective and tuned NAG are measured on
    budget: int = 0  # meta-updates per trial (one per unroll segment), which sets its epochs; 0: the epochs setting does
    eval_horizon: int = 0  # the step every trial is scored at (NAG tuned for it); 0: each trial's own training horizon


def load_spec(path):
    """A Spec from a YAML file; SpecError names the file, the field and the fix."""
    import yaml

    try:
        with open(path) as f:
            raw = yaml.safe_load(f)
    except OSError as error:
        raise SpecError(f"cannot read the sweep spec {path!r}: {error.strerror}; give the path of a YAML spec (see notebooks/sweeps/)") from None
    except yaml.YAMLError as error:
        raise SpecError(f"{path}: not valid YAML ({str(error).splitlines()[0]}); fix the file") from None
    return spec_from_dict(raw, source=str(path))


def spec_from_dict(raw, source="spec"):
    if not isinstance(raw, dict):
        raise SpecError(f"{source}: a sweep spec is a mapping of fields ({', '.join(f.name for f in dataclasses.fields(Spec))}), got {type(raw).__name__}")
    known = {f.name for f in dataclasses.fields(Spec)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise SpecError(f"{source}: unknown field(s) {unknown}; fields: {sorted(known)}")
    missing = [name for name in ("name", "task", "space") if name not in raw]
    if missing:
        raise SpecError(f"{source}: missing field(s) {missing}")
    spec = Spec(**raw)
    check(spec, source)
    return spec


def check(spec, source="spec"):
    """Every field's type and range, every dimension, and horizon/unroll compatibility."""

    def fail(message):
        raise SpecError(f"{source}: {message}")

    if not isinstance(spec.name, str) or not spec.name.replace("_", "").replace("-", "").isalnum():
        fail(f"name must be letters, digits, '-' or '_', got {spec.name!r}")
    if spec.task not in TASKS:
        fail(f"unknown task {spec.task!r}; tasks: {list(TASKS)}")
    for field, allowed in (("objective", OBJECTIVES), ("sampler", SAMPLERS), ("pruner", PRUNERS)):
        if getattr(spec, field) not in allowed:
            fail(f"{field} must be one of {list(allowed)}, got {getattr(spec, field)!r}")
    for field in ("trials", "valid_every", "valid_instances", "objective_instances"):
        value = getattr(spec, field)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            fail(f"{field} must be a positive integer, got {value!r}")
    for field in ("budget", "eval_horizon"):
        value = getattr(spec, field)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            fail(f"{field} must be a non-negative integer (0: off), got {value!r}")
    if spec.budget and "epochs" in (set(spec.space) | set(spec.fixed)):
        fail("with a budget, each trial's epochs follow from it (budget / (horizon / unroll)): remove epochs from space and fixed")
    if not isinstance(spec.seed, int) or not isinstance(spec.startup_trials, int) or spec.startup_trials < 0:
        fail(f"seed must be an integer and startup_trials a non-negative one, got {spec.seed!r}, {spec.startup_trials!r}")
    if not isinstance(spec.space, dict) or not spec.space:
        fail("space must map at least one setting to its range, e.g. space: {meta_lr: {low: 1.0e-4, high: 1.0e-2, log: true}}")
    if not isinstance(spec.fixed, dict):
        fail(f"fixed must map settings to values, got {spec.fixed!r}")
    unknown = sorted((set(spec.space) | set(spec.fixed)) - set(SETTINGS))
    if unknown:
        fail(f"unknown setting(s) {unknown}; settings: {sorted(SETTINGS)}")
    both = sorted(set(spec.space) & set(spec.fixed))
    if both:
        fail(f"setting(s) {both} are both searched and fixed; keep each in one of space or fixed")
    for name, value in spec.fixed.items():
        _check_value(name, value, fail, "fixed")
    for name, dim in spec.space.items():
        _check_dimension(name, dim, fail)
    if spec.sampler == "grid":
        not_choices = sorted(n for n, d in spec.space.items() if "choices" not in d)
        if not_choices:
            fail(f"the grid sampler needs choices for every searched setting; give choices to {not_choices}")
        if spec.trials > grid_size(spec):
            fail(f"trials ({spec.trials}) exceeds the grid's {grid_size(spec)} points; ask for at most that many")
    if spec.sampler == "design":
        factors = [n for n in spec.space if n != "seed"]
        not_two = sorted(n for n in factors if len(spec.space[n].get("choices", ())) != 2)
        if not_two:
            fail(f"the design sampler needs exactly two choices (low, high) for every searched setting but seed; give them to {not_two}")
        if not 1 <= len(factors) <= 8:
            fail(f"the design sampler takes 1 to 8 settings (a 16-point fractional factorial at most), got {len(factors)}; fix the others")
        if "seed" in spec.space and "choices" not in spec.space["seed"]:
            fail("space.seed lists the replicates' seeds as choices, e.g. seed: {choices: [0, 1]}")
        if spec.trials > grid_size(spec):
            fail(f"trials ({spec.trials}) exceeds the design's {grid_size(spec)} points (factorial points x seeds); ask for at most that many")
    horizons, unrolls = _values(spec, "horizon"), _values(spec, "unroll")
    if horizons is None or unrolls is None:
        fail("horizon and unroll, when searched, need choices (every horizon must be a multiple of every unroll)")
    bad = sorted({(h, u) for h in horizons for u in unrolls if h % u})
    if bad:
        fail(f"every horizon must be a multiple of every unroll; (horizon, unroll) pairs {bad} are not; change their choices")


def _check_value(name, value, fail, where):
    kind, _, low, what = SETTINGS[name]
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) if kind is float else isinstance(value, int) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or value < low:
        fail(f"{where} value {value!r} of {name} ({what}) must be a finite {kind.__name__} >= {low:g}")
    if value > LARGEST.get(name, math.inf):
        fail(f"{where} value {value!r} of {name} ({what}) is above {LARGEST[name]:g}, the most one trial may ask for on one machine; "
             "give a smaller value")


def _check_dimension(name, dim, fail):
    kind = SETTINGS[name][0]
    if not isinstance(dim, dict) or not dim or set(dim) - DIMENSION_KEYS:
        fail(f"space.{name} must be {{low, high[, log | step]}} or {{choices: [...]}}, got {dim!r}")
    if "choices" in dim:
        if set(dim) != {"choices"} or not isinstance(dim["choices"], list) or not dim["choices"]:
            fail(f"space.{name}: choices must be a non-empty list, alone, got {dim!r}")
        if len(set(dim["choices"])) != len(dim["choices"]):
            fail(f"space.{name}: choices {dim['choices']} repeat a value")
        for value in dim["choices"]:
            _check_value(name, value, fail, f"space.{name} choice")
        return
    if "low" not in dim or "high" not in dim:
        fail(f"space.{name} needs low and high (or choices), got {dim!r}")
    for bound in ("low", "high"):
        _check_value(name, dim[bound], fail, f"space.{name}.{bound}")
    if not dim["low"] < dim["high"]:
        fail(f"space.{name}: low ({dim['low']}) must be below high ({dim['high']})")
    if dim.get("log") and dim["low"] <= 0:
        fail(f"space.{name}: a log range needs low > 0, got {dim['low']}")
    if "step" in dim and (kind is float or dim.get("log") or not isinstance(dim["step"], int) or dim["step"] < 1):
        fail(f"space.{name}: step is for integer settings without log, a positive integer; got {dim!r}")


def _values(spec, name):
    """Every value a setting can take in the spec, or None for a range."""
    if name in spec.space:
        return spec.space[name].get("choices")
    return [spec.fixed.get(name, DEFAULTS[spec.task][name])]


def grid_size(spec):
    """The points a grid or design study holds: every combination of choices, or the design's rows x seeds."""
    if spec.sampler == "design":
        return len(design_points(spec))
    return math.prod(len(d["choices"]) for d in spec.space.values() if "choices" in d)


def design_points(spec):
    """A design study's points, each a dict of its settings (seed included): the two-level fractional factorial over
    the searched settings but seed (l2l.design, in the space's order, the first choice the low level), each row once
    per seed choice."""
    from l2l import design

    factors = [n for n in spec.space if n != "seed"]
    rows = design.design_points(design.fractional_factorial(len(factors)), {n: tuple(spec.space[n]["choices"]) for n in factors})
    seeds = spec.space.get("seed", {}).get("choices")
    return [{**row, "seed": seed} for seed in seeds for row in rows] if seeds else rows


# -- a trial ----------------------------------------------------------------

def suggest(trial, spec):
    """The trial's settings: searched ones suggested, the rest fixed or the task's defaults."""
    settings = dict(DEFAULTS[spec.task], **spec.fixed)
    for name, dim in spec.space.items():
        kind = SETTINGS[name][0]
        if "choices" in dim:
            settings[name] = trial.suggest_categorical(name, dim["choices"])
        elif kind is int:
            settings[name] = trial.suggest_int(name, dim["low"], dim["high"], step=dim.get("step", 1), log=bool(dim.get("log")))
        else:
            settings[name] = trial.suggest_float(name, dim["low"], dim["high"], log=bool(dim.get("log")))
    return settings



def dump_spec(spec, path):
    """Writes a spec as YAML (a generated study's record, loadable by load_spec)."""
    import yaml

    with open(path, "w") as f:
        yaml.safe_dump(dataclasses.asdict(spec), f, sort_keys=False)
    return path


def grid_points(spec, name, points):
    """`points` values of a searched setting for a grid: its choices (`points` of them, from the first to the last,
    when there are more), or points spread over its range (log-spaced where the range is log), rounded for integers."""
    import numpy as np

    dim = spec.space[name]
    if "choices" in dim:  # all of them, or `points` of them spread from the first to the last
        choices = list(dim["choices"])
        return choices if points >= len(choices) else [choices[i] for i in sorted({int(round(i)) for i in np.linspace(0, len(choices) - 1, points)})]
    low, high = dim["low"], dim["high"]
    values = np.geomspace(low, high, points) if dim.get("log") else np.linspace(low, high, points)
    if SETTINGS[name][0] is int:
        return sorted({int(round(v)) for v in values})
    return [float(f"{v:.3g}") for v in values]


def grid_spec(spec, around, pair, points=3, name=None):
    """A grid study over two settings, every other setting held at `around` (e.g. the best trial's): the two-way map."""
    a, b = pair
    fixed = {k: v for k, v in around.items() if k not in pair}
    space = {k: {"choices": grid_points(spec, k, points)} for k in pair}
    size = len(space[a]["choices"]) * len(space[b]["choices"])
    return spec_from_dict({**dataclasses.asdict(spec), "name": name or f"{spec.name}_grid", "space": space, "fixed": fixed,
                           "sampler": "grid", "pruner": "none", "trials": size}, source=f"grid over {a} x {b}")
