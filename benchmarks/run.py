"""Speed and memory of l2l on this machine, each figure a ratio to a yardstick measured in the same run.

    make bench                                   # full sizes, writes benchmarks/results.json
    python benchmarks/run.py --tiny --output /tmp/bench.json   # seconds; what CI runs

Figures:
  matmul_gflops              TF's own large float32 matmul: the hardware yardstick
  mnist_meta_gradient        one meta-iteration on the MNIST MLP (15,910 coordinates): a 20-step segment's
                             meta-gradient and the Adam update (train_unroll), and its GFLOP/s; the segment
                             alone (l2l.meta.segment_meta_gradient) against benchmarks/reference.py (a plain
                             tf.function with tf.GradientTape), with and without XLA for its elementwise part,
                             and with XLA for all of it
  mnist_matmul_ceiling       the segment's matrix products alone at their shapes: the rate it could reach
                             if its elementwise work were free
  threads                    the meta-iteration under TF's default thread pools and two alternatives
  allocator                  the meta-iteration under glibc's malloc and under jemalloc (LD_PRELOAD), and the
                             share of each process's CPU time spent in the kernel
  quadratic_meta_gradient    the same as mnist_meta_gradient on 128 quadratics of 10 dimensions
  keras_step                 model.train_on_batch with l2l.LearnedOptimizer against keras.optimizers.Adam
  keras_scaling              the Keras step against the model's parameters (MLPs of 10k to 1M, the Keras example
                             convnet; batch 32 and 128): learned, Adam, the LSTM pass alone, and the floor (Adam's
                             step plus the LSTM's forward FLOPs at matmul_gflops)
  memory_per_parameter       peak resident memory per optimised coordinate during a meta-iteration (Linux), with the
                             LSTM's activations stored and recomputed (MetaConfig.recompute), and the time each way
  million_coordinates        one meta-iteration on 63 MNIST MLPs at once (1.0M coordinates), gates recomputed: peak
                             memory and seconds of the second iteration (the first compiles)
  forward_xla                forward-only evaluation of the LSTM with and without XLA
  convnet_instances          the CIFAR ConvNet's loss and gradient for several instances: a loop, a grouped
                             convolution (XLA) and vectorized_map
  cifar_meta_gradient        one meta-iteration on the CIFAR ConvNet (22,602 coordinates at 32x32): one LSTM
                             against benchmarks/reference.py, the chapter's two LSTMs over one, GFLOP/s of the
                             ConvNet's and the LSTM's matrix products against matmul_gflops
  keras_defaults             each packaged optimiser at its from_pretrained defaults on held-out Keras models
                             (l2l.keras_training.HELD_OUT_MODELS): final test loss over default and tuned Adam's
Benchmarks assert nothing; they measure.
"""

import argparse
import dataclasses
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from benchmarks import reference  # noqa: E402
from l2l import learned_optimizer, meta, problems, rollout  # noqa: E402
from l2l.provenance import provenance  # noqa: E402


def median_seconds(fn, repeats):
    return interleaved_median_seconds({"fn": fn}, repeats)["fn"]


def interleaved_median_seconds(fns, repeats):
    """Median seconds per call of each function, taking turns call by call.

    Taking turns puts the things a ratio compares under the same load: on a
    shared machine a busy moment then slows both, not one of them.
    """
    for fn in fns.values():
        fn()  # trace and warm up
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            began = time.perf_counter()
            result = fn()
            tf.nest.map_structure(lambda t: t.numpy() if hasattr(t, "numpy") else t, result)
            times[name].append(time.perf_counter() - began)
    return {name: statistics.median(t) for name, t in times.items()}


def matmul_gflops(n, repeats):
    a = tf.random.normal([n, n])
    b = tf.random.normal([n, n])
    fn = tf.function(lambda: tf.reduce_sum(tf.matmul(a, b)))
    return 2 * n**3 / median_seconds(fn, repeats) / 1e9


