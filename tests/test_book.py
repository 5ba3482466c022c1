import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from l2l import book, chapters, provenance, recipes

ROOT = Path(__file__).resolve().parents[1]


def test_parameters_come_from_the_notebook_and_profiles_override_them():
    defaults = book.defaults("quadratics")
    assert defaults["profile"] == "full" and isinstance(defaults["meta_epochs"], int)
    smoke = book.resolve("quadratics", "smoke")
    assert smoke["profile"] == "smoke" and smoke["meta_epochs"] < defaults["meta_epochs"]
    mine = book.resolve("quadratics", "smoke", {"meta_epochs": 3, "meta_lr": 1})
    assert mine["meta_epochs"] == 3 and mine["meta_lr"] == 1.0 and isinstance(mine["meta_lr"], float)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"meta_epoch": 3}, r"unknown parameters \['meta_epoch'\] for chapter quadratics; it takes"),
        ({"meta_epochs": "many"}, "parameter 'meta_epochs' expects int"),
        ({"meta_epochs": 2.5}, "parameter 'meta_epochs' expects int"),
        ({"meta_epochs": True}, "parameter 'meta_epochs' expects int"),
        ({"horizon": -100}, r"Quadratics needs horizon >= 1 \(got -100\)"),
        ({"long_steps": 50}, r"long_steps >= 100 \(got 50\)"),
        ({"distribution": 3}, "parameter 'distribution' expects str"),
        ({"distribution": "cauchy"}, "distribution must be 'normal'"),
    ],
)
def test_bad_parameters_are_rejected_before_any_compute(overrides, message, monkeypatch):
    import papermill

    def must_not_run(*args, **kwargs):
        raise AssertionError("papermill ran despite bad parameters")

    monkeypatch.setattr(papermill, "execute_notebook", must_not_run)
    with pytest.raises(book.ParameterError, match=message):
        book.run("quadratics", "full", overrides)


def test_unknown_chapter_and_profile_are_named(capsys):
    with pytest.raises(book.ParameterError, match="unknown chapter 'cifar100'"):
        book.resolve("cifar100")
    with pytest.raises(book.ParameterError, match="unknown profile 'tiny'"):
        book.resolve("quadratics", "tiny")
    assert book.main(["run", "quadratics", "-p", "meta_epochs", "ten"]) == 2
    assert "expects int" in capsys.readouterr().err


def test_parameter_files_and_values_fail_with_the_file_named(tmp_path, capsys):
    broken = tmp_path / "broken.yaml"
    broken.write_text("meta_epochs: [1,\n")
    listing = tmp_path / "list.yaml"
    listing.write_text("- 1\n- 2\n")
    for argv, message in [
        (["run", "quadratics", "-f", str(tmp_path / "missing.yaml")], "missing.yaml' does not exist"),
        (["run", "quadratics", "-f", str(broken)], "broken.yaml' is not valid YAML"),
        (["run", "quadratics", "-f", str(listing)], "list.yaml' holds a list, not a mapping"),
    ]:
        assert book.main(argv) == 2
        assert message in capsys.readouterr().err
    assert book._parse_value("1e-3") == 0.001 and book._parse_value("normal") == "normal" and book._parse_value("[1, 2]") == [1, 2]


def test_profiles_other_than_full_write_outside_the_book():
    smoke = book.resolve("quadratics", "smoke")
    assert smoke["results_dir"] == "_build/smoke/results/quadratics"
    assert book.resolve("quadratics", "smoke", {"results_dir": "elsewhere"})["results_dir"] == "elsewhere"
    assert book.resolve("quadratics")["results_dir"] == "book/results/quadratics"
    # Every folder a smoke run writes (results, runs, finished panels) lies outside book/, whose full-profile
    # runs and panels are committed.
    for chapter in book.profiles():
        if "smoke" in book.profiles()[chapter]:
            folders = {k: v for k, v in book.resolve(chapter, "smoke").items() if k.endswith("_dir")}
            assert not [k for k, v in folders.items() if str(v).startswith("book")], (chapter, folders)


def test_listing_chapters_does_not_import_tensorflow():
    code = "import sys, l2l.book; l2l.book.main(['list']); assert 'tensorflow' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, cwd=ROOT).returncode == 0


