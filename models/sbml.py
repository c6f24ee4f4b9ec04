"""SBML Level 3 Version 2 export of the pathway for one condition, and a libroadrunner runner.

The export is generated from the same declarative definition as the JAX vector field
(:data:`models.pathway.PATHWAY`): nothing about the biology is restated here.

Mapping (one condition, one parameter vector):

- time: the SBML ``csymbol time`` replaces the pathway's time variable ``t``; model
  ``timeUnits`` is ``hour``.
- states -> SBML ``species`` in one compartment ``neuron`` (size 1, dimensionless), with
  ``hasOnlySubstanceUnits=true`` and ``substanceUnits=dimensionless`` (every state is a fraction
  or a level normalised to 1). Each has a ``rateRule`` equal to the sum of its rate terms
  (units 1/h), and its initial amount is the analytic untreated baseline; baselines that are
  parameters (``pE0``...) are also written as ``initialAssignment`` so that editing the
  parameter in the file keeps the initial state at the baseline.
- parameters -> constant SBML ``parameter`` with the unit from the parameter table. Parameters
  read only when a condition is turned into inputs (``ke_ketamine``, ``kdose_*``...) are
  exported too, for provenance, but the model's math does not use them.
- inputs (exposure, co-treatments, genotype) -> constant parameters holding the values that
  :func:`models.exposure.condition_inputs` gives for the chosen condition and parameter vector.
  Editing e.g. ``ke_ketamine`` in the file therefore does not change ``ke``: export again.
- rules (quasi-steady quantities) -> ``assignmentRule`` parameters, in definition order.
- observables -> ``assignmentRule`` parameters ``obs_<name>`` (prefixed: some readouts share a
  name with a state, e.g. ``GluA1``).

libsbml and libroadrunner are imported lazily, inside functions, so ``import models`` works
without them.
"""

from __future__ import annotations

import functools
import html
import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from ._spec import Pathway
from .conditions import Condition, as_condition
from .pathway import PATHWAY

SBML_LEVEL = 3
SBML_VERSION = 2
COMPARTMENT_ID = "neuron"
OBSERVABLE_PREFIX = "obs_"

# Pathway unit label -> SBML unit id. Labels that are ratios of like quantities are SBML's
# built-in ``dimensionless``. A label missing here fails the export with a message naming it.
_DIMENSIONLESS_LABELS = frozenset(
    {"fraction", "dimensionless", "flag", "relative", "relative (signed)", "normalised"}
)
_UNIT_IDS = {
    "h": "hour",
    "1/h": "per_hour",
    "uM": "uM",
    "nM": "nM",
    "uM/(mg/kg)": "uM_per_mg_per_kg",
}
# SBML unit definitions: id -> (name, [(kind, exponent, scale, multiplier), ...]).
# uM/(mg/kg): mg/kg is the dimensionless mass ratio 1e-6, so 1 uM/(mg/kg) = 1 mol/L; written as
# (1e-6 mol) / L / 1e-6, i.e. mole with scale -6 and multiplier 1e6 (the same quantity).
_UNIT_DEFINITIONS = {
    "hour": ("hour", [("second", 1, 0, 3600.0)]),
    "per_hour": ("1/h", [("second", -1, 0, 3600.0)]),
    "uM": ("micromolar", [("mole", 1, -6, 1.0), ("litre", -1, 0, 1.0)]),
    "nM": ("nanomolar", [("mole", 1, -9, 1.0), ("litre", -1, 0, 1.0)]),
    "uM_per_mg_per_kg": ("uM/(mg/kg)", [("mole", 1, 0, 1.0), ("litre", -1, 0, 1.0)]),
}


class SBMLExportError(ValueError):
    """The export cannot be made or does not validate; the message says what and how to fix."""


