"""Inference engines: optax multi-start MAP, SVI with optax, NUTS (resumable).

All three work on the same NumPyro model. MAP initialises SVI and NUTS. NUTS runs in chunks;
after each chunk the draws and the sampler state are checkpointed, so an interrupted run keeps
what it finished and ``resume=True`` continues from the last chunk.
"""

from __future__ import annotations

import pickle
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from numpyro.infer import MCMC, NUTS, SVI, Trace_ELBO, init_to_value
from numpyro.infer.autoguide import AutoLowRankMultivariateNormal, AutoNormal

from ._io import atomic_path
from .config import FitConfig

MAP_JITTER = 0.3  # SD of the jitter of MAP starts around the prior medians (unconstrained)


def run_map(model, config: FitConfig, key) -> dict:
    """Multi-start MAP in the unconstrained space with optax Adam.

    Starts are prior draws (numpyro's ``init_to_sample``-like initialisation via
    ``initialize_model``); the best finite optimum wins. Returns constrained latent values,
    the objective trace of each start and the number of starts that ended non-finite.
    """
    keys = jax.random.split(key, config.map_starts)
    _, z0, postprocess, value_and_grad = model.potential()
    opt = optax.adam(config.map_learning_rate)

    best, best_val, traces, failed = None, np.inf, [], 0
    for i, k in enumerate(keys):
        # start 0 at the prior medians, the others jittered around them (unconstrained space)
        leaves, treedef = jax.tree_util.tree_flatten(z0)
        noise = jax.random.split(k, len(leaves))
        params = jax.tree_util.tree_unflatten(
            treedef,
            [
                x + (0.0 if i == 0 else MAP_JITTER) * jax.random.normal(n, jnp.shape(x))
                for x, n in zip(leaves, noise, strict=True)
            ],
        )
        state = opt.init(params)
        trace = []
        for _ in range(config.map_steps):
            val, grad = value_and_grad(params)
            if not np.isfinite(float(val)):
                break
            updates, state = opt.update(grad, state, params)
            params = optax.apply_updates(params, updates)
            trace.append(float(val))
        val = float(value_and_grad(params)[0])
        traces.append(trace)
        if not np.isfinite(val):
            failed += 1
            continue
        if val < best_val:
            best, best_val = params, val
    if best is None:
        raise RuntimeError(
            "every MAP start ended at a non-finite log density; check the data and priors"
        )
    latent = postprocess(best)
    return {
        "latent": latent,
        "unconstrained": best,
        "neg_log_density": best_val,
        "traces": traces,
        "failed_starts": failed,
    }


def run_svi(model, config: FitConfig, key, init_values: dict | None = None) -> dict:
    """SVI with an AutoNormal (or low-rank MVN) guide and optax Adam."""
    init = init_to_value(values=init_values or model.median_values())
    guide_cls = AutoNormal if config.svi_guide == "normal" else AutoLowRankMultivariateNormal
    guide = guide_cls(model, init_loc_fn=init)
    svi = SVI(model, guide, optax.adam(config.svi_learning_rate), Trace_ELBO())
    k_run, k_draw = jax.random.split(key)
    result = svi.run(k_run, config.svi_steps, progress_bar=False)
    samples = guide.sample_posterior(k_draw, result.params, sample_shape=(config.posterior_draws,))
    return {"samples": samples, "losses": np.asarray(result.losses), "params": result.params}


def run_nuts(
    model,
    config: FitConfig,
    key,
    *,
    init_unconstrained: dict | None = None,
    checkpoint: Path | None = None,
    resume: bool = False,
    chunk: int = 50,
    progress: bool = True,
) -> dict:
    """NUTS with several chains, checkpointed every ``chunk`` draws.

    Returns grouped samples (``{site: [chain, draw, ...]}``), extra fields (diverging, energy,
    tree depth via num_steps) and the wall time. On KeyboardInterrupt the draws finished so far
    are returned with ``interrupted=True``.
    """
    potential, z0, constrain, _ = model.potential()
    kernel = NUTS(
        potential_fn=potential,
        max_tree_depth=config.max_tree_depth,
        target_accept_prob=config.target_accept,
    )
    mcmc = MCMC(
        kernel,
        num_warmup=config.warmup,
        num_samples=min(chunk, config.draws),
        num_chains=config.chains,
        chain_method=config.chain_method,
        progress_bar=progress,
    )
    start = z0 if init_unconstrained is None else init_unconstrained
    if config.chains > 1:
        start = jax.tree_util.tree_map(
            lambda x: jnp.broadcast_to(x, (config.chains, *jnp.shape(x))), start
        )
    extra = ("diverging", "energy", "num_steps", "accept_prob", "potential_energy")
    done: list[dict] = []
    n_done = 0
    t0 = time.perf_counter()
    interrupted = False
    if resume and checkpoint is not None and checkpoint.exists():
        with open(checkpoint, "rb") as fh:
            saved = pickle.load(fh)
        done, n_done = saved["chunks"], saved["n_done"]
        mcmc.post_warmup_state = saved["state"]
    try:
        while n_done < config.draws:
            size = min(chunk, config.draws - n_done)
            mcmc.num_samples = size
            if mcmc.post_warmup_state is None:
                mcmc.run(key, init_params=start, extra_fields=extra)
            else:
                mcmc.run(mcmc.post_warmup_state.rng_key, init_params=start, extra_fields=extra)
            mcmc.post_warmup_state = mcmc.last_state
            samples = jax.device_get(mcmc.get_samples(group_by_chain=True))
            fields = jax.device_get(mcmc.get_extra_fields(group_by_chain=True))
            done.append({"samples": samples, "extra": fields})
            n_done += size
            if checkpoint is not None:
                with atomic_path(checkpoint) as tmp, open(tmp, "wb") as fh:
                    pickle.dump(
                        {
                            "chunks": done,
                            "n_done": n_done,
                            "state": jax.device_get(mcmc.last_state),
                        },
                        fh,
                    )
    except KeyboardInterrupt:
        interrupted = True
    if not done:
        raise RuntimeError("NUTS was interrupted before finishing a chunk of draws")

    def cat(key_):
        keys = done[0][key_].keys()
        return {k: np.concatenate([np.asarray(c[key_][k]) for c in done], axis=1) for k in keys}

    unconstrained = cat("samples")
    samples = {k: np.asarray(v) for k, v in constrain(unconstrained).items()}
    return {
        "samples": samples,
        "extra": cat("extra"),
        "n_draws": n_done,
        "interrupted": interrupted,
        "seconds": time.perf_counter() - t0,
    }


def log_density_fn(model):
    """(potential_fn, initial unconstrained params) of the model; for benchmarks and tests."""
    potential, z0, _, _ = model.potential()
    return potential, z0


def finite_everywhere(tree) -> bool:
    return bool(all(jnp.all(jnp.isfinite(x)) for x in jax.tree_util.tree_leaves(tree)))
