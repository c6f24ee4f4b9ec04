"""Case (b): cost of a gradient versus the forward solve it differentiates.

Two measurements:

* ``proxy``: value-and-gradient of a fixed scalar of the population solve (mean squared
  readout over neurons, conditions and times) with respect to the population parameters
  ``theta_pop`` (72) and the between-neuron SDs ``sigma`` (6), by reverse mode through
  diffrax (its default RecursiveCheckpointAdjoint), against the value alone. It is NOT the
  likelihood; it isolates the price of differentiating the solve.
* ``log_likelihood``: the same ratio for the full log-density from
  ``infer.likelihood.make_log_density`` when the inference engine provides it; otherwise a
  record says it is not available yet.
"""

from __future__ import annotations

import functools

from .._env import peak_memory_bytes
from .._timing import compile_aot, timed
from ..protocols import ATOL, PROTOCOLS, RTOL, solver_config
from ._common import error_record, population_inputs


def _proxy(spec: dict, n: int):
    import jax
    import jax.numpy as jnp

    from models.population import simulate_population

    solver, dtype, protocol = spec["solver"], spec["dtype"], spec.get("protocol", "standard")
    config = solver_config(solver)
    theta, sigma, z, enc, ts = population_inputs(n, protocol, dtype)

    def value(theta_pop, sigma_, z_, enc_, ts_):
        sol = simulate_population(theta_pop, sigma_, z_, enc_, ts_, config)
        r = jnp.where(sol.ok[:, :, None, None], sol.readouts, 0.0)
        return jnp.mean(r**2)

    fwd = jax.jit(value)
    grad = jax.jit(jax.value_and_grad(value, argnums=(0, 1)))
    args = (theta, sigma, z, enc, ts)
    c_fwd, info_fwd = compile_aot(fwd, *args)
    t_fwd, _ = timed(functools.partial(c_fwd, *args), repeats=spec.get("repeats", 3))
    c_grad, info_grad = compile_aot(grad, *args)
    t_grad, (val, (g_theta, g_sigma)) = timed(
        functools.partial(c_grad, *args), repeats=spec.get("repeats", 3)
    )
    finite = bool(jnp.all(jnp.isfinite(g_theta)) & jnp.all(jnp.isfinite(g_sigma)))
    return {
        "forward": info_fwd | t_fwd,
        "gradient": info_grad | t_grad,
        "gradient_over_forward": t_grad["time_s_min"] / t_fwd["time_s_min"],
        "gradient_over_forward_median": t_grad["time_s_median"] / t_fwd["time_s_median"],
        "gradient_finite": finite,
        "n_gradient_components": int(g_theta.size + g_sigma.size),
        "adjoint": "diffrax default (RecursiveCheckpointAdjoint), reverse mode",
    }


def run(spec: dict):
    protocol = spec.get("protocol", "standard")
    for n in spec["n_neurons"]:
        base = {
            "case": "gradient",
            "variant": "proxy",
            "objective": "mean squared readout of the population solve (not the likelihood)",
            "protocol": protocol,
            "conditions": list(PROTOCOLS[protocol]["conditions"]),
            "solver": spec["solver"],
            "dtype": spec["dtype"],
            "rtol": RTOL,
            "atol": ATOL,
            "n_neurons": n,
        }
        try:
            yield base | {"status": "ok"} | _proxy(spec, n) | {"memory": peak_memory_bytes()}
        except Exception as err:  # noqa: BLE001
            yield error_record(base, err)
            break
    yield from _log_likelihood(spec)


def _log_likelihood(spec: dict):
    base = {
        "case": "gradient",
        "variant": "log_likelihood",
        "solver": spec["solver"],
        "dtype": spec["dtype"],
    }
    try:
        from infer.likelihood import make_log_density  # noqa: F401
    except ImportError as err:
        yield base | {
            "status": "skipped",
            "reason": f"not available yet: infer.likelihood.make_log_density cannot be imported ({err})",
        }
        return
    yield base | {
        "status": "skipped",
        "reason": "infer.likelihood.make_log_density exists but this harness does not yet know its "
        "signature; wire it in benchmarks/cases/gradient.py",
    }
