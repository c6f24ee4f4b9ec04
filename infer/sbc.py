"""Simulation-based calibration (Talts et al. 2018) and parameter recovery.

Both draw "true" latent values, simulate a dataset from the population model's own likelihood
(the same measurements, conditions, times, SDs and virtual neurons as a real fit), and fit each
simulated dataset with NUTS. Many datasets are fitted in ONE compiled program: the potential
takes the observed values as an argument and numpyro's functional NUTS kernel is vmapped over
datasets (each dataset has its own step-size and mass-matrix adaptation).

SBC needs a generative likelihood, so the model runs with ``generative_only=True`` (the
one-sided spread bound and the soft qualitative constraints have no simulator and are left
out). Truth draws whose simulation fails are redrawn; the calibrated prior is then the prior
restricted to solvable parameters, and the number redrawn is reported.

Rank statistic: for each latent (on its constrained scale) the number of thinned posterior
draws below the truth, in 0..L. Under calibration the ranks are uniform; the test is a chi-square
over ``bins`` equal-width bins per latent, with a Bonferroni-corrected verdict over latents.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from scipy import stats

from .config import FitConfig
from .fit import Fit


@dataclasses.dataclass(frozen=True, kw_only=True)
class SBCSettings:
    """The reduced setting of the calibration run (documented in docs/validation/sbc/sbc.md)."""

    datasets: tuple[str, ...] = ("dijkhuizen2005_akt", "wolfe2016_fig5ac")
    free: tuple[str, ...] = ("K_T", "bdnf_ref_nM", "g_FG")
    neurons: int = 2
    simulations: int = 100
    # Warm-up 300 and depth 6: with 100 and 5 (the settings until 2026-12-07)
    # chains had not converged even when started at the mode (posterior means up to 40
    # posterior SDs from the truth, trees at the depth limit); 300 and 6 fixed the 8 worst
    # datasets (docs/inference_notes.md, "Simulation-based calibration").
    warmup: int = 300
    draws: int = 98  # with thin 2: L = 49 draws, 50 possible ranks, 10 bins of 5
    thin: int = 2  # L = draws / thin posterior draws per dataset enter the rank
    max_tree_depth: int = 6
    target_accept: float = 0.85
    # Adam steps from the prior medians on each dataset's own potential before its NUTS
    # warm-up (the fit's MAP-then-NUTS workflow, in the compiled program). Without them 16 of
    # 100 chains stayed at the prior medians (potential there 8e4-8e6; step sizes adapted to
    # about 0.002); 200 steps did not reach the mode of every dataset, 1,000 did.
    init_steps: int = 1000
    init_learning_rate: float = 0.05
    # datasets per batch (the last one is padded; progress is saved after each). Every
    # transition of a vmapped program costs its largest tree, so small programs waste less:
    # with K > 1 JAX devices (on CPU: 'python -m infer sbc --devices K' forces K host
    # devices) a batch is fitted in 2K pieces, each device taking the next piece when free.
    batch: int = 8
    bins: int = 10
    seed: int = 0
    rtol: float = 1e-5
    atol: float = 1e-8

    def __post_init__(self) -> None:
        ints = ("neurons", "simulations", "draws", "thin", "batch", "bins", "max_tree_depth")
        for key in ints:
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"SBCSettings.{key} must be a positive integer, got {value!r}")
        for key in ("warmup", "init_steps"):
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"SBCSettings.{key} must be a non-negative integer, got {value!r}")
        if not self.init_learning_rate > 0:
            raise ValueError(
                f"SBCSettings.init_learning_rate must be positive, got {self.init_learning_rate}"
            )
        if self.draws % self.thin:
            raise ValueError(f"SBCSettings.draws ({self.draws}) must be a multiple of thin")
        if (self.draws // self.thin + 1) % self.bins:
            raise ValueError(
                f"SBCSettings: the {self.draws // self.thin + 1} possible ranks (draws/thin + 1) "
                f"must split into bins={self.bins} equal bins"
            )

    @property
    def n_ranks(self) -> int:
        return self.draws // self.thin + 1

    def fit_config(self) -> FitConfig:
        return FitConfig(
            neurons=self.neurons,
            seed=self.seed,
            free=self.free,
            datasets=self.datasets,
            include_constraints=False,
            solver="tsit5",
            rtol=self.rtol,
            atol=self.atol,
            max_tree_depth=self.max_tree_depth,
            target_accept=self.target_accept,
        )


def generative_fit(config: FitConfig) -> Fit:
    """A Fit whose model has only simulable likelihood terms."""
    return Fit.create(config, generative_only=True)


class BatchedNUTS:
    """NUTS over many datasets at once: ``run(obs [S, M], key) -> draws``, compiled once per
    (model, batch size, warmup, draws)."""

    def __init__(
        self,
        model,
        *,
        warmup: int,
        draws: int,
        thin: int = 1,
        max_tree_depth: int = 6,
        target_accept: float = 0.85,
        init_steps: int = 0,
        init_learning_rate: float = 0.05,
    ):
        from numpyro.infer.hmc import hmc

        self.model = model
        potential_gen, z0 = model.potential_gen()
        init_kernel, sample_kernel = hmc(potential_fn_gen=potential_gen, algo="NUTS")
        self.names = tuple(z0)
        total = warmup + draws

        def one(obs, key):
            start, start_value = descend(potential_gen(obs), z0, init_steps, init_learning_rate)
            state = init_kernel(
                start,
                warmup,
                target_accept_prob=target_accept,
                max_tree_depth=max_tree_depth,
                model_args=(obs,),
                rng_key=key,
            )

            def step(state, _):
                state = sample_kernel(state, model_args=(obs,))
                return state, (state.z, state.diverging, state.num_steps, state.accept_prob)

            last, (zs, div, n_steps, acc) = jax.lax.scan(step, state, None, length=total)
            keep = slice(warmup + thin - 1, total, thin)
            return {
                "z": jax.tree_util.tree_map(lambda a: a[keep], zs),
                "start_potential": start_value,
                "step_size": last.adapt_state.step_size,
                "diverging": jnp.sum(div[warmup:]),
                "mean_steps": jnp.mean(n_steps[warmup:]),
                "max_steps": jnp.max(n_steps[warmup:]),
                "accept": jnp.mean(acc[warmup:]),
            }

        self._run = jax.jit(jax.vmap(one))

    def run(self, obs, key) -> dict:
        """Fit every dataset of ``obs`` with the keys ``jax.random.split(key, len(obs))``."""
        return self.run_keys(obs, jax.random.split(key, jnp.shape(obs)[0]))

    def run_keys(self, obs, keys, device=None) -> dict:
        """Fit dataset i of ``obs`` with ``keys[i]``, on ``device`` (default: JAX's). Each
        dataset's chain depends only on its data and key, not on the other datasets of the
        call (up to the rounding of a vector of another width)."""
        obs, keys = jnp.asarray(obs), jnp.asarray(keys)
        if device is not None:
            obs, keys = jax.device_put((obs, keys), device)
        out = jax.device_get(self._run(obs, keys))
        latent = self.model.constrain(out.pop("z"))  # vectorised bijections
        return {"latent": {k: np.asarray(v) for k, v in latent.items()}, **out}


def in_order_on_devices(run, tasks: list, devices) -> object:
    """Yield ``run(task, device)`` for each task, in task order, with one worker thread per
    device taking the next task as soon as it is free (no device waits for another's slow
    task, as the devices of one partitioned program do). After an error, or when the caller
    stops iterating, the workers take no new task; the error is raised at its task's turn."""
    import queue
    import threading

    todo: queue.Queue = queue.Queue()
    for item in enumerate(tasks):
        todo.put(item)
    done: dict = {}
    cond = threading.Condition()
    stop = threading.Event()

    def worker(device) -> None:
        while not stop.is_set():
            try:
                i, task = todo.get_nowait()
            except queue.Empty:
                return
            try:
                result = (True, run(task, device))
            except BaseException as err:  # noqa: BLE001 - handed to the caller in order
                result = (False, err)
                stop.set()
            with cond:
                done[i] = result
                cond.notify_all()

    for device in devices:
        # daemon: an interrupted caller does not wait for a running task at exit
        threading.Thread(target=worker, args=(device,), daemon=True).start()
    try:
        for i in range(len(tasks)):
            with cond:
                while i not in done:
                    cond.wait(timeout=0.5)  # a timeout so that Ctrl-C reaches this thread
                ok, result = done.pop(i)
            if not ok:
                raise result
            yield result
    finally:
        stop.set()


def descend(potential, z0: dict, steps: int, learning_rate: float):
    """``steps`` Adam steps down ``potential`` from ``z0``, traceable (vmapped over datasets in
    :class:`BatchedNUTS`). A step to a non-finite value or gradient returns to the best point
    so far; returns (the best point visited, its potential)."""
    import optax

    value_and_grad = jax.value_and_grad(potential)
    value0 = potential(z0)
    if steps == 0:
        return z0, value0
    opt = optax.adam(learning_rate)

    def body(carry, _):
        z, opt_state, best, best_value = carry
        value, grad = value_and_grad(z)
        ok = jnp.isfinite(value) & jnp.all(
            jnp.stack([jnp.all(jnp.isfinite(g)) for g in jax.tree_util.tree_leaves(grad)])
        )
        better = ok & (value < best_value)
        best = jax.tree_util.tree_map(lambda a, b: jnp.where(better, a, b), z, best)
        best_value = jnp.where(better, value, best_value)
        grad = jax.tree_util.tree_map(lambda g: jnp.where(ok, g, 0.0), grad)
        updates, new_state = opt.update(grad, opt_state, z)
        z = jax.tree_util.tree_map(
            lambda moved, b: jnp.where(ok, moved, b), optax.apply_updates(z, updates), best
        )
        opt_state = jax.tree_util.tree_map(lambda n, o: jnp.where(ok, n, o), new_state, opt_state)
        return (z, opt_state, best, best_value), None

    start_value = jnp.where(jnp.isfinite(value0), value0, jnp.inf)
    carry = (z0, opt.init(z0), z0, start_value)
    (_, _, best, best_value), _ = jax.lax.scan(body, carry, None, length=steps)
    # the point after the last step is never evaluated: return the best one that was
    return best, best_value


def simulate_datasets(model, key, n: int, *, max_rounds: int = 20) -> dict:
    """n truth draws from the prior with a dataset simulated from each (failed solves are
    redrawn). Returns ``{"latent": {name: [n]}, "obs": [n, M], "redrawn": int}``."""
    predict = model.predictive()
    latents, obs, redrawn = [], [], 0
    have = 0
    for round_ in range(max_rounds):
        k_prior, k_sim, key = jax.random.split(jax.random.fold_in(key, round_), 3)
        want = n - have
        draw = model.sample_prior_latents(k_prior, want)
        out = predict(draw, k_sim)
        good = (np.asarray(out["n_failed"]) == 0) & np.all(np.isfinite(out["obs"]), axis=1)
        redrawn += int((~good).sum())
        latents.append({k: np.asarray(v)[good] for k, v in draw.items()})
        obs.append(np.asarray(out["obs"])[good])
        have += int(good.sum())
        if have >= n:
            break
    if have < n:
        raise RuntimeError(
            f"only {have} of {n} prior draws could be simulated after {max_rounds} rounds "
            f"({redrawn} failed); tighten the priors or the reduced setting"
        )
    latent = {k: np.concatenate([d[k] for d in latents])[:n] for k in latents[0]}
    return {"latent": latent, "obs": np.concatenate(obs)[:n], "redrawn": redrawn}


def ranks(truth: dict, draws: dict) -> dict:
    """Rank of each truth among its dataset's posterior draws: ``{name: [S]}`` in 0..L."""
    return {
        k: np.sum(np.asarray(draws[k]) < np.asarray(truth[k])[:, None], axis=1).astype(int)
        for k in truth
    }


def lowest_ess(draws: dict) -> np.ndarray:
    """Per dataset, the lowest bulk ESS over latents of its one chain of draws (``{name: [S,
    L]}``). Far below L, the draws are autocorrelated and the rank is over-dispersed (a stuck
    chain gives rank 0 or L)."""
    import arviz as az

    def one(chain) -> float:
        chain = np.asarray(chain, dtype=float)
        if np.ptp(chain) == 0.0:  # a chain that never moved (arviz reports its length)
            return 0.0
        ess = float(az.ess(chain[None, :], method="bulk"))
        return ess if np.isfinite(ess) else 0.0

    names = list(draws)
    return np.array([min(one(draws[k][i]) for k in names) for i in range(len(draws[names[0]]))])


def uniformity(rank: np.ndarray, n_ranks: int, bins: int) -> dict:
    """Chi-square test of uniform ranks over ``bins`` equal bins (n_ranks divisible by bins)."""
    counts = np.bincount(np.asarray(rank) * bins // n_ranks, minlength=bins)
    expected = len(rank) / bins
    chi2 = float(np.sum((counts - expected) ** 2 / expected))
    return {
        "counts": counts.tolist(),
        "chi2": chi2,
        "p_value": float(stats.chi2.sf(chi2, bins - 1)),
    }


def run_sbc(
    settings: SBCSettings,
    *,
    progress: bool = True,
    fit: Fit | None = None,
    progress_file: str | Path | None = None,
    fit_more: bool = True,
) -> dict:
    """The whole calibration: simulate, fit every dataset, rank, test. Returns a JSON-able
    dict (settings, timings, per-latent ranks and tests, sampler diagnostics).

    ``progress_file``: after each batch the datasets fitted so far are saved there (a pickle,
    replaced atomically), and a run that finds the file continues after its last batch (the
    settings must be the same; each batch's key depends only on the seed and the batch, so
    the result equals an uninterrupted run's). ``fit_more=False`` fits nothing and returns the
    result of the datasets saved so far, marked ``partial`` when they are not all."""
    fit = fit or generative_fit(settings.fit_config())
    model = fit.model
    key = jax.random.PRNGKey(settings.seed)
    k_sim, k_fit = jax.random.split(key)
    t0 = time.perf_counter()
    sim = simulate_datasets(model, k_sim, settings.simulations)
    t_sim = time.perf_counter() - t0
    saved = _load_progress(progress_file, settings)
    parts, t_nuts = saved["parts"], saved["seconds_nuts"]
    starts = list(range(0, settings.simulations, settings.batch))[len(parts) :]
    if progress and parts:
        done = sum(len(p["diverging"]) for p in parts)
        print(f"  SBC: {done} datasets already fitted ({progress_file})", flush=True)
    if fit_more and starts:
        nuts = BatchedNUTS(
            model,
            warmup=settings.warmup,
            draws=settings.draws,
            thin=settings.thin,
            max_tree_depth=settings.max_tree_depth,
            target_accept=settings.target_accept,
            init_steps=settings.init_steps,
            init_learning_rate=settings.init_learning_rate,
        )
        # Each batch's datasets (padded to settings.batch) and keys are those of the run
        # before (fold_in(k_fit, start), split per dataset), so the result does not depend on
        # the scheduling. With several devices (--devices K) a batch is cut into 2K pieces
        # and each device's worker takes the next piece when it is free: a piece costs its
        # own longest trees, and a device never waits for another's.
        devices = jax.devices()
        pieces = settings.batch // (2 * len(devices)) if len(devices) > 1 else settings.batch
        pieces = pieces if pieces and settings.batch % pieces == 0 else settings.batch
        tasks = []
        for start in starts:
            obs = sim["obs"][start : start + settings.batch]
            padded = np.concatenate([obs, np.repeat(obs[-1:], settings.batch - len(obs), 0)])
            keys = jax.random.split(jax.random.fold_in(k_fit, start), settings.batch)
            for lo in range(0, settings.batch, pieces):
                tasks.append((padded[lo : lo + pieces], keys[lo : lo + pieces]))
        results = in_order_on_devices(
            lambda task, device: nuts.run_keys(*task, device), tasks, devices
        )
        per_batch = settings.batch // pieces
        t1 = time.perf_counter()
        try:
            for start in starts:
                m = min(settings.batch, settings.simulations - start)  # datasets, not padding
                outs = [next(results) for _ in range(per_batch)]
                out = jax.tree_util.tree_map(lambda *a: np.concatenate(a), *outs)
                parts.append(jax.tree_util.tree_map(lambda a, m=m: np.asarray(a)[:m], out))
                t_now = time.perf_counter()
                t_nuts, t1 = t_nuts + t_now - t1, t_now
                if progress_file is not None:
                    _save_progress(progress_file, settings, parts, t_nuts)
                if progress:
                    print(
                        f"  SBC datasets {start + m}/{settings.simulations}: {t_nuts:.0f} s",
                        flush=True,
                    )
        finally:
            results.close()  # the workers take no new piece
    if not parts:
        raise ValueError(
            f"no dataset has been fitted yet{f' ({progress_file})' if progress_file else ''}: "
            "run the calibration first"
        )
    return summarise(settings, fit, sim, parts, t_sim, t_nuts)


def _load_progress(path, settings: SBCSettings) -> dict:
    import pickle

    if path is None or not Path(path).exists():
        return {"parts": [], "seconds_nuts": 0.0}
    try:
        saved = pickle.loads(Path(path).read_bytes())
    except Exception as err:  # noqa: BLE001 (any unreadable file gets the same advice)
        raise ValueError(f"{path}: not a readable SBC progress file ({err}); delete it") from None
    if saved.get("settings") != dataclasses.asdict(settings):
        raise ValueError(
            f"{path} holds datasets fitted with other settings ({saved.get('settings')}); "
            "rerun with those settings, or delete the file to start afresh"
        )
    return saved


def _save_progress(path, settings: SBCSettings, parts: list, seconds_nuts: float) -> None:
    import pickle

    from ._io import atomic_path

    state = {"settings": dataclasses.asdict(settings), "parts": parts, "seconds_nuts": seconds_nuts}
    with atomic_path(path) as tmp:
        tmp.write_bytes(pickle.dumps(state))


def summarise(settings: SBCSettings, fit: Fit, sim: dict, parts: list, t_sim, t_nuts) -> dict:
    """Ranks, tests and sampler diagnostics of the datasets fitted (``parts``: one dict per
    batch from :meth:`BatchedNUTS.run`). Fewer datasets than ``settings.simulations``: the
    result is marked ``partial`` and tests only those."""
    draws = {k: np.concatenate([p["latent"][k] for p in parts]) for k in parts[0]["latent"]}
    n_done = len(next(iter(draws.values())))
    truth = {k: np.asarray(v)[:n_done] for k, v in sim["latent"].items()}
    diag = {
        k: np.concatenate([np.atleast_1d(p[k]) for p in parts])
        for k in ("diverging", "mean_steps", "max_steps", "accept", "step_size", "start_potential")
    }
    ess = lowest_ess(draws)
    rk = ranks(truth, draws)
    tests = {k: uniformity(v, settings.n_ranks, settings.bins) for k, v in rk.items()}
    alpha = 0.01
    threshold = alpha / len(tests)
    return {
        "settings": dataclasses.asdict(settings),
        "partial": n_done < settings.simulations,
        "latents": list(rk),
        "measurements": list(fit.problem.measurement_ids),
        "n_solved_conditions": int(len(fit.problem.solved)),
        "seconds_simulate": round(t_sim, 1),
        "seconds_nuts": round(t_nuts, 1),
        "redrawn_truths": sim["redrawn"],
        "ranks": {k: v.tolist() for k, v in rk.items()},
        "tests": tests,
        "alpha": alpha,
        "bonferroni_threshold": threshold,
        "calibrated": bool(all(t["p_value"] > threshold for t in tests.values())),
        "divergent_transitions": int(diag["diverging"].sum()),
        "datasets_with_divergences": int((diag["diverging"] > 0).sum()),
        "mean_leapfrog_steps": float(diag["mean_steps"].mean()),
        "max_leapfrog_steps": int(diag["max_steps"].max()),
        "mean_accept": float(diag["accept"].mean()),
        # per dataset: its adapted step size, the potential where its warm-up began (after
        # the Adam steps) and the lowest single-chain bulk ESS of its thinned draws
        "step_size": diag["step_size"].tolist(),
        "start_potential": diag["start_potential"].tolist(),
        "lowest_ess": ess.tolist(),
        "truth": {k: np.asarray(v).tolist() for k, v in truth.items()},
        "posterior_mean": {k: v.mean(axis=1).tolist() for k, v in draws.items()},
        "posterior_sd": {k: v.std(axis=1).tolist() for k, v in draws.items()},
    }
