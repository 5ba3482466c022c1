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
from typing import NamedTuple

from l2l import provenance

BUDGET_ROOT = "book/results/mnist/runs"  # committed: small checkpoints and snapshots of the budget runs


class Recipe(NamedTuple):
    problem: object
    valid_problem: object
    lstm_config: object
    meta_config: object


def mnist_paper(seed=0, epochs=10000, clip_norm=0.0, splits=None, streams="counter"):
    """The paper's MNIST recipe (LogAndSign p = 10, output scale 0.1, one MLP per epoch, 100 steps in
    unrolls of 20, Adam at 1e-3), selected on 20 held-out MLPs by the mean loss over the horizon,
    with the weights kept every 500 epochs for the budget curve."""
    from l2l import data, learned_optimizer, meta, problems

    splits = splits or data.mnist_splits()
    # streams="counter" (the default here): the first two budget runs started before seeds were keyed
    # (l2l.rollout.generator), and keep the streams they started with, so their checkpoints resume; runs 0 and 1
    # thus draw their MLPs and minibatches one Philox block apart. They differ in clipping, so the book reads them
    # as two settings, not two replicates. The replicated campaign (mnist_budget) uses keyed streams.
    config = meta.MetaConfig(seed=seed, epochs=epochs, batch=1, horizon=100, unroll=20, meta_lr=1e-3, clip_norm=clip_norm,
                             valid_every=100, valid_instances=20, checkpoint_every=50, select_on="mean", snapshot_every=500, streams=streams)
    return Recipe(problems.MLP(splits["budget_meta_train"]), problems.MLP(splits["budget_valid"]),
                  learned_optimizer.LSTMConfig(preprocess_p=10.0, scale=0.1), config)


def mnist_budget(seed=0, epochs=10000, splits=None):
    """The budget campaign's replicates (issue 31): the paper's recipe at the DeepMind code's 10,000 epochs, one run per
    seed, each on its own keyed streams (training MLPs, minibatches and validation independent across seeds).
    No meta-gradient clipping: the DeepMind code's meta-optimiser (Adam at 1e-3) clips nothing, and the one unclipped
    budget run of the counter-seeded pair (mnist_paper seed 0) trained its 10,000 epochs without a non-finite step."""
    return mnist_paper(seed=seed, epochs=epochs, clip_norm=0.0, splits=splits, streams="keyed")


QUADRATICS_ROOT = "book/results/quadratics/runs"  # committed: the budget campaign's quadratic runs (10,000 epochs) outlast a session
QUADRATIC_SETTINGS = ("paper", "deepmind")  # the paper's text (W, y ~ N(0, 1), p 10, scale 0.1); the DeepMind code (U[0, 1), raw gradients, scale 1)


def quadratics(setting="paper", seed=0, epochs=10000, params=None):
    """The quadratics chapter's meta-training run of `setting` (QUADRATIC_SETTINGS), built as the chapter builds it from
    `params` (l2l.chapters.Quadratics; default its full profile at `epochs`), so that the chapter at meta_epochs 10,000 and
    checkpoint_dir QUADRATICS_ROOT finds the campaign's runs by their keys (epochs are not in a run's key).
    Checkpoints every 100 epochs; snapshots every 1,000, for the budget curve."""
    from l2l import chapters, learned_optimizer, meta, problems

    if setting not in QUADRATIC_SETTINGS:
        raise ValueError(f"unknown quadratics setting {setting!r}; settings: {list(QUADRATIC_SETTINGS)}")
    p = params or chapters.Quadratics(meta_epochs=epochs)
    problem, lstm_config = {
        "paper": (problems.Quadratic(distribution=p.distribution), learned_optimizer.LSTMConfig(preprocess_p=p.preprocess_p, scale=p.scale)),
        "deepmind": (problems.Quadratic(distribution="uniform"), learned_optimizer.LSTMConfig(preprocess_p=0.0, scale=1.0)),
    }[setting]
    config = meta.MetaConfig(seed=seed, epochs=p.meta_epochs, batch=p.batch, horizon=p.horizon, unroll=p.unroll, meta_lr=p.meta_lr,
                             clip_norm=p.clip_norm, valid_every=p.valid_every, valid_instances=p.tune_instances, select_on="mean",
                             checkpoint_every=100, snapshot_every=1000)
    return Recipe(problem, None, lstm_config, config)


