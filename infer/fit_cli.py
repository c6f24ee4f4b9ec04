"""``fit``, ``diagnose``, ``plot``, ``predict``, ``mass`` and ``demo`` sub-commands."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .config import ConfigError, FitConfig, load_config

CONFIG_DIR = Path(__file__).parent / "configs"
DEFAULT_CONFIG = CONFIG_DIR / "default.toml"  # the fit of all the curated data
DEMO_CONFIG = CONFIG_DIR / "demo.toml"  # `make demo`: without the stiff 48-h dataset


def _cli_error(message: str):
    from .cli import CLIError

    return CLIError(message)


def _config_with_flags(args: argparse.Namespace) -> FitConfig:
    try:
        config = load_config(args.config) if args.config else load_config(DEFAULT_CONFIG)
        changes = {
            key: getattr(args, key)
            for key in ("neurons", "chains", "draws", "warmup", "engine", "seed", "device")
            if getattr(args, key, None) is not None
        }
        return config.replace(**changes) if changes else config
    except ConfigError as err:
        raise _cli_error(str(err)) from None


def cmd_fit(args: argparse.Namespace) -> int:
    config = _config_with_flags(args)
    from .cli import _setup_jax

    _setup_jax(config.device)
    from .fit import run_fit

    out = Path(args.out)
    print(
        f"fitting: engine={config.engine}, neurons={config.neurons}, chains={config.chains}, "
        f"draws={config.draws}, free parameters={len(config.free)}",
        flush=True,
    )
    path = run_fit(config, out, resume=args.resume, progress=not args.quiet)
    print(f"wrote {path}")
    if not args.no_report:
        from .diagnostics import diagnose_run

        print(f"wrote {diagnose_run(out)}")
    if _interrupted(path):  # Ctrl-C during NUTS: the draws so far are written, stop here
        print(
            f"NUTS was interrupted: {path} holds the draws it finished and "
            f"{out / 'nuts_checkpoint.pkl'} where it stopped; continue with\n"
            f"  python -m infer fit --config {out / 'config.toml'} --out {out} --resume",
            file=sys.stderr,
        )
        return 130
    if not args.no_plots:
        from .figures import plot_run

        for p in plot_run(out):
            print(f"wrote {p}")
    return 0


def _interrupted(posterior: Path) -> bool:
    import json

    import arviz as az

    log = json.loads(az.from_netcdf(posterior).attrs.get("fit_log", "{}"))
    return bool(log.get("nuts_interrupted"))


def _run_dir(text: str) -> Path:
    run = Path(text)
    if not (run / "posterior.nc").exists():
        raise _cli_error(f"{run} has no posterior.nc; run 'python -m infer fit --out {run}' first")
    return run


def cmd_diagnose(args: argparse.Namespace) -> int:
    from .diagnostics import diagnose_run

    path = diagnose_run(_run_dir(args.run_dir))
    print(path.read_text())
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from .figures import plot_run

    for p in plot_run(_run_dir(args.run_dir)):
        print(f"wrote {p}")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    """Posterior-predictive population simulation of new conditions from a saved run."""
    import json

    import arviz as az
    import numpy as np

    from models.conditions import ConditionError, parse_condition
    from models.dynamics import theta_from
    from models.pathway import PATHWAY

    from .cli import _parse_times, _setup_jax
    from .simulate import plot_population, write_tidy_csv

    run = _run_dir(args.run_dir)
    times = _parse_times(args.times)
    try:
        conditions = [parse_condition(c) for c in args.condition]
    except ConditionError as err:
        raise _cli_error(f"--condition: {err}") from None
    _setup_jax("cpu")
    from models.population import DEFAULT_SIGMA, Simulator

    idata = az.from_netcdf(run / "posterior.nc")
    free = json.loads(idata.attrs["free_parameters"])
    values = {n: float(idata.posterior[n].median()) for n in free}
    sigma = np.full(len(PATHWAY.heterogeneous_names), DEFAULT_SIGMA)
    for name in json.loads(idata.attrs["sigma_parameters"]):
        sigma[PATHWAY.heterogeneous_names.index(name.removeprefix("sigma_"))] = float(
            idata.posterior[name].median()
        )
    sim = Simulator(n_neurons=args.neurons)
    result = sim.run(conditions, times, theta_from(values), sigma)
    out = write_tidy_csv(result, args.out)
    print(f"wrote {out} (posterior-median parameters of {run})")
    if args.figure:
        for p in plot_population(result, Path(args.figure).with_suffix("")):
            print(f"wrote {p}")
    return 0


def cmd_mass(args: argparse.Namespace) -> int:
    """A dense inverse mass matrix (``engine.mass_file``) from finished NUTS runs' draws."""
    from .mass import MassFileError, write_mass_file

    try:
        out = write_mass_file(args.run_dir, args.out, note=args.note)
    except MassFileError as err:
        raise _cli_error(str(err)) from None
    print(f"wrote {out}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """The demo fit (demo.toml) on the embedded data, on CPU, with report and figures."""
    ns = argparse.Namespace(
        config=str(DEMO_CONFIG),
        out=args.out,
        resume=False,
        quiet=False,
        no_report=False,
        no_plots=False,
        neurons=None,
        chains=None,
        draws=None,
        warmup=None,
        engine=None,
        seed=None,
        device="cpu",
    )
    return cmd_fit(ns)


def register(sub) -> None:
    p = sub.add_parser("fit", help="fit the population model to the curated data")
    p.add_argument("--config", help=f"TOML config (default: {DEFAULT_CONFIG.name})")
    p.add_argument("--out", required=True, help="run directory to write")
    p.add_argument("--device", choices=("cpu", "gpu"))
    p.add_argument("--neurons", type=int)
    p.add_argument("--chains", type=int)
    p.add_argument("--draws", type=int)
    p.add_argument("--warmup", type=int)
    p.add_argument("--engine", choices=("nuts", "svi", "map"))
    p.add_argument("--seed", type=int)
    p.add_argument("--resume", action="store_true", help="continue an interrupted NUTS run")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--no-report", action="store_true")
    p.add_argument("--no-plots", action="store_true")
    p.set_defaults(func=cmd_fit)

    p = sub.add_parser("diagnose", help="write and print the diagnostics report of a run")
    p.add_argument("run_dir")
    p.set_defaults(func=cmd_diagnose)

    p = sub.add_parser("plot", help="make the figures of a run from its saved InferenceData")
    p.add_argument("run_dir")
    p.set_defaults(func=cmd_plot)

    p = sub.add_parser("predict", help="simulate new conditions at a run's posterior median")
    p.add_argument("run_dir")
    p.add_argument("--condition", action="append", required=True)
    p.add_argument("--times", default="0,0.5,1,2,6,24")
    p.add_argument("--neurons", type=int, default=1000)
    p.add_argument("--out", required=True)
    p.add_argument("--figure")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser(
        "mass",
        help="write a dense inverse mass matrix (engine.mass_file) from finished NUTS runs",
    )
    p.add_argument("run_dir", nargs="+", help="run directories of the same fit")
    p.add_argument("--out", required=True, help=".npz file to write")
    p.add_argument("--note", default="", help="text appended to the file's 'source' field")
    p.set_defaults(func=cmd_mass)

    p = sub.add_parser(
        "demo", help="run the demo fit (infer/configs/demo.toml) on CPU: what `make demo` does"
    )
    p.add_argument("--out", default="runs/demo")
    p.set_defaults(func=cmd_demo)


if __name__ == "__main__":  # pragma: no cover
    from .cli import main

    sys.exit(main(["fit", *sys.argv[1:]]))
