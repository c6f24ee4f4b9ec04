"""Inference engines: optax multi-start MAP, SVI with optax, NUTS (resumable).

All three work on the same NumPyro model. MAP initialises SVI and NUTS. NUTS runs in blocks of
transitions through one compiled program (numpyro's functional NUTS kernel); after each block
the draws and the sampler state are checkpointed, so an interrupted run keeps what it finished
and ``resume=True`` continues from the last block.
"""

from __future__ import annotations

import contextlib
import functools
import pickle
import signal
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree
from numpyro.infer import SVI, Trace_ELBO, init_to_value
from numpyro.infer.autoguide import AutoLowRankMultivariateNormal, AutoNormal
from numpyro.infer.util import ParamInfo

from ._io import atomic_path
from ._optim import fd_hessian, polish
from .config import FitConfig

MAP_JITTER = 0.3  # SD of the jitter of MAP starts around the prior medians (unconstrained)


def run_map(model, config: FitConfig, key) -> dict:
    """Multi-start MAP in the unconstrained space: optax Adam, then an L-BFGS polish.

    Start 0 is the prior medians, the others are jittered around them. Each start runs
    ``map_steps`` Adam steps, then at most ``map_polish_steps`` L-BFGS-B iterations (scipy, on
    the same compiled value and gradient): Adam gets near a mode quickly but does not converge
    on the ill-conditioned posteriors of this model, and a Laplace mass matrix needs a point
    where the curvature is that of the mode. The best finite optimum wins. Returns constrained
    latent values, the objective trace of each start (Adam, then polish), the number of starts
    that ended non-finite, and the largest gradient component at the winner.
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
        if np.isfinite(val) and config.map_polish_steps:
            params, val = _polish_map(value_and_grad, params, config.map_polish_steps, trace)
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
    grad = ravel_pytree(value_and_grad(best)[1])[0]
    return {
        "latent": latent,
        "unconstrained": best,
        "neg_log_density": best_val,
        "traces": traces,
        "failed_starts": failed,
        "max_abs_gradient": float(jnp.max(jnp.abs(grad))),
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


def _flat_value_grad(value_and_grad, unravel, dtype):
    """A pytree ``value_and_grad`` as a function of one flat float64 numpy vector."""

    def value_grad(x):
        val, grad = value_and_grad(unravel(jnp.asarray(x, dtype)))
        return float(val), np.asarray(ravel_pytree(grad)[0], dtype=float)

    return value_grad


def _polish_map(value_and_grad, params, max_iter: int, trace: list) -> tuple[dict, float]:
    """L-BFGS-B from an Adam end point (see :func:`infer._optim.polish`)."""
    x0, unravel = ravel_pytree(params)
    value_grad = _flat_value_grad(value_and_grad, unravel, x0.dtype)
    x, val, _ = polish(value_grad, np.asarray(x0), max_iter, trace=trace)
    return unravel(jnp.asarray(x, x0.dtype)), val


def laplace_inverse_mass(model, unconstrained: dict, *, step: float = 1e-3, floor: float = 0.5):
    """Starting inverse mass matrix for dense-mass NUTS from the curvature at a MAP point.

    The Hessian of the potential in the unconstrained latents (ravel_pytree order) is taken by
    central differences of the compiled gradient (2 x n gradient calls), symmetrised, and its
    eigenvalues replaced by ``max(|lambda|, floor)``: an optimiser's end point need not be an
    exact mode, and a direction of negative or near-zero curvature must not get an unbounded
    momentum scale. Returns (inverse mass [n, n], the Hessian's raw eigenvalues). Only a
    preconditioner: the sampled distribution does not depend on it, and warm-up keeps
    adapting it.
    """
    _, _, _, value_and_grad = model.potential()
    x0, unravel = ravel_pytree(unconstrained)
    value_grad = _flat_value_grad(value_and_grad, unravel, x0.dtype)
    try:
        hess, _ = fd_hessian(lambda x: value_grad(x)[1], np.asarray(x0), step)
    except FloatingPointError:
        raise RuntimeError(
            "the Hessian at the MAP point is not finite (a solve failed within "
            f"{step} of it); use engine.mass_init = 'identity'"
        ) from None
    eig, vec = np.linalg.eigh(hess)
    inverse = (vec / np.maximum(np.abs(eig), floor)) @ vec.T
    return 0.5 * (inverse + inverse.T), eig


CHECKPOINT_FORMAT = 7  # bump when the checkpoint's layout changes (7: the run's start record)


def load_inverse_mass(path, z0: dict) -> np.ndarray:
    """A saved dense inverse mass matrix (``engine.mass_init = "file"``), checked against the
    sampler's latents.

    The file is an ``.npz`` with ``inverse_mass`` ([n, n], symmetric positive definite, over
    the unconstrained latents in ``ravel_pytree`` order, i.e. sorted names) and ``latents``
    (those names); ``source`` (how it was made) is optional. ``z0``: the sampler's latents
    (name -> value). Every problem is reported with the file and the fix; a matrix for other
    latents is never used."""
    path = Path(path)
    fix = "rewrite it for this fit's latents, or set engine.mass_init = 'laplace'"
    if not path.is_file():
        raise FileNotFoundError(f"engine.mass_file {path} does not exist ({fix})")
    try:
        with np.load(path, allow_pickle=False) as f:
            inv = np.asarray(f["inverse_mass"], dtype=float)
            names = [str(n) for n in f["latents"]]
    except (KeyError, ValueError, OSError) as err:
        raise ValueError(
            f"engine.mass_file {path}: not an .npz with 'inverse_mass' and 'latents' ({err})"
        ) from None
    latents = sorted(z0)
    n = sum(int(np.size(v)) for v in z0.values())
    if names != latents:
        missing = sorted(set(latents) - set(names))
        extra = sorted(set(names) - set(latents))
        raise ValueError(
            f"engine.mass_file {path} is for other latents (missing {missing}, extra {extra}, "
            f"or another order); {fix}"
        )
    if inv.shape != (n, n) or not np.all(np.isfinite(inv)):
        raise ValueError(
            f"engine.mass_file {path}: inverse_mass must be a finite {n}x{n} matrix, got shape "
            f"{inv.shape}"
        )
    if not np.allclose(inv, inv.T, rtol=1e-10, atol=0) or np.linalg.eigvalsh(inv)[0] <= 0:
        raise ValueError(
            f"engine.mass_file {path}: inverse_mass is not symmetric positive definite"
        )
    return inv


_RECORDED = ("diverging", "energy", "num_steps", "accept_prob", "potential_energy", "step_size")


class ChunkedNUTS:
    """NUTS chains advanced in blocks of at most ``chunk`` transitions by ONE compiled program.

    numpyro's functional kernel (``numpyro.infer.hmc.hmc``, its window adaptation included)
    runs inside a ``lax.fori_loop`` whose trip count is an argument, so warm-up blocks, draw
    blocks and a shorter last block all reuse the same executable, and so does a resumed run
    in the same process (programs are cached on the model). Chains are vmapped
    (``vectorized``), run one after another through the same program (``sequential``), or
    concurrently through it, one host thread per chain (``threads``: XLA releases the GIL, so
    on a multi-core CPU the chains use the cores; 2 chains on 2 cores measured 2.4x the
    throughput of ``sequential``).

    With ``dense_mass`` the mass matrix is dense; its starting value (``inverse_mass`` passed
    to :meth:`init`, e.g. :func:`laplace_inverse_mass`) is an argument of the compiled init
    program, not a constant in it. With ``adapt_mass`` false, warm-up adapts the step size
    only and the starting mass matrix is kept (numpyro re-estimates it from each warm-up
    window otherwise, and a window of a few dozen draws is a poor estimate of a dense
    covariance in 20+ dimensions). With ``adapt_step_size`` false the step size passed to
    :meth:`init` is kept throughout and warm-up is burn-in only (like CmdStan's ``stepsize``
    with adaptation off); otherwise it is where numpyro's step-size search and dual averaging
    start. The step size, like the mass matrix, is an argument of the compiled init program.
    """

    def __init__(self, model, config: FitConfig, chunk: int):
        from numpyro.infer.hmc import hmc

        # The chains run the potential of ``model.sampling`` where the fit names a sampler
        # solver (the same posterior, another code of the same method: solver.sampler_method);
        # the start's potential and gradient come from ``model``'s compiled value_and_grad,
        # the one the MAP ran, so no other gradient program is compiled for them.
        potential, z0, _, _ = (model.sampling or model).potential()
        value_and_grad = model.potential()[3]
        init_kernel, sample_kernel = hmc(potential_fn=jax.jit(potential), algo="NUTS")
        self.chunk = chunk
        self.chains = config.chains
        self.vectorized = config.chain_method == "vectorized" and config.chains > 1
        self.threaded = config.chain_method == "threads" and config.chains > 1
        self.dense = config.dense_mass
        self.signature = {
            "format": CHECKPOINT_FORMAT,
            "latents": sorted(z0),
            "warmup": config.warmup,
            "chains": config.chains,
            "max_tree_depth": config.max_tree_depth,
            "target_accept": config.target_accept,
            "dense_mass": config.dense_mass,
            "adapt_mass": config.adapt_mass,
            "adapt_step_size": config.adapt_step_size,
        }

        def init_one(z, pe, z_grad, key, inverse_mass, step_size):
            # The start's potential energy and gradient come in as arguments (computed by the
            # model's compiled value_and_grad, the one MAP uses), so this program does not
            # compile a gradient of its own (numpyro's init_kernel takes them as a ParamInfo).
            # With a sampler solver they agree with the chains' potential to rounding: only
            # the first transition's energy error sees the difference (~1e-13 relative).
            state = init_kernel(
                ParamInfo(z, pe, z_grad),
                config.warmup,
                step_size=step_size,
                adapt_step_size=config.adapt_step_size,
                inverse_mass_matrix=inverse_mass,
                dense_mass=config.dense_mass,
                adapt_mass_matrix=config.adapt_mass,
                target_accept_prob=config.target_accept,
                max_tree_depth=config.max_tree_depth,
                rng_key=key,
            )
            return _strong(state)

        def record(state):
            fields = {f: getattr(state, f) for f in _RECORDED if f != "step_size"}
            return {"z": state.z, **fields, "step_size": state.adapt_state.step_size}

        def block_one(state, n):
            buffer = jax.tree_util.tree_map(
                lambda x: jnp.zeros((chunk, *jnp.shape(x)), x.dtype), record(state)
            )

            def body(i, carry):
                state, buffer = carry
                state = sample_kernel(state)
                buffer = jax.tree_util.tree_map(lambda b, v: b.at[i].set(v), buffer, record(state))
                return state, buffer

            state, buffer = jax.lax.fori_loop(0, n, body, (state, buffer))
            return _strong(state), buffer

        # hmc()'s sample_kernel reads settings that its init_kernel stores (tree depth,
        # adaptation schedule), so init is traced before the first block: by init() in a
        # fresh run, by a shape-only trace (no compilation) when resuming from a checkpoint.
        self._z0 = z0
        self._value_and_grad = value_and_grad
        self._init_one = init_one
        self._init_traced = False
        self._compiling = None  # compile_ahead's Future
        if self.vectorized:
            self._init = jax.jit(jax.vmap(init_one, in_axes=(0, 0, 0, 0, None, None)))
            self._block = jax.jit(jax.vmap(block_one, in_axes=(0, None)))
        else:
            self._init = jax.jit(init_one)
            self._block = jax.jit(block_one)

    @classmethod
    def for_model(cls, model, config: FitConfig, chunk: int) -> ChunkedNUTS:
        """The cached driver for (model, NUTS settings, chunk): compiled once per process."""
        key = (
            config.warmup,
            config.chains,
            config.chain_method,
            config.max_tree_depth,
            config.target_accept,
            config.dense_mass,
            config.adapt_mass,
            config.adapt_step_size,
            chunk,
        )
        cache = model.programs.setdefault("nuts", {})
        if key not in cache:
            cache[key] = cls(model, config, chunk)
        return cache[key]

    @staticmethod
    def _step_size(value):
        return jnp.asarray(1.0 if value is None else value, dtype=jnp.result_type(float))

    def _identity_mass(self):
        n = sum(int(np.size(x)) for x in jax.tree_util.tree_leaves(self._z0))
        return jnp.eye(n) if self.dense else jnp.ones(n)

    def init(self, start: dict, key, inverse_mass=None, *, step_size=None, per_chain: bool = False):
        """Initial states: a batched state (vectorized) or a list of one state per chain.

        ``start``: latent values (unconstrained), shared by the chains, or with a leading
        chain axis when ``per_chain``. ``inverse_mass``: starting inverse mass matrix over
        the latents flattened in ``jax.flatten_util.ravel_pytree`` order ([n, n] when dense,
        [n] when diagonal); identity when None. ``step_size``: the fixed step size (no
        step-size adaptation) or where adaptation starts; numpyro's 1.0 when None."""
        keys = jax.random.split(key, self.chains)
        self._init_traced = True
        inv = self._identity_mass() if inverse_mass is None else jnp.asarray(inverse_mass)
        if inv.shape != self._identity_mass().shape:
            raise ValueError(
                f"inverse_mass has shape {inv.shape}; this sampler needs "
                f"{self._identity_mass().shape} (dense_mass={self.dense})"
            )
        if per_chain:
            starts = jax.tree_util.tree_map(jnp.asarray, start)
        else:
            starts = jax.tree_util.tree_map(
                lambda x: jnp.broadcast_to(x, (self.chains, *jnp.shape(x))), start
            )
        starts = _strong(starts)  # a fresh start and a pilot's end points: one signature
        step = self._step_size(step_size)
        per = [jax.tree_util.tree_map(lambda x, i=i: x[i], starts) for i in range(self.chains)]
        values = [self._value_and_grad(z) for z in per]
        pes = [_strong(v[0]) for v in values]
        grads = [_strong(v[1]) for v in values]
        if self.vectorized:
            stack = functools.partial(jax.tree_util.tree_map, lambda *x: jnp.stack(x))
            return self._init(starts, stack(*pes), stack(*grads), keys, inv, step)
        return [
            self._init(z, pe, g, k, inv, step)
            for z, pe, g, k in zip(per, pes, grads, keys, strict=True)
        ]

    def _abstract_state(self):
        """Shapes and dtypes of the chains' states (what :meth:`init` returns), found by
        tracing the init program without running it. Tracing it also hands numpyro's
        sample_kernel the settings its init_kernel stores (see ``__init__``)."""

        def spec(x, lead=()):
            return jax.ShapeDtypeStruct((*lead, *jnp.shape(x)), jnp.result_type(x))

        lead = (self.chains,) if self.vectorized else ()
        z = jax.tree_util.tree_map(lambda x: spec(x, lead), self._z0)
        pe = spec(jnp.zeros((), jnp.result_type(float)), lead)
        key = spec(jax.random.PRNGKey(0), lead)
        state = jax.eval_shape(
            self._init, z, pe, z, key, self._identity_mass(), self._step_size(None)
        )
        self._init_traced = True
        return state

    def compile_ahead(self) -> None:
        """Trace the block program now and compile it in a background thread; the first
        :meth:`advance` waits for it. A fit calls this before its MAP, so XLA compiles the
        sampler on one core while the MAP compiles and runs on the other (tracing stays on
        the calling thread: numpyro's handler stack is shared between threads)."""
        if self._compiling is None:
            lowered = self._block.lower(self._abstract_state(), self.chunk)
            pool = ThreadPoolExecutor(max_workers=1)
            self._compiling = pool.submit(lowered.compile)
            pool.shutdown(wait=False)  # its thread ends when the compilation does

    def advance(self, states, n: int):
        """Run n <= chunk transitions of every chain: (new states, records [chain, n, ...])."""
        if self._compiling is not None:
            self._compiling.result()  # re-raises a failed compilation
        elif not self._init_traced:
            self._abstract_state()
        if self.vectorized:
            states, buf = self._block(states, n)
            return states, jax.tree_util.tree_map(lambda b: np.asarray(b)[:, :n], buf)
        if self.threaded:
            with ThreadPoolExecutor(max_workers=len(states)) as pool:
                out = list(pool.map(lambda s: self._block(s, n), states))
        else:
            out = [self._block(s, n) for s in states]
        buf = jax.tree_util.tree_map(
            lambda *b: np.stack([np.asarray(x)[:n] for x in b]), *[o[1] for o in out]
        )
        return [o[0] for o in out], buf


def _strong(tree):
    """Every leaf with a strong dtype: a state read back from a checkpoint (NumPy arrays,
    which carry no weak types) then matches the compiled program's signature, so resuming
    does not recompile."""
    return jax.tree_util.tree_map(
        lambda x: jax.lax.convert_element_type(x, jnp.result_type(x)), tree
    )


def _load_checkpoint(path: Path, signature: dict) -> dict:
    try:
        with open(path, "rb") as fh:
            saved = pickle.load(fh)
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError) as err:
        raise RuntimeError(
            f"{path}: cannot read the NUTS checkpoint ({err}); delete it to start afresh"
        ) from err
    theirs = saved.get("signature") if isinstance(saved, dict) else None
    if theirs != signature:
        differ = sorted(k for k in signature if (theirs or {}).get(k) != signature[k])
        raise RuntimeError(
            f"{path}: the checkpoint was written by a NUTS run with other settings "
            f"(differing: {differ or 'format'}); resume with the same config, or delete the "
            "checkpoint to start afresh"
        )
    return saved


