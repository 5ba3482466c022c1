"""The benchmarks appendix: its parameters.

Imports no TensorFlow: the code that needs it imports it where it runs."""

import dataclasses

from l2l.chapters.base import ChapterParameters


@dataclasses.dataclass(frozen=True)
class Benchmarks(ChapterParameters):
    benchmark_file: str = "benchmarks/results.json"  # written by make bench
    results_root: str = "book/results"  # where the chapters wrote their summary.json
