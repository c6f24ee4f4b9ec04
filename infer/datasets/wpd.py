"""Import a WebPlotDigitizer CSV export plus a small TOML sidecar into measurements.

WebPlotDigitizer (https://automeris.io) exports either one dataset as headerless ``x,y`` rows,
or all datasets ("Export all") with a first row of dataset names (each spanning two columns) and
a second row ``X,Y,X,Y,...``. The sidecar says where the figure is from, what x and y mean, their
units, how error bars were digitised and which condition each curve is; see ``data/README.md``
for a step-by-step guide and ``tests/fixtures/wpd/`` for a (synthetic) example.

An import is all-or-nothing: the rows are validated with the same checks as the shipped data, then
``data/digitised/<dataset_id>/`` is created atomically and the manifest updated.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
import re
import shutil
import tomllib
from decimal import Decimal
from pathlib import Path

import pandas as pd

from models.conditions import ConditionError, parse_condition

from ._errors import Problem, raise_problems
from ._paths import (
    DATASETS,
    DIGITISED,
    DIGITISED_MEASUREMENTS,
    DIGITISED_RAW,
    DIGITISED_SIDECAR,
    DIGITISED_SOURCES,
    data_dir_of,
)
from .atomic import build_dir_atomic
from .checks import RowChecks, check_datasets, check_sources
from .loading import load_bundle, model_observables
from .manifest import sha256_of, write_manifest
from .measurement_checks import check_measurements
from .schema import DATASET_COLUMNS, MEASUREMENT_COLUMNS, SOURCE_COLUMNS, TIME_UNITS_H

SINGLE_DATASET = "data"  # name given to the only dataset of a headerless export


def read_wpd_csv(path: str | Path) -> dict[str, list[tuple[str, str, int]]]:
    """``{dataset name: [(x text, y text, line), ...]}`` from a WebPlotDigitizer CSV export.

    Raises:
        NotNumericError: a cell that is not a number (naming file, line and column).
        BadValueError: an unreadable layout.
    """
    path = Path(path)
    rel = str(path)
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8-sig"))))
    rows = [r for r in rows if any(cell.strip() for cell in r)]
    if not rows:
        raise_problems(
            [
                Problem(
                    "bad_value",
                    rel,
                    None,
                    None,
                    "empty file",
                    "export the dataset from WebPlotDigitizer as CSV",
                )
            ]
        )

    def is_number(text: str) -> bool:
        try:
            float(text)
        except ValueError:
            return False
        return True

    problems: list[Problem] = []
    out: dict[str, list[tuple[str, str, int]]] = {}
    first = [c.strip() for c in rows[0]]
    if len(rows) > 1 and [c.strip().upper() for c in rows[1]][:2] == ["X", "Y"]:
        names = [first[j] for j in range(0, len(first), 2)]
        start, line0 = 2, 3
    elif all(is_number(c) for c in first[:2] if c):
        names, start, line0 = [SINGLE_DATASET], 0, 1
    else:  # a one-line header such as "x,y"
        names, start, line0 = [SINGLE_DATASET], 1, 2
    for j, name in enumerate(names):
        if not name:
            problems.append(
                Problem(
                    "bad_value",
                    rel,
                    1,
                    f"column {2 * j + 1}",
                    "dataset without a name",
                    "name every dataset in WebPlotDigitizer",
                )
            )
        if name in out:
            problems.append(
                Problem(
                    "duplicate_id",
                    rel,
                    1,
                    name,
                    "dataset name used twice",
                    "give each dataset its own name in WebPlotDigitizer",
                )
            )
        out[name] = []
    for k, row in enumerate(rows[start:]):
        line = line0 + k
        for j, name in enumerate(names):
            cells = [c.strip() for c in row[2 * j : 2 * j + 2]] + ["", ""]
            x, y = cells[0], cells[1]
            if not x and not y:
                continue
            for field, text in (("X", x), ("Y", y)):
                if not is_number(text) or not math.isfinite(float(text)):
                    problems.append(
                        Problem(
                            "not_numeric",
                            rel,
                            line,
                            f"{field} of {name!r}",
                            f"{text!r} is not a number",
                            "remove the cell or re-export from WebPlotDigitizer",
                        )
                    )
            out[name].append((x, y, line))
    raise_problems(problems)
    return out


@dataclasses.dataclass(frozen=True)
class Sidecar:
    """The parsed sidecar (see data/README.md for every key)."""

    raw: dict
    path: str

    def get(self, dotted: str, default=None, *, required: bool = False):
        node = self.raw
        for key in dotted.split("."):
            if not isinstance(node, dict) or key not in node:
                if required:
                    raise_problems(
                        [
                            Problem(
                                "missing_column",
                                self.path,
                                None,
                                dotted,
                                "required key missing",
                                f"add '{dotted}' to the sidecar (see data/README.md)",
                            )
                        ]
                    )
                return default
            node = node[key]
        return node


def read_sidecar(path: str | Path) -> Sidecar:
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise_problems(
            [
                Problem(
                    "bad_value",
                    str(path),
                    None,
                    None,
                    f"not valid TOML: {err}",
                    "fix the TOML syntax (strings in double quotes)",
                )
            ]
        )
    return Sidecar(raw, str(path))


def _source_rows(sc: Sidecar, known: pd.DataFrame) -> tuple[str, list[dict]]:
    sid = sc.get("source.id", required=True)
    if sid in set(known["sourceId"]):
        return sid, []
    citation = sc.get("source.citation")
    if not citation:
        raise_problems(
            [
                Problem(
                    "unknown_source",
                    sc.path,
                    None,
                    "source.id",
                    f"unknown source {sid!r}",
                    "use an id from data/sources.csv, or give source.citation and "
                    "source.doi / source.pmid / source.pmcid for a new one",
                )
            ]
        )
    row = {c: "" for c in SOURCE_COLUMNS}
    row.update(
        sourceId=sid,
        citation=citation,
        authors=sc.get("source.authors", ""),
        year=str(sc.get("source.year", "")),
        journal=sc.get("source.journal", ""),
        doi=sc.get("source.doi", ""),
        pmid=str(sc.get("source.pmid", "")),
        pmcid=sc.get("source.pmcid", ""),
        flag=sc.get("source.flag", ""),
    )
    row["identifier_stated"] = " / ".join(v for v in (row["doi"], row["pmid"], row["pmcid"]) if v)
    return sid, [row]


def _nearest(value: float, nominal: list[float]) -> float:
    return min(nominal, key=lambda v: abs(v - value))


def wpd_to_measurements(
    csv_path: str | Path, sidecar_path: str | Path, *, data_dir=None
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Convert an export + sidecar into (measurements, dataset row, new source rows) frames of
    strings in the data-table schema, validated against the current data. Writes nothing."""
    bundle = load_bundle(data_dir)
    sc = read_sidecar(sidecar_path)
    series = read_wpd_csv(csv_path)
    dataset_id = sc.get("dataset_id", required=True)
    figure = sc.get("figure", required=True)
    panel = sc.get("panel", required=True)
    observable = sc.get("observable", required=True)
    x_meaning = sc.get("x.meaning", required=True)
    x_unit = sc.get("x.unit", required=True)
    y_unit = sc.get("y.unit", required=True)
    norm = sc.get("y.normalisation", required=True)
    bars = sc.get("error.bars", required=True)
    bar_end = sc.get("error.digitised", "upper" if bars != "none" else "none")
    curves = sc.get("series", required=True)
    sid, new_sources = _source_rows(sc, bundle.sources)
    problems: list[Problem] = []
    if dataset_id in set(bundle.datasets["datasetId"]):
        problems.append(
            Problem(
                "duplicate_id",
                sc.path,
                None,
                "dataset_id",
                f"dataset {dataset_id!r} already exists",
                "choose a new dataset_id",
            )
        )
    if x_meaning not in ("time", "dose"):
        problems.append(
            Problem(
                "bad_value",
                sc.path,
                None,
                "x.meaning",
                f"{x_meaning!r} is not 'time' or 'dose'",
                "use 'time' or 'dose'",
            )
        )
    if x_meaning == "time" and x_unit not in TIME_UNITS_H:
        problems.append(
            Problem(
                "unit_mismatch",
                sc.path,
                None,
                "x.unit",
                f"x is time but its unit {x_unit!r} is not a time unit",
                f"use one of {', '.join(TIME_UNITS_H)}",
            )
        )
    if bars not in ("SEM", "SD", "none"):
        problems.append(
            Problem(
                "bad_value",
                sc.path,
                None,
                "error.bars",
                f"{bars!r} is not SEM, SD or none",
                "say what the bars show",
            )
        )
    raise_problems(problems)

    rel_csv = Path(csv_path).name
    rows = []
    for j, curve in enumerate(curves, start=1):
        rows += _curve_rows(
            sc,
            series,
            curve,
            j,
            rel_csv,
            dataset_id=dataset_id,
            sid=sid,
            figure=figure,
            panel=panel,
            observable=observable,
            x_meaning=x_meaning,
            x_unit=x_unit,
            y_unit=y_unit,
            norm=norm,
            bars=bars,
            bar_end=bar_end,
        )
    measurements = pd.DataFrame(rows, columns=list(MEASUREMENT_COLUMNS))
    dataset = pd.DataFrame([{
        "datasetId": dataset_id, "sourceId": sid,
        "title": sc.get("title", f"{observable} ({figure} {panel})"),
        "location": f"{figure} panel {panel}", "extraction": "digitised",
        "use": sc.get("use", "fit"), "description": sc.get("description", ""),
    }], columns=list(DATASET_COLUMNS))  # fmt: skip
    sources_df = pd.DataFrame(new_sources, columns=list(SOURCE_COLUMNS))

    all_sources = pd.concat([bundle.sources, sources_df], ignore_index=True)
    rel = f"{DIGITISED}/{dataset_id}"
    rc = RowChecks(f"{rel}/{DIGITISED_SOURCES}")
    check_sources(sources_df, rc)
    problems = rc.problems
    rc = RowChecks(f"{rel}/{DATASETS}")
    check_datasets(dataset, rc, all_sources)
    problems += rc.problems
    rc = RowChecks(f"{rel}/{DIGITISED_MEASUREMENTS} (from {sc.path})")
    rc.unique(measurements["measurementId"], "measurementId")
    taken = set(bundle.measurements["measurementId"])
    for i, mid in enumerate(measurements["measurementId"], start=2):
        if mid in taken:
            rc.add(
                "duplicate_id", i, "measurementId", f"{mid!r} already exists", "rename the dataset"
            )
    check_measurements(
        measurements,
        rc,
        sources=all_sources,
        dataset_ids=set(bundle.datasets["datasetId"]) | {dataset_id},
        model_observables=model_observables(),
    )
    raise_problems(problems + rc.problems)
    return measurements, dataset, sources_df


