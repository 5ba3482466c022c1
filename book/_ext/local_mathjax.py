"""Serve MathJax 3 from the book's own output, so that it reads offline.

The django-static-mathjax wheel ships MathJax's es5 build. At config time this
extension links that folder as `_static/mathjax/` in a staging directory added
to `html_extra_path` (not html_static_path: Jupyter Book 1 would add every .js
file there as a script tag); `mathjax_path` in _config.yml, which Sphinx reads
relative to `_static/`, points at it.
"""

import os
from pathlib import Path


def _mathjax_es5():
    import mathjax  # the django-static-mathjax package

    path = Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"
    if not (path / "tex-chtml.js").exists():
        raise RuntimeError(f"MathJax not found at {path}: pip install django-static-mathjax==3.2.2.1")
    return path


def _add_extra_path(app, config):
    staging = Path(app.outdir).parent / ".mathjax_extra"
    staging.mkdir(parents=True, exist_ok=True)
    (staging / "_static").mkdir(exist_ok=True)
    link = staging / "_static" / "mathjax"
    target = _mathjax_es5()
    if link.is_symlink() and Path(os.readlink(link)) != target:
        link.unlink()
    if not link.exists():
        link.symlink_to(target, target_is_directory=True)
    config.html_extra_path = list(config.html_extra_path) + [str(staging)]


def setup(app):
    app.connect("config-inited", _add_extra_path)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
