"""``python -m infer identify``: the identifiability report of the shipped data."""

from __future__ import annotations

from pathlib import Path

from .cli import CLIError, _setup_jax
from .config import ConfigError, load_config
from .fit_cli import DEFAULT_CONFIG

REPORT_MAP_STARTS = 4
REPORT_MAP_STEPS = 300


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
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_identify)
