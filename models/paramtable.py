"""The parameter table for the docs, generated from the pathway definition.

``python -m models.paramtable > docs/parameters.md`` regenerates it; a test checks that the
committed file is up to date.
"""

from __future__ import annotations

from ._spec import Pathway
from .pathway import PATHWAY, PRIOR_ROWS_NOT_USED


def parameter_table(pathway: Pathway = PATHWAY) -> str:
    lines = [
        "# Model parameters",
        "",
        "Generated from `models/pathway.py` by `python -m models.paramtable`; do not edit by hand.",
        "Literature ids refer to `data/literature/values.csv` (see `data/priors.csv` for how each",
        "prior row is used). Parameters without a source are assumptions with wide priors.",
        "Heterogeneous parameters vary across virtual neurons as theta_i = theta_pop exp(sigma z_i).",
        "",
        f"{len(pathway.parameters)} parameters, {len(pathway.species)} species, "
        f"{len(pathway.terms)} rate terms, {len(pathway.rules)} algebraic rules, "
        f"{len(pathway.observables)} readouts.",
        "",
    ]
    groups = list(dict.fromkeys(p.group for p in pathway.parameters))
    for group in groups:
        lines += [
            f"## {group}",
            "",
            "| name | unit | default | prior | bounds | varies across neurons | source | meaning |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for p in pathway.parameters:
            if p.group != group:
                continue
            lo, hi = p.bounds
            lines.append(
                f"| `{p.name}` | {p.unit} | {p.default:.4g} | {p.prior.describe()} | "
                f"[{lo:.3g}, {hi:.3g}] | {'yes' if p.heterogeneous else ''} | "
                f"{p.source or 'assumed'} | {p.doc} |"
            )
        lines.append("")
    lines += [
        "## Prior rows not used by a parameter",
        "",
        "Every `prior` row of the literature table is either a parameter's `source` above or listed",
        "here with the reason.",
        "",
        "| literature id | why no parameter takes it |",
        "|---|---|",
    ]
    lines += [f"| {k} | {v} |" for k, v in PRIOR_ROWS_NOT_USED.items()]
    lines += ["", "## Species", "", "| name | unit | baseline | meaning |", "|---|---|---|---|"]
    for s in pathway.species:
        lines.append(f"| `{s.name}` | {s.unit} | {s.baseline} | {s.doc} |")
    lines += ["", "## Rate terms", "", "| species | term | rate (per hour) |", "|---|---|---|"]
    for t in pathway.terms:
        lines.append(f"| `{t.species}` | {t.name} | `{t.expr}` |")
    lines += [
        "",
        "## Algebraic rules (quasi-steady)",
        "",
        "| name | unit | expression | meaning |",
        "|---|---|---|---|",
    ]
    for r in pathway.rules:
        lines.append(f"| `{r.name}` | {r.unit} | `{r.expr}` | {r.doc} |")
    lines += [
        "",
        "## Readouts",
        "",
        "| name | expression | unit | compared to vehicle as | meaning |",
        "|---|---|---|---|---|",
    ]
    for o in pathway.observables:
        lines.append(
            f"| `{o.name}` | `{o.expr}` | {o.unit} | {'fold' if o.ratio else 'difference'} | {o.doc} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(parameter_table(), end="")
