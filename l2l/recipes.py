"""Named meta-training runs that outlive a working session, and a command to train them.

    python -m l2l.recipes train mnist_paper --seed 0 --threads 1          # resumes from book/results/mnist/runs
    python -m l2l.recipes train mnist_paper --seed 1 --clip-norm 1.0
    python -m l2l.recipes status mnist_paper --seed 0                     # epochs done, snapshots, key
    python -m l2l.recipes train mnist_budget --seed 3 --threads 1         # the budget campaign's replicates (keyed streams, no clipping)
    python -m l2l.recipes train quadratics --setting deepmind --seed 4 --threads 1   # its quadratic runs, into book/results/quadratics/runs
    python -m l2l.recipes train cifar --learner lstm_sub --seed 2 --threads 1   # the CIFAR chapter's runs, into book/results/cifar/runs
    python -m l2l.recipes train beyond --variant combined --seed 0 --threads 1  # the beyond chapter's, into book/results/beyond/runs
    python -m l2l.recipes panel beyond --panel cnn --threads 1                 # one of its panels, into book/results/beyond/panels
    python -m l2l.recipes panel beyond --panel cnn --share --threads 1         # a second process sharing that panel's evaluation

A recipe builds exactly what a chapter builds (problem, validation problem,
LSTM config, meta config), so the run key is the same and the chapter reuses
the run, finished or not, from the same checkpoint root. The MNIST budget
runs (the paper's recipe at the DeepMind code's 10,000 epochs) take hours:
they checkpoint every `checkpoint_every` epochs into a folder that is
committed, so any machine continues from the last commit.
"""

import argparse
import dataclasses
import os
import sys

from l2l import provenance

# The chapters' recipes live with their chapters (l2l.chapters.<name>); their names stay importable from here.
from l2l.chapters.base import Recipe  # noqa: F401
from l2l.chapters.beyond import (  # noqa: F401
    BEYOND_PANELS,
    BEYOND_PROTOCOLS,
    BEYOND_ROOT,
    BEYOND_TRAINED_ON,
    BEYOND_VARIANTS,
    KERAS_BATCH,
    KERAS_MODELS,
    TECHNIQUES,
    beyond,
    beyond_counts,
    beyond_keras,
    beyond_learned,
    beyond_panels,
    beyond_protocol,
    beyond_runs,
    beyond_splits,
    keras_images,
    tuned_adam_lr,
)
from l2l.chapters.cifar import CIFAR_LEARNERS, CIFAR_ROOT, cifar, cifar_convnet, cifar_images  # noqa: F401
from l2l.chapters.mnist import BUDGET_ROOT, mnist_budget, mnist_panel, mnist_paper  # noqa: F401
from l2l.chapters.quadratics import QUADRATIC_SETTINGS, QUADRATICS_ROOT, quadratics  # noqa: F401

RECIPES = {"mnist_paper": mnist_paper, "mnist_budget": mnist_budget, "quadratics": quadratics, "cifar": cifar, "beyond": beyond}


ROOTS = {"mnist_paper": BUDGET_ROOT, "mnist_budget": BUDGET_ROOT, "quadratics": QUADRATICS_ROOT, "cifar": CIFAR_ROOT,
         "beyond": BEYOND_ROOT}  # where each recipe's runs live by default


def trainer(name, root=None, **options):
    from l2l.chapters.base import recipe_trainer

    if name not in RECIPES:
        raise SystemExit(f"unknown recipe {name!r}; recipes: {sorted(RECIPES)}")
    return recipe_trainer(RECIPES[name](**options), root or ROOTS[name])


def finished_runs(name, seeds, root=None, **options):
    """chapters.base.finished_runs of a named recipe (its runs under `root`, default its ROOTS entry)."""
    from l2l.chapters.base import finished_runs as finished

    if name not in RECIPES:
        raise SystemExit(f"unknown recipe {name!r}; recipes: {sorted(RECIPES)}")
    return finished(RECIPES[name], name, seeds, root or ROOTS[name], **options)


