"""A saved dense inverse mass matrix from earlier runs' posterior draws (``engine.mass_file``).

NUTS is exact for any fixed mass matrix, but how fast it mixes depends on how close the
matrix is to the posterior covariance. ``python -m infer mass RUN_DIR ... --out FILE.npz``
writes the covariance of the draws of one or more finished runs of the SAME fit (same free
parameters, spreads and nuisance scales), in the sampler's unconstrained coordinates, in the
format :func:`infer.engines.load_inverse_mass` reads (like CmdStan's ``metric_file``). Rerun it
whenever the model, the data or the free list of a fit with ``mass_init = "file"`` change.
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import numpy as np

from ._io import atomic_path
from .model import _prior_geometry

# Stan's regularisation of a windowed covariance estimate: n/(n+5) S + 1e-3 * 5/(n+5) I.
_SHRINK_N = 5.0
_SHRINK_TO = 1e-3


class MassFileError(ValueError):
    """The runs cannot give a mass matrix (the message names the run and the fix)."""


def latent_names(idata) -> list[str]:
    """The sampler's latent sites of a saved run, in ``ravel_pytree`` (sorted) order."""
    attrs = idata.attrs
    names = [f"raw_{n}" for n in json.loads(attrs["free_parameters"])]
    names += json.loads(attrs["sigma_parameters"]) + json.loads(attrs["nuisance_parameters"])
    return sorted(names)


def unconstrained_draws(idata) -> np.ndarray:
    """``[draw, latent]`` posterior draws (chains pooled) in the sampler's unconstrained
    coordinates: a free parameter's prior-standardised value u mapped from its truncation
    interval to the real line (numpyro's ``biject_to``), a spread or a scale on the log axis."""
    from numpyro.distributions import constraints
    from numpyro.distributions.transforms import biject_to

    from models.priors import to_unconstrained

    post = idata.posterior
    columns = []
    for name in latent_names(idata):
        if name.startswith("raw_"):
            par = name.removeprefix("raw_")
            _, _, lo, hi = _prior_geometry(par)
            u = to_unconstrained(par, np.asarray(post[par].values, float).reshape(-1))
            columns.append(np.asarray(biject_to(constraints.interval(lo, hi)).inv(u)))
        else:  # sigma_* (half-normal) and scale_* (log-normal): positive, log axis
            columns.append(np.log(np.asarray(post[name].values, float).reshape(-1)))
    return np.stack(columns, axis=1)


def inverse_mass_from_runs(run_dirs) -> tuple[np.ndarray, list[str], list[dict]]:
    """(regularised covariance, latent names, one summary per run) of the pooled draws."""
    import arviz as az

    names, blocks, runs = None, [], []
    for run in map(Path, run_dirs):
        path = run / "posterior.nc"
        if not path.is_file():
            raise MassFileError(f"{run} has no posterior.nc; give the directory of a finished fit")
        idata = az.from_netcdf(path)
        if idata.attrs.get("engine") != "nuts":
            raise MassFileError(
                f"{run}: engine {idata.attrs.get('engine')!r}; only NUTS draws describe the "
                "posterior's covariance"
            )
        these = latent_names(idata)
        if names is not None and these != names:
            raise MassFileError(
                f"{run} has other latents than {run_dirs[0]} ({sorted(set(these) ^ set(names))}); "
                "pool only runs of the same fit"
            )
        names = these
        draws = unconstrained_draws(idata)
        if not np.all(np.isfinite(draws)):
            raise MassFileError(f"{run}: non-finite draws in the unconstrained coordinates")
        blocks.append(draws)
        chains, n = idata.posterior.sizes["chain"], idata.posterior.sizes["draw"]
        runs.append(
            {
                "run": str(run),
                "commit": idata.attrs.get("git_commit", "?"),
                "chains": int(chains),
                "draws": int(n),
            }
        )
    if not blocks:
        raise MassFileError("no run directories given")
    pooled = np.concatenate(blocks)
    n = pooled.shape[0]
    if n <= len(names):
        raise MassFileError(
            f"{n} draws for {len(names)} latents: a dense covariance needs many more draws "
            "(a few hundred at least)"
        )
    cov = np.cov(pooled, rowvar=False)
    inv = n / (n + _SHRINK_N) * cov + _SHRINK_TO * _SHRINK_N / (n + _SHRINK_N) * np.eye(len(names))
    return 0.5 * (inv + inv.T), names, runs


def write_mass_file(run_dirs, out, note: str = "") -> Path:
    """Write ``out`` (.npz: ``inverse_mass``, ``latents``, ``source``) atomically."""
    inv, names, runs = inverse_mass_from_runs(list(run_dirs))
    total = sum(r["chains"] * r["draws"] for r in runs)
    listed = "; ".join(
        f"{r['run']} ({r['chains']} x {r['draws']} draws, commit {r['commit']})" for r in runs
    )
    source = (
        f"Covariance of {total:,} posterior draws ({len(names)} latents, unconstrained "
        f"coordinates) pooled from: {listed}. Written {datetime.date.today().isoformat()} by "
        "'python -m infer mass'; Stan-style regularisation n/(n+5) S + 1e-3 * 5/(n+5) I. A "
        "tuning input only: NUTS's draws are exact for any fixed mass matrix."
        + (f" {note}" if note else "")
    )
    out = Path(out)
    with atomic_path(out, suffix=".npz") as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, inverse_mass=inv, latents=np.array(names), source=np.array(source))
    return out
