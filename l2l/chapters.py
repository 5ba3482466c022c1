"""Each chapter's parameters: one dataclass per chapter, checked before any compute.

    from l2l.chapters import Quadratics
    p = Quadratics(meta_epochs=50)        # a ParameterError names any bad field and the fix

The runner (`python -m l2l.book`) resolves defaults < profile < overrides
into one of these, so bad values are rejected in a second, before papermill
starts; it then hands every field to the notebook, which rebuilds the same
object with `from_namespace(globals())`. Types come from the annotations
(an int field may be negative where the chapter allows it: its `check` says);
ranges from each class's `check`. This module imports no TensorFlow, so
`python -m l2l.book list` is fast.
"""

import dataclasses
import math
import typing


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


@dataclasses.dataclass(frozen=True)
class Keras(ChapterParameters):
    pretrained: str = "mnist"  # which packaged optimiser to use (l2l.pretrained.names())
    seeds: int = 5  # training runs per optimiser; seed s gives every optimiser the same initial weights and shuffling
    steps: int = 300  # training steps (minibatches) per run
    batch_size: int = 128  # examples per minibatch
    last: int = 20  # the endpoint: mean training loss over the last this many steps (one minibatch is too noisy)
    adam_grid: list[float] = (0.0003, 0.001, 0.003, 0.01, 0.03, 0.1)  # ADAM learning rates tried on the tuning images
    multiplier_grid: list[float] = (0.003, 0.01, 0.03, 0.1, 0.3, 1.0)  # the learned optimiser's step multipliers tried the same way
    mlp_steps: int = 200  # steps of the MNIST chapter's MLP trained through model.fit, for the cross-check
    results_dir: str = "book/results/keras"  # summary.json and curves

    def check(self):
        _at_least(self, seeds=1, steps=1, batch_size=1, last=1, mlp_steps=1)
        if self.last > self.steps:
            raise ParameterError(f"Keras.last ({self.last}) cannot exceed steps ({self.steps})")
        for name in ("adam_grid", "multiplier_grid"):
            values = getattr(self, name)
            if not values or min(values) <= 0:
                raise ParameterError(f"Keras.{name} needs at least one positive value, got {list(values)}")



