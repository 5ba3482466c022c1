# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Appendix: what it costs
#
# Speed and memory of this implementation on the machine that built the book,
# from `make bench` (`benchmarks/run.py`, which writes
# `benchmarks/results.json`). Each figure is a ratio to a yardstick measured
# in the same run, so that it means the same on another machine: TF's own
# large float32 matrix product for the hardware, a plain `tf.function`
# implementation of the same math (`benchmarks/reference.py`) for the
# meta-gradient, and `keras.optimizers.Adam` for a Keras training step.
# Below them, the wall-clock cost of each chapter's run, from its
# `summary.json`.

# %% tags=["parameters"]
profile = "full"  # only a label here: this page computes nothing; every parameter is a field of l2l.chapters.Benchmarks

# %% tags=["hide-input"]
import json
from pathlib import Path

import pandas as pd
from IPython.display import Markdown, display
from myst_nb import glue

from l2l import chapters, experiment

p = chapters.Benchmarks.from_namespace(globals())
bench = json.loads(Path(p.benchmark_file).read_text())
m, c, q, k, mem, x, th = (bench[key] for key in ["mnist_meta_gradient", "mnist_matmul_ceiling", "quadratic_meta_gradient", "keras_step", "memory_per_parameter", "forward_xla", "threads"])
default_threads = th["intra0_inter0_s"]
rows = [
    ("TF float32 matmul (yardstick)", f"{bench['matmul_gflops']:.1f} GFLOP/s", "1"),
    ("MNIST meta-iteration (20-step segment and Adam update)", f"{1000 * m['train_unroll_s']:.0f} ms, {m['gflops']:.1f} GFLOP/s",
     f"{m['fraction_of_matmul_rate']:.2f} of the matmul rate"),
    ("its matrix products alone, at their shapes", f"{1000 * c['seconds']:.0f} ms, {c['gflops']:.1f} GFLOP/s", f"{c['fraction_of_matmul_rate']:.2f} of the matmul rate"),
    ("MNIST segment meta-gradient", f"{1000 * m['segment_s']:.0f} ms", f"{m['speedup_vs_reference']:.2f}x the tape reference"),
    ("the same without XLA for the cells' elementwise work", f"{1000 * m['segment_unfused_s']:.0f} ms", f"XLA for it: {m['fusion_speedup']:.2f}x"),
    ("the same with XLA for the whole segment", f"{1000 * m['segment_whole_xla_s']:.0f} ms", f"XLA for all: {m['whole_xla_speedup']:.2f}x"),
    ("MNIST meta-iteration, other thread pools", f"{1000 * th['intra1_inter2_s']:.0f} ms (1 x 2), {1000 * th['intra2_inter1_s']:.0f} ms (2 x 1)",
     f"{th['intra1_inter2_s'] / default_threads:.2f}x, {th['intra2_inter1_s'] / default_threads:.2f}x TF's default ({1000 * default_threads:.0f} ms)"),
    ("quadratic segment meta-gradient, 128 functions", f"{1000 * q['segment_s']:.1f} ms", f"{q['speedup_vs_reference']:.2f}x the tape reference"),
    ("Keras training step, MNIST MLP", f"{1000 * k['learned_s']:.2f} ms", f"{k['learned_over_adam']:.1f}x an Adam step"),
    ("peak memory per optimised coordinate", f"{mem['bytes_per_coordinate'] / 1024:.1f} KiB", "during a 20-step meta-iteration"),
    ("forward-only LSTM evaluation", f"{1000 * x['plain_s_per_step']:.1f} ms/step", f"XLA: {x['xla_speedup']:.2f}x"),
]
table = pd.DataFrame(rows, columns=["what", "measured", "ratio"])
display(Markdown(table.to_markdown(index=False)))
glue("bench_commit", bench["commit"][:10], display=False)
glue("bench_machine", f"{bench['machine']['cpus']} CPUs ({bench['machine']['processor']}), GPUs: {bench['machine'].get('gpus') or 'none'}", display=False)
glue("paper_scale_hours", f"{bench['paper_scale_mnist_hours']:.1f}", display=False)
glue("matmul_fraction", f"{m['fraction_of_matmul_rate']:.2f}", display=False)
glue("ceiling_fraction", f"{c['fraction_of_matmul_rate']:.2f}", display=False)
glue("ceiling_share", f"{c['seconds'] / m['train_unroll_s']:.0%}", display=False)
glue("saved_mb_per_step", f"{mem['bytes_per_coordinate'] * m['coordinates'] / m['unroll'] / 1e6:.0f}", display=False)
glue("mnist_coordinates", f"{m['coordinates']:,}", display=False)
glue("gate_rows", 4 * bench["lstm"]["hidden"], display=False)
glue("whole_xla_slower", f"{1 / m['whole_xla_speedup']:.1f}", display=False)

