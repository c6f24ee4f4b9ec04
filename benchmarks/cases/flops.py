"""Case 'flops': the arithmetic of one vector-field evaluation and one solver step, and the
device's practical peak (a large matrix product), for the distance-to-the-limit note.

FLOPs of one vector-field evaluation come from XLA's static cost analysis of the jitted
function for ONE neuron. Evaluations per step are counted, not assumed: a host callback in
the vector field of a jitted single-neuron solve (Tsit5: 6 per step, FSAL; Kvaerno5: the
explicit stage, the Newton iterations of 6 implicit stages and one Jacobian). XLA's cost
analysis of a whole solver step is not used because it counts while-loop bodies once.
"""

from __future__ import annotations

import time

from .._timing import cost_analysis
from ._common import dtype_of

# Vendor datasheet peaks, dense non-tensor-core arithmetic (an ODE right-hand side is
# elementwise work, so tensor cores do not apply). Source: NVIDIA H100 Tensor Core GPU
# datasheet (SXM5: FP64 34 TFLOP/s, FP64 tensor 67, FP32 67; PCIe: 26 / 51 / 51) and NVIDIA
# H200 datasheet (same SM count and clocks as H100 SXM).
DATASHEET_PEAK_FLOPS = {
    "H100 80GB HBM3": {"float64": 34e12, "float32": 67e12},
    "H100 SXM": {"float64": 34e12, "float32": 67e12},
    "H100 PCIe": {"float64": 26e12, "float32": 51e12},
    "H200": {"float64": 34e12, "float32": 67e12},
}


def datasheet_peak(device_kind: str, dtype: str) -> tuple[float | None, str | None]:
    for key, peaks in DATASHEET_PEAK_FLOPS.items():
        if key.lower() in device_kind.lower() or device_kind.lower() in key.lower():
            return peaks[dtype], f"NVIDIA datasheet, {key}, non-tensor {dtype}"
    return None, None


def matmul_peak(dtype_name: str, size: int, repeats: int = 5) -> dict:
    import jax
    import jax.numpy as jnp

    dt = dtype_of(dtype_name)
    a = jax.random.normal(jax.random.PRNGKey(0), (size, size), dt)
    b = jax.random.normal(jax.random.PRNGKey(1), (size, size), dt)
    f = jax.jit(jnp.matmul)
    jax.block_until_ready(f(a, b))
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(f(a, b))
        best = min(best, time.perf_counter() - t0)
    return {"size": size, "time_s_min": best, "flops_per_s": 2.0 * size**3 / best}


def count_evaluations(solver_name: str, theta, cond, cp, dt) -> tuple[int, int]:
    """Vector-field evaluations and steps of one jitted single-neuron solve (host callback)."""
    import jax
    import jax.numpy as jnp

    from models.solve import solve_neuron

    from ..protocols import STANDARD_TIMES, solver_config

    calls = [0]

    def bump():
        calls[0] += 1

    class Counting:
        def __init__(self, inner):
            self._inner = inner

        def __getattr__(self, key):
            return getattr(self._inner, key)

        def vector_field(self, t, y, args):
            jax.debug.callback(bump)
            return self._inner.vector_field(t, y, args)

    ts = jnp.asarray(STANDARD_TIMES, dt)
    config = solver_config(solver_name)
    sol = jax.jit(lambda th: solve_neuron(th, cond, ts, config, Counting(cp)))(theta)
    jax.block_until_ready(sol)
    jax.effects_barrier()
    return calls[0], int(sol.num_steps)


def run(spec: dict):
    import jax
    import jax.numpy as jnp

    from models.dynamics import compiled, default_theta
    from models.exposure import condition_inputs, encode_conditions, select_condition

    dtype = spec["dtype"]
    dt = dtype_of(dtype)
    cp = compiled()
    theta = default_theta(dtype=dt)
    cond = select_condition(
        encode_conditions(
            [spec.get("condition", "ketamine 10 mg/kg i.p., mouse")], dtype=jnp.dtype(dt).type
        ),
        0,
    )
    u = condition_inputs(theta, cond, cp)
    y0 = cp.baseline(theta)
    t0 = jnp.asarray(0.1, dt)
    args = (theta, u)

    vf = jax.jit(cp.vector_field).lower(t0, y0, args).compile()
    vf_cost = cost_analysis(vf)
    jac = jax.jit(jax.jacfwd(cp.vector_field, argnums=1)).lower(t0, y0, args).compile()
    jac_cost = cost_analysis(jac)
    lu = jax.jit(jax.scipy.linalg.lu_factor).lower(jnp.eye(y0.shape[0], dtype=dt)).compile()
    lu_cost = cost_analysis(lu)
    steps = {}
    for name in ("tsit5", "kvaerno5"):
        evals, n_steps = count_evaluations(name, theta, cond, cp, dt)
        per_step = evals / n_steps
        flops = per_step * vf_cost["flops"]
        if name == "kvaerno5":  # one Jacobian (counted as one evaluation above) and one LU per step
            flops += jac_cost["flops"] - vf_cost["flops"] + lu_cost["flops"]
        steps[name] = {
            "vf_evaluations_per_step": per_step,
            "flops": flops,
            "transcendentals": per_step * vf_cost["transcendentals"],
            "counted_on": "one neuron, ketamine 10 mg/kg i.p. to 24 h",
            "note": "vector-field evaluations counted with a host callback inside the jitted solve"
            + (
                "; plus one forward-mode Jacobian and one 14x14 LU per step (XLA cost analysis)"
                if name == "kvaerno5"
                else ""
            )
            + ". Excludes stage combinations, error norms and triangular solves, so a lower bound.",
        }
    size = int(spec.get("matmul_size", 2048))
    peak = matmul_peak(dtype, size)
    device_kind = jax.devices()[0].device_kind
    sheet, source = datasheet_peak(device_kind, dtype)
    yield {
        "case": "flops",
        "status": "ok",
        "dtype": dtype,
        "n_states": int(y0.shape[0]),
        "n_parameters": int(theta.shape[0]),
        "vector_field": vf_cost,
        "jacobian": jac_cost,
        "lu_factor": lu_cost,
        "step": steps,
        "matmul_peak": peak,
        "datasheet_peak_flops": sheet,
        "datasheet_source": source,
    }
