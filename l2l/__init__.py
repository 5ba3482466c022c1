"""l2l: learned optimisers (Andrychowicz et al. 2016) in TensorFlow 2.

Modules, flat and each with a test beside it in tests/:
    preprocess         LogAndSign gradient preprocessing
    optimizers         SGD, RMSprop, Adam, NAG as pure init/update pairs
    learned_optimizer  the coordinatewise LSTM optimiser, its backward pass and weights files
    keras_optimizer    the learned optimiser as a keras.optimizers.Optimizer
    problems           optimisees (quadratics, MLPs, the CIFAR ConvNet) and the Problem contract
    warp               differentiable affine warps of images (the spatial transformer's sampler)
    rollout            running an optimiser on a problem: the one loop
    meta               meta-training by truncated BPTT, runs keyed by hash and checkpointed
    evaluate           one harness for every optimiser, learning-rate tuning
    stats              intervals, paired differences, verdicts
    experiment         the chapter layer: panels, runs, tables, verdicts, summary.json
    keras_training     Keras models for the chapters: per-batch losses, tuning, state size
    data               datasets from $L2L_DATA_DIR or Keras' download
    plots              seaborn figures
    chapters           each chapter's parameters dataclass (no TensorFlow import)
    recipes            named meta-training runs that outlive a session, and their CLI
    sweep              hyperparameter studies of the meta-learner (Optuna), one worker or many
    provenance         versions, commit and hardware of a run
    book               the papermill runner for the book's chapters
"""

import importlib

__version__ = "0.1.0"

# Loaded on first use, so that `python -m l2l.book list` and l2l.chapters
# start without importing TensorFlow.
_EXPORTS = {
    "MetaConfig": "l2l.meta", "meta_train": "l2l.meta",
    "LSTMConfig": "l2l.learned_optimizer", "learned": "l2l.learned_optimizer", "load_weights": "l2l.learned_optimizer",
    "lstm_step": "l2l.learned_optimizer", "save_weights": "l2l.learned_optimizer",
    "Optimizer": "l2l.optimizers", "adam": "l2l.optimizers", "nag": "l2l.optimizers", "rmsprop": "l2l.optimizers", "sgd": "l2l.optimizers",
    "LearnedOptimizer": "l2l.keras_optimizer",
}


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    try:
        return importlib.import_module(f"l2l.{name}")  # l2l.pretrained, l2l.experiment, ...
    except ModuleNotFoundError:
        raise AttributeError(f"module 'l2l' has no attribute {name!r}") from None


def __dir__():
    return sorted(list(globals()) + list(_EXPORTS))
