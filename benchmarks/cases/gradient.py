"""Case (b): cost of a gradient versus the forward solve it differentiates.

Two measurements:

* ``proxy``: value-and-gradient of a fixed scalar of the population solve (mean squared
  readout over neurons, conditions and times) with respect to the population parameters
  ``theta_pop`` (72) and the between-neuron SDs ``sigma`` (6), by reverse mode through
  diffrax (its default RecursiveCheckpointAdjoint), against the value alone. It is NOT the
  likelihood; it isolates the price of differentiating the solve.
* ``log_likelihood``: the same ratio for the full log joint density of the default fit
  (``infer.likelihood.make_log_density``: prior + measurements + soft constraints, the
  function NUTS differentiates), ``jax.jit(log_density)`` (value only) against
  ``jax.jit(jax.value_and_grad(log_density))`` at the same N, each compiled ahead of time
  (compile times recorded separately), at the prior medians. The population solve alone
  (``predictor.levels``) is timed too, to show how much of the log density is ODE work.
  N comes from ``spec["log_likelihood_n"]``; ``spec["adjoint_checkpoints"]`` (a list) repeats
  each N with those reverse-mode checkpoint counts (0: diffrax's default), else the default
  config's own setting is used.
"""

from __future__ import annotations

import functools
import time

from .._env import peak_memory_bytes
from .._timing import compile_aot, timed
from ..protocols import ATOL, PROTOCOLS, RTOL, solver_config
from ._common import error_record, population_inputs


def _proxy(spec: dict, n: int):
    import jax
    import jax.numpy as jnp

    from models.population import simulate_population

    solver, dtype, protocol = spec["solver"], spec["dtype"], spec.get("protocol", "standard")
    config = solver_config(solver, spec.get("neuron_batch"))
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
        "neuron_batch": config.batch_size() or n,  # neurons solved at once
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


def _constrained_values(model, z: dict) -> dict:
    """Unconstrained latents -> the named values ``model.theta_sigma`` expects."""
    from infer.model import _from_standard  # the model's own standard-normal -> value map

    c = model.constrain(z)
    values = {n: _from_standard(n, c[f"raw_{n}"]) for n in model.free}
    values.update({f"sigma_{n}": c[f"sigma_{n}"] for n in model.sigma_names})
    return values


def _adjoint_name(checkpoints: int) -> str:
    if checkpoints:
        return f"RecursiveCheckpointAdjoint(checkpoints={checkpoints}), reverse mode"
    return "diffrax default (RecursiveCheckpointAdjoint, checkpoints=None), reverse mode"


def _ll_point(spec: dict, n: int, checkpoints: int | None = None) -> dict:
    """Value versus value-and-gradient of the default fit's log density at N neurons."""
    import jax
    import jax.numpy as jnp

    from infer.config import load_config
    from infer.fit import solver_config as fit_solver_config
    from infer.fit_cli import DEFAULT_CONFIG
    from infer.likelihood import make_log_density

    t0 = time.perf_counter()
    config = load_config(DEFAULT_CONFIG)
    if spec.get("neuron_batch") is not None:
        config = config.replace(neuron_batch=spec["neuron_batch"])
    if checkpoints is not None:
        config = config.replace(adjoint_checkpoints=checkpoints)
    log_density, z0, fit = make_log_density(config, neurons=n)
    setup_s = time.perf_counter() - t0
    repeats = spec.get("repeats", 3)
    model = fit.model

    fwd = jax.jit(log_density)
    grad = jax.jit(jax.value_and_grad(log_density))
    c_fwd, info_fwd = compile_aot(fwd, z0)
    t_fwd, val = timed(functools.partial(c_fwd, z0), repeats=repeats)
    c_grad, info_grad = compile_aot(grad, z0)
    t_grad, (val_g, g) = timed(functools.partial(c_grad, z0), repeats=repeats)
    leaves = jax.tree_util.tree_leaves(g)
    out = {
        "n_neurons": n,
        "setup_s": setup_s,
        "forward": info_fwd | t_fwd,
        "gradient": info_grad | t_grad,
        "gradient_over_forward": t_grad["time_s_min"] / t_fwd["time_s_min"],
        "gradient_over_forward_median": t_grad["time_s_median"] / t_fwd["time_s_median"],
        "gradient_over_forward_cpu": t_grad["cpu_s_min"] / max(t_fwd["cpu_s_min"], 1e-12),
        "log_density_at_z0": float(val),
        "value_matches": bool(jnp.allclose(val, val_g, rtol=1e-8)),
        "gradient_finite": bool(all(jnp.all(jnp.isfinite(x)) for x in leaves)),
        "n_gradient_components": int(sum(x.size for x in leaves)),
        "latents": sorted(z0),
        "n_measurements": int(fit.problem.n_measurements),
        "n_constraints": len(fit.problem.constraint_ids),
        "n_conditions": len(fit.problem.conditions),
        "n_solved_conditions": len(fit.problem.solved),
        "conditions": [str(c) for c in fit.problem.conditions],
        "fit_solver": {
            "method": fit.config.solver,
            "rtol": fit.config.rtol,
            "atol": fit.config.atol,
            "max_steps": fit.config.max_steps,
        },
        "adjoint_checkpoints": fit.config.adjoint_checkpoints,
        "adjoint": _adjoint_name(fit.config.adjoint_checkpoints),
        "neuron_batch": fit_solver_config(fit.config).batch_size() or n,  # neurons at once
    }
    if spec.get("solve_only", True):
        # the population solve alone (the part of the log density that is ODE work)
        def solve(z):
            theta, sigma = model.theta_sigma(_constrained_values(model, z))
            levels, _, _ = model.predictor.levels(theta, sigma)
            return levels

        c_solve, info_solve = compile_aot(jax.jit(solve), z0)
        t_solve, _ = timed(functools.partial(c_solve, z0), repeats=repeats)
        out["solve_only"] = info_solve | t_solve
        out["solve_share_of_forward"] = t_solve["time_s_min"] / t_fwd["time_s_min"]
    return out


def _log_likelihood(spec: dict):
    base = {
        "case": "gradient",
        "variant": "log_likelihood",
        "objective": "log joint density of the default fit (infer/configs/default.toml), "
        "value only vs value and gradient, at the prior medians",
        "config": "infer/configs/default.toml",
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
    for n in spec.get("log_likelihood_n", []):
        for checkpoints in spec.get("adjoint_checkpoints", [None]):
            try:
                point = _ll_point(spec, n, checkpoints)
                yield base | {"status": "ok"} | point | {"memory": peak_memory_bytes()}
            except Exception as err:  # noqa: BLE001
                yield error_record(base | {"n_neurons": n, "adjoint_checkpoints": checkpoints}, err)
                return
