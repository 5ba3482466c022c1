"""Run a chapter notebook with papermill and record where its results came from.

    python -m l2l.book run quadratics                     # full profile, what the book shows
    python -m l2l.book run quadratics --profile smoke     # minutes on a laptop CPU, into _build/smoke/
    python -m l2l.book run quadratics -p meta_epochs 50 -f params.yaml
    python -m l2l.book list                               # chapters and their parameters
    python -m l2l.book publish                            # the built book to the gh-pages branch (make publish)

A chapter is `notebooks/<name>.py` in jupytext's percent format with one cell
tagged `parameters`, and a parameters dataclass in l2l.chapters. The runner
resolves notebook defaults < profile < overrides into that dataclass, so
unknown or ill-typed parameters are rejected before any compute; converts the
notebook in memory; executes it with papermill, handing it every resolved
parameter (the page shows them once, in papermill's injected cell); and
stores in the executed notebook's metadata (key "l2l") the sha256 of the
source, the parameters, package versions, the git commit, the hardware and
the wall time. The full profile writes into book/; any other profile writes
into _build/<profile>/ unless an output and results_dir are given.
"""

import argparse
import dataclasses
import datetime
import errno
import hashlib
import json
import logging
import os
import re
import shutil
import signal
import sys
import threading
import time
from pathlib import Path

from l2l.chapters import CHAPTERS, ParameterError, execution_order
from l2l.provenance import PROVENANCE_VARIABLE, THREADS_VARIABLE, provenance

ROOT = Path(__file__).resolve().parents[1]


def notebook_path(chapter, root=ROOT):
    path = Path(root) / "notebooks" / f"{chapter}.py"
    if chapter not in CHAPTERS or not path.exists():
        raise ParameterError(f"unknown chapter {chapter!r}; chapters: {sorted(CHAPTERS)}")
    return path


def defaults(chapter):
    """Name -> default value, from the chapter's parameters dataclass."""
    if chapter not in CHAPTERS:
        raise ParameterError(f"unknown chapter {chapter!r}; chapters: {sorted(CHAPTERS)}")
    return CHAPTERS[chapter]().as_dict()


def profiles(root=ROOT):
    import yaml

    path = Path(root) / "notebooks" / "profiles.yaml"
    return yaml.safe_load(path.read_text()) if path.exists() else {}


def resolve(chapter, profile="full", overrides=None, root=ROOT):
    """The full parameter set: defaults < profile < overrides, checked by the chapter's dataclass.

    A profile other than "full" writes its results under _build/<profile>/
    unless results_dir is given: only the full profile belongs in book/.
    """
    known = defaults(chapter)
    table = profiles(root).get(chapter, {})
    if profile != "full" and profile not in table:
        raise ParameterError(f"unknown profile {profile!r} for {chapter}; choose 'full' or one of {sorted(table)}")
    merged = dict(table.get(profile, {}) if profile != "full" else {})
    merged.update(overrides or {})
    merged["profile"] = profile
    unknown = sorted(set(merged) - set(known))
    if unknown:
        raise ParameterError(f"unknown parameters {unknown} for chapter {chapter}; it takes {sorted(known)}")
    if profile != "full" and "results_dir" in known and "results_dir" not in merged:
        merged["results_dir"] = f"_build/{profile}/results/{chapter}"
    try:
        return CHAPTERS[chapter](**merged).as_dict()
    except TypeError as error:  # a field the dataclass does not take
        raise ParameterError(f"{chapter}: {error}") from error


# TensorFlow's C++ start-up lines (absl "I0000 ..." and friends) reach the
# kernel's stderr whatever TF_CPP_MIN_LOG_LEVEL says; they are noise in a book.
_NATIVE_LOG = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|To enable the following instructions: .* rebuild TensorFlow with the appropriate compiler flags\."
    r"|[IWE]\d{4} \d\d:\d\d:\d+\.\d+ .*)$"
)


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


class _KnownParameters(logging.Filter):
    """papermill warns of every parameter its parameters cell does not assign; a
    chapter's cell assigns only `profile` (the rest are dataclass fields the
    runner has already checked), so those warnings say nothing."""

    def filter(self, record):
        return not record.getMessage().startswith("Passed unknown parameter")


logging.getLogger("papermill").addFilter(_KnownParameters())


class ChapterFailed(RuntimeError):
    pass


def _set_aside(results):
    """Copies of the results folder's files, to put back should the run fail (None: no folder yet).

    Only the files a chapter writes (summary, curves, weights) are set aside:
    subfolders such as runs/, which long runs elsewhere keep writing, are
    left alone either way.
    """
    if results is None or not results.exists():
        return None
    backup = results.with_name(results.name + ".before-run")
    if backup.exists():
        # A run killed outright (SIGKILL, a lost session) left its half-written files beside the good ones
        # it had set aside: the good ones go back before anything else happens.
        print(f"a killed run left {backup}; putting its files back into {results} first", file=sys.stderr)
        _put_back(results, backup)
    backup.mkdir()
    for path in results.iterdir():
        if path.is_file():
            shutil.copy2(path, backup / path.name)
    return backup


