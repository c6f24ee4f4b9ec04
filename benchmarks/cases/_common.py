"""Pieces shared by the cases: population inputs, step statistics, error records."""

from __future__ import annotations

import traceback

import numpy as np

from ..protocols import PROTOCOLS


def dtype_of(name: str):
    import jax.numpy as jnp

    return {"float32": jnp.float32, "float64": jnp.float64}[name]


def population_inputs(n_neurons: int, protocol: str, dtype_name: str, seed: int = 0):
    """(theta_pop, sigma, z, encoded conditions, ts) in one dtype, as the Simulator builds them."""
    import jax.numpy as jnp

    from models.dynamics import default_theta
    from models.exposure import encode_conditions
    from models.pathway import PATHWAY
    from models.population import DEFAULT_SIGMA, draw_z

    dt = dtype_of(dtype_name)
    np_dt = np.float32 if dtype_name == "float32" else np.float64
    proto = PROTOCOLS[protocol]
    theta = default_theta(dtype=dt)
    sigma = jnp.full((len(PATHWAY.heterogeneous_names),), DEFAULT_SIGMA, dt)
    z = draw_z(n_neurons, seed, dtype=dt)
    enc = encode_conditions(list(proto["conditions"]), dtype=np_dt)
    ts = jnp.asarray(proto["times"], dt)
    return theta, sigma, z, enc, ts


def step_stats(num_steps, ok=None, bins: int = 24) -> dict:
    """Distribution of per-neuron accepted+rejected step counts ``[neuron, condition]``.

    A vmapped adaptive solve runs the batched loop until its slowest lane finishes, so the
    work executed is ``max_steps * lanes`` while the useful work is ``sum(steps)``;
    ``lane_efficiency`` = mean / max is the fraction of the batch doing useful steps.
    """
    s = np.asarray(num_steps, dtype=np.int64)
    flat = s.reshape(-1)
    out = {
        "mean": float(flat.mean()),
        "median": float(np.median(flat)),
        "p95": float(np.percentile(flat, 95)),
        "min": int(flat.min()),
        "max": int(flat.max()),
        "total": int(flat.sum()),
        "lane_efficiency": float(flat.mean() / max(flat.max(), 1)),
        "per_condition": {
            "mean": s.mean(axis=0).tolist(),
            "median": np.median(s, axis=0).tolist(),
            "p95": np.percentile(s, 95, axis=0).tolist(),
            "max": s.max(axis=0).tolist(),
        },
    }
    counts, edges = np.histogram(flat, bins=bins)
    out["histogram"] = {"counts": counts.tolist(), "edges": edges.tolist()}
    if ok is not None:
        out["ok_fraction"] = float(np.asarray(ok).mean())
    return out


def error_record(base: dict, err: BaseException) -> dict:
    rec = dict(base)
    rec["status"] = "error"
    rec["error"] = f"{type(err).__name__}: {err}"[:2000]
    rec["traceback"] = traceback.format_exc()[-3000:]
    return rec


def is_out_of_memory(err: BaseException) -> bool:
    text = str(err)
    return "RESOURCE_EXHAUSTED" in text or "Out of memory" in text or isinstance(err, MemoryError)