def test_only_papermills_injected_parameters_are_shown_and_folded():
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("profile = 'full'", metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell("profile = 'smoke'", metadata={"tags": ["injected-parameters"]})]
    book._show_parameters_once(nb)
    assert nb.cells[0].metadata["tags"] == ["parameters", "remove-cell"] and nb.cells[1].metadata["tags"] == ["injected-parameters", "hide-input"]


def test_the_recorded_commit_is_dirty_only_when_code_changed(tmp_path):
    git = lambda *args: subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=tmp_path, check=True, capture_output=True)
    (tmp_path / "l2l" / "pretrained").mkdir(parents=True)
    (tmp_path / "l2l" / "pretrained" / "__init__.py").write_text("x = 1\n")
    (tmp_path / "l2l" / "pretrained" / "mnist.weights.h5").write_bytes(b"weights")
    (tmp_path / "book").mkdir()
    (tmp_path / "book" / "mnist.ipynb").write_text("{}")
    git("init", "-q")
    git("add", ".")
    git("commit", "-q", "-m", "start")
    clean = provenance.git_commit(tmp_path)
    assert len(clean) == 40
    (tmp_path / "l2l" / "pretrained" / "mnist.weights.h5").write_bytes(b"republished")
    (tmp_path / "book" / "mnist.ipynb").write_text('{"executed": true}')
    assert provenance.git_commit(tmp_path) == clean  # data a run writes
    (tmp_path / "l2l" / "pretrained" / "__init__.py").write_text("x = 2\n")
    assert provenance.git_commit(tmp_path) == clean + "-dirty"  # code


def test_native_log_lines_are_dropped_and_real_stderr_kept():
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("import tensorflow")
    cell.outputs = [
        nbformat.v4.new_output("stream", name="stderr", text="I0000 00:00:1795773282.135366    2574 port.cc:153] oneDNN custom operations are on.\n"),
        nbformat.v4.new_output("stream", name="stderr", text="E0000 00:00:1795773283.908739    2574 cuda_platform.cc:52] failed call to cuInit\nUserWarning: real warning\n"),
        nbformat.v4.new_output("stream", name="stdout", text="hello\n"),
    ]
    nb.cells.append(cell)
    book._drop_native_log_lines(nb)
    assert [o.get("text") for o in nb.cells[0].outputs] == ["UserWarning: real warning\n", "hello\n"]


CHAPTERS = list(chapters.CHAPTERS)  # declared once, in l2l/chapters/__init__.py


SMOKE_PATHS = {
    "quadratics": lambda site: {"results_dir": str(site / "results/quadratics"), "checkpoint_dir": str(site / "ckpt"), "runs_root": str(site / "ckpt")},
    "mnist": lambda site: {"results_dir": str(site / "results/mnist"), "checkpoint_dir": str(site / "ckpt"), "budget_root": str(site / "budget")},
    "keras": lambda site: {"results_dir": str(site / "results/keras")},
    "cifar": lambda site: {"results_dir": str(site / "results/cifar"), "checkpoint_dir": str(site / "ckpt"), "panel_dir": str(site / "panels")},
    "stn": lambda site: {"results_dir": str(site / "results/stn"), "checkpoint_dir": str(site / "ckpt")},
    "hyper": lambda site: {"results_dir": str(site / "results/hyper"), "checkpoint_dir": str(site / "ckpt-sweeps")},
    "beyond": lambda site: {"results_dir": str(site / "results/beyond"), "checkpoint_dir": str(site / "ckpt"), "panel_dir": str(site / "panels")},
    "benchmarks": lambda site: {"results_root": str(site / "results")},
}


# benchmarks reads every other chapter's summary.json from the site's results: it runs after them.
SMOKE_NEEDS = {"benchmarks": chapters.NEEDS["benchmarks"]}  # the others read the committed full results, not the smoke ones


@contextlib.contextmanager
def _locked(path):
    """An exclusive lock on `path` (a file), so that two pytest-xdist workers do not execute one chapter twice."""
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


