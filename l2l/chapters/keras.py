"""The Keras chapter: its parameters.

Imports no TensorFlow: the code that needs it imports it where it runs."""

import dataclasses

from l2l.chapters.base import ChapterParameters, ParameterError, _at_least, _positive_grids


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
        _positive_grids(self, "adam_grid", "multiplier_grid")
