"""Human-facing views: the dataset list with counts, one dataset with its provenance, and the
validation summary printed by ``python -m infer data validate``."""

from __future__ import annotations

import pandas as pd

from .loading import DataBundle, load_bundle, prior_links


def dataset_table(bundle: DataBundle | None = None) -> pd.DataFrame:
    """One row per dataset: id, source, location, extraction, use, points, simulable points."""
    bundle = bundle or load_bundle()
    m = bundle.measurements
    counts = m.groupby("datasetId").agg(
        points=("measurementId", "size"), simulable=("simulable", "sum")
    )
    out = bundle.datasets[
        ["datasetId", "sourceId", "location", "extraction", "use", "title", "file"]
    ].merge(counts, left_on="datasetId", right_index=True, how="left")
    out[["points", "simulable"]] = out[["points", "simulable"]].fillna(0).astype(int)
    return out


def describe_dataset(dataset_id: str, bundle: DataBundle | None = None) -> str:
    """Provenance and values of one dataset as readable text."""
    bundle = bundle or load_bundle()
    ds = bundle.datasets[bundle.datasets["datasetId"] == dataset_id]
    if ds.empty:
        known = ", ".join(sorted(bundle.datasets["datasetId"]))
        raise KeyError(f"unknown dataset {dataset_id!r}; known: {known}")
    d = ds.iloc[0]
    s = bundle.sources[bundle.sources["sourceId"] == d["sourceId"]].iloc[0]
    ids = " / ".join(f"{k.upper()} {s[k]}" for k in ("doi", "pmid", "pmcid") if s[k]) or "none"
    m = bundle.measurements[bundle.measurements["datasetId"] == dataset_id]
    lines = [
        f"{dataset_id}: {d['title']}",
        f"  source:     {s['citation']}  [{ids}]" + (f"  (flag: {s['flag']})" if s["flag"] else ""),
        f"  location:   {d['location']}   extraction: {d['extraction']}   use: {d['use']}",
        f"  file:       data/{d['file']}",
        f"  confidence: {', '.join(sorted(set(m['confidence'])))}",
        f"  readout:    {', '.join(sorted(set(m['observableId'])))}   unit: "
        f"{', '.join(sorted(set(m['unit'])))}   normalisation: "
        f"{', '.join(sorted(set(m['normalisation'])))}",
    ]
    if d["description"]:
        lines.append(f"  about:      {d['description']}")
    notes = sorted(set(m["model_note"]) - {""})
    if notes:
        lines.append(f"  not simulated: {'; '.join(notes)}")
    cols = [
        "measurementId",
        "condition",
        "time_h",
        "measurement",
        "error",
        "error_type",
        "n",
        "sd",
        "reference",
    ]
    view = m[cols].copy()
    view["condition"] = [c or "(not a model condition)" for c in view["condition"]]
    lines.append(view.to_string(index=False))
    return "\n".join(lines)


def summary_counts(bundle: DataBundle) -> dict[str, int]:
    """The counts printed by ``validate``."""
    m, c = bundle.measurements, bundle.constraints
    links = prior_links(bundle=bundle)
    return {
        "files verified (sha256)": len(bundle.checksums),
        "sources": len(bundle.sources),
        "sources without DOI/PMID/PMCID (flagged)": int(
            ((bundle.sources[["doi", "pmid", "pmcid"]] == "").all(axis=1)).sum()
        ),
        "datasets": len(bundle.datasets),
        "measurements": len(m),
        "measurements use=fit": int((m["use"] == "fit").sum()),
        "measurements use=submodule": int((m["use"] == "submodule").sum()),
        "measurements simulable": int(m["simulable"].sum()),
        "measurements simulable use=fit": int((m["simulable"] & (m["use"] == "fit")).sum()),
        "measurements digitised by users": int((m["literatureId"] == "").sum()),
        "constraints": len(c),
        "constraints simulable": int(c["simulable"].sum()),
        "priors": len(bundle.priors),
        "priors cited by a model parameter": int((links["parameters"] != "").sum()),
    }
