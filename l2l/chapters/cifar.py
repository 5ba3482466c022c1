"""The CIFAR-10 chapter: its parameters, its pre-registered endpoints, its ConvNets and the recipe of its meta-training runs.

Imports no TensorFlow: the code that needs it imports it where it runs."""

import dataclasses

from l2l.chapters.base import BASELINES, ChapterParameters, Endpoint, ParameterError, Recipe, _at_least, _names_a_seed, _positive_grids


@dataclasses.dataclass(frozen=True)
class Cifar(ChapterParameters):
    meta_seeds: int = 3  # meta-training runs of each learned optimiser; test seed s uses run s (the run is the unit)
    meta_epochs: int = 50  # meta-training epochs per run, each one fresh ConvNet over the horizon (what 2 CPU cores allow; see the chapter)
    meta_lr: float = 0.001  # learning rate of Adam on the LSTM weights
    batch_size: int = 128  # the ConvNet's minibatch, in meta-training, every panel and model.fit (paper: 128)
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
    heldout_examples: int = 0  # held-out test images every panel and Keras model is measured on; 0: all (the mirror's 1,000)
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
        _at_least(self, meta_seeds=1, meta_epochs=1, batch_size=1, horizon=1, unroll=1, valid_every=1, valid_instances=2, eval_instances=1, tune_instances=1,
                  subset_factor=1, keras_steps=1, keras_last=1)
        if self.heldout_examples < 0:
            raise ParameterError(f"Cifar.heldout_examples must be >= 0 (0: all held-out images), got {self.heldout_examples}")
        if self.keras_last > self.keras_steps:
            raise ParameterError(f"Cifar.keras_last ({self.keras_last}) cannot exceed keras_steps ({self.keras_steps})")
        if any(f < 2 for f in self.long_factors):
            raise ParameterError(f"Cifar.long_factors must be multiples >= 2 of the horizon, got {list(self.long_factors)}")
        for name in ("cifar5_labels", "cifar2_labels", "sub_labels"):
            labels = getattr(self, name)
            if len(labels) < 2 or len(set(labels)) != len(labels) or not all(0 <= k <= 9 for k in labels):
                raise ParameterError(f"Cifar.{name} needs at least two distinct CIFAR-10 labels in 0..9, got {list(labels)}")
        if len(self.sub_labels) != len(self.cifar5_labels):
            raise ParameterError(f"Cifar.sub_labels ({list(self.sub_labels)}) must be as many as cifar5_labels ({list(self.cifar5_labels)}): "
                                 "lstm_sub and its control lstm_five then differ only in which labels they saw, not in output size")
        shared = sorted(set(self.sub_labels) & (set(self.cifar5_labels) | set(self.cifar2_labels)))
        if shared:
            raise ParameterError(f"Cifar.sub_labels must be held out from both subsets, but {shared} are in cifar5_labels or cifar2_labels")
        _positive_grids(self, "lr_grid", "nag_momenta", "adam_beta1", "keras_adam_grid", "keras_multiplier_grid")
        _names_a_seed(self)


CIFAR_ROOT = "book/results/cifar/runs"  # committed: the CIFAR chapter's meta-training outlasts a session


# lstm_five is lstm_sub's control: two LSTMs meta-trained on 5-way ConvNets as lstm_sub is, but on the CIFAR-5 panel's
# own labels (their meta-training images), so that on that panel the two differ only in whether its labels were seen
# (lstm, meta-trained 10-way, differs in output size too: the confound the budget review found).
CIFAR_LEARNERS = ("lstm", "lstm_one", "lstm_sub", "lstm_five")


def cifar_split(params):
    """The book's CIFAR-10 split (l2l.data.cifar_splits) with its held-out part cut to params.heldout_examples images
    (0: all, the same data object, so every panel's key is unchanged)."""
    from l2l import data, problems

    splits = data.cifar_splits()
    return {**splits, "test_heldout": problems.head(splits["test_heldout"], params.heldout_examples)}


def cifar_images(splits, part, labels=None):
    """A part of the CIFAR split (l2l.data.cifar_splits), on all labels or on a subset of them (relabelled 0..k-1)."""
    from l2l import problems

    return splits[part] if labels is None else problems.label_subset(splits[part], labels)


def cifar_convnet(splits, part, labels=None, batch_size=128):
    """The paper's ConvNet on a part of the CIFAR split, with as many outputs as labels."""
    from l2l import problems

    return problems.ConvNet(cifar_images(splits, part, labels), classes=10 if labels is None else len(labels), batch_size=batch_size)


def cifar(learner="lstm", seed=0, epochs=None, clip_norm=None, params=None, splits=None):
    """The CIFAR chapter's meta-training run of `learner`, built from the chapter's parameters `params`
    (l2l.chapters.Cifar; default: its full profile), so that the chapter and this command file it under
    one run key. lstm: two LSTMs (parameter groups "conv", the convolution kernels, and "other");
    lstm_one: one LSTM for every parameter; lstm_sub: two LSTMs meta-trained on params.sub_labels only; lstm_five: two
    LSTMs meta-trained on params.cifar5_labels (5 outputs, as lstm_sub). Snapshots every 100 epochs, for the budget curve."""
    from l2l import data, learned_optimizer, meta

    if learner not in CIFAR_LEARNERS:
        raise ValueError(f"unknown CIFAR learner {learner!r}; learners: {list(CIFAR_LEARNERS)}")
    p = params or Cifar()
    splits = splits or data.cifar_splits()
    labels = {"lstm_sub": p.sub_labels, "lstm_five": p.cifar5_labels}.get(learner)
    convnet = lambda part: cifar_convnet(splits, part, labels, p.batch_size)
    lstm = learned_optimizer.LSTMConfig(preprocess_p=p.preprocess_p, scale=p.scale)
    config = meta.MetaConfig(seed=seed, epochs=epochs or p.meta_epochs, batch=1, horizon=p.horizon, unroll=p.unroll, meta_lr=p.meta_lr,
                             clip_norm=p.clip_norm if clip_norm is None else clip_norm, valid_every=p.valid_every,
                             valid_instances=p.valid_instances, select_on="mean", checkpoint_every=5, snapshot_every=100)
    return Recipe(convnet("meta_train"), convnet("valid"), lstm if learner == "lstm_one" else {"conv": lstm, "other": lstm}, config)



# Pre-registered (book/preregistration.md): fixed before the runs that answer them finished.
ENDPOINTS = (
    Endpoint("cifar", "two_vs_one", "CIFAR-10 ConvNet: two LSTMs (convolutional and other layers) against one, loss at step 100", "final", 100, "lstm_two",
             ("lstm_one",), 1000, 3, True),
    Endpoint("cifar", "two_vs_best", "CIFAR-10 ConvNet: two LSTMs against the best tuned baseline, loss at step 100", "final", 100, "lstm_two", BASELINES, 1000, 3, False),
    Endpoint("cifar", "one_vs_best", "CIFAR-10 ConvNet: one LSTM against the best tuned baseline, loss at step 100", "final", 100, "lstm_one", BASELINES, 1000, 3, False),
)
