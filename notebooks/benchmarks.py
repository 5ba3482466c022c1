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

# %% tags=["remove-cell"]
_names_before_parameters = set(globals())

# %% tags=["parameters"]
profile = "full"  # only a label here: this page computes nothing, it reads results
benchmark_file = "benchmarks/results.json"  # written by make bench
results_root = "book/results"  # where the chapters wrote their summary.json

# %% tags=["remove-cell"]
parameters = {k: globals()[k] for k in sorted(set(globals()) - _names_before_parameters) if not k.startswith("_")}

# %% tags=["hide-input"]
import json
from pathlib import Path

import pandas as pd
from IPython.display import Markdown, display
from myst_nb import glue

bench = json.loads(Path(benchmark_file).read_text())
m, q, k, mem, x = (bench[key] for key in ["mnist_meta_gradient", "quadratic_meta_gradient", "keras_step", "memory_per_parameter", "forward_xla"])
rows = [
    ("TF float32 matmul (yardstick)", f"{bench['matmul_gflops']:.1f} GFLOP/s", "1"),
    ("MNIST meta-gradient, 20-step segment", f"{1000 * m['fast_s']:.0f} ms, {m['gflops']:.1f} GFLOP/s",
     f"{m['fraction_of_matmul_rate']:.2f} of the matmul rate; {m['speedup_vs_reference']:.2f}x the reference"),
    ("quadratic meta-gradient, 128 functions", f"{1000 * q['fast_s']:.1f} ms", f"{q['speedup_vs_reference']:.2f}x the reference"),
    ("Keras training step, MNIST MLP", f"{1000 * k['learned_s']:.2f} ms", f"{k['learned_over_adam']:.1f}x an Adam step"),
    ("peak memory per optimised coordinate", f"{mem['bytes_per_coordinate'] / 1024:.1f} KiB", "during a 20-step meta-gradient"),
    ("forward-only LSTM evaluation", f"{1000 * x['plain_s_per_step']:.1f} ms/step", f"XLA: {x['xla_speedup']:.2f}x"),
]
table = pd.DataFrame(rows, columns=["what", "measured", "ratio"])
display(Markdown(table.to_markdown(index=False)))
glue("bench_commit", bench["commit"][:10], display=False)
glue("bench_machine", f"{bench['machine']['cpus']} CPUs ({bench['machine']['processor']}), GPUs: {bench['machine'].get('gpus') or 'none'}", display=False)
glue("paper_scale_hours", f"{bench['paper_scale_mnist_hours']:.1f}", display=False)
glue("matmul_fraction", f"{m['fraction_of_matmul_rate']:.2f}", display=False)

# %% [markdown]
# Measured at commit {glue:text}`bench_commit` on {glue:text}`bench_machine`.
# The paper's MNIST recipe, 10,000 epochs of 5 segments (50,000
# meta-gradients), would take about {glue:text}`paper_scale_hours` hours at
# the measured rate; the MNIST meta-gradient runs at
# {glue:text}`matmul_fraction` of the machine's large-matmul rate: the
# LSTM's products are tall and thin (tens of thousands of rows, 20 to 80
# columns), and between them lies elementwise work on its gates. Single runs
# on a shared machine vary; rerun `make bench` before trusting a second digit.
#
# ## Wall-clock cost of each chapter

# %% tags=["hide-input"]
rows = []
for path in sorted(Path(results_root).glob("*/summary.json")):
    summary = json.loads(path.read_text())
    rows.append({"chapter": summary["chapter"], "profile": summary["profile"], "minutes": round(summary["wall_time_s"] / 60, 1),
                 "commit": summary["commit"][:10], "CPUs": summary.get("hardware", {}).get("cpus")})
display(Markdown(pd.DataFrame(rows).to_markdown(index=False)))