# ------------------------------------------------------------------------- parameters
def parameter_vector(
    values: Mapping[str, object] | Sequence[float] | np.ndarray | None = None,
    pathway: Pathway = PATHWAY,
) -> np.ndarray:
    """Full float64 parameter vector (``pathway.parameter_names`` order).

    ``values`` is None (defaults), a mapping ``{name: value}`` that overrides defaults, or a
    complete vector. Unknown names, non-numbers, non-finite values and values outside a
    parameter's bounds raise :class:`SBMLExportError` naming the parameter and the fix.
    """
    names = pathway.parameter_names
    if values is None:
        return np.array([p.default for p in pathway.parameters], dtype=np.float64)
    if isinstance(values, Mapping):
        unknown = sorted(set(values) - set(names))
        if unknown:
            import difflib

            hints = []
            for name in unknown:
                close = difflib.get_close_matches(str(name), names, n=3)
                hints.append(
                    f"{name!r}" + (f" (did you mean {', '.join(close)}?)" if close else "")
                )
            raise SBMLExportError(
                f"unknown parameter name(s) {', '.join(hints)}; use names from the parameter "
                "table (models.PATHWAY.parameter_names)"
            )
        theta = parameter_vector(None, pathway)
        for name, value in values.items():
            if isinstance(value, bool) or not isinstance(value, int | float | np.floating):
                raise SBMLExportError(f"parameter {name!r}: value must be a number, got {value!r}")
            theta[names.index(name)] = float(value)
    else:
        theta = np.asarray(values, dtype=np.float64)
        if theta.shape != (len(names),):
            raise SBMLExportError(
                f"parameter vector has shape {theta.shape}; expected ({len(names)},) in "
                "models.PATHWAY.parameter_names order"
            )
        theta = theta.copy()
    for name, value, p in zip(names, theta, pathway.parameters, strict=True):
        lo, hi = p.bounds
        if not math.isfinite(value):
            raise SBMLExportError(f"parameter {name!r}: value must be finite, got {value}")
        if not lo <= value <= hi:
            raise SBMLExportError(
                f"parameter {name!r} = {value:g} {p.unit} is outside its bounds [{lo:g}, {hi:g}]; "
                "give a value inside them"
            )
    return theta


def condition_values(
    condition: Condition | str | Mapping[str, object],
    theta: np.ndarray,
    pathway: Pathway = PATHWAY,
) -> tuple[Condition, dict[str, float], dict[str, float]]:
    """The condition, its input values and the species baseline, as float64 Python numbers.

    Inputs come from :func:`models.exposure.condition_inputs` and initial states from
    :meth:`models.dynamics.CompiledPathway.baseline`, evaluated in float64 whatever the
    global JAX precision setting.
    """
    import jax

    from .exposure import encode_conditions, select_condition

    cond = as_condition(condition)
    with jax.enable_x64(True):
        enc = select_condition(encode_conditions([cond]), 0)
        u, y0 = _inputs_and_baseline(pathway)(jax.numpy.asarray(theta, jax.numpy.float64), enc)
        u, y0 = np.asarray(u, np.float64), np.asarray(y0, np.float64)
    inputs = dict(zip(pathway.input_names, map(float, u), strict=True))
    baseline = dict(zip(pathway.species_names, map(float, y0), strict=True))
    return cond, inputs, baseline


@functools.cache
def _inputs_and_baseline(pathway: Pathway):
    """Jitted (condition inputs, baseline) of one condition: compiled once per process."""
    import jax

    from .dynamics import compiled
    from .exposure import condition_inputs

    cp = compiled(pathway)
    return jax.jit(lambda theta, enc: (condition_inputs(theta, enc, cp), cp.baseline(theta)))


# ------------------------------------------------------------------------- building
def _unit_id(label: str, where: str) -> str:
    if label in _DIMENSIONLESS_LABELS:
        return "dimensionless"
    if label in _UNIT_IDS:
        return _UNIT_IDS[label]
    raise SBMLExportError(
        f"{where}: unit {label!r} has no SBML mapping; add it to models.sbml._UNIT_IDS "
        "(with a unit definition) or to _DIMENSIONLESS_LABELS"
    )


def _check(status: int, what: str) -> None:
    import libsbml

    if status != libsbml.LIBSBML_OPERATION_SUCCESS:
        raise SBMLExportError(
            f"libsbml refused {what}: {libsbml.OperationReturnValue_toString(status)}"
        )


def _notes(element, text: str) -> None:
    body = f'<body xmlns="http://www.w3.org/1999/xhtml"><p>{html.escape(text)}</p></body>'
    _check(element.setNotes(body), f"notes of {element.getId() or element.getElementName()}")


