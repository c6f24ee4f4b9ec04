"""Shared pytest configuration.

Sections (keep each small and self-contained; add new ones at the end):
1. JAX numerics for every test: float64, and the XLA CPU flags the command line uses.
2. models tests (tests/test_models_*.py): strict rank promotion and one shared compiled solver.
"""

from __future__ import annotations

from models.xla_flags import use_cpu_flags

# ---------------------------------------------------------------- 1. JAX numerics (all tests)
# Before JAX starts its backend: the tests compile what `python -m infer` compiles.
use_cpu_flags()

import jax  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_enable_x64", True)


# ---------------------------------------------------------------- 2. models tests
@pytest.fixture(scope="module", autouse=True)
def _models_strict_rank_promotion(request):
    """tests/test_models_*.py run with ``jax_numpy_rank_promotion="raise"``: an implicit
    broadcast between arrays of different rank is an error, not a silent shape bug.

    Module-scoped (and autouse, so set up before the module's other fixtures): the setting is
    part of JAX's trace cache key, so module fixtures that compile must run under it too."""
    if not request.module.__name__.rpartition(".")[2].startswith("test_models_"):
        yield
        return
    with jax.numpy_rank_promotion("raise"):
        yield


PAIR_ROWS = 40  # every pair batch is padded to this many rows ...
PAIR_TIMES = 16  # ... and this many output times, so one compiled program serves every test


@pytest.fixture(scope="session")
def solve_pairs():
    """Solve (parameter vector, condition) pairs in ONE jitted, vmapped program.

    ``solve(thetas[n, param], conditions (n), ts) -> NeuronSolution`` with leading axis n, at the
    default ``SolverConfig``. Batches are padded to ``PAIR_ROWS`` rows (vehicle at the default
    parameters) and ``PAIR_TIMES`` output times (repeating the last time), then unpadded, so the
    program is compiled once per test session however many pairs a test solves.
    """
    import jax.numpy as jnp

    from models.dynamics import default_theta
    from models.exposure import encode_conditions
    from models.solve import SolverConfig, solve_neuron

    config = SolverConfig()
    program = jax.jit(
        jax.vmap(lambda th, cond, ts: solve_neuron(th, cond, ts, config), in_axes=(0, 0, None))
    )

    def solve(thetas, conditions, ts):
        thetas = np.asarray(thetas, float)
        conditions = list(conditions)
        ts = np.asarray(ts, float)
        n, n_t = len(conditions), ts.size
        if thetas.shape[0] != n or n > PAIR_ROWS or n_t > PAIR_TIMES:
            raise ValueError(f"{n} conditions, {thetas.shape[0]} thetas, {n_t} times: too many")
        pad = PAIR_ROWS - n
        thetas = np.concatenate([thetas, np.tile(np.asarray(default_theta()), (pad, 1))])
        enc = encode_conditions(conditions + ["vehicle, mouse"] * pad)
        ts_pad = np.concatenate([ts, np.full(PAIR_TIMES - n_t, ts[-1])])
        sol = program(jnp.asarray(thetas), enc, jnp.asarray(ts_pad))
        return jax.tree_util.tree_map(
            lambda a: a[:n, :n_t] if a.ndim >= 2 else a[:n],
            sol,  # axis 1 is time
        )

    return solve
