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

which keeps the run with the best validation loss.
"""

import argparse
import dataclasses
import glob
import json
import math
import shutil
import sys
from pathlib import Path

from l2l import learned_optimizer

HERE = Path(__file__).resolve().parent
REGISTRY = HERE / "registry.json"


def registry():
    return json.loads(REGISTRY.read_text()) if REGISTRY.exists() else {}


def names():
    return sorted(registry())


def info(name):
    entries = registry()
    if name not in entries:
        raise KeyError(f"no pretrained optimiser {name!r}; available: {sorted(entries)}")
    return entries[name]


def load(name):
    """(meta_params, LSTMConfig, registry entry) of a pretrained optimiser."""
    entry = info(name)
    meta_params, config, _ = learned_optimizer.load_weights(str(HERE / entry["file"]))
    return meta_params, config, entry


def publish(name, pattern, summary_path=None):
    """Copies the best-by-validation weights matching `pattern` into the package."""
    paths = sorted(glob.glob(pattern))
    if not paths:
        raise FileNotFoundError(f"no weights files match {pattern!r}: run the chapter first")
    loaded = [(path, *learned_optimizer.load_weights(path)) for path in paths]
    # A run that never validated finitely ranks last (NaN would compare as neither better nor worse).
    valid = lambda item: float(item[3].get("best_valid", math.inf))
    path, _, config, provenance = min(loaded, key=lambda item: valid(item) if math.isfinite(valid(item)) else math.inf)
    summary = json.loads(Path(summary_path).read_text()) if summary_path else {}
    target = f"{name}.weights.h5"
    shutil.copy(path, HERE / target)
    entries = registry()
    entries[name] = {
        "file": target,
        "trained_on": str(provenance.get("trained_on", provenance.get("chapter", "unknown"))),
        "lstm_config": dataclasses.asdict(config),
        "training": {k: (v.item() if hasattr(v, "item") else v) for k, v in provenance.items()},
        "source": {"weights": path, "summary": summary_path, "chapter": summary.get("chapter"),
                   "profile": summary.get("profile"), "commit": summary.get("commit")},
    }
    REGISTRY.write_text(json.dumps(entries, indent=1, sort_keys=True) + "\n")
    return entries[name]


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m l2l.pretrained")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list")
    pub = sub.add_parser("publish")
    pub.add_argument("name")
    pub.add_argument("pattern")
    pub.add_argument("--summary")
    args = parser.parse_args(argv)
    if args.command == "list":
        for name, entry in registry().items():
            print(f"{name}: {entry['trained_on']} (from {entry['source']['weights']}, commit {entry['source']['commit']})")
    else:
        print(json.dumps(publish(args.name, args.pattern, args.summary), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
