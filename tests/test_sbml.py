"""SBML export: libsbml validation and an independent libroadrunner (CVODE) cross-check.

The cross-check simulates the exported SBML with libroadrunner for 20 prior draws under
several conditions and compares the trajectories (states and every observable) with the JAX
solution of the same neurons.

Choices, and why:
- Prior draws use ``shrink=0.25`` (all parameters vary, by up to about a factor e^{0.5 * scale}
  at two standard deviations). With wider draws the model reaches regions that are expensive
  to solve at tight tolerance without testing anything more about the export: at
  ``shrink=0.5`` some draws already have an unstable untreated baseline (a positive Jacobian
  eigenvalue, from the BDNF -> TrkB -> mTORC1 -> p70S6K -| eEF2K -| BDNF loop), and whenever
  p-p70S6K is driven towards 0 (rapamycin; cycloheximide with a GABABR antagonist) the
  feedback ``pow(pS6K / pS6K0, -g_fb)`` grows without bound and the system turns very stiff.
- The JAX reference uses diffrax Dopri8 (explicit, 8th order) at rtol 1e-10 / atol 1e-12 in
  float64 over 0-24 h: for these draws and conditions it needs a few hundred steps and
  compiles in ~10 s, where Kvaerno5 at this tolerance needs thousands of steps and ~30 s to
  compile. The exported *model* is under test here, not the production solver.
- libroadrunner (CVODE, BDF, rtol 1e-10, atol 1e-14) compiles one model per condition (about
  0.2 s each) and re-runs it with the numbers of each draw's own export
  (:func:`models.sbml.sbml_values`); the test checks that every draw's export has the same
  structure as the compiled one, and that the re-run equals a fresh, independent load.
- Agreement: |rr - jax| <= 1e-6 * |jax| + 1e-9, on every state and every observable. The
  absolute floor matters only for values below 1e-3: fractions driven towards 0, drug
  concentrations after elimination or wash-out, and the signed ``baclofen_ca`` readout near
  its sign switch, a difference of two O(1) terms whose relative error is inflated by
  cancellation. States are O(1) by construction, so 1e-9 is far below anything measurable.
  Measured (seed 20260): states agree to ~3e-8 relative, observables above 1e-3 to ~3e-7
  (baclofen_ca near zero), largest absolute difference ~3e-8.
- libsbml writes doubles with 15 significant digits, so exported numbers can differ from the
  float64 parameter vector in the last bit (relative 1e-16): far below the comparison.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

libsbml = pytest.importorskip("libsbml")
roadrunner = pytest.importorskip("roadrunner")

import diffrax  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from models import PATHWAY, compiled, condition_inputs, encode_conditions  # noqa: E402
from models.exposure import select_condition  # noqa: E402
from models.priors import sample_prior  # noqa: E402
from models.sbml import (  # noqa: E402
    OBSERVABLE_PREFIX,
    SBMLExportError,
    build_document,
    check_document,
    parameter_vector,
    structure_signature,
    to_sbml,
    write_sbml,
)
from models.solve import SolverConfig, solve_neuron  # noqa: E402

CONDITIONS = (
    "ketamine 10 mg/kg i.p.",
    "ketamine 10 mg/kg i.v., rat",
    "ketamine 1 uM bath washout 0.5 h + baclofen + bicuculline, cultured neurons",
    "ketamine 10 mg/kg i.p. + rapamycin + anti-BDNF",
    "memantine 20 mg/kg s.c. + GABABR antagonist",
    "ketamine 3 uM bath washout 2 h + cycloheximide + TTX + BDNF 1 nM, cultured neurons",
    "ketamine 10 mg/kg i.p., Fmr1 KO",
)
N_DRAWS = 20
TIMES = np.array([0, 0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 4, 6, 8, 12, 16, 20, 24.0])
RTOL_CMP, ATOL_CMP = 1e-6, 1e-9
SELECTIONS = list(PATHWAY.species_names) + [OBSERVABLE_PREFIX + n for n in PATHWAY.observable_names]


@pytest.fixture(scope="module")
def draws() -> np.ndarray:
    return sample_prior(np.random.default_rng(20260), N_DRAWS, shrink=0.25)


@pytest.fixture(scope="module")
def jax_solutions(draws):
    """[condition, draw, time, state+observable] from diffrax, one compiled vmapped solve."""
    config = SolverConfig(solver=diffrax.Dopri8(), rtol=1e-10, atol=1e-12, max_steps=50_000)
    with jax.enable_x64(True):
        ts = jnp.asarray(TIMES)

        def solve_one(theta, cond):
            sol = solve_neuron(theta, cond, ts, config)
            return jnp.concatenate([sol.ys, sol.readouts], axis=1), sol.ok

        solve_draws = jax.jit(jax.vmap(solve_one, in_axes=(0, None)))
        enc = encode_conditions(CONDITIONS)
        thetas = jnp.asarray(draws)
        out, oks = [], []
        for i in range(len(CONDITIONS)):  # same shapes: compiled once, reused per condition
            values, ok = solve_draws(thetas, select_condition(enc, i))
            out.append(np.asarray(values))
            oks.append(np.asarray(ok))
        assert solve_draws._cache_size() == 1
    return np.stack(out), np.stack(oks)


@pytest.fixture(scope="module")
def exports(draws) -> list[list[str]]:
    # validated once per condition here; test_export_passes_libsbml_checks_with_units covers
    # every condition with the full checks
    return [
        [to_sbml(c, theta, validate=k == 0) for k, theta in enumerate(draws)] for c in CONDITIONS
    ]


_ROADRUNNER_WORKER = """
import pickle, sys
import numpy as np
from models.sbml import RoadRunnerModel, sbml_values, simulate_roadrunner
exports, times, selections = pickle.load(sys.stdin.buffer)
batch = []
for per_condition in exports:
    model = RoadRunnerModel(per_condition[0], rtol=1e-10, atol=1e-14)
    batch.append([model.simulate(times, values=sbml_values(x), selections=selections)
                  for x in per_condition])
