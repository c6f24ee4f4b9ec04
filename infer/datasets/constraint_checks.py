"""Validation of qualitative constraint rows."""

from __future__ import annotations

import math

import pandas as pd

from .checks import RowChecks, time_hours
from .schema import DIRECTIONS, EFFECT_SCALES, TIME_UNITS_H


def check_constraints(
    df: pd.DataFrame, rc: RowChecks, *, sources: pd.DataFrame, model_observables: tuple[str, ...]
) -> None:
    rc.unique(df["constraintId"], "constraintId")
    known = set(sources["sourceId"])
    for i, row in enumerate(df.itertuples(index=False), start=2):
        if row.sourceId not in known:
            rc.add(
                "unknown_source",
                i,
                "sourceId",
                f"unknown source {row.sourceId!r}",
                "add it to sources.csv or fix the id",
            )
        rc.choice(row.direction, i, "direction", DIRECTIONS)
        rc.choice(row.effect_scale, i, "effect_scale", EFFECT_SCALES)
        rc.number(row.tolerance, i, "tolerance", required=True, minimum=0.0)
        if not row.observableId.strip():
            rc.add("bad_value", i, "observableId", "empty", "name the readout")
        if not row.contrast.strip():
            rc.add("bad_value", i, "contrast", "empty", "say what is compared with what")
        if row.time_unit and row.time_unit not in TIME_UNITS_H:
            rc.add(
                "unit_mismatch",
                i,
                "time_unit",
                f"unknown time unit {row.time_unit!r}",
                f"use one of {', '.join(TIME_UNITS_H)}",
            )
        elif row.time and math.isnan(time_hours(row.time, row.time_unit)[0]):
            rc.add(
                "not_numeric",
                i,
                "time",
                f"cannot read time {row.time!r}",
                "give a number or a window 'a-b'",
            )
        cond = rc.condition(row.condition, i, "condition") if row.condition else None
        comp = rc.condition(row.comparator, i, "comparator") if row.comparator else None
        if bool(row.condition) != bool(row.comparator):
            rc.add(
                "bad_value",
                i,
                "comparator",
                "condition and comparator must both be given",
                "give both specs, or neither (not simulable, with a model_note)",
            )
        simulable = (
            cond is not None
            and comp is not None
            and row.observableId in model_observables
            and bool(row.time)
            and not math.isnan(time_hours(row.time, row.time_unit)[0])
        )
        if not simulable and not row.model_note.strip():
            rc.add(
                "bad_value",
                i,
                "model_note",
                "not simulable but no model_note",
                "say why the model cannot check this statement",
            )
        if simulable and row.model_note.strip():
            rc.add(
                "bad_value",
                i,
                "model_note",
                "simulable rows must not carry a model_note",
                "clear it, or drop the condition",
            )
