"""The hand-designed baselines, declared once (TensorFlow-free, so that the chapters' parameters can read it before a
kernel starts): each one's name, how tables and legends call it, and the hyperparameters tuned with its learning rate.
l2l.optimizers pairs every name here with its factory (a test keeps the two equal); l2l.evaluate's grids, the chapters'
baseline lists and l2l.plots' labels are read from this table.

Adding a baseline: a row here and its factory in l2l.optimizers.
"""

from typing import NamedTuple


class Baseline(NamedTuple):
    label: str  # how tables, legends and prose name it
    knobs: dict  # its hyperparameters beyond the learning rate -> the values tune() tries with every rate
    scheduled: bool = False  # a decaying learning rate (its schedule's knobs come from DECAY_GRID, ending at the panel's steps)


# Tuned with the rate: NAG's momentum and ADAM's beta_1 (the grids every committed panel was tuned on: their keys hash them).
TABLE = {
    "sgd": Baseline("SGD", {}),
    "rmsprop": Baseline("RMSprop", {}),
    "adam": Baseline("ADAM", {"beta_1": (0.5, 0.9)}),
    "nag": Baseline("NAG", {"momentum": (0.5, 0.9, 0.99)}),
    "nag_decay": Baseline("NAG, decaying rate", {"momentum": (0.5, 0.9, 0.99)}, scheduled=True),
    "adam_decay": Baseline("ADAM, decaying rate", {"beta_1": (0.5, 0.9)}, scheduled=True),
}
# The scheduled baselines' own knobs, tuned with the rate and the base knob: the last rate as a share of the
# first, and the shape (0 linear, 1 cosine). A 100-step LSTM can implement a decaying step size; these can too.
DECAY_GRID = {"decay_to": (1.0, 0.3, 0.1, 0.03), "cosine": (0.0, 1.0)}

PLAIN = tuple(name for name, b in TABLE.items() if not b.scheduled)  # what every panel tunes
SCHEDULED = tuple(name for name, b in TABLE.items() if b.scheduled)  # what the pre-registered endpoints add
EXTRA_GRIDS = {name: dict(b.knobs) for name, b in TABLE.items() if b.knobs and not b.scheduled}
LABELS = {name: b.label for name, b in TABLE.items()}
