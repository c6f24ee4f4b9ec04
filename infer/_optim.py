"""Numerical pieces shared by MAP (engines.py) and the identifiability analysis (identify.py):
an L-BFGS-B polish that treats a failed solve as a wall, and a finite-difference Hessian of an
exact gradient. Both work on flat float64 numpy vectors."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.optimize

WALL = 1e12  # objective reported at a point where the log density is not finite


def polish(
    value_grad: Callable[[np.ndarray], tuple[float, np.ndarray]],
    x0: np.ndarray,
    max_iter: int,
    *,
    trace: list | None = None,
    **options,
) -> tuple[np.ndarray, float, scipy.optimize.OptimizeResult]:
    """Minimise ``value_grad`` (value, gradient) from ``x0`` with L-BFGS-B.

    A non-finite value or gradient at a trial point (an ODE solve that failed) is reported as
    a large value with a zero gradient, so the line search backs off instead of stopping.
    Returns the better of the end point and ``x0`` with its value, and scipy's result (for
    its iteration count and message). Finite values are appended to ``trace`` if given.
    """

    def fun(x):
        val, grad = value_grad(x)
        val = float(val)
        grad = np.asarray(grad, dtype=float)
        if not np.isfinite(val) or not np.all(np.isfinite(grad)):
            return WALL, np.zeros_like(x)
        if trace is not None:
            trace.append(val)
        return val, grad

    x0 = np.asarray(x0, dtype=float)
    start = float(value_grad(x0)[0])
    res = scipy.optimize.minimize(
        fun, x0, jac=True, method="L-BFGS-B", options={"maxiter": max_iter, **options}
    )
    end = float(value_grad(res.x)[0])
    if np.isfinite(end) and not (np.isfinite(start) and start < end):
        return res.x, end, res
    return x0, start, res


def fd_hessian(
    grad: Callable[[np.ndarray], np.ndarray], x: np.ndarray, step: float
) -> tuple[np.ndarray, float]:
    """Central finite differences of an exact gradient (2 n calls).

    Returns the symmetrised Hessian and its relative asymmetry before symmetrising (a check
    on the gradient's noise at this step). Raises if any entry is not finite (a solve failed
    within ``step`` of ``x``)."""
    x = np.asarray(x, dtype=float)
    n = x.size
    cols = []
    for i in range(n):
        e = np.zeros(n)
        e[i] = step
        cols.append((np.asarray(grad(x + e)) - np.asarray(grad(x - e))) / (2 * step))
    h = np.stack(cols, axis=1)
    if not np.all(np.isfinite(h)):
        raise FloatingPointError(
            f"the Hessian is not finite: a solve failed within {step} of the point"
        )
    asym = float(np.linalg.norm(h - h.T) / max(np.linalg.norm(h), 1e-300))
    return 0.5 * (h + h.T), asym
