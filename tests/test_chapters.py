import dataclasses

import pytest

from l2l import chapters


@dataclasses.dataclass(frozen=True)
class Sweep(chapters.ChapterParameters):
    log10_lr: int = -3  # a negative integer is a fine value here
    rates: list[float] = (0.1, 1)  # a list parameter


def test_types_come_from_the_annotations_and_negative_ints_are_allowed_where_declared():
    p = Sweep(log10_lr=-4, rates=[1, 2.5])
    assert p.log10_lr == -4 and p.rates == [1.0, 2.5] and all(isinstance(r, float) for r in p.rates)
    assert Sweep.from_namespace({"log10_lr": -2, "unrelated": object()}).log10_lr == -2
    assert Sweep().as_dict() == {"profile": "full", "log10_lr": -3, "rates": [0.1, 1.0]}


@pytest.mark.parametrize("values, message", [
    ({"log10_lr": 2.5}, "parameter 'log10_lr' expects int, got float 2.5"),
    ({"log10_lr": True}, "parameter 'log10_lr' expects int"),
    ({"rates": 0.1}, "parameter 'rates' expects list"),
    ({"rates": [0.1, "x"]}, r"parameter 'rates\[1\]' expects float"),
])
def test_ill_typed_values_name_the_field(values, message):
    with pytest.raises(chapters.ParameterError, match=message):
        Sweep(**values)


def test_every_chapter_checks_its_ranges_and_defaults_pass():
    for params in chapters.CHAPTERS.values():
        params()
    with pytest.raises(chapters.ParameterError, match=r"Mnist needs meta_seeds >= 1 \(got 0\)"):
        chapters.Mnist(meta_seeds=0)
    with pytest.raises(chapters.ParameterError, match="budget_every must be a multiple of 500"):
        chapters.Mnist(budget_every=750)
    with pytest.raises(chapters.ParameterError, match="budget_horizon must be a multiple of the recipe's unroll 20, got 30"):
        chapters.Mnist(budget_horizon=30, budget_train=True)
    # Runs of another size are never the campaign's: reading them would wait on runs nobody trains.
    with pytest.raises(chapters.ParameterError, match="describe runs the campaign never trains .* set budget_train: true"):
        chapters.Mnist(budget_valid_instances=2)
    chapters.Mnist(budget_horizon=20, budget_valid_instances=2, budget_train=True)
    with pytest.raises(chapters.ParameterError, match=r"Keras.last \(40\) cannot exceed steps \(30\)"):
        chapters.Keras(steps=30, last=40)
    with pytest.raises(chapters.ParameterError, match="multiplier_grid needs at least one positive"):
        chapters.Keras(multiplier_grid=[0.0])
    with pytest.raises(chapters.ParameterError, match="adam_grid needs at least one positive"):
        chapters.Keras(adam_grid=[])
    with pytest.raises(chapters.ParameterError, match=r"sub_labels must be held out from both subsets, but \[4\]"):
        chapters.Cifar(sub_labels=[4, 5, 6, 7, 8])
    with pytest.raises(chapters.ParameterError, match=r"sub_labels \(\[5, 6, 7\]\) must be as many as cifar5_labels"):
        chapters.Cifar(sub_labels=[5, 6, 7])
    with pytest.raises(chapters.ParameterError, match="cifar2_labels needs at least two distinct CIFAR-10 labels"):
        chapters.Cifar(cifar2_labels=[0, 10])
    with pytest.raises(chapters.ParameterError, match=r"horizon \(90\) must be a multiple of unroll \(20\)"):
        chapters.Cifar(horizon=90)
    with pytest.raises(chapters.ParameterError, match="must contain {seed}"):
        chapters.Cifar(mnist_weights="book/results/mnist/lstm_paper_seed0.weights.h5")


