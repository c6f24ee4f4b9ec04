"""Case (a): population forward solve versus the number of neurons.

One ``jax.jit`` of :func:`models.population.simulate_population` (the pure function that
``Simulator`` jits), lowered and compiled ahead of time once per N, then timed over repeats.
Each point records time, throughput (neuron-solves per second, one solve = one neuron under
one condition over the whole protocol), the distribution of per-neuron step counts (the
vmap-waits-for-the-slowest cost), XLA's memory analysis and the process's peak memory.
"""

from __future__ import annotations

import functools

from .._env import memory_available_bytes, peak_memory_bytes
from .._timing import compile_aot, timed
from ..protocols import ATOL, PROTOCOLS, RTOL, solver_config
from ._common import error_record, is_out_of_memory, population_inputs, step_stats


def _footprint(info: dict) -> int | None:
    mem = info.get("xla_memory")
    if not mem:
        return None
    return sum(
        mem.get(k, 0)
        for k in ("argument_size_in_bytes", "output_size_in_bytes", "temp_size_in_bytes")
    )


def _memory_limit() -> int | None:
    import jax

    stats = jax.devices()[0].memory_stats() or {}
    if stats.get("bytes_limit"):
        return int(stats["bytes_limit"])
    return memory_available_bytes()


def run(spec: dict):
    import jax

    from models.population import simulate_population

    solver, dtype, protocol = spec["solver"], spec["dtype"], spec["protocol"]
    repeats = int(spec.get("repeats", 3))
    max_point_s = float(spec.get("max_point_s", 60.0))
    proto = PROTOCOLS[protocol]
    config = solver_config(solver, spec.get("neuron_batch"))
    fn = jax.jit(functools.partial(simulate_population, config=config))
    last = None  # (n, time_min, footprint)
    for n in spec["n_neurons"]:
        base = {
            "case": "forward",
            "protocol": protocol,
            "conditions": list(proto["conditions"]),
            "times_h": list(proto["times"]),
            "solver": solver,
            "dtype": dtype,
            "rtol": RTOL,
            "atol": ATOL,
            "n_neurons": n,
            "n_conditions": len(proto["conditions"]),
            "neuron_batch": config.batch_size() or n,  # neurons solved at once
        }
        if last is not None:
            n0, t0, f0 = last
            # linear extrapolation; from tiny batches (overhead-bound, vectorisation not yet
            # paying off) it overestimates by orders of magnitude, so only from N >= 64
            predicted = t0 * n / n0 * (repeats + 1)
            if n0 >= 64 and predicted > max_point_s:
                yield base | {
                    "status": "skipped",
                    "reason": f"predicted {predicted:.0f} s for {repeats + 1} calls exceeds this "
                    f"plan's {max_point_s:.0f} s per point (scaled from N={n0})",
                }
                break
            limit = _memory_limit()
            if f0 and limit and f0 * n / n0 > 0.8 * limit:
                yield base | {
                    "status": "skipped",
                    "reason": f"predicted {f0 * n / n0 / 2**30:.1f} GiB exceeds 80% of the "
                    f"{limit / 2**30:.1f} GiB available",
                }
                break
        try:
            args = population_inputs(n, protocol, dtype)
            compiled, info = compile_aot(fn, *args)
            timing, sol = timed(
                lambda compiled=compiled, args=args: compiled(*args), repeats=repeats
            )
        except Exception as err:  # noqa: BLE001 - recorded, then the sweep stops
            yield error_record(base, err) | {"out_of_memory": is_out_of_memory(err)}
            break
        steps = step_stats(sol.num_steps, sol.ok)
        solves = n * len(proto["conditions"])
        rec = base | info | timing
        rec.update(
            status="ok",
            api="jax.jit(models.population.simulate_population), AOT lower/compile once",
            neuron_solves=solves,
            neuron_solves_per_s=solves / timing["time_s_min"],
            neuron_solves_per_s_median=solves / timing["time_s_median"],
            steps=steps,
            memory=peak_memory_bytes(),
        )
        yield rec
        last = (n, timing["time_s_min"], _footprint(info))