@pytest.fixture(scope="session")
def smoke_site(tmp_path_factory):
    """A copy of the book into which the chapters are executed in their smoke profile (smoke(site, chapter)), shared by
    every pytest-xdist worker of the session (the parent of a worker's base folder is the session's)."""
    base = tmp_path_factory.getbasetemp()
    root = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    site = root / "smoke-site"
    with _locked(root / "smoke-site.lock"):
        if not (site / "book").exists():
            (site / "book.partial").mkdir(parents=True, exist_ok=True)
            shutil.copy(ROOT / "_config.yml", site)
            # Everything of the book but its executed chapters and their results: pages, table of contents, extensions,
            # style, bibliography.
            for item in sorted(p.name for p in (ROOT / "book").iterdir() if p.suffix != ".ipynb" and p.name not in ("results", "__pycache__")):
                source = ROOT / "book" / item
                (shutil.copytree if source.is_dir() else shutil.copy)(source, site / "book.partial" / item)
            # A chapter not yet executed in its full profile is not in the book's table of contents; the smoke book lists it.
            toc = (site / "book.partial" / "_toc.yml").read_text()
            missing = [c for c in CHAPTERS if f"book/{c}" not in toc]
            (site / "book.partial" / "_toc.yml").write_text(toc.rstrip("\n") + "".join(f"\n  - file: book/{c}" for c in missing) + "\n")
            os.replace(site / "book.partial", site / "book")
    return site


def smoke(site, chapter):
    """Executes `chapter` (after what it needs) through papermill in its smoke profile into the site, once per session
    whichever worker asks first; the others wait for it."""
    for need in SMOKE_NEEDS.get(chapter, ()):
        smoke(site, need)
    with _locked(site / f"{chapter}.lock"):
        if not (site / "book" / f"{chapter}.ipynb").exists():
            book.run(chapter, "smoke", SMOKE_PATHS[chapter](site), output=site / "book" / f"{chapter}.ipynb", log_output=False)
    return site


