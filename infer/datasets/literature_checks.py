"""No drift: curated rows must equal their rows in ``data/literature/values.csv``, and every
literature row must be curated (data -> measurements, qualitative -> constraints,
prior -> priors)."""

from __future__ import annotations

import math

import pandas as pd

from .checks import RowChecks

# measurement column -> literature column copied verbatim
_MEASUREMENT_VERBATIM = {
    "quantity": "quantity", "preparation": "preparation", "treatment": "treatment",
    "time_stated": "time", "error_type_stated": "error_type", "n_stated": "n", "unit": "unit",
    "use": "use", "extraction_detail": "extraction", "location": "location",
    "confidence": "confidence", "notes": "notes",
}  # fmt: skip
_PRIOR_VERBATIM = {
    "quantity": "quantity", "preparation": "preparation", "treatment": "treatment",
    "value": "value", "error": "error", "error_type_stated": "error_type", "n_stated": "n",
    "unit": "unit", "location": "location", "extraction": "extraction",
    "confidence": "confidence", "notes": "notes",
}  # fmt: skip


def _num(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan


def _same_number(a: str, b: str) -> bool:
    x, y = _num(a), _num(b)
    return (math.isnan(x) and math.isnan(y) and a.strip() == b.strip()) or x == y


def _records(df: pd.DataFrame, key: str) -> dict[str, dict]:
    return {r[key]: r for r in df.to_dict("records")}


def _literature_row(rc: RowChecks, i: int, literature_id, table: dict, kind: str):
    """The literature row a curated row points to, or None (reported) if it is no ``kind`` row."""
    if literature_id in table and table[literature_id]["kind"] == kind:
        return table[literature_id]
    rc.add(
        "unknown_reference",
        i,
        "literatureId",
        f"{literature_id!r} is not a '{kind}' row of the literature table",
        f"use the id of a kind={kind} row",
    )
    return None


def check_source_matches(rc, i, source_id, lit_row, sources: dict[str, dict]) -> None:
    if source_id in sources:
        s = sources[source_id]
        if s["citation"] != lit_row["source"] or s["identifier_stated"] != lit_row["doi_or_pmid"]:
            rc.add(
                "drift",
                i,
                "sourceId",
                f"source {source_id!r} is not the literature row's source {lit_row['source']!r} "
                f"({lit_row['doi_or_pmid'] or 'no identifier'})",
                "point sourceId at the source whose citation matches the literature table",
            )


def check_measurement_drift(
    df: pd.DataFrame, rc: RowChecks, lit: pd.DataFrame, sources: pd.DataFrame
) -> None:
    """Shipped measurements: each ``literatureId`` is a data row and every copied value equals it."""
    table = _records(lit, "id")
    sources = _records(sources, "sourceId")
    for i, row in enumerate(df.itertuples(index=False), start=2):
        if not row.literatureId:
            rc.add(
                "unknown_reference",
                i,
                "literatureId",
                "shipped measurements need a literature id",
                "user digitisations belong in data/digitised/ (use `data import-wpd`)",
            )
            continue
        lit_row = _literature_row(rc, i, row.literatureId, table, "data")
        if lit_row is None:
            continue
        if not _same_number(row.measurement, lit_row["value"]):
            rc.add(
                "drift",
                i,
                "measurement",
                f"{row.measurement!r} differs from the literature value {lit_row['value']!r}",
                "copy the value exactly from data/literature/values.csv",
            )
        if not _same_number(row.error, lit_row["error"]):
            rc.add(
                "drift",
                i,
                "error",
                f"{row.error!r} differs from the literature error {lit_row['error']!r}",
                "copy the error exactly from data/literature/values.csv",
            )
        for col, lcol in _MEASUREMENT_VERBATIM.items():
            if getattr(row, col) != lit_row[lcol]:
                rc.add(
                    "drift",
                    i,
                    col,
                    f"differs from the literature column {lcol!r}",
                    f"copy it verbatim: {lit_row[lcol]!r}",
                )
        check_source_matches(rc, i, row.sourceId, lit_row, sources)


def check_constraint_links(
    df: pd.DataFrame, rc: RowChecks, lit: pd.DataFrame, sources: pd.DataFrame
) -> None:
    table = _records(lit, "id")
    sources = _records(sources, "sourceId")
    for i, row in enumerate(df.itertuples(index=False), start=2):
        lit_row = _literature_row(rc, i, row.literatureId, table, "qualitative")
        if lit_row is None:
            continue
        if row.confidence != lit_row["confidence"] or row.time_stated != lit_row["time"]:
            rc.add(
                "drift",
                i,
                "confidence" if row.confidence != lit_row["confidence"] else "time_stated",
                "differs from the literature row",
                "copy it verbatim",
            )
        check_source_matches(rc, i, row.sourceId, lit_row, sources)


def check_prior_drift(
    df: pd.DataFrame, rc: RowChecks, lit: pd.DataFrame, sources: pd.DataFrame
) -> None:
    table = _records(lit, "id")
    sources = _records(sources, "sourceId")
    for i, row in enumerate(df.itertuples(index=False), start=2):
        lit_row = _literature_row(rc, i, row.literatureId, table, "prior")
        if lit_row is None:
            continue
        for col, lcol in _PRIOR_VERBATIM.items():
            if getattr(row, col) != lit_row[lcol]:
                rc.add(
                    "drift",
                    i,
                    col,
                    f"differs from the literature column {lcol!r}",
                    f"copy it verbatim: {lit_row[lcol]!r}",
                )
        check_source_matches(rc, i, row.sourceId, lit_row, sources)


def check_coverage(
    lit: pd.DataFrame,
    rc: RowChecks,
    *,
    measurements: pd.DataFrame,
    constraints: pd.DataFrame,
    priors: pd.DataFrame,
) -> None:
    """Every literature row is curated exactly where its kind says."""
    targets = {
        "data": (set(measurements["literatureId"]), "data/measurements.csv"),
        "qualitative": (set(constraints["literatureId"]), "data/constraints.csv"),
        "prior": (set(priors["literatureId"]), "data/priors.csv"),
    }
    for i, row in enumerate(lit.itertuples(index=False), start=2):
        if row.kind not in targets:
            rc.add(
                "bad_value", i, "kind", f"unknown kind {row.kind!r}", "data, qualitative or prior"
            )
            continue
        ids, where = targets[row.kind]
        if row.id not in ids:
            rc.add(
                "unknown_reference",
                i,
                "id",
                f"literature row {row.id!r} is not curated",
                f"add it to {where}",
            )
    counts = measurements["literatureId"].value_counts()
    for lid, count in counts.items():
        if lid and count > 1:
            rc.add(
                "duplicate_id",
                None,
                "literatureId",
                f"{lid!r} curated {count} times",
                "one measurement per literature data row",
            )