def lstm_flops(config, coordinates, unroll):
    """Matrix-product FLOPs of a segment: forward, and twice that backward."""
    width, per_step = config.inputs, 0
    for _ in range(config.layers):
        per_step += 2 * (width + config.hidden) * 4 * config.hidden
        width = config.hidden
    per_step += 2 * config.hidden
    return 3 * per_step * coordinates * unroll


def mlp_problem(examples):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(examples, 28, 28), dtype=np.uint8)
    return problems.MLP(problems.image_data(x, rng.integers(0, 10, size=examples), "random-images"))


def one_segment(problem, instances, unroll, config=learned_optimizer.LSTMConfig(), recompute=False):
    """(trainer, params, LSTM state, batch): a fresh trainer and the inputs of one segment."""
    trainer = meta.MetaTrainer(problem, config, meta.MetaConfig(batch=instances, horizon=unroll, unroll=unroll, valid_instances=1, recompute=recompute))
    rng = tf.random.Generator.from_seed(0)
    batch = problem.sample(rng, instances)
    return trainer, problem.init_params(rng, batch), learned_optimizer.init_state(config, instances * problem.dim), batch


def meta_gradient_pair(problem, instances, unroll, repeats, config=learned_optimizer.LSTMConfig()):
    trainer, params, state, batch = one_segment(problem, instances, unroll, config)
    weights = learned_optimizer.init_meta_params(config, trainer.config.seed)  # what the trainer starts from
    # Whole results, gradients included: returning the loss alone would let TF prune the backward pass.
    segment = {
        fused: tf.function(lambda fused=fused: meta.segment_meta_gradient(problem, config, unroll, weights, params, state, batch, trainer.state.rng, fused)[:2])
        for fused in (True, False)
    }
    whole_xla = tf.function(segment[True].python_function, jit_compile=True)
    plain = {k: tf.Variable(v) for k, v in reference.split_gates(weights, config).items()}
    ref_fn = tf.function(lambda: reference.segment_meta_gradient(problem, config, unroll, plain, params, batch, trainer.state.rng))
    seconds = interleaved_median_seconds({
        "train_unroll_s": lambda: trainer.steps["truncated"](params, state, None, batch)[0],
        "segment_s": segment[True],
        "segment_unfused_s": segment[False],
        "segment_whole_xla_s": whole_xla,
        "reference_s": ref_fn,
    }, repeats)
    coordinates = instances * problem.dim
    flops = lstm_flops(config, coordinates, unroll)
    return {
        "coordinates": coordinates,
        "unroll": unroll,
        **seconds,
        "speedup_vs_reference": seconds["reference_s"] / seconds["segment_s"],
        "fusion_speedup": seconds["segment_unfused_s"] / seconds["segment_s"],
        "whole_xla_speedup": seconds["segment_s"] / seconds["segment_whole_xla_s"],  # below 1: XLA for everything is slower
        "lstm_gflop": flops / 1e9,
        "gflops": flops / seconds["train_unroll_s"] / 1e9,  # a whole meta-iteration: segment, Adam update, checks
    }


def matmul_ceiling(coordinates, unroll, repeats, config=learned_optimizer.LSTMConfig()):
    """The segment's matrix products alone, at their shapes, each on its own operands.

    Forward [x; h; 1] products, input gradients and weight gradients of every
    layer and step: what the segment would cost if all its elementwise work
    were free. Distinct operands per product keep TF from merging them.
    """
    n, hidden = learned_optimizer.padded(coordinates), config.hidden
    shapes, width = [], config.inputs
    for _ in range(config.layers):
        rows = width + hidden + 1
        # (a, b, transpose_a, transpose_b): forward, input gradient, weight gradient
        shapes += [((rows, 4 * hidden), (rows, n), True, False), ((rows - 1, 4 * hidden), (4 * hidden, n), False, False), ((rows, n), (4 * hidden, n), False, True)]
        width = hidden
    operands = [(tf.Variable(tf.random.normal(a)), tf.Variable(tf.random.normal(b)), ta, tb) for _ in range(unroll) for a, b, ta, tb in shapes]
    fn = tf.function(lambda: tf.add_n([tf.matmul(a, b, transpose_a=ta, transpose_b=tb)[0, 0] for a, b, ta, tb in operands]))
    seconds = median_seconds(fn, repeats)
    return {"seconds": seconds, "gflops": lstm_flops(config, coordinates, unroll) / seconds / 1e9}