def snapshots(name, root=BUDGET_ROOT, **options):
    """(run key, epoch -> snapshot path, epochs trained) of a recipe's run, read only: nothing is opened
    for writing, so a chapter can read a run that another process is still training."""
    import json
    import os

    from l2l import meta

    if name not in RECIPES:
        raise ValueError(f"unknown recipe {name!r}; recipes: {sorted(RECIPES)}")
    recipe = RECIPES[name](**options)
    key = meta.run_key(recipe.problem, recipe.lstm_config, recipe.meta_config, recipe.valid_problem)
    folder = os.path.join(root, key)
    try:
        with open(os.path.join(folder, "run.json")) as f:
            trained = len(json.load(f).get("history", []))
    except (OSError, ValueError):
        trained = 0
    return key, meta.snapshots_in(folder), trained


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m l2l.recipes", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["train", "status", "panel"])
    parser.add_argument("recipe", choices=sorted(RECIPES))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=None, help="default: mnist_paper 10,000; cifar the chapter's meta_epochs")
    parser.add_argument("--clip-norm", type=float, default=None, help="meta-gradient global-norm clipping; 0: none (default: the recipe's)")
    parser.add_argument("--learner", choices=CIFAR_LEARNERS, help="cifar only: which of the chapter's learned optimisers")
    parser.add_argument("--variant", choices=BEYOND_VARIANTS, help="beyond only: the paper's recipe, one technique, the combination or the general optimiser")
    parser.add_argument("--setting", choices=QUADRATIC_SETTINGS, help="quadratics only: the paper's text or the DeepMind code")
    parser.add_argument("--panel", choices=BEYOND_PANELS, help="panel, beyond only: compute one of the chapter's panels into its panel_dir")
    parser.add_argument("--profile", default="full", help="panel only: the chapter's profile (notebooks/profiles.yaml) whose parameters to use")
    parser.add_argument("--panel-dir", default=None, help="panel only: where the panel's files go (default: the profile's panel_dir)")
    parser.add_argument("--share", action="store_true",
                        help="panel only: help the process computing the panel with its evaluation, from the last setting backwards; "
                             "start it once that process has logged its distinct settings (it tunes nothing and saves no panel)")
    parser.add_argument("--root", default=None, help=f"checkpoint root (default: {ROOTS}, committed)")
    parser.add_argument("--threads", type=int, default=0, help="TF intra-op threads; 1 leaves a core free beside another job; 0: TF's default")
    args = parser.parse_args(argv)
    if args.threads < 0:
        raise SystemExit(f"--threads must be >= 0 (0: TensorFlow's default), got {args.threads}")
    if args.threads:
        # Through the variable, as the book runner and the sweep do, so that the run's provenance records the limit.
        os.environ[provenance.THREADS_VARIABLE] = str(args.threads)
    provenance.limit_threads()
    if args.command == "panel":
        return panel_command(args)
    if args.share:
        raise SystemExit("--share goes with the panel command, and only with it")
    if (args.learner is not None) != (args.recipe == "cifar"):
        raise SystemExit("--learner goes with the cifar recipe, and only with it")
    if (args.variant is not None) != (args.recipe == "beyond"):
        raise SystemExit("--variant goes with the beyond recipe, and only with it")
    if (args.setting is not None) != (args.recipe == "quadratics"):
        raise SystemExit("--setting goes with the quadratics recipe, and only with it (paper or deepmind)")
    if args.recipe == "mnist_budget" and args.clip_norm is not None:
        raise SystemExit("--clip-norm does not go with mnist_budget: its replicates share one setting, no clipping (use mnist_paper for another)")
    if args.recipe == "quadratics" and args.clip_norm is not None:
        raise SystemExit("--clip-norm does not go with quadratics: its runs are the chapter's, whose clipping is its parameter clip_norm")
    options = {k: v for k, v in {"seed": args.seed, "epochs": args.epochs, "clip_norm": args.clip_norm, "learner": args.learner,
                                 "variant": args.variant, "setting": args.setting}.items() if v is not None}
    if args.recipe == "mnist_paper":
        options.setdefault("clip_norm", 0.0)
    if args.command == "status":
        return status(args.recipe, args.root, **options)
    run = trainer(args.recipe, args.root, **options)
    done = int(run.state.epoch.numpy())
    print(f"{args.recipe} seed {args.seed}: key {run.key}, {done}/{run.config.epochs} epochs, snapshots {sorted(run.snapshots())}, folder {run.checkpoint_dir}")
    if args.command == "train":
        result = run.run(log=lambda line: print(line, flush=True))
        print(f"{result.status}; best epoch {result.best_epoch}, validation {result.best_valid:.4g}", flush=True)
    print(dataclasses.asdict(run.config))
    return 0


