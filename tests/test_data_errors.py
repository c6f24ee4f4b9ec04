"""Each malformed input raises its own readable error naming file, line and field."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from infer.datasets import (
    ChecksumError,
    DataValidationError,
    DuplicateIdError,
    LiteratureDriftError,
    MissingColumnError,
    NegativeErrorError,
    NotNumericError,
    UnitMismatchError,
    UnknownDrugError,
    UnknownSourceError,
    load_bundle,
)
from infer.datasets.manifest import write_manifest

DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.fixture
def data_dir(tmp_path):
    target = tmp_path / "data"
    shutil.copytree(DATA, target)
    return target


def edit(path: Path, line: int, field: str, value: str) -> None:
    """Set one cell (``line`` counts the header as 1) of a CSV file."""
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
        fields = list(rows[0].keys())
    rows[line - 2][field] = value
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def expect(data_dir: Path, error: type, *fragments: str) -> DataValidationError:
    write_manifest(data_dir)  # the schema check, not the checksum, must catch it
    with pytest.raises(error) as info:
        load_bundle(data_dir)
    text = str(info.value)
    for fragment in fragments:
        assert fragment in text, text
    return info.value


def test_missing_column(data_dir):
    path = data_dir / "measurements.csv"
    lines = path.read_text().splitlines()
    header = lines[0].split(",")
    k = header.index("error_type")
    rows = list(csv.reader(lines))
    for row in rows:
        del row[k]
    with open(path, "w", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerows(rows)
    expect(data_dir, MissingColumnError, "measurements.csv", "line 1", "'error_type'", "Fix:")


def test_non_numeric_value(data_dir):
    edit(data_dir / "measurements.csv", 5, "measurement", "about 3")
    expect(data_dir, NotNumericError, "measurements.csv, line 5", "'measurement'", "'about 3'")


def test_negative_sem(data_dir):
    edit(data_dir / "measurements.csv", 3, "error", "-1.65")
    expect(data_dir, NegativeErrorError, "measurements.csv, line 3", "'error'")


def test_unknown_drug(data_dir):
    path = data_dir / "measurements.csv"
    edit(
        path,
        3,
        "condition",
        "ketamime 30000 uM bath + baclofen, mouse, cultured neurons, wild type",
    )
    expect(data_dir, UnknownDrugError, "measurements.csv, line 3", "'condition'", "ketamime")


def test_unknown_drug_in_split_columns(data_dir):
    edit(data_dir / "measurements.csv", 3, "drug", "ethanoll")
    expect(data_dir, UnknownDrugError, "line 3", "'drug'", "ethanoll")


def test_unit_mismatch(data_dir):
    # GB02: ethanol 30 mM bath; claim 30 uM: the split columns disagree with the spec
    edit(data_dir / "measurements.csv", 3, "dose_unit", "uM")
    expect(data_dir, UnitMismatchError, "line 3", "'dose_unit'", "30000")


def test_unit_mismatch_normalisation(data_dir):
    # GB09 is fold vs vehicle; a unit of 'a.u.' cannot be
    edit(data_dir / "measurements.csv", 10, "unit", "a.u.")
    err = expect(data_dir, UnitMismatchError, "line 10", "'unit'")
    assert any(p.field == "unit" for p in err.problems)


def test_duplicate_id(data_dir):
    edit(data_dir / "measurements.csv", 4, "measurementId", "GB01")
    expect(data_dir, DuplicateIdError, "measurements.csv, line 4", "'measurementId'", "line 2")


def test_unknown_source(data_dir):
    edit(data_dir / "measurements.csv", 2, "sourceId", "nobody2099")
    expect(data_dir, UnknownSourceError, "measurements.csv, line 2", "'sourceId'", "nobody2099")


def test_source_without_identifier_cannot_back_a_measurement(data_dir):
    edit(data_dir / "measurements.csv", 2, "sourceId", "gilling2009")
    expect(data_dir, UnknownSourceError, "no DOI, PMID or PMCID")


def test_drift_from_literature(data_dir):
    edit(data_dir / "measurements.csv", 2, "measurement", "-11.8")
    expect(data_dir, LiteratureDriftError, "line 2", "'measurement'", "-11.82")


def test_wrong_checksum_names_file_and_both_hashes(data_dir):
    from infer.datasets.manifest import read_manifest, sha256_of

    expected = read_manifest(data_dir)["sources.csv"]
    with open(data_dir / "sources.csv", "a") as handle:
        handle.write("\n")
    actual = sha256_of(data_dir / "sources.csv")
    with pytest.raises(ChecksumError) as info:
        load_bundle(data_dir)
    text = str(info.value)
    assert "sources.csv" in text and expected in text and actual in text


def test_unlisted_file_is_refused(data_dir):
    (data_dir / "extra.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ChecksumError, match="extra.csv.*not listed"):
        load_bundle(data_dir)


def test_all_problems_are_reported_together(data_dir):
    edit(data_dir / "measurements.csv", 5, "measurement", "x")
    edit(data_dir / "measurements.csv", 6, "error", "-1")
    err = expect(data_dir, NotNumericError, "data problem(s)")
    assert {p.line for p in err.problems} == {5, 6}


def test_rehash_refuses_invalid_data(data_dir, capsys):
    from infer.datasets.cli import main

    manifest = (data_dir / "MANIFEST.sha256").read_bytes()
    edit(data_dir / "measurements.csv", 5, "measurement", "about 3")
    assert main(["rehash", "--data-dir", str(data_dir)]) == 1
    assert "line 5" in capsys.readouterr().err
    assert (data_dir / "MANIFEST.sha256").read_bytes() == manifest
