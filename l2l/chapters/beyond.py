"""The beyond-the-paper chapter: its parameters, its techniques, its runs, panels and Keras panel.

Imports no TensorFlow: the code that needs it imports it where it runs."""

import dataclasses
import os

from l2l import provenance
from l2l.chapters.base import ChapterParameters, ParameterError, Recipe, _at_least, _names_a_seed, _positive_grids
from l2l.chapters.cifar import cifar_convnet
from l2l.chapters.mnist import mnist_panel
from l2l.paper import PAPER_LSTM


@dataclasses.dataclass(frozen=True)
class Beyond(ChapterParameters):
    ablation_seeds: int = 3  # meta-training runs of each technique added alone to the paper's recipe (the run is the unit)
    final_seeds: int = 5  # runs of the combination, and of the paper's recipe (the MNIST chapter's published LSTMs)
    meta_epochs: int = 200  # epochs per run: the MNIST chapter's, so that every row of the ablation meets the paper's recipe at equal epochs
    meta_lr: float = 0.001  # Adam's learning rate on the LSTM's weights (paper)
    clip_norm: float = 0.0  # meta-gradient global-norm clipping; 0: none
    horizon: int = 100  # the paper's training horizon, and the curriculum's first stage
    unroll: int = 20  # steps per truncated-BPTT segment (paper: 20; Chen et al.: 20)
    valid_every: int = 10  # epochs between validations
    valid_instances: int = 20  # MLPs on the selection images behind each validation (selection by the mean loss over the horizon)
    curriculum: list[int] = (100, 200, 500, 1000)  # the curriculum's training horizons (Chen et al. 2020)
    patience: int = 3  # validations without improvement before the curriculum's next stage
    imitation: float = 0.2  # share of epochs that imitate the teacher (Chen et al.: 0.1 to 0.3)
    log_range: float = 3.0  # random rescaling: log c ~ U[-log_range, log_range] per coordinate (RNNprop: 3)
    teacher_instances: int = 10  # MLPs on the selection images that tune ADAM's rate: the teacher and the nominal step
    combined: list[str] = ("inputs", "rescale", "curriculum", "imitation", "nominal")  # the techniques of the combination
    general_seeds: int = 3  # runs of the general optimiser (the combination on a task mixture with no test panel's task)
    general_epochs: int = 300  # their epochs
    eval_instances: int = 8  # MLPs per run on each MLP panel
    tune_instances: int = 10  # MLPs (or networks) on the selection images tuning every baseline and multiplier, per step and metric
    lr_grid: list[float] = (0.0001, 0.0003162, 0.001, 0.003162, 0.01, 0.03162, 0.1, 0.3162, 1.0, 3.162, 10.0)  # baselines' first-stage rates (evaluate.LR_GRID); then quarter-decades beside the best
    nag_momenta: list[float] = (0.5, 0.9, 0.99)  # NAG momenta tuned with the rate (l2l.evaluate.EXTRA_GRIDS)
    adam_beta1: list[float] = (0.5, 0.9)  # ADAM beta_1 values tuned with the rate (l2l.evaluate.EXTRA_GRIDS)
    multiplier_grid: list[float] = (0.1, 0.3162, 1.0, 3.162)  # learned optimisers' step multipliers tried on transfer (l2l.evaluate.MULTIPLIER_GRID)
    calibration_grid: list[float] = (0.01, 0.03, 0.1, 0.3, 1.0)  # the general optimiser's Keras multipliers, first stage (l2l.pretrained.CALIBRATION_GRID)
    report_steps: list[int] = (100, 200, 1000)  # the MNIST MLP panels: baselines re-tuned for each
    relu_steps: int = 1000  # the ReLU MLP panel's steps
    cnn_steps: int = 1000  # the MNIST CNN panel's steps
    cnn_instances: int = 2  # CNNs per run (they run one after another)
    cnn_tune_instances: int = 2  # CNNs on the selection images tuning every baseline and multiplier (10, estimated from the MLP panels: hours of one thread)
    cifar_steps: int = 200  # the CIFAR-10 ConvNet panel's steps (the CIFAR chapter's 2x horizon)
    cifar_instances: int = 1  # ConvNets per run
    convnet_batch: int = 128  # the CNN's and the CIFAR ConvNet's minibatch (as their chapters: 128)
    cifar_tune_instances: int = 1  # ConvNets tuning every baseline and multiplier, as in the CIFAR chapter (one setting cost 9 min at 10)
    calibration_steps: int = 200  # steps per held-out Keras model when choosing the general optimiser's default multiplier (l2l.pretrained's)
    calibration_refine: bool = True  # then the quarter-decades beside the best multiplier, as l2l.pretrained's (smoke: off, 6 fewer Keras fits)
    heldout_examples: int = 0  # held-out test images each panel and Keras model is measured on; 0: all (MNIST's 10,000, CIFAR-10's 1,000)
    keras_steps: int = 300  # steps of each Keras model trained through model.fit
    keras_last: int = 20  # the Keras verdict's endpoint: mean training loss over the last this many steps
    keras_adam_grid: list[float] = (0.0003, 0.001, 0.003, 0.01, 0.03)  # ADAM rates tried on the selection images for each Keras model
    mnist_weights: str = "book/results/mnist/lstm_paper_seed{seed}.weights.h5"  # the paper's recipe: the MNIST chapter's LSTMs
    results_dir: str = "book/results/beyond"  # summary.json, curves, the packaged general optimiser's candidates
    checkpoint_dir: str = "book/results/beyond/runs"  # resumable meta-training runs; committed: they outlast a session
    panel_dir: str = "book/results/beyond/panels"  # finished panels; committed: the chapter's panels take longer than a session

    def check(self):
        _at_least(self, ablation_seeds=1, final_seeds=1, meta_epochs=1, horizon=1, unroll=1, valid_every=1, valid_instances=2, patience=1,
                  teacher_instances=1, general_seeds=1, general_epochs=1, eval_instances=2, tune_instances=1, relu_steps=self.horizon,
                  cnn_steps=self.horizon, cnn_instances=1, convnet_batch=1, cnn_tune_instances=1, cifar_steps=1, cifar_instances=1,
                  cifar_tune_instances=1, calibration_steps=20, keras_steps=1, keras_last=1)
        if self.heldout_examples < 0:
            raise ParameterError(f"Beyond.heldout_examples must be >= 0 (0: all held-out images), got {self.heldout_examples}")
        unknown = sorted(set(self.combined) - set(TECHNIQUES))
        if unknown or not self.combined:
            raise ParameterError(f"Beyond.combined names techniques {list(TECHNIQUES)}, at least one; unknown: {unknown}")
        stages = list(self.curriculum)
        if stages[0] != self.horizon or stages != sorted(set(stages)) or any(h % self.unroll for h in stages):
            raise ParameterError(f"Beyond.curriculum must start at horizon ({self.horizon}), rise strictly and hold multiples of unroll ({self.unroll}); got {stages}")
        if self.horizon not in self.report_steps or sorted(self.report_steps) != list(self.report_steps):
            raise ParameterError(f"Beyond.report_steps must rise and include the horizon ({self.horizon}), got {list(self.report_steps)}")
        if not 0 <= self.imitation < 1 or not self.log_range > 0 or self.keras_last > self.keras_steps:
            raise ParameterError("Beyond needs 0 <= imitation < 1, log_range > 0 and keras_last <= keras_steps")
        _positive_grids(self, "lr_grid", "nag_momenta", "adam_beta1", "multiplier_grid", "calibration_grid", "keras_adam_grid")
        _names_a_seed(self)


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
    from l2l import data, learned_optimizer, meta, problems

    if variant not in BEYOND_VARIANTS:
        raise ValueError(f"unknown beyond variant {variant!r}; variants: {list(BEYOND_VARIANTS)}")
    p = params or Beyond()
    splits = splits or data.mnist_splits()
    used = {"paper": (), "combined": tuple(p.combined), "general": tuple(p.combined)}.get(variant, (variant,))
    lstm = dict(PAPER_LSTM)
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
    cnn = lambda part: problems.ConvNet(splits[part], image_shape=(28, 28, 1), channels=(8, 16), kernel=3, hidden=32, batch_size=p.convnet_batch)
    convnet = lambda part: cifar_convnet(cifar_splits, part, batch_size=p.convnet_batch)
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

    from l2l import evaluate, experiment, keras_training, meta
    from l2l.keras_optimizer import LearnedOptimizer
    from l2l.pretrained import maintainer

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
    multiplier, tried, default_adam = maintainer.choose_multiplier(make, steps=p.calibration_steps, grid=tuple(p.calibration_grid), log=log,
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
