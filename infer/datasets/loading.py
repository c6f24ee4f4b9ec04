"""Load and validate every data table; derive the typed columns inference uses.

The public entry points (re-exported from :mod:`infer.datasets`) are
:func:`load_measurements`, :func:`load_constraints`, :func:`data_checksums`,
:func:`load_bundle` and :func:`prior_links`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd

from ._errors import Problem, raise_problems
from ._paths import (
    CONSTRAINTS,
    DATASETS,
    DIGITISED,
    LITERATURE,
    MEASUREMENTS,
    PRIORS,
    SOURCES,
    data_dir_of,
)
from .checks import RowChecks, check_datasets, check_sources, time_hours
from .constraint_checks import check_constraints
from .literature_checks import (
    check_constraint_links,
    check_coverage,
    check_measurement_drift,
    check_prior_drift,
)
from .manifest import compute_checksums, verify_manifest
from .measurement_checks import check_measurements
from .schema import (
    CONSTRAINT_COLUMNS,
    DATASET_COLUMNS,
    LITERATURE_COLUMNS,
    MEASUREMENT_COLUMNS,
    PRIOR_COLUMNS,
    SOURCE_COLUMNS,
    read_table,
)


def model_observables() -> tuple[str, ...]:
    """Readout names of the model (``models.PATHWAY.observable_names``)."""
    from models import PATHWAY

    return tuple(PATHWAY.observable_names)


def observable_is_ratio() -> dict[str, bool]:
    from models import PATHWAY

    return {o.name: bool(o.ratio) for o in PATHWAY.observables}


@dataclasses.dataclass(frozen=True)
class DataBundle:
    """All validated tables (typed) plus the verified checksums.

    ``measurements`` and ``constraints`` carry derived columns (time_h, sd, simulable);
    ``files`` maps each measurement row to the file it came from.
    """

    measurements: pd.DataFrame
    constraints: pd.DataFrame
    sources: pd.DataFrame
    datasets: pd.DataFrame
    priors: pd.DataFrame
    literature: pd.DataFrame
    checksums: dict[str, str]


def _digitised_files(root: Path, name: str) -> list[Path]:
    folder = root / DIGITISED
    if not folder.is_dir():
        return []
    return sorted(
        p / name
        for p in folder.iterdir()
        if p.is_dir() and not p.name.startswith(".") and (p / name).exists()
    )


def _read_union(root: Path, name: str, columns) -> list[tuple[str, pd.DataFrame]]:
    """The shipped table plus the same table of every digitised dataset, as (rel, frame)."""
    parts = [(name, read_table(root / name, columns, name))]
    for path in _digitised_files(root, name):
        rel = path.relative_to(root).as_posix()
        parts.append((rel, read_table(path, columns, rel)))
    return parts


def _cross_file_unique(parts, field: str, problems: list[Problem]) -> None:
    seen: dict[str, str] = {}
    for rel, df in parts:
        for i, value in enumerate(df[field], start=2):
            if value in seen and seen[value] != rel:
                problems.append(
                    Problem(
                        "duplicate_id",
                        rel,
                        i,
                        field,
                        f"{value!r} already used in {seen[value]}",
                        "choose a new id",
                    )
                )
            seen.setdefault(value, rel)


def _concat(parts) -> pd.DataFrame:
    frames = []
    for rel, df in parts:
        df = df.copy()
        df["file"] = rel
        df["line"] = np.arange(2, len(df) + 2)
        frames.append(df)
    return pd.concat(frames, ignore_index=True)


def load_bundle(data_dir: str | Path | None = None, *, verify: bool = True) -> DataBundle:
    """Read, checksum-verify and validate every table.

    Raises:
        ChecksumError: a file differs from the manifest (checked first).
        DataValidationError (a subclass per kind): every problem found, each naming file, line,
            field and the fix.
    """
    root = data_dir_of(data_dir)
    checksums = verify_manifest(root) if verify else compute_checksums(root)
    observables = model_observables()
    problems: list[Problem] = []

    lit = read_table(root / LITERATURE, LITERATURE_COLUMNS, LITERATURE)
    src_parts = _read_union(root, SOURCES, SOURCE_COLUMNS)
    ds_parts = _read_union(root, DATASETS, DATASET_COLUMNS)
    m_parts = _read_union(root, MEASUREMENTS, MEASUREMENT_COLUMNS)
    constraints = read_table(root / CONSTRAINTS, CONSTRAINT_COLUMNS, CONSTRAINTS)
    priors = read_table(root / PRIORS, PRIOR_COLUMNS, PRIORS)

    for field, parts in (
        ("sourceId", src_parts),
        ("datasetId", ds_parts),
        ("measurementId", m_parts),
    ):
        _cross_file_unique(parts, field, problems)
    sources = _concat(src_parts)
    datasets = _concat(ds_parts)
    for rel, df in src_parts:
        rc = RowChecks(rel)
        check_sources(df, rc)
        problems += rc.problems
    for rel, df in ds_parts:
        rc = RowChecks(rel)
        check_datasets(df, rc, sources)
        problems += rc.problems
    for rel, df in m_parts:
        rc = RowChecks(rel)
        rc.unique(df["measurementId"], "measurementId")
        check_measurements(
            df,
            rc,
            sources=sources,
            dataset_ids=set(datasets["datasetId"]),
            model_observables=observables,
        )
        if rel == MEASUREMENTS:
            check_measurement_drift(df, rc, lit, sources)
        problems += rc.problems
    rc = RowChecks(CONSTRAINTS)
    check_constraints(constraints, rc, sources=sources, model_observables=observables)
    check_constraint_links(constraints, rc, lit, sources)
    problems += rc.problems
    rc = RowChecks(PRIORS)
    rc.unique(priors["priorId"], "priorId")
    check_prior_drift(priors, rc, lit, sources)
    problems += rc.problems
    rc = RowChecks(LITERATURE)
    rc.unique(lit["id"], "id")
    check_coverage(lit, rc, measurements=m_parts[0][1], constraints=constraints, priors=priors)
    problems += rc.problems
    problems += _check_parameter_sources(lit)
    raise_problems(problems)

    measurements = _typed_measurements(_concat(m_parts), observables)
    return DataBundle(
        measurements=measurements,
        constraints=_typed_constraints(constraints, observables),
        sources=sources,
        datasets=datasets,
        priors=priors,
        literature=lit,
        checksums=checksums,
    )


def _check_parameter_sources(lit: pd.DataFrame) -> list[Problem]:
    """Every ``source`` of a model parameter must be an id of the literature table."""
    from models import PATHWAY

    ids = set(lit["id"])
    return [
        Problem(
            "unknown_reference",
            "models/pathway.py",
            None,
            f"{p.name}.source",
            f"cites {p.source!r}, which is not in data/literature/values.csv",
            "fix the parameter's source id",
        )
        for p in PATHWAY.parameters
        if p.source is not None and p.source not in ids
    ]


def _to_float(series: pd.Series) -> pd.Series:
    return pd.to_numeric(series.replace("", np.nan), errors="coerce").astype(float)


def _typed_measurements(df: pd.DataFrame, observables: tuple[str, ...]) -> pd.DataFrame:
    out = df.copy()
    for col in ("measurement", "error", "n", "dose", "time"):
        out[col] = _to_float(out[col])
    out["per_cell"] = out["per_cell"] == "true"
    out["time_h"] = [time_hours(t, u)[0] for t, u in zip(df["time"], df["time_unit"], strict=True)]
    sd = np.full(len(out), np.nan)
    sem = (out["error_type"] == "SEM") & out["n"].notna() & out["error"].notna()
    sd[sem.to_numpy()] = (out["error"] * np.sqrt(out["n"]))[sem].to_numpy()
    is_sd = (out["error_type"] == "SD").to_numpy()
    sd[is_sd] = out["error"].to_numpy()[is_sd]
    out["sd"] = sd
    out["simulable"] = (out["condition"] != "") & out["observableId"].isin(observables)
    return out


def _typed_constraints(df: pd.DataFrame, observables: tuple[str, ...]) -> pd.DataFrame:
    out = df.copy()
    out["tolerance"] = _to_float(out["tolerance"])
    windows = [time_hours(t, u) for t, u in zip(df["time"], df["time_unit"], strict=True)]
    out["time_h_from"] = [w[0] for w in windows]
    out["time_h"] = [w[1] for w in windows]
    out["simulable"] = (
        (out["condition"] != "")
        & (out["comparator"] != "")
        & out["observableId"].isin(observables)
        & out["time_h"].notna()
    )
    out["model_condition"] = out["condition"].where(out["simulable"], "")
    return out


def load_measurements(
    *, use=("fit",), simulable_only: bool = True, data_dir: str | Path | None = None
) -> pd.DataFrame:
    """Validated measurements, one row per published value.

    Args:
        use: which ``use`` values to keep ('fit': population-model targets; 'submodule':
            calibration sets for one step). None keeps all.
        simulable_only: keep only rows the model can simulate (a model condition and a model
            readout); the others carry a ``model_note`` saying why not.

    Columns include measurementId, datasetId, sourceId, observableId (model readout), condition
    (canonical ``Condition.spec``), reference (spec the value is normalised to, '' for
    arbitrary_scale/absolute), time_h, measurement, error, error_type, n, sd (SD = SEM*sqrt(n)
    only where n is stated; the stated SD for SD rows; else NaN), normalisation, scale_group,
    unit, extraction, confidence, per_cell, use, simulable.
    """
    df = load_bundle(data_dir).measurements
    if use is not None:
        use = (use,) if isinstance(use, str) else tuple(use)
        df = df[df["use"].isin(use)]
    if simulable_only:
        df = df[df["simulable"]]
    return df.reset_index(drop=True)


def load_constraints(
    *, simulable_only: bool = False, data_dir: str | Path | None = None
) -> pd.DataFrame:
    """Qualitative constraints: ``direction`` (up/down/no_change) of ``observableId`` in
    ``condition`` versus ``comparator`` at ``time_h`` (end of the stated window; window start in
    ``time_h_from``). ``effect_scale`` 'ratio': effect = condition/comparator - 1;
    'difference': effect = condition - comparator. up: effect >= tolerance; down:
    effect <= -tolerance; no_change: |effect| <= tolerance. ``simulable`` / ``model_condition``
    flag the rows the model can check."""
    df = load_bundle(data_dir).constraints
    if simulable_only:
        df = df[df["simulable"]]
    return df.reset_index(drop=True)


def data_checksums(data_dir: str | Path | None = None) -> dict[str, str]:
    """``{path relative to data/: sha256}`` of every data file, verified against the manifest."""
    return dict(verify_manifest(data_dir_of(data_dir)))


def prior_links(
    data_dir: str | Path | None = None, *, bundle: DataBundle | None = None
) -> pd.DataFrame:
    """Each prior row with the model parameters whose ``source`` cites it ('' if none yet)."""
    from models import PATHWAY

    priors = (bundle or load_bundle(data_dir)).priors
    cited: dict[str, list[str]] = {}
    for p in PATHWAY.parameters:
        if p.source:
            cited.setdefault(p.source, []).append(p.name)
    out = priors[["priorId", "sourceId", "quantity", "value", "unit", "confidence"]].copy()
    out["parameters"] = [", ".join(cited.get(pid, [])) for pid in out["priorId"]]
    return out
