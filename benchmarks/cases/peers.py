"""Peers, same model and tolerances, looping over neurons as a user would.

* ``scipy.integrate.solve_ivp`` with BDF, LSODA and RK45 (the default), one call per neuron
  and condition, with two right-hand sides:

  - ``jax``: the package's own vector field, ``jax.jit``-ed for one neuron and called with
    NumPy arrays (BDF/LSODA also get its ``jax.jacfwd`` Jacobian). Each call crosses from
    Python into XLA, which costs tens of microseconds, more than the arithmetic.
  - ``python``: the same expression strings compiled into ONE plain-Python function of float
    scalars (``math.exp``; what a careful user would hand-write or get from sympy.lambdify).
    Jacobians by SciPy's finite differences.

  The faster of the two is the fair peer; both are reported.
* libroadrunner (CVODE, stiff BDF, LLVM-compiled model) on the SBML export
  (:func:`models.sbml.to_sbml`), loaded once per condition; per neuron its parameters, inputs
  and initial state are set and the model reset and simulated.

Per-neuron parameters, inputs and initial states are computed beforehand (vectorised, untimed),
exactly as homeoplast's population solve draws them. Every peer's answer is checked against
a tight-tolerance reference so that a fast but wrong peer would show.
"""

from __future__ import annotations

import math
import time

import numpy as np

from ..protocols import ATOL, PROTOCOLS, RTOL

# ------------------------------------------------------------------ python right-hand side


def _safe_pow(a, b):
    try:
        return math.pow(a, b)
    except (ValueError, OverflowError):
        return math.nan


def _safe_exp(x):
    try:
        return math.exp(x)
    except OverflowError:
        return math.inf


def _piecewise(value, condition, otherwise):
    return value if condition else otherwise


def python_rhs_factory(pathway):
    """Build ``rhs(t, y_list, theta_list, u_list) -> list`` from the pathway's expression
    strings as one generated Python function (no per-term ``eval``)."""
    lines = ["def rhs(__t, __y, __th, __u):"]
    lines.append(f"    {pathway.time_name} = __t")
    for i, name in enumerate(pathway.parameter_names):
        lines.append(f"    {name} = __th[{i}]")
    for i, name in enumerate(pathway.input_names):
        lines.append(f"    {name} = __u[{i}]")
    for i, name in enumerate(pathway.species_names):
        lines.append(f"    {name} = __y[{i}]")
    for rule in pathway.rules:
        lines.append(f"    {rule.name} = {rule.expr}")
    out = []
    for species in pathway.species_names:
        terms = [f"({t.expr})" for t in pathway.terms_of(species)] or ["0.0"]
        out.append(" + ".join(terms))
    lines.append("    return [" + ", ".join(out) + "]")
    namespace = {"exp": _safe_exp, "pow": _safe_pow, "piecewise": _piecewise}
    exec(compile("\n".join(lines), "<homeoplast python rhs>", "exec"), namespace)  # noqa: S102
    return namespace["rhs"]


# ------------------------------------------------------------------ inputs and reference


def _population(n, protocol):
    import jax
    import jax.numpy as jnp

    from models.dynamics import compiled, default_theta
    from models.exposure import condition_inputs, encode_conditions, select_condition
    from models.pathway import PATHWAY
    from models.population import DEFAULT_SIGMA, draw_z, heterogeneous_index, neuron_thetas

    cp = compiled()
    proto = PROTOCOLS[protocol]
    enc = encode_conditions(list(proto["conditions"]))
    sigma = jnp.full((len(PATHWAY.heterogeneous_names),), DEFAULT_SIGMA)
    thetas = neuron_thetas(default_theta(), sigma, draw_z(n, 0), heterogeneous_index())
    conds = [select_condition(enc, i) for i in range(enc.size)]
    us = jnp.stack(
        [jax.vmap(lambda th, c=c: condition_inputs(th, c, cp))(thetas) for c in conds], 1
    )
    y0 = jax.vmap(cp.baseline)(thetas)
    t_off = np.asarray(enc.t_off)
    return np.asarray(thetas), np.asarray(us), np.asarray(y0), t_off, enc


def _reference(thetas, enc, ts, solver, rtol, atol):
    """States [neuron, condition, time, state] from homeoplast's own solve_neuron."""
    import jax
    import jax.numpy as jnp

    from models.solve import SolverConfig, solve_neuron
    from models.solvers import make_solver

    config = SolverConfig(solver=make_solver(solver), rtol=rtol, atol=atol, max_steps=200_000)
    ts = jnp.asarray(ts)

    def one(theta, cond):
        return solve_neuron(theta, cond, ts, config).ys

    f = jax.jit(jax.vmap(jax.vmap(one, in_axes=(None, 0)), in_axes=(0, None)))
    return np.asarray(f(jnp.asarray(thetas), enc))


