"""Row-by-row validation of the data tables. Every check returns :class:`Problem` objects that
name the file, line and field; callers raise them together (nothing is written on failure)."""

from __future__ import annotations

import math
import re

import pandas as pd

from models.conditions import Condition, ConditionError, condition_from_mapping, parse_condition

from ._errors import Problem
from .schema import (
    EXTRACTIONS,
    MEASUREMENT_USES,
    TIME_UNITS_H,
)

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_TIME_RANGE = re.compile(r"^\s*([0-9.eE+]+)\s*(?:-\s*([0-9.eE+]+))?\s*$")


class RowChecks:
    """Collects problems for one file; helpers parse fields and record what is wrong."""

    def __init__(self, rel: str):
        self.rel = rel
        self.problems: list[Problem] = []

    def add(self, kind: str, line: int | None, field: str | None, message: str, fix: str = ""):
        self.problems.append(Problem(kind, self.rel, line, field, message, fix))

    def number(
        self,
        text: str,
        line: int,
        field: str,
        *,
        required: bool,
        integer: bool = False,
        minimum: float | None = None,
    ) -> float:
        """Parse a finite number; '' gives NaN when not required. Records a problem on failure."""
        text = text.strip()
        if not text:
            if required:
                self.add(
                    "not_numeric",
                    line,
                    field,
                    "empty; a number is required",
                    "fill in the value as stated in the source",
                )
            return math.nan
        try:
            value = float(text)
        except ValueError:
            self.add(
                "not_numeric",
                line,
                field,
                f"{text!r} is not a number",
                "write a plain decimal number (e.g. 1.25 or 3e-9); put words in 'notes'",
            )
            return math.nan
        if not math.isfinite(value):
            self.add("not_numeric", line, field, f"{text!r} is not finite", "give a finite number")
            return math.nan
        if integer and value != int(value):
            self.add(
                "not_numeric",
                line,
                field,
                f"{text!r} is not a whole number",
                "give a count such as 12; keep the stated text in the *_stated column",
            )
        if minimum is not None and value < minimum:
            kind = "negative_error" if field == "error" else "bad_value"
            self.add(
                kind,
                line,
                field,
                f"{value:g} is below the minimum {minimum:g}",
                "error bars are non-negative half-widths; check the sign"
                if field == "error"
                else f"give a value >= {minimum:g}",
            )
        return value

    def choice(self, text: str, line: int, field: str, allowed: tuple[str, ...]) -> str:
        if text not in allowed:
            self.add(
                "bad_value",
                line,
                field,
                f"{text!r} is not one of {', '.join(allowed)}",
                f"use one of: {', '.join(allowed)}",
            )
        return text

    def unique(self, values: pd.Series, field: str, lines: pd.Series | None = None) -> None:
        seen: dict[str, int] = {}
        for i, value in enumerate(values):
            line = int(lines.iloc[i]) if lines is not None else i + 2
            if value in seen:
                self.add(
                    "duplicate_id",
                    line,
                    field,
                    f"{value!r} already used on line {seen[value]}",
                    "give every row its own id",
                )
            else:
                seen[value] = line

    def condition(self, text: str, line: int, field: str) -> Condition | None:
        """Parse a canonical condition spec; records unknown-drug / spec problems."""
        try:
            cond = parse_condition(text)
        except ConditionError as err:
            kind = (
                "unknown_drug"
                if "unknown drug" in str(err) or "unknown co" in str(err)
                else "condition"
            )
            self.add(
                kind,
                line,
                field,
                f"cannot parse condition {text!r}: {err}",
                "write the condition as models.conditions accepts it, e.g. "
                "'ketamine 10 mg/kg i.p., mouse, in vivo tissue'",
            )
            return None
        if cond.spec != text:
            self.add(
                "condition",
                line,
                field,
                f"{text!r} is not in canonical form",
                f"write it as {cond.spec!r}",
            )
        return cond


def time_hours(time: str, unit: str) -> tuple[float, float]:
    """``(from_h, to_h)`` of a time or time window 'a' / 'a-b' in ``unit``; NaN if empty."""
    m = _TIME_RANGE.match(time)
    if not time.strip() or m is None or unit not in TIME_UNITS_H:
        return math.nan, math.nan
    lo = float(m.group(1))
    hi = float(m.group(2)) if m.group(2) else lo
    return lo * TIME_UNITS_H[unit], hi * TIME_UNITS_H[unit]


