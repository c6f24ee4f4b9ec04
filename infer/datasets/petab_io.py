"""Export the measurements to PEtab (v1) measurement and condition tables, and read them back.

Layout of an export directory::

    measurements.tsv   PEtab measurement table (+ provenance columns, ignored by PEtab tools)
    conditions.tsv     PEtab condition table: conditionName is the canonical Condition.spec,
                       the other columns are numeric condition descriptors (see CONDITION_COLUMNS)

Conventions:
- ``time`` is in hours. No pre-equilibration: the model's untreated steady state is analytic.
- fold_vs_vehicle / relative_to_reference rows keep the readout as ``observableId`` and name the
  condition they are normalised to in ``referenceConditionId`` (PEtab v1 has no cross-condition
  ratio; the simulator must divide by that condition's simulation).
- arbitrary_scale / absolute rows use ``observableId = <readout>_scaled`` with one free scale per
  scale group in ``observableParameters`` (``scale_<group>``).
- ``noiseParameters`` is the standard error of the plotted mean: SEM as stated; SD/sqrt(n) where
  n is stated; a CI95 half-width / 1.96; a number of unstated type as is; otherwise (no error bar,
  or an error of 0) a free noise parameter ``sigma_<group>``.
- ``observables.tsv`` maps each observableId to the SBML export's readout parameter
  (``obs_<readout>``, see ``models.sbml``), times ``observableParameter1_<id>`` for scaled rows;
  noise is ``noiseParameter1_<id>`` (normal, linear scale).
"""

from __future__ import annotations

import hashlib
import math
import re
from pathlib import Path

import pandas as pd

from models.conditions import (
    Condition,
    CoTreatment,
    Drug,
    Genotype,
    Preparation,
    Route,
    Species,
    parse_condition,
)

from ._errors import Problem, raise_problems
from .atomic import build_dir_atomic
from .loading import load_bundle

MEASUREMENT_FILE = "measurements.tsv"
CONDITION_FILE = "conditions.tsv"
OBSERVABLE_FILE = "observables.tsv"
SCALED_SUFFIX = "_scaled"
_COT_COLUMNS = {
    CoTreatment.RAPAMYCIN: "rapa", CoTreatment.CYCLOHEXIMIDE: "chx",
    CoTreatment.GABAB_ANTAGONIST: "gabab_antag", CoTreatment.BACLOFEN: "baclofen",
    CoTreatment.TTX: "ttx", CoTreatment.BICUCULLINE: "bic", CoTreatment.ANTI_BDNF: "anti_bdnf",
}  # fmt: skip
_ROUTE_COLUMNS = {
    Route.IP: "route_ip",
    Route.SC: "route_sc",
    Route.IV: "route_iv",
    Route.BATH: "route_bath",
}
CONDITION_COLUMNS = (
    "dose",  # mg/kg (i.p., s.c., i.v.) or uM (bath); 0 for vehicle
    *(f"drug_{d.name.lower()}" for d in Drug),
    *_ROUTE_COLUMNS.values(),
    "washout_h",  # -1: no washout
    *_COT_COLUMNS.values(),
    "bdnf_ext",  # nM
    "is_rat", "prep_synaptoneurosomes", "prep_cultured", "fmr1_ko", "fmrp_oe",
)  # fmt: skip
_EXTRA = (
    "measurementId",
    "referenceConditionId",
    "normalisation",
    "scale_group",
    "error_type",
    "n",
    "sourceId",
    "unit",
)


def condition_id(spec: str) -> str:
    """Stable PEtab condition id of a canonical spec (``c_`` + 10 hex digits of its sha1)."""
    return "c_" + hashlib.sha1(spec.encode("utf-8")).hexdigest()[:10]


def _ident(text: str) -> str:
    out = re.sub(r"[^A-Za-z0-9_]", "_", text)
    return out if re.match(r"[A-Za-z_]", out) else f"_{out}"