def _literal_units(ast, result_unit: str) -> None:
    """Give every number literal a unit, so libsbml can check units completely.

    A literal that is a branch of a top-level ``piecewise`` is the value of the assigned
    quantity and takes its unit (e.g. the 0 h of ``piecewise(t - t_off, t > t_off, 0)``);
    every other literal in the pathway is a pure number (``1 - x``, exponents, flag
    thresholds) and is ``dimensionless``. Were this wrong, the unit check would say so.
    """
    import libsbml

    stack = [ast]
    while stack:
        node = stack.pop()
        if node.isNumber():
            _check(node.setUnits("dimensionless"), f"unit of literal {node.getValue()}")
        stack.extend(node.getChild(i) for i in range(node.getNumChildren()))
    if ast.getType() == libsbml.AST_FUNCTION_PIECEWISE:
        for i in range(0, ast.getNumChildren(), 2):  # values at even positions, otherwise last
            branch = ast.getChild(i)
            if branch.isNumber():
                _check(branch.setUnits(result_unit), f"unit of literal {branch.getValue()}")


def _math(expr: str, time_name: str, ids: set[str], where: str, unit: str = "dimensionless"):
    """Parse a pathway expression (L3 infix) and turn the time variable into csymbol time."""
    import libsbml

    settings = libsbml.L3ParserSettings()
    settings.setParseUnits(False)  # numbers carry no units in the pathway's expressions
    ast = libsbml.parseL3FormulaWithSettings(expr, settings)
    if ast is None:
        raise SBMLExportError(
            f"{where}: libsbml cannot parse {expr!r}: {libsbml.getLastParseL3Error()}"
        )
    stack = [ast]
    while stack:
        node = stack.pop()
        if node.getType() == libsbml.AST_NAME:
            name = node.getName()
            if name == time_name:
                _check(node.setType(libsbml.AST_NAME_TIME), f"{where}: time symbol")
            elif name not in ids:
                raise SBMLExportError(f"{where}: {name!r} in {expr!r} is no model element")
        elif node.getType() == libsbml.AST_FUNCTION:
            # Any user function here means the parser did not recognise a builtin.
            raise SBMLExportError(f"{where}: unsupported function {node.getName()!r} in {expr!r}")
        stack.extend(node.getChild(i) for i in range(node.getNumChildren()))
    _literal_units(ast, unit)
    return ast


