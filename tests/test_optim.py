"""The optimiser and Hessian helpers shared by MAP and the identifiability analysis."""

import numpy as np
import pytest

from infer._optim import fd_hessian, polish

A = np.array([[300.0, 29.0], [29.0, 3.0]])  # ill-conditioned (condition ~ 1e3), like the posterior
B = np.array([1.0, -2.0])
X_STAR = np.linalg.solve(A, B)


def quadratic(x):
    return 0.5 * x @ A @ x - B @ x, A @ x - B


def test_polish_converges_on_an_ill_conditioned_quadratic():
    trace = []
    x, val, res = polish(quadratic, np.zeros(2), 200, trace=trace, gtol=1e-10)
    np.testing.assert_allclose(x, X_STAR, rtol=1e-6)
    assert val == pytest.approx(quadratic(X_STAR)[0])
    assert trace and trace[-1] == pytest.approx(val)
    assert res.nit > 0


def test_polish_backs_off_from_failed_solves():
    # a "failed solve" (NaN) beyond x0 > 0.2: the optimum of the quadratic lies outside, so the
    # answer is a finite point inside, no worse than the start
    def walled(x):
        if x[0] > 0.2:
            return np.nan, np.full(2, np.nan)
        return quadratic(x)

    start = np.array([0.0, 0.0])
    x, val, _ = polish(walled, start, 100)
    assert np.isfinite(val) and x[0] <= 0.2
    assert val <= walled(start)[0]


def test_polish_keeps_the_start_when_nothing_better_is_found():
    def flat_then_nan(x):
        return (0.0, np.zeros(2)) if np.allclose(x, 0) else (np.nan, np.full(2, np.nan))

    x, val, _ = polish(flat_then_nan, np.zeros(2), 10)
    assert np.array_equal(x, np.zeros(2)) and val == 0.0


def test_fd_hessian_recovers_a_known_hessian_and_reports_asymmetry():
    h, asym = fd_hessian(lambda x: quadratic(x)[1], np.array([0.3, -0.1]), 1e-3)
    np.testing.assert_allclose(h, A, rtol=1e-8)
    assert asym < 1e-10


def test_fd_hessian_raises_where_a_solve_fails():
    with pytest.raises(FloatingPointError, match="within 0.01"):
        fd_hessian(lambda x: np.full(2, np.nan), np.zeros(2), 1e-2)
