"""The shipped data: provenance, no drift from the literature table, the loader API, the CLI."""

from __future__ import annotations

import argparse
import csv
import math
import re
from pathlib import Path

import pytest

from infer.datasets import (
    data_checksums,
    load_bundle,
    load_constraints,
    load_measurements,
    prior_links,
)
from infer.datasets.cli import main, register

DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.fixture(scope="module")
def bundle():
    return load_bundle()


@pytest.fixture(scope="module")
def literature():
    with open(DATA / "literature" / "values.csv", newline="", encoding="utf-8") as handle:
        return {row["id"]: row for row in csv.DictReader(handle)}


def test_every_measurement_has_a_citable_source_and_location(bundle):
    sources = bundle.sources.set_index("sourceId")
    for row in bundle.measurements.itertuples():
        src = sources.loc[row.sourceId]
        assert src["doi"] or src["pmid"] or src["pmcid"], row.measurementId
        assert row.location.strip(), row.measurementId


def test_every_value_equals_its_literature_row(bundle, literature):
    shipped = bundle.measurements[bundle.measurements["literatureId"] != ""]
    assert len(shipped) == sum(r["kind"] == "data" for r in literature.values())
    for row in shipped.itertuples():
        lit = literature[row.literatureId]
        assert lit["kind"] == "data"
        assert row.measurement == float(lit["value"]), row.measurementId
        if lit["error"]:
            assert row.error == float(lit["error"]), row.measurementId
        else:
            assert math.isnan(row.error)
        assert row.use == lit["use"]
        assert row.confidence == lit["confidence"]
        assert row.location == lit["location"]


def test_sd_only_from_sem_with_stated_n(bundle):
    m = bundle.measurements
    for row in m.itertuples():
        if row.error_type == "SEM" and not math.isnan(row.n):
            assert row.sd == pytest.approx(row.error * math.sqrt(row.n))
        elif row.error_type == "SD":
            assert row.sd == row.error
        else:
            assert math.isnan(row.sd), row.measurementId
    # Verpelli: n stated as '>15 neurons per condition, 3 experiments' -> no SD derived
    assert (
        m.set_index("measurementId").loc["EF01", "sd"]
        != m.set_index("measurementId").loc["EF01", "sd"]
    )


def test_every_literature_row_is_curated(bundle, literature):
    constrained = set(bundle.constraints["literatureId"])
    priors = set(bundle.priors["literatureId"])
    for lid, row in literature.items():
        if row["kind"] == "qualitative":
            assert lid in constrained
        if row["kind"] == "prior":
            assert lid in priors


def test_load_measurements_api():
    df = load_measurements()
    required = {
        "measurementId", "datasetId", "sourceId", "observableId", "condition", "reference",
        "time_h", "measurement", "error", "error_type", "n", "sd", "normalisation",
        "scale_group", "unit", "extraction", "confidence", "per_cell", "use",
    }  # fmt: skip
    assert required <= set(df.columns)
    assert set(df["use"]) == {"fit"} and df["simulable"].all()
    assert (
        df["normalisation"]
        .isin(["fold_vs_vehicle", "relative_to_reference", "arbitrary_scale", "absolute"])
        .all()
    )
    scaled = df["normalisation"].isin(["arbitrary_scale", "absolute"])
    assert (df.loc[scaled, "scale_group"] != "").all()
    assert (df.loc[scaled, "reference"] == "").all()
    assert (df.loc[~scaled, "reference"] != "").all()
    wolfe = df.set_index("measurementId")
    assert (
        wolfe.loc["GB09", "condition"]
        == "ethanol 2500 mg/kg i.p., mouse, synaptoneurosomes, wild type"
    )
    assert wolfe.loc["GB09", "reference"] == "vehicle, mouse, synaptoneurosomes, wild type"
    assert wolfe.loc["GB13", "reference"] == "vehicle, mouse, cultured neurons, wild type"
    assert wolfe.loc["GB01", "per_cell"] and not wolfe.loc["GB09", "per_cell"]
    everything = load_measurements(use=None, simulable_only=False)
    assert len(everything) >= len(df)
    assert (everything.loc[~everything["simulable"], "model_note"] != "").all()


def test_load_constraints_api():
    df = load_constraints()
    assert {
        "constraintId",
        "sourceId",
        "observableId",
        "condition",
        "comparator",
        "time_h",
        "direction",
        "tolerance",
        "confidence",
        "model_condition",
        "simulable",
    } <= set(df.columns)
    assert df["direction"].isin(["up", "down", "no_change"]).all()
    assert (df["tolerance"] >= 0).all()
    sim = load_constraints(simulable_only=True)
    assert len(sim) > 0 and sim["time_h"].notna().all() and (sim["comparator"] != "").all()


def test_checksums_cover_the_tables():
    sums = data_checksums()
    for name in (
        "measurements.csv",
        "constraints.csv",
        "sources.csv",
        "datasets.csv",
        "priors.csv",
        "literature/values.csv",
    ):
        assert re.fullmatch(r"[0-9a-f]{64}", sums[name])


def test_prior_links_name_parameters():
    links = prior_links()
    assert (links["parameters"] != "").any()
    assert set(links["priorId"]) == set(load_bundle().priors["priorId"])


def test_readme_lists_every_dataset_with_its_count(bundle):
    readme = (DATA / "README.md").read_text(encoding="utf-8")
    counts = bundle.measurements.groupby("datasetId").size()
    for dataset_id, count in counts.items():
        match = re.search(rf"^\| `{re.escape(dataset_id)}` \|.*\| (\d+) \|", readme, re.M)
        assert match, f"{dataset_id} missing from data/README.md"
        assert int(match.group(1)) == count, dataset_id


def test_cli_validate_prints_counts(capsys):
    assert main(["validate"]) == 0
    out = capsys.readouterr().out
    assert "data OK" in out and "measurements" in out and "constraints" in out


def test_register_plugs_into_a_main_parser(capsys):
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["data", "show", "wolfe2016_fig5ac"])
    assert args.func(args) == 0
    assert "10.1038/ncomms12867" in capsys.readouterr().out
    args = parser.parse_args(["data", "show", "no_such_dataset"])
    assert args.func(args) == 2