def build_document(
    condition: Condition | str | Mapping[str, object],
    theta: Mapping[str, object] | Sequence[float] | np.ndarray | None = None,
    *,
    pathway: Pathway = PATHWAY,
    model_id: str = "homeoplast_neuron",
):
    """The ``libsbml.SBMLDocument`` of one virtual neuron under ``condition``.

    ``theta``: None (defaults), ``{name: value}`` overrides, or a full parameter vector in
    ``pathway.parameter_names`` order.
    """
    import libsbml

    theta_v = parameter_vector(theta, pathway)
    cond, inputs, baseline = condition_values(condition, theta_v, pathway)

    doc = libsbml.SBMLDocument(SBML_LEVEL, SBML_VERSION)
    model = doc.createModel()
    _check(model.setId(model_id), "model id")
    model.setName(f"homeoplast pathway: {cond.spec}")
    _notes(
        model,
        "One virtual neuron of the homeoplast pathway (NMDAR block -> eEF2K/eEF2 -> BDNF/TrkB "
        "-> mTORC1 -> synaptic protein synthesis -> spines, GABABR switch, homeostatic "
        f"scaling), time in hours, generated by models.sbml from models.pathway. Condition: "
        f"{cond.spec}. Condition inputs are constants computed from the exported parameter "
        "values; re-export after changing exposure or potency parameters.",
    )

    for uid, (name, units) in _UNIT_DEFINITIONS.items():
        ud = model.createUnitDefinition()
        ud.setId(uid)
        ud.setName(name)
        for kind, exponent, scale, multiplier in units:
            unit = ud.createUnit()
            unit.setKind(libsbml.UnitKind_forName(kind))
            unit.setExponent(exponent)
            unit.setScale(scale)
            unit.setMultiplier(multiplier)
    model.setTimeUnits("hour")
    model.setSubstanceUnits("dimensionless")
    model.setExtentUnits("dimensionless")
    model.setVolumeUnits("dimensionless")

    comp = model.createCompartment()
    comp.setId(COMPARTMENT_ID)
    comp.setName("one virtual neuron (dendrite)")
    comp.setSpatialDimensions(3)
    comp.setSize(1.0)
    comp.setUnits("dimensionless")
    comp.setConstant(True)

    ids = set(pathway.species_names) | set(pathway.parameter_names) | set(pathway.input_names)
    ids |= {r.name for r in pathway.rules} | {COMPARTMENT_ID}

    for sp in pathway.species:
        _unit_id(sp.unit, f"species {sp.name}")
        s = model.createSpecies()
        _check(s.setId(sp.name), f"species id {sp.name!r}")
        s.setName(sp.doc)
        s.setCompartment(COMPARTMENT_ID)
        s.setInitialAmount(baseline[sp.name])
        s.setSubstanceUnits("dimensionless")
        s.setHasOnlySubstanceUnits(True)
        s.setBoundaryCondition(False)
        s.setConstant(False)
        _notes(s, f"{sp.doc} [{sp.unit}]; module: {sp.group}; baseline: {sp.baseline}")
        if isinstance(sp.baseline, str):
            ia = model.createInitialAssignment()
            ia.setSymbol(sp.name)
            math_ = _math(sp.baseline, pathway.time_name, ids, sp.name, "dimensionless")
            _check(ia.setMath(math_), sp.name)

    for p, value in zip(pathway.parameters, theta_v, strict=True):
        par = model.createParameter()
        _check(par.setId(p.name), f"parameter id {p.name!r}")
        par.setValue(float(value))
        par.setUnits(_unit_id(p.unit, f"parameter {p.name}"))
        par.setConstant(True)
        source = p.source or "assumed"
        used = "" if p.name not in pathway.input_parameters else " Used only to compute inputs."
        _notes(
            par,
            f"{p.doc} [{p.unit}]; prior {p.prior.describe()}, bounds {p.bounds}; source: "
            f"{source}; module: {p.group}.{used}",
        )

    for inp in pathway.inputs:
        par = model.createParameter()
        _check(par.setId(inp.name), f"input id {inp.name!r}")
        par.setValue(inputs[inp.name])
        par.setUnits(_unit_id(inp.unit, f"input {inp.name}"))
        par.setConstant(True)
        _notes(par, f"condition input: {inp.doc} [{inp.unit}], for {cond.spec}")

    def assigned(name: str, unit: str, expr: str, doc: str, what: str) -> None:
        par = model.createParameter()
        _check(par.setId(name), f"{what} id {name!r}")
        par.setUnits(_unit_id(unit, f"{what} {name}"))
        par.setConstant(False)
        _notes(par, f"{doc} [{unit}]; {what}: {expr}")
        rule = model.createAssignmentRule()
        rule.setVariable(name)
        unit_id = _unit_id(unit, f"{what} {name}")
        _check(rule.setMath(_math(expr, pathway.time_name, ids, f"{what} {name}", unit_id)), name)

    for r in pathway.rules:
        assigned(r.name, r.unit, r.expr, r.doc, "rule")
    for sp in pathway.species:
        terms = pathway.terms_of(sp.name)
        expr = " + ".join(f"({t.expr})" for t in terms)
        rule = model.createRateRule()
        rule.setVariable(sp.name)
        rule.setName("; ".join(t.name for t in terms))
        math_ = _math(expr, pathway.time_name, ids, f"rate of {sp.name}", "per_hour")
        _check(rule.setMath(math_), sp.name)
    obs_ids = {OBSERVABLE_PREFIX + o.name for o in pathway.observables}
    clash = obs_ids & ids
    if clash:
        raise SBMLExportError(f"observable ids {sorted(clash)} clash with model ids; rename them")
    for o in pathway.observables:
        assigned(OBSERVABLE_PREFIX + o.name, o.unit, o.expr, o.doc, "observable")
    return doc