def condition_descriptors(cond: Condition) -> dict[str, float]:
    """Numeric descriptors of a condition (the non-id columns of the condition table)."""
    row: dict[str, float] = {"dose": cond.dose}
    row |= {f"drug_{d.name.lower()}": float(cond.drug is d) for d in Drug}
    row |= {col: float(cond.route is r) for r, col in _ROUTE_COLUMNS.items()}
    row["washout_h"] = -1.0 if cond.washout_h is None else cond.washout_h
    row |= {col: float(c in cond.cotreatments) for c, col in _COT_COLUMNS.items()}
    row["bdnf_ext"] = cond.bdnf_nM
    row["is_rat"] = float(cond.species is Species.RAT)
    row["prep_synaptoneurosomes"] = float(cond.preparation is Preparation.SYNAPTONEUROSOMES)
    row["prep_cultured"] = float(cond.preparation is Preparation.CULTURED_NEURONS)
    row["fmr1_ko"] = float(cond.genotype is Genotype.FMR1_KO)
    row["fmrp_oe"] = float(cond.genotype is Genotype.FMRP_OE)
    return row


def condition_from_descriptors(row) -> Condition:
    """Inverse of :func:`condition_descriptors` (used to cross-check an imported table)."""
    drug = next((d for d in Drug if row[f"drug_{d.name.lower()}"] == 1), None)
    route = next((r for r, col in _ROUTE_COLUMNS.items() if row[col] == 1), None)
    prep = (
        Preparation.SYNAPTONEUROSOMES
        if row["prep_synaptoneurosomes"] == 1
        else Preparation.CULTURED_NEURONS
        if row["prep_cultured"] == 1
        else Preparation.IN_VIVO
    )
    genotype = (
        Genotype.FMR1_KO
        if row["fmr1_ko"] == 1
        else Genotype.FMRP_OE
        if row["fmrp_oe"] == 1
        else Genotype.WILD_TYPE
    )
    return Condition(
        drug=drug, dose=float(row["dose"]), route=route,
        washout_h=None if float(row["washout_h"]) < 0 else float(row["washout_h"]),
        cotreatments=frozenset(c for c, col in _COT_COLUMNS.items() if row[col] == 1),
        bdnf_nM=float(row["bdnf_ext"]),
        species=Species.RAT if row["is_rat"] == 1 else Species.MOUSE,
        preparation=prep, genotype=genotype,
    )  # fmt: skip


def _noise(row) -> str | float:
    err, n, etype = row["error"], row["n"], row["error_type"]
    group = row["scale_group"] or row["datasetId"]
    if not math.isnan(err) and err > 0:
        if etype == "SEM" or etype == "not_stated":
            return err
        if etype == "SD":
            return err / math.sqrt(n) if not math.isnan(n) else err
        if etype == "CI95":
            return err / 1.959963984540054
    return f"sigma_{_ident(group)}"


