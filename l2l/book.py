"""Run a chapter notebook with papermill and record where its results came from.

    python -m l2l.book run quadratics                     # full profile, what the book shows
    python -m l2l.book run quadratics --profile smoke     # minutes on a laptop CPU
    python -m l2l.book run quadratics -p meta_epochs 50 -f params.yaml
    python -m l2l.book list                               # chapters and their parameters

A chapter is `notebooks/<name>.py` in jupytext's percent format with one cell
tagged `parameters`. The runner converts it in memory, rejects unknown or
ill-typed parameters before any compute, executes it into `book/<name>.ipynb`
and stores in that notebook's metadata (key "l2l") the sha256 of the
source, the parameters, package versions, the git commit, the hardware and
the wall time. Profiles other than "full" are overrides listed in
`notebooks/profiles.yaml`.
"""

import argparse
import ast
import datetime
import hashlib
import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


class ParameterError(ValueError):
    pass


def notebook_path(chapter, root=ROOT):
    path = Path(root) / "notebooks" / f"{chapter}.py"
    if not path.exists():
        known = sorted(p.stem for p in (Path(root) / "notebooks").glob("*.py"))
        raise ParameterError(f"unknown chapter {chapter!r}; chapters: {known}")
    return path


def _parameters_cell(notebook):
    cells = [c for c in notebook.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(cells) != 1:
        raise ParameterError(f"a chapter needs exactly one cell tagged 'parameters', found {len(cells)}")
    return cells[0].source


def defaults(chapter, root=ROOT):
    """Name -> default value, read from the parameters cell without running it."""
    import jupytext

    source = _parameters_cell(jupytext.read(notebook_path(chapter, root)))
    values = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            values[node.targets[0].id] = ast.literal_eval(node.value)
    return values


def profiles(root=ROOT):
    import yaml

    path = Path(root) / "notebooks" / "profiles.yaml"
    return yaml.safe_load(path.read_text()) if path.exists() else {}


def _check_type(name, value, default):
    def fail():
        raise ParameterError(f"parameter {name!r} expects {type(default).__name__} like its default {default!r}, got {type(value).__name__} {value!r}")

    if default is None:
        return value
    if isinstance(default, bool) or isinstance(value, bool):
        if not (isinstance(default, bool) and isinstance(value, bool)):
            fail()
        return value
    if isinstance(default, float):
        if not isinstance(value, (int, float)):
            fail()
        return float(value)
    if isinstance(default, int):
        if not isinstance(value, int):
            fail()
        if value < 0:  # every integer parameter of the chapters is a count or a seed
            raise ParameterError(f"parameter {name!r} must be >= 0, got {value}")
        return value
    if isinstance(default, list):
        if not isinstance(value, list):
            fail()
        return [_check_type(f"{name}[{i}]", v, default[0]) for i, v in enumerate(value)] if default else value
    if not isinstance(value, type(default)):
        fail()
    return value


def resolve(chapter, profile="full", overrides=None, root=ROOT):
    """The full parameter set: notebook defaults < profile < overrides, checked."""
    known = defaults(chapter, root)
    table = profiles(root).get(chapter, {})
    if profile != "full" and profile not in table:
        raise ParameterError(f"unknown profile {profile!r} for {chapter}; choose 'full' or one of {sorted(table)}")
    merged = dict(known)
    merged.update(table.get(profile, {}) if profile != "full" else {})
    merged.update(overrides or {})
    merged["profile"] = profile
    unknown = sorted(set(merged) - set(known))
    if unknown:
        raise ParameterError(f"unknown parameters {unknown} for chapter {chapter}; it takes {sorted(known)}")
    return {name: _check_type(name, value, known[name]) for name, value in merged.items()}


def _git_commit(root=ROOT):
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


PROVENANCE_VARIABLE = "L2L_PROVENANCE"


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
    return {"versions": versions, "commit": _git_commit(root), "hardware": hardware}


def write_summary(results_dir, chapter, profile, parameters, panels, wall_time_s, info=None, **extra):
    """Writes results_dir/summary.json in the shape every chapter shares.

    info: provenance() taken when the run started (the code it imported),
    so that edits made while it runs do not change the recorded commit.
    """
    info = info or provenance()
    summary = {
        "chapter": chapter,
        "profile": profile,
        "parameters": parameters,
        "versions": info["versions"],
        "commit": info["commit"],
        "hardware": info["hardware"],
        "wall_time_s": wall_time_s,
        "panels": panels,
        **extra,
    }
    os.makedirs(results_dir, exist_ok=True)
    with open(os.path.join(results_dir, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1, allow_nan=True)
    return summary


def verdict_html(markdown):
    """A one-paragraph verdict's Markdown as HTML, for pages that pull it across.

    The intro shows verdicts with the {glue} directive and :doc:, which
    renders only HTML and images from another page; the chapters glue both.
    """
    import html

    return re.sub(r"\*\*(.*?)\*\*", r"<strong>\1</strong>", html.escape(markdown, quote=False))


# TensorFlow's C++ start-up lines (absl "I0000 ..." and friends) reach the
# kernel's stderr whatever TF_CPP_MIN_LOG_LEVEL says; they are noise in a book.
_NATIVE_LOG = re.compile(r"^(WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR|To enable the following instructions: .* rebuild TensorFlow with the appropriate compiler flags\.|[IWE]\d{4} \d\d:\d\d:\d+\.\d+ .*)$")


def _drop_native_log_lines(notebook):
    for cell in notebook.cells:
        outputs = []
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream" and output.get("name") == "stderr":
                kept = [line for line in output["text"].splitlines(keepends=True) if line.strip() and not _NATIVE_LOG.match(line.rstrip("\n"))]
                if not kept:
                    continue
                output["text"] = "".join(kept)
            outputs.append(output)
        if cell.cell_type == "code":
            cell.outputs = outputs


def run(chapter, profile="full", overrides=None, output=None, root=ROOT, log_output=True):
    """Executes a chapter; returns the path of the executed notebook."""
    import jupytext
    import nbformat
    import papermill

    parameters = resolve(chapter, profile, overrides, root)
    source = notebook_path(chapter, root)
    notebook = jupytext.read(source)
    output = Path(output) if output else Path(root) / "book" / f"{chapter}.ipynb"
    output.parent.mkdir(parents=True, exist_ok=True)
    info = provenance(root)  # before running: the code the run imports
    started = time.time()
    os.environ[PROVENANCE_VARIABLE] = json.dumps(info)  # the kernel inherits it
    try:
        papermill.execute_notebook(
            notebook, str(output), parameters=parameters, kernel_name="python3", cwd=str(root),
            log_output=log_output, progress_bar=False,
        )
    finally:
        del os.environ[PROVENANCE_VARIABLE]
    executed = nbformat.read(output, as_version=4)
    _drop_native_log_lines(executed)
    executed.metadata["l2l"] = {
        "chapter": chapter,
        "source": str(source.relative_to(root)),
        "source_sha256": hashlib.sha256(source.read_bytes()).hexdigest(),
        "parameters": parameters,
        **info,
        "wall_time_s": round(time.time() - started, 1),
        "executed_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    nbformat.write(executed, output)
    return output


def _parse_value(text):
    import yaml

    return yaml.safe_load(text)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m l2l.book", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    runner = sub.add_parser("run", help="execute a chapter into the book")
    runner.add_argument("chapter")
    runner.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"), help="a parameter (value parsed as YAML)")
    runner.add_argument("-f", "--file", help="YAML file of parameters")
    runner.add_argument("--profile", default="full", help="'full' (default) or a profile in notebooks/profiles.yaml")
    runner.add_argument("-o", "--output", help="executed notebook path (default book/<chapter>.ipynb)")
    sub.add_parser("list", help="chapters, profiles and parameters")
    args = parser.parse_args(argv)
    try:
        if args.command == "list":
            for path in sorted((ROOT / "notebooks").glob("*.py")):
                print(f"{path.stem}: profiles full, {', '.join(profiles().get(path.stem, {}))}")
                for name, value in defaults(path.stem).items():
                    print(f"    {name} = {value!r}")
            return 0
        overrides = {}
        if args.file:
            import yaml

            overrides.update(yaml.safe_load(Path(args.file).read_text()) or {})
        overrides.update({name: _parse_value(value) for name, value in args.parameter})
        profile = overrides.pop("profile", args.profile)
        output = run(args.chapter, profile, overrides, args.output)
    except ParameterError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
