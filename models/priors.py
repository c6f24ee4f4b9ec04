"""Prior draws of the parameter vector, without NumPyro (for tests, SBML cross-checks, SBC).

Log-normal priors are drawn on the log scale, logit-normal on the logit scale; draws are
truncated to each parameter's bounds by resampling, exactly as the inference model truncates.
"""

from __future__ import annotations

import numpy as np

from ._spec import LogitNormal, Pathway
from .pathway import PATHWAY


def to_unconstrained(name: str, value, pathway: Pathway = PATHWAY):
    """Prior-standardised coordinate: (transform(value) - transform(median)) / scale."""
    p = pathway.parameter(name)
    value = np.asarray(value, float)
    if isinstance(p.prior, LogitNormal):
        tr = np.log(value / (1 - value))
        mu = np.log(p.prior.median / (1 - p.prior.median))
    else:
        tr, mu = np.log(value), np.log(p.prior.median)
    return (tr - mu) / p.prior.scale


def from_unconstrained(name: str, z, pathway: Pathway = PATHWAY):
    """Inverse of :func:`to_unconstrained`."""
    p = pathway.parameter(name)
    z = np.asarray(z, float)
    if isinstance(p.prior, LogitNormal):
        mu = np.log(p.prior.median / (1 - p.prior.median))
        return 1.0 / (1.0 + np.exp(-(mu + p.prior.scale * z)))
    return np.exp(np.log(p.prior.median) + p.prior.scale * z)


def sample_prior(
    rng: np.random.Generator,
    n: int,
    *,
    names: tuple[str, ...] | None = None,
    shrink: float = 1.0,
    pathway: Pathway = PATHWAY,
) -> np.ndarray:
    """``n`` parameter vectors (``[n, n_params]``, ``pathway.parameter_names`` order).

    Parameters not in ``names`` keep their defaults (all parameters vary when ``names`` is
    None). ``shrink`` < 1 narrows every prior (useful to stay in well-behaved regions).
    """
    out = np.tile([p.default for p in pathway.parameters], (n, 1)).astype(float)
    vary = pathway.parameter_names if names is None else names
    for name in vary:
        j = pathway.parameter_names.index(name)
        lo, hi = pathway.parameter(name).bounds
        col = from_unconstrained(name, shrink * rng.standard_normal(n), pathway)
        bad = (col < lo) | (col > hi)
        while bad.any():
            col[bad] = from_unconstrained(name, shrink * rng.standard_normal(bad.sum()), pathway)
            bad = (col < lo) | (col > hi)
        out[:, j] = col
    return out