@dataclasses.dataclass(frozen=True)
class Cifar(ChapterParameters):
    meta_seeds: int = 3  # meta-training runs of each learned optimiser; test seed s uses run s (the run is the unit)
    meta_epochs: int = 50  # meta-training epochs per run, each one fresh ConvNet over the horizon (what 2 CPU cores allow; see the chapter)
    meta_lr: float = 0.001  # learning rate of Adam on the LSTM weights
    clip_norm: float = 0.0  # meta-gradient global-norm clipping; 0: none
    horizon: int = 100  # optimisee steps per epoch, the meta-objective's horizon (the DeepMind code: 100)
    unroll: int = 20  # steps per truncated-BPTT segment (paper: 20)
    valid_every: int = 10  # epochs between validations, for best-by-validation selection
    valid_instances: int = 4  # ConvNets on the selection images behind each validation (selection by mean loss over the horizon)
    preprocess_p: float = 10.0  # LogAndSign's p (the paper's text; the DeepMind code: 5)
    scale: float = 0.1  # the LSTM's output scale (the paper's text for MNIST; the DeepMind code: 0.01)
    long_factors: list[int] = (2, 5)  # CIFAR-10 is also reported at these multiples of the horizon
    subset_factor: int = 2  # CIFAR-5 and CIFAR-2 run to this multiple of the horizon
    cifar5_labels: list[int] = (0, 1, 2, 3, 4)  # the CIFAR-5 panel's labels
    cifar2_labels: list[int] = (0, 1)  # the CIFAR-2 panel's labels
    sub_labels: list[int] = (5, 6, 7, 8, 9)  # LSTM-sub meta-trains on these labels only, none of them in either subset
    eval_instances: int = 1  # ConvNets per run on each test panel
    tune_instances: int = 1  # ConvNets on the selection images for tuning every baseline and multiplier
    lr_grid: list[float] = (0.0001, 0.0003162, 0.001, 0.003162, 0.01, 0.03162, 0.1, 0.3162, 1.0)  # first-stage rates (half-decades); then quarter-decades beside the best
    nag_momenta: list[float] = (0.9, 0.99)  # NAG momenta tuned with the rate
    adam_beta1: list[float] = (0.5, 0.9)  # ADAM beta_1 values tuned with the rate
    mnist_weights: str = "book/results/mnist/lstm_paper_seed{seed}.weights.h5"  # the MNIST chapter's LSTMs (paper settings), for the transfer panel
    keras_steps: int = 200  # steps of the Keras panel (model.fit on the same ConvNet built from Keras layers)
    keras_last: int = 20  # its endpoint: mean training loss over the last this many steps
    keras_adam_grid: list[float] = (0.0003, 0.001, 0.003, 0.01, 0.03)  # ADAM learning rates tried on the selection images
    keras_multiplier_grid: list[float] = (0.1, 0.3162, 1.0, 3.162)  # the LSTM's step multipliers tried the same way
    results_dir: str = "book/results/cifar"  # summary.json, curves, trained weights
    checkpoint_dir: str = "book/results/cifar/runs"  # resumable meta-training runs, one folder per run key; committed: they outlast a session
    panel_dir: str = ".cache/checkpoints/panels"  # finished panels, so a killed chapter resumes at the next one; not in git

    def check(self):
        _at_least(self, meta_seeds=1, meta_epochs=1, horizon=1, unroll=1, valid_every=1, valid_instances=2, eval_instances=1, tune_instances=1,
                  subset_factor=1, keras_steps=1, keras_last=1)
        if self.keras_last > self.keras_steps:
            raise ParameterError(f"Cifar.keras_last ({self.keras_last}) cannot exceed keras_steps ({self.keras_steps})")
        if any(f < 2 for f in self.long_factors):
            raise ParameterError(f"Cifar.long_factors must be multiples >= 2 of the horizon, got {list(self.long_factors)}")
        for name in ("cifar5_labels", "cifar2_labels", "sub_labels"):
            labels = getattr(self, name)
            if len(labels) < 2 or len(set(labels)) != len(labels) or not all(0 <= k <= 9 for k in labels):
                raise ParameterError(f"Cifar.{name} needs at least two distinct CIFAR-10 labels in 0..9, got {list(labels)}")
        shared = sorted(set(self.sub_labels) & (set(self.cifar5_labels) | set(self.cifar2_labels)))
        if shared:
            raise ParameterError(f"Cifar.sub_labels must be held out from both subsets, but {shared} are in cifar5_labels or cifar2_labels")
        for name in ("lr_grid", "nag_momenta", "adam_beta1", "keras_adam_grid", "keras_multiplier_grid"):
            values = getattr(self, name)
            if not values or min(values) <= 0:
                raise ParameterError(f"Cifar.{name} needs at least one positive value, got {list(values)}")
        if "{seed}" not in self.mnist_weights:
            raise ParameterError(f"Cifar.mnist_weights must contain {{seed}} (run k of the MNIST chapter), got {self.mnist_weights!r}")

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
    gn_damping: float = 0.001  # Gauss-Newton's Levenberg-Marquardt damping
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
                  stn_instances=1, stn_long_steps=self.stn_horizon, picture_pairs=1)
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
        if "{seed}" not in self.mnist_weights:
            raise ParameterError(f"Hyper.mnist_weights must contain {{seed}} (run k of the MNIST chapter), got {self.mnist_weights!r}")


