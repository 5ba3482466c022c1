"""Writes this folder: models saved by the per-variable LearnedOptimizer (commit 53b5d22, before the fused step), and
the weights one more epoch gave under that code. Run from the repository root at that commit."""

from pathlib import Path

import keras
import numpy as np

import l2l
from l2l import learned_optimizer

OUT = Path(__file__).resolve().parent
CONFIGS = {
    "paper": learned_optimizer.LSTMConfig(hidden=6),
    "beyond": learned_optimizer.LSTMConfig(hidden=4, preprocess_p=0.0, features="adam", output="tanh", nominal="adam", nominal_lr=0.01),
}

rng = np.random.default_rng(0)
x = rng.normal(size=(64, 5)).astype(np.float32)
y = (x @ rng.normal(size=(5, 3))).argmax(-1)
for name, config in CONFIGS.items():
    keras.utils.set_random_seed(0)
    net = keras.Sequential([keras.Input((5,)), keras.layers.Dense(4, activation="tanh"), keras.layers.Dense(3)])
    net.compile(optimizer=l2l.LearnedOptimizer(learned_optimizer.init_meta_params(config, 0), config, learning_rate=0.5), loss="sparse_categorical_crossentropy")
    net.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    net.save(OUT / f"{name}.keras")
    net.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    np.savez(OUT / f"{name}_after_one_more_epoch.npz", *net.get_weights())
