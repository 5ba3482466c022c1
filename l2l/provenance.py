"""Where a result came from: package versions, git commit and hardware.

    from l2l.provenance import provenance
    provenance()  # {"versions": {...}, "commit": "...", "hardware": {...}}

Chapters, benchmarks and the runner record it next to their results.
"""

import json
import os
import platform
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROVENANCE_VARIABLE = "L2L_PROVENANCE"
THREADS_VARIABLE = "L2L_THREADS"  # TF threads per pool for a chapter run; unset: TF's default (every core)


def limit_threads():
    """Applies L2L_THREADS (if set) to TensorFlow's thread pools; call before TensorFlow runs any op.

    One thread leaves the other core to a long run beside it: on this
    project's 2-core machines two processes that each use both cores slow
    each other several-fold, and one thread ran MNIST meta-training at about
    the speed of two (about 1 s per epoch, l2l.recipes).
    """
    threads = os.environ.get(THREADS_VARIABLE)
    if not threads:
        return None
    if not threads.isdigit() or int(threads) < 1:
        raise ValueError(f"{THREADS_VARIABLE} must be a positive integer, got {threads!r}; unset it for TF's default")
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(int(threads))
    tf.config.threading.set_inter_op_parallelism_threads(1)
    return int(threads)


JEMALLOC_PATHS = ("/usr/lib/x86_64-linux-gnu/libjemalloc.so.2", "/usr/lib/aarch64-linux-gnu/libjemalloc.so.2")  # Debian's libjemalloc2


def jemalloc_environment(paths=JEMALLOC_PATHS):
    """The variables that start a new process under jemalloc where it is installed; {} where it is not.

    Under glibc's malloc a beyond meta-training run spent 58% of its CPU time in the kernel (about 150,000
    minor page faults a second: freed blocks go back to the system and come back page by page); under
    jemalloc, which here keeps what it freed, almost none, and a curriculum run did its epochs about 2.5
    times as fast. A 4-epoch MNIST meta-training ended with the same meta-parameters bit for bit under both
    (benchmarks/run.py's allocator figure measures the ratio on the machine at hand).
    """
    library = next((path for path in paths if os.path.exists(path)), None)
    return {"LD_PRELOAD": library, "MALLOC_CONF": "dirty_decay_ms:-1,muzzy_decay_ms:-1"} if library else {}


def allocator():
    """'jemalloc' where this process was started with it preloaded, else 'default'."""
    return "jemalloc" if "jemalloc" in os.environ.get("LD_PRELOAD", "") else "default"


# The instruction sets oneDNN (TensorFlow's CPU kernels) chooses its kernels by, so their float rounding. The Keras
# chapter, rerun at the commit of its committed execution, reproduced itself to the last bit in two processes, with
# and without jemalloc, yet differed from that execution (an earlier session, same versions, threads and data) in
# the fourth digit of ADAM's tuning losses; the CPU was the one input it did not record.
ISA_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile")


def cpu_info(path="/proc/cpuinfo"):
    """{"model": the CPU's model name, "isa": the ISA_FLAGS it has}, or {} where `path` is unreadable (not Linux)."""
    try:
        text = Path(path).read_text()
    except OSError:
        return {}
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    fields = {k.strip(): v.strip() for k, v in fields.items()}  # the last processor's entries win (every processor lists the same)
    flags = set(fields.get("flags", "").split())
    return {"model": fields.get("model name", "unknown"), "isa": [f for f in ISA_FLAGS if f in flags]}


def git_commit(root=ROOT):
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True).stdout.strip()
        # Only code counts: a run rewrites its chapter under book/, make bench its
        # results.json, and make chapters republishes l2l/pretrained/ between chapters.
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", "l2l/*.py", "notebooks", "benchmarks/*.py", "pyproject.toml"],
            cwd=root, capture_output=True, text=True,
        ).stdout.strip()
        return commit + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def provenance(root=ROOT):
    """Package versions, git commit and hardware of this process.

    Inside a chapter executed by run(), this is what the runner recorded
    when it started (passed in L2L_PROVENANCE), so that the notebook's
    summary.json and its metadata name the same commit.
    """
    if os.environ.get(PROVENANCE_VARIABLE):
        return json.loads(os.environ[PROVENANCE_VARIABLE])
    from importlib import metadata

    versions = {"python": platform.python_version()}
    for package in ["l2l", "tensorflow", "keras", "numpy", "pandas", "papermill", "jupytext", "optuna"]:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    hardware = {"machine": platform.machine(), "processor": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
                "threads": int(os.environ[THREADS_VARIABLE]) if os.environ.get(THREADS_VARIABLE, "").isdigit() else "default", "allocator": allocator(),
                **({"cpu": cpu} if (cpu := cpu_info()) else {})}
    try:
        import tensorflow as tf

        hardware["gpus"] = [d.name for d in tf.config.list_physical_devices("GPU")]
    except ImportError:
        pass
    return {"versions": versions, "commit": git_commit(root), "hardware": hardware}
