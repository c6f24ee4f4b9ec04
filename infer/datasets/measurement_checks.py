"""Validation of measurement rows (shipped curation and user digitisations alike)."""

from __future__ import annotations

import math

import pandas as pd

from .checks import RowChecks, _split_condition, has_identifier, time_hours
from .schema import (
    ERROR_TYPES,
    EXTRACTIONS,
    MEASUREMENT_USES,
    NORMALISATIONS,
    TIME_UNITS_H,
    UNITS_FOR_NORMALISATION,
)


def check_measurements(
    df: pd.DataFrame,
    rc: RowChecks,
    *,
    sources: pd.DataFrame,
    dataset_ids: set[str],
    model_observables: tuple[str, ...],
    lines: pd.Series | None = None,
) -> None:
    """Check every measurement row. ``lines`` gives each row's line in its own file (when
    ``df`` concatenates several files, ``rc`` is per file so pass one file at a time)."""
    src = {r["sourceId"]: r for r in sources.to_dict("records")}
    for k, row in enumerate(df.itertuples(index=False)):
        i = int(lines.iloc[k]) if lines is not None else k + 2
        _check_one(row, i, rc, src, dataset_ids, model_observables)


def _check_one(row, i, rc: RowChecks, src, dataset_ids, model_observables) -> None:
    if not row.measurementId.strip():
        rc.add("bad_value", i, "measurementId", "empty", "give the row a unique id")
    if row.datasetId not in dataset_ids:
        rc.add(
            "unknown_reference",
            i,
            "datasetId",
            f"unknown dataset {row.datasetId!r}",
            "add it to datasets.csv (or import it as a digitised dataset)",
        )
    if row.sourceId not in src:
        rc.add(
            "unknown_source",
            i,
            "sourceId",
            f"unknown source {row.sourceId!r}",
            "add the paper to sources.csv (with DOI, PMID or PMCID) or fix the id",
        )
    elif not has_identifier(src[row.sourceId]):
        rc.add(
            "unknown_source",
            i,
            "sourceId",
            f"source {row.sourceId!r} has no DOI, PMID or PMCID",
            "a measurement needs a citable source: add the identifier to sources.csv",
        )
    if not row.location.strip():
        rc.add("bad_value", i, "location", "empty", "name the figure, panel, table or legend")
    if not row.observableId.strip():
        rc.add("bad_value", i, "observableId", "empty", "name the readout (a model observable)")
    if not row.confidence.strip():
        rc.add("bad_value", i, "confidence", "empty", "say how the value was verified")

    rc.number(row.measurement, i, "measurement", required=True)
    etype = rc.choice(row.error_type, i, "error_type", ERROR_TYPES)
    error = rc.number(row.error, i, "error", required=etype in ("SEM", "SD", "CI95"), minimum=0.0)
    if etype == "none" and not math.isnan(error):
        rc.add(
            "bad_value",
            i,
            "error_type",
            "an error is given but error_type is 'none'",
            "state its type (SEM, SD, CI95, range) or 'not_stated'",
        )
    rc.number(row.n, i, "n", required=False, integer=True, minimum=1)
    rc.number(row.time, i, "time", required=True, minimum=0.0)
    if row.time_unit not in TIME_UNITS_H:
        rc.add(
            "unit_mismatch",
            i,
            "time_unit",
            f"unknown time unit {row.time_unit!r}",
            f"use one of {', '.join(TIME_UNITS_H)}",
        )

    norm = rc.choice(row.normalisation, i, "normalisation", NORMALISATIONS)
    allowed_units = UNITS_FOR_NORMALISATION.get(norm)
    if allowed_units is not None and row.unit.strip().lower() not in allowed_units:
        rc.add(
            "unit_mismatch",
            i,
            "unit",
            f"unit {row.unit!r} does not fit normalisation {norm!r}",
            f"use one of {', '.join(allowed_units)}, or change the normalisation "
            "(arbitrary_scale / absolute for reported units)",
        )
    if norm in ("arbitrary_scale", "absolute") and not row.scale_group.strip():
        rc.add(
            "bad_value",
            i,
            "scale_group",
            f"{norm} rows need a scale group",
            "name the group sharing one free scale, e.g. the figure panel id",
        )
    if norm in ("fold_vs_vehicle", "relative_to_reference") and row.scale_group.strip():
        rc.add(
            "bad_value",
            i,
            "scale_group",
            f"{norm} rows have no free scale",
            "leave scale_group empty",
        )
    rc.choice(row.per_cell, i, "per_cell", ("true", "false"))
    rc.choice(row.use, i, "use", MEASUREMENT_USES)
    rc.choice(row.extraction, i, "extraction", EXTRACTIONS)

    cond = None
    if row.condition:
        cond = rc.condition(row.condition, i, "condition")
        if cond is not None:
            _split_condition(row, cond, rc, i)
    elif row.drug:
        rc.add(
            "condition",
            i,
            "condition",
            "split columns given but no condition spec",
            "write the canonical condition spec, or clear the split columns",
        )
    ref = rc.condition(row.reference, i, "reference") if row.reference else None
    if cond is not None and norm in ("fold_vs_vehicle", "relative_to_reference") and ref is None:
        rc.add(
            "bad_value",
            i,
            "reference",
            f"{norm} needs the reference condition",
            f"for fold vs vehicle write {cond.paired_vehicle().spec!r}",
        )
    if cond is not None and ref is not None and norm == "fold_vs_vehicle":
        if ref != cond.paired_vehicle():
            rc.add(
                "condition",
                i,
                "reference",
                f"fold vs vehicle but the reference is not the paired vehicle {cond.paired_vehicle().spec!r}",
                "use relative_to_reference for other references",
            )
    if norm in ("arbitrary_scale", "absolute") and row.reference:
        rc.add(
            "bad_value",
            i,
            "reference",
            f"{norm} rows have no reference",
            "leave it empty (the scale group carries the free scale)",
        )
    simulable = cond is not None and row.observableId in model_observables
    if not simulable and not row.model_note.strip():
        rc.add(
            "bad_value",
            i,
            "model_note",
            "not simulable (no model condition or not a model readout) but no model_note",
            "say why the model cannot simulate this row",
        )
    if simulable and row.model_note.strip():
        rc.add(
            "bad_value",
            i,
            "model_note",
            "simulable rows must not carry a model_note",
            "clear model_note, or leave the condition empty if it cannot be simulated",
        )
    if not (row.time and row.time_unit):
        return
    if math.isnan(time_hours(row.time, row.time_unit)[0]):
        rc.add("not_numeric", i, "time", "cannot convert the time to hours", "give a number")
