"""The ODE solvers homeoplast offers by name, and Tsit5 with its stages written out.

:class:`UnrolledTsit5` (name ``"tsit5-unrolled"``) is diffrax's Tsit5 (same tableau, same
FSAL handling, same error estimate and dense output) with one change: its ``step`` writes the
7 stages out in Python instead of looping over them. diffrax runs the stages of any Runge-Kutta method in an inner,
checkpointed ``while`` loop (general over tableaus, and it spares autodiff spurious copies);
for a small explicit method that loop costs more than the arithmetic it runs, in the forward
pass and in the reverse pass. Once XLA compiles each solver loop as one function
(``models.xla_flags``, "small loops compiled whole"), the written-out stages are faster in
both. Same host, same session, float64, 2-core Intel Xeon (benchmarks/README.md, "Tsit5 with
its stages written out"): the demo fit's log density 2.50 -> 1.66 ms and its value and
gradient 10.3 -> 7.4 ms; the default fit at 32 neurons 76 -> 33 ms and 380 -> 216 ms; the
standard protocol set at 1,024 neurons 0.543 -> 0.383 s. The values agree with diffrax's
Tsit5 to rounding (log density to 1e-13 relative); a step may land elsewhere by rounding,
which moves a readout by far less than the tolerance.

The price is compilation: the demo's gradient compiles in 118 s instead of 27 s. It pays in
a long fit, not in a short one, so it is an option, not the default ``"tsit5"`` (diffrax's).
A fit can use it for its NUTS chains only (``solver.sampler_method = "tsit5-unrolled"`` with
``solver.method = "tsit5"``): the MAP, the chains' start and the predictive draws then run
diffrax's Tsit5, which compiles quickly, while XLA compiles the sampler in the background
(``infer.engines.ChunkedNUTS.compile_ahead``). The demo fit (``infer/configs/demo.toml``)
does so.
"""

from __future__ import annotations

import diffrax
import equinox.internal as eqxi
import jax
import jax.numpy as jnp
from jax import lax

_TABLEAU = diffrax.Tsit5.tableau
_A = tuple(tuple(float(v) for v in row) for row in _TABLEAU.a_lower)  # stages 2..7
_C = tuple(float(v) for v in _TABLEAU.c)  # c_2..c_7 (c_1 = 0)
_B_ERROR = tuple(float(v) for v in _TABLEAU.b_error)


def _combine(coefficients, ks):
    """sum_j coefficients[j] * ks[j] over the non-zero coefficients (pytrees of arrays)."""
    pairs = [(c, k) for c, k in zip(coefficients, ks, strict=False) if c != 0.0]

    def leaf(*parts):
        total = pairs[0][0] * parts[0]
        for (c, _), part in zip(pairs[1:], parts[1:], strict=True):
            total = total + c * part
        return total

    return jax.tree.map(leaf, *(k for _, k in pairs))


class UnrolledTsit5(diffrax.Tsit5):
    """diffrax's Tsit5 with its stages written out (module docstring). A subclass, so
    ``isinstance(solver, diffrax.Tsit5)`` holds and its interpolation, order and error
    estimate are diffrax's."""

    def step(self, terms, t0, t1, y0, args, solver_state, made_jump):
        first_step, f_last = solver_state
        control = terms.contr(t0, t1)
        # FSAL: the last stage of the previous step is this step's first, unless this is the
        # first step or the step before landed on a discontinuity (diffrax's rule).
        fresh = first_step | made_jump
        f0 = lax.cond(
            eqxi.unvmap_any(fresh),
            lambda: jax.tree.map(
                lambda new, old: jnp.where(fresh, new, old), terms.vf(t0, y0, args), f_last
            ),
            lambda: f_last,
        )
        dt = t1 - t0
        ks = [terms.prod(f0, control)]
        for row, c in zip(_A, _C, strict=True):
            y_stage = jax.tree.map(lambda y, inc: y + inc, y0, _combine(row, ks))
            f_stage = terms.vf(t0 + c * dt, y_stage, args)
            ks.append(terms.prod(f_stage, control))
        # Tsit5 is SSAL: the last stage is evaluated at the solution itself.
        y1, f1 = y_stage, f_stage
        y_error = _combine(_B_ERROR, ks)
        dense_info = dict(y0=y0, y1=y1, k=jax.tree.map(lambda *k: jnp.stack(k), *ks))
        return y1, y_error, dense_info, (jnp.array(False), f1), diffrax.RESULTS.successful


# The solvers a config or a benchmark may name.
SOLVERS = {
    "tsit5": diffrax.Tsit5,
    "tsit5-unrolled": UnrolledTsit5,
    "dopri5": diffrax.Dopri5,
    "kvaerno3": diffrax.Kvaerno3,
    "kvaerno5": diffrax.Kvaerno5,
}


def make_solver(name: str) -> diffrax.AbstractSolver:
    """A new solver of the given name (:data:`SOLVERS`)."""
    try:
        return SOLVERS[name]()
    except KeyError:
        raise ValueError(f"unknown solver {name!r}; choose from {sorted(SOLVERS)}") from None
