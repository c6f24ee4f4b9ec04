"""models.solvers: the written-out Tsit5 ("tsit5-unrolled") is diffrax's Tsit5 to rounding
(solution, gradient, step count), including a lane whose step lands on a wash-out (a jump:
the first stage is evaluated afresh) beside one whose does not; the solver names."""

from __future__ import annotations

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from infer.config import _SOLVERS as CONFIG_SOLVERS
from models.dynamics import default_theta
from models.exposure import encode_conditions
from models.solve import SolverConfig, solve_neuron
from models.solvers import SOLVERS, UnrolledTsit5, make_solver

CONDITIONS = (
    "ketamine 10 mg/kg i.p., mouse",
    "ethanol 30 mM bath washout 2 h + baclofen, cultured neurons, Fmr1 KO",  # a jump at 2 h
)
TIMES = jnp.asarray([0.0, 0.5, 1.0, 2.5, 6.0])


def _readouts(solver):
    config = SolverConfig(solver=solver, rtol=1e-7, atol=1e-10)
    enc = encode_conditions(list(CONDITIONS))

    def readouts(theta):
        thetas = jnp.broadcast_to(theta, (len(CONDITIONS), theta.shape[0]))
        sol = jax.vmap(lambda th, c: solve_neuron(th, c, TIMES, config))(thetas, enc)
        return jnp.sum(sol.readouts**2), sol

    return readouts


THETA = default_theta() * 1.05


def test_written_out_tsit5_equals_diffrax_tsit5():
    _, ours = jax.jit(_readouts(UnrolledTsit5()))(THETA)
    _, ref = jax.jit(_readouts(diffrax.Tsit5()))(THETA)
    assert np.asarray(ours.ok).all() and np.asarray(ref.ok).all()
    np.testing.assert_array_equal(np.asarray(ours.num_steps), np.asarray(ref.num_steps))
    np.testing.assert_allclose(
        np.asarray(ours.readouts), np.asarray(ref.readouts), rtol=1e-10, atol=1e-13
    )


@pytest.mark.slow  # two reverse-mode compilations (about a minute); the fit tests run its gradient
def test_written_out_tsit5_gradient_equals_diffrax_tsit5():
    g_ours = jax.jit(jax.grad(lambda th: _readouts(UnrolledTsit5())(th)[0]))(THETA)
    g_ref = jax.jit(jax.grad(lambda th: _readouts(diffrax.Tsit5())(th)[0]))(THETA)
    g_ours, g_ref = np.asarray(g_ours), np.asarray(g_ref)
    assert np.isfinite(g_ours).all() and np.abs(g_ref).max() > 0
    np.testing.assert_allclose(g_ours, g_ref, rtol=1e-8, atol=1e-12 * np.abs(g_ref).max())


def test_solver_names():
    assert type(make_solver("tsit5")) is diffrax.Tsit5
    unrolled = make_solver("tsit5-unrolled")
    assert isinstance(unrolled, UnrolledTsit5)
    assert isinstance(unrolled, diffrax.Tsit5)  # a subclass: diffrax's rules hold
    assert isinstance(make_solver("kvaerno5"), diffrax.Kvaerno5)
    assert sorted(CONFIG_SOLVERS) == sorted(SOLVERS)  # what a config may name, each buildable
    with pytest.raises(ValueError, match="unknown solver 'rk4'; choose from"):
        make_solver("rk4")
