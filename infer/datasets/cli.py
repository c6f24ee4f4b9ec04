"""``data`` sub-command: list, show, validate, export-petab, import-wpd, rehash.

The main CLI calls :func:`register` on its subparsers and dispatches with ``args.func(args)``.
For direct use: ``python -m infer.datasets.cli validate``.
"""

from __future__ import annotations

import argparse
import sys

from ._errors import DataValidationError


def _bundle(args):
    from .loading import load_bundle

    return load_bundle(args.data_dir)


def cmd_list(args) -> int:
    from .catalogue import dataset_table

    table = dataset_table(_bundle(args)).drop(columns=["file"])
    print(table.to_string(index=False))
    return 0


def cmd_show(args) -> int:
    from .catalogue import describe_dataset

    try:
        print(describe_dataset(args.dataset_id, _bundle(args)))
    except KeyError as err:
        print(f"error: {err.args[0]}", file=sys.stderr)
        return 2
    return 0


def cmd_validate(args) -> int:
    from .catalogue import summary_counts

    counts = summary_counts(_bundle(args))
    print("data OK")
    width = max(map(len, counts))
    for key, value in counts.items():
        print(f"  {key:<{width}}  {value}")
    return 0


def cmd_export(args) -> int:
    from .petab_io import export_petab

    paths = export_petab(
        args.outdir, use=tuple(args.use), data_dir=args.data_dir, overwrite=args.overwrite
    )
    for kind, path in paths.items():
        print(f"wrote {kind}: {path}")
    return 0


def cmd_import(args) -> int:
    from .wpd import import_wpd

    rows = import_wpd(args.csv, args.sidecar, data_dir=args.data_dir, dry_run=args.dry_run)
    cols = ["measurementId", "condition", "time", "time_unit", "measurement", "error"]
    print(rows[cols].to_string(index=False))
    verb = "would add" if args.dry_run else "added"
    print(f"{verb} {len(rows)} measurements to dataset {rows['datasetId'].iloc[0]}")
    return 0


def cmd_rehash(args) -> int:
    from .loading import load_bundle
    from .manifest import write_manifest

    load_bundle(args.data_dir, verify=False)  # the content must validate before it is hashed
    print(f"wrote {write_manifest(args.data_dir)}")
    return 0


def _run(func):
    def wrapped(args) -> int:
        try:
            return func(args)
        except (DataValidationError, FileExistsError) as err:
            print(f"error: {err}", file=sys.stderr)
            return 1

    return wrapped


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``data`` command (with its sub-commands) to an argparse subparsers object."""
    data = subparsers.add_parser("data", help="published datasets: list, show, validate, export")
    data.set_defaults(func=lambda args: (data.print_help(), 2)[1])
    sub = data.add_subparsers(dest="data_command")

    def add(name, func, help_):
        p = sub.add_parser(name, help=help_)
        p.add_argument(
            "--data-dir", default=None, help="data directory (default: the repo's data/)"
        )
        p.set_defaults(func=_run(func))
        return p

    add("list", cmd_list, "list datasets with their point counts")
    add("show", cmd_show, "show one dataset with its provenance").add_argument("dataset_id")
    add("validate", cmd_validate, "check checksums, schema, sources and literature drift")
    p = add("export-petab", cmd_export, "write PEtab measurement and condition tables")
    p.add_argument("outdir")
    p.add_argument("--use", nargs="+", default=["fit", "submodule"], choices=["fit", "submodule"])
    p.add_argument("--overwrite", action="store_true", help="replace an existing OUTDIR")
    p = add("import-wpd", cmd_import, "import a WebPlotDigitizer CSV with its TOML sidecar")
    p.add_argument("csv")
    p.add_argument("sidecar")
    p.add_argument("--dry-run", action="store_true", help="validate and show, write nothing")
    add("rehash", cmd_rehash, "validate, then rewrite data/MANIFEST.sha256 (after intended edits)")
    return data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infer.datasets.cli")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["data", *(argv if argv is not None else sys.argv[1:])])
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