def in_subprocess(code, env=None):
    """The last line a fresh Python process prints after running `code` with this repository importable
    (env: variables added to this process's environment)."""
    out = subprocess.run([sys.executable, "-c", f"import sys; sys.path.insert(0, {str(ROOT)!r})\n" + code], capture_output=True, text=True, check=True,
                         env={**os.environ, **(env or {})}).stdout
    return out.strip().splitlines()[-1]


def meta_iteration_seconds(examples, unroll, repeats):
    """Median seconds of one MNIST meta-iteration (train_unroll) on one MLP."""
    trainer, params, state, batch = one_segment(mlp_problem(examples), 1, unroll)
    return median_seconds(lambda: trainer.steps["truncated"](params, state, None, batch)[0], repeats)


def thread_settings(examples, unroll, repeats, rounds=2):
    """A MNIST meta-iteration under TF's default thread pools and two alternatives.

    Threads are fixed per process, so each setting runs in its own; the
    settings alternate over `rounds`, and each keeps its fastest round's
    median, so that a busy moment of the machine does not decide.
    """
    out = {}
    for _ in range(rounds):
        for intra, inter in [(0, 0), (1, 2), (2, 1)]:
            code = (
                "import tensorflow as tf\n"
                f"tf.config.threading.set_intra_op_parallelism_threads({intra}); tf.config.threading.set_inter_op_parallelism_threads({inter})\n"
                "from benchmarks.run import meta_iteration_seconds\n"
                f"print(meta_iteration_seconds({examples}, {unroll}, {repeats}))\n"
            )
            key = f"intra{intra}_inter{inter}_s"
            out[key] = min(out.get(key, math.inf), float(in_subprocess(code)))
    out["note"] = "0 means TF's default (one thread per core)"
    return out


def allocator(examples, unroll, repeats, rounds=2):
    """A MNIST meta-iteration under glibc's malloc and under jemalloc (l2l.provenance.jemalloc_environment).

    Each allocator runs in its own process, alternating over `rounds`; each keeps its fastest round's median,
    and the share of its process's CPU time spent in the kernel (glibc returns large freed blocks to the system
    and takes them back page by page: page faults, counted as system time).
    """
    import resource

    from l2l.provenance import jemalloc_environment

    preload = jemalloc_environment()
    if not preload:
        return {"note": "jemalloc is not installed (Debian: apt-get install libjemalloc2): nothing to compare"}
    code = f"from benchmarks.run import meta_iteration_seconds\nprint(meta_iteration_seconds({examples}, {unroll}, {repeats}))\n"
    out = {}
    for _ in range(rounds):
        for name, env in [("glibc", {}), ("jemalloc", preload)]:
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            seconds = float(in_subprocess(code, env))
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            system, user = after.ru_stime - before.ru_stime, after.ru_utime - before.ru_utime
            if seconds < out.get(f"{name}_s", math.inf):
                out[f"{name}_s"], out[f"{name}_system_share"] = seconds, system / max(system + user, 1e-9)
    out["glibc_over_jemalloc"] = out["glibc_s"] / out["jemalloc_s"]
    out["environment"] = preload
    return out