def status(name, root, **options):
    """Prints what a recipe's run folder holds, read only: training goes on undisturbed, a missing run stays missing,
    and a damaged checkpoint is named with the one a resume would start from."""
    import os

    from l2l import meta

    recipe = RECIPES[name](**options)
    key = meta.run_key(recipe.problem, recipe.lstm_config, recipe.meta_config, recipe.valid_problem)
    folder = os.path.join(root or ROOTS[name], key)
    report = meta.inspect_run(folder)
    print(f"{name} seed {options.get('seed', 0)}: key {key}, folder {folder}")
    if not report["exists"]:
        print("not started: no folder (the same command with train instead of status starts it)")
        return 0
    damaged = {e: why for e, why in report["checkpoints"].items() if why}
    readable = [e for e, why in report["checkpoints"].items() if not why]
    print(f"{report['trained']}/{recipe.meta_config.epochs} epochs in the newest readable checkpoint"
          + (f" (ckpt-{readable[0]})" if readable else " (none: training starts from scratch)")
          + f"; run.json records {report['history'] if report['history'] is not None else 'no readable'} epochs")
    for epoch, why in damaged.items():
        newer = "newest " if epoch == max(report["checkpoints"]) else ""
        print(f"DAMAGED {newer}checkpoint ckpt-{epoch}: {why}; "
              + (f"training resumes from ckpt-{readable[0]}" if readable else "no readable checkpoint: delete the folder to start over"))
    print(f"snapshots {sorted(report['snapshots'])}")
    return 1 if damaged and not readable else 0


def panel_command(args):
    """`panel beyond --panel NAME`: one of the beyond chapter's panels, computed by the chapter's own code
    (beyond_runs, beyond_panels, beyond_protocol; beyond_keras for "keras"), so that a second process fills the
    chapter's panel cache.
    The meta-training runs are reused from params.checkpoint_dir (resumed, as the chapter would, if unfinished);
    their weights go to a temporary folder, not to the chapter's results."""
    import tempfile

    from l2l import book, chapters, experiment

    if args.recipe != "beyond" or args.panel is None:
        raise SystemExit("panel takes the beyond recipe and --panel, one of " + ", ".join(BEYOND_PANELS))
    if args.share and args.panel == "keras":
        raise SystemExit("--share goes with a protocol panel (" + ", ".join(BEYOND_PROTOCOLS) + "); the keras panel is computed by one process")
    overrides = {"panel_dir": args.panel_dir} if args.panel_dir else {}
    try:
        params = chapters.Beyond(**book.resolve("beyond", args.profile, overrides))
        paper = experiment.saved_runs([params.mnist_weights.format(seed=s) for s in range(params.final_seeds)], "python -m l2l.book run mnist")
    except (chapters.ParameterError, FileNotFoundError) as error:
        raise SystemExit(str(error)) from error
    log = lambda line: print(line, flush=True)
    splits, cifar_splits = beyond_splits(params)
    with tempfile.TemporaryDirectory() as weights:
        runs = {v: list(r.values()) for v, r in beyond_runs(params, splits, weights, log=log).items()}
    if args.panel == "keras":
        keras = beyond_keras(params, experiment.best_run(runs["general"]), splits, cifar_splits, log=log)
        print(f"panel keras: multiplier {keras['multiplier']:g}, {len(keras['models'])} models in {params.panel_dir}", flush=True)
        return 0
    panels = beyond_panels(params, splits, cifar_splits)
    try:
        result = beyond_protocol(args.panel, params, panels, runs, paper, share=args.share, log=log)
    except RuntimeError as error:  # --share before the panel's tuning is done
        raise SystemExit(f"error: {error}") from error
    print(f"panel {args.panel}: " + ("shared its evaluation" if args.share else f"{len(result.entries)} optimisers") + f" in {params.panel_dir}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
