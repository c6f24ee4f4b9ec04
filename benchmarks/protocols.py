"""What is benchmarked: protocols, solvers, sizes for the quick and full plans."""

from __future__ import annotations

STANDARD = (
    "ketamine 10 mg/kg i.p., mouse",
    "vehicle, mouse",
    "ketamine 10 mg/kg i.p. + rapamycin, mouse",
    "ethanol 30 mM bath, cultured neurons",
)
STANDARD_TIMES = (0.0, 0.5, 1.0, 2.0, 6.0, 24.0)

PROTOCOLS = {
    # the standard protocol set: 4 conditions to 24 h
    "standard": {"conditions": STANDARD, "times": STANDARD_TIMES},
    # the 24-h ketamine protocol of the H100 target
    "ketamine_24h": {"conditions": (STANDARD[0],), "times": STANDARD_TIMES},
}

RTOL = 1e-6  # the package defaults (models.solve.SolverConfig); peers use the same
ATOL = 1e-9


def solver_config(name: str, neuron_batch: int | None = None):
    """The package's solver settings with solver ``name``; ``neuron_batch`` None is the
    package's automatic choice (models.solve.SolverConfig.neuron_batch)."""
    from models.solve import SolverConfig
    from models.solvers import make_solver

    return SolverConfig(solver=make_solver(name), rtol=RTOL, atol=ATOL, neuron_batch=neuron_batch)
