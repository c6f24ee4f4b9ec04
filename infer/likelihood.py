"""The log density of the default fit as a plain JAX function (benchmarks, tests, other tools).

``log_density(params)`` takes the unconstrained latent values (a dict, as NumPyro's
``initialize_model`` lays them out) and returns the log joint density (prior + likelihood +
constraint terms); ``jax.grad`` of it is what NUTS differentiates.
"""

from __future__ import annotations

from collections.abc import Callable

from .config import FitConfig, load_config
from .fit import Fit


def make_log_density(
    config: FitConfig | None = None, *, neurons: int | None = None
) -> tuple[Callable, dict, Fit]:
    """(log_density, initial unconstrained params, the Fit) for ``config`` (default config)."""
    from .fit_cli import DEFAULT_CONFIG

    config = config or load_config(DEFAULT_CONFIG)
    if neurons is not None:
        config = config.replace(neurons=neurons)
    fit = Fit.create(config)
    potential, z0, _, _ = fit.model.potential()

    def log_density(params):
        return -potential(params)

    return log_density, z0, fit
