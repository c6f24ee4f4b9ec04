"""Building blocks of the declarative pathway definition.

The pathway is written once, as data: species, parameters, algebraic rules (quasi-steady
sub-minute processes), rate terms and observables. Every expression is a string in the common
subset of Python and SBML Level 3 infix syntax (``+ - * /``, ``pow``, ``exp``, ``piecewise``
and comparisons), so the same text becomes the JAX vector field, the SBML export and the
documentation. Expressions are checked when the definition is built: a typo in a name fails at
import time, not inside a solve.
"""

from __future__ import annotations

import ast
import dataclasses
import math
from collections.abc import Callable, Mapping

# Functions an expression may call. Each exists, with the same meaning, in SBML L3 infix.
ALLOWED_FUNCTIONS = frozenset({"exp", "pow", "piecewise"})
_ALLOWED_NODES = (
    ast.Expression,
    ast.BinOp,
    ast.UnaryOp,
    ast.Call,
    ast.Name,
    ast.Load,
    ast.Constant,
    ast.Compare,
    ast.Add,
    ast.Sub,
    ast.Mult,
    ast.Div,
    ast.USub,
    ast.UAdd,
    ast.Lt,
    ast.LtE,
    ast.Gt,
    ast.GtE,
)


class DefinitionError(ValueError):
    """The pathway definition is inconsistent (unknown name, bad prior, duplicate...)."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class LogNormal:
    """Log-normal prior: log(theta) ~ Normal(log(median), scale)."""

    median: float
    scale: float

    def __post_init__(self) -> None:
        if not (self.median > 0 and self.scale > 0):
            raise DefinitionError(f"LogNormal needs median > 0 and scale > 0, got {self}")

    @property
    def family(self) -> str:
        return "lognormal"

    def describe(self) -> str:
        return f"LogNormal(median={self.median:g}, sd_log={self.scale:g})"


@dataclasses.dataclass(frozen=True, kw_only=True)
class LogitNormal:
    """Logit-normal prior for a fraction: logit(theta) ~ Normal(logit(median), scale)."""

    median: float
    scale: float

    def __post_init__(self) -> None:
        if not (0 < self.median < 1 and self.scale > 0):
            raise DefinitionError(f"LogitNormal needs 0 < median < 1 and scale > 0, got {self}")

    @property
    def family(self) -> str:
        return "logitnormal"

    def describe(self) -> str:
        return f"LogitNormal(median={self.median:g}, sd_logit={self.scale:g})"


Prior = LogNormal | LogitNormal


@dataclasses.dataclass(frozen=True, kw_only=True)
class Parameter:
    """One model parameter.

    Attributes:
        name: identifier used in expressions, NumPyro site names and SBML ids.
        unit: physical unit (``1/h``, ``uM``, ``fraction``, ``dimensionless``...).
        default: the value used when nothing else is given; also the prior median.
        prior: prior distribution of the population value.
        bounds: hard plausibility range (inclusive) of the population value.
        source: id in the literature table the default comes from, or None if assumed.
        heterogeneous: whether the value varies across virtual neurons
            (theta_i = theta_pop * exp(sigma * z_i)).
        group: the pathway module the parameter belongs to (for tables and plots).
        doc: what the parameter means, and where its default comes from.
    """

    name: str
    unit: str
    default: float
    prior: Prior
    bounds: tuple[float, float]
    doc: str
    group: str
    source: str | None = None
    heterogeneous: bool = False

    def __post_init__(self) -> None:
        lo, hi = self.bounds
        if not (lo <= self.default <= hi):
            raise DefinitionError(
                f"{self.name}: default {self.default} outside bounds {self.bounds}"
            )
        if not math.isclose(self.prior.median, self.default, rel_tol=1e-12):
            raise DefinitionError(f"{self.name}: prior median must equal the default")
        if isinstance(self.prior, LogitNormal) and not (0 <= lo and hi <= 1):
            raise DefinitionError(f"{self.name}: a fraction needs bounds inside [0, 1]")
        if self.heterogeneous and not isinstance(self.prior, LogNormal):
            raise DefinitionError(
                f"{self.name}: only positive (log-normal) parameters can vary across neurons"
            )
        if not self.unit:
            raise DefinitionError(f"{self.name}: every parameter needs a unit")


@dataclasses.dataclass(frozen=True, kw_only=True)
class Species:
    """A dynamic state of one virtual neuron.

    ``baseline`` is the analytic untreated steady state: a number, or the name of the parameter
    that sets it (for phosphorylated fractions). Normalised protein levels have baseline 1.
    """

    name: str
    unit: str
    baseline: float | str
    doc: str
    group: str


@dataclasses.dataclass(frozen=True, kw_only=True)
class Input:
    """A per-condition input (exposure, co-treatment or genotype), set from a Condition."""

    name: str
    unit: str
    doc: str


@dataclasses.dataclass(frozen=True, kw_only=True)
class Rule:
    """An algebraic (quasi-steady) quantity, evaluated in order before the rate terms."""

    name: str
    expr: str
    unit: str
    doc: str


@dataclasses.dataclass(frozen=True, kw_only=True)
class Term:
    """One named contribution to d(species)/dt, in species units per hour."""

    name: str
    species: str
    expr: str
    doc: str


@dataclasses.dataclass(frozen=True, kw_only=True)
class Observable:
    """A readout. ``ratio`` readouts are compared to vehicle as fold change, others as difference."""

    name: str
    expr: str
    unit: str
    doc: str
    ratio: bool = True


def expression_names(expr: str) -> set[str]:
    """Names (variables) an expression refers to; raises DefinitionError on disallowed syntax."""
    try:
        tree = ast.parse(expr, mode="eval")
    except SyntaxError as err:
        raise DefinitionError(f"cannot parse expression {expr!r}: {err}") from None
    names: set[str] = set()
    for node in ast.walk(tree):
        if not isinstance(node, _ALLOWED_NODES):
            raise DefinitionError(f"{type(node).__name__} not allowed in expression {expr!r}")
        if isinstance(node, ast.Call):
            if not (isinstance(node.func, ast.Name) and node.func.id in ALLOWED_FUNCTIONS):
                raise DefinitionError(f"only {sorted(ALLOWED_FUNCTIONS)} may be called: {expr!r}")
            if node.keywords:
                raise DefinitionError(f"keyword arguments not allowed: {expr!r}")
        if isinstance(node, ast.Compare) and len(node.ops) != 1:
            raise DefinitionError(f"chained comparisons not allowed: {expr!r}")
        if isinstance(node, ast.Name) and node.id not in ALLOWED_FUNCTIONS:
            names.add(node.id)
    return names


@dataclasses.dataclass(frozen=True)
class Pathway:
    """The whole declarative model. Construction validates every cross-reference."""

    species: tuple[Species, ...]
    parameters: tuple[Parameter, ...]
    inputs: tuple[Input, ...]
    rules: tuple[Rule, ...]
    terms: tuple[Term, ...]
    observables: tuple[Observable, ...]
    # Parameters read when a condition is turned into inputs (drug exposure and potency),
    # rather than inside an expression.
    input_parameters: tuple[str, ...] = ()
    time_name: str = "t"

    def __post_init__(self) -> None:
        seen: dict[str, str] = {self.time_name: "time"}
        for kind, items in (
            ("species", self.species),
            ("parameter", self.parameters),
            ("input", self.inputs),
        ):
            for item in items:
                if item.name in seen:
                    raise DefinitionError(
                        f"{item.name!r} defined twice ({seen[item.name]}, {kind})"
                    )
                seen[item.name] = kind
        for sp in self.species:
            if isinstance(sp.baseline, str) and seen.get(sp.baseline) != "parameter":
                raise DefinitionError(
                    f"species {sp.name}: baseline {sp.baseline!r} is no parameter"
                )
        known = set(seen)
        for rule in self.rules:
            missing = expression_names(rule.expr) - known
            if missing:
                raise DefinitionError(f"rule {rule.name}: unknown names {sorted(missing)}")
            if rule.name in known:
                raise DefinitionError(f"rule {rule.name!r} shadows an existing name")
            known.add(rule.name)
        species_names = {sp.name for sp in self.species}
        term_names = set()
        for term in self.terms:
            if term.species not in species_names:
                raise DefinitionError(f"term {term.name!r}: unknown species {term.species!r}")
            if term.name in term_names:
                raise DefinitionError(f"term {term.name!r} defined twice")
            term_names.add(term.name)
            missing = expression_names(term.expr) - known
            if missing:
                raise DefinitionError(f"term {term.name}: unknown names {sorted(missing)}")
        without = species_names - {t.species for t in self.terms}
        if without:
            raise DefinitionError(f"species without rate terms: {sorted(without)}")
        for obs in self.observables:
            missing = expression_names(obs.expr) - known
            if missing:
                raise DefinitionError(f"observable {obs.name}: unknown names {sorted(missing)}")
        used = set()
        for expr in (
            [r.expr for r in self.rules]
            + [t.expr for t in self.terms]
            + [o.expr for o in self.observables]
        ):
            used |= expression_names(expr)
        used |= {sp.baseline for sp in self.species if isinstance(sp.baseline, str)}
        not_params = set(self.input_parameters) - {p.name for p in self.parameters}
        if not_params:
            raise DefinitionError(f"input_parameters that are no parameters: {sorted(not_params)}")
        used |= set(self.input_parameters)
        unused = {p.name for p in self.parameters} - used
        if unused:
            raise DefinitionError(f"parameters used nowhere: {sorted(unused)}")

    # -- lookups -------------------------------------------------------------------------
    @property
    def species_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.species)

    @property
    def parameter_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.parameters)

    @property
    def input_names(self) -> tuple[str, ...]:
        return tuple(i.name for i in self.inputs)

    @property
    def observable_names(self) -> tuple[str, ...]:
        return tuple(o.name for o in self.observables)

    @property
    def heterogeneous_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.parameters if p.heterogeneous)

    def parameter(self, name: str) -> Parameter:
        for p in self.parameters:
            if p.name == name:
                return p
        raise KeyError(f"unknown parameter {name!r}; known: {', '.join(self.parameter_names)}")

    def defaults(self) -> dict[str, float]:
        return {p.name: p.default for p in self.parameters}

    def terms_of(self, species: str) -> tuple[Term, ...]:
        return tuple(t for t in self.terms if t.species == species)


def compile_expression(expr: str) -> Callable[[Mapping[str, object]], object]:
    """Compile an expression once; call the result with a namespace of arrays and functions."""
    expression_names(expr)  # validates
    code = compile(ast.parse(expr, mode="eval"), f"<expr {expr}>", "eval")

    def evaluate(namespace: Mapping[str, object]) -> object:
        return eval(code, {"__builtins__": {}}, namespace)  # noqa: S307 - validated AST only

    return evaluate