# %% [markdown]
# Measured at commit {glue:text}`bench_commit` on {glue:text}`bench_machine`.
# The paper's MNIST recipe, 10,000 epochs of 5 segments (50,000
# meta-iterations), would take about {glue:text}`paper_scale_hours` hours at
# the measured rate.
#
# The MNIST meta-iteration runs at {glue:text}`matmul_fraction` of the
# machine's large-matmul rate. Its matrix products are tall and thin
# ({glue:text}`mnist_coordinates` coordinates by at most
# {glue:text}`gate_rows` gate rows); timed alone, at
# their shapes, they reach {glue:text}`ceiling_fraction` of that rate and
# take {glue:text}`ceiling_share` of the meta-iteration's time. That is the
# ceiling for any implementation that keeps them as separate products. The
# rest is elementwise work on the gates, which streams through what a
# meta-iteration keeps per step (about {glue:text}`saved_mb_per_step` MB,
# from the peak memory), more than a CPU cache holds.
#
# How the implementation is built: coordinates run along the last axis, so
# that gates are contiguous rows; the coordinate count is padded to 64-byte
# rows, so that splitting the gates shares memory instead of copying it; one
# product per layer has the bias folded in; a hand-written backward pass
# reuses the optimisee gradients the forward pass computed instead of
# recording a tape (against the plain tape implementation: the ratio in the
# table); and XLA compiles each cell's elementwise work, forward and
# backward, and nothing else (XLA for the whole segment took
# {glue:text}`whole_xla_slower` times as long on this CPU).
# Single runs on a shared machine vary; rerun `make bench` before trusting
# a second digit.
#
# ## The packaged optimisers' Keras defaults
#
# `LearnedOptimizer.from_pretrained(name)` applies a step multiplier chosen
# on held-out Keras models (`python -m l2l.pretrained calibrate`). Here each
# packaged optimiser, at that default, trains those models for
# {glue:text}`keras_steps` minibatches; the table gives its final test loss
# over that of Keras' default `"adam"` (learning rate 0.001) and of Adam
# with its rate tuned by training loss, on the same seed and data (below 1:
# the learned optimiser did better).

# %% tags=["hide-input"]
kd = bench["keras_defaults"]
models = list(kd["adam_default_test_loss"])
rows = [{"optimiser": name, "learning_rate": kd[name]["learning_rate"],
         **{f"{m}: vs default / tuned Adam": f"{kd[name]['over_default_adam'][m]:.2f} / {kd[name]['over_tuned_adam'][m]:.2f}" for m in models}}
        for name in kd if isinstance(kd[name], dict) and "over_default_adam" in kd[name]]
display(Markdown(pd.DataFrame(rows).to_markdown(index=False)))
glue("keras_steps", kd["steps"], display=False)

# %% [markdown]
# ## Wall-clock cost of each chapter
#
# A chapter reuses the meta-training runs it finds checkpointed (runs are
# filed by a hash of their settings), so its own wall time can be short; the
# meta-training column adds up every run's training time, across the
# sessions that trained it.

# %% tags=["hide-input"]
rows = []
for path in sorted(Path(p.results_root).glob("*/summary.json")):
    summary = json.loads(path.read_text())
    rows.append({"chapter": summary["chapter"], "profile": summary["profile"], "this run, minutes": round(summary["wall_time_s"] / 60, 1),
                 "meta-training, minutes": round(experiment.meta_training_seconds(summary) / 60, 1),
                 "commit": summary["commit"][:10], "CPUs": summary.get("hardware", {}).get("cpus")})
display(Markdown(pd.DataFrame(rows).to_markdown(index=False)))