# ------------------------------------------------------------------------- validation
# libsbml categories run by ``check_document``. All of them, unit consistency included, are
# kept on; none is disabled. Unit *warnings* that only say a unit could not be fully checked
# (number literals carry no units in the pathway's expressions, which SBML L3 allows) are not
# errors and are reported separately by ``check_document``.
def check_document(doc, *, units: bool = True) -> tuple[list[str], list[str]]:
    """Run libsbml's consistency checks; returns (errors, warnings) as readable strings.

    Unit inconsistencies are warnings in SBML's own classification; here every warning of the
    unit-consistency category is counted as an error, except 10501-style "cannot fully check"
    notices about number literals without units, so a unit mistake in the pathway fails.
    """
    import libsbml

    doc.setConsistencyChecks(libsbml.LIBSBML_CAT_UNITS_CONSISTENCY, units)
    for cat in (
        libsbml.LIBSBML_CAT_GENERAL_CONSISTENCY,
        libsbml.LIBSBML_CAT_IDENTIFIER_CONSISTENCY,
        libsbml.LIBSBML_CAT_MATHML_CONSISTENCY,
        libsbml.LIBSBML_CAT_SBO_CONSISTENCY,
        libsbml.LIBSBML_CAT_OVERDETERMINED_MODEL,
        libsbml.LIBSBML_CAT_MODELING_PRACTICE,
    ):
        doc.setConsistencyChecks(cat, True)
    doc.checkConsistency()
    errors, warnings = [], []
    for i in range(doc.getNumErrors()):
        err = doc.getError(i)
        text = (
            f"[{err.getSeverityAsString()} {err.getErrorId()} {err.getCategoryAsString()}] "
            f"{err.getShortMessage()}: {' '.join(err.getMessage().split())}"
        )
        severe = err.getSeverity() in (libsbml.LIBSBML_SEV_ERROR, libsbml.LIBSBML_SEV_FATAL)
        unit_issue = err.getCategory() == libsbml.LIBSBML_CAT_UNITS_CONSISTENCY
        (errors if severe or unit_issue else warnings).append(text)
    return errors, warnings


def to_sbml(
    condition: Condition | str | Mapping[str, object],
    theta: Mapping[str, object] | Sequence[float] | np.ndarray | None = None,
    *,
    pathway: Pathway = PATHWAY,
    validate: bool = True,
) -> str:
    """SBML L3V2 text of one virtual neuron under ``condition`` (validated unless told not)."""
    import libsbml

    doc = build_document(condition, theta, pathway=pathway)
    if validate:
        errors, _ = check_document(doc)
        if errors:
            raise SBMLExportError(
                "the exported SBML fails libsbml consistency checks:\n  " + "\n  ".join(errors)
            )
    return libsbml.writeSBMLToString(doc)