def mnist_panel(split, name="base", title="MNIST, MLP 784-20-10 sigmoid", horizon=100, long_steps=200, train="test_train", heldout="test_heldout",
                tune="valid", **architecture):
    """A test panel of the MNIST chapter: every optimiser tested on `train` images to `long_steps`, measured on
    `heldout`, tuned on `tune` for the horizon; reported at the horizon and at long_steps."""
    from l2l import experiment, problems

    return experiment.Panel(name, title, problems.MLP(split[train], **architecture), problems.MLP(split[tune], **architecture),
                            tune_steps=horizon, steps=long_steps, report_steps=tuple(sorted({horizon, long_steps})), heldout=split[heldout])


CIFAR_ROOT = "book/results/cifar/runs"  # committed: the CIFAR chapter's meta-training outlasts a session
CIFAR_LEARNERS = ("lstm", "lstm_one", "lstm_sub")


def cifar_images(splits, part, labels=None):
    """A part of the CIFAR split (l2l.data.cifar_splits), on all labels or on a subset of them (relabelled 0..k-1)."""
    from l2l import problems

    return splits[part] if labels is None else problems.label_subset(splits[part], labels)


def cifar_convnet(splits, part, labels=None):
    """The paper's ConvNet on a part of the CIFAR split, with as many outputs as labels."""
    from l2l import problems

    return problems.ConvNet(cifar_images(splits, part, labels), classes=10 if labels is None else len(labels))


def cifar(learner="lstm", seed=0, epochs=None, clip_norm=None, params=None, splits=None):
    """The CIFAR chapter's meta-training run of `learner`, built from the chapter's parameters `params`
    (l2l.chapters.Cifar; default: its full profile), so that the chapter and this command file it under
    one run key. lstm: two LSTMs (parameter groups "conv", the convolution kernels, and "other");
    lstm_one: one LSTM for every parameter; lstm_sub: two LSTMs meta-trained on params.sub_labels only."""
    from l2l import chapters, data, learned_optimizer, meta

    if learner not in CIFAR_LEARNERS:
        raise ValueError(f"unknown CIFAR learner {learner!r}; learners: {list(CIFAR_LEARNERS)}")
    p = params or chapters.Cifar()
    splits = splits or data.cifar_splits()
    labels = p.sub_labels if learner == "lstm_sub" else None
    convnet = lambda part: cifar_convnet(splits, part, labels)
    lstm = learned_optimizer.LSTMConfig(preprocess_p=p.preprocess_p, scale=p.scale)
    config = meta.MetaConfig(seed=seed, epochs=epochs or p.meta_epochs, batch=1, horizon=p.horizon, unroll=p.unroll, meta_lr=p.meta_lr,
                             clip_norm=p.clip_norm if clip_norm is None else clip_norm, valid_every=p.valid_every,
                             valid_instances=p.valid_instances, select_on="mean", checkpoint_every=5)
    return Recipe(convnet("meta_train"), convnet("valid"), lstm if learner == "lstm_one" else {"conv": lstm, "other": lstm}, config)


BEYOND_ROOT = "book/results/beyond/runs"  # committed: the beyond chapter's meta-training outlasts a session
# Each technique beyond the paper, added alone to the paper's recipe in the chapter's ablation (l2l.chapters.Beyond).
TECHNIQUES = {
    "inputs": "RNNprop's Adam-normalised inputs and bounded output, 0.1 tanh (Lv et al. 2017)",
    "rescale": "random rescaling of every coordinate of the training MLPs, c = exp(U[-3, 3]) (Lv et al. 2017)",
    "curriculum": "a curriculum over the training horizon, validated at the next stage's length (Chen et al. 2020)",
    "imitation": "epochs that imitate tuned ADAM's updates along its path (Chen et al. 2020)",
    "nominal": "tuned ADAM's step plus the learned one (Harrison et al. 2022)",
}
BEYOND_VARIANTS = ("paper", *TECHNIQUES, "combined", "general")


_TUNED_ADAM = {}  # (images' fingerprint, horizon, instances) -> rate: tuned once per process


