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
    for package in ["l2l", "tensorflow", "keras", "numpy", "pandas", "papermill", "jupytext"]:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    hardware = {"machine": platform.machine(), "processor": platform.processor() or platform.machine(), "cpus": os.cpu_count()}
    try:
        import tensorflow as tf

        hardware["gpus"] = [d.name for d in tf.config.list_physical_devices("GPU")]
    except ImportError:
        pass
    return {"versions": versions, "commit": git_commit(root), "hardware": hardware}
