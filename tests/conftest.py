import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Under pytest-xdist (make test runs two workers) each worker keeps to one core: two processes that each use both
# cores slow each other several-fold. Set before TensorFlow starts; a chapter's kernel inherits it (l2l.provenance).
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("L2L_THREADS", "1")

import inspect

import numpy as np
import pytest
import tensorflow as tf

if os.environ.get("PYTEST_XDIST_WORKER"):
    from l2l import provenance

    provenance.limit_threads()

# The dataset mirror: L2L_DATA_DIR where it is set (as the README and the Makefile set it), else ../shared/data beside the clone.
SHARED_DATA = os.environ.get("L2L_DATA_DIR") or os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data"))

# Test tiers (pyproject's markers). A test marked with a tier keeps it; otherwise its module's tier below, except that a
# test which starts processes (subprocess, a PostgreSQL server) is "system". make test-fast runs "unit" (the edit loop);
# make test runs every tier.
TIERS = ("unit", "integration", "system", "slow")
UNIT_MODULES = {"test_chapters", "test_preprocess", "test_stats", "test_warp", "test_optimizers", "test_learned_optimizer", "test_plots",
                "test_reference", "test_data", "test_design"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if any(item.get_closest_marker(t) for t in TIERS):
            continue
        module = item.module.__name__.rsplit(".", 1)[-1]
        try:
            source = inspect.getsource(item.function)
        except (OSError, TypeError):
            source = ""
        if "postgres" in getattr(item, "fixturenames", ()) or "subprocess" in source:
            item.add_marker(pytest.mark.system)
        else:
            item.add_marker(pytest.mark.unit if module in UNIT_MODULES else pytest.mark.integration)


@pytest.fixture
def rng():
    return tf.random.Generator.from_seed(1234)


@pytest.fixture
def nprng():
    return np.random.default_rng(1234)