def tuned_adam_lr(images, horizon, instances):
    """ADAM's learning rate (default betas) tuned for the mean loss over `horizon` steps on `instances` MLPs
    784-20-10 of `images` (evaluate.tune's two-stage grid): the teacher that imitation copies and the nominal step.
    Deterministic, so the chapter and `python -m l2l.recipes train beyond` compute the same rate and one run key."""
    from l2l import evaluate, problems

    key = (images.fingerprint, horizon, instances)
    if key not in _TUNED_ADAM:
        settings, _ = evaluate.tune(problems.MLP(images), ["adam"], horizon, instances, extra={})
        _TUNED_ADAM[key] = float(settings["mean"]["adam"]["learning_rate"])
    return _TUNED_ADAM[key]


def beyond(variant="combined", seed=0, epochs=None, clip_norm=None, params=None, splits=None):
    """The beyond chapter's meta-training run of `variant` (BEYOND_VARIANTS), built from the chapter's parameters
    `params` (l2l.chapters.Beyond; default its full profile): "paper" is the MNIST chapter's recipe, a technique's
    name adds that technique alone (TECHNIQUES), "combined" adds params.combined's together, and "general"
    trains the combination on a mixture of tasks that no test panel belongs to (Fashion-MNIST images 0-39,999,
    quadratics)."""
    from l2l import chapters, data, learned_optimizer, meta, problems

    if variant not in BEYOND_VARIANTS:
        raise ValueError(f"unknown beyond variant {variant!r}; variants: {list(BEYOND_VARIANTS)}")
    p = params or chapters.Beyond()
    splits = splits or data.mnist_splits()
    used = {"paper": (), "combined": tuple(p.combined), "general": tuple(p.combined)}.get(variant, (variant,))
    lstm = dict(preprocess_p=10.0, scale=0.1)
    meta_options = dict(seed=seed, epochs=epochs or (p.general_epochs if variant == "general" else p.meta_epochs), batch=1, horizon=p.horizon,
                        unroll=p.unroll, meta_lr=p.meta_lr, clip_norm=p.clip_norm if clip_norm is None else clip_norm, valid_every=p.valid_every,
                        valid_instances=p.valid_instances, select_on="mean", checkpoint_every=10)
    if "inputs" in used:
        lstm.update(preprocess_p=0.0, features="adam", output="tanh", scale=0.1)
    if {"imitation", "nominal"} & set(used):
        # The general optimiser sees no MNIST image, not even through its teacher's tuned rate: Fashion-MNIST's selection images tune it.
        adam_lr = tuned_adam_lr(splits["fashion_tune" if variant == "general" else "valid"], p.horizon, p.teacher_instances)
        if "imitation" in used:
            meta_options.update(imitation=p.imitation, teacher="adam", teacher_lr=adam_lr)
        if "nominal" in used:
            lstm.update(nominal="adam", nominal_lr=adam_lr)
    if "curriculum" in used:
        meta_options.update(curriculum=tuple(p.curriculum), horizon=p.curriculum[-1], patience=p.patience)
    mlp = lambda part, **options: problems.MLP(splits[part], **options)
    train, valid = mlp("meta_train"), mlp("valid")
    if variant == "general":
        fashion = [mlp("fashion_meta_train", activation=a, hidden=h) for a, h in (("sigmoid", (20,)), ("relu", (20,)), ("relu", (32, 32)))]
        train = problems.Mixture((*fashion, problems.Quadratic(distribution="uniform")))
        valid = problems.Mixture((mlp("fashion_tune", activation="relu", hidden=(20,)), problems.Quadratic(distribution="uniform")))
    if "rescale" in used:
        train = (problems.Mixture(tuple(problems.Rescaled(t, p.log_range) for t in train.tasks)) if isinstance(train, problems.Mixture)
                 else problems.Rescaled(train, p.log_range))
    return Recipe(train, valid, learned_optimizer.LSTMConfig(**lstm), meta.MetaConfig(**meta_options))


BEYOND_TRAINED_ON = {  # what each beyond run's weights file says it was meta-trained on
    "mnist": "MNIST train[:40000], MLP 784-20-10 sigmoid, 100 steps",
    "general": "a task mixture: Fashion-MNIST train[:40000] MLPs (784-20-10 sigmoid and ReLU, 784-32-32-10 ReLU) and quadratics",
}


