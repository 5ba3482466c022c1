"""The chapter layer: the shape every chapter of the book shares, as tested functions.

    chapter = experiment.Chapter("quadratics", params)                  # provenance, clock, results folder
    runs = experiment.meta_train_runs(problem, lstm_config, configs, params.checkpoint_dir, chapter.results_dir, "lstm")
    panel = experiment.Panel("base", "Unseen quadratics", problem, problem, tune_steps=100, steps=1000, report_steps=(100, 1000))
    result = experiment.run_protocol(panel, {"lstm": list(runs.values())}, instances=128, seeds=range(5), tune_instances=128)
    experiment.protocol_sentence(result, 100, "final")                   # a verdict over runs, with its interval
    experiment.read_endpoint(result, chapters.endpoints("mnist")[0])     # a pre-registered endpoint
    chapter.finish({"base": experiment.protocol_summary(result)})        # summary.json in the shared shape

A panel is one comparison: a test problem, the problem the baselines are tuned
on (never the test data), the step they are tuned for, how far the test runs
go and which steps are reported. Learned optimisers enter as lists of
meta-training results: evaluation seed s uses run s mod len(runs).

Modules, by concern: `chapter` (the Chapter object, summary.json), `runs`
(meta-training runs and their reports), `panel` (Panel), `protocol` (the
engine, its verdicts and endpoints), `store` (keys and files of panels),
`reports` (sentences, tables, figures), `budget` (the budget curve of long
runs), `first_panels` (the first panel API, which the Keras chapter still
uses), `log`. Every name stays importable from `l2l.experiment`.
"""

from l2l.experiment.budget import (  # noqa: F401
    budget_crossing,
    budget_curve,
    budget_figure,
    budget_label,
    budget_panel,
    budget_sentence,
    budget_summary,
    budget_table,
    selection_noise,
)
from l2l.experiment.chapter import (  # noqa: F401
    Chapter,
    _myst_glue,
    meta_budgets,
    meta_training_seconds,
    write_summary,
)
from l2l.experiment.first_panels import (  # noqa: F401
    PanelResult,
    curves_frame,
    figure,
    interval,
    panel_entries,
    results_table,
    run_panel,
    tuning_frame,
    verdict,
)
from l2l.experiment.log import _expected_retracing, terminal_log  # noqa: F401
from l2l.experiment.panel import BASELINES, Panel, factories  # noqa: F401
from l2l.experiment.protocol import (  # noqa: F401
    METRICS,
    TUNED,
    VERDICT_OF,
    ProtocolResult,
    _load_protocol,
    _run_protocol,
    _save_protocol,
    _verdicts,
    best_baseline,
    corner_path,
    endpoint_sentence,
    evaluate_each,
    metric_values,
    protocol_view,
    reaching,
    read_endpoint,
    run_protocol,
    tune_multipliers,
)
from l2l.experiment.reports import (  # noqa: F401
    _settings_text,
    ablation_rows,
    add_edges,
    beats,
    cost_table,
    edge_markdown,
    edge_of_grid,
    fmt_interval,
    fmt_reach,
    headline_table,
    protocol_curves,
    protocol_curves_frame,
    protocol_figure,
    protocol_sentence,
    protocol_summary,
    protocol_table,
    protocol_table_at,
    protocol_tuning_frame,
    protocol_verdicts,
    step_summaries,
    step_summary,
    targets_table,
    timing_spread,
    tuned_at_edge,
    verdict_html,
    versus,
    versus_grid,
    versus_sentences,
    within_interval,
)
from l2l.experiment.runs import (  # noqa: F401
    SavedRun,
    best_run,
    curriculum_sentence,
    curriculum_stages,
    history_frame,
    meta_train_runs,
    meta_training_entry,
    meta_training_figure,
    meta_training_table,
    saved_runs,
    validation_jitter,
)
from l2l.experiment.store import (  # noqa: F401
    _load_baselines,
    _load_scores,
    _load_tuning,
    _read_pair,
    _save_baselines,
    _save_tuning,
    _weights_digest,
    _write_pair,
    protocol_key,
)