def test_chapter_grids_default_to_the_harness_grids_so_the_full_profile_keeps_its_panels():
    """The full profile's cached panels are keyed by these grids (experiment.protocol_key): the defaults are the constants."""
    from l2l import evaluate, pretrained

    b = chapters.Beyond()
    assert tuple(b.lr_grid) == evaluate.LR_GRID and tuple(b.multiplier_grid) == evaluate.MULTIPLIER_GRID
    assert {"nag": {"momentum": tuple(b.nag_momenta)}, "adam": {"beta_1": tuple(b.adam_beta1)}} == evaluate.EXTRA_GRIDS
    assert tuple(b.calibration_grid) == pretrained.CALIBRATION_GRID
    assert tuple(chapters.Mnist().lr_grid) == tuple(chapters.Stn().lr_grid) == tuple(chapters.Mnist().endpoint_lr_grid) == evaluate.LR_GRID
    with pytest.raises(chapters.ParameterError, match=r"Beyond.calibration_grid needs at least one positive value, got \[\]"):
        chapters.Beyond(calibration_grid=[])
    with pytest.raises(chapters.ParameterError, match=r"Beyond.lr_grid needs at least one positive value, got \[0.0\]"):
        chapters.Beyond(lr_grid=[0.0])


def test_beyond_tunes_convolutional_panels_on_their_own_counts_and_rejects_none():
    b = chapters.Beyond()
    assert (b.cnn_tune_instances, b.cifar_tune_instances) == (2, 1) and b.tune_instances == 10  # MLP panels keep their 10
    for name in ("cnn_tune_instances", "cifar_tune_instances"):
        with pytest.raises(chapters.ParameterError, match=rf"Beyond needs {name} >= 1 \(got 0\)"):
            chapters.Beyond(**{name: 0})


@pytest.mark.parametrize("chapter", sorted(c for c, p in chapters.CHAPTERS.items() if "unroll" in {f.name for f in dataclasses.fields(p)}))
@pytest.mark.parametrize("name, text, message", [
    ("unroll", "30", r"horizon \(100\) must be a multiple of unroll \(30\).*try unroll 25"),
    ("meta_lr", "-0.001", r"meta_lr must be > 0, got -0.001"),
    ("meta_lr", "inf", r"parameter 'meta_lr' must be a finite number, got inf"),
    ("meta_lr", ".nan", r"parameter 'meta_lr' must be a finite number, got nan"),
])
def test_the_runner_refuses_meta_training_values_before_the_kernel_starts(chapter, name, text, message):
    """These were caught only inside the notebook, 17-26 s in, by MetaConfig; inf was read as a number."""
    from l2l import book

    if name == "unroll" and chapter == "stn":  # the alignment horizon is 50: 30 does not divide it either, with its own hint
        message = r"horizon \(50\) must be a multiple of unroll \(30\).*try unroll 25"
    if name == "unroll" and chapter == "beyond":  # its curriculum's check comes first and says the same of every stage
        message = r"curriculum must start at horizon \(100\), rise strictly and hold multiples of unroll \(30\)"
    if name == "meta_lr" and "meta_lr" not in {f.name for f in dataclasses.fields(chapters.CHAPTERS[chapter])}:
        pytest.skip(f"{chapter} has no meta_lr")
    with pytest.raises(chapters.ParameterError, match=message):
        book.resolve(chapter, overrides={name: book._parse_value(text)})


def test_every_finite_float_parameter_refuses_infinity_and_clipping_refuses_negatives():
    with pytest.raises(chapters.ParameterError, match=r"parameter 'rates\[0\]' must be a finite number, got -inf"):
        Sweep(rates=[float("-inf")])
    with pytest.raises(chapters.ParameterError, match=r"Mnist.clip_norm must be >= 0 \(0: none\), got -1.0"):
        chapters.Mnist(clip_norm=-1)
    with pytest.raises(chapters.ParameterError, match=r"Stn.stn_horizon \(100\) must be a multiple of stn_unroll \(30\)"):
        chapters.Stn(stn_unroll=30)