@pytest.mark.slow
@pytest.mark.parametrize("chapter", CHAPTERS)
def test_smoke_chapter_through_papermill_records_its_provenance_and_summary(smoke_site, chapter):
    smoke(smoke_site, chapter)
    nb = nbformat.read(smoke_site / "book" / f"{chapter}.ipynb", as_version=4)
    meta = nb.metadata["l2l"]
    assert meta["parameters"]["profile"] == "smoke"
    assert len(meta["source_sha256"]) == 64 and meta["versions"]["tensorflow"].startswith("2.21")
    assert meta["commit"] and meta["wall_time_s"] > 0 and meta["hardware"]["cpus"] >= 1
    assert not [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]

    if chapter == "benchmarks":
        return  # reads results; writes none
    results = smoke_site / "results" / chapter
    summary = json.loads((results / "summary.json").read_text())
    assert {"chapter", "profile", "parameters", "versions", "commit", "wall_time_s", "panels"} <= set(summary)
    assert summary["chapter"] == chapter and summary["parameters"] == meta["parameters"]
    for panel in summary["panels"].values():
        assert any(name.startswith("lstm") for name in panel.get("optimisers", {})) or not panel.get("optimisers")
        for name, entry in panel.get("optimisers", {}).items():
            assert (entry["lr"] is None) == name.startswith("lstm")
            for value in [*entry["loss"].values(), *entry.get("trajectory_mean", {}).values()]:
                assert value["ci95"][0] <= value["mean"] <= value["ci95"][1] and value.get("runs", 2) >= 1
    assert (results / "curves.csv").exists()
    if chapter == "quadratics":
        assert set(summary["panels"]["base"]["optimisers"]) == {"lstm", "sgd", "rmsprop", "adam", "nag"}
        assert set(summary["endpoints"]) == {"paper", "deepmind"} and all(r["meta_epochs"] == summary["parameters"]["meta_epochs"]
                                                                          for r in summary["endpoints"].values())
    if chapter == "mnist":
        assert set(summary["panels"]) == {"base", "hidden40", "layers2", "relu", "fashion", "deepmind_settings", "budget_endpoints"}
        from l2l.chapters import mnist

        assert set(summary["endpoints"]) == {e.name for e in mnist.ENDPOINTS}  # every pre-registered endpoint read and recorded
        primary = summary["endpoints"]["primary"]
        assert primary["outcome"] in ("reproduced", "not reproduced", "inconclusive") and primary["runs"] == summary["parameters"]["budget_runs"]
        assert primary["meta_epochs"] == summary["parameters"]["budget_epochs"] < primary["preregistered_epochs"]  # tiny smoke runs, and says so
        assert summary["meta_epochs"]["lstm_budget"]["meta_epochs"] == summary["parameters"]["budget_epochs"]
        assert {"nag_decay", "adam_decay", "lstm_budget"} <= set(summary["panels"]["budget_endpoints"]["optimisers"])
        assert set(summary["panels"]["hidden40"]["optimisers"]) == {"lstm", "lstm_tuned", "sgd", "rmsprop", "adam", "nag"}
        horizon = str(summary["parameters"]["horizon"])
        assert summary["panels"]["base"]["optimisers"]["lstm"]["loss"][horizon]["runs"] == summary["parameters"]["meta_seeds"]
        base = summary["panels"]["base"]["optimisers"]["lstm"]
        assert set(base["accuracy"]) == set(base["loss"]) and 0 <= base["accuracy"][horizon]["mean"] <= 1
    if chapter == "cifar":
        assert set(summary["panels"]) == {"cifar10", "cifar5", "cifar2", "mnist_transfer", "keras", "one_lstm"}
        assert set(summary["panels"]["mnist_transfer"]["optimisers"]) == {"lstm_mnist", "lstm_mnist_tuned", "sgd", "rmsprop", "adam", "nag"}
        assert set(summary["panels"]["cifar5"]["optimisers"]) == {"lstm", "lstm_sub", "sgd", "rmsprop", "adam", "nag"}
        horizon = str(summary["parameters"]["horizon"])
        assert summary["panels"]["cifar10"]["optimisers"]["lstm"]["loss"][horizon]["runs"] == summary["parameters"]["meta_seeds"]
        assert summary["panels"]["cifar10"]["optimisers"]["adam"] == summary["panels"]["one_lstm"]["optimisers"]["adam"]  # one evaluation
    if chapter == "stn":
        assert set(summary["panels"]) == {"exemplar", "exemplar_unseen", "pairs", "unseen_digits", "large_warps", "fashion", "amortised", "single_template"}
        pairs = summary["panels"]["pairs"]
        assert set(pairs["optimisers"]["lstm"]) >= {"corner_error", "success"} and "corner" in pairs["verdicts"]["10"]
        assert pairs["gauss_newton"]["entry"]["corner_error"]["20"]["runs"] == summary["parameters"]["meta_seeds"]
        exemplar = summary["panels"]["exemplar"]
        assert {"damping", "levels", "tuning"} <= set(exemplar["lucas_kanade"]["entry"]) and set(exemplar["lucas_kanade"]["verdicts"]["10"]) == {
            "final", "mean", "corner", "median", "success"}
        assert set(exemplar["robust"]["10"]["verdicts"]) == {"median", "success"}
        assert {"unaligned", "true map", "lstm", "lucas_kanade"} <= set(exemplar["downstream"]["accuracy"]) and summary["panels"]["fashion"]["downstream"] == {}
        assert set(summary["panels"]["amortised"]["optimisers"]) >= {"lstm", "lstm_align", "lstm_align_tuned", "nag"}
        assert {"failed", "solved_by", "vs_identity"} <= set(summary["panels"]["amortised"]["reading"])
        assert all("plausible_share" in c for c in summary["panels"]["single_template"]["map_scale"].values())
        assert set(summary["meta_epochs"]) == {"exemplar LSTM", "alignment LSTM", "STN LSTM"}
    if chapter == "hyper":
        assert set(summary["panels"]["best"]["optimisers"]) == {"lstm", "lstm_paper", "sgd", "rmsprop", "adam", "nag"}
        assert summary["search"]["complete"] + summary["search"]["pruned"] + summary["search"]["failed"] == 4
        main, second = summary["designs"]["main"], summary["designs"]["second"]
        assert main["trials"] == second["trials"] == 8 and main["trained"] == 8  # the smoke's quadratic design trains; its MNIST one does not
        assert {r["setting"] for r in main["effects"]["final"]} == {"meta_lr", "unroll"} and second["effects"] == {"final": None, "mean": None}
        assert summary["best_point"]["settings"]["meta_lr"] in (0.01, 0.03) and "seed" not in summary["best_point"]["settings"]
        assert (results / "smoke_mnist.db").exists() and (results / "smoke_quadratic_design.db").exists() and (results / "design_smoke_design.csv").exists()
    if chapter == "beyond":
        assert set(summary["panels"]) == {"mnist10", "mnist20", "relu", "cnn", "cifar10", "keras", "ablation"}  # the smoke profile's steps
        assert set(summary["panels"]["mnist20"]["against"]) == {"final/nag", "final/adam", "mean/nag", "mean/adam"}
        assert set(summary["panels"]["keras"]["models"]) == {"mnist_mlp", "mnist_convnet", "cifar_cnn"}
        assert all(isinstance(summary["panels"][k]["tuned_at_edge"], list) for k in ("mnist10", "mnist20", "relu", "cnn", "cifar10"))
        assert set(summary["timing_spread"]) == {"mnist", "ablation", "relu", "cnn", "cifar10"} and min(summary["timing_spread"].values()) >= 1
        assert set(summary["panels"]["keras"]["multipliers_tried"]) == {f"{m:g}" for m in summary["parameters"]["calibration_grid"]}  # no refinement
        # The chapter's calibration is filed for publish under the general optimiser's run, as calibrate would record it.
        calibration = summary["calibrations"][summary["panels"]["keras"]["general_run"]]
        assert calibration["learning_rate"] == summary["panels"]["keras"]["general_multiplier"] and set(calibration["tried"]) == set(
            summary["panels"]["keras"]["multipliers_tried"]) and calibration["commit"] == summary["panels"]["keras"]["computed_by"]["commit"]
        assert {"lstm_paper", "lstm_inputs", "lstm_rescale", "lstm_curriculum", "lstm_imitation", "lstm_nominal", "lstm_combined"} <= set(
            summary["panels"]["ablation"]["optimisers"])
        assert summary["panels"]["relu"]["optimisers"]["lstm_tuned"]["loss"]["20"]["runs"] == summary["parameters"]["final_seeds"]
        # The general optimiser has fewer runs than the seeds (seed s uses run s mod n): each of its runs tuned once.
        assert summary["parameters"]["general_seeds"] < summary["parameters"]["final_seeds"]
        assert len(summary["panels"]["relu"]["optimisers"]["lstm_general_tuned"]["multiplier"]["20"]["final"]) == summary["parameters"]["general_seeds"]
        assert len(summary["targets"]) == 2 * 2 + 2 + 3 + 1 and set(summary["cost_hours"]) == {*recipes.TECHNIQUES, "combined", "general"}