def _put_back(results, backup):
    """The results folder's files as they were before the run; its subfolders untouched."""
    if results is None or not results.exists():
        return
    for path in results.iterdir():
        if path.is_file():
            path.unlink()
    if backup:
        for path in backup.iterdir():
            os.replace(path, results / path.name)
        backup.rmdir()


def _raise_on_sigterm(signum, frame):
    raise SystemExit(f"terminated by signal {signum}")


def _show_parameters_once(notebook):
    """The book shows papermill's injected cell (every resolved value), folded; the defaults cell is hidden."""
    for cell in notebook.cells:
        tags = cell.get("metadata", {}).get("tags", [])
        if "parameters" in tags and "remove-cell" not in tags:
            tags.append("remove-cell")
        if "injected-parameters" in tags and "hide-input" not in tags:
            tags.append("hide-input")


def run(chapter, profile="full", overrides=None, output=None, root=ROOT, log_output=True):
    """Executes a chapter; returns the path of the executed notebook."""
    import jupytext
    import nbformat
    import papermill

    parameters = resolve(chapter, profile, overrides, root)
    source = notebook_path(chapter, root)
    notebook = jupytext.read(source)
    default = Path(root) / ("book" if profile == "full" else f"_build/{profile}") / f"{chapter}.ipynb"
    output = Path(output) if output else default
    output.parent.mkdir(parents=True, exist_ok=True)
    info = provenance(root)  # before running: the code the run imports
    started = time.time()
    # The run writes beside the good notebook and results, which it replaces only when it succeeds.
    running = output.with_name(output.stem + ".running.ipynb")
    results = Path(root) / parameters["results_dir"] if parameters.get("results_dir") else None
    backup = _set_aside(results)
    os.environ[PROVENANCE_VARIABLE] = json.dumps(info)  # the kernel inherits it
    # SIGTERM (kill, a stopping session) becomes an exception, so the good files go back as on any failure.
    previous = signal.signal(signal.SIGTERM, _raise_on_sigterm) if threading.current_thread() is threading.main_thread() else None
    try:
        papermill.execute_notebook(
            notebook, str(running), parameters=parameters, kernel_name="python3", cwd=str(root),
            log_output=log_output, progress_bar=False,
        )
    except BaseException as error:
        _put_back(results, backup)
        failed = Path(root) / "_build" / "failed" / f"{chapter}.ipynb"
        where = f"the failed notebook is {failed}"
        if running.exists():
            try:
                failed.parent.mkdir(parents=True, exist_ok=True)
                _move(running, failed)
            except OSError as move_error:  # a full disk, say: the chapter's own error is what the message is about
                where = f"the failed notebook could not be kept ({type(move_error).__name__}: {move_error})"
            finally:
                running.unlink(missing_ok=True)
        else:
            where = "no notebook was written"
        kept = f"{output} and {results} are as they were" if results else f"{output} is as it was"
        raise ChapterFailed(f"chapter {chapter} failed ({type(error).__name__}: {str(error).strip().splitlines()[-1] if str(error).strip() else ''}); "
                            f"{kept}; {where}") from error
    finally:
        del os.environ[PROVENANCE_VARIABLE]
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    if backup:
        shutil.rmtree(backup)
    executed = nbformat.read(running, as_version=4)
    _drop_native_log_lines(executed)
    _show_parameters_once(executed)
    executed.metadata["l2l"] = {
        "chapter": chapter,
        "source": str(source.relative_to(root)),
        "source_sha256": hashlib.sha256(source.read_bytes()).hexdigest(),
        "parameters": parameters,
        **info,
        "wall_time_s": round(time.time() - started, 1),
        "executed_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    try:
        nbformat.write(executed, running)
        os.replace(running, output)  # complete, or not there at all: a stop while writing leaves the good notebook
    finally:
        running.unlink(missing_ok=True)
    return output


def _move(source, target):
    """os.replace, or, across filesystems (an -o folder on another disk: os.replace fails with EXDEV), a copy into
    the target's folder renamed into place, then the source removed: the target is complete or absent."""
    try:
        os.replace(source, target)
        return
    except OSError as error:
        if error.errno != errno.EXDEV:
            raise
    staged = Path(target).with_name(f".{Path(target).name}.{os.getpid()}.tmp")
    try:
        shutil.copyfile(source, staged)
        os.replace(staged, target)
    finally:
        staged.unlink(missing_ok=True)
    os.unlink(source)


def _parse_value(text):
    """A -p value as YAML, except that YAML 1.1 reads 1e-3 as a string: numbers are numbers."""
    import yaml

    value = yaml.safe_load(text)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    return value


def _read_parameter_file(path):
    import yaml

    if not Path(path).is_file():
        raise ParameterError(f"parameter file {path!r} does not exist: give -f the path of a YAML mapping of name: value")
    try:
        values = yaml.safe_load(Path(path).read_text())
    except yaml.YAMLError as error:
        raise ParameterError(f"parameter file {path!r} is not valid YAML ({error}); fix it, or pass values with -p NAME VALUE") from error
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise ParameterError(f"parameter file {path!r} holds a {type(values).__name__}, not a mapping of name: value")
    return values


MAX_TABLE_COLUMNS = 7  # a table a reader can read at the text column's width, and in print


MAX_CODE_LINES = 60  # a chapter notebook reads as prose, parameters and calls into l2l (the wing issue's limit)


def code_lines(chapter, root=ROOT):
    """The lines of code a chapter's notebook (notebooks/<chapter>.py) holds outside its parameters cell: non-blank,
    non-comment lines of its code cells."""
    import jupytext

    notebook = jupytext.read(notebook_path(chapter, root))
    return sum(1 for cell in notebook.cells if cell.cell_type == "code" and "parameters" not in cell.metadata.get("tags", [])
               for line in cell.source.splitlines() if line.strip() and not line.strip().startswith("#"))


def page_problems(notebook, max_columns=MAX_TABLE_COLUMNS):
    """What an executed chapter shows that a book page should not: stderr output, a runner's log line ("wrote ...")
    and Markdown tables (shown or glued) of more than max_columns columns. A list of one-line descriptions."""
    problems = []
    for index, cell in enumerate(notebook.cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream":
                text = output.get("text", "")
                if output.get("name") == "stderr" and text.strip():
                    problems.append(f"cell {index}: stderr output: {text.strip().splitlines()[0][:80]}")
                problems += [f"cell {index}: a log line: {line[:80]}" for line in text.splitlines() if line.startswith("wrote ")]
            # Glued output (myst-nb's glue) keeps its Markdown under a prefixed MIME type: the page renders it all the same.
            markdown = "\n".join(v for k, v in output.get("data", {}).items() if k.endswith("text/markdown") and isinstance(v, str))
            widths = [line.count("|") - 1 for line in markdown.splitlines() if line.startswith("|")]
            if widths and max(widths) > max_columns:
                problems.append(f"cell {index}: a table of {max(widths)} columns (more than {max_columns})")
    return problems


def publish(html="_build/html", remote="origin", branch="gh-pages", cwd=None):
    """Pushes the built book (`html`, made by `make book`) to `branch` of `remote` as the branch's only content, for a
    static host (GitHub Pages serves gh-pages). The commit message names the commit the book was built from.
    Refuses a folder that holds no built book (no index.html): build it first."""
    import subprocess

    from ghp_import import GhpError, ghp_import

    site = Path(cwd or ".") / html
    if not (site / "index.html").is_file():
        raise ParameterError(f"{site} holds no built book (no index.html): run `make book` first, or give --html the build's folder")
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=cwd, capture_output=True, text=True)
    if head.returncode:
        raise ParameterError(f"{Path(cwd or '.').resolve()} is not a git repository: publish pushes from the book's clone")
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd, capture_output=True, text=True).stdout.strip()
    message = f"The book built from {head.stdout.strip()}" + (" (with uncommitted changes)" if dirty else "")
    here = os.getcwd()
    try:
        os.chdir(cwd or here)  # ghp-import works on the repository of the working directory
        ghp_import(str(site.resolve()), remote=remote, branch=branch, mesg=message, push=True, force=True, nojekyll=True, no_history=True)
    except (GhpError, subprocess.CalledProcessError) as error:
        said = getattr(error, "message", None) or (error.stderr or b"").decode(errors="replace").strip() or str(error)
        raise ParameterError(f"publishing to {branch} of {remote!r} failed ({said}); check that the remote exists and can be pushed to") from None
    finally:
        os.chdir(here)
    return message


BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")  # headless printers, first found wins


def pdf(single="_build/singlehtml", output="_build/pdf/book.pdf", cwd=None, timeout=600):
    """The book as one PDF: the single-page build (`make pdf` makes it with Jupyter Book's singlehtml builder) printed
    by headless Chromium. The book's print style (book/_static/l2l.css, @media print) drops the site's chrome and the
    code, and wraps every table to the page. Returns the PDF's path; refuses a missing build or browser, naming the fix."""
    import shutil
    import subprocess

    import yaml

    root = Path(cwd or ".")
    master = yaml.safe_load((root / "book/_toc.yml").read_text())["root"]
    page = root / single / f"{master}.html"
    if not page.is_file():
        raise ParameterError(f"{page} is missing: build the single page first (make pdf does: jupyter-book build . --builder singlehtml ...)")
    browser = next((found for name in BROWSERS if (found := shutil.which(name))), None)
    if browser is None:
        raise ParameterError(f"no headless browser to print with (looked for {', '.join(BROWSERS)}): install Debian's chromium (apt-get install chromium)")
    # singlehtml writes the master page in its own folder but links the site's files from the build's root: print a copy there.
    depth = "../" * master.count("/")
    html = page.read_text(encoding="utf-8").replace(f'"{depth}_images/', '"_images/').replace(f'"{depth}_static/', '"_static/')
    printable = root / single / "print.html"
    printable.write_text(html, encoding="utf-8")
    target = root / output
    target.parent.mkdir(parents=True, exist_ok=True)
    target.unlink(missing_ok=True)
    done = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-pdf-header-footer", "--virtual-time-budget=60000",
                           f"--print-to-pdf={target.resolve()}", printable.resolve().as_uri()], capture_output=True, text=True, timeout=timeout)
    if not target.is_file() or target.stat().st_size == 0:
        raise ParameterError(f"{browser} wrote no PDF (exit {done.returncode}): {done.stderr.strip()[-500:]}")
    return target


