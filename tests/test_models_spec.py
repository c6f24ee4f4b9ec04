"""The declarative pathway is complete and sourced, and models/ keeps its import boundary."""

from __future__ import annotations

import ast
import csv
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

from models import PATHWAY, LogitNormal, LogNormal

ROOT = Path(__file__).resolve().parents[1]
LITERATURE = ROOT / "data" / "literature" / "values.csv"


def _literature_ids() -> set[str]:
    with LITERATURE.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    ids = [row["id"] for row in rows]
    assert len(ids) == len(set(ids)), "duplicate ids in values.csv"
    return set(ids)


# ------------------------------------------------------------------------------ parameters
@pytest.mark.parametrize("param", PATHWAY.parameters, ids=lambda p: p.name)
def test_parameter_has_unit_prior_bounds_and_doc(param):
    """Unit: a non-empty string. Prior: log-normal (positive quantities) or logit-normal
    (fractions, bounds inside [0, 1]) with median = default and a positive finite scale.
    Bounds: finite, lo < hi, default inside, positive for log-normal. A doc saying what it is."""
    assert isinstance(param.unit, str) and param.unit.strip(), param.name
    assert isinstance(param.prior, (LogNormal, LogitNormal))
    assert math.isfinite(param.prior.scale) and param.prior.scale > 0
    assert math.isclose(param.prior.median, param.default, rel_tol=1e-12)
    lo, hi = param.bounds
    assert math.isfinite(lo) and math.isfinite(hi) and lo < hi
    assert lo <= param.default <= hi
    if isinstance(param.prior, LogitNormal):
        assert 0 <= lo and hi <= 1 and param.unit == "fraction"
    else:
        assert param.default > 0 and hi > 0
    assert param.doc.strip() and param.group.strip()


def test_every_cited_source_exists_in_the_literature_table():
    """Every ``source`` id, and every table id a parameter doc cites in its text (e.g. 'PK04',
    'GB09-GB12'), is a row of data/literature/values.csv (read with the csv module)."""
    known = _literature_ids()
    # Ids as cited in free text: PK04, GB09, FS-DIJ05-2 ... (families taken from the table, so
    # that 'IC50' is not read as an id).
    families = sorted({m[1] for i in known if (m := re.fullmatch(r"([A-Z]{2})\d{2}", i))})
    cited_id = re.compile(rf"\b(?:FS-[A-Z]{{2,6}}\d{{2}}-[\w.]+|(?:{'|'.join(families)})\d{{2}})\b")
    missing = {}
    for p in PATHWAY.parameters:
        cited = set(cited_id.findall(p.doc)) | ({p.source} if p.source is not None else set())
        if cited - known:
            missing[p.name] = sorted(cited - known)
    assert not missing, f"ids not in {LITERATURE.relative_to(ROOT)}: {missing}"
    assert sum(p.source is not None for p in PATHWAY.parameters) > 0


def test_species_inputs_and_readouts_have_units():
    for item in (*PATHWAY.species, *PATHWAY.inputs, *PATHWAY.observables):
        assert isinstance(item.unit, str) and item.unit.strip(), item.name


# ------------------------------------------------------------------------- import boundary
MODELS_ALLOWED = {"jax", "jaxlib", "equinox", "diffrax", "jaxtyping", "numpy", "models"}
MODELS_LAZY_ONLY = {"libsbml", "roadrunner"}  # optional SBML export/cross-check, inside functions
FORBIDDEN_EVERYWHERE_IN_MODELS = {"numpyro", "pandas", "matplotlib", "infer", "benchmarks", "scipy"}


def _imports(path: Path):
    """(top-level module name, inside a function?) for every import statement of a file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []

    def visit(node, in_function):
        for child in ast.iter_child_nodes(node):
            nested = in_function or isinstance(
                child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)
            )
            if isinstance(child, ast.Import):
                found.extend((alias.name.split(".")[0], in_function) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                name = "models" if child.level else (child.module or "").split(".")[0]
                found.append((name, in_function))
            visit(child, nested)

    visit(tree, False)
    return found


def test_models_imports_only_jax_stack_numpy_and_stdlib():
    """models/*.py import jax, equinox, diffrax, jaxtyping, numpy and the standard library at
    module level; libsbml/roadrunner only inside functions (lazily); never numpyro, pandas,
    matplotlib, scipy, infer or benchmarks."""
    stdlib = set(sys.stdlib_module_names)
    files = sorted((ROOT / "models").glob("*.py"))
    assert files
    problems = []
    for path in files:
        for name, lazy in _imports(path):
            where = f"{path.relative_to(ROOT)}: {name}"
            if name in FORBIDDEN_EVERYWHERE_IN_MODELS:
                problems.append(f"{where} (forbidden)")
            elif name in MODELS_LAZY_ONLY:
                if not lazy:
                    problems.append(f"{where} (must be imported inside the function using it)")
            elif name not in MODELS_ALLOWED and name not in stdlib:
                problems.append(f"{where} (not in the allowed set)")
    assert not problems, problems


def test_nothing_imports_benchmarks():
    """No Python file outside benchmarks/ (models, infer, tests, top-level scripts) imports it."""
    skip = {".venv", "benchmarks", ".git", "runs", "build"}
    offenders = []
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT)
        if rel.parts[0] in skip or any(part.startswith(".") for part in rel.parts):
            continue
        if any(name == "benchmarks" for name, _ in _imports(path)):
            offenders.append(str(rel))
    assert not offenders, offenders


def test_importing_models_loads_no_forbidden_or_optional_package():
    """At run time, ``import models`` (and every models submodule) leaves numpyro, pandas,
    matplotlib, scipy, infer, benchmarks, libsbml and roadrunner unimported."""
    submodules = sorted(p.stem for p in (ROOT / "models").glob("*.py") if p.stem != "__main__")
    code = (
        "import importlib, sys\n"
        f"for m in {submodules!r}:\n"
        "    importlib.import_module('models.' + m if m != '__init__' else 'models')\n"
        f"bad = {sorted(FORBIDDEN_EVERYWHERE_IN_MODELS | MODELS_LAZY_ONLY)!r}\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in bad))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == "[]", proc.stdout
