"""environment.yml, pyproject.toml, README and CI agree with each other."""

import re
import tomllib
from pathlib import Path

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