# Clip of the pilot's variance / the starting variance. The pilot only widens: a short pilot
# of a slowly mixing chain underestimates a variance (its draws have not yet spread), so a
# ratio below 1 is more often that bias than evidence. Measured on the demo fit (2026-12-05):
# a 50-transition pilot's ratios below 1 (0.47-0.92) were all for latents whose variance in
# 800 later draws was 0.8-1.4 times the Laplace one, while its ratios above 1.5 (the
# between-neuron SDs, a_ttx, k_G) matched the later draws' 1.9-3.4.
PILOT_RATIO_BOUNDS = (1.0, 100.0)


def rescale_inverse_mass(inverse_mass, draws, bounds=PILOT_RATIO_BOUNDS):
    """The inverse mass matrix widened to the spread of ``draws``.

    ``draws``: [n, latents] unconstrained draws (ravel_pytree order), pooled over chains.
    Diagonal matrix: each latent's variance ratio (draws / matrix) is clipped to ``bounds``
    and applied. Dense matrix C = L L^T: the draws are whitened by L and their covariance's
    eigenvalues above the Marchenko-Pastur edge (1 + sqrt(latents / n))^2 (the largest an
    eigenvalue of n white-noise draws reaches by chance) are kept, clipped to ``bounds``; the
    others become 1. So a correlated direction along which the posterior spreads further than
    C says (a bent ridge: measured on the demo fit, 2026-12-06, 6x the Laplace SD along a
    k_Y / Fig. 7c-scale combination whose per-latent SD ratios are 0.94-1.25) is widened, and
    noise directions are not (PILOT_RATIO_BOUNDS: a pilot never shrinks). Returns (new inverse
    mass, ratio of new to old diagonal)."""
    inv = np.asarray(inverse_mass, dtype=float)
    x = np.asarray(draws, dtype=float)
    if inv.ndim == 1:
        ratio = np.clip(np.var(x, axis=0, ddof=1) / inv, *bounds)
        return inv * ratio, ratio
    chol = np.linalg.cholesky(inv)
    white = np.linalg.solve(chol, (x - x.mean(axis=0)).T)  # [latents, n]
    eig, vec = np.linalg.eigh(white @ white.T / (x.shape[0] - 1))
    edge = (1.0 + np.sqrt(x.shape[1] / x.shape[0])) ** 2
    eig = np.where(eig > edge, np.clip(eig, *bounds), 1.0)
    new = chol @ (vec * eig) @ vec.T @ chol.T
    new = 0.5 * (new + new.T)
    return new, np.diag(new) / np.diag(inv)


