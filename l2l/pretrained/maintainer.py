"""The maintainer's side of the packaged optimisers: publish a chapter's weights into the package, and calibrate their
default Keras step multiplier on held-out models. Users load them with l2l.pretrained (the registry) and
l2l.LearnedOptimizer.from_pretrained; this module is what writes what those read.

    python -m l2l.pretrained publish NAME 'book/results/mnist/lstm_paper_seed*.weights.h5' --summary book/results/mnist/summary.json
    python -m l2l.pretrained calibrate NAME
"""

import argparse
import dataclasses
import glob
import json
import math
import shutil
import sys
from pathlib import Path

from l2l import pretrained as runtime


def publish(name, pattern, summary_path=None, groups=None):
    """Copies the best-by-validation weights matching `pattern` into the package.

    An optimiser with parameter groups needs `groups`: the name of the rule in
    l2l.keras_optimizer.GROUP_RULES that assigns a Keras variable its group
    (from_pretrained then applies it unless told otherwise).
    """
    if not (isinstance(name, str) and name.isidentifier() and name.isascii()):
        raise ValueError(f"publish needs a plain name (letters, digits and _, not starting with a digit), got {name!r}: "
                         "it names the packaged file l2l/pretrained/NAME.weights.h5 and the registry entry")
    from l2l import learned_optimizer, stats
    from l2l.keras_optimizer import GROUP_RULES

    paths = sorted(glob.glob(pattern))
    if not paths:
        raise FileNotFoundError(f"no weights files match {pattern!r}: run the chapter first")
    loaded = [(path, *learned_optimizer.load_weights(path)) for path in paths]
    grouped = not isinstance(loaded[0][2], learned_optimizer.LSTMConfig)
    if grouped and groups not in GROUP_RULES:
        raise ValueError(f"{paths[0]} has parameter groups {sorted(loaded[0][2])}: name the rule that assigns Keras variables to them "
                         f"(--groups, one of {sorted(GROUP_RULES)})")
    if not grouped and groups is not None:
        raise ValueError(f"{paths[0]} has no parameter groups, so --groups {groups!r} has nothing to assign")
    path, _, config, provenance = min(loaded, key=lambda item: stats.validation_rank(item[3].get("best_valid", math.inf)))  # NaN last
    summary = _read_summary(summary_path) if summary_path else {}
    target = f"{name}.weights.h5"
    entries = runtime.registry()
    # The calibrated Keras multiplier belongs to the weights: it carries over only to the very same weights
    # (a chapter re-executed from the same runs), never to new ones.
    kept = entries.get(name, {}).get("keras_default") if _same_weights(runtime.HERE / target, path) else None
    shutil.copy(path, runtime.HERE / target)
    entries[name] = {
        "file": target,
        "trained_on": str(provenance.get("trained_on", provenance.get("chapter", "unknown"))),
        "lstm_config": {g: dataclasses.asdict(c) for g, c in config.items()} if grouped else dataclasses.asdict(config),
        **({"groups": groups} if grouped else {}),
        "training": {k: (v.item() if hasattr(v, "item") else v) for k, v in provenance.items()},
        "source": {"weights": path, "summary": summary_path, "chapter": summary.get("chapter"),
                   "profile": summary.get("profile"), "commit": summary.get("commit")},
    }
    # A chapter that calibrated these very weights (the same run) files its choice under summary["calibrations"]
    # by run key: it is recorded as it stands, so the registry states the chapter's number without a second calibration.
    chosen = summary.get("calibrations", {}).get(str(provenance.get("run_key")))
    if chosen:
        kept = {**chosen, "source": summary_path}
    if kept:
        entries[name]["keras_default"] = kept
    runtime._write_registry(entries)
    return entries[name]


def _read_summary(path):
    """A chapter's summary.json, refused with its path and the fix when missing or damaged (before anything is copied)."""
    try:
        summary = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"no chapter summary at {path!r}: run the chapter (python -m l2l.book run CHAPTER), "
                                "or pass the summary.json it wrote in book/results/CHAPTER/") from None
    except (json.JSONDecodeError, UnicodeDecodeError, IsADirectoryError) as error:
        raise ValueError(f"{path!r} cannot be read as a chapter summary ({error}): restore it "
                         f"(git checkout -- {path}) or run its chapter again") from None
    if not isinstance(summary, dict):
        raise ValueError(f"{path!r} holds {type(summary).__name__}, not a chapter summary: restore it (git checkout -- {path})")
    return summary


def _same_weights(packaged, candidate):
    """True where the packaged file exists and holds the candidate's meta-parameters and config exactly."""
    import numpy as np

    from l2l import learned_optimizer

    if not Path(packaged).exists():
        return False
    (a, config_a, _), (b, config_b, _) = learned_optimizer.load_weights(str(packaged)), learned_optimizer.load_weights(str(candidate))
    return config_a == config_b and set(a) == set(b) and all(np.array_equal(np.asarray(a[k]), np.asarray(b[k])) for k in a)