def petab_tables(measurements: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """PEtab (measurement, condition) tables of simulable measurement rows."""
    rows = measurements[measurements["simulable"]]
    specs = sorted(set(rows["condition"]) | (set(rows["reference"]) - {""}))
    conditions = pd.DataFrame(
        [
            {
                "conditionId": condition_id(s),
                "conditionName": s,
                **condition_descriptors(parse_condition(s)),
            }
            for s in specs
        ]
    ).set_index("conditionId")
    scaled = rows["normalisation"].isin(["arbitrary_scale", "absolute"])
    table = pd.DataFrame(
        {
            "observableId": [
                o + SCALED_SUFFIX if s else o
                for o, s in zip(rows["observableId"], scaled, strict=True)
            ],
            "preequilibrationConditionId": "",
            "simulationConditionId": [condition_id(s) for s in rows["condition"]],
            "measurement": rows["measurement"].to_numpy(),
            "time": rows["time_h"].to_numpy(),
            "observableParameters": [
                f"scale_{_ident(g)}" if s else ""
                for g, s in zip(rows["scale_group"], scaled, strict=True)
            ],
            "noiseParameters": [_noise(r) for _, r in rows.iterrows()],
            "datasetId": rows["datasetId"].to_numpy(),
            "replicateId": "",
            "referenceConditionId": [condition_id(s) if s else "" for s in rows["reference"]],
            **{c: rows[c].to_numpy() for c in _EXTRA if c != "referenceConditionId"},
        }
    )
    return table, conditions


def observable_table(measurement_df: pd.DataFrame) -> pd.DataFrame:
    """PEtab observable table whose formulas name the SBML export's readout parameters."""
    from models.sbml import OBSERVABLE_PREFIX

    rows = []
    for obs in sorted(set(measurement_df["observableId"])):
        readout = obs.removesuffix(SCALED_SUFFIX)
        formula = f"{OBSERVABLE_PREFIX}{readout}"
        if obs.endswith(SCALED_SUFFIX):
            formula = f"observableParameter1_{obs} * {formula}"
        rows.append(
            {
                "observableId": obs,
                "observableName": readout,
                "observableFormula": formula,
                "observableTransformation": "lin",
                "noiseFormula": f"noiseParameter1_{obs}",
                "noiseDistribution": "normal",
            }
        )
    return pd.DataFrame(rows).set_index("observableId")


def lint_tables(measurement_df: pd.DataFrame, condition_df: pd.DataFrame) -> None:
    """Run the ``petab`` package's own checks on both tables (raises on the first failure)."""
    from petab.v1 import lint

    lint.check_measurement_df(measurement_df)
    lint.check_condition_df(condition_df)
    lint.check_observable_df(observable_table(measurement_df))
    missing = set(measurement_df["simulationConditionId"]) - set(condition_df.index)
    if missing:
        raise AssertionError(f"measurement conditions missing from the condition table: {missing}")


def export_petab(
    outdir: str | Path, *, use=("fit", "submodule"), data_dir=None, overwrite: bool = False
) -> dict[str, Path]:
    """Validate the data, build the PEtab tables, lint them, and write them atomically into
    ``outdir`` (a new directory; with ``overwrite`` an existing one is replaced as a whole)."""
    df = load_bundle(data_dir).measurements
    df = df[df["use"].isin((use,) if isinstance(use, str) else use)]
    measurement_df, condition_df = petab_tables(df)
    try:
        lint_tables(measurement_df, condition_df)
    except (AssertionError, ValueError) as err:
        raise_problems(
            [
                Problem(
                    "bad_value",
                    str(outdir),
                    None,
                    None,
                    f"petab lint failed: {err}",
                    "report this as a bug",
                )
            ]
        )

    def fill(tmp: Path) -> None:
        measurement_df.to_csv(tmp / MEASUREMENT_FILE, sep="\t", index=False, lineterminator="\n")
        condition_df.to_csv(tmp / CONDITION_FILE, sep="\t", lineterminator="\n")
        observable_table(measurement_df).to_csv(
            tmp / OBSERVABLE_FILE, sep="\t", lineterminator="\n"
        )

    out = Path(outdir)
    build_dir_atomic(out, fill, replace=overwrite)
    return {
        "measurements": out / MEASUREMENT_FILE,
        "conditions": out / CONDITION_FILE,
        "observables": out / OBSERVABLE_FILE,
    }


def read_petab(indir: str | Path) -> pd.DataFrame:
    """Read an exported directory back into tidy rows (measurementId, observableId, condition,
    reference, time_h, measurement, normalisation, scale_group, noise), checking that every
    condition's descriptors agree with its name."""
    indir = Path(indir)
    m = pd.read_csv(
        indir / MEASUREMENT_FILE,
        sep="\t",
        keep_default_na=False,
        dtype={"measurementId": str, "datasetId": str},
    )
    c = pd.read_csv(indir / CONDITION_FILE, sep="\t", keep_default_na=False).set_index(
        "conditionId"
    )
    problems = []
    for i, (cid, row) in enumerate(c.iterrows(), start=2):
        cond = parse_condition(row["conditionName"])
        if condition_from_descriptors(row) != cond:
            problems.append(
                Problem(
                    "condition",
                    CONDITION_FILE,
                    i,
                    "conditionName",
                    f"{cid}: descriptors disagree with {row['conditionName']!r}",
                    "re-export the problem",
                )
            )
    raise_problems(problems)
    name = c["conditionName"].to_dict()
    return pd.DataFrame(
        {
            "measurementId": m["measurementId"],
            "observableId": [o.removesuffix(SCALED_SUFFIX) for o in m["observableId"]],
            "condition": [name[i] for i in m["simulationConditionId"]],
            "reference": [name[i] if i else "" for i in m["referenceConditionId"]],
            "time_h": m["time"].astype(float),
            "measurement": m["measurement"].astype(float),
            "normalisation": m["normalisation"],
            "scale_group": m["scale_group"],
            "noise": m["noiseParameters"],
        }
    )
