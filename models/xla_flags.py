"""XLA compiler flags for homeoplast's CPU programs.

``use_cpu_flags()`` sets three kinds of XLA CPU flag before JAX starts its CPU backend:

1. **Fast math** (:data:`FAST_MATH_FLAGS`): XLA's CPU compiler may reassociate floating-point
   sums and contract multiply-adds (LLVM fast-math) while it still honours NaN and infinity,
   exact division and the exact transcendental functions. Results change only by rounding (the
   demo fit's log density agreed to 3e-16 relative), and the solver's finiteness checks keep
   working, so a failed solve is still caught. Measured on a 2-core Intel Xeon, float64
   (benchmarks/README.md, "XLA CPU fast math"): the gradient of the demo fit's log density
   34.6 -> 27.6 ms, the benchmark proxy's gradient at 256 neurons 2.24 -> 1.86 s.
2. **The classic fusion emitter** (:data:`FUSION_EMITTER_FLAGS`): XLA's newer MLIR fusion
   emitters are switched off, so fused element-wise kernels are emitted by the classic
   elemental emitter. The model's vector field is hundreds of small element-wise operations
   on short arrays, for which the classic emitter's code is faster and quicker to compile.
   Same host, same day, A/B twice, one core (benchmarks/README.md, "XLA CPU fusion
   emitters"): demo log density 4.1-4.2 -> 2.9-3.0 ms, its gradient 21.5-22.1 -> 16.9-17.5
   ms, compilation 54-55 -> 34-36 s; the value identical to 12 digits. XLA stops the process
   on a flag it does not know, so this flag is only added for the jaxlib versions it was
   tested with (:data:`FUSION_EMITTER_JAXLIB`); with another jaxlib nothing is added (set it
   in ``XLA_FLAGS`` yourself if your XLA has it).
3. **Small loops compiled whole** (:data:`SMALL_LOOP_FLAGS`): XLA's CPU runtime runs a
   program as a sequence of "thunks", one per fused kernel, and pays a dispatch cost (about
   0.1 us) for each. A solver loop over a few neurons is thousands of tiny kernels per step:
   the demo fit's gradient was 131,600 thunk calls. XLA's small-while-loop hoisting pass
   instead compiles a ``while`` loop whose buffers are below a byte threshold into one
   function (control flow included); the option sets that threshold high enough that every
   loop without a custom call is compiled so (loops around LAPACK's LU in the implicit
   solvers stay as they were; the demo's gradient: 2,000 thunk calls). Same host, same day, one core (benchmarks/README.md,
   "Small loops compiled whole"): the demo's log density 3.1-3.3 -> 2.1-2.5 ms, its
   gradient 13.7-15.8 -> 9.0-9.9 ms, the demo's NUTS 1.36x faster; the default fit's
   gradient at 1,024 neurons 12.3 -> 11.3 s; values equal to 3e-14. Like the fusion-emitter
   flag, it is only added for the tested jaxlib series, and not when ``XLA_FLAGS`` already
   has ``--xla_backend_extra_options`` (the option is one of that flag's comma-separated
   entries; add it to yours there).

The flags are read once, when JAX starts its CPU backend, so the command-line entry points
(``python -m infer``, ``python -m benchmarks``) and the test suite call this before any JAX
computation; in a script or notebook call it first. A user's own setting of a flag in
``XLA_FLAGS`` wins (``--xla_cpu_enable_fast_math=false`` or
``--xla_cpu_use_fusion_emitters=true``,
``--xla_backend_extra_options=xla_cpu_small_while_loop_byte_threshold=1024``, XLA's
default): nothing is added for it then. GPU programs are not affected.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping
from importlib import metadata

FAST_MATH_FLAGS = (
    "--xla_cpu_enable_fast_math=true",
    "--xla_cpu_fast_math_honor_nans=true",
    "--xla_cpu_fast_math_honor_infs=true",
    "--xla_cpu_fast_math_honor_division=true",
    "--xla_cpu_fast_math_honor_functions=true",
)
FUSION_EMITTER_FLAGS = ("--xla_cpu_use_fusion_emitters=false",)
# 2**30 bytes: above any loop's buffers here, so every loop the pass can take is taken.
SMALL_LOOP_FLAGS = (
    "--xla_backend_extra_options=xla_cpu_small_while_loop_byte_threshold=1073741824",
)
# jaxlib release series (major.minor) whose XLA has --xla_cpu_use_fusion_emitters and the
# small-while-loop hoisting option, tested here.
FUSION_EMITTER_JAXLIB = ("0.10",)


def _jaxlib_series() -> str | None:
    try:
        return ".".join(metadata.version("jaxlib").split(".")[:2])
    except metadata.PackageNotFoundError:
        return None


def use_cpu_flags(
    environ: MutableMapping[str, str] | None = None, jaxlib_series: str | None = None
) -> list[str]:
    """Add :data:`FAST_MATH_FLAGS` and, for a tested jaxlib, :data:`FUSION_EMITTER_FLAGS` and
    :data:`SMALL_LOOP_FLAGS` to ``XLA_FLAGS`` in ``environ`` (default ``os.environ``), each group unless ``XLA_FLAGS``
    already names its flag. ``jaxlib_series``: "major.minor" of jaxlib (default: the installed
    one). Returns the flags added. Call before JAX's first computation: a backend that has
    started keeps its flags."""
    env = os.environ if environ is None else environ
    series = _jaxlib_series() if jaxlib_series is None else jaxlib_series
    current = env.get("XLA_FLAGS", "")
    added: list[str] = []
    if "xla_cpu_enable_fast_math" not in current:
        added += FAST_MATH_FLAGS
    if "xla_cpu_use_fusion_emitters" not in current and series in FUSION_EMITTER_JAXLIB:
        added += FUSION_EMITTER_FLAGS
    if "xla_backend_extra_options" not in current and series in FUSION_EMITTER_JAXLIB:
        added += SMALL_LOOP_FLAGS
    if added:
        env["XLA_FLAGS"] = " ".join([*current.split(), *added])
    return added


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
