"""Timing: compile once, block until ready, repeat; report median and min."""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable


def timed(fn: Callable[[], object], *, repeats: int) -> tuple[dict, object]:
    """Call ``fn`` once (warm-up: compiles if not yet compiled), then ``repeats`` times.

    Every call is followed by ``jax.block_until_ready`` so asynchronous dispatch cannot hide
    work. Returns the timing record and the last output.
    """
    import jax

    t0 = time.perf_counter()
    out = jax.block_until_ready(fn())
    first = time.perf_counter() - t0
    times, cpu = [], []
    for _ in range(max(repeats, 1)):
        c0 = time.process_time()
        t0 = time.perf_counter()
        out = jax.block_until_ready(fn())
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return {
        "first_call_s": first,
        "times_s": times,
        "time_s_median": statistics.median(times),
        "time_s_min": min(times),
        "repeats": len(times),
        # CPU seconds of this process per call (all threads): on a shared, oversubscribed
        # host the wall-clock time is inflated by other processes, the CPU time much less.
        "cpu_s_min": min(cpu),
        "load_average": os.getloadavg(),
    }, out


def compile_aot(jitted, *args) -> tuple[object, dict]:
    """Lower and compile ``jitted`` for ``args`` ahead of time; return the executable and
    compile time plus XLA's memory analysis (bytes of arguments, outputs and temporaries)."""
    t0 = time.perf_counter()
    lowered = jitted.lower(*args)
    compiled = lowered.compile()
    info: dict = {"compile_s": time.perf_counter() - t0}
    try:
        mem = compiled.memory_analysis()
        if mem is not None:
            info["xla_memory"] = {
                k: int(getattr(mem, k))
                for k in (
                    "argument_size_in_bytes",
                    "output_size_in_bytes",
                    "temp_size_in_bytes",
                    "generated_code_size_in_bytes",
                )
                if hasattr(mem, k)
            }
    except Exception:  # noqa: BLE001 - optional per backend
        pass
    return compiled, info


def cost_analysis(compiled) -> dict:
    """XLA's static cost analysis (flops, transcendentals, bytes accessed) of an executable."""
    cost = compiled.cost_analysis()
    if isinstance(cost, list | tuple):
        cost = cost[0] if cost else {}
    cost = cost or {}
    return {
        "flops": float(cost.get("flops", 0.0)),
        "transcendentals": float(cost.get("transcendentals", 0.0)),
        "bytes_accessed": float(cost.get("bytes accessed", 0.0)),
    }