def check_sources(df: pd.DataFrame, rc: RowChecks) -> None:
    rc.unique(df["sourceId"], "sourceId")
    for i, row in enumerate(df.itertuples(index=False), start=2):
        if not _ID.match(row.sourceId):
            rc.add(
                "bad_value",
                i,
                "sourceId",
                f"{row.sourceId!r} is not a valid id",
                "use letters, digits, '_', '-', '.'",
            )
        if not row.citation.strip():
            rc.add("bad_value", i, "citation", "empty", "give the citation as stated")
        if row.doi and not row.doi.startswith("10."):
            rc.add("bad_value", i, "doi", f"{row.doi!r} is not a DOI", "a DOI starts with '10.'")
        if row.pmid and not row.pmid.isdigit():
            rc.add("bad_value", i, "pmid", f"{row.pmid!r} is not a PMID", "digits only, no 'PMID'")
        if row.pmcid and not re.fullmatch(r"PMC\d+", row.pmcid):
            rc.add(
                "bad_value", i, "pmcid", f"{row.pmcid!r} is not a PMCID", "write e.g. PMC1234567"
            )
        if row.year and not re.fullmatch(r"\d{4}", row.year):
            rc.add("not_numeric", i, "year", f"{row.year!r} is not a year", "four digits")
        if not (row.doi or row.pmid or row.pmcid) and not row.flag:
            rc.add(
                "bad_value",
                i,
                "flag",
                "no DOI, PMID or PMCID and no flag saying so",
                "add the identifier, or say in 'flag' why there is none",
            )


def has_identifier(source) -> bool:
    """Whether a source row carries a DOI, PMID or PMCID."""
    return bool(source["doi"] or source["pmid"] or source["pmcid"])


def check_datasets(df: pd.DataFrame, rc: RowChecks, sources: pd.DataFrame) -> None:
    rc.unique(df["datasetId"], "datasetId")
    known = set(sources["sourceId"])
    for i, row in enumerate(df.itertuples(index=False), start=2):
        if not _ID.match(row.datasetId):
            rc.add(
                "bad_value",
                i,
                "datasetId",
                f"{row.datasetId!r} is not a valid id",
                "use letters, digits, '_', '-', '.'",
            )
        if row.sourceId not in known:
            rc.add(
                "unknown_source",
                i,
                "sourceId",
                f"unknown source {row.sourceId!r}",
                "add it to sources.csv or fix the id",
            )
        rc.choice(row.extraction, i, "extraction", EXTRACTIONS)
        rc.choice(row.use, i, "use", MEASUREMENT_USES)
        if not row.location.strip():
            rc.add("bad_value", i, "location", "empty", "name the figure/table/panel")


def _split_condition(row, cond: Condition, rc: RowChecks, line: int) -> None:
    """The split columns (drug, dose, dose_unit, route, cotreatments, species, genotype) must
    describe the same condition as the canonical spec."""
    table: dict[str, object] = {"preparation": cond.preparation.value}
    if row.drug:
        table.update(drug=row.drug, dose=row.dose, unit=row.dose_unit, route=row.route)
    if row.cotreatments:
        table["cotreatments"] = [c.strip() for c in row.cotreatments.split("+")]
    if row.species:
        table["species"] = row.species
    if row.genotype:
        table["genotype"] = row.genotype
    try:
        split = condition_from_mapping(table)
    except ConditionError as err:
        text = str(err)
        if "unknown drug" in text:
            kind, field = "unknown_drug", "drug"
        elif "unit" in text or "concentration" in text or "mg/kg" in text:
            kind, field = "unit_mismatch", "dose_unit"
        else:
            kind, field = "condition", "drug"
        rc.add(
            kind,
            line,
            field,
            f"split condition columns are invalid: {err}",
            "make drug/dose/dose_unit/route/cotreatments describe the 'condition' spec",
        )
        return
    for field, a, b in [
        ("drug", split.drug, cond.drug),
        ("route", split.route, cond.route),
        ("cotreatments", (split.cotreatments, split.bdnf_nM), (cond.cotreatments, cond.bdnf_nM)),
        ("species", split.species, cond.species),
        ("genotype", split.genotype, cond.genotype),
    ]:
        if a != b:
            rc.add(
                "condition",
                line,
                field,
                f"disagrees with the condition spec {cond.spec!r}",
                "make the split columns and the spec say the same",
            )
    if split.drug == cond.drug and not math.isclose(split.dose, cond.dose, rel_tol=1e-9):
        rc.add(
            "unit_mismatch",
            line,
            "dose_unit",
            f"dose {row.dose} {row.dose_unit} is {split.dose:g} {split.dose_unit}, but the "
            f"condition spec says {cond.dose:g} {cond.dose_unit}",
            "check the dose and its unit (mg/kg, g/kg for in vivo; nM, uM, mM for bath)",
        )