@dataclasses.dataclass(frozen=True)
class Beyond(ChapterParameters):
    ablation_seeds: int = 3  # meta-training runs of each technique added alone to the paper's recipe (the run is the unit)
    final_seeds: int = 5  # runs of the combination, and of the paper's recipe (the MNIST chapter's published LSTMs)
    meta_epochs: int = 200  # epochs per run: the MNIST chapter's, so that every row of the ablation meets the paper's recipe at equal epochs
    meta_lr: float = 0.001  # Adam's learning rate on the LSTM's weights (paper)
    clip_norm: float = 0.0  # meta-gradient global-norm clipping; 0: none
    horizon: int = 100  # the paper's training horizon, and the curriculum's first stage
    unroll: int = 20  # steps per truncated-BPTT segment (paper: 20; Chen et al.: 20)
    valid_every: int = 10  # epochs between validations
    valid_instances: int = 20  # MLPs on the selection images behind each validation (selection by the mean loss over the horizon)
    curriculum: list[int] = (100, 200, 500, 1000)  # the curriculum's training horizons (Chen et al. 2020)
    patience: int = 3  # validations without improvement before the curriculum's next stage
    imitation: float = 0.2  # share of epochs that imitate the teacher (Chen et al.: 0.1 to 0.3)
    log_range: float = 3.0  # random rescaling: log c ~ U[-log_range, log_range] per coordinate (RNNprop: 3)
    teacher_instances: int = 10  # MLPs on the selection images that tune ADAM's rate: the teacher and the nominal step
    combined: list[str] = ("inputs", "rescale", "curriculum", "imitation", "nominal")  # the techniques of the combination
    general_seeds: int = 3  # runs of the general optimiser (the combination on a task mixture with no test panel's task)
    general_epochs: int = 300  # their epochs
    eval_instances: int = 8  # MLPs per run on each MLP panel
    tune_instances: int = 10  # MLPs (or networks) on the selection images tuning every baseline and multiplier, per step and metric
    lr_grid: list[float] = (0.0001, 0.0003162, 0.001, 0.003162, 0.01, 0.03162, 0.1, 0.3162, 1.0, 3.162, 10.0)  # baselines' first-stage rates (evaluate.LR_GRID); then quarter-decades beside the best
    nag_momenta: list[float] = (0.5, 0.9, 0.99)  # NAG momenta tuned with the rate (l2l.evaluate.EXTRA_GRIDS)
    adam_beta1: list[float] = (0.5, 0.9)  # ADAM beta_1 values tuned with the rate (l2l.evaluate.EXTRA_GRIDS)
    multiplier_grid: list[float] = (0.1, 0.3162, 1.0, 3.162)  # learned optimisers' step multipliers tried on transfer (l2l.evaluate.MULTIPLIER_GRID)
    calibration_grid: list[float] = (0.01, 0.03, 0.1, 0.3, 1.0)  # the general optimiser's Keras multipliers, first stage (l2l.pretrained.CALIBRATION_GRID)
    report_steps: list[int] = (100, 200, 1000)  # the MNIST MLP panels: baselines re-tuned for each
    relu_steps: int = 1000  # the ReLU MLP panel's steps
    cnn_steps: int = 1000  # the MNIST CNN panel's steps
    cnn_instances: int = 2  # CNNs per run (they run one after another)
    cnn_tune_instances: int = 2  # CNNs on the selection images tuning every baseline and multiplier (10, estimated from the MLP panels: hours of one thread)
    cifar_steps: int = 200  # the CIFAR-10 ConvNet panel's steps (the CIFAR chapter's 2x horizon)
    cifar_instances: int = 1  # ConvNets per run
    cifar_tune_instances: int = 1  # ConvNets tuning every baseline and multiplier, as in the CIFAR chapter (one setting cost 9 min at 10)
    calibration_steps: int = 200  # steps per held-out Keras model when choosing the general optimiser's default multiplier (l2l.pretrained's)
    calibration_refine: bool = True  # then the quarter-decades beside the best multiplier, as l2l.pretrained's (smoke: off, 6 fewer Keras fits)
    heldout_examples: int = 0  # held-out test images each panel and Keras model is measured on; 0: all (MNIST's 10,000, CIFAR-10's 1,000)
    keras_steps: int = 300  # steps of each Keras model trained through model.fit
    keras_last: int = 20  # the Keras verdict's endpoint: mean training loss over the last this many steps
    keras_adam_grid: list[float] = (0.0003, 0.001, 0.003, 0.01, 0.03)  # ADAM rates tried on the selection images for each Keras model
    mnist_weights: str = "book/results/mnist/lstm_paper_seed{seed}.weights.h5"  # the paper's recipe: the MNIST chapter's LSTMs
    results_dir: str = "book/results/beyond"  # summary.json, curves, the packaged general optimiser's candidates
    checkpoint_dir: str = "book/results/beyond/runs"  # resumable meta-training runs; committed: they outlast a session
    panel_dir: str = "book/results/beyond/panels"  # finished panels; committed: the chapter's panels take longer than a session

    def check(self):
        from l2l.recipes import TECHNIQUES

        _at_least(self, ablation_seeds=1, final_seeds=1, meta_epochs=1, horizon=1, unroll=1, valid_every=1, valid_instances=2, patience=1,
                  teacher_instances=1, general_seeds=1, general_epochs=1, eval_instances=2, tune_instances=1, relu_steps=self.horizon,
                  cnn_steps=self.horizon, cnn_instances=1, cnn_tune_instances=1, cifar_steps=1, cifar_instances=1, cifar_tune_instances=1, calibration_steps=20, keras_steps=1, keras_last=1)
        if self.heldout_examples < 0:
            raise ParameterError(f"Beyond.heldout_examples must be >= 0 (0: all held-out images), got {self.heldout_examples}")
        unknown = sorted(set(self.combined) - set(TECHNIQUES))
        if unknown or not self.combined:
            raise ParameterError(f"Beyond.combined names techniques {list(TECHNIQUES)}, at least one; unknown: {unknown}")
        stages = list(self.curriculum)
        if stages[0] != self.horizon or stages != sorted(set(stages)) or any(h % self.unroll for h in stages):
            raise ParameterError(f"Beyond.curriculum must start at horizon ({self.horizon}), rise strictly and hold multiples of unroll ({self.unroll}); got {stages}")
        if self.horizon not in self.report_steps or sorted(self.report_steps) != list(self.report_steps):
            raise ParameterError(f"Beyond.report_steps must rise and include the horizon ({self.horizon}), got {list(self.report_steps)}")
        if not 0 <= self.imitation < 1 or not self.log_range > 0 or self.keras_last > self.keras_steps:
            raise ParameterError("Beyond needs 0 <= imitation < 1, log_range > 0 and keras_last <= keras_steps")
        for name in ("lr_grid", "nag_momenta", "adam_beta1", "multiplier_grid", "calibration_grid", "keras_adam_grid"):
            values = getattr(self, name)
            if not values or min(values) <= 0:
                raise ParameterError(f"Beyond.{name} needs at least one positive value, got {list(values)}")
        if "{seed}" not in self.mnist_weights:
            raise ParameterError(f"Beyond.mnist_weights must contain {{seed}} (run k of the MNIST chapter), got {self.mnist_weights!r}")


