"""Protocol panels on disk: keys (descriptions and weights, never module paths) and atomic JSON + NPZ pairs."""

import json
import os

import numpy as np

from l2l import evaluate, learned_optimizer, meta


def _weights_digest(run):
    """sha256 of a learned run's weights (its kept meta-parameters), or None for something without them."""
    import hashlib

    params = getattr(run, "meta_params", None)
    if params is None:
        return None
    digest = hashlib.sha256()
    for name in sorted(params):
        digest.update(name.encode() + np.asarray(params[name]).tobytes())
    # The same weights under options beyond the paper (a nominal step, a bounded output...) are another optimiser;
    # the paper's options add nothing, so panels cached before those options existed keep their keys.
    config = getattr(run, "lstm_config", None)
    beyond = {g: {k: v for k, v in c.describe().items() if k in learned_optimizer.BEYOND_PAPER}
              for g, c in learned_optimizer.as_groups(config).items()} if config is not None else {}
    if any(beyond.values()):
        digest.update(json.dumps(beyond, sort_keys=True).encode())
    return digest.hexdigest()

def protocol_key(panel, learned, instances, seeds, tune_instances, baselines, extra, learned_name, tune_learned, multiplier_grid, grid=evaluate.LR_GRID):
    """sha256 of everything a run_protocol result depends on: the panel's problems and data, the learned
    runs' weights, the sizes, seeds and grids, and the code version; None when a learned optimiser has
    no weights to hash (then nothing is cached)."""
    import hashlib

    digests = {name: [_weights_digest(r) for r in runs] for name, runs in learned.items()}
    if any(d is None for ds in digests.values() for d in ds):
        return None
    described = {
        "code_version": meta.CODE_VERSION, "name": panel.name, "problem": panel.problem.describe(), "tuning_problem": panel.tuning_problem.describe(),
        "tune_steps": panel.tune_steps, "steps": panel.steps, "report_steps": list(panel.report_steps),
        "heldout": [panel.heldout.name, panel.heldout.fingerprint] if panel.heldout is not None else None,
        "learned": digests, "instances": instances, "seeds": list(seeds), "tune_instances": tune_instances, "baselines": list(baselines),
        "extra": {k: {kk: list(vv) for kk, vv in v.items()} for k, v in extra.items()}, "learned_name": learned_name,
        "tune_learned": tune_learned if isinstance(tune_learned, bool) else sorted(tune_learned), "multiplier_grid": list(multiplier_grid),
        "grid": list(grid), "streams": "keyed",  # test, tuning and minibatch streams keyed by seed (l2l.rollout.generator)
    }
    if panel.geometry:  # added after panels were first cached: absent from the keys of panels without it
        described["geometry"] = True
    return hashlib.sha256(json.dumps(described, sort_keys=True, default=str).encode()).hexdigest()[:16]

def _write_pair(path, plain, curves, metrics):
    """<path>.npz (curves and measures by run and step) and <path>.json (`plain`), atomically, the JSON last:
    its presence says the pair is whole. The temporary files are the writing process's own: two processes
    sharing a panel's evaluation (run_protocol's share) may write the same run at once, and each writes whole."""
    arrays = {f"curves/{run}": values for run, values in curves.items()}
    arrays.update({f"metrics/{run}/{s}/{i}": v for run, by_step in metrics.items() for s, pair in by_step.items() for i, v in enumerate(pair)})
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = f".{os.getpid()}.tmp"
    with open(path + ".npz" + tmp, "wb") as f:
        np.savez(f, **arrays)
    with open(path + ".json" + tmp, "w") as f:
        json.dump(plain, f, allow_nan=True)
    os.replace(path + ".npz" + tmp, path + ".npz")
    os.replace(path + ".json" + tmp, path + ".json")

def _read_pair(path):
    """(plain, curves, metrics) written by _write_pair, or None when missing or unreadable (then it is recomputed)."""
    try:
        with open(path + ".json") as f:
            plain = json.load(f)
        with np.load(path + ".npz", allow_pickle=False) as arrays:
            loaded = {k: arrays[k] for k in arrays.files}
    except (OSError, ValueError, KeyError):
        return None
    curves = {k[len("curves/"):]: v for k, v in loaded.items() if k.startswith("curves/")}
    metrics = {}
    for k, v in loaded.items():
        if k.startswith("metrics/"):
            _, run, step, i = k.split("/")  # run names hold no "/"
            metrics.setdefault(run, {}).setdefault(int(step), [None, None])[int(i)] = v
    return plain, curves, {run: {s: tuple(pair) for s, pair in by_step.items()} for run, by_step in metrics.items()}

def _save_baselines(path, settings, curves, seconds, metrics):
    """The baselines' part of a panel (tuned settings, curves, seconds per step, measures)."""
    _write_pair(path, {"settings": settings, "seconds_per_step": seconds}, curves, metrics)

def _load_baselines(path):
    """(settings, curves, seconds, metrics) saved by _save_baselines, or None when missing or unreadable."""
    read = _read_pair(path)
    if read is None:
        return None
    plain, curves, metrics = read
    return {int(step): by_o for step, by_o in plain["settings"].items()}, curves, plain["seconds_per_step"], metrics

def _save_tuning(path, tuned, seconds, scores=None):
    """`tuned` (int keys: a step, or a run's index) and the seconds its tuning took, under "seconds", as JSON;
    the baselines' scores on the tuning instances (evaluate.tuning_scores) under "scores"."""
    evaluate.write_json(path, {**{str(k): v for k, v in tuned.items()}, "seconds": seconds, **({"scores": scores} if scores else {})})

def _load_scores(path):
    """The tuning scores _save_tuning kept (step -> objective -> name -> score), or None: a file written before they
    were kept, or none."""
    try:
        with open(path) as f:
            scores = json.load(f).get("scores")
        return {int(k): v for k, v in scores.items()} if scores else None
    except (OSError, ValueError, AttributeError, TypeError):
        return None

def _load_tuning(path):
    """(tuned, seconds) saved by _save_tuning, or None when missing or unreadable. A file of a version that
    kept no times gives NaN seconds, so that a resumed tuning reports its time as unknown, never as too short."""
    try:
        with open(path) as f:
            plain = json.load(f)
        seconds = plain.pop("seconds", float("nan"))
        plain.pop("scores", None)
        return {int(k): v for k, v in plain.items()}, seconds
    except (OSError, ValueError, AttributeError):
        return None
