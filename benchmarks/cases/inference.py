"""Case (c): NUTS and SVI end to end on the default data: ESS per second and the time to a
posterior that passes the diagnostics.

The fit is ``infer/configs/default.toml`` (or ``spec["config"]``) with the spec's sizes
replacing the file's (neurons, chains, warmup, draws, tree depth, SVI steps), built by
``infer.fit.Fit.create`` and run by ``infer.engines.run_svi`` / ``run_nuts``. Every time is
wall clock from the engine call to its return, compilation included (what a user waits for);
the NUTS record also counts gradient evaluations (leapfrog steps) so the sampler's efficiency
can be compared across machines (ESS per 1,000 gradients).

Diagnostics (NUTS): bulk ESS (arviz, rank-normalised) and split R-hat over every sampled
latent (free parameters on their standard-normal axis, between-neuron SDs, nuisance scales).
A posterior passes when max R-hat <= 1.01 and min bulk ESS >= 400; only then is a "time to a
diagnostics-passing posterior" reported, otherwise the record says it did not pass within
the run and gives the numbers it reached. SVI has no such diagnostic: its record gives the
ELBO trace and how far its posterior means sit from NUTS's, in NUTS posterior SDs.
"""

from __future__ import annotations

import time

import numpy as np

from ._common import error_record

RHAT_MAX = 1.01
ESS_MIN = 400
SIZE_KEYS = (
    "neurons",
    "chains",
    "chain_method",
    "warmup",
    "draws",
    "max_tree_depth",
    "svi_steps",
    "posterior_draws",
)


def _config(spec: dict):
    from infer.config import load_config

    config = load_config(spec.get("config", "infer/configs/default.toml"))
    changes = {k: spec[k] for k in SIZE_KEYS if k in spec}
    if "n_neurons" in spec:
        changes["neurons"] = spec["n_neurons"]
    if spec.get("device"):
        changes["device"] = spec["device"]
    return config.replace(**changes)


def _sizes(config) -> dict:
    return {k: getattr(config, k) for k in (*SIZE_KEYS, "solver", "rtol", "atol", "seed")}


def _latents(samples: dict, names) -> dict:
    return {k: np.asarray(samples[k]) for k in names if k in samples}


