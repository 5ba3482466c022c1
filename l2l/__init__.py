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
import importlib.abc
import importlib.util
import sys

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


# keras.models.load_model finds LearnedOptimizer by the name it was registered under, so the class must be
# registered before a saved model is opened; `import l2l` promises that. Importing keras here would make every
# TensorFlow-free entry point (python -m l2l.book list, l2l.chapters) pay for TensorFlow, so the registration
# waits until keras is imported, by anyone, and runs once keras and TensorFlow (which import each other) are
# both initialised.
_HOOKED = ("keras", "tensorflow")


def _initialising(name):
    module = sys.modules.get(name)
    return module is not None and getattr(getattr(module, "__spec__", None), "_initializing", False)


def _register_with_keras(finished=None):
    """Imports l2l.keras_optimizer once keras is imported and neither it nor TensorFlow is half-initialised
    (`finished`: the module whose loading just ran to its end, still marked as initialising until it returns)."""
    others = [name for name in _HOOKED if name != finished]
    if "keras" in sys.modules and not any(map(_initialising, others)) and "l2l.keras_optimizer" not in sys.modules:
        importlib.import_module("l2l.keras_optimizer")


class _ThenRegister(importlib.abc.Loader):
    """A loader that runs the module's own, then registers LearnedOptimizer if keras is ready."""

    def __init__(self, inner):
        self.inner = inner

    def create_module(self, spec):
        return self.inner.create_module(spec)

    def exec_module(self, module):
        module.__loader__ = module.__spec__.loader = self.inner
        self.inner.exec_module(module)
        _register_with_keras(finished=module.__name__)


class _AfterKerasImport(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name not in _HOOKED or name in sys.modules:
            return None
        sys.meta_path.remove(self)  # the other finders find the module itself
        try:
            spec = importlib.util.find_spec(name)
        finally:
            sys.meta_path.insert(0, self)
        if spec is not None and spec.loader is not None:
            spec.loader = _ThenRegister(spec.loader)
        return spec


if "keras" in sys.modules:
    _register_with_keras()
elif not any(isinstance(finder, _AfterKerasImport) for finder in sys.meta_path):
    sys.meta_path.insert(0, _AfterKerasImport())