def write_sbml(path: str | os.PathLike, sbml: str) -> Path:
    """Write ``sbml`` to ``path`` atomically (temporary file in the same folder, then rename)."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise SBMLExportError(f"output folder {str(folder)!r} does not exist; create it first")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(sbml)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; an exported model is meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


# ------------------------------------------------------------------------- roadrunner
def sbml_values(sbml: str) -> dict[str, float]:
    """Numeric content of an SBML text: constant parameter values and species initial amounts.

    Two exports of this module for different parameter vectors or conditions differ only in
    these numbers (see :func:`structure_signature`), so a model compiled once can be re-run
    with the values of another export (:class:`RoadRunnerModel`).
    """
    model = _read(sbml)
    values = {}
    for i in range(model.getNumParameters()):
        par = model.getParameter(i)
        if par.getConstant() and par.isSetValue():
            values[par.getId()] = par.getValue()
    for i in range(model.getNumSpecies()):
        sp = model.getSpecies(i)
        if sp.isSetInitialAmount():
            values[sp.getId()] = sp.getInitialAmount()
    return values


def structure_signature(sbml: str) -> str:
    """The SBML text with every numeric value and all notes/names blanked out.

    Equal signatures mean equal models up to parameter values and initial amounts.
    """
    import libsbml

    doc = libsbml.readSBMLFromString(sbml)
    model = doc.getModel()
    if model is None:
        raise SBMLExportError("not an SBML model (libsbml found no <model>)")
    model.setName("")
    model.unsetNotes()
    for i in range(model.getNumParameters()):
        par = model.getParameter(i)
        par.unsetNotes()
        if par.isSetValue():
            par.setValue(0.0)
    for i in range(model.getNumSpecies()):
        sp = model.getSpecies(i)
        sp.unsetNotes()
        sp.setInitialAmount(0.0)
    return libsbml.writeSBMLToString(doc)


def _read(sbml: str):
    import libsbml

    doc = libsbml.readSBMLFromString(sbml)
    model = doc.getModel()
    if model is None:
        messages = "; ".join(
            doc.getError(i).getMessage().strip() for i in range(doc.getNumErrors())
        )
        raise SBMLExportError(f"not an SBML model (libsbml found no <model>): {messages}")
    return model


def species_ids(sbml: str) -> list[str]:
    """Species ids of an SBML text, in document order."""
    model = _read(sbml)
    return [model.getSpecies(i).getId() for i in range(model.getNumSpecies())]


class RoadRunnerModel:
    """An SBML model compiled once by libroadrunner, simulated with CVODE (BDF).

    Compiling is the expensive part (about 0.2 s for this pathway with the LLJIT backend);
    :meth:`simulate` can re-run the compiled model with the numbers of another export of the
    same structure (``values`` from :func:`sbml_values`).
    """

    def __init__(
        self, sbml: str, *, rtol: float = 1e-10, atol: float = 1e-14, max_steps: int = 1_000_000
    ):
        import roadrunner

        config = roadrunner.Config
        backend = config.getValue(config.LLVM_BACKEND)
        config.setValue(config.LLVM_BACKEND, config.LLJIT)  # compiles ~5x faster than MCJIT
        try:
            self._rr = roadrunner.RoadRunner(sbml)
        finally:
            config.setValue(config.LLVM_BACKEND, backend)
        self._rr.setIntegrator("cvode")
        integrator = self._rr.getIntegrator()
        integrator.setValue("stiff", True)
        integrator.setValue("relative_tolerance", float(rtol))
        integrator.setValue("absolute_tolerance", float(atol))
        integrator.setValue("maximum_num_steps", int(max_steps))
        self.species = species_ids(sbml)

    def simulate(
        self,
        times,
        *,
        values: Mapping[str, float] | None = None,
        selections: Sequence[str] | None = None,
    ) -> np.ndarray:
        """Trajectory ``[len(times), len(selections)]`` from t = 0 (species by default).

        The model is reset to its own initial state, then ``values`` (constant parameters and
        species amounts at t = 0) are applied. Unknown ids raise ``KeyError``.
        """
        times = np.asarray(times, dtype=np.float64)
        if times.ndim != 1 or times.size == 0 or np.any(np.diff(times) <= 0) or times[0] < 0:
            raise ValueError("times must be a non-empty, strictly increasing 1-D array, >= 0")
        rr = self._rr
        rr.resetAll()
        for key, value in (values or {}).items():
            try:
                rr.setValue(key, float(value))
            except RuntimeError as err:
                raise KeyError(f"cannot set {key!r} in the roadrunner model: {err}") from None
        selections = list(self.species if selections is None else selections)
        grid = times if times[0] == 0 else np.concatenate([[0.0], times])
        out = np.asarray(rr.simulate(times=list(grid), selections=["time", *selections]))
        out = out.astype(np.float64)
        if times[0] != 0:
            out = out[1:]
        return out[:, 1:]


def simulate_roadrunner(
    sbml: str,
    times,
    *,
    selections: Sequence[str] | None = None,
    rtol: float = 1e-10,
    atol: float = 1e-14,
    max_steps: int = 1_000_000,
) -> np.ndarray:
    """Simulate an SBML model with libroadrunner's CVODE (BDF) at ``times``.

    Returns ``[len(times), len(selections)]`` (float64); selections default to the species in
    document order (for an export of this module: ``PATHWAY.species_names``). The simulation
    always starts at t = 0 from the model's initial state; 0 is added to the output grid when
    ``times`` does not start there and dropped from the result.
    """
    model = RoadRunnerModel(sbml, rtol=rtol, atol=atol, max_steps=max_steps)
    return model.simulate(times, selections=selections)
