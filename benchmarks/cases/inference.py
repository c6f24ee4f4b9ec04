"""Case (c): NUTS and SVI end to end on the default data: ESS per second and the time to a
posterior that passes the diagnostics.

Needs the inference engine's fit entry point (``infer.fit``) and its diagnostics. Until the
agreed API is importable this case writes a "not available yet" record instead of guessing.
"""

from __future__ import annotations


def run(spec: dict):
    base = {
        "case": "inference",
        "engines": list(spec.get("engines", ("nuts", "svi"))),
        "n_neurons": spec.get("n_neurons"),
    }
    missing = []
    try:
        from infer.likelihood import make_log_density  # noqa: F401
    except ImportError as err:
        missing.append(f"infer.likelihood.make_log_density ({err})")
    try:
        from infer import fit  # noqa: F401
    except ImportError as err:
        missing.append(f"infer.fit ({err})")
    if missing:
        yield base | {"status": "skipped", "reason": "not available yet: " + "; ".join(missing)}
        return
    yield base | {
        "status": "skipped",
        "reason": "not available yet: the inference engine's benchmark entry point (a fit "
        "returning samples, wall time and a diagnostics verdict) is not settled; wire it in "
        "benchmarks/cases/inference.py",
    }
