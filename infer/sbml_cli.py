"""``export-sbml``: write the pathway for one condition as SBML Level 3 Version 2.

Usage (through the main CLI, or directly)::

    python -m infer export-sbml --condition "ketamine 10 mg/kg i.p." --out model.xml
    python -m infer.sbml_cli --condition "ketamine 1 uM bath washout 0.5 h" --out m.xml \\
        --params params.json

``params.json`` is one JSON object ``{"parameter_name": value, ...}``; parameters not named
keep their defaults. The file is validated by libsbml (unit checks included) before it is
written, and written atomically.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path


class ExportInputError(ValueError):
    """Bad command-line input; the message names the field and the fix."""


def read_params(path: str | Path) -> dict[str, float]:
    """Parameter overrides from a JSON file (``{"name": number, ...}``)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ExportInputError(f"--params: file {str(path)!r} does not exist") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise ExportInputError(
            f"--params: {str(path)!r} is not valid JSON (line {err.lineno}, column {err.colno}: "
            f'{err.msg}); expected an object such as {{"ke_ketamine": 1.8}}'
        ) from None
    if not isinstance(data, dict):
        raise ExportInputError(
            f"--params: {str(path)!r} must hold one JSON object mapping parameter names to "
            f"numbers, not a {type(data).__name__}"
        )
    for name, value in data.items():
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise ExportInputError(
                f"--params: {str(path)!r}, field {name!r}: value must be a finite number, "
                f"got {value!r}"
            )
    return {str(k): float(v) for k, v in data.items()}


def export(condition: str, out: str | Path, params: str | Path | None = None) -> Path:
    """Export, validate and atomically write the SBML file; returns its path."""
    from models.conditions import ConditionError
    from models.sbml import SBMLExportError, to_sbml, write_sbml

    overrides = read_params(params) if params is not None else None
    try:
        text = to_sbml(condition, overrides)
    except ConditionError as err:
        raise ExportInputError(f"--condition: {err}") from None
    except SBMLExportError as err:
        where = "--params" if params is not None and "parameter" in str(err) else "export"
        raise ExportInputError(f"{where}: {err}") from None
    try:
        return write_sbml(out, text)
    except SBMLExportError as err:
        raise ExportInputError(f"--out: {err}") from None


def _run(args: argparse.Namespace) -> int:
    try:
        path = export(args.condition, args.out, args.params)
    except ExportInputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {path} (SBML L3V2, condition: {args.condition})")
    return 0


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--condition",
        required=True,
        help="condition spec, e.g. 'ketamine 10 mg/kg i.p., mouse' or "
        "'ketamine 1 uM bath washout 0.5 h + baclofen, cultured neurons'",
    )
    parser.add_argument("--out", required=True, help="output SBML file (e.g. model.xml)")
    parser.add_argument(
        "--params",
        default=None,
        help="JSON object {parameter_name: value} overriding defaults (optional)",
    )


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``export-sbml`` sub-command to an argparse ``subparsers`` object."""
    parser = subparsers.add_parser(
        "export-sbml",
        help="write the pathway for one condition as SBML L3V2",
        description=__doc__.split("\n\n")[0],
    )
    _add_arguments(parser)
    parser.set_defaults(func=_run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m infer.sbml_cli", description=__doc__.split("\n\n")[0]
    )
    _add_arguments(parser)
    return _run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