def beyond_counts(params):
    """variant -> how many meta-training runs the beyond chapter trains: each technique alone params.ablation_seeds,
    the combination params.final_seeds, the general optimiser params.general_seeds (the paper's recipe is the
    MNIST chapter's, not trained here)."""
    return {**{name: params.ablation_seeds for name in TECHNIQUES}, "combined": params.final_seeds, "general": params.general_seeds}


def beyond_runs(params, splits, results_dir, **log):
    """variant -> seed -> MetaResult of every run beyond_counts asks for, each built by `beyond` (so the chapter and
    `python -m l2l.recipes train beyond` share run keys), resumed or reused from params.checkpoint_dir, with its
    best weights written to results_dir/lstm_<variant>_seed<seed>.weights.h5."""
    from l2l import experiment

    trained = {}
    for variant, count in beyond_counts(params).items():
        made = [beyond(variant, seed=s, params=params, splits=splits) for s in range(count)]
        about = BEYOND_TRAINED_ON["general" if variant == "general" else "mnist"] + f"; variant {variant}"
        trained[variant] = experiment.meta_train_runs(made[0].problem, made[0].lstm_config, [r.meta_config for r in made], params.checkpoint_dir,
                                                      results_dir, f"lstm_{variant}", valid_problem=made[0].valid_problem, chapter="beyond",
                                                      trained_on=about, **log)
    return trained


def beyond_splits(params):
    """(MNIST splits, CIFAR-10 splits) of the beyond chapter (l2l.data), each held-out part cut to its first
    params.heldout_examples images (0: all, the same data objects, so every panel's key is unchanged)."""
    from l2l import data, problems

    cut = lambda splits: {**splits, "test_heldout": problems.head(splits["test_heldout"], params.heldout_examples)}
    return cut(data.mnist_splits()), cut(data.cifar_splits())


def beyond_panels(params, splits, cifar_splits):
    """The beyond chapter's test panels, name -> (Panel, instances per run): "mnist" (the MNIST chapter's MLP,
    reported at params.report_steps), then the transfer panels "relu" (the same MLP with ReLU), "cnn" (3x3
    convolutions of 8 and 16 channels and a dense layer of 32, on MNIST) and "cifar10" (the CIFAR chapter's
    ConvNet). Every panel tunes on its selection images for the horizon and measures on held-out images."""
    import dataclasses

    from l2l import experiment, problems

    p = params
    mlp = lambda name, title, steps, **architecture: mnist_panel(splits, name, title, p.horizon, steps, **architecture)
    cnn = lambda part: problems.ConvNet(splits[part], image_shape=(28, 28, 1), channels=(8, 16), kernel=3, hidden=32)
    convnet = lambda part: cifar_convnet(cifar_splits, part)
    mnist = dataclasses.replace(mlp("mnist", "MNIST, MLP 784-20-10 sigmoid", max(p.report_steps)), report_steps=tuple(p.report_steps))
    return {
        "mnist": (mnist, p.eval_instances),
        "relu": (mlp("relu", "MNIST, MLP 784-20-10 ReLU", p.relu_steps, activation="relu"), p.eval_instances),
        "cnn": (experiment.Panel("cnn", "MNIST, CNN (3x3 convolutions of 8 and 16 channels, dense 32)", cnn("test_train"), cnn("valid"),
                                 tune_steps=p.horizon, steps=p.cnn_steps, report_steps=(p.horizon, p.cnn_steps), heldout=splits["test_heldout"]),
                p.cnn_instances),
        "cifar10": (experiment.Panel("cifar10", "CIFAR-10, the CIFAR chapter's ConvNet", convnet("test_train"), convnet("valid"), tune_steps=p.horizon,
                                     steps=p.cifar_steps, report_steps=tuple(sorted({p.horizon, p.cifar_steps})), heldout=cifar_splits["test_heldout"]),
                    p.cifar_instances),
    }


BEYOND_PROTOCOLS = ("ablation", "mnist", "relu", "cnn", "cifar10")  # the beyond chapter's protocol panels, in the chapter's order
BEYOND_PANELS = (*BEYOND_PROTOCOLS, "keras")  # and its Keras panel (beyond_keras)