def test_the_preregistration_page_lists_exactly_the_endpoints_in_code():
    from pathlib import Path

    page = (Path(__file__).resolve().parents[1] / "book" / "preregistration.md").read_text()
    listed = page.split("tests/test_chapters.py keeps them equal -->\n", 1)[1].split("<!-- /endpoints -->", 1)[0]
    assert listed == chapters.endpoints_markdown()
    assert [e.name for e in chapters.endpoints("mnist") if e.primary] == ["primary"]
    assert all(e.against and e.step >= 1 and e.runs >= 3 and 0 < e.meta_epochs <= chapters.PAPER_EPOCHS for e in chapters.ENDPOINTS)
    assert chapters.budget_words(200) == "at 200 of the DeepMind code's 10,000 meta-training epochs (2%)"


def test_the_chapter_list_is_declared_once_and_each_chapter_runs_after_what_it_reads():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    order = chapters.execution_order()
    assert sorted(order) == sorted(chapters.CHAPTERS) and set(chapters.NEEDS) <= set(chapters.CHAPTERS)
    for chapter, needs in chapters.NEEDS.items():
        assert all(order.index(n) < order.index(chapter) for n in needs), chapter
    assert {p.stem for p in (root / "notebooks").glob("*.py")} == set(chapters.CHAPTERS)  # a notebook per chapter, a chapter per notebook


def test_every_committed_run_is_still_found_by_its_key():
    """Run keys hash the run's description (never a module path): moving code must not move them."""
    import json
    from pathlib import Path

    from l2l import meta

    root = Path(__file__).resolve().parents[1]
    found = sorted(root.glob("book/results/*/runs/*/run.json"))
    assert len(found) >= 10
    for path in found:
        saved = json.loads(path.read_text())
        assert saved["key"] == path.parent.name == meta._key(saved["config"]), path


# Code lines of the notebooks not yet rewritten to MAX_CODE_LINES (at their next re-execution, issue 33): they may only fall.
NOT_YET_SHORT = {"keras": 79, "cifar": 117, "beyond": 83}


def test_chapter_notebooks_are_prose_parameters_and_calls_into_the_package():
    from l2l import book

    for chapter in chapters.CHAPTERS:
        lines = book.code_lines(chapter)
        limit = NOT_YET_SHORT.get(chapter, book.MAX_CODE_LINES)
        assert lines <= limit, f"notebooks/{chapter}.py holds {lines} lines of code (limit {limit}): move the chapter's logic into l2l/chapters/{chapter}.py"


def test_make_chapters_runs_each_chapter_after_what_it_reads_and_publishes_what_it_trained_right_after_it():
    from pathlib import Path

    commands = chapters.full_build()
    runs = [c[2] for c in commands if c[:2] == ["l2l.book", "run"]]
    assert runs == chapters.execution_order() and set(runs) == set(chapters.CHAPTERS)
    for chapter, needs in chapters.NEEDS.items():
        assert all(runs.index(n) < runs.index(chapter) for n in needs), chapter
    for chapter, published in chapters.PUBLISHES.items():
        at = commands.index(["l2l.book", "run", chapter])
        following = commands[at + 1: at + 1 + sum(2 if calibrate else 1 for *_, calibrate in published)]
        for name, pattern, extra, calibrate in published:
            assert pattern.startswith(f"book/results/{chapter}/")
            assert ["l2l.pretrained", "publish", name, pattern, "--summary", f"book/results/{chapter}/summary.json", *extra] in following
            assert (["l2l.pretrained", "calibrate", name] in following) == calibrate
    # The MNIST optimiser the package ships comes from the 10,000-epoch budget runs, and the Makefile asks for nothing else.
    assert chapters.PUBLISHES["mnist"][0][1] == "book/results/mnist/lstm_budget_seed*.weights.h5"
    makefile = (Path(__file__).resolve().parents[1] / "Makefile").read_text()
    assert "chapters: venv\n\t$(RUN) -m l2l.book chapters\n" in makefile and "l2l.pretrained publish" not in makefile