@pytest.mark.slow
def test_the_book_builds_from_the_smoke_chapters_with_warnings_as_errors(smoke_site):
    for chapter in CHAPTERS:
        smoke(smoke_site, chapter)
    toc = (smoke_site / "book" / "_toc.yml").read_text()
    assert all(f"book/{c}" in toc for c in CHAPTERS)
    build = subprocess.run(
        [str(Path(sys.executable).parent / "jupyter-book"), "build", str(smoke_site), "--toc", str(smoke_site / "book/_toc.yml"),
         "--config", str(smoke_site / "_config.yml"), "-W", "-n", "--keep-going"],
        capture_output=True, text=True, cwd=smoke_site,
    )
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    html = (smoke_site / "_build/html/book/quadratics.html").read_text()
    assert "the LSTM" in html and "_static/mathjax/tex-chtml.js" in html
    assert "dropdown-download-buttons" not in html  # no download menu: make pdf is the printed book
    assert (smoke_site / "_build/html/_static/mathjax/tex-chtml.js").exists()
    if shutil.which("chromium") is None:
        pytest.skip("no chromium to print the PDF with (apt-get install chromium; .ci/run installs it)")
    single = subprocess.run(
        [str(Path(sys.executable).parent / "jupyter-book"), "build", str(smoke_site), "--toc", str(smoke_site / "book/_toc.yml"),
         "--config", str(smoke_site / "_config.yml"), "--builder", "singlehtml", "-W", "-n", "--keep-going"], capture_output=True, text=True, cwd=smoke_site)
    assert single.returncode == 0, single.stdout[-3000:] + single.stderr[-3000:]
    import pypdf

    reader = pypdf.PdfReader(book.pdf(cwd=smoke_site))
    text = " ".join(page.extract_text() for page in reader.pages)
    # Every chapter in it, and none of the site's chrome nor the code cells the notebooks hold.
    assert len(reader.pages) >= len(CHAPTERS) and all(title in text for title in ("Quadratic functions", "MNIST", "CIFAR-10", "References"))
    assert not any(chrome in text for chrome in ("Search Ctrl", "Show code cell", "Skip to main content", "# Parameters"))