def _errors(ys, ref, done) -> dict:
    """Relative error vs the reference, floored at 1e-3 (states are fractions and levels ~1)."""
    a, b = ys[:done], ref[:done]
    rel = np.abs(a - b) / np.maximum(np.abs(b), 1e-3)
    return {"max_rel_error": float(np.nanmax(rel)), "median_rel_error": float(np.nanmedian(rel))}


# ------------------------------------------------------------------ runners


def _segments(t_end, t_off):
    """Integration pieces split at a wash-out time (homeoplast clips its steps there too)."""
    if 0.0 < t_off < t_end:
        return [(0.0, t_off), (t_off, t_end)]
    return [(0.0, t_end)]


def _scipy_loop(method, rhs_kind, thetas, us, y0s, t_offs, ts, cap_s, pathway):
    import jax
    from scipy.integrate import solve_ivp

    from models.dynamics import compiled

    n, n_cond = us.shape[:2]
    ys = np.full((n, n_cond, len(ts), y0s.shape[1]), np.nan)
    stats = {"nfev": 0, "njev": 0, "failures": 0}
    if rhs_kind == "jax":
        cp = compiled(pathway)
        vf = jax.jit(lambda t, y, th, u: cp.vector_field(t, y, (th, u)))
        jac_f = jax.jit(jax.jacfwd(lambda t, y, th, u: cp.vector_field(t, y, (th, u)), argnums=1))
        # warm up (compile) outside the timed loop
        vf(0.0, y0s[0], thetas[0], us[0, 0]).block_until_ready()
        jac_f(0.0, y0s[0], thetas[0], us[0, 0]).block_until_ready()

        def make(theta, u):
            def f(t, y):
                return np.asarray(vf(t, y, theta, u))

            def j(t, y):
                return np.asarray(jac_f(t, y, theta, u))

            return f, (j if method in ("BDF", "LSODA", "Radau") else None)
    else:
        prhs = python_rhs_factory(pathway)

        def make(theta, u):
            th, uu = theta.tolist(), u.tolist()

            def f(t, y):
                try:
                    return prhs(t, y.tolist(), th, uu)
                except ZeroDivisionError:
                    return [math.nan] * len(y)

            return f, None

    t_end = float(ts[-1])
    done = 0
    c0 = time.process_time()
    start = time.perf_counter()
    for i in range(n):
        for c in range(n_cond):
            f, j = make(thetas[i], us[i, c])
            y = y0s[i].copy()
            for a, b in _segments(t_end, float(t_offs[c])):
                mask = (ts >= a) & (ts <= b)
                kwargs = {"jac": j} if j is not None else {}
                sol = solve_ivp(
                    f, (a, b), y, method=method, t_eval=ts[mask], rtol=RTOL, atol=ATOL, **kwargs
                )
                stats["nfev"] += int(sol.nfev)
                stats["njev"] += int(getattr(sol, "njev", 0) or 0)
                if not sol.success:
                    stats["failures"] += 1
                    break
                ys[i, c, mask] = sol.y.T
                y = sol.y[:, -1] if sol.y.shape[1] else y
        done = i + 1
        if time.perf_counter() - start > cap_s:
            break
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - c0
    return ys, done, elapsed, cpu, stats


def _roadrunner_loop(thetas, us, y0s, ts, cap_s, protocol, pathway):
    import roadrunner

    from models.sbml import to_sbml

    proto = PROTOCOLS[protocol]
    n, n_cond = us.shape[:2]
    ys = np.full((n, n_cond, len(ts), y0s.shape[1]), np.nan)
    load_s = 0.0
    runners = []
    for spec in proto["conditions"]:
        t0 = time.perf_counter()
        rr = roadrunner.RoadRunner(to_sbml(spec))
        integ = rr.getIntegrator()
        integ.setValue("stiff", True)
        integ.setValue("relative_tolerance", RTOL)
        integ.setValue("absolute_tolerance", ATOL)
        integ.setValue("maximum_num_steps", 200_000)
        load_s += time.perf_counter() - t0
        ids = list(rr.model.getGlobalParameterIds())
        p_idx = np.array([ids.index(p) for p in pathway.parameter_names], dtype=np.int32)
        u_idx = np.array([ids.index(p) for p in pathway.input_names], dtype=np.int32)
        sp_ids = list(rr.model.getFloatingSpeciesIds())
        order = np.array([pathway.species_names.index(s) for s in sp_ids])
        runners.append((rr, np.concatenate([p_idx, u_idx]), order, sp_ids))
    grid = [float(t) for t in ts]
    done = 0
    c0 = time.process_time()
    start = time.perf_counter()
    for i in range(n):
        for c, (rr, idx, order, sp_ids) in enumerate(runners):
            values = np.concatenate([thetas[i], us[i, c]])
            rr.model.setGlobalParameterValues(idx, values)
            # initial states: species whose baseline is a parameter carry an SBML
            # initialAssignment, which reset() re-evaluates from the values just set; the
            # others have constant baselines
            rr.reset()
            out = np.asarray(rr.simulate(times=grid, selections=["time", *sp_ids]))
            ys[i, c][:, order] = out[:, 1:]
        done = i + 1
        if time.perf_counter() - start > cap_s:
            break
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - c0
    return ys, done, elapsed, cpu, {"model_load_s": load_s}


