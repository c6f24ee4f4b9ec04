"""Parameter recovery: NUTS on synthetic data simulated from known population parameters
recovers them (slow: several minutes on 2 CPU cores)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

REPLICATES = 4  # independent synthetic datasets from the same truth
CHAINS = 2  # per dataset
# contraction 1 - var(post)/var(prior) above which a latent counts as informed. 0.3 since the
# TrkB change of 562abba, after which this setting informs g_FG only partly (contraction
# 0.30-0.44 in the four datasets, 2026-12-07; K_T about 0, the spreads below 0.3)
INFORMED = 0.3
MIN_ESS = 100
MAX_RHAT = 1.05

# The known truth, on each latent's sampled scale: free parameters in prior-standardised
# units u (a prior median shifted by a fraction of a prior SD), spreads in natural units,
# nuisance scales as a multiple of their prior median.
TRUE_U = {"K_T": 0.6, "bdnf_ref_nM": -0.5, "g_FG": 0.4}
TRUE_SIGMA = 0.2
TRUE_SCALE_FACTOR = 1.3


def _transform(name, x):
    return np.asarray(x) if name.startswith("raw_") else np.log(np.asarray(x))


@pytest.mark.slow
def test_nuts_recovers_known_parameters_of_the_reduced_population_model():
    import arviz as az
    import jax

    jax.config.update("jax_enable_x64", True)
    from infer.sbc import BatchedNUTS, SBCSettings, generative_fit

    settings = SBCSettings(free=tuple(TRUE_U))
    fit = generative_fit(settings.fit_config())
    model = fit.model
    truth = {}
    for name in model.latent_names:
        if name.startswith("raw_"):
            truth[name] = TRUE_U[name.removeprefix("raw_")]
        elif name.startswith("sigma_"):
            truth[name] = TRUE_SIGMA
        else:
            centre = fit.problem.scale_centres[model.scale_names.index(name)]
            truth[name] = TRUE_SCALE_FACTOR * centre
    sim = model.predictive()(
        {k: np.full(REPLICATES, v) for k, v in truth.items()}, jax.random.PRNGKey(11)
    )
    assert np.all(sim["n_failed"] == 0) and np.all(np.isfinite(sim["obs"]))

    nuts = BatchedNUTS(model, warmup=150, draws=200, max_tree_depth=5)
    out = nuts.run(np.repeat(sim["obs"], CHAINS, axis=0), jax.random.PRNGKey(12))
    assert int(out["diverging"].sum()) == 0, "divergent transitions in a recovery fit"

    prior = model.sample_prior_latents(jax.random.PRNGKey(13), 20_000)
    informed, covered, report = [], 0, []
    for name in model.latent_names:
        draws = np.asarray(out["latent"][name]).reshape(REPLICATES, CHAINS, -1)
        v_prior = np.var(_transform(name, prior[name]))
        contraction = np.mean([1 - np.var(_transform(name, d)) / v_prior for d in draws])
        if contraction < INFORMED:
            continue
        informed.append(name)
        hits = 0
        for d in draws:
            rhat = float(az.rhat(d))
            ess = float(az.ess(d, method="bulk"))
            assert rhat <= MAX_RHAT and ess >= MIN_ESS, (name, rhat, ess)
            lo, hi = np.quantile(d, [0.05, 0.95])
            hits += int(lo <= truth[name] <= hi)
        report.append((name, round(float(contraction), 2), hits))
        # a grossly biased latent misses in most datasets
        assert hits >= REPLICATES // 2, report
        covered += hits
    # the data of the reduced setting inform its free parameters and scales
    assert len(informed) >= 3 and any(n.startswith("raw_") for n in informed), report
    n = REPLICATES * len(informed)
    # overall coverage of the 90% intervals: at least the binomial 0.1% quantile
    assert covered >= stats.binom.ppf(0.001, n, 0.9), (covered, n, report)