@pytest.mark.slow
@pytest.mark.xdist_group("build_failed")  # it and the cross-filesystem test write _build/failed/quadratics.ipynb: one worker runs both
def test_a_failing_run_keeps_the_good_notebook_and_results(tmp_path):
    output, results = tmp_path / "quadratics.ipynb", tmp_path / "results"
    output.write_text("the good executed chapter")
    (results / "runs" / "key").mkdir(parents=True)  # a long run's folder, which a failure must not touch
    (results / "runs" / "key" / "run.json").write_text("{}")
    (results / "summary.json").write_text("the good summary")
    with pytest.raises(book.ChapterFailed, match=r"chapter quadratics failed \(.*\); .*quadratics.ipynb and .*results are as they were; the failed notebook is"):
        # A checkpoint root that is a file fails inside the notebook, at the first run, after the chapter made its results folder
        # (a bad value of a parameter is refused before the kernel starts: this is a failure only the run can meet).
        (tmp_path / "not_a_folder").write_text("")
        book.run("quadratics", "smoke", {"checkpoint_dir": str(tmp_path / "not_a_folder"), "results_dir": str(results)}, output=output, log_output=False)
    assert output.read_text() == "the good executed chapter"
    assert sorted(p.name for p in results.iterdir()) == ["runs", "summary.json"] and (results / "summary.json").read_text() == "the good summary"
    assert (results / "runs" / "key" / "run.json").read_text() == "{}"
    assert not (tmp_path / "results.before-run").exists() and not (tmp_path / "quadratics.running.ipynb").exists()
    assert (ROOT / "_build" / "failed" / "quadratics.ipynb").exists()


def test_a_stop_while_the_executed_notebook_is_written_leaves_the_good_one(tmp_path, monkeypatch):
    import nbformat
    import papermill

    output = tmp_path / "quadratics.ipynb"
    output.write_text("the good executed chapter")
    write = nbformat.write

    def executes(notebook, path, **kwargs):  # a chapter that ran to the end
        write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1")]), path)

    def dies_midway(notebook, path, **kwargs):
        Path(path).write_text('{"cells": [')
        raise KeyboardInterrupt  # a stop while the run writes its notebook's provenance

    monkeypatch.setattr(papermill, "execute_notebook", executes)
    monkeypatch.setattr(nbformat, "write", dies_midway)
    with pytest.raises(KeyboardInterrupt):
        book.run("quadratics", "smoke", {"results_dir": str(tmp_path / "results")}, output=output, log_output=False)
    assert output.read_text() == "the good executed chapter"
    monkeypatch.setattr(nbformat, "write", write)
    book.run("quadratics", "smoke", {"results_dir": str(tmp_path / "results")}, output=output, log_output=False)
    assert nbformat.read(output, as_version=4).metadata["l2l"]["chapter"] == "quadratics"
    assert not (tmp_path / "quadratics.running.ipynb").exists()


def test_a_chapter_can_be_held_to_one_thread_and_says_so():
    code = ("from l2l import provenance; import tensorflow as tf; n = provenance.limit_threads(); "
            "print(n, tf.config.threading.get_intra_op_parallelism_threads(), provenance.provenance()['hardware']['threads'])")
    env = {**__import__("os").environ, provenance.THREADS_VARIABLE: "1"}
    env.pop(provenance.PROVENANCE_VARIABLE, None)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT)
    assert out.stdout.split() == ["1", "1", "1"], out.stderr[-2000:]
    env[provenance.THREADS_VARIABLE] = "two"
    bad = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT)
    assert "L2L_THREADS must be a positive integer, got 'two'" in bad.stderr
    assert book.main(["run", "quadratics", "--threads", "0"]) == 2


