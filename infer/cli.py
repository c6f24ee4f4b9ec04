"""The homeoplast command line (``python -m infer`` or ``homeoplast``).

Sub-commands: ``simulate`` (population simulation to tidy CSV and a figure), ``data``
(datasets), ``export-sbml``, ``fit``, ``diagnose``, ``plot``, ``predict``, ``mass``, ``demo``, and the
validation commands ``sbc``, ``sbc-report`` and ``identify``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path


class CLIError(Exception):
    """A user error on the command line: printed without a traceback, exit status 2."""


def _parse_times(text: str) -> list[float]:
    try:
        times = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise CLIError(
            f"--times must be comma-separated hours, e.g. 0,0.5,1,2,6,24; got {text!r}"
        ) from None
    if not times or any(t < 0 for t in times) or sorted(times) != times:
        raise CLIError(f"--times must be non-empty, non-negative and increasing; got {text!r}")
    return times


def _setup_jax(device: str = "cpu", x64: bool = True) -> None:
    import jax

    if device == "cpu":
        jax.config.update("jax_platforms", "cpu")
    elif device == "gpu":
        jax.config.update("jax_platforms", "cuda")
    if x64:
        jax.config.update("jax_enable_x64", True)


def cmd_simulate(args: argparse.Namespace) -> int:
    from models.conditions import ConditionError, parse_condition

    times = _parse_times(args.times)
    if args.neurons < 1:
        raise CLIError(f"--neurons must be >= 1, got {args.neurons}")
    try:
        conditions = [parse_condition(c) for c in args.condition]
    except ConditionError as err:
        raise CLIError(f"--condition: {err}") from None
    _setup_jax(args.device, x64=not args.float32)
    from models.population import Simulator
    from models.solve import SolverConfig

    from .simulate import plot_population, write_tidy_csv

    sim = Simulator(n_neurons=args.neurons, seed=args.seed, config=SolverConfig(rtol=args.rtol))
    result = sim.run(conditions, times)
    failed = int((~result.ok).sum())
    out = write_tidy_csv(result, args.out)
    print(
        f"wrote {out} ({len(conditions)} condition(s), {args.neurons} neurons, {len(times)} times)"
    )
    if failed:
        print(
            f"warning: {failed} neuron solve(s) failed and are excluded from the summaries",
            file=sys.stderr,
        )
    if args.figure:
        stem = Path(args.figure).with_suffix("")
        for path in plot_population(result, stem):
            print(f"wrote {path}")
    return 0


def _add_simulate(sub) -> None:
    p = sub.add_parser("simulate", help="simulate a population of virtual neurons")
    p.add_argument(
        "--condition",
        action="append",
        required=True,
        help='condition spec, e.g. "ketamine 10 mg/kg i.p., mouse" (repeatable)',
    )
    p.add_argument("--times", default="0,0.5,1,2,6,24", help="output times in hours")
    p.add_argument("--neurons", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0, help="seed of the between-neuron variation")
    p.add_argument("--rtol", type=float, default=1e-6)
    p.add_argument("--device", choices=("cpu", "gpu", "auto"), default="cpu")
    p.add_argument("--float32", action="store_true", help="single precision (GPU benchmarking)")
    p.add_argument("--out", required=True, help="tidy CSV to write")
    p.add_argument("--figure", help="figure path (PNG and PDF are written)")
    p.set_defaults(func=cmd_simulate)


# Sub-commands implemented in their own modules, each exposing ``register(subparsers)``.
_PLUGINS = (
    "infer.datasets.cli",
    "infer.sbml_cli",
    "infer.fit_cli",
    "infer.sbc_cli",
    "infer.identify_cli",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="homeoplast", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    _add_simulate(sub)
    for name in _PLUGINS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as err:  # a plugin not installed in this checkout
            if err.name and name.startswith(err.name):
                continue
            raise
        module.register(sub)
    return parser


def run() -> int:
    """The ``python -m infer`` and ``homeoplast`` entry point: XLA's CPU flags
    (models/xla_flags.py) before JAX starts its backend, then :func:`main`."""
    from models.xla_flags import use_cpu_flags

    use_cpu_flags()
    return main()


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except CLIError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(run())