def run(spec: dict):
    from models.pathway import PATHWAY

    protocol = spec.get("protocol", "standard")
    proto = PROTOCOLS[protocol]
    n = int(spec.get("n_neurons", 16))
    cap_s = float(spec.get("cap_s", 20.0))
    ts = np.asarray(proto["times"], float)
    thetas, us, y0s, t_offs, enc = _population(n, protocol)
    t0 = time.perf_counter()
    ref = _reference(thetas, enc, ts, "tsit5", 1e-10, 1e-13)
    ref_s = time.perf_counter() - t0
    own = _reference(thetas, enc, ts, "tsit5", RTOL, ATOL)
    base = {
        "case": "peers",
        "protocol": protocol,
        "conditions": list(proto["conditions"]),
        "times_h": list(proto["times"]),
        "dtype": "float64",
        "rtol": RTOL,
        "atol": ATOL,
        "n_conditions": len(proto["conditions"]),
        "reference": "homeoplast Tsit5 at rtol 1e-10, atol 1e-13",
        "reference_s": ref_s,
    }
    yield base | {
        "peer": "homeoplast-tsit5-accuracy",
        "status": "ok",
        "n_neurons": n,
        "accuracy": _errors(own, ref, n),
        "note": "accuracy of homeoplast's own Tsit5 at the benchmark tolerances (its speed is the forward case)",
    }
    for method in spec.get("scipy_methods", ("BDF", "LSODA", "RK45")):
        for rhs_kind in spec.get("rhs_kinds", ("jax", "python")):
            label = f"scipy-{method}-{rhs_kind}"
            try:
                ys, done, elapsed, cpu, stats = _scipy_loop(
                    method, rhs_kind, thetas, us, y0s, t_offs, ts, cap_s, PATHWAY
                )
            except Exception as err:  # noqa: BLE001 - a broken peer is recorded, not fatal
                yield base | {
                    "peer": label,
                    "status": "error",
                    "error": f"{type(err).__name__}: {err}",
                }
                continue
            solves = done * len(proto["conditions"])
            yield base | {
                "peer": label,
                "status": "ok",
                "method": method,
                "rhs": rhs_kind,
                "n_neurons": done,
                "neuron_solves": solves,
                "time_s": elapsed,
                "cpu_s": cpu,
                "neuron_solves_per_s": solves / elapsed,
                "seconds_per_solve": elapsed / solves,
                "accuracy": _errors(ys, ref, done),
                "solver_stats": stats | {"nfev_per_solve": stats["nfev"] / solves},
            }
    if spec.get("roadrunner", True):
        label = "roadrunner-cvode"
        try:
            import roadrunner  # noqa: F401

            from models.sbml import to_sbml  # noqa: F401
        except ImportError as err:
            yield base | {"peer": label, "status": "skipped", "reason": f"not available: {err}"}
            return
        try:
            ys, done, elapsed, cpu, stats = _roadrunner_loop(
                thetas, us, y0s, ts, cap_s, protocol, PATHWAY
            )
        except Exception as err:  # noqa: BLE001
            yield base | {"peer": label, "status": "error", "error": f"{type(err).__name__}: {err}"}
            return
        solves = done * len(proto["conditions"])
        yield base | {
            "peer": label,
            "status": "ok",
            "method": "CVODE BDF (stiff), LLVM-compiled SBML",
            "n_neurons": done,
            "neuron_solves": solves,
            "time_s": elapsed,
            "cpu_s": cpu,
            "neuron_solves_per_s": solves / elapsed,
            "seconds_per_solve": elapsed / solves,
            "accuracy": _errors(ys, ref, done),
            "solver_stats": stats,
        }