def _curve_rows(
    sc: Sidecar,
    series,
    curve: dict,
    j: int,
    rel_csv: str,
    *,
    dataset_id,
    sid,
    figure,
    panel,
    observable,
    x_meaning,
    x_unit,
    y_unit,
    norm,
    bars,
    bar_end,
):
    field = f"series[{j}]"
    name = curve.get("mean", SINGLE_DATASET if len(series) == 1 else None)
    if name not in series:
        raise_problems(
            [
                Problem(
                    "unknown_reference",
                    sc.path,
                    None,
                    f"{field}.mean",
                    f"dataset {name!r} is not in the CSV (it has {sorted(series)})",
                    "use the dataset name as shown in WebPlotDigitizer",
                )
            ]
        )
    template = curve.get("condition")
    if not template:
        raise_problems(
            [
                Problem(
                    "missing_column",
                    sc.path,
                    None,
                    f"{field}.condition",
                    "required key missing",
                    "give the condition spec of this curve",
                )
            ]
        )
    means = sorted(series[name], key=lambda p: float(p[0]))
    ends = sorted(series[curve["error"]], key=lambda p: float(p[0])) if curve.get("error") else None
    if curve.get("error") and curve["error"] not in series:
        raise_problems(
            [
                Problem(
                    "unknown_reference",
                    sc.path,
                    None,
                    f"{field}.error",
                    f"dataset {curve['error']!r} is not in the CSV",
                    "fix the name",
                )
            ]
        )
    if ends is not None and len(ends) != len(means):
        raise_problems(
            [
                Problem(
                    "bad_value",
                    sc.path,
                    None,
                    f"{field}.error",
                    f"{len(ends)} bar ends for {len(means)} means",
                    "digitise one bar end per point",
                )
            ]
        )
    if x_meaning == "dose":
        m = re.search(r"\{x\}\s*(\S+)", template)
        if m is None:
            raise_problems(
                [
                    Problem(
                        "bad_value",
                        sc.path,
                        None,
                        f"{field}.condition",
                        "a dose-response condition needs '{x} UNIT' in its spec",
                        "e.g. 'ketamine {x} mg/kg i.p., rat, synaptoneurosomes'",
                    )
                ]
            )
        if m.group(1).lower() != str(x_unit).lower():
            raise_problems(
                [
                    Problem(
                        "unit_mismatch",
                        sc.path,
                        None,
                        "x.unit",
                        f"x unit {x_unit!r} but the condition template doses in {m.group(1)!r}",
                        "make x.unit and the unit after {x} the same",
                    )
                ]
            )
    nominal = sc.get("x.nominal")
    n = curve.get("n", sc.get("error.n"))
    rows = []
    for k, (x_text, y_text, line) in enumerate(means, start=1):
        x = float(x_text)
        x_used = _nearest(x, [float(v) for v in nominal]) if nominal else x
        spec_text = template.replace("{x}", f"{x_used:g}")
        try:
            cond = parse_condition(spec_text)
        except ConditionError as err:
            kind = "unknown_drug" if "unknown drug" in str(err) else "condition"
            raise_problems(
                [
                    Problem(
                        kind,
                        sc.path,
                        None,
                        f"{field}.condition",
                        str(err),
                        "write the condition as models.conditions accepts it",
                    )
                ]
            )
        error = ""
        if ends is not None:
            end_text = ends[k - 1][1]
            end = float(end_text)
            # decimal arithmetic on the exported text: no binary round-off in the difference
            diff = Decimal(end_text) - Decimal(y_text)
            half = diff if bar_end == "upper" else -diff
            if half < 0:
                raise_problems(
                    [
                        Problem(
                            "negative_error",
                            rel_csv,
                            ends[k - 1][2],
                            f"Y of {curve['error']!r}",
                            f"{bar_end} bar end {end:g} is on the wrong side of the "
                            f"mean {float(y_text):g} (negative {bars})",
                            "check error.digitised (upper/lower) and the point order",
                        )
                    ]
                )
            error = str(half)
        if x_meaning == "time":
            time, time_unit = f"{x_used:g}", x_unit
        else:
            time, time_unit = str(sc.get("time", required=True)), sc.get("time_unit", required=True)
        reference = ""
        if norm == "fold_vs_vehicle":
            reference = cond.paired_vehicle().spec
        elif norm == "relative_to_reference":
            reference = parse_condition(sc.get("y.reference", required=True)).spec
        simulable = observable in model_observables()
        rows.append({
            "measurementId": f"{dataset_id}-s{j}-p{k:02d}", "datasetId": dataset_id,
            "literatureId": "", "sourceId": sid, "observableId": observable,
            "quantity": sc.get("quantity", observable), "species": cond.species.value,
            "genotype": cond.genotype.value, "preparation": cond.preparation.value,
            "condition": cond.spec, "drug": cond.drug.value if cond.drug else "",
            "dose": f"{cond.dose:g}" if cond.drug else "", "dose_unit": cond.dose_unit if cond.drug else "",
            "route": cond.route.value if cond.route else "",
            "cotreatments": " + ".join(sorted(c.value for c in cond.cotreatments)
                                       + ([f"BDNF {cond.bdnf_nM:g} nM"] if cond.bdnf_nM else [])),
            "treatment": spec_text, "reference": reference, "time": time, "time_unit": time_unit,
            "time_stated": f"x = {x_text} {x_unit} (digitised)" if x_meaning == "time" else f"{time} {time_unit}",
            "measurement": y_text, "error": error,
            "error_type": bars if ends is not None else "none",
            "error_type_stated": f"{bars} ({bar_end} bar end digitised)" if ends is not None else bars,
            "n": str(n) if n is not None else "", "n_stated": str(n) if n is not None else "",
            "unit": y_unit, "normalisation": norm,
            "scale_group": (sc.get("y.scale_group") or dataset_id) if norm in ("arbitrary_scale", "absolute") else "",
            "per_cell": "true" if sc.get("per_cell", False) else "false", "use": sc.get("use", "fit"),
            "extraction": "digitised",
            "extraction_detail": f"digitised ({sc.get('digitiser', 'WebPlotDigitizer')}) from {rel_csv}, "
                                 f"dataset {name!r}, line {line}",
            "location": f"{figure} panel {panel}", "confidence": sc.get("confidence", "user digitisation"),
            "model_note": "" if simulable else sc.get("model_note", ""),
            "curation_note": sc.get("note", ""),
            "notes": f"digitised x {x_text} snapped to nominal {x_used:g}" if nominal else "",
        })  # fmt: skip
    return rows


