"""One fit, end to end: data -> problem -> model -> MAP -> (SVI) -> (NUTS) -> InferenceData.

The run directory receives ``posterior.nc`` (ArviZ InferenceData, written atomically),
``config.toml``, and, when NUTS runs, ``nuts_checkpoint.pkl`` (removed on success). A NUTS run
with a saved mass matrix (``engine.mass_init = "file"``) keeps a copy of it as
``inverse_mass.npz``, which the run's ``config.toml`` names, so the run directory alone
reproduces the fit (``python -m infer fit --config RUN_DIR/config.toml``).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import platform
import shutil
import subprocess
import time
from pathlib import Path

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np

from models.population import draw_z
from models.solve import SolverConfig

from ._io import atomic_path
from .config import TOML_SECTIONS, FitConfig
from .engines import (
    ChunkedNUTS,
    laplace_inverse_mass,
    load_inverse_mass,
    run_map,
    run_nuts,
    run_svi,
)
from .model import PopulationModel, fixed_parameters
from .problem import FitProblem, PopulationPredictor, build_problem


def solver_config(config: FitConfig, *, long: bool = False, sampler: bool = False) -> SolverConfig:
    """The solve settings of the fit; ``long=True``: of the lanes beyond 4 h
    (``solver.long_method``, where set); ``sampler=True``: of the NUTS sampler's program
    (``solver.sampler_method``, where set)."""
    import diffrax

    from models.solvers import make_solver

    name = (sampler and config.sampler_solver) or config.solver
    if long and config.long_solver:
        name = config.long_solver
    return SolverConfig(
        solver=make_solver(name),
        rtol=config.rtol,
        atol=config.atol,
        max_steps=config.max_steps,
        pcoeff=config.pcoeff,
        icoeff=config.icoeff,
        neuron_batch=None if config.neuron_batch == "auto" else config.neuron_batch,
        adjoint=diffrax.RecursiveCheckpointAdjoint(checkpoints=config.adjoint_checkpoints or None),
    )


def load_problem(config: FitConfig) -> FitProblem:
    from .config import ConfigError
    from .datasets import load_constraints, load_measurements

    measurements = load_measurements(use=config.use, simulable_only=True)
    if config.datasets:
        unknown = sorted(set(config.datasets) - set(measurements["datasetId"]))
        if unknown:
            raise ConfigError(
                f"data.datasets: {unknown} are not simulable datasets with use in {list(config.use)}; "
                f"choose from {sorted(set(measurements['datasetId']))} ('python -m infer data list')"
            )
        measurements = measurements[measurements["datasetId"].isin(config.datasets)]
    if config.exclude:
        unknown = sorted(set(config.exclude) - set(measurements["measurementId"]))
        if unknown:
            raise ConfigError(
                f"data.exclude: {unknown} are not measurements of this fit's datasets; list "
                "measurementId values from data/measurements.csv of the datasets in data.datasets"
            )
        measurements = measurements[~measurements["measurementId"].isin(config.exclude)]
    constraints = load_constraints() if config.include_constraints else None
    if constraints is not None and "simulable" in constraints:
        constraints = constraints[constraints["simulable"].astype(bool)]
    return build_problem(
        measurements,
        constraints,
        relative_noise_floor=config.relative_noise_floor,
        secondary_noise_floor=config.secondary_noise_floor,
    )


@dataclasses.dataclass
class Fit:
    """Everything needed to run and re-run one fit (compiled pieces are reused)."""

    config: FitConfig
    problem: FitProblem
    model: PopulationModel

    @classmethod
    def create(
        cls,
        config: FitConfig,
        problem: FitProblem | None = None,
        *,
        generative_only: bool = False,
    ) -> Fit:
        problem = problem or load_problem(config)
        z = draw_z(config.neurons, config.seed)

        def population_model(sampler: bool) -> PopulationModel:
            predictor = PopulationPredictor(
                problem,
                z,
                solver_config(config, sampler=sampler),
                long_config=solver_config(config, long=True, sampler=sampler),
                fixed=fixed_parameters(config.free),
            )
            return PopulationModel(problem, config, predictor, generative_only=generative_only)

        model = population_model(sampler=False)
        if config.sampler_solver not in ("", config.solver):
            # the same posterior, solved by the other code of the same method (config.py)
            model.sampling = population_model(sampler=True)
        return cls(config=config, problem=problem, model=model)


@functools.cache
def _git_commit() -> str:
    """HEAD of the checkout this process runs from, with '+dirty' when tracked files differ
    from it. Cached at the first call, which :func:`run_fit` makes when it starts: a commit
    made while a long fit runs is not recorded as the code that ran it."""

    def git(*args: str) -> str:
        out = subprocess.run(
            ["git", *args], capture_output=True, text=True, cwd=Path(__file__).parent, timeout=10
        )
        return out.stdout.strip() if out.returncode == 0 else ""

    try:
        head = git("rev-parse", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (head + ("+dirty" if dirty else "")) if head else "unknown"


def _versions() -> dict:
    import diffrax
    import numpyro
    import optax

    return {
        "homeoplast": "0.1.0",
        "jax": jax.__version__,
        "diffrax": diffrax.__version__,
        "numpyro": numpyro.__version__,
        "optax": optax.__version__,
        "arviz": az.__version__,
        "python": platform.python_version(),
    }


def _checksums() -> dict:
    try:
        from .datasets import data_checksums

        return data_checksums()
    except ImportError:
        return {}


MASS_COPY = "inverse_mass.npz"  # a run directory's copy of its saved mass matrix


def _fit_for(config: FitConfig, fit: Fit | None) -> Fit:
    """The Fit that runs ``config``: built from it, or a given one whose model ``config``
    shares (they may differ only in [engine] settings; the run records ``config``)."""
    if fit is None:
        return Fit.create(config)
    differ = [
        key
        for section, keys in TOML_SECTIONS.items()
        if section != "engine"
        for key in keys
        if getattr(fit.config, key) != getattr(config, key)
    ]
    if differ:
        raise ValueError(
            f"run_fit: the Fit passed was built from a config that differs from this run's in "
            f"{differ}; build it with Fit.create(config) or pass no Fit"
        )
    return dataclasses.replace(fit, config=config)


def run_fit(
    config: FitConfig,
    out_dir: str | Path,
    *,
    resume: bool = False,
    progress: bool = True,
    fit: Fit | None = None,
    checkpoint_every: int = 50,
) -> Path:
    """Run the configured engine; write ``out_dir/posterior.nc`` and ``config.toml``.

    NUTS saves its state to ``out_dir/nuts_checkpoint.pkl`` every ``checkpoint_every``
    transitions; interrupted (Ctrl-C), it writes the draws it finished and keeps the
    checkpoint, and ``resume=True`` continues from it without redoing the MAP (the run's
    start is kept in the checkpoint)."""
    fit = _fit_for(config, fit)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _git_commit()  # the code this run starts with (cached; recorded in the InferenceData)
    key = jax.random.PRNGKey(config.seed)
    k_map, k_svi, k_nuts, k_prior, k_pp = jax.random.split(key, 5)
    model = fit.model
    log = {}
    clock = time.perf_counter()

    def phase(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        log[f"seconds_{name}"] = round(now - clock, 2)
        clock = now
        if progress:
            print(f"  {name}: {log[f'seconds_{name}']:.1f} s", flush=True)

    ckpt = out_dir / "nuts_checkpoint.pkl"
    # A resumed NUTS run continues from its checkpoint, which keeps the run's start (mass
    # matrix, the MAP summary, the commit it began with): the MAP is not run again.
    resuming = resume and config.engine == "nuts" and ckpt.exists()
    saved_mass = None
    if config.engine == "nuts" and config.mass_init == "file" and not resuming:  # before any work
        saved_mass = load_inverse_mass(config.mass_file, model.potential()[1])
        log["mass_file_sha256"] = hashlib.sha256(Path(config.mass_file).read_bytes()).hexdigest()
        kept = out_dir / MASS_COPY
        if Path(config.mass_file).resolve() != kept.resolve():
            with atomic_path(kept) as tmp:
                shutil.copyfile(config.mass_file, tmp)
    map_result = None
    if not resuming:
        if config.engine == "nuts":  # XLA compiles the sampler while the MAP compiles and runs
            ChunkedNUTS.for_model(model, config, checkpoint_every).compile_ahead()
            phase("nuts_trace")
        map_result = run_map(model, config, k_map)
        phase("map")
        log["map_neg_log_density"] = map_result["neg_log_density"]
        log["map_failed_starts"] = map_result["failed_starts"]
        log["map_max_abs_gradient"] = map_result["max_abs_gradient"]  # ~0 at a mode
    commits = {"git_commit": _git_commit()}
    nuts = None
    if config.engine == "map":
        samples = {k: np.asarray(v)[None, None] for k, v in map_result["latent"].items()}
    elif config.engine == "svi":
        svi = run_svi(model, config, k_svi, init_values=map_result["latent"])
        log["svi_final_loss"] = float(svi["losses"][-1])
        samples = {k: np.asarray(v)[None] for k, v in svi["samples"].items()}
    else:
        inverse_mass = None
        if config.mass_init == "laplace" and not resuming:
            inverse_mass, eig = laplace_inverse_mass(model, map_result["unconstrained"])
            log["laplace_eigenvalues"] = [float(e) for e in eig]
            phase("laplace")
        if saved_mass is not None:
            inverse_mass = saved_mass
        nuts = run_nuts(
            model,
            config,
            k_nuts,
            init_unconstrained=None if resuming else map_result["unconstrained"],
            inverse_mass=inverse_mass,
            checkpoint=ckpt,
            resume=resume,
            progress=progress,
            chunk=checkpoint_every,
            start_record={"git_commit": commits["git_commit"], "log": dict(log)},
        )
        if nuts["resumed"]:  # the start's log and commit, as the first process recorded them
            start = nuts["start_record"]
            log.update({k: v for k, v in start["log"].items() if k not in log})
            log["resumed"] = True
            commits = {"git_commit": start["git_commit"], "resumed_git_commit": _git_commit()}
        samples = nuts["samples"]
        if nuts["pilot_ratio"]:  # pilot variance / starting variance, per latent
            log["pilot_variance_ratio"] = nuts["pilot_ratio"]
        log["nuts_seconds"] = nuts["seconds"]
        log["nuts_interrupted"] = nuts["interrupted"]
        log["nuts_draws_planned"] = config.draws
    phase(config.engine if config.engine != "map" else "map_done")
    idata = build_inference_data(fit, samples, nuts, k_prior, k_pp, log, commits=commits)
    phase("predictive")
    target = out_dir / "posterior.nc"
    with atomic_path(target) as tmp:
        idata.to_netcdf(str(tmp), engine="h5netcdf")
    run_config = config
    if config.engine == "nuts" and config.mass_init == "file" and (out_dir / MASS_COPY).is_file():
        run_config = config.replace(mass_file=MASS_COPY)  # the copy beside it (load_config)
    with atomic_path(out_dir / "config.toml") as tmp:
        tmp.write_text(run_config.to_toml())
    if nuts is not None and not nuts["interrupted"] and ckpt.exists():
        ckpt.unlink()
    return target


def _flatten(samples: dict) -> dict:
    """[chain, draw, ...] -> [chain*draw, ...] for Predictive."""
    return {k: np.reshape(v, (-1,) + np.shape(v)[2:]) for k, v in samples.items()}


def build_inference_data(
    fit: Fit,
    samples: dict,
    nuts: dict | None,
    k_prior,
    k_pp,
    log: dict,
    *,
    commits: dict | None = None,
):
    """InferenceData with posterior, sample_stats, log_likelihood, prior, prior/posterior
    predictive, observed_data, constant_data and predictions, named dims and provenance attrs.
    ``commits``: ``git_commit`` (the code the run started with; this process's by default)
    and, for a resumed run, ``resumed_git_commit``."""
    p, cfg, model = fit.problem, fit.config, fit.model
    chains, draws = next(iter(samples.values())).shape[:2]
    latents = _flatten({k: samples[k] for k in model.latent_names})
    predict = model.predictive()
    post_pred = predict(latents, k_pp)
    prior_pred = predict(model.sample_prior_latents(k_prior, cfg.prior_draws), k_prior)
    pred_post = np.asarray(post_pred["pred"])
    loglik = -0.5 * ((p.values - pred_post) / p.obs_sd) ** 2 - np.log(np.sqrt(2 * np.pi) * p.obs_sd)

    def by_chain(x):
        x = np.asarray(x)
        return x.reshape((chains, draws) + x.shape[1:])

    param_vars = (
        list(model.free) + [f"sigma_{n}" for n in model.sigma_names] + list(model.scale_names)
    )
    posterior = {n: by_chain(post_pred[n]) for n in param_vars}
    posterior["pred"] = by_chain(post_pred["pred"])
    posterior["n_failed"] = by_chain(post_pred["n_failed"])
    prior = {n: np.asarray(prior_pred[n])[None] for n in param_vars}
    prior["pred"] = np.asarray(prior_pred["pred"])[None]
    coords = {"measurement": list(p.measurement_ids)}
    dims = {"pred": ["measurement"], "obs": ["measurement"]}
    sample_stats = None
    if nuts is not None:
        ex = nuts["extra"]
        sample_stats = {
            "diverging": np.asarray(ex["diverging"]),
            "energy": np.asarray(ex["energy"]),
            "n_steps": np.asarray(ex["num_steps"]),
            "tree_depth": np.floor(np.log2(np.asarray(ex["num_steps"]) + 1)).astype(int),
            "acceptance_rate": np.asarray(ex["accept_prob"]),
            "step_size": np.asarray(ex["step_size"]),
            "lp": -np.asarray(ex["potential_energy"]),
        }
    table = p.table
    constant = {
        "obs_sd": np.asarray(p.obs_sd),
        "time_h": np.asarray(table["time_h"], float),
        "readout": np.asarray(table["observableId"], str),
        "condition": np.asarray(table["condition"], str),
        "dataset": np.asarray(table["datasetId"], str),
        "normalisation": np.asarray(table["normalisation"], str),
        "per_cell": np.asarray(p.m_per_cell, bool),
    }
    idata = az.from_dict(
        posterior=posterior,
        sample_stats=sample_stats,
        log_likelihood={"obs": by_chain(loglik)},
        prior=prior,
        prior_predictive={"obs": np.asarray(prior_pred["obs"])[None]},
        posterior_predictive={"obs": by_chain(post_pred["obs"])},
        observed_data={"obs": np.asarray(p.values)},
        constant_data=constant,
        coords=coords,
        dims=dims | {k: ["measurement"] for k in constant},
    )
    # Per-neuron effects at the posterior median: the distribution across virtual neurons.
    median = {
        n: float(np.median(posterior[n]))
        for n in param_vars
        if n in model.free or n.startswith("sigma_")
    }
    theta, sigma = model.theta_sigma({k: jnp.asarray(v) for k, v in median.items()})
    levels, ok, _ = model.predictor.levels(theta, sigma)
    levels = np.asarray(levels)
    solved_effect = _effects(p, levels)
    idata.add_groups(
        {"predictions": {"neuron_effect": solved_effect["effect"][None, None]}},
        coords={
            "neuron": np.arange(levels.shape[0]),
            "condition": solved_effect["conditions"],
            "time": solved_effect["times"],
            "readout": list(model.predictor.cp.pathway.observable_names),
        },
        dims={"neuron_effect": ["neuron", "condition", "time", "readout"]},
    )
    idata.attrs.update(
        {
            "engine": cfg.engine,
            "package_versions": json.dumps(_versions()),
            "device": str(jax.devices()[0]),
            "xla_flags": os.environ.get("XLA_FLAGS", ""),
            **(commits or {"git_commit": _git_commit()}),
            "data_checksums": json.dumps(_checksums()),
            "config": cfg.to_toml(),
            "excluded_measurements": json.dumps(list(cfg.exclude)),
            "free_parameters": json.dumps(list(model.free)),
            "sigma_parameters": json.dumps([f"sigma_{n}" for n in model.sigma_names]),
            "nuisance_parameters": json.dumps(list(model.scale_names)),
            "n_neurons": cfg.neurons,
            "max_tree_depth": cfg.max_tree_depth,
            "fit_log": json.dumps(log),
        }
    )
    return idata


def _effects(p: FitProblem, levels: np.ndarray) -> dict:
    """Per-neuron effect vs paired vehicle for each solved condition at its first time row."""
    from models.pathway import PATHWAY

    ratio = np.array([o.ratio for o in PATHWAY.observables])
    conds, effects = [], []
    times = p.times[0] if len(p.solved) else np.zeros(1)
    width = p.times.shape[1] if len(p.solved) else 1
    for j, i in enumerate(p.solved):
        veh = p.conditions[i].paired_vehicle()
        if veh not in p.conditions:
            continue
        v = p.conditions.index(veh)
        num, den = levels[:, i, :width], levels[:, v, :width]
        with np.errstate(divide="ignore", invalid="ignore"):
            eff = np.where(ratio, num / den, num - den)
        conds.append(p.conditions[i].spec)
        effects.append(eff)
        times = p.times[j]
    if not effects:
        return {
            "effect": np.zeros((levels.shape[0], 0, width, levels.shape[-1])),
            "conditions": [],
            "times": times,
        }
    # conditions have different time rows: keep each as measured; report the row times of
    # the last one only when all rows agree, else use column index as the time coordinate.
    rows = p.times
    same = np.allclose(rows, rows[0:1])
    return {
        "effect": np.stack(effects, axis=1),
        "conditions": conds,
        "times": rows[0] if same else np.arange(width, dtype=float),
    }