def _svi(spec: dict, config, fit) -> tuple[dict, dict]:
    import jax

    from infer.engines import run_svi

    t0 = time.perf_counter()
    out = run_svi(fit.model, config, jax.random.PRNGKey(spec.get("seed", 1)))
    seconds = time.perf_counter() - t0
    losses = np.asarray(out["losses"], float)
    tail = max(len(losses) // 10, 1)
    draws = _latents(out["samples"], fit.model.latent_names)
    rec = {
        "seconds": seconds,
        "seconds_note": "wall clock of run_svi, compilation included",
        "steps": int(len(losses)),
        "loss_first": float(losses[0]),
        "loss_final_mean": float(losses[-tail:].mean()),
        "loss_previous_mean": float(losses[-2 * tail : -tail].mean())
        if len(losses) >= 2 * tail
        else None,
        "loss_min": float(np.nanmin(losses)),
        "loss_finite": bool(np.all(np.isfinite(losses))),
        "guide": config.svi_guide,
        "posterior_draws": int(next(iter(draws.values())).shape[0]) if draws else 0,
    }
    return rec, draws


def _nuts(spec: dict, config, fit) -> tuple[dict, dict]:
    import arviz as az
    import jax

    from infer.engines import laplace_inverse_mass, load_inverse_mass, run_map, run_nuts

    t0 = time.perf_counter()
    start, inverse_mass, map_seconds = None, None, None
    if config.mass_init in ("laplace", "file"):
        # what `infer fit` does for this config: MAP (Adam + L-BFGS-B polish), NUTS from the
        # mode with the curvature there (laplace) or the saved matrix (file) as the dense
        # starting mass; its time is counted
        found = run_map(fit.model, config, jax.random.PRNGKey(spec.get("seed", 0) + 1))
        start = found["unconstrained"]
        if config.mass_init == "laplace":
            inverse_mass, _ = laplace_inverse_mass(fit.model, start)
        else:
            inverse_mass = load_inverse_mass(config.mass_file, fit.model.potential()[1])
        map_seconds = time.perf_counter() - t0
    out = run_nuts(
        fit.model,
        config,
        jax.random.PRNGKey(spec.get("seed", 0)),
        init_unconstrained=start,
        inverse_mass=inverse_mass,
        progress=False,
    )
    seconds = time.perf_counter() - t0
    draws = _latents(out["samples"], fit.model.latent_names)
    idata = az.from_dict(posterior=draws)
    ess = az.ess(idata, method="bulk")
    rhat = az.rhat(idata)
    ess_by = {k: float(ess[k].values) for k in draws}
    rhat_by = {k: float(rhat[k].values) for k in draws}
    min_ess = min(ess_by.values())
    max_rhat = max(rhat_by.values())
    extra = out["extra"]
    n_grad = int(np.sum(extra["num_steps"])) if "num_steps" in extra else None
    diverging = int(np.sum(extra["diverging"])) if "diverging" in extra else None
    passed = bool(max_rhat <= RHAT_MAX and min_ess >= ESS_MIN)
    rec = {
        "seconds": seconds,
        "engine_seconds": float(out["seconds"]),
        "seconds_note": "wall clock of run_nuts (warmup + draws, all chains), compilation "
        "included, plus MAP and the Laplace mass matrix when the config starts from them",
        "map_and_laplace_seconds": map_seconds,
        "n_draws": int(out["n_draws"]),
        "interrupted": bool(out["interrupted"]),
        "ess_bulk": ess_by,
        "rhat": rhat_by,
        "min_ess_bulk": min_ess,
        "min_ess_bulk_site": min(ess_by, key=ess_by.get),
        "max_rhat": max_rhat,
        "max_rhat_site": max(rhat_by, key=rhat_by.get),
        "min_ess_per_s": min_ess / seconds,
        "sampled_gradient_evaluations": n_grad,
        "min_ess_per_1000_gradients": 1000 * min_ess / n_grad if n_grad else None,
        "mean_tree_steps": float(np.mean(extra["num_steps"])) if "num_steps" in extra else None,
        "divergences": diverging,
        "mean_accept_prob": float(np.mean(extra["accept_prob"]))
        if "accept_prob" in extra
        else None,
        "criteria": {"rhat_max": RHAT_MAX, "ess_bulk_min": ESS_MIN},
        "diagnostics_passed": passed,
        "time_to_passing_posterior_s": seconds if passed else None,
        "verdict": (
            f"passed in {seconds:.0f} s"
            if passed
            else f"did not pass within this run ({config.warmup} warmup + {config.draws} draws x "
            f"{config.chains} chains): min bulk ESS {min_ess:.0f} (needs {ESS_MIN}), "
            f"max R-hat {max_rhat:.3f} (needs <= {RHAT_MAX})"
        ),
    }
    return rec, draws


def _agreement(svi: dict, nuts: dict) -> dict:
    """|mean_SVI - mean_NUTS| / sd_NUTS per latent (NUTS pooled over chains)."""
    out = {}
    for k, v in svi.items():
        if k not in nuts:
            continue
        ref = nuts[k].reshape(-1)
        sd = float(np.std(ref))
        out[k] = abs(float(np.mean(v)) - float(np.mean(ref))) / sd if sd > 0 else None
    return out


def run(spec: dict):
    engines = list(spec.get("engines", ("svi", "nuts")))
    base = {"case": "inference", "dtype": spec.get("dtype", "float64")}
    try:
        from infer.engines import run_nuts, run_svi  # noqa: F401
        from infer.fit import Fit
    except ImportError as err:
        yield base | {
            "engines": engines,
            "status": "skipped",
            "reason": f"not available yet: {err}",
        }
        return
    try:
        config = _config(spec)
    except Exception as err:  # noqa: BLE001
        yield error_record(base | {"engines": engines}, err)
        return
    base |= {
        "config": spec.get("config", "infer/configs/default.toml"),
        "n_neurons": config.neurons,
        "fit": _sizes(config),
    }
    t0 = time.perf_counter()
    try:
        fit = Fit.create(config)
    except Exception as err:  # noqa: BLE001
        yield error_record(base | {"engines": engines}, err)
        return
    base |= {
        "setup_s": time.perf_counter() - t0,
        "n_latents": len(fit.model.latent_names),
        "n_measurements": int(fit.problem.n_measurements),
        "n_constraints": len(fit.problem.constraint_ids),
        "n_conditions": len(fit.problem.conditions),
    }
    draws: dict[str, dict] = {}
    for engine in engines:
        rec = base | {"engine": engine}
        try:
            if engine == "svi":
                result, draws["svi"] = _svi(spec, config, fit)
            elif engine == "nuts":
                result, draws["nuts"] = _nuts(spec, config, fit)
                if "svi" in draws:
                    agree = _agreement(draws["svi"], draws["nuts"])
                    vals = [v for v in agree.values() if v is not None]
                    result["svi_mean_offset_in_nuts_sd"] = agree
                    result["svi_mean_offset_in_nuts_sd_max"] = max(vals) if vals else None
            else:
                raise ValueError(f"unknown engine {engine!r}")
        except Exception as err:  # noqa: BLE001
            yield error_record(rec, err)
            continue
        yield rec | {"status": "ok"} | result