result = {
    "batch": np.asarray(batch),
    "fresh": np.asarray([simulate_roadrunner(pc[-1], times, selections=selections)
                         for pc in exports]),
    "full": simulate_roadrunner(exports[0][0], times),
    "part": simulate_roadrunner(exports[0][0], times[3:]),
}
pickle.dump(result, sys.stdout.buffer)
"""


@pytest.fixture(scope="module")
def roadrunner_runs(exports):
    """Every libroadrunner computation of this module (CVODE), in one fresh process.

    Runs in a fresh Python process: libroadrunner's LLVM JIT has crashed (segfault in
    RoadRunner.__init__) inside a test process where XLA had already compiled many programs.
    """
    import pickle
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", _ROADRUNNER_WORKER],
        input=pickle.dumps((exports, np.asarray(TIMES), list(SELECTIONS))),
        capture_output=True,
        timeout=600,
        check=False,
        cwd=str(Path(__file__).resolve().parents[1]),
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    return pickle.loads(done.stdout)


@pytest.fixture(scope="module")
def roadrunner_solutions(roadrunner_runs):
    """[condition, draw, time, state+observable] from the compile-once re-runs."""
    return roadrunner_runs["batch"]


# --------------------------------------------------------------------------- export
@pytest.mark.parametrize("condition", CONDITIONS + ("vehicle", "ethanol 30 mM bath, FMRP OE"))
def test_export_passes_libsbml_checks_with_units(condition):
    doc = build_document(condition)
    errors, warnings = check_document(doc, units=True)
    assert errors == [] and warnings == []
    # the ultra-strict unit validator (no hidden conversion factors) is clean as well
    assert doc.checkConsistencyWithStrictUnits() == 0
    assert (doc.getLevel(), doc.getVersion()) == (3, 2)


def test_export_content_comes_from_the_pathway():
    theta = parameter_vector({"ke_ketamine": 1.5, "pE0": 0.4})
    text = to_sbml("ketamine 10 mg/kg i.p., rat", theta)
    model = libsbml.readSBMLFromString(text).getModel()
    assert model.getTimeUnits() == "hour"
    species = [model.getSpecies(i) for i in range(model.getNumSpecies())]
    assert [s.getId() for s in species] == list(PATHWAY.species_names)
    with jax.enable_x64(True):
        y0 = np.asarray(compiled().baseline(jnp.asarray(theta)))
        enc = select_condition(encode_conditions(["ketamine 10 mg/kg i.p., rat"]), 0)
        u = np.asarray(condition_inputs(jnp.asarray(theta), enc))
    np.testing.assert_allclose([s.getInitialAmount() for s in species], y0, rtol=1e-14)
    assert model.getInitialAssignmentBySymbol("pE").getMath().getName() == "pE0"
    for p, value in zip(PATHWAY.parameters, theta, strict=True):
        par = model.getParameter(p.name)
        assert par.getConstant() and par.getUnits()
        assert par.getValue() == pytest.approx(value, rel=1e-14)
    for inp, value in zip(PATHWAY.inputs, u, strict=True):
        assert model.getParameter(inp.name).getValue() == pytest.approx(value, rel=1e-14)
    assert model.getParameter("ke").getValue() == pytest.approx(
        1.5 * theta[PATHWAY.parameter_names.index("rat_ke_scale")]
    )
    rules = [model.getRule(i).getVariable() for i in range(model.getNumRules())]
    n_rules = len(PATHWAY.rules)
    assert rules[:n_rules] == [r.name for r in PATHWAY.rules]  # assignment rules, in order
    assert set(rules[n_rules:]) == set(PATHWAY.species_names) | {
        OBSERVABLE_PREFIX + o for o in PATHWAY.observable_names
    }
    assert all(model.getRateRuleByVariable(s) is not None for s in PATHWAY.species_names)
    assert "http://www.sbml.org/sbml/symbols/time" in text  # t -> csymbol time
    assert model.getParameter("per_hour") is None and model.getUnitDefinition("per_hour")


def test_unit_mistake_in_the_pathway_is_caught():
    rules = tuple(
        dataclasses.replace(r, unit="uM") if r.name == "t_wash" else r for r in PATHWAY.rules
    )
    broken = dataclasses.replace(PATHWAY, rules=rules)
    errors, _ = check_document(build_document("vehicle", pathway=broken))
    assert errors and any("t_wash" in e or "conc_bath" in e for e in errors)
    with pytest.raises(SBMLExportError, match="consistency"):
        to_sbml("vehicle", pathway=broken)


def test_bad_parameters_are_named():
    with pytest.raises(SBMLExportError, match="ke_ketamin.*did you mean ke_ketamine"):
        parameter_vector({"ke_ketamin": 1.0})
    with pytest.raises(SBMLExportError, match="'pE0'.*outside its bounds"):
        parameter_vector({"pE0": 1.5})
    with pytest.raises(SBMLExportError, match="'k_B'.*number"):
        parameter_vector({"k_B": "fast"})
    with pytest.raises(SBMLExportError, match="shape"):
        parameter_vector(np.ones(3))


def test_write_is_atomic(tmp_path):
    out = write_sbml(tmp_path / "m.xml", to_sbml("vehicle"))
    assert out.read_text().startswith("<?xml") and [p.name for p in tmp_path.iterdir()] == ["m.xml"]
    with pytest.raises(SBMLExportError, match="does not exist"):
        write_sbml(tmp_path / "missing" / "m.xml", "x")


def test_cli(tmp_path, capsys):
    import argparse

    from infer.sbml_cli import main, register

    params = tmp_path / "p.json"
    params.write_text(json.dumps({"ke_ketamine": 1.5}))
    out = tmp_path / "model.xml"
    assert (
        main(["--condition", "ketamine 10 mg/kg i.p.", "--out", str(out), "--params", str(params)])
        == 0
    )
    model = libsbml.readSBMLFromFile(str(out)).getModel()
    assert model.getParameter("ke_ketamine").getValue() == 1.5

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["export-sbml", "--condition", "vehicle", "--out", str(out)])
    assert args.func(args) == 0

    params.write_text(json.dumps({"ke_ketamin": 1.5}))
    assert main(["--condition", "vehicle", "--out", str(out), "--params", str(params)]) == 2
    assert "--params" in capsys.readouterr().err
    params.write_text("[1, 2]")
    assert main(["--condition", "vehicle", "--out", str(out), "--params", str(params)]) == 2
    assert "JSON object" in capsys.readouterr().err
    assert main(["--condition", "ketamine 10 mg/kh i.p.", "--out", str(out)]) == 2
    assert "--condition" in capsys.readouterr().err
    assert main(["--condition", "vehicle", "--out", str(tmp_path / "no" / "m.xml")]) == 2
    assert "--out" in capsys.readouterr().err


# --------------------------------------------------------------------------- cross-check
def test_roadrunner_reproduces_jax(jax_solutions, roadrunner_solutions):
    jax_values, ok = jax_solutions
    assert ok.all(), "a JAX reference solve failed"
    rr_values = roadrunner_solutions
    assert rr_values.shape == jax_values.shape
    diff = np.abs(rr_values - jax_values)
    # Signed readouts (e.g. the baclofen Ca2+ signal, a difference of two O(1) terms) cross
    # zero: compare them relative to the size of their terms (1), not to their own value.
    signed = np.array(
        [
            s.startswith(OBSERVABLE_PREFIX)
            and not PATHWAY.observables[
                PATHWAY.observable_names.index(s.removeprefix(OBSERVABLE_PREFIX))
            ].ratio
            for s in SELECTIONS
        ]
    )
    scale = np.where(signed, np.maximum(np.abs(jax_values), 1.0), np.abs(jax_values))
    bad = diff > RTOL_CMP * scale + ATOL_CMP
    if bad.any():
        c, d, t, k = np.argwhere(bad)[0]
        pytest.fail(
            f"{bad.sum()} values differ; first: {SELECTIONS[k]} at t={TIMES[t]} h, draw {d}, "
            f"{CONDITIONS[c]!r}: roadrunner {rr_values[c, d, t, k]!r} vs JAX {jax_values[c, d, t, k]!r}"
        )
    n_states = len(PATHWAY.species_names)
    big = np.abs(jax_values) > 1e-3
    rel = np.where(big, diff / np.where(big, np.abs(jax_values), 1.0), 0.0)
    print(
        f"roadrunner vs JAX: max relative error, states {rel[..., :n_states].max():.2e}, "
        f"observables {rel[..., n_states:].max():.2e} (|value| > 1e-3); "
        f"max absolute error {diff.max():.2e}"
    )


def test_roadrunner_rerun_equals_fresh_load(exports, roadrunner_runs):
    """The compile-once re-run is the same as simulating each draw's own file."""
    for c, per_condition in enumerate(exports):
        signature = structure_signature(per_condition[0])
        assert all(structure_signature(x) == signature for x in per_condition[1:])
        np.testing.assert_allclose(
            roadrunner_runs["fresh"][c], roadrunner_runs["batch"][c, -1], rtol=1e-12, atol=1e-15
        )


def test_simulate_roadrunner_times_need_not_start_at_zero(roadrunner_runs):
    full, part = roadrunner_runs["full"], roadrunner_runs["part"]
    assert full.shape == (len(TIMES), len(PATHWAY.species_names))
    np.testing.assert_allclose(part, full[3:], rtol=1e-9, atol=1e-13)
