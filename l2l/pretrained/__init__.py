"""Learned optimisers trained by the book's chapters, shipped with the package.

    import l2l
    l2l.pretrained.names()                 # ['mnist', 'quadratic', ...]
    meta_params, config, info = l2l.pretrained.load("mnist")
    optimizer = l2l.LearnedOptimizer.from_pretrained("mnist")   # for model.compile

Each entry of registry.json says what the optimiser was trained on, its
preprocessing and scale, a summary of its training and the chapter run
(results file and git commit) that made it. A chapter's weights become an
entry with

    python -m l2l.pretrained publish NAME 'book/results/mnist/lstm_paper_seed*.weights.h5' --summary book/results/mnist/summary.json

which keeps the run with the best validation loss. Its default step
multiplier for Keras (the `learning_rate` that from_pretrained uses unless
told otherwise) is then chosen on held-out Keras models with

    python -m l2l.pretrained calibrate NAME

and recorded in the entry with every ratio it was chosen from. Publishing new
weights drops the old multiplier: it belonged to the old weights (publishing
the same weights again, from a re-executed chapter, keeps it).
"""

import json
import math
from pathlib import Path

# learned_optimizer (TensorFlow) and stats are imported where used: `python -m l2l.pretrained list` answers without them.

HERE = Path(__file__).resolve().parent
REGISTRY = HERE / "registry.json"


def registry():
    return json.loads(REGISTRY.read_text()) if REGISTRY.exists() else {}


def _write_registry(entries):
    """The registry, atomically: a stop mid-write leaves the previous one whole (it names every packaged file)."""
    from l2l.evaluate import write_json

    write_json(REGISTRY, entries, indent=1, sort_keys=True)


def names():
    return sorted(registry())


class UnknownOptimizer(KeyError):
    """A name the registry does not hold."""


def info(name):
    entries = registry()
    if name not in entries:
        raise UnknownOptimizer(f"no pretrained optimiser {name!r}; available: {sorted(entries)}")
    return entries[name]


def load(name):
    """(meta_params, LSTMConfig, registry entry) of a pretrained optimiser."""
    from l2l import learned_optimizer

    entry = info(name)
    meta_params, config, _ = learned_optimizer.load_weights(str(HERE / entry["file"]))
    return meta_params, config, entry


# A packaged optimiser whose every calibrated multiplier left some held-out Keras model's training loss above this
# multiple of default Adam's warns when loaded (the quadratic optimiser's best was 5.8x: 62% on an MNIST convnet).
USABLE_RATIO = 1.5


def calibrated_ratio(name):
    """The worst-case ratio to default Adam's training loss at `name`'s chosen multiplier; None if not calibrated."""
    chosen = info(name).get("keras_default", {})
    tried = chosen.get("tried", {}).get(f"{chosen.get('learning_rate', math.nan):g}")
    return float(tried["worst_ratio"]) if tried else None


# Calibration ratios come from one seed and 200 steps: optimisers within this factor of the best are not told apart.
TIE = 1.05


def best_for_keras():
    """The packaged optimisers whose calibrated worst-case ratio over the held-out Keras models is within TIE of the
    lowest, best first."""
    rated = {name: calibrated_ratio(name) for name in names() if calibrated_ratio(name) is not None}
    if not rated:
        return []
    lowest = min(rated.values())
    return sorted((name for name in rated if rated[name] <= TIE * lowest), key=rated.get)


def keras_warning(name):
    """Why `name` is a poor choice for a Keras model, or None: its calibration found no multiplier within USABLE_RATIO
    of default Adam's training loss on every held-out model."""
    ratio = calibrated_ratio(name)
    if ratio is None or ratio <= USABLE_RATIO:
        return None
    entry, best = info(name), [n for n in best_for_keras() if n != name]
    chosen = entry["keras_default"]
    instead = ("; over the held-out models the packaged optimisers that do best are "
               + ", ".join(f"{n!r} ({calibrated_ratio(n):.3g}x)" for n in best) + " (python -m l2l.pretrained table)") if best else ""
    return (f"pretrained optimiser {name!r} was trained for {entry['trained_on']}: on the held-out Keras models "
            f"({', '.join(sorted(chosen.get('default_adam_training_loss', {})))}) no step multiplier tried came within {USABLE_RATIO}x of "
            f"default Adam's training loss (at its chosen {chosen['learning_rate']:g}, {ratio:.3g}x on the worst model){instead}")


def keras_table():
    """Markdown: every packaged optimiser's calibrated multiplier and, at it, its training loss over default Adam's on
    each held-out Keras model and the worst of them (the calibration's own numbers, from the registry), best first."""
    rows = []
    for name in sorted(names(), key=lambda n: (calibrated_ratio(n) is None, calibrated_ratio(n) or 0.0)):
        chosen = info(name).get("keras_default", {})
        tried = chosen.get("tried", {}).get(f"{chosen.get('learning_rate', math.nan):g}", {})
        rows.append((name, chosen.get("learning_rate"), tried.get("ratios", {}), tried.get("worst_ratio")))
    models = sorted({m for _, _, ratios, _ in rows for m in ratios})
    fmt = lambda v: "not calibrated" if v is None else f"{v:.3g}"
    lines = ["| optimiser | multiplier | " + " | ".join(models) + " | worst |", "|---" * (len(models) + 3) + "|"]
    lines += [f"| `{name}` | {fmt(lr)} | " + " | ".join(fmt(ratios.get(m)) for m in models) + f" | {fmt(worst)} |" for name, lr, ratios, worst in rows]
    return "\n".join(lines)


def default_learning_rate(name):
    """The Keras step multiplier calibrate chose for `name`; 1.0 (as trained) where none was chosen."""
    return float(info(name).get("keras_default", {}).get("learning_rate", 1.0))


# The maintainer's functions live in l2l.pretrained.maintainer; they stay reachable from here, loaded on first use (an
# import here would make the two modules import each other).
_MAINTAINER = ("publish", "calibrate", "choose_multiplier", "calibration_entry", "CALIBRATION_GRID", "main")


def __getattr__(name):
    if name in _MAINTAINER:
        from l2l.pretrained import maintainer

        return getattr(maintainer, name)
    raise AttributeError(f"module 'l2l.pretrained' has no attribute {name!r}")
