"""Validation errors for the data tables: each names the file, the line, the field and the fix."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Problem:
    """One thing wrong with one input.

    Attributes:
        kind: short code selecting the exception class (see ``ERROR_CLASSES``).
        file: the file, as a path relative to the data directory where possible.
        line: 1-based line in the file (the header is line 1), or None for the whole file.
        field: the column or key at fault, or None.
        message: what is wrong.
        fix: how to fix it.
    """

    kind: str
    file: str
    line: int | None
    field: str | None
    message: str
    fix: str = ""

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f", line {self.line}"
        if self.field:
            where += f", field {self.field!r}"
        text = f"{where}: {self.message}"
        return f"{text}. Fix: {self.fix}" if self.fix else text


class DataValidationError(ValueError):
    """Invalid data input. ``problems`` lists every problem found; the message shows them all."""

    def __init__(self, problems: list[Problem] | Problem):
        if isinstance(problems, Problem):
            problems = [problems]
        self.problems = list(problems)
        head = f"{len(self.problems)} data problem(s):\n" if len(self.problems) > 1 else ""
        super().__init__(head + "\n".join(f"  {p}" for p in self.problems))


class MissingColumnError(DataValidationError):
    """A required column (or sidecar key) is absent."""


class NotNumericError(DataValidationError):
    """A field that must hold a finite number does not."""


class NegativeErrorError(DataValidationError):
    """An error bar (SEM, SD, CI half-width) is negative."""


class UnknownDrugError(DataValidationError):
    """A drug (or co-treatment) name the model does not know."""


class ConditionSpecError(DataValidationError):
    """A condition spec that does not parse, is not canonical or disagrees with its split columns."""


class UnitMismatchError(DataValidationError):
    """Units that disagree: dose vs route, measurement unit vs normalisation, axis unit vs condition."""


class DuplicateIdError(DataValidationError):
    """An id that must be unique appears twice."""


class UnknownSourceError(DataValidationError):
    """A source id that is not in the sources table, or a source without DOI/PMID/PMCID."""


class UnknownReferenceError(DataValidationError):
    """A dataset, literature row, observable or other id that does not resolve."""


class LiteratureDriftError(DataValidationError):
    """A curated value that no longer equals its row in the literature table."""


class ChecksumError(DataValidationError):
    """A data file whose sha256 does not match the manifest (or is missing from it)."""


class BadValueError(DataValidationError):
    """A field with a value outside its allowed vocabulary or range."""


ERROR_CLASSES: dict[str, type[DataValidationError]] = {
    "missing_column": MissingColumnError,
    "not_numeric": NotNumericError,
    "negative_error": NegativeErrorError,
    "unknown_drug": UnknownDrugError,
    "condition": ConditionSpecError,
    "unit_mismatch": UnitMismatchError,
    "duplicate_id": DuplicateIdError,
    "unknown_source": UnknownSourceError,
    "unknown_reference": UnknownReferenceError,
    "drift": LiteratureDriftError,
    "checksum": ChecksumError,
    "bad_value": BadValueError,
}


def raise_problems(problems: list[Problem]) -> None:
    """Raise the error class of the first problem, carrying all of them; no-op when empty."""
    if problems:
        raise ERROR_CLASSES.get(problems[0].kind, DataValidationError)(problems)