def import_wpd(
    csv_path: str | Path, sidecar_path: str | Path, *, data_dir=None, dry_run: bool = False
) -> pd.DataFrame:
    """Validate and (unless ``dry_run``) add a digitised dataset under ``data/digitised/``.

    All-or-nothing: on any error nothing is written and the manifest is unchanged.
    Returns the new measurement rows.
    """
    root = data_dir_of(data_dir)
    measurements, dataset, sources = wpd_to_measurements(csv_path, sidecar_path, data_dir=root)
    if dry_run:
        return measurements
    dataset_id = dataset["datasetId"].iloc[0]
    target = root / DIGITISED / dataset_id
    before = load_bundle(root).checksums

    def fill(tmp: Path) -> None:
        write = {"index": False, "lineterminator": "\n"}
        measurements.to_csv(tmp / DIGITISED_MEASUREMENTS, **write)
        dataset.to_csv(tmp / DATASETS, **write)
        sources.to_csv(tmp / DIGITISED_SOURCES, **write)
        shutil.copyfile(csv_path, tmp / DIGITISED_RAW)
        shutil.copyfile(sidecar_path, tmp / DIGITISED_SIDECAR)

    build_dir_atomic(target, fill)
    try:
        added = {f"{DIGITISED}/{dataset_id}/{p.name}": sha256_of(p) for p in target.iterdir()}
        write_manifest(root, {**before, **added})
        load_bundle(root)
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        write_manifest(root, before)
        raise
    return measurements