def keras_step(repeats):
    import keras

    import l2l

    rng = np.random.default_rng(0)
    x = rng.normal(size=(128, 784)).astype(np.float32)
    y = rng.integers(0, 10, size=128)
    steps = {}
    for name, make in [("learned_s", lambda: l2l.LearnedOptimizer(learned_optimizer.init_meta_params(learned_optimizer.LSTMConfig(), 0))), ("adam_s", lambda: keras.optimizers.Adam(1e-3))]:
        model = keras.Sequential([keras.Input((784,)), keras.layers.Dense(20, activation="sigmoid"), keras.layers.Dense(10)])
        model.compile(optimizer=make(), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        steps[name] = lambda model=model: model.train_on_batch(x, y)
    times = interleaved_median_seconds(steps, repeats)
    return {**times, "learned_over_adam": times["learned_s"] / times["adam_s"]}


def keras_models():
    """name -> (builder, input shape): MLPs 784-w-10 of about 10k, 100k, 500k and 1M parameters, and the convnet of
    Keras' MNIST example (34,826 parameters)."""
    import keras

    mlp = lambda width: lambda: keras.Sequential([keras.Input((784,)), keras.layers.Dense(width, activation="relu"), keras.layers.Dense(10)])
    convnet = lambda: keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Conv2D(32, 3, activation="relu"), keras.layers.MaxPooling2D(2),
                                        keras.layers.Conv2D(64, 3, activation="relu"), keras.layers.MaxPooling2D(2), keras.layers.Flatten(),
                                        keras.layers.Dropout(0.5), keras.layers.Dense(10)])
    models = {f"mlp_{round(width * 795, -3) / 1000:g}k": (mlp(width), (784,)) for width in (13, 128, 629, 1258)}
    return {**models, "keras_convnet": (convnet, (28, 28, 1))}