@dataclasses.dataclass(frozen=True)
class Benchmarks(ChapterParameters):
    benchmark_file: str = "benchmarks/results.json"  # written by make bench
    results_root: str = "book/results"  # where the chapters wrote their summary.json


# -- pre-registered endpoints ---------------------------------------------------
# Fixed here, and in book/preregistration.md (a test keeps the page equal to endpoints_markdown()), before the
# runs that answer them finish. Each is read by l2l.stats.endpoint_verdict: learned minus the best baseline,
# paired by run; the best baseline is chosen on the tuning split (l2l.experiment.best_baseline), never on test.
PAPER_EPOCHS = 10000  # the DeepMind code's meta-training budget, the denominator every budget is stated against
BASELINES = ("sgd", "rmsprop", "adam", "nag")
SCHEDULED = ("nag_decay", "adam_decay")  # NAG and ADAM with a tuned decaying rate (l2l.optimizers.scheduled)


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


TITLES = {"quadratics": "Quadratic functions", "mnist": "MNIST", "cifar": "CIFAR-10"}  # the chapters' names on the pre-registration page
MNIST_SETUP = "MNIST MLP 784-20-10 sigmoid, the paper's recipe"
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
    Endpoint("quadratics", "paper", "10-d quadratics, W, y ~ N(0, 1) (the paper's text), paper LSTM settings: loss at step 100", "final", 100, "lstm_paper",
             BASELINES, 10000, 5, True),
    Endpoint("quadratics", "deepmind", "10-d quadratics, W, y ~ U[0, 1) (the DeepMind code), its LSTM settings: loss at step 100", "final", 100, "lstm_deepmind",
             BASELINES, 10000, 5, True),
    Endpoint("cifar", "two_vs_one", "CIFAR-10 ConvNet: two LSTMs (convolutional and other layers) against one, loss at step 100", "final", 100, "lstm_two",
             ("lstm_one",), 1000, 3, True),
    Endpoint("cifar", "two_vs_best", "CIFAR-10 ConvNet: two LSTMs against the best tuned baseline, loss at step 100", "final", 100, "lstm_two", BASELINES, 1000, 3, False),
    Endpoint("cifar", "one_vs_best", "CIFAR-10 ConvNet: one LSTM against the best tuned baseline, loss at step 100", "final", 100, "lstm_one", BASELINES, 1000, 3, False),
)


def endpoints(chapter):
    """The endpoints `chapter` reports, in their order."""
    return [e for e in ENDPOINTS if e.chapter == chapter]


def budget_words(meta_epochs, total=PAPER_EPOCHS):
    """How a verdict names its budget: "at 200 of the DeepMind code's 10,000 meta-training epochs (2%)"."""
    return f"at {meta_epochs:,} of the DeepMind code's {total:,} meta-training epochs ({100 * meta_epochs / total:.3g}%)"


def endpoints_markdown():
    """The pre-registration page's list (book/preregistration.md), from ENDPOINTS."""
    lines = []
    for chapter in dict.fromkeys(e.chapter for e in ENDPOINTS):
        lines.append(f"**{TITLES.get(chapter, chapter)}** (`{chapter}`)\n")
        for e in endpoints(chapter):
            against = "the best on the tuning split of " + ", ".join(e.against) if len(e.against) > 1 else e.against[0]
            lines.append(f"- {'Primary' if e.primary else 'Secondary'} `{e.name}`: {e.claim}. {e.learned} minus {against}, "
                         f"{e.runs} runs, {budget_words(e.meta_epochs)}{' or more' if e.meta_epochs < PAPER_EPOCHS else ''}.")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


CHAPTERS = {"quadratics": Quadratics, "mnist": Mnist, "keras": Keras, "cifar": Cifar, "stn": Stn, "hyper": Hyper, "beyond": Beyond, "benchmarks": Benchmarks}
