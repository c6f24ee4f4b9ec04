"""Worker process: runs one case from a JSON spec and prints one JSON record per line.

Usage (the runner does this): ``python -m benchmarks.worker '<json spec>'``. The spec's
``dtype`` fixes ``jax_enable_x64`` before anything is traced; the parent sets ``XLA_FLAGS``
(forced host devices) and ``JAX_PLATFORMS`` in the environment. Lines starting with
``RECORD_PREFIX`` carry records; everything else is progress for humans.
"""

from __future__ import annotations

import importlib
import json
import sys
import warnings

RECORD_PREFIX = "@@record "

CASES = {
    "forward": "benchmarks.cases.forward",
    "flops": "benchmarks.cases.flops",
    "peers": "benchmarks.cases.peers",
    "gradient": "benchmarks.cases.gradient",
    "inference": "benchmarks.cases.inference",
    "sharding": "benchmarks.cases.sharding",
}


def _default(obj):
    import numpy as np

    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return str(obj)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m benchmarks.worker '<json spec>'", file=sys.stderr)
        return 2
    spec = json.loads(argv[0])
    from models.xla_flags import use_cpu_flags

    use_cpu_flags()  # before JAX starts its backend (models/xla_flags.py)
    import jax

    jax.config.update("jax_enable_x64", spec.get("dtype", "float64") == "float64")
    # float32 runs: default_theta(dtype=float64) is truncated to float32 on purpose.
    warnings.filterwarnings("ignore", message="Explicitly requested dtype")
    from ._env import device_info

    module = importlib.import_module(CASES[spec["case"]])
    device = device_info()
    for record in module.run(spec):
        record.setdefault("device", device)
        record.setdefault("spec_label", spec.get("label"))
        print(RECORD_PREFIX + json.dumps(record, default=_default), flush=True)
        status = record.get("status")
        extra = record.get("reason") or record.get("error") or ""
        print(
            f"  [{spec['case']}] {record.get('label', '')} N={record.get('n_neurons', '-')} "
            f"{status} {extra[:200]}",
            file=sys.stderr,
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