def keras_scaling(repeats, names, batches, gflops):
    """Seconds per model.train_on_batch with the learned optimiser and with Adam, and of the learned optimiser's compiled
    LSTM pass alone over the model's coordinates, taking turns; the floor is Adam's step plus the LSTM's forward FLOPs at
    `gflops` (the matmul rate measured in the same run)."""
    import keras

    import l2l

    config = learned_optimizer.LSTMConfig()
    meta = learned_optimizer.init_meta_params(config, 0)
    rng = np.random.default_rng(0)
    out = {}
    for name in names:
        build, shape = keras_models()[name]
        for batch in batches:
            x, y = rng.random(size=(batch, *shape)).astype(np.float32), rng.integers(0, 10, size=batch)
            steps, optimizers = {}, {}
            for label, make in [("learned_s", lambda: l2l.LearnedOptimizer(meta, config)), ("adam_s", lambda: keras.optimizers.Adam(1e-3))]:
                model = build()
                model.compile(optimizer=make(), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
                steps[label] = lambda model=model, x=x, y=y: model.train_on_batch(x, y)
                optimizers[label] = model.optimizer
            coordinates = int(sum(np.prod(v.shape) for v in model.trainable_variables))
            # What one learned step costs beyond Adam's work at best: the optimiser's own compiled pass, on its own.
            step, pieces = optimizers["learned_s"]._compiled_step[""], [tf.random.normal([coordinates])]
            state = learned_optimizer.init_state(config, coordinates)
            steps["lstm_pass_s"] = lambda step=step, state=state, pieces=pieces: step(meta, state, pieces)[0][0]
            times = interleaved_median_seconds(steps, repeats)
            lstm_floor = lstm_flops(config, coordinates, 1) / 3 / (gflops * 1e9)  # lstm_flops counts forward and backward: 3x forward
            floor = times["adam_s"] + lstm_floor
            out[f"{name}_batch{batch}"] = {"parameters": coordinates, **times, "lstm_floor_s": lstm_floor, "floor_s": floor,
                                           "learned_over_floor": times["learned_s"] / floor, "learned_over_adam": times["learned_s"] / times["adam_s"],
                                           "lstm_pass_over_lstm_floor": times["lstm_pass_s"] / lstm_floor}
            print(name, batch, out[f"{name}_batch{batch}"], flush=True)
    return out


def one_meta_iteration(examples, instances, recompute=False, timed=False):
    """Peak resident bytes during one MNIST meta-iteration (train_unroll), run after a first one (with timed=True:
    (bytes, that iteration's seconds)).

    The first run traces and compiles; Linux's peak-RSS counter is then reset
    (/proc/self/clear_refs), so compilers' transient memory is not counted.
    """
    trainer, params, state, batch = one_segment(mlp_problem(examples), instances, 20, recompute=recompute)
    trainer.steps["truncated"](params, state, None, batch)[0].numpy()
    Path("/proc/self/clear_refs").write_text("5")
    began = time.perf_counter()
    trainer.steps["truncated"](params, state, None, batch)[0].numpy()
    seconds = time.perf_counter() - began
    status = Path("/proc/self/status").read_text()
    peak = int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:"))) * 1024  # kB
    return (peak, seconds) if timed else peak


def peak_rss_bytes(instances, examples, recompute=False):
    """Peak resident memory of a fresh process during its second MNIST meta-iteration."""
    return int(in_subprocess(f"from benchmarks.run import one_meta_iteration\nprint(one_meta_iteration({examples}, {instances}, {recompute}))\n"))


def memory_per_parameter(examples, small, large, repeats):
    """Peak memory per optimised coordinate at unroll 20, as stored and with the gates recomputed (MetaConfig.recompute),
    and the seconds of one meta-iteration each way, taking turns."""
    dim = mlp_problem(examples).dim
    out = {"instances": [small, large]}
    for label, recompute in [("", False), ("recompute_", True)]:
        low, high = peak_rss_bytes(small, examples, recompute), peak_rss_bytes(large, examples, recompute)
        out.update({f"{label}peak_rss_bytes": [low, high], f"{label}bytes_per_coordinate": (high - low) / ((large - small) * dim)})
    segments = {label: one_segment(mlp_problem(examples), 1, 20, recompute=recompute) for label, recompute in [("stored_s", False), ("recompute_s", True)]}
    times = interleaved_median_seconds({label: lambda t=t: t[0].steps["truncated"](t[1], t[2], None, t[3])[0] for label, t in segments.items()}, repeats)
    return {**out, **times, "recompute_over_stored_s": times["recompute_s"] / times["stored_s"],
            "stored_over_recompute_bytes": out["bytes_per_coordinate"] / out["recompute_bytes_per_coordinate"]}


def million_coordinates(examples, instances):
    """One MNIST meta-iteration (unroll 20) on `instances` MLPs at once (63: 1,002,330 coordinates), gates recomputed:
    its peak resident memory and seconds (the second iteration: the first compiles), in a fresh process."""
    code = f"from benchmarks.run import one_meta_iteration\nprint(*one_meta_iteration({examples}, {instances}, True, timed=True))\n"
    peak, seconds = in_subprocess(code).split()
    coordinates = instances * mlp_problem(examples).dim
    return {"coordinates": coordinates, "peak_rss_bytes": int(peak), "bytes_per_coordinate": int(peak) / coordinates, "seconds_per_iteration": float(seconds)}


def forward_xla(examples, instances, steps, repeats):
    problem = mlp_problem(examples)
    config = learned_optimizer.LSTMConfig()
    optimizer = learned_optimizer.learned(learned_optimizer.init_meta_params(config, 0), config)
    batch, params = rollout.fresh_instances(problem, 0, instances)
    fns = {}
    for label, jit in [("plain", False), ("xla", True)]:
        rng = tf.random.Generator.from_seed(0)
        fns[f"{label}_s_per_step"] = tf.function(lambda rng=rng: rollout.trajectory(problem, optimizer, batch, params, steps, rng)[-1], jit_compile=jit)
    out = {k: v / steps for k, v in interleaved_median_seconds(fns, repeats).items()}
    out["xla_speedup"] = out["plain_s_per_step"] / out["xla_s_per_step"]
    return out


def convnet_instances(instances, image_side, repeats):
    """One loss-and-gradient step of the CIFAR ConvNet on `instances` networks with their own weights,
    run in a loop, as one grouped convolution (XLA: TF has no CPU kernel for its gradient) and with
    vectorized_map; each in seconds and as a ratio to the loop."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(256, image_side, image_side, 3), dtype=np.uint8)
    data = problems.image_data(x, rng.integers(0, 10, size=256), "random-images")
    fns = {}
    for mode in ["loop", "grouped", "vmap"]:
        problem = problems.ConvNet(data, image_shape=(image_side, image_side, 3), instances=mode)
        params = problem.init_params(tf.random.Generator.from_seed(0), problem.sample(None, instances))
        rng_tf = tf.random.Generator.from_seed(1)
        step = lambda problem=problem, params=params, rng_tf=rng_tf: problems.loss_and_grads(problem, params, None, rng_tf)
        fns[f"{mode}_s"] = tf.function(step, jit_compile=mode == "grouped")
    out = interleaved_median_seconds(fns, repeats)
    return {"instances": instances, "image_side": image_side, **out,
            **{f"{mode}_over_loop": out[f"{mode}_s"] / out["loop_s"] for mode in ["grouped", "vmap"]}}



def convnet_flops(problem):
    """Matrix-product FLOPs of one ConvNet loss-and-gradient step on a minibatch: forward, and twice that backward."""
    h, w, c = problem.image_shape
    per_image = 0
    for out in problem.channels:
        per_image += 2 * h * w * problem.kernel ** 2 * c * out
        h, w, c = h // 2, w // 2, out
    per_image += 2 * h * w * c * problem.hidden + 2 * problem.hidden * problem.classes
    return 3 * per_image * problem.batch_size


def cifar_meta_gradient(image_side, unroll, repeats):
    """One meta-iteration on the CIFAR ConvNet (one network, as the chapter meta-trains): with one LSTM
    against the plain tape reference of the same math (meta_gradient_pair), and the chapter's two LSTMs
    (parameter groups conv / other) in train_unroll; GFLOP/s counts the ConvNet's steps and the LSTM's."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(512, image_side, image_side, 3), dtype=np.uint8)
    problem = problems.ConvNet(problems.image_data(x, rng.integers(0, 10, size=512), "random-images"), image_shape=(image_side, image_side, 3))
    one = meta_gradient_pair(problem, 1, unroll, repeats)
    config = learned_optimizer.LSTMConfig()
    groups = {"conv": config, "other": config}
    trainer = meta.MetaTrainer(problem, groups, meta.MetaConfig(batch=1, horizon=unroll, unroll=unroll, valid_instances=1))
    rng_tf = tf.random.Generator.from_seed(0)
    batch = problem.sample(rng_tf, 1)
    params = problem.init_params(rng_tf, batch)
    state = learned_optimizer.init_group_states(groups, trainer.task_parts[0], 1, problem.dim)
    two = interleaved_median_seconds({"two_lstm_train_unroll_s": lambda: trainer.steps["truncated"](params, state, None, batch)[0]}, repeats)
    optimisee_flops = convnet_flops(problem) * (unroll + 1)  # every step's loss and gradient, and the segment's last
    return {**one, **two, "image_side": image_side, "optimisee_gflop": optimisee_flops / 1e9, "lstm_only_gflops": one["gflops"],
            "gflops": (one["lstm_gflop"] * 1e9 + optimisee_flops) / one["train_unroll_s"] / 1e9,
            "two_lstm_over_one": two["two_lstm_train_unroll_s"] / one["train_unroll_s"]}

def keras_defaults(steps, examples, adam_grid):
    """Each packaged optimiser at its from_pretrained defaults on the held-out Keras models, against Adam.

    Final test loss after `steps` minibatches with the same seeds and data,
    as ratios to Keras' default "adam" (learning rate 0.001) and to Adam with
    the rate from `adam_grid` that reached the lowest training loss.
    """
    import keras

    from l2l import keras_training, pretrained
    from l2l.keras_optimizer import LearnedOptimizer

    run = lambda make: keras_training.final_losses(make, steps=steps, examples=examples)
    default_adam = run(keras.optimizers.Adam)
    grid = {lr: run(lambda lr=lr: keras.optimizers.Adam(lr)) for lr in adam_grid}
    tuned = {m: min(grid.values(), key=lambda losses: losses[m][0])[m] for m in default_adam}
    out = {"steps": steps, "examples": examples, "adam_grid": list(adam_grid),
           "adam_default_test_loss": {m: v[1] for m, v in default_adam.items()}, "adam_tuned_test_loss": {m: v[1] for m, v in tuned.items()}}
    for name in pretrained.names():
        losses = run(lambda name=name: LearnedOptimizer.from_pretrained(name))
        out[name] = {
            "learning_rate": pretrained.default_learning_rate(name),
            "test_loss": {m: v[1] for m, v in losses.items()},
            "over_default_adam": {m: losses[m][1] / default_adam[m][1] for m in losses},
            "over_tuned_adam": {m: losses[m][1] / tuned[m][1] for m in losses},
        }
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="small sizes: proves the suite runs, measures little")
    parser.add_argument("--output", default=str(ROOT / "benchmarks" / "results.json"))
    args = parser.parse_args(argv)
    tiny = args.tiny
    info = provenance(ROOT)  # the code measured: taken before edits made while it runs
    reps = 2 if tiny else 7
    examples = 512 if tiny else 10000
    results = {"configuration": "tiny" if tiny else "full", "lstm": dataclasses.asdict(learned_optimizer.LSTMConfig())}
    results["matmul_gflops"] = matmul_gflops(256 if tiny else 2048, reps)
    print("matmul", results["matmul_gflops"], flush=True)
    unroll = 3 if tiny else 20
    results["mnist_meta_gradient"] = meta_gradient_pair(mlp_problem(examples), 1, unroll, reps)
    results["mnist_meta_gradient"]["fraction_of_matmul_rate"] = results["mnist_meta_gradient"]["gflops"] / results["matmul_gflops"]
    print("mnist", results["mnist_meta_gradient"], flush=True)
    ceiling = matmul_ceiling(results["mnist_meta_gradient"]["coordinates"], unroll, reps)
    ceiling["fraction_of_matmul_rate"] = ceiling["gflops"] / results["matmul_gflops"]
    results["mnist_matmul_ceiling"] = ceiling
    print("ceiling", ceiling, flush=True)
    results["threads"] = thread_settings(examples, unroll, reps)
    print("threads", results["threads"], flush=True)
    results["allocator"] = allocator(examples, unroll, reps)
    print("allocator", results["allocator"], flush=True)
    results["quadratic_meta_gradient"] = meta_gradient_pair(problems.Quadratic(), 8 if tiny else 128, unroll, reps)
    print("quadratic", results["quadratic_meta_gradient"], flush=True)
    results["keras_step"] = keras_step(reps * (3 if tiny else 10))
    print("keras", results["keras_step"], flush=True)
    names = ["mlp_10k"] if tiny else list(keras_models())
    results["keras_scaling"] = keras_scaling(reps if tiny else 11, names, [32] if tiny else [32, 128], results["matmul_gflops"])
    results["memory_per_parameter"] = memory_per_parameter(examples, 1, 2 if tiny else 4, reps)
    print("memory", results["memory_per_parameter"], flush=True)
    results["million_coordinates"] = million_coordinates(examples, 2 if tiny else 63)
    print("million coordinates", results["million_coordinates"], flush=True)
    results["forward_xla"] = forward_xla(examples, 2 if tiny else 8, 5 if tiny else 50, reps)
    print("xla", results["forward_xla"], flush=True)
    results["convnet_instances"] = convnet_instances(2 if tiny else 8, 8 if tiny else 32, reps)
    print("convnet instances", results["convnet_instances"], flush=True)
    results["cifar_meta_gradient"] = cifar_meta_gradient(8 if tiny else 32, unroll, reps)
    results["cifar_meta_gradient"]["fraction_of_matmul_rate"] = results["cifar_meta_gradient"]["gflops"] / results["matmul_gflops"]
    print("cifar", results["cifar_meta_gradient"], flush=True)
    results["keras_defaults"] = keras_defaults(5 if tiny else 200, 512 if tiny else 10000, [1e-3] if tiny else [3e-4, 1e-3, 3e-3, 1e-2])
    print("keras defaults", results["keras_defaults"], flush=True)
    results["paper_scale_mnist_hours"] = 50000 * results["mnist_meta_gradient"]["train_unroll_s"] / 3600
    results.update(machine=info["hardware"], versions=info["versions"], commit=info["commit"])
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
