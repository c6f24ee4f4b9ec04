"""WebPlotDigitizer import: the fixture gives the expected measurements; bad input is refused
with a readable error and nothing is written."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from infer.datasets import (
    DuplicateIdError,
    MissingColumnError,
    NegativeErrorError,
    NotNumericError,
    UnitMismatchError,
    UnknownDrugError,
    UnknownSourceError,
    import_wpd,
    load_measurements,
    read_wpd_csv,
)
from infer.datasets.manifest import compute_checksums

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "wpd"
CSV = FIXTURES / "synthetic_timecourse.csv"
SIDECAR = FIXTURES / "synthetic_timecourse.toml"


@pytest.fixture
def data_dir(tmp_path):
    target = tmp_path / "data"
    shutil.copytree(ROOT / "data", target)
    return target


def snapshot(data_dir: Path) -> dict[str, str]:
    files = {p.relative_to(data_dir).as_posix() for p in data_dir.rglob("*") if p.is_file()}
    return {"files": sorted(files), **compute_checksums(data_dir)}


def test_fixture_gives_expected_measurements():
    rows = import_wpd(CSV, SIDECAR, dry_run=True)
    assert list(rows["time"]) == ["0", "30", "60", "120"]
    assert set(rows["time_unit"]) == {"min"}
    assert [float(v) for v in rows["measurement"]] == [1.0, 1.5, 1.25, 1.0]
    assert [float(v) for v in rows["error"]] == [0.1, 0.2, 0.15, 0.05]
    assert set(rows["error_type"]) == {"SEM"} and set(rows["n"]) == {"4"}
    assert set(rows["condition"]) == {"ketamine 10 mg/kg i.p., rat, synaptoneurosomes, wild type"}
    assert set(rows["reference"]) == {"vehicle, rat, synaptoneurosomes, wild type"}
    assert set(rows["location"]) == {"Fig. 1 panel B"}
    assert set(rows["extraction"]) == {"digitised"}


def test_import_adds_a_dataset_atomically(data_dir):
    import_wpd(CSV, SIDECAR, data_dir=data_dir)
    folder = data_dir / "digitised" / "synthetic_fixture_fig1b"
    assert sorted(p.name for p in folder.iterdir()) == [
        "datasets.csv",
        "measurements.csv",
        "sidecar.toml",
        "sources.csv",
        "wpd.csv",
    ]
    df = load_measurements(data_dir=data_dir)
    new = df[df["datasetId"] == "synthetic_fixture_fig1b"]
    assert len(new) == 4 and new["simulable"].all()
    assert list(new["time_h"]) == [0.0, 0.5, 1.0, 2.0]
    assert new["sd"].tolist() == pytest.approx([0.2, 0.4, 0.3, 0.1])
    before = snapshot(data_dir)
    with pytest.raises(DuplicateIdError, match="dataset_id"):
        import_wpd(CSV, SIDECAR, data_dir=data_dir)
    assert snapshot(data_dir) == before


def test_headerless_single_dataset(tmp_path):
    path = tmp_path / "one.csv"
    path.write_text("0.1,2.0\n10.2,3.5\n")
    assert read_wpd_csv(path) == {"data": [("0.1", "2.0", 1), ("10.2", "3.5", 2)]}


def write_pair(tmp_path: Path, csv_text: str | None = None, **replace: str) -> tuple[Path, Path]:
    csv_path = tmp_path / "fig.csv"
    csv_path.write_text(csv_text if csv_text is not None else CSV.read_text())
    text = SIDECAR.read_text()
    for old, new in replace.items():
        old = old.replace("__", " ")
        assert old in text, old
        text = text.replace(old, new)
    sidecar = tmp_path / "fig.toml"
    sidecar.write_text(text)
    return csv_path, sidecar


@pytest.mark.parametrize(
    ("csv_text", "replace", "error", "fragments"),
    [
        (
            "mean,,upper,\nX,Y,X,Y\n0.4,1.0,0.5,1.1\n29.6,abc,30.2,1.7\n",
            {},
            NotNumericError,
            ["fig.csv, line 4", "Y of 'mean'", "'abc'"],
        ),
        (
            "mean,,upper,\nX,Y,X,Y\n0.4,1.0,0.5,0.9\n",
            {},
            NegativeErrorError,
            ["fig.csv, line 3", "upper bar end"],
        ),
        (None, {'observable = "p_mTOR"': ""}, MissingColumnError, ["fig.toml", "'observable'"]),
        (
            None,
            {
                '"ketamine 10 mg/kg i.p., rat, synaptoneurosomes"': '"ketamime 10 mg/kg i.p., rat, synaptoneurosomes"'
            },
            UnknownDrugError,
            ["fig.toml", "series[1].condition", "ketamime"],
        ),
        (None, {'unit = "min"': 'unit = "minutes"'}, UnitMismatchError, ["fig.toml", "'x.unit'"]),
        (
            None,
            {
                'id = "synthetic_fixture"\ncitation = "SYNTHETIC FORMAT FIXTURE (no publication)"': 'id = "nobody2099"'
            },
            UnknownSourceError,
            ["fig.toml", "'source.id'", "nobody2099"],
        ),
    ],
)
def test_bad_input_is_refused_and_nothing_written(
    data_dir, tmp_path, csv_text, replace, error, fragments
):
    csv_path, sidecar = write_pair(
        tmp_path, csv_text, **{k.replace(" ", "__"): v for k, v in replace.items()}
    )
    before = snapshot(data_dir)
    with pytest.raises(error) as info:
        import_wpd(csv_path, sidecar, data_dir=data_dir)
    for fragment in fragments:
        assert fragment in str(info.value), str(info.value)
    assert snapshot(data_dir) == before


def test_dose_response_unit_must_match_the_condition(data_dir, tmp_path):
    text = SIDECAR.read_text()
    text = text.replace('meaning = "time"', 'meaning = "dose"').replace(
        'unit = "min"', 'unit = "uM"'
    )
    text = text.replace("nominal = [0, 30, 60, 120]", "")
    text = text.replace(
        '"ketamine 10 mg/kg i.p., rat, synaptoneurosomes"',
        '"ketamine {x} mg/kg i.p., rat, synaptoneurosomes"',
    )
    text = text.replace("confidence =", 'time = 30\ntime_unit = "min"\nconfidence =')
    (tmp_path / "dose.toml").write_text(text)
    with pytest.raises(UnitMismatchError, match="x.unit"):
        import_wpd(CSV, tmp_path / "dose.toml", data_dir=data_dir, dry_run=True)
    (tmp_path / "dose.toml").write_text(text.replace('unit = "uM"', 'unit = "mg/kg"'))
    rows = import_wpd(CSV, tmp_path / "dose.toml", data_dir=data_dir, dry_run=True)
    assert list(rows["dose"]) == ["0.4", "29.6", "60.3", "119.8"]


def test_cli_dry_run_prints_rows(capsys):
    from infer.datasets.cli import main

    assert main(["import-wpd", str(CSV), str(SIDECAR), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "would add 4 measurements" in out