def _flat_draws(z: dict) -> tuple[np.ndarray, list[str]]:
    """{site: [chain, n, ...]} -> ([chain*n, latents] in ravel_pytree order, latent labels)."""
    cols, labels = [], []
    for k in sorted(z):
        v = np.asarray(z[k])
        flat = v.reshape(v.shape[0] * v.shape[1], -1)
        cols.append(flat)
        labels += [k] if flat.shape[1] == 1 else [f"{k}[{i}]" for i in range(flat.shape[1])]
    return np.concatenate(cols, axis=1), labels


@contextlib.contextmanager
def stop_after_block():
    """While NUTS runs: the first Ctrl-C (SIGINT) asks it to stop when the block of
    transitions under way ends, and that block is kept (a compiled block cannot be cut short
    anyway); a second Ctrl-C stops at once. Yields the event that the first one sets. Python's
    own handler stays in place where SIGINT is handled otherwise (ignored, a caller's
    handler) or off the main thread, where no handler can be installed."""
    stop = threading.Event()
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    ):
        yield stop
        return

    def first_ctrl_c(signum, frame):
        signal.signal(signal.SIGINT, signal.default_int_handler)  # a second one: at once
        stop.set()
        print(
            "\nCtrl-C: NUTS stops when the block of transitions under way ends (it is kept); "
            "Ctrl-C again to stop at once",
            file=sys.stderr,
            flush=True,
        )

    signal.signal(signal.SIGINT, first_ctrl_c)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def run_nuts(
    model,
    config: FitConfig,
    key,
    *,
    init_unconstrained: dict | None = None,
    inverse_mass=None,
    checkpoint: Path | None = None,
    resume: bool = False,
    chunk: int = 50,
    progress: bool = True,
    start_record: dict | None = None,
) -> dict:
    """NUTS with several chains, checkpointed every ``chunk`` transitions (pilot and warm-up
    included). ``inverse_mass`` is the starting inverse mass matrix (see
    :meth:`ChunkedNUTS.init`).

    With ``config.mass_pilot`` > 0 the chains first run ``config.mass_pilot_rounds`` pilot
    rounds of that many transitions each: after each round the matrix is widened to the
    spread of the round's draws (:func:`rescale_inverse_mass`) and the chains start afresh
    (step size included) from where they are, with the new matrix; after the last round,
    warm-up. A later round mixes better than the one before (its matrix is closer to the
    posterior's spread), so it sees spread the earlier one had not reached. Pilot transitions
    are discarded like warm-up.

    Returns grouped samples (``{site: [chain, draw, ...]}``), extra fields (diverging, energy,
    num_steps (leapfrog steps; tree depth is its log2), accept_prob, potential_energy,
    step_size (after warm-up, each chain's adapted or the fixed one)), the
    pilot's variance ratios per latent (final / starting matrix diagonal, ``pilot_ratio``,
    empty without a pilot) and the wall time. ``resume=True`` continues from ``checkpoint``
    (same settings; ``draws`` may be larger than the saved run's). On KeyboardInterrupt the
    draws finished so far are returned with ``interrupted=True``.

    ``start_record``: what the caller wants kept with the run about how it started (e.g. the
    MAP that gave the starting point, the code's commit); it is saved in the checkpoint and
    returned as ``start_record``, and a resumed run returns the saved one (``resumed=True``),
    so the caller need not redo that work.
    """
    driver = ChunkedNUTS.for_model(model, config, chunk)
    signature = {
        **driver.signature,
        "mass_pilot": config.mass_pilot,
        "mass_pilot_rounds": config.mass_pilot_rounds,
        "step_size": config.step_size,
    }
    step_size = config.step_size or None  # 0: numpyro's start, then its search
    _, z0, constrain, _ = model.potential()
    t0 = time.perf_counter()
    # the current mass is kept with the run: a run resumed mid-pilot widens the same matrix
    run = {"piloted": 0, "pilot_z": [], "pilot_ratio": {}, "warmed": 0, "chunks": []}
    run["start_record"] = dict(start_record or {})
    run["start_mass"] = None if inverse_mass is None else np.asarray(inverse_mass)
    run["mass"] = run["start_mass"]
    if resume and checkpoint is not None and checkpoint.exists():
        saved = _load_checkpoint(checkpoint, signature)
        # back on the device as jax Arrays: the same call signature as a fresh run's state
        states = jax.device_put(saved.pop("state"))
        run.update({k: saved[k] for k in run})
        resumed = True
    else:
        resumed = False
        start = z0 if init_unconstrained is None else init_unconstrained
        states = driver.init(start, key, inverse_mass, step_size=step_size)
    done = run["chunks"]
    n_done = sum(c["num_steps"].shape[1] for c in done)
    pilot = config.mass_pilot * (config.mass_pilot_rounds if config.mass_pilot else 0)
    total = pilot + config.warmup + config.draws
    bar = None
    if progress:
        from tqdm.auto import tqdm

        initial = run["piloted"] + run["warmed"] + n_done
        bar = tqdm(total=config.chains * total, initial=config.chains * initial, desc="NUTS")
    interrupted = False
    try:
        with stop_after_block() as stop:
            while run["piloted"] < pilot or run["warmed"] < config.warmup or n_done < config.draws:
                if run["piloted"] < pilot:
                    stage = "pilot"
                    left = config.mass_pilot - run["piloted"] % config.mass_pilot
                elif run["warmed"] < config.warmup:
                    stage, left = "warmup", config.warmup - run["warmed"]
                else:
                    stage, left = "draws", config.draws - n_done
                n = min(chunk, left)
                states, records = driver.advance(states, n)
                if stage == "pilot":
                    run["piloted"] += n
                    run["pilot_z"].append(records["z"])
                    if run["piloted"] % config.mass_pilot == 0:  # end of a round
                        round_no = run["piloted"] // config.mass_pilot
                        states = _after_pilot(driver, run, key, round_no, step_size)
                elif stage == "warmup":
                    run["warmed"] += n
                else:
                    done.append(records)
                    n_done += n
                if checkpoint is not None:
                    with atomic_path(checkpoint) as tmp, open(tmp, "wb") as fh:
                        state = jax.device_get(states)
                        pickle.dump({"signature": signature, "state": state, **run}, fh)
                if bar is not None:
                    bar.update(config.chains * n)
                    if stage == "draws":
                        div = int(sum(np.sum(c["diverging"]) for c in done))
                        bar.set_postfix_str(f"divergences {div}", refresh=False)
                if stop.is_set():  # Ctrl-C during that block: it is kept, then stop
                    raise KeyboardInterrupt
    except KeyboardInterrupt:
        interrupted = True
    finally:
        if bar is not None:
            bar.close()
    if not done:
        raise RuntimeError(
            "NUTS was interrupted before finishing a block of draws (a checkpointed pilot and "
            "warm-up are kept: rerun with resume)"
        )
    records = {k: np.concatenate([c[k] for c in done], axis=1) for k in _RECORDED}
    unconstrained = {k: np.concatenate([c["z"][k] for c in done], axis=1) for k in done[0]["z"]}
    samples = {k: np.asarray(v) for k, v in constrain(unconstrained).items()}
    return {
        "samples": samples,
        "extra": records,
        "n_draws": n_done,
        "pilot_ratio": run["pilot_ratio"],
        "interrupted": interrupted,
        "seconds": time.perf_counter() - t0,
        "start_record": run["start_record"],
        "resumed": resumed,
    }