def beyond_learned(name, params, runs, paper_runs):
    """label -> runs of the learned optimisers the beyond chapter's panel `name` measures. runs: variant -> list of
    runs (MetaResult or SavedRun); paper_runs: the MNIST chapter's runs of the paper's recipe."""
    if name == "ablation":  # the first ablation_seeds runs of the paper's recipe, each technique alone, the combination
        every = {"lstm_paper": paper_runs, **{f"lstm_{v}": runs[v] for v in TECHNIQUES}, "lstm_combined": runs["combined"]}
        return {label: list(rs[: params.ablation_seeds]) for label, rs in every.items()}
    return {"lstm": runs["combined"], "lstm_paper": paper_runs, "lstm_general": runs["general"]}


def beyond_protocol(name, params, panels, runs, paper_runs, share=False, **log):
    """experiment.run_protocol of the beyond chapter's panel `name` (one of BEYOND_PROTOCOLS), cached under
    params.panel_dir: the chapter and `python -m l2l.recipes panel beyond` call this one function, so both
    compute, and reuse, the same panel files. panels: beyond_panels(...); runs, paper_runs: as beyond_learned;
    share: a second process helping the one computing the panel with its evaluation (run_protocol's share)."""
    import dataclasses

    from l2l import experiment

    if name not in BEYOND_PROTOCOLS:
        raise ValueError(f"unknown beyond panel {name!r}; panels: {list(BEYOND_PROTOCOLS)}")
    p = params
    grids = dict(grid=tuple(p.lr_grid), extra={"nag": {"momentum": tuple(p.nag_momenta)}, "adam": {"beta_1": tuple(p.adam_beta1)}},
                 multiplier_grid=tuple(p.multiplier_grid), cache_dir=p.panel_dir, share=share, **log)
    learned = beyond_learned(name, p, runs, paper_runs)
    if name == "ablation":
        panel = dataclasses.replace(panels["mnist"][0], name="ablation", title="MNIST MLP: the ablation")
        return experiment.run_protocol(panel, learned, p.eval_instances, list(range(p.ablation_seeds)), p.tune_instances,
                                       learned_name="lstm_combined", **grids)
    panel, instances = panels[name]
    # ConvNets tune on fewer networks than MLPs: see Beyond.cnn_tune_instances and cifar_tune_instances.
    tune = {"mnist": p.tune_instances, "relu": p.tune_instances, "cnn": p.cnn_tune_instances, "cifar10": p.cifar_tune_instances}[name]
    # The combination was meta-trained on the MNIST MLP and is measured there as trained; the general optimiser was
    # not, so its multiplier is tuned there as on every transfer panel.
    tune_learned = ["lstm_general"] if name == "mnist" else True
    return experiment.run_protocol(panel, learned, instances, list(range(p.final_seeds)), tune, tune_learned=tune_learned, **grids)


KERAS_BATCH = 128  # the beyond chapter's Keras panel trains every model on minibatches of this many images
KERAS_MODELS = {"mnist_mlp": (28, 28, 1), "mnist_convnet": (28, 28, 1), "cifar_cnn": (32, 32, 3)}  # each standard model's image shape


