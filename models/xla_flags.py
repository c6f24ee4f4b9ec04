"""XLA compiler flags for homeoplast's CPU programs.

``use_cpu_fast_math()`` lets XLA's CPU compiler reassociate floating-point sums and contract
multiply-adds (LLVM fast-math) while it still honours NaN and infinity, exact division and
the exact transcendental functions. Results change only by rounding (the demo fit's log
density agreed to 3e-16 relative), and the solver's finiteness checks keep working, so a
failed solve is still caught. Measured on a 2-core Intel Xeon, float64 (benchmarks/README.md,
"XLA CPU fast math"): the gradient of the demo fit's log density 34.6 -> 27.6 ms, the
benchmark proxy's gradient at 256 neurons 2.24 -> 1.86 s, forward solves unchanged.

The flags are read once, when JAX starts its CPU backend, so the command-line entry points
(``python -m infer``, ``python -m benchmarks``) and the test suite call this before any JAX
computation; in a script or notebook call it first. A user who sets
``--xla_cpu_enable_fast_math`` in ``XLA_FLAGS`` themselves (``=false`` turns it off) wins:
nothing is added then. GPU programs are not affected.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping

FAST_MATH_FLAGS = (
    "--xla_cpu_enable_fast_math=true",
    "--xla_cpu_fast_math_honor_nans=true",
    "--xla_cpu_fast_math_honor_infs=true",
    "--xla_cpu_fast_math_honor_division=true",
    "--xla_cpu_fast_math_honor_functions=true",
)


def use_cpu_fast_math(environ: MutableMapping[str, str] | None = None) -> bool:
    """Add :data:`FAST_MATH_FLAGS` to ``XLA_FLAGS`` in ``environ`` (default ``os.environ``)
    unless it already names ``xla_cpu_enable_fast_math``. Returns whether flags were added.
    Call before JAX's first computation: a backend that has started keeps its flags."""
    env = os.environ if environ is None else environ
    current = env.get("XLA_FLAGS", "")
    if "xla_cpu_enable_fast_math" in current:
        return False
    env["XLA_FLAGS"] = " ".join([*current.split(), *FAST_MATH_FLAGS])
    return True


def force_host_devices(k: int, environ: MutableMapping[str, str] | None = None) -> None:
    """Expose ``k`` XLA host (CPU) devices: set ``--xla_force_host_platform_device_count`` in
    ``XLA_FLAGS`` of ``environ`` (default ``os.environ``), replacing an earlier count and
    keeping every other flag. Read when JAX's CPU backend starts, so call it before any JAX
    computation (or set it in a child process's environment)."""
    if k < 1:
        raise ValueError(f"host device count must be >= 1, got {k}")
    env = os.environ if environ is None else environ
    flags = [f for f in env.get("XLA_FLAGS", "").split() if "host_platform_device_count" not in f]
    env["XLA_FLAGS"] = " ".join([*flags, f"--xla_force_host_platform_device_count={k}"])
