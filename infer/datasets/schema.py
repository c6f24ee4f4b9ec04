"""Column schemas of the data tables, controlled vocabularies and strict CSV reading.

Column names follow PEtab where one applies (``measurementId``-style camelCase ids,
``observableId``, ``measurement``, ``datasetId``); the rest are descriptive snake_case.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ._errors import Problem, raise_problems

MEASUREMENT_COLUMNS = (
    "measurementId", "datasetId", "literatureId", "sourceId", "observableId", "quantity",
    "species", "genotype", "preparation", "condition", "drug", "dose", "dose_unit", "route",
    "cotreatments", "treatment", "reference", "time", "time_unit", "time_stated", "measurement",
    "error", "error_type", "error_type_stated", "n", "n_stated", "unit", "normalisation",
    "scale_group", "per_cell", "use", "extraction", "extraction_detail", "location", "confidence",
    "model_note", "curation_note", "notes",
)  # fmt: skip
CONSTRAINT_COLUMNS = (
    "constraintId", "literatureId", "sourceId", "observableId", "condition", "comparator",
    "contrast", "treatment", "time", "time_unit", "time_stated", "direction", "tolerance",
    "effect_scale", "confidence", "model_note", "statement", "curation_note",
)  # fmt: skip
SOURCE_COLUMNS = (
    "sourceId", "citation", "authors", "year", "journal", "doi", "pmid", "pmcid", "other_id",
    "identifier_stated", "flag",
)  # fmt: skip
DATASET_COLUMNS = ("datasetId", "sourceId", "title", "location", "extraction", "use", "description")
PRIOR_COLUMNS = (
    "priorId", "literatureId", "sourceId", "quantity", "preparation", "treatment", "value",
    "error", "error_type_stated", "n_stated", "unit", "location", "extraction", "confidence",
    "notes",
)  # fmt: skip
LITERATURE_COLUMNS = (
    "id", "kind", "use", "quantity", "preparation", "treatment", "time", "value", "error",
    "error_type", "n", "unit", "source", "doi_or_pmid", "location", "extraction", "confidence",
    "notes",
)  # fmt: skip

ERROR_TYPES = ("SEM", "SD", "CI95", "range", "not_stated", "none")
"""SEM, SD, CI95 (half-width), range: as stated; not_stated: a number without a stated type;
none: no error bar given."""
NORMALISATIONS = ("fold_vs_vehicle", "relative_to_reference", "arbitrary_scale", "absolute")
EXTRACTIONS = ("text", "legend", "table", "digitised")
MEASUREMENT_USES = ("fit", "submodule")
DIRECTIONS = ("up", "down", "no_change")
EFFECT_SCALES = ("ratio", "difference")
TIME_UNITS_H = {"s": 1 / 3600, "min": 1 / 60, "h": 1.0, "d": 24.0, "weeks": 168.0}
# Measurement units allowed with each normalisation (lower case); None: any unit.
UNITS_FOR_NORMALISATION = {
    "fold_vs_vehicle": ("fold", "fold vs vehicle", "ratio"),
    "relative_to_reference": ("fold", "relative", "ratio"),
    "arbitrary_scale": None,
    "absolute": None,
}


def read_table(path: Path, columns: tuple[str, ...], rel: str) -> pd.DataFrame:
    """Read a CSV as strings (empty cells stay ''), checking that every column is present.

    Raises:
        MissingColumnError: naming the file and each missing column.
        BadValueError: when the file is not valid CSV.
    """
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False)
    except FileNotFoundError:
        raise_problems(
            [Problem("unknown_reference", rel, None, None, "file not found", "restore it from git")]
        )
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        raise_problems(
            [
                Problem(
                    "bad_value",
                    rel,
                    None,
                    None,
                    f"not a valid CSV file: {err}",
                    "save it as UTF-8 CSV with one header row",
                )
            ]
        )
    missing = [c for c in columns if c not in df.columns]
    raise_problems(
        [
            Problem(
                "missing_column",
                rel,
                1,
                c,
                "required column missing",
                f"add a {c!r} column to the header (empty cells are allowed where documented)",
            )
            for c in missing
        ]
    )
    return df