def beyond_keras(params, general, splits, cifar_splits, log=print):
    """The beyond chapter's Keras panel: the general optimiser's (`general`, a MetaResult or SavedRun) default step
    multiplier, chosen as the package chooses every packaged optimiser's (pretrained.choose_multiplier), then each
    standard model trained through model.fit with it against ADAM tuned on the selection images
    (keras_training.against_tuned_adam). Returns {"general_run", "multiplier", "tried" (multiplier -> ratios),
    "default_adam", "models" (model -> summary entry), "rows" (the table), "sentences" (the verdicts), "settings",
    "provenance" (the commit, versions and hardware of the process that computed it)}.

    With params.panel_dir, the panel is kept there as keras-<key>.json (key: a hash of the weights, the settings and
    the data) and read back, not rerun: `python -m l2l.recipes panel beyond --panel keras` computes it beside
    the other panels, before the chapter runs. A fresh panel is returned as read back from its JSON, so the
    chapter sees the same numbers either way."""
    import hashlib
    import json

    from l2l import evaluate, experiment, keras_training, meta, pretrained
    from l2l.keras_optimizer import LearnedOptimizer

    p = params
    images = {name: keras_images(cifar_splits if shape == (32, 32, 3) else splits, shape) for name, shape in KERAS_MODELS.items()}
    settings = {"code_version": meta.CODE_VERSION, "general": experiment._weights_digest(general), "calibration_steps": p.calibration_steps,
                "calibration_grid": list(p.calibration_grid), "calibration_refine": p.calibration_refine, "adam_grid": list(p.keras_adam_grid),
                "seeds": p.final_seeds, "steps": p.keras_steps, "batch": KERAS_BATCH, "last": p.keras_last,
                "data": {part: [splits[part].fingerprint, cifar_splits[part].fingerprint] for part in ("valid", "test_train", "test_heldout")}}
    key = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]
    path = os.path.join(p.panel_dir, f"keras-{key}.json") if p.panel_dir and settings["general"] else None
    fields = ("general_run", "multiplier", "tried", "default_adam", "models", "rows", "sentences", "settings", "provenance")

    def read(plain):
        if missing := [k for k in fields if k not in plain]:
            raise KeyError(f"no {missing}")
        return {**plain, "tried": {float(m): v for m, v in plain["tried"].items()}}

    if path and os.path.exists(path):
        try:
            with open(path) as f:
                kept = read(json.load(f))
            log(f"panel keras: reused {path}")
            return kept
        except (OSError, ValueError, KeyError, AttributeError) as error:  # damaged: not JSON, or JSON of another shape
            log(f"panel keras: {path} is unreadable ({error!r}); computing it again")
    make = lambda m=1.0: LearnedOptimizer(general.meta_params, general.lstm_config, learning_rate=m)
    multiplier, tried, default_adam = pretrained.choose_multiplier(make, steps=p.calibration_steps, grid=tuple(p.calibration_grid), log=log,
                                                                   refine=p.calibration_refine)
    who = f"the general optimiser (multiplier {multiplier:g})"
    panel = {name: keras_training.against_tuned_adam(name, keras_training.HELD_OUT_MODELS[name], lambda: make(multiplier), images[name],
                                                     p.keras_adam_grid, p.final_seeds, p.keras_steps, KERAS_BATCH, p.keras_last, who, short="general")
             for name in KERAS_MODELS}
    plain = {"general_run": getattr(general, "key", None), "multiplier": multiplier, "tried": {repr(float(m)): v for m, v in tried.items()},
             "default_adam": default_adam, "models": {name: entry for name, (entry, _, _) in panel.items()},
             "rows": [row for _, row, _ in panel.values()], "sentences": [sentence for _, _, sentence in panel.values()], "settings": settings,
             "provenance": {k: v for k, v in provenance.provenance().items() if k in ("commit", "versions", "hardware")}}
    if path:
        evaluate.write_json(path, plain, indent=1)
    return read(json.loads(json.dumps(plain)))


def keras_images(splits, image_shape):
    """part -> (images shaped [n, *image_shape], labels) of a split (l2l.data.mnist_splits or cifar_splits), for model.fit."""
    return lambda part: (splits[part].x.numpy().reshape(-1, *image_shape), splits[part].y.numpy())


RECIPES = {"mnist_paper": mnist_paper, "mnist_budget": mnist_budget, "quadratics": quadratics, "cifar": cifar, "beyond": beyond}
ROOTS = {"mnist_paper": BUDGET_ROOT, "mnist_budget": BUDGET_ROOT, "quadratics": QUADRATICS_ROOT, "cifar": CIFAR_ROOT,
         "beyond": BEYOND_ROOT}  # where each recipe's runs live by default


def trainer(name, root=None, **options):
    from l2l import meta

    if name not in RECIPES:
        raise SystemExit(f"unknown recipe {name!r}; recipes: {sorted(RECIPES)}")
    recipe = RECIPES[name](**options)
    root = root or ROOTS[name]
    return meta.MetaTrainer(recipe.problem, recipe.lstm_config, recipe.meta_config, checkpoint_root=root, valid_problem=recipe.valid_problem)


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
