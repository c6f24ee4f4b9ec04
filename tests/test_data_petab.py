"""PEtab export: lint with the petab package, atomic writes, and a lossless round trip."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from infer.datasets import export_petab, load_measurements, read_petab


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    out = tmp_path_factory.mktemp("petab") / "problem"
    export_petab(out)
    return out


def test_exported_tables_pass_petab_lint(exported):
    import petab.v1 as petab
    from petab.v1 import lint

    measurement_df = petab.get_measurement_df(str(exported / "measurements.tsv"))
    condition_df = petab.get_condition_df(str(exported / "conditions.tsv"))
    lint.check_measurement_df(measurement_df)
    lint.check_condition_df(condition_df)
    assert set(measurement_df["simulationConditionId"]) <= set(condition_df.index)
    refs = set(measurement_df["referenceConditionId"].dropna()) - {""}
    assert refs <= set(condition_df.index)


def test_round_trip_gives_identical_values(exported):
    original = load_measurements(use=("fit", "submodule")).set_index("measurementId")
    back = read_petab(exported).set_index("measurementId")
    assert list(back.index) == list(original.index)
    for col in ("observableId", "condition", "reference", "normalisation", "scale_group"):
        assert (back[col] == original[col]).all(), col
    assert (back["measurement"].to_numpy() == original["measurement"].to_numpy()).all()
    assert (back["time_h"].to_numpy() == original["time_h"].to_numpy()).all()
    sem_rows = original["error_type"] == "SEM"
    assert (pd.to_numeric(back.loc[sem_rows, "noise"]) == original.loc[sem_rows, "error"]).all()
    free = original["error"].isna()
    assert back.loc[free, "noise"].str.startswith("sigma_").all()


def test_export_refuses_to_overwrite_and_leaves_no_partial_output(exported):
    before = {p.name: p.read_bytes() for p in exported.iterdir()}
    with pytest.raises(FileExistsError):
        export_petab(exported)
    assert {p.name: p.read_bytes() for p in exported.iterdir()} == before
    leftovers = [p for p in exported.parent.iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_failed_export_writes_nothing(tmp_path, monkeypatch):
    from infer.datasets import petab_io

    def broken(*args, **kwargs):
        raise AssertionError("simulated lint failure")

    monkeypatch.setattr(petab_io, "lint_tables", broken)
    with pytest.raises(Exception, match="simulated lint failure"):
        petab_io.export_petab(tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def test_condition_descriptors_invert():
    from infer.datasets.petab_io import condition_descriptors, condition_from_descriptors
    from models.conditions import parse_condition

    for spec in (
        "ketamine 10 mg/kg i.p., rat, synaptoneurosomes",
        "ethanol 30 mM bath + cycloheximide, mouse, cultured neurons, Fmr1 KO",
        "ketamine 1 uM bath washout 0.5 h + baclofen + BDNF 2 nM",
    ):
        cond = parse_condition(spec)
        assert condition_from_descriptors(condition_descriptors(cond)) == cond
    assert math.isfinite(condition_descriptors(parse_condition("vehicle"))["washout_h"])


def test_observable_table_names_the_sbml_readouts(tmp_path):
    """Every observable formula refers to a readout parameter of the SBML export, and the
    table passes petab's own observable-table lint (run inside export_petab)."""
    import re

    from infer.datasets.petab_io import export_petab
    from models.sbml import to_sbml

    paths = export_petab(tmp_path / "petab")
    observables = pd.read_csv(paths["observables"], sep="\t")
    sbml = to_sbml("ketamine 10 mg/kg i.p., mouse")
    for formula in observables["observableFormula"]:
        for name in re.findall(r"obs_\w+", formula):
            assert f'id="{name}"' in sbml, name
