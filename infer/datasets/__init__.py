"""Published datasets with provenance: loading, validation, manifest, PEtab export and the
WebPlotDigitizer import path. See ``data/README.md``.

Public API::

    load_measurements(*, use=("fit",), simulable_only=True) -> DataFrame
    load_constraints(*, simulable_only=False) -> DataFrame
    data_checksums() -> dict[str, str]
    load_bundle(), prior_links(), export_petab(outdir), read_petab(dir),
    import_wpd(csv, sidecar, dry_run=False), DataValidationError (+ one subclass per kind)
"""

from ._errors import (
    BadValueError,
    ChecksumError,
    ConditionSpecError,
    DataValidationError,
    DuplicateIdError,
    LiteratureDriftError,
    MissingColumnError,
    NegativeErrorError,
    NotNumericError,
    Problem,
    UnitMismatchError,
    UnknownDrugError,
    UnknownReferenceError,
    UnknownSourceError,
)
from .loading import (
    DataBundle,
    data_checksums,
    load_bundle,
    load_constraints,
    load_measurements,
    prior_links,
)
from .petab_io import export_petab, read_petab
from .wpd import import_wpd, read_wpd_csv, wpd_to_measurements

__all__ = [
    "BadValueError",
    "ChecksumError",
    "ConditionSpecError",
    "DataBundle",
    "DataValidationError",
    "DuplicateIdError",
    "LiteratureDriftError",
    "MissingColumnError",
    "NegativeErrorError",
    "NotNumericError",
    "Problem",
    "UnitMismatchError",
    "UnknownDrugError",
    "UnknownReferenceError",
    "UnknownSourceError",
    "data_checksums",
    "export_petab",
    "import_wpd",
    "load_bundle",
    "load_constraints",
    "load_measurements",
    "prior_links",
    "read_petab",
    "read_wpd_csv",
    "wpd_to_measurements",
]