def build_all(dry_run=False):
    """Runs l2l.chapters.full_build's commands one after another with this interpreter (and this environment: the
    Makefile's allocator and thread settings reach every chapter); stops at the first that fails, naming it."""
    import subprocess

    from l2l.chapters import full_build

    for command in full_build():
        print("python -m " + " ".join(command), flush=True)
        if not dry_run and subprocess.run([sys.executable, "-m", *command]).returncode:
            print(f"error: `python -m {' '.join(command)}` failed; fix it and run `make chapters` again (finished runs and panels are reused)",
                  file=sys.stderr)
            return 2
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m l2l.book", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    runner = sub.add_parser("run", help="execute a chapter into the book")
    runner.add_argument("chapter")
    runner.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"), help="a parameter (value parsed as YAML)")
    runner.add_argument("-f", "--file", help="YAML file of parameters")
    runner.add_argument("--profile", default="full", help="'full' (default) or a profile in notebooks/profiles.yaml")
    runner.add_argument("-o", "--output", help="executed notebook path (default book/<chapter>.ipynb, or _build/<profile>/ for other profiles)")
    runner.add_argument("--threads", type=int, help="TensorFlow threads for the chapter (default: every core); 1 leaves a core to a long run")
    pusher = sub.add_parser("publish", help="push the built book (make book) to a gh-pages branch for a static host")
    pusher.add_argument("--remote", default="origin", help="the git remote to push to (default origin)")
    pusher.add_argument("--branch", default="gh-pages", help="the branch the host serves (default gh-pages)")
    pusher.add_argument("--html", default="_build/html", help="the built book (default _build/html)")
    printer = sub.add_parser("pdf", help="print the single-page build (make pdf) to a PDF with headless Chromium")
    printer.add_argument("--single", default="_build/singlehtml", help="the single-page build (default _build/singlehtml)")
    printer.add_argument("--output", default="_build/pdf/book.pdf", help="the PDF (default _build/pdf/book.pdf)")
    builder = sub.add_parser("chapters", help="execute every chapter in its full profile, in order, publishing what each trained (make chapters)")
    builder.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    lister = sub.add_parser("list", help="chapters, profiles and parameters")
    lister.add_argument("--names", action="store_true", help="only the chapters' names, each after the chapters it reads (make smoke uses it)")
    args = parser.parse_args(argv)
    try:
        if args.command == "publish":
            print(publish(args.html, args.remote, args.branch))
            return 0
        if args.command == "pdf":
            print(f"wrote {pdf(args.single, args.output)}")
            return 0
        if args.command == "chapters":
            return build_all(dry_run=args.dry_run)
        if args.command == "list" and args.names:
            print(" ".join(execution_order()))
            return 0
        if args.command == "list":
            for chapter, params in CHAPTERS.items():
                print(f"{chapter}: profiles full, {', '.join(profiles().get(chapter, {}))}")
                for field in dataclasses.fields(params):
                    print(f"    {field.name} = {field.default!r}")
            return 0
        overrides = _read_parameter_file(args.file) if args.file else {}
        overrides.update({name: _parse_value(value) for name, value in args.parameter})
        profile = overrides.pop("profile", args.profile)
        if args.threads is not None:
            if args.threads < 1:
                raise ParameterError(f"--threads must be >= 1, got {args.threads}; leave it out for TensorFlow's default")
            os.environ[THREADS_VARIABLE] = str(args.threads)  # the kernel inherits it; provenance records it
        output = run(args.chapter, profile, overrides, args.output)
    except (ParameterError, ChapterFailed) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
