"""The vector field, the analytic baseline and the observables, compiled from the pathway.

Parameters travel as one flat vector ``theta`` (order: ``PATHWAY.parameter_names``) and the
condition inputs as one flat vector ``u`` (order: ``PATHWAY.input_names``): flat arrays vmap,
shard and differentiate without pytree bookkeeping.
"""

from __future__ import annotations

import functools

import jax.numpy as jnp
from jax import lax
from jaxtyping import Array, Float

from ._spec import Pathway, compile_expression
from .pathway import PATHWAY


def _piecewise(value, condition, otherwise):
    return jnp.where(condition, value, otherwise)


def _pow(base, exponent):
    """``base ** exponent`` with a negative base taken as 0.

    Every base in the pathway is a non-negative level, fraction or ratio; a negative one only
    appears in a trial stage of an explicit solver overshooting a bound (e.g. p-eEF2 past 1
    under a strong, fast drive, so 1 - pE < 0). There the derivative in the exponent,
    log(base) * base ** exponent, is NaN even where the value is finite (integer exponents),
    and the reverse pass multiplies the rejected stage's zero cotangent by it: 0 x NaN = NaN in
    the whole gradient. Clamping keeps such stages finite and changes nothing for valid states
    (the SBML export keeps plain ``pow``: the two agree wherever the states are valid).
    """
    base = jnp.maximum(base, 0.0)
    if isinstance(exponent, int | float) and float(exponent).is_integer() and abs(exponent) <= 16:
        # a known integer exponent (a fixed Hill coefficient, a switch flag; see
        # models.solve.Constants): repeated multiplication, no log and exp
        return lax.integer_pow(base, int(exponent))
    return jnp.power(base, exponent)


_FUNCTIONS = {"exp": jnp.exp, "pow": _pow, "piecewise": _piecewise}


def _entries(v):
    """The entries of a flat vector, or of an already unstacked tuple of scalars."""
    return v if isinstance(v, tuple) else jnp.unstack(v)


class CompiledPathway:
    """Expressions of a :class:`Pathway` compiled once; evaluation is traced by JAX."""

    def __init__(self, pathway: Pathway):
        self.pathway = pathway
        self.rules = tuple((r.name, compile_expression(r.expr)) for r in pathway.rules)
        self.rates = tuple(
            tuple(compile_expression(t.expr) for t in pathway.terms_of(s))
            for s in pathway.species_names
        )
        self.observables = tuple(compile_expression(o.expr) for o in pathway.observables)
        self.param_index = {n: i for i, n in enumerate(pathway.parameter_names)}
        self.input_index = {n: i for i, n in enumerate(pathway.input_names)}
        self.species_index = {n: i for i, n in enumerate(pathway.species_names)}
        self.observable_index = {n: i for i, n in enumerate(pathway.observable_names)}
        self._baseline_spec = tuple(s.baseline for s in pathway.species)

    # -- namespaces -----------------------------------------------------------------------
    def parameters(self, theta) -> dict:
        """Parameter name -> entry of ``theta`` (one unstack, see :meth:`namespace`)."""
        return dict(zip(self.param_index, _entries(theta), strict=True))

    def namespace(self, t, y, theta, u) -> dict:
        # Entries by one unstack per vector rather than one index per entry: the reverse
        # pass then transposes one concatenation instead of padding a full-length cotangent
        # per entry. solve_neuron passes theta and u already unstacked (tuples of scalars), so
        # inside the solver loop their cotangents accumulate per entry with no concatenation
        # at all (benchmarks/README.md, "Vector field unstacked").
        ns = dict(_FUNCTIONS)
        ns["t"] = t
        ns.update(self.parameters(theta))
        ns.update(zip(self.input_index, _entries(u), strict=True))
        ns.update(zip(self.species_index, jnp.unstack(y), strict=True))
        for name, rule in self.rules:
            ns[name] = rule(ns)
        return ns

    # -- public pieces --------------------------------------------------------------------
    def vector_field(
        self, t: Float[Array, ""], y: Float[Array, " state"], args
    ) -> Float[Array, " state"]:
        """diffrax-style vector field; ``args = (theta, u)``, each a flat vector or a tuple of
        its entries (what :func:`models.solve.solve_neuron` passes)."""
        theta, u = args
        ns = self.namespace(t, y, theta, u)
        rates = []
        for terms in self.rates:
            total = terms[0](ns)
            for term in terms[1:]:
                total = total + term(ns)
            rates.append(total * jnp.ones_like(t))
        return jnp.stack(rates)

    def baseline(self, theta: Float[Array, " param"]) -> Float[Array, " state"]:
        """The analytic untreated steady state (exact by construction of the rate terms)."""
        values = [
            theta[self.param_index[b]] if isinstance(b, str) else jnp.asarray(b, theta.dtype)
            for b in self._baseline_spec
        ]
        return jnp.stack(values)

    def observe(self, t, y, theta, u) -> Float[Array, " readout"]:
        """All observables at one time point."""
        ns = self.namespace(t, y, theta, u)
        return jnp.stack([obs(ns) * jnp.ones_like(t) for obs in self.observables])


@functools.cache
def compiled(pathway: Pathway = PATHWAY) -> CompiledPathway:
    """The compiled default pathway (cached: expressions are compiled once per process)."""
    return CompiledPathway(pathway)


def default_theta(pathway: Pathway = PATHWAY, dtype=jnp.float64) -> Float[Array, " param"]:
    """Default parameter vector, in ``pathway.parameter_names`` order."""
    return jnp.asarray([p.default for p in pathway.parameters], dtype=dtype)


def theta_from(values: dict[str, float], pathway: Pathway = PATHWAY, dtype=jnp.float64):
    """Parameter vector from defaults updated with ``values`` (unknown names raise KeyError)."""
    defaults = pathway.defaults()
    unknown = set(values) - set(defaults)
    if unknown:
        raise KeyError(f"unknown parameters {sorted(unknown)}")
    defaults.update(values)
    return jnp.asarray([defaults[n] for n in pathway.parameter_names], dtype=dtype)
