"""``python -m infer sbc``: run simulation-based calibration, write the results JSON."""

from __future__ import annotations

import dataclasses
import json

from .cli import CLIError, _setup_jax


def cmd_sbc(args) -> int:
    from ._io import atomic_path
    from .sbc import SBCSettings, run_sbc

    changes = {
        k: getattr(args, k)
        for k in ("simulations", "batch", "seed")
        if getattr(args, k) is not None
    }
    try:
        settings = dataclasses.replace(SBCSettings(), **changes)
    except ValueError as err:
        raise CLIError(str(err)) from None
    _setup_jax("cpu")
    result = run_sbc(settings, progress=not args.quiet)
    with atomic_path(args.out) as tmp:
        tmp.write_text(json.dumps(result, indent=1))
    verdict = "holds" if result["calibrated"] else "FAILS"
    print(f"wrote {args.out}: calibration {verdict} ({settings.simulations} datasets)")
    return 0


def register(sub) -> None:
    p = sub.add_parser("sbc", help="simulation-based calibration of the reduced population model")
    p.add_argument("--out", required=True, help="results JSON to write")
    p.add_argument("--simulations", type=int, help="number of simulated datasets")
    p.add_argument("--batch", type=int, help="datasets per vmapped NUTS program")
    p.add_argument("--seed", type=int)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_sbc)
