"""``python -m infer identify``: the identifiability report of the shipped data."""

from __future__ import annotations

from pathlib import Path

from .cli import CLIError, _setup_jax
from .config import ConfigError, load_config
from .fit_cli import DEFAULT_CONFIG

REPORT_MAP_STARTS = 4
REPORT_MAP_STEPS = 300
# Solver tolerances of the analysis. The adjoint gradient is exact for the solver's step
# sequence, but that sequence changes with the parameters, so at the fit's rtol 1e-5 the
# gradient carries discretisation noise that finite differences divide by the step: on the
# shipped data the Hessian diagonal of a_bic came out 34 against 3.5 from second differences
# of the values (rtol 1e-8: 3.46 against 3.47).
REPORT_RTOL = 1e-8
REPORT_ATOL = 1e-11
REPORT_MAX_STEPS = 16384


def cmd_identify(args) -> int:
    try:
        config = load_config(args.config or DEFAULT_CONFIG)
        config = config.replace(
            map_starts=max(config.map_starts, REPORT_MAP_STARTS)
            if args.map_starts is None
            else args.map_starts,
            map_steps=max(config.map_steps, REPORT_MAP_STEPS)
            if args.map_steps is None
            else args.map_steps,
            rtol=min(config.rtol, REPORT_RTOL) if args.rtol is None else args.rtol,
            atol=min(config.atol, REPORT_ATOL) if args.atol is None else args.atol,
            max_steps=max(config.max_steps, REPORT_MAX_STEPS),
        )
    except ConfigError as err:
        raise CLIError(str(err)) from None
    posterior = None
    if args.posterior:
        posterior = Path(args.posterior)
        if not posterior.is_file():
            raise CLIError(
                f"--posterior {posterior}: no such file; give a run's posterior.nc "
                "(written by 'python -m infer fit') or leave the flag out"
            )
    _setup_jax("cpu")
    from .identify import analyse, write_report

    print(
        f"identifiability: {len(config.free)} free parameters, {config.neurons} neurons, "
        f"{config.map_starts} MAP starts x {config.map_steps} steps",
        flush=True,
    )
    result = analyse(config, seed=args.seed, posterior=posterior, progress=not args.quiet)
    print(f"wrote {write_report(result, args.out)}")
    return 0


def register(sub) -> None:
    p = sub.add_parser("identify", help="identifiability report: what the shipped data inform")
    p.add_argument("--config", help=f"TOML config (default: {DEFAULT_CONFIG.name})")
    p.add_argument("--out", required=True, help="report directory to write (replaced as a whole)")
    p.add_argument("--posterior", help="a run's posterior.nc: show its NUTS contraction too")
    p.add_argument("--map-starts", type=int, help=f"default {REPORT_MAP_STARTS}")
    p.add_argument("--map-steps", type=int, help=f"default {REPORT_MAP_STEPS}")
    p.add_argument(
        "--rtol", type=float, help=f"solver rtol of the analysis (default {REPORT_RTOL:g})"
    )
    p.add_argument(
        "--atol", type=float, help=f"solver atol of the analysis (default {REPORT_ATOL:g})"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_identify)