def _after_pilot(driver: ChunkedNUTS, run: dict, key, round_no: int, step_size):
    """Widen the current mass matrix to the spread of this pilot round's draws; fresh states
    (same compiled init program) from the round's last positions."""
    z = {k: np.concatenate([c[k] for c in run["pilot_z"]], axis=1) for k in run["pilot_z"][0]}
    flat, labels = _flat_draws(z)
    start = driver._identity_mass() if run["start_mass"] is None else run["start_mass"]
    current = start if run["mass"] is None else run["mass"]
    run["mass"], _ = rescale_inverse_mass(current, flat)
    start, new = np.asarray(start), run["mass"]
    ratio = (np.diag(new) / np.diag(start)) if start.ndim == 2 else new / start
    run["pilot_ratio"] = {lab: float(r) for lab, r in zip(labels, ratio, strict=True)}
    run["pilot_z"] = []
    last = {k: v[:, -1] for k, v in z.items()}
    return driver.init(
        last, jax.random.fold_in(key, round_no), run["mass"], step_size=step_size, per_chain=True
    )


def log_density_fn(model):
    """(potential_fn, initial unconstrained params) of the model; for benchmarks and tests."""
    potential, z0, _, _ = model.potential()
    return potential, z0


def finite_everywhere(tree) -> bool:
    return bool(all(jnp.all(jnp.isfinite(x)) for x in jax.tree_util.tree_leaves(tree)))
