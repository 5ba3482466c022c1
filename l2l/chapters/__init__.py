"""The book's chapters: each one's parameters, pre-registered endpoints and own code, one module per chapter
(`l2l.chapters.quadratics`, `.mnist`, ...; what they share in `l2l.chapters.base`). Imports no TensorFlow.

    from l2l.chapters import Quadratics
    p = Quadratics(meta_epochs=50)        # a ParameterError names any bad field and the fix

CHAPTERS is the chapter list, in the book's order, declared here once: the
runner, the Makefile (`python -m l2l.book list --names`), `make chapters` (in
the order of NEEDS) and the tests read it. NEEDS says which chapter reads
which chapter's results.
"""

from l2l.chapters import beyond, cifar, mnist, quadratics
from l2l.chapters.base import (  # noqa: F401
    BASELINES,
    NON_NEGATIVE,
    PAPER_EPOCHS,
    POSITIVE,
    SCHEDULED,
    SEGMENTS,
    ChapterParameters,
    Endpoint,
    ParameterError,
    Recipe,
    _at_least,
    _coerce,
    _meta_training_rules,
    budget_words,
)
from l2l.chapters.benchmarks import Benchmarks
from l2l.chapters.beyond import Beyond
from l2l.chapters.cifar import Cifar
from l2l.chapters.hyper import Hyper
from l2l.chapters.keras import Keras
from l2l.chapters.mnist import MNIST_SETUP, Mnist  # noqa: F401
from l2l.chapters.quadratics import Quadratics
from l2l.chapters.stn import Stn

CHAPTERS = {"quadratics": Quadratics, "mnist": Mnist, "keras": Keras, "cifar": Cifar, "stn": Stn, "hyper": Hyper, "beyond": Beyond,
            "benchmarks": Benchmarks}
# chapter -> the chapters whose results it reads: keras uses the optimiser mnist trained (published into the package and
# calibrated); cifar reads mnist's weights for its transfer panel, hyper and beyond compare with them; benchmarks reads
# every chapter's summary.json.
NEEDS = {"keras": ("mnist",), "cifar": ("mnist",), "hyper": ("mnist",), "beyond": ("mnist",),
         "benchmarks": ("quadratics", "mnist", "keras", "cifar", "stn", "hyper", "beyond")}
# chapter -> the optimisers published into the package from its results once it has run (`make chapters`): (package
# name, the weights files' pattern, publish's extra arguments, whether calibrate then chooses its Keras default). The beyond
# chapter chooses the general optimiser's Keras multiplier itself, and publish records that choice.
PUBLISHES = {
    "quadratics": (("quadratic", "book/results/quadratics/lstm_seed*.weights.h5", (), True),),
    "mnist": (("mnist", "book/results/mnist/lstm_budget_seed*.weights.h5", (), True),),  # the best 10,000-epoch run by validation
    "cifar": (("cifar10", "book/results/cifar/lstm_seed*.weights.h5", ("--groups", "conv_kernels"), True),),
    "stn": (("alignment", "book/results/stn/lstm_align_seed*.weights.h5", (), True),),
    "beyond": (("general", "book/results/beyond/lstm_general_seed*.weights.h5", (), False),),
}
TITLES = {"quadratics": "Quadratic functions", "mnist": "MNIST", "cifar": "CIFAR-10"}  # the chapters' names on the pre-registration page
ENDPOINTS = quadratics.ENDPOINTS + mnist.ENDPOINTS + cifar.ENDPOINTS  # pre-registered: see book/preregistration.md
TECHNIQUES = beyond.TECHNIQUES  # noqa: F401  (the beyond chapter's techniques, named in its parameters' check)


def execution_order():
    """The chapters in an order that runs each after the chapters it needs (the book's order where NEEDS allows)."""
    done = []

    def visit(name):
        for need in NEEDS.get(name, ()):
            visit(need)
        if name not in done:
            done.append(name)

    for name in CHAPTERS:
        visit(name)
    return done


def full_build():
    """The commands that execute every chapter in its full profile (`make chapters`), each after the chapters it reads,
    each followed by the publishing of what it trained (PUBLISHES): [argv after `python -m`]."""
    commands = []
    for chapter in execution_order():
        commands.append(["l2l.book", "run", chapter])
        for name, pattern, extra, calibrate in PUBLISHES.get(chapter, ()):
            commands.append(["l2l.pretrained", "publish", name, pattern, "--summary", f"book/results/{chapter}/summary.json", *extra])
            if calibrate:
                commands.append(["l2l.pretrained", "calibrate", name])
    return commands


def endpoints(chapter):
    """The endpoints `chapter` reports, in their order."""
    return [e for e in ENDPOINTS if e.chapter == chapter]


def endpoints_markdown():
    """The pre-registration page's list (book/preregistration.md), from ENDPOINTS."""
    lines = []
    for chapter in dict.fromkeys(e.chapter for e in ENDPOINTS):
        lines.append(f"**{TITLES.get(chapter, chapter)}** (`{chapter}`)\n")
        for e in endpoints(chapter):
            against = "the best on the tuning split of " + ", ".join(e.against) if len(e.against) > 1 else e.against[0]
            lines.append(f"- {'Primary' if e.primary else 'Secondary'} `{e.name}`: {e.claim}. {e.learned} minus {against}, "
                         f"{e.runs} runs, {budget_words(e.meta_epochs)}{' or more' if e.meta_epochs < PAPER_EPOCHS else ''}.")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"
