"""l2l: learned optimisers (Andrychowicz et al. 2016) in TensorFlow 2.

Modules, flat and each with a test beside it in tests/:
    preprocess  LogAndSign gradient preprocessing
    optimizers  SGD, RMSprop, Adam, NAG as pure init/update pairs
    networks    the coordinatewise LSTM optimiser and its weights files
    problems    optimisees (quadratics), apart from the optimisers
    meta        meta-training by truncated BPTT, checkpointed
    evaluate    one harness for every optimiser, learning-rate tuning, intervals
    data        datasets from $L2L_DATA_DIR or Keras' download
    plots       seaborn figures
    book        the papermill runner for the book's chapters
"""

from l2l.meta import MetaConfig, meta_train
from l2l.networks import LSTMConfig, learned, load_weights, lstm_step, save_weights
from l2l.optimizers import Optimizer, adam, apply_updates, nag, rmsprop, sgd

__version__ = "0.1.0"

from l2l import pretrained
from l2l.keras_optimizer import LearnedOptimizer
