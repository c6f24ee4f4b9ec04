"""``python -m infer sbc`` (run simulation-based calibration and write its report) and
``python -m infer sbc-report`` (re-render the report from a saved results JSON)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from models.xla_flags import force_host_devices

from .cli import CLIError, _setup_jax


def cmd_sbc(args) -> int:
    from .sbc import SBCSettings, run_sbc
    from .sbc_report import write_report

    changes = {
        k: getattr(args, k)
        for k in ("simulations", "batch", "bins", "seed")
        if getattr(args, k) is not None
    }
    try:
        settings = dataclasses.replace(SBCSettings(), **changes)
    except ValueError as err:
        raise CLIError(str(err)) from None
    if args.devices is not None:
        if args.devices < 1 or settings.batch % args.devices:
            raise CLIError(
                f"--devices must be >= 1 and divide the batch ({settings.batch}), "
                f"got {args.devices}"
            )
        force_host_devices(args.devices)
    _setup_jax("cpu")
    import jax

    if args.devices is not None and len(jax.devices()) != args.devices:
        raise CLIError(
            f"--devices {args.devices}: JAX had already started with {len(jax.devices())} "
            "device(s) in this process; run 'python -m infer sbc' in a fresh process"
        )
    progress_file = progress_path(args.out)
    if progress_file.exists() and not (args.resume or args.partial):
        raise CLIError(
            f"{progress_file} holds datasets of an unfinished run: pass --resume to continue "
            "it (same settings), --partial for a report of them, or delete the file"
        )
    try:
        result = run_sbc(
            settings,
            progress=not args.quiet,
            progress_file=progress_file,
            fit_more=not args.partial,
        )
    except ValueError as err:
        raise CLIError(str(err)) from None
    result["device"] = (
        f"{len(jax.devices())} x {jax.devices()[0].device_kind} (XLA {jax.devices()[0].platform})"
    )
    path = write_report(result, args.out)
    verdict = "holds" if result["calibrated"] else "FAILS"
    n_done = len(next(iter(result["ranks"].values())))
    print(f"wrote {path}: calibration {verdict} ({n_done} of {settings.simulations} datasets)")
    if not result["partial"]:
        progress_file.unlink(missing_ok=True)
    return 0


def progress_path(out) -> Path:
    """Where ``python -m infer sbc --out DIR`` keeps its fitted datasets until it finishes
    (beside DIR, which is written whole at the end)."""
    out = Path(out)
    return out.parent / f"{out.name}.progress.pkl"


def cmd_sbc_report(args) -> int:
    from .sbc_report import load_result, write_report

    try:
        result = load_result(args.results)
    except ValueError as err:
        raise CLIError(str(err)) from None
    print(f"wrote {write_report(result, args.out)}")
    return 0


def register(sub) -> None:
    p = sub.add_parser("sbc", help="simulation-based calibration of the reduced population model")
    p.add_argument(
        "--out", required=True, help="report directory to write (sbc.json, sbc.md, figures)"
    )
    p.add_argument("--simulations", type=int, help="number of simulated datasets")
    p.add_argument("--batch", type=int, help="datasets per batch (progress saved after each)")
    p.add_argument("--bins", type=int, help="rank-histogram bins (must divide draws/thin + 1)")
    p.add_argument("--seed", type=int)
    p.add_argument(
        "--devices",
        type=int,
        help="CPU host devices, each fitting pieces of the batches (e.g. the cores)",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue an unfinished run from DIR.progress.pkl (kept beside --out after "
        "every batch)",
    )
    p.add_argument(
        "--partial",
        action="store_true",
        help="fit nothing: write the report of the datasets in DIR.progress.pkl so far",
    )
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_sbc)

    p = sub.add_parser("sbc-report", help="re-render an SBC report from its sbc.json")
    p.add_argument("results", help="sbc.json written by 'sbc'")
    p.add_argument("--out", required=True, help="report directory to write")
    p.set_defaults(func=cmd_sbc_report)