def test_jemalloc_changes_no_number_and_the_provenance_names_the_allocator(tmp_path):
    """make chapters runs the chapters under jemalloc where it is installed: the same meta-training must end bit for bit where glibc's malloc ends it."""
    import os

    preload = provenance.jemalloc_environment()
    assert provenance.jemalloc_environment(paths=[str(tmp_path / "missing.so")]) == {}
    if not preload:
        pytest.skip("jemalloc is not installed (Debian: libjemalloc2; .ci/run installs it)")
    code = ("import hashlib, numpy as np; from l2l import learned_optimizer, meta, problems, provenance; "
            "r = meta.meta_train(problems.Quadratic(dims=10), learned_optimizer.LSTMConfig(hidden=8), meta.MetaConfig(seed=0, epochs=4, batch=16, horizon=12, "
            "unroll=4, valid_every=2, valid_instances=8), log=lambda line: None); "
            "print(provenance.provenance()['hardware']['allocator'], hashlib.sha256(b''.join(np.asarray(r.meta_params[k]).tobytes() for k in sorted(r.meta_params))).hexdigest())")
    base = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "MALLOC_CONF", provenance.PROVENANCE_VARIABLE)}
    runs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env={**base, **extra}) for extra in ({}, preload)]
    (glibc, plain), (jemalloc, preloaded) = [run.stdout.split()[-2:] for run in runs]
    assert (glibc, jemalloc) == ("default", "jemalloc") and plain == preloaded, [run.stderr[-2000:] for run in runs]


def test_a_killed_runs_leftovers_are_put_back_before_the_next_run(tmp_path):
    results = tmp_path / "results"
    (results / "runs").mkdir(parents=True)
    (results / "summary.json").write_text("half written by a killed run")
    (results / "curves.csv").write_text("half")
    backup = tmp_path / "results.before-run"
    backup.mkdir()
    (backup / "summary.json").write_text("the good summary")
    again = book._set_aside(results)
    assert again == backup and (results / "summary.json").read_text() == "the good summary"
    assert not (results / "curves.csv").exists() and (results / "runs").is_dir()  # the killed run's new file is gone, subfolders kept
    assert sorted(p.name for p in backup.iterdir()) == ["summary.json"] and (backup / "summary.json").read_text() == "the good summary"


@pytest.mark.slow
def test_sigterm_during_a_run_puts_the_good_results_back(tmp_path):
    import os
    import signal
    import time

    results = tmp_path / "results"
    results.mkdir()
    (results / "summary.json").write_text("the good summary")
    command = [sys.executable, "-m", "l2l.book", "run", "quadratics", "--profile", "smoke", "-p", "results_dir", str(results),
               "-o", str(tmp_path / "q.ipynb"), "-p", "checkpoint_dir", str(tmp_path / "ckpt")]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not (tmp_path / "ckpt").exists():  # the chapter is meta-training
        time.sleep(0.5)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 2 and "terminated by signal" in err, err[-2000:]
    assert sorted(os.listdir(results)) == ["summary.json"] and (results / "summary.json").read_text() == "the good summary"
    assert not (tmp_path / "results.before-run").exists()


@pytest.mark.xdist_group("build_failed")
@pytest.mark.parametrize("copy_fails", [False, True])
def test_a_failure_with_the_output_on_another_filesystem_says_its_cause_and_leaves_no_running_file(tmp_path, monkeypatch, copy_fails):
    import errno
    import os

    import papermill

    real_replace, real_copy = os.replace, shutil.copyfile

    def replace(source, target):  # as between two filesystems: a rename only within one folder tree
        if Path(source).parent != Path(target).parent:
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        real_replace(source, target)

    def copy(source, target):
        if copy_fails:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_copy(source, target)

    def fails(notebook, path, **kwargs):
        Path(path).write_text('{"cells": []}')
        raise RuntimeError("the chapter's own error")

    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setattr(shutil, "copyfile", copy)
    monkeypatch.setattr(papermill, "execute_notebook", fails)
    failed = ROOT / "_build" / "failed" / "quadratics.ipynb"
    failed.unlink(missing_ok=True)
    output = tmp_path / "elsewhere" / "quadratics.ipynb"
    said = "the failed notebook could not be kept .*No space left" if copy_fails else f"the failed notebook is {failed}"
    with pytest.raises(book.ChapterFailed, match=rf"failed \(RuntimeError: the chapter's own error\); .*; {said}"):
        book.run("quadratics", "smoke", {"results_dir": str(tmp_path / "results")}, output=output, log_output=False)
    assert not (tmp_path / "elsewhere" / "quadratics.running.ipynb").exists()
    assert failed.exists() != copy_fails and not list(failed.parent.glob(".*.tmp"))