CALIBRATION_GRID = (0.01, 0.03, 0.1, 0.3, 1.0)  # half-decades; the best is then refined by quarter-decades


def choose_multiplier(make, steps=200, examples=10000, seeds=(0,), grid=CALIBRATION_GRID, log=print, refine=True):
    """The step multiplier calibrate chooses for a learned optimiser: make(learning_rate) builds it for Keras.

    Each multiplier trains every held-out model (l2l.keras_training.HELD_OUT_MODELS) for `steps` minibatches on
    held-out training images; its score is the worst, over the models, ratio of its training loss (mean of the
    last 20 steps) to that of Keras' default Adam (learning rate 0.001) on the same model, seeds and data. The
    lowest score wins; half-decades first, then (with `refine`) the quarter-decades beside the best. Returns
    (multiplier, every multiplier tried -> its ratios, default Adam's training loss per model).
    """
    import keras

    from l2l import keras_training

    adam = keras_training.final_losses(keras.optimizers.Adam, steps=steps, examples=examples, seeds=seeds)
    tried = {}

    def score(lr):
        losses = keras_training.final_losses(lambda: make(lr), steps=steps, examples=examples, seeds=seeds)
        ratios = {m: losses[m][0] / adam[m][0] for m in losses}
        tried[lr] = {"worst_ratio": max(ratios.values()), "ratios": ratios}
        log(f"learning_rate {lr:g}: training loss / default Adam's {ratios}")
        return tried[lr]["worst_ratio"]

    best = min(grid, key=score)
    for lr in (best / 10 ** 0.25, best * 10 ** 0.25) if refine else ():
        score(float(f"{lr:.3g}"))
    best = min(tried, key=lambda lr: tried[lr]["worst_ratio"])
    return best, tried, {m: v[0] for m, v in adam.items()}


def calibrate(name, steps=200, examples=10000, seeds=(0,), grid=CALIBRATION_GRID, log=print):
    """Chooses `name`'s default Keras step multiplier (choose_multiplier) and records it in the registry."""
    from l2l.keras_optimizer import LearnedOptimizer

    runtime.info(name)  # an unknown name fails here, before any compute
    chosen = choose_multiplier(lambda lr: LearnedOptimizer.from_pretrained(name, learning_rate=lr), steps, examples, seeds, grid,
                               log=lambda line: log(f"{name}: {line}"))
    entries = runtime.registry()
    entries[name]["keras_default"] = calibration_entry(*chosen, steps=steps, examples=examples)
    runtime._write_registry(entries)
    return entries[name]["keras_default"]


def calibration_entry(best, tried, adam, steps=200, examples=10000, commit=None):
    """The registry's record of choose_multiplier's (best, tried, adam) for `steps` minibatches on `examples` images;
    `commit` is the code that chose it (a chapter's, taken when it started), the current one by default."""
    from l2l import keras_training
    from l2l.provenance import provenance

    return {
        "learning_rate": best,
        "chosen_by": (f"lowest worst-case ratio of training loss (last 20 of {steps} steps, batch 128) to Keras' default Adam, "
                      f"over the held-out models {sorted(keras_training.HELD_OUT_MODELS)} on {examples} held-out training images"),
        "tried": {f"{lr:g}": tried[lr] for lr in sorted(tried)},
        "default_adam_training_loss": adam,
        "commit": commit or provenance()["commit"],
    }


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m l2l.pretrained")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list")
    sub.add_parser("table", help="the calibration table the README shows: training loss over default Adam's per held-out Keras model")
    pub = sub.add_parser("publish")
    pub.add_argument("name")
    pub.add_argument("pattern")
    pub.add_argument("--summary")
    pub.add_argument("--groups", help="for an optimiser with parameter groups: the rule in l2l.keras_optimizer.GROUP_RULES")
    cal = sub.add_parser("calibrate", help="choose NAME's default Keras step multiplier on held-out models")
    cal.add_argument("name")
    cal.add_argument("--steps", type=int, default=200)
    args = parser.parse_args(argv)
    try:
        return _command(args)
    except runtime.UnknownOptimizer as error:
        print(f"error: {error.args[0]}", file=sys.stderr)
    except (FileNotFoundError, ValueError) as error:
        if args.command != "publish":
            raise  # raised by calibrate's compute: a fault, shown with its traceback
        print(f"error: {error}", file=sys.stderr)  # publish's input: a missing or damaged weights or summary file, --groups
    return 2


def _command(args):
    if args.command == "list":
        for name, entry in runtime.registry().items():
            lr = entry.get("keras_default", {}).get("learning_rate")
            print(f"{name}: {entry['trained_on']} (from {entry['source']['weights']}, commit {entry['source']['commit']}); "
                  f"Keras learning_rate {lr if lr else '1.0 (not calibrated)'}")
    elif args.command == "table":
        print(runtime.keras_table())
    elif args.command == "calibrate":
        print(json.dumps(calibrate(args.name, steps=args.steps), indent=1))
    else:
        print(json.dumps(publish(args.name, args.pattern, args.summary, args.groups), indent=1))
    return 0
