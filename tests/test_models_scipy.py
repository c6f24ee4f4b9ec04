"""diffrax trajectories agree with scipy's Radau on the same vector field.

The reference integrates the model's own JAX vector field (``CompiledPathway.vector_field``) with
``scipy.integrate.solve_ivp(method="Radau", rtol=1e-10, atol=1e-14)`` and its exact Jacobian
(``jax.jacfwd``); what is tested is the diffrax integration (Kvaerno5, PID control, clipping at
wash-out times, dense output at the requested times), not the equations themselves.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import scipy.sparse
from scipy.integrate import solve_ivp

from models import PATHWAY, as_conditions
from models.dynamics import compiled
from models.exposure import condition_inputs, encode_conditions
from models.priors import sample_prior
from models.solve import SolverConfig, solve_neuron

N_DRAWS = 20
SHRINK = 0.5
CONDITIONS = (
    "ketamine 10 mg/kg i.p., mouse",
    "ketamine 20 mg/kg i.v., rat",
    "mk801 0.1 mg/kg s.c., mouse",
    "ketamine 1 uM bath washout 0.5 h + baclofen, cultured neurons",
    "ethanol 30 mM bath washout 2 h + bicuculline, cultured neurons, Fmr1 KO",
    "ketamine 10 mg/kg i.p. + rapamycin, mouse",
    "memantine 10 uM bath + TTX + anti-BDNF + BDNF 1 nM, cultured neurons",
    "ro25-6981 10 mg/kg i.p. + cycloheximide + GABABR antagonist, mouse, FMRP OE",
)
# Output times (h): dense where exposure and signalling move, then synthesis and spines.
TIMES = np.array([0, 0.1, 0.25, 0.5, 0.75, 1, 2, 3, 4, 6, 8, 12, 24, 36, 48], float)
RTOL = 1e-6  # agreement required, relative ...
FLOOR = 1e-9  # ... with this absolute floor for states near zero (drug-free fractions, etc.)


def _field(t, y, theta, u):
    return compiled().vector_field(t, y, (theta, u))


# Compiled once per module (shapes are the same for every condition).
_RHS = jax.jit(jax.vmap(_field, in_axes=(None, 0, 0, 0)))
_JAC = jax.jit(jax.vmap(jax.jacfwd(_field, argnums=1), in_axes=(None, 0, 0, 0)))


def _scipy_reference(thetas, inputs, washout_h):
    """Radau on all draws of one condition at once (a block-diagonal system), restarted at the
    wash-out time so the integrator never steps across the kink in the bath concentration.

    Stacking the draws makes one solve_ivp call per segment; Radau's error norm is then an RMS
    over all draws, so one draw's error can exceed the requested 1e-10 by up to sqrt(N_DRAWS),
    still four orders of magnitude below the tolerance tested.
    """
    cp = compiled()
    n, n_y = thetas.shape[0], len(PATHWAY.species_names)

    def fun(t, y):
        return np.asarray(_RHS(t, y.reshape(n, n_y), thetas, inputs)).ravel()

    def jacobian(t, y):
        blocks = np.asarray(_JAC(t, y.reshape(n, n_y), thetas, inputs))
        return scipy.sparse.block_diag(list(blocks), format="csc")

    breaks = [
        0.0,
        *([washout_h] if washout_h is not None and washout_h < TIMES[-1] else []),
        float(TIMES[-1]),
    ]
    y = np.asarray(jax.vmap(cp.baseline)(thetas)).ravel()
    out = np.full((TIMES.size, n * n_y), np.nan)
    for a, b in zip(breaks[:-1], breaks[1:], strict=True):
        sel = (TIMES >= a) & (TIMES <= b)
        res = solve_ivp(
            fun, (a, b), y, method="Radau", rtol=1e-10, atol=1e-14, t_eval=TIMES[sel], jac=jacobian
        )
        assert res.success, res.message
        out[sel] = res.y.T
        y = res.y[:, -1]
    return out.reshape(TIMES.size, n, n_y).transpose(1, 0, 2)


def test_diffrax_matches_scipy_radau_for_prior_draws_across_conditions():
    """20 prior draws x 8 conditions (in vivo i.p., i.v. in rat, s.c.; bath with wash-out at
    0.5 h and 2 h; bath without; co-treatments rapamycin, cycloheximide, GABABR antagonist,
    baclofen, bicuculline, TTX, anti-BDNF, bath BDNF; Fmr1 KO and FMRP OE), 0-48 h: every state
    of every diffrax solve (Kvaerno5, rtol 1e-10, atol 1e-12, all draws and conditions vmapped in
    one jit) is within 1e-6 relative of Radau, with an absolute floor of 1e-9 for states near
    zero: |diffrax - scipy| <= 1e-6 |scipy| + 1e-9.

    The draws come from ``sample_prior(shrink=0.5)``, i.e. priors of half their width. At the
    full width some draws put the GABABR -> mTORC1 -> translation -> GABABR loop into runaway
    (GABABR and GluA1 > 1e3-fold within 48 h), where both integrators need 1e5+ steps; that is a
    property of those parameters, not a test of the integrator, and would make this test take
    minutes.
    """
    thetas = jnp.asarray(sample_prior(np.random.default_rng(20240601), N_DRAWS, shrink=SHRINK))
    conds = as_conditions(CONDITIONS)
    enc = encode_conditions(conds)
    config = SolverConfig(rtol=1e-10, atol=1e-12, max_steps=200_000)

    def one(theta, cond):
        return solve_neuron(theta, cond, jnp.asarray(TIMES), config)

    sol = jax.jit(jax.vmap(jax.vmap(one, in_axes=(None, 0)), in_axes=(0, None)))(thetas, enc)
    assert bool(jnp.all(sol.ok)), np.argwhere(~np.asarray(sol.ok))
    got = np.asarray(sol.ys)  # [draw, condition, time, state]
    inputs = jax.vmap(jax.vmap(condition_inputs, in_axes=(None, 0)), in_axes=(0, None))(thetas, enc)

    for c, cond in enumerate(conds):
        ref = _scipy_reference(thetas, inputs[:, c], cond.washout_h)
        err = np.abs(got[:, c] - ref)
        bad = err > RTOL * np.abs(ref) + FLOOR
        if bad.any():
            d, k, j = np.argwhere(bad)[0]
            raise AssertionError(
                f"{cond.spec}: draw {d}, t = {TIMES[k]} h, {PATHWAY.species_names[j]}: diffrax "
                f"{got[d, c, k, j]!r} vs scipy {ref[d, k, j]!r} ({bad.sum()} values off)"
            )
