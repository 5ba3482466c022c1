"""environment.yml, pyproject.toml, README and CI agree with each other."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib
import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_environment_yml_installs_this_package_with_the_extras_pyproject_defines():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    python = [d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python")]
    assert python, "environment.yml pins no python"
    version = tuple(int(x) for x in python[0].split("=")[1].split("."))
    minimum = tuple(int(x) for x in re.search(r">=\s*([\d.]+)", project["requires-python"]).group(1).split("."))
    assert version >= minimum
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    extras = re.fullmatch(r"-e \.\[([\w,]+)\]", pip[0]).group(1).split(",")
    assert set(extras) <= set(project["optional-dependencies"])
    assert {"book", "test"} <= set(extras)


def test_pins_the_environment_needs():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    deps = project["dependencies"] + project["optional-dependencies"]["book"]
    assert "tensorflow==2.21.*" in deps
    assert "jupyter-book==1.0.4.post1" in deps  # 2.x needs the internet; unpinned pip may backtrack to 0.6.5
    assert any(d.startswith("django-static-mathjax==") for d in deps)


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in readme and "make test" in ci
    assert "make book" in readme


def test_a_pip_installed_package_loads_its_pretrained_optimisers(tmp_path):
    """Build the wheel, install it alone into a folder, and load every registry entry from there."""
    import json
    import subprocess
    import sys

    wheel_dir, target = tmp_path / "wheel", tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheel_dir), str(ROOT)], check=True, capture_output=True)
    wheel = next(wheel_dir.glob("l2l-*.whl"))
    import zipfile

    in_tree = {str(p.relative_to(ROOT)) for p in (ROOT / "l2l").rglob("*.py")}
    assert in_tree <= set(zipfile.ZipFile(wheel).namelist()), sorted(in_tree - set(zipfile.ZipFile(wheel).namelist()))  # a package left out of pyproject's list
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)], check=True, capture_output=True)
    names = sorted(json.loads((ROOT / "l2l/pretrained/registry.json").read_text()))
    assert "mnist" in names
    code = (
        "import l2l, json\n"
        "assert l2l.__file__.startswith(%r), l2l.__file__\n"
        "print(json.dumps({n: type(l2l.LearnedOptimizer.from_pretrained(n)).__name__ for n in l2l.pretrained.names()}))\n"
    ) % str(target)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin", "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {n: "LearnedOptimizer" for n in names}


def test_the_code_passes_the_linter_configured_in_pyproject():
    ruff = Path(sys.executable).parent / "ruff"
    result = subprocess.run([str(ruff), "check", "--no-cache", str(ROOT)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:]


@pytest.mark.parametrize("module, argv", [("l2l.sweep", ["--help"]), ("l2l.recipes", ["--help"]), ("l2l.book", ["run", "--help"]),
                                          ("l2l.pretrained", ["publish", "--help"]), ("l2l.pretrained", ["calibrate", "--help"])])
def test_every_command_line_prints_its_help(module, argv, capsys):
    # argparse formats help strings with %: a bare % in one (the sweep's "--gpus" once had "i % len") crashed --help.
    import importlib

    with pytest.raises(SystemExit) as stop:
        importlib.import_module(module).main(argv)
    assert stop.value.code == 0 and "usage:" in capsys.readouterr().out


def test_the_site_workflow_builds_the_committed_book_and_deploys_it():
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "book.yml").read_text())
    trigger = workflow[True] if True in workflow else workflow["on"]  # YAML 1.1 reads the key `on` as true
    assert trigger["push"]["branches"] == ["main"]
    build = [step.get("run") or step.get("uses") for step in workflow["jobs"]["build"]["steps"]]
    assert "make book" in build and any(s.startswith("actions/upload-pages-artifact") for s in build)
    assert workflow["jobs"]["build"]["steps"][-1]["with"]["path"] == "_build/html"
    assert workflow["jobs"]["deploy"]["steps"][0]["uses"].startswith("actions/deploy-pages")


# What each README Python block is shrunk to when the test runs it: (text in the block, text it becomes). Each must
# match, so a changed block fails here until its shrinking is updated, rather than running at full size.
README_SHRINK = {
    "import keras": [("model.fit(x, y, batch_size=128, epochs=1)", "model.fit(x[:512], y[:512], batch_size=128, epochs=1)")],
    "from l2l import experiment": [("epochs=500", "epochs=2"), ("range(5)", "range(2)"), ("tune_instances=128", "tune_instances=4"),
                                   ("instances=128", "instances=4"), ("tune_steps=100, steps=200, report_steps=(100, 200)",
                                                                      "tune_steps=10, steps=20, report_steps=(10, 20)")],
}


def _readme_blocks():
    readme = (ROOT / "README.md").read_text()
    return re.findall(r"^```python\n(.*?)^```", readme, flags=re.S | re.M)


@pytest.mark.parametrize("index", range(len(_readme_blocks())))
def test_every_python_block_of_the_readme_runs_as_written(index, tmp_path):
    """Each block runs in a fresh interpreter in an empty folder, shrunk only where README_SHRINK says."""
    import os

    block = _readme_blocks()[index]
    (start,) = [k for k in README_SHRINK if block.startswith(k)] or [None]
    assert start is not None, f"README block {index} has no entry in README_SHRINK: say how the test shrinks it (or that it need not)"
    if "load_mnist" in block and not os.environ.get("L2L_DATA_DIR") and not (ROOT.parent / "shared" / "data").is_dir():
        pytest.skip("no dataset mirror: set L2L_DATA_DIR")
    for old, new in README_SHRINK[start]:
        assert old in block, f"README block {index} no longer contains {old!r}: update README_SHRINK"
        block = block.replace(old, new)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "L2L_DATA_DIR": os.environ.get("L2L_DATA_DIR") or str(ROOT.parent / "shared" / "data")}
    out = subprocess.run([sys.executable, "-c", block], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]


def _imports(root):
    """module -> the l2l modules it imports, anywhere in its source (inside functions too: an arrow is an arrow)."""
    import ast

    modules = {}
    for path in root.rglob("*.py"):
        name = ".".join(path.relative_to(root.parent).with_suffix("").parts)
        modules[name.removesuffix(".__init__")] = path
    graph = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([node.module] if node.module else []))
                targets |= {f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names}
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


# Arrows kept only so that an executed chapter's recorded source still imports: each goes when that chapter is re-executed.
COMPAT_ARROWS = {("l2l.pretrained", "l2l.pretrained.maintainer"): "notebooks/beyond.py calls pretrained.calibration_entry"}


def test_the_package_has_no_import_circle_no_module_over_500_lines_and_a_trainer_under_200():
    graph = _imports(ROOT / "l2l")
    for (source, target), why in COMPAT_ARROWS.items():
        assert target in graph[source], f"the compat arrow {source} -> {target} is gone: drop it from COMPAT_ARROWS ({why})"
        graph[source].discard(target)
    circles, done = [], set()

    def visit(node, path):
        for nxt in sorted(graph[node]):
            if nxt in path:
                circles.append(path[path.index(nxt):] + [nxt])
            elif nxt not in done:
                visit(nxt, path + [nxt])
        done.add(node)

    for module in sorted(graph):
        visit(module, [module])
    assert not circles, circles
    long = {str(p.relative_to(ROOT)): n for p in (ROOT / "l2l").rglob("*.py") if (n := len(p.read_text().splitlines())) > 500}
    assert not long, long
    source = (ROOT / "l2l/meta.py").read_text().splitlines()
    start = next(i for i, line in enumerate(source) if line.startswith("class MetaTrainer"))
    end = next(i for i, line in enumerate(source[start + 1:], start + 1) if line and not line[0].isspace())
    assert end - start < 200, f"MetaTrainer is {end - start} lines"
