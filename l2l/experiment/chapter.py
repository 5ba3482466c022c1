"""The Chapter object: provenance, clock, results folder, glue, and summary.json in the shape every chapter shares."""

import logging
import os
import time

import matplotlib.pyplot as plt

from l2l import evaluate, plots
from l2l.experiment.first_panels import curves_frame, tuning_frame
from l2l.experiment.log import _expected_retracing
from l2l.experiment.reports import (
    protocol_curves_frame,
    protocol_table,
    protocol_tuning_frame,
    protocol_verdicts,
    verdict_html,
)
from l2l.experiment.runs import history_frame, meta_training_figure, meta_training_table
from l2l.provenance import limit_threads, provenance


class Chapter:
    """A chapter run: its parameters, provenance taken at the start, the clock and the results folder."""

    def __init__(self, name, params):
        self.name, self.params = name, params
        limit_threads()  # before any TensorFlow op runs
        logging.getLogger("tensorflow").addFilter(_expected_retracing)
        self.started = time.time()
        self.info = provenance()  # the code this run imports, before any edit made while it runs
        self.results_dir = params.results_dir
        os.makedirs(self.results_dir, exist_ok=True)
        plots.style()

    def path(self, filename):
        return os.path.join(self.results_dir, filename)

    def report_meta_training(self, groups, horizon):
        """meta_training.csv, the validation figure and the per-run table on the page; returns label -> seconds per run."""
        from IPython.display import Markdown, display

        history_frame(groups).to_csv(self.path("meta_training.csv"), index=False)
        meta_training_figure(groups, horizon)
        plt.show()
        display(Markdown(meta_training_table(groups).to_markdown(index=False)))
        return {label: [r.wall_time_s for r in runs.values()] for label, runs in groups.items()}

    def save_panels(self, results, seeds):
        """tuning.csv and curves.csv (each seed's mean curve) of every panel."""
        tuning_frame(results).to_csv(self.path("tuning.csv"), index=False)
        curves_frame(results, seeds).to_csv(self.path("curves.csv"), index=False, float_format="%.6g")

    def save_protocols(self, results, seeds, dense_until=None):
        """curves.csv (each seed's mean curve, dense up to `dense_until`) and tuning.csv of protocol panels name -> ProtocolResult.
        seeds: as protocol_curves_frame (one list, or panel name -> its seeds)."""
        protocol_curves_frame(results, seeds, dense_until=dense_until).to_csv(self.path("curves.csv"), index=False, float_format="%.6g")
        protocol_tuning_frame(results).to_csv(self.path("tuning.csv"), index=False)

    def glue_protocols(self, results, unit, glue=None):
        """Glues each protocol panel's table as table_{name} and its verdicts at every step and metric as verdicts_{name}."""
        from IPython.display import Markdown

        glue = glue or _myst_glue()
        for name, result in results.items():
            glue(f"table_{name}", Markdown(protocol_table(result).to_markdown(index=False)), display=False)
            glue(f"verdicts_{name}", Markdown(protocol_verdicts(result, unit)), display=False)

    def glue_verdict(self, name, sentence, glue=None):
        """Glues a verdict as Markdown under `name`, for its own page, and as HTML under name_html, for the
        introduction, whose {glue} directive renders only HTML and images from another page (verdict_html)."""
        from IPython.display import HTML, Markdown

        glue = glue or _myst_glue()
        glue(name, Markdown(sentence), display=False)
        glue(f"{name}_html", HTML(verdict_html(sentence)), display=False)

    def finish(self, panels, **extra):
        return write_summary(self.results_dir, self.name, self.params.profile, self.params.as_dict(), panels,
                             round(time.time() - self.started, 1), self.info, **extra)

def _myst_glue():
    """myst-nb's glue, imported when a chapter first glues: the package imports without the book's extras."""
    from myst_nb import glue

    return glue

def meta_budgets(epochs):
    """label -> {"meta_epochs", "of_paper"} for summary.json, from label -> the meta-training epochs of its runs (an int,
    or one per run): every learned optimiser's budget, and its share of the DeepMind code's 10,000 epochs."""
    from l2l.paper import PAPER_EPOCHS

    out = {}
    for label, n in epochs.items():
        runs = [int(x) for x in (n if isinstance(n, (list, tuple)) else [n])]
        if not runs or min(runs) < 1:
            raise ValueError(f"meta_budgets: {label!r} needs at least one run of >= 1 epoch, got {n!r}")
        out[label] = {"meta_epochs": runs if len(set(runs)) > 1 else runs[0], "of_paper": max(runs) / PAPER_EPOCHS}
    return out

def write_summary(results_dir, chapter, profile, parameters, panels, wall_time_s, info=None, meta_epochs=None, **extra):
    """Writes results_dir/summary.json in the shape every chapter shares.

    info: provenance() taken when the run started (the code it imported),
    so that edits made while it runs do not change the recorded commit.
    meta_epochs: label -> epochs of its runs, for each learned optimiser the chapter reports; recorded as
    meta_budgets(meta_epochs) under "meta_epochs", so every verdict can name its budget.
    """
    info = info or provenance()
    summary = {
        "chapter": chapter, "profile": profile, "parameters": parameters,
        "versions": info["versions"], "commit": info["commit"], "hardware": info["hardware"],
        "wall_time_s": wall_time_s, "panels": panels, **({"meta_epochs": meta_budgets(meta_epochs)} if meta_epochs else {}), **extra,
    }
    evaluate.write_json(os.path.join(results_dir, "summary.json"), summary, indent=1)  # a committed summary is never left half-written
    return summary

def meta_training_seconds(summary):
    """Seconds of meta-training behind a chapter's summary.json, summed over every run it used.

    A chapter records them at the top level, as label -> seconds per run
    (`meta_training_s`) or label -> meta_training_entry (`meta_training`);
    a chapter that trains nothing (Keras: packaged optimisers) records
    neither, and costs 0. Panels are not read: a run shared by several
    panels would be counted once per panel.
    """
    if "meta_training_s" in summary:
        return float(sum(x for runs in summary["meta_training_s"].values() for x in runs))
    if "meta_training" in summary:
        return float(sum(x for entry in summary["meta_training"].values() for x in entry["meta_training_s"]))
    return 0.0
