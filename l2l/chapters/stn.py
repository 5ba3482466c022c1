"""The spatial-transformer chapter: its parameters.

Imports no TensorFlow: the code that needs it imports it where it runs."""

import dataclasses

from l2l.chapters.base import ChapterParameters, ParameterError, _at_least


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
