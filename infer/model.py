"""The NumPyro population model.

Sampled: the free population parameters (on their prior-standardised scale, truncated to their
bounds), between-neuron log-SDs ``sigma_<name>`` of the free heterogeneous parameters, and a
positive scale per group of measurements reported in arbitrary or absolute units. The M
virtual neurons use fixed common random numbers, so NUTS samples tens of parameters, not
neurons. A failed solve rejects the proposal (log density -inf) and is counted.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from jax.scipy.special import log_ndtr

from models._spec import LogitNormal
from models.dynamics import default_theta
from models.pathway import PATHWAY

from .config import FitConfig
from .problem import FitProblem, PopulationPredictor, constraint_log_terms, predict_measurements

SCALE_PRIOR_SD = 2.0  # log-SD of the nuisance-scale priors (centred on the data's magnitude)


def _prior_geometry(name: str):
    """(transform, centre, scale, lower, upper) on the transformed (log or logit) axis."""
    p = PATHWAY.parameter(name)
    lo, hi = p.bounds
    if isinstance(p.prior, LogitNormal):

        def tr(x):
            return np.log(x / (1 - x))
    else:

        def tr(x):  # a lower bound of 0 becomes 12 prior SDs below the median: finite, inert
            return np.log(x) if x > 0 else np.log(p.prior.median) - 12 * p.prior.scale

    mu = tr(p.prior.median)
    return mu, p.prior.scale, (tr(lo) - mu) / p.prior.scale, (tr(hi) - mu) / p.prior.scale


def _from_standard(name: str, u):
    p = PATHWAY.parameter(name)
    mu, s, _, _ = _prior_geometry(name)
    x = mu + s * u
    if isinstance(p.prior, LogitNormal):
        return 1.0 / (1.0 + jnp.exp(-x))
    return jnp.exp(x)


def fixed_parameters(free) -> dict[int, float]:
    """{position in theta: value} of the parameters a fit with the ``free`` list does not
    sample: their defaults, the values :attr:`PopulationModel.base_theta` gives them (and
    with no between-neuron spread, which only free parameters get)."""
    base = np.asarray(default_theta())
    return {i: float(base[i]) for i, n in enumerate(PATHWAY.parameter_names) if n not in free}


class PopulationModel:
    """Callable NumPyro model bound to a problem, a config and a population of neurons."""

    def __init__(
        self,
        problem: FitProblem,
        config: FitConfig,
        predictor: PopulationPredictor,
        *,
        generative_only: bool = False,
    ):
        """``generative_only`` keeps only the terms data can be simulated from (the Normal
        likelihood of the measurements): the one-sided spread bound and the soft qualitative
        constraints are dropped. Simulation-based calibration needs exactly that."""
        self.problem = problem
        self.generative_only = generative_only
        self.config = config
        self.predictor = predictor
        self.free = config.free
        self.free_index = np.array([PATHWAY.parameter_names.index(n) for n in self.free])
        self.het = PATHWAY.heterogeneous_names
        self.sigma_names = config.free_heterogeneous
        self.sigma_slot = np.array([self.het.index(n) for n in self.sigma_names], int)
        self.base_theta = default_theta()
        self.scale_names = tuple(f"scale_{g}" for g in problem.scale_groups)
        self._potential = None
        self._potential_gen = None
        self._structure_only = False
        self._predict_batch = None
        self.programs: dict = {}  # compiled programs built on this model (engines cache here)
        # The model whose program NUTS's chains run, where a fit's solver.sampler_method names
        # another code of the same method (infer.fit.Fit.create); None: this one.
        self.sampling: PopulationModel | None = None

    def potential(self):
        """(potential_fn, z at the prior medians, postprocess_fn, jitted value_and_grad),
        built once per model so repeated fits reuse the compiled gradient."""
        if self._potential is None:
            import jax
            from numpyro.infer import init_to_value
            from numpyro.infer.util import initialize_model

            # numpyro runs the model eagerly here only to learn the sites' supports; a
            # structure-only pass skips the ODE solves (the returned potential runs them).
            self._structure_only = True
            try:
                info = initialize_model(
                    jax.random.PRNGKey(0),
                    self,
                    dynamic_args=False,
                    init_strategy=init_to_value(values=self.median_values()),
                )
            finally:
                self._structure_only = False
            self._potential = (
                info.potential_fn,
                info.param_info.z,
                self.constrain,
                jax.jit(jax.value_and_grad(info.potential_fn)),
            )
        return self._potential

    def potential_gen(self):
        """(potential_fn_gen, z at the prior medians): ``potential_fn_gen(obs_values)`` is the
        potential with the observed values as an argument, so one compiled program serves
        many simulated datasets (simulation-based calibration, parameter recovery)."""
        if self._potential_gen is None:
            import jax
            from numpyro.infer import init_to_value
            from numpyro.infer.util import initialize_model

            self._structure_only = True
            try:
                info = initialize_model(
                    jax.random.PRNGKey(0),
                    self,
                    model_args=(jnp.asarray(self.problem.values),),
                    dynamic_args=True,
                    init_strategy=init_to_value(values=self.median_values()),
                )
            finally:
                self._structure_only = False
            self._potential_gen = (info.potential_fn, info.param_info.z)
        return self._potential_gen

    def latent_distribution(self, name: str):
        if name.startswith("raw_"):
            _, _, lo, hi = _prior_geometry(name.removeprefix("raw_"))
            return dist.TruncatedNormal(0.0, 1.0, low=lo, high=hi)
        if name.startswith("sigma_"):
            return dist.HalfNormal(self.config.sigma_prior_scale)
        centre = self.problem.scale_centres[self.scale_names.index(name)]
        return dist.LogNormal(np.log(max(centre, 1e-12)), SCALE_PRIOR_SD)

    def constrain(self, z: dict) -> dict:
        """Unconstrained latent values -> constrained (no model evaluation)."""
        from numpyro.distributions.transforms import biject_to

        return {k: biject_to(self.latent_distribution(k).support)(v) for k, v in z.items()}

    @property
    def latent_names(self) -> tuple[str, ...]:
        return (
            *(f"raw_{n}" for n in self.free),
            *(f"sigma_{n}" for n in self.sigma_names),
            *self.scale_names,
        )

    @property
    def output_names(self) -> tuple[str, ...]:
        """Sites reported per draw: parameters by name, sigmas, scales, pred, n_failed, obs."""
        return (
            *self.free,
            *(f"sigma_{n}" for n in self.sigma_names),
            *self.scale_names,
            "pred",
            "n_failed",
            "obs",
        )

    def sample_prior_latents(self, key, n: int) -> dict:
        """n prior draws of the latent sites (no simulation needed)."""
        import jax

        keys = jax.random.split(key, len(self.latent_names))
        return {
            name: self.latent_distribution(name).sample(k, (n,))
            for k, name in zip(keys, self.latent_names, strict=True)
        }

    def predictive(self, batch: int = 32):
        """``predict(latents, key) -> {site: [draw, ...]}`` for any number of draws, compiled
        once per model (draws are processed in fixed-size batches, padded at the end)."""
        import jax
        from numpyro import handlers

        if self._predict_batch is None:
            names = self.output_names

            def one(latent, key):
                tr = handlers.trace(
                    handlers.seed(handlers.substitute(self, data=latent), key)
                ).get_trace(observed=False)
                return {n: tr[n]["value"] for n in names}

            # draws one after another inside one program (lax.map), not vmapped: under vmap
            # every draw's solve runs until the stiffest draw of the batch is done
            self._predict_batch = jax.jit(
                lambda latent, keys: jax.lax.map(lambda a: one(*a), (latent, keys))
            )

        def predict(latents: dict, key) -> dict:
            n = len(next(iter(latents.values())))
            chunks = []
            for start in range(0, n, batch):
                part = {k: np.asarray(v)[start : start + batch] for k, v in latents.items()}
                m = len(next(iter(part.values())))
                part = {
                    k: np.concatenate([v, np.repeat(v[-1:], batch - m, axis=0)])
                    for k, v in part.items()
                }
                keys = jax.random.split(jax.random.fold_in(key, start), batch)
                out = jax.device_get(self._predict_batch(part, keys))
                chunks.append({k: np.asarray(v)[:m] for k, v in out.items()})
            return {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}

        return predict

    def median_values(self) -> dict:
        """Latent values at the prior medians (defaults), a safe point to start from."""
        values = {f"raw_{n}": 0.0 for n in self.free}
        values.update(
            {f"sigma_{n}": 0.2 * self.config.sigma_prior_scale / 0.3 for n in self.sigma_names}
        )
        values.update(
            {
                n: float(max(c, 1e-12))
                for n, c in zip(self.scale_names, self.problem.scale_centres, strict=True)
            }
        )
        return values

    def theta_sigma(self, values: dict):
        """Population vector and the sigma vector (fixed sigmas at 0 for non-free ones)."""
        theta = self.base_theta.at[self.free_index].set(jnp.stack([values[n] for n in self.free]))
        sigma = jnp.zeros(len(self.het), theta.dtype)
        if len(self.sigma_names):
            sigma = sigma.at[self.sigma_slot].set(
                jnp.stack([values[f"sigma_{n}"] for n in self.sigma_names])
            )
        return theta, sigma

    def __call__(self, obs_values=None, observed: bool = True):
        """``obs_values`` replaces the problem's observed values (same measurements);
        ``observed=False`` samples them instead (predictive)."""
        p = self.problem
        values = {}
        for name in self.free:
            _, _, lo, hi = _prior_geometry(name)
            u = numpyro.sample(f"raw_{name}", dist.TruncatedNormal(0.0, 1.0, low=lo, high=hi))
            values[name] = numpyro.deterministic(name, _from_standard(name, u))
        for name in self.sigma_names:
            values[f"sigma_{name}"] = numpyro.sample(
                f"sigma_{name}", dist.HalfNormal(self.config.sigma_prior_scale)
            )
        scales = []
        for name, centre in zip(self.scale_names, p.scale_centres, strict=True):
            scales.append(
                numpyro.sample(name, dist.LogNormal(np.log(max(centre, 1e-12)), SCALE_PRIOR_SD))
            )
        theta, sigma = self.theta_sigma(values)
        if self._structure_only:
            shape = (
                self.predictor.z.shape[0],
                len(p.conditions),
                p.times.shape[1],
                len(PATHWAY.observables),
            )
            levels, ok, n_failed = jnp.ones(shape), jnp.ones(shape[:2], bool), jnp.asarray(0)
        else:
            levels, ok, n_failed = self.predictor.levels(theta, sigma)
        numpyro.deterministic("n_failed", n_failed)
        scale_vec = jnp.stack(scales) if scales else jnp.zeros(0, theta.dtype)
        pred, cell_sd = predict_measurements(p, levels, ok, scale_vec)
        numpyro.deterministic("pred", pred)
        # A failed solve rejects the proposal; finite placeholders keep gradients NaN-free.
        numpyro.factor("solve_failed", jnp.where(n_failed > 0, -jnp.inf, 0.0))
        numpyro.sample(
            "obs",
            dist.Normal(pred, jnp.asarray(p.obs_sd)),
            obs=(jnp.asarray(p.values) if obs_values is None else obs_values) if observed else None,
        )
        if self.generative_only:
            return
        # Per-cell spread: the observed between-cell SD (SEM*sqrt(n)) also contains measurement
        # noise, so it bounds the model's between-neuron SD from above (one-sided probit).
        has = np.isfinite(p.m_spread_sd)
        if has.any():
            s_obs = jnp.asarray(p.m_spread_sd[has])
            se = s_obs / jnp.sqrt(2.0 * (jnp.asarray(p.m_spread_n[has]) - 1.0))
            numpyro.factor("spread", jnp.sum(log_ndtr((s_obs - cell_sd[has]) / se)))
        if self.config.include_constraints and len(p.constraint_ids):
            numpyro.factor("constraints", jnp.sum(constraint_log_terms(p, levels, ok)))