def test_publish_pushes_the_built_book_to_a_gh_pages_branch_of_a_bare_repository(tmp_path):
    """make publish, against a local bare repository standing in for the host."""
    git = lambda *args, cwd: subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout
    remote, clone = tmp_path / "host.git", tmp_path / "clone"
    git("init", "--bare", "-q", str(remote), cwd=tmp_path)
    git("init", "-q", str(clone), cwd=tmp_path)
    for key, value in [("user.email", "l2l@example.org"), ("user.name", "l2l")]:
        git("config", key, value, cwd=clone)
    (clone / "README.md").write_text("the book's clone\n")
    git("add", "README.md", cwd=clone)
    git("commit", "-q", "-m", "first", cwd=clone)
    git("remote", "add", "origin", str(remote), cwd=clone)
    with pytest.raises(book.ParameterError, match="holds no built book .*run `make book` first"):
        book.publish(cwd=clone)
    site = clone / "_build" / "html"
    (site / "book").mkdir(parents=True)
    (site / "index.html").write_text("<html>the book</html>")
    (site / "book" / "mnist.html").write_text("<html>MNIST</html>")
    head = git("rev-parse", "--short", "HEAD", cwd=clone).strip()
    assert book.publish(cwd=clone) == f"The book built from {head}"
    assert sorted(git("ls-tree", "-r", "--name-only", "gh-pages", cwd=remote).split()) == [".nojekyll", "book/mnist.html", "index.html"]
    assert git("show", "gh-pages:index.html", cwd=remote) == "<html>the book</html>"
    # Published again after a change: the branch holds the new book only, in one commit (no history to carry).
    (site / "book" / "mnist.html").unlink()
    book.publish(cwd=clone)
    assert sorted(git("ls-tree", "-r", "--name-only", "gh-pages", cwd=remote).split()) == [".nojekyll", "index.html"]
    assert len(git("log", "--oneline", "gh-pages", cwd=remote).splitlines()) == 1
    with pytest.raises(book.ParameterError, match="publishing to gh-pages of 'nowhere' failed"):
        book.publish(cwd=clone, remote="nowhere")


def test_page_problems_finds_stderr_log_lines_and_wide_tables():
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("x")
    cell.outputs = [nbformat.v4.new_output("stream", name="stderr", text="RuntimeWarning: overflow\n"),
                    nbformat.v4.new_output("stream", name="stdout", text="fine\nwrote book/results/x/summary.json\n"),
                    nbformat.v4.new_output("display_data", data={"text/markdown": "| a | b |\n|---|---|\n| 1 | 2 |"}),
                    nbformat.v4.new_output("display_data", data={"text/markdown": "|" + " c |" * 9 + "\n"}),
                    # a table glued for a {glue:md} directive: myst-nb renders it on the page all the same
                    nbformat.v4.new_output("display_data", data={"application/papermill.record/text/markdown": "|" + " d |" * 8 + "\n"},
                                           metadata={"scrapbook": {"name": "table_x"}})]
    nb.cells.append(cell)
    found = book.page_problems(nb)
    assert found == ["cell 0: stderr output: RuntimeWarning: overflow", "cell 0: a log line: wrote book/results/x/summary.json",
                     "cell 0: a table of 9 columns (more than 7)", "cell 0: a table of 8 columns (more than 7)"]
    assert book.page_problems(nb, max_columns=9) == found[:2]


def test_no_committed_chapter_page_shows_more_problems_than_recorded():
    """A ratchet: re-executed chapters may only lower tests/data/page_problems.json's counts (the reader's-book issue
    asks for none); a new stderr line, log line or wide table on a committed page fails here."""
    recorded = json.loads((ROOT / "tests" / "data" / "page_problems.json").read_text())["counts"]
    assert set(recorded) == set(CHAPTERS)
    for chapter in CHAPTERS:
        found = book.page_problems(nbformat.read(ROOT / "book" / f"{chapter}.ipynb", as_version=4))
        assert len(found) <= recorded[chapter], f"{chapter}: {found}"
