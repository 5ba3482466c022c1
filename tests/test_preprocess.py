import math

import numpy as np
import pytest

from l2l.preprocess import log_and_sign


def formula(g, p):
    """The paper's appendix A, coordinate by coordinate."""
    if abs(g) >= math.exp(-p):
        return (math.log(abs(g)) / p, math.copysign(1.0, g) if g else 0.0)
    return (-1.0, math.exp(p) * g)


@pytest.mark.parametrize("p", [10.0, 5.0])
def test_matches_formula_on_both_sides_of_the_threshold(p):
    t = math.exp(-p)
    grads = np.array([3.0, -0.5, 1e-3, -1e-3, 2 * t, -2 * t, 0.5 * t, -0.5 * t, 1e-9, 0.0, 1e3], np.float32)
    got = log_and_sign(grads, p).numpy()
    want = np.array([formula(float(g), p) for g in grads], np.float32)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)


def test_threshold_itself_takes_the_log_branch():
    p = 10.0
    g = np.float32(math.exp(-p)) * np.float32(1.0001)
    got = log_and_sign(np.array([g, -g]), p).numpy()
    np.testing.assert_allclose(got[:, 1], [1.0, -1.0])
    np.testing.assert_allclose(got[:, 0], [-1.0, -1.0], atol=1e-4)


def test_shape_and_finiteness_for_zero_and_huge_gradients():
    grads = np.zeros((3, 4), np.float32)
    grads[0, 0] = 1e30
    out = log_and_sign(grads).numpy()
    assert out.shape == (3, 4, 2)
    assert np.all(np.isfinite(out))
    np.testing.assert_array_equal(out[1:, :, 0], -1.0)  # zeros take the small branch
    np.testing.assert_array_equal(out[1:, :, 1], 0.0)
