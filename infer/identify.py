"""Identifiability report: what the shipped data inform, and what they leave to the prior.

Local (Laplace) analysis at the posterior mode, on prior-whitened coordinates:

* coordinates ``w``: a free parameter's prior-standardised value ``u`` (the ``raw_`` site:
  0 at the prior median, 1 per prior SD on the log or logit axis), ``log sigma`` of a
  between-neuron spread and ``log scale`` of a nuisance scale. Each is divided by its prior's
  own Laplace SD (``1/sqrt(-d2 log p(w)/dw2)`` at the prior mode: 1 for ``u``, 1/sqrt(2) for
  ``log sigma`` under a half-normal prior, ``SCALE_PRIOR_SD`` for ``log scale``), giving
  ``v``, so that a Laplace posterior is compared with a Laplace prior (a log-half-normal prior
  is skewed; comparing its Laplace width with its true SD would fake contraction).
* the objective: the negative log posterior density of ``w``, i.e. numpyro's potential (the
  density of the unconstrained ``z``) plus ``log|det dw/dz|``, evaluated and differentiated
  on ``z`` (the log-determinant involves no ODE and is differentiated exactly).
* the mode: multi-start optax MAP (the fit's own ``run_map``) as the start, polished with
  L-BFGS-B on that objective's exact gradient.
* the Hessian: central finite differences of the exact (adjoint) gradient in ``z``,
  symmetrised, mapped to ``w`` by ``J^-T H J^-1`` (exact at the mode, where the gradient
  vanishes), then to ``v``. Its asymmetry before symmetrising is reported as a
  numerical-quality indicator.
* per coordinate: Laplace posterior SD, contraction ``1 - var_post/var_prior``, the
  conditional SD ``1/sqrt(H_ii)`` (all others held at the mode) and their ratio (how much
  correlations with other parameters widen the marginal), the data's share of the curvature
  at the mode ``1 - H_prior,ii / H_post,ii`` (local, conditional); the strongest correlations;
  eigen-directions of ``H`` (eigenvalue ~1: prior-dominated; >> 1: data-informed).
* one-dimensional slices of the log posterior through the mode, each coordinate over
  +-4 Laplace posterior SDs (at most +-3 prior SDs) with all others held at the mode, beside the
  slice's quadratic (Laplace) approximation and the prior. Slices are NOT profiles (the others are not
  re-optimised), so a flat slice proves non-identifiability, but a curved slice does not prove
  identifiability when the parameter is correlated with others.

Optionally the contraction measured from a NUTS run's draws (``posterior.nc``) is shown beside
the Laplace value. Everything is local to one mode; a multimodal or strongly non-Gaussian
posterior is only partly described (the slices show where that happens).
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from ._optim import fd_hessian, polish
from .config import FitConfig
from .fit import Fit
from .model import SCALE_PRIOR_SD

SLICE_PRIOR_WIDTH = 3.0  # at most this many prior SDs either side of the mode
SLICE_POST_WIDTH = 4.0  # ... and at most this many Laplace posterior SDs
SLICE_POINTS = 17
FD_STEP = 1e-3  # finite-difference step of the Hessian, unconstrained units
FD_CHECK_FACTOR = 10.0  # the diagonal is recomputed with a 10x larger step as a check
FD_CHECK_TOLERANCE = 0.05  # relative disagreement (in prior-curvature units) flagged
PRIOR_DOMINATED = 0.1  # contraction below this: the data barely inform the coordinate
WELL_INFORMED = 0.9


def prior_sd(model, name: str) -> float:
    """Laplace SD of a latent's prior in its ``w`` coordinate (at the prior's mode).

    ``u`` is standard normal inside its truncation (curvature 1); log sigma with
    sigma ~ HalfNormal(s) has log density -exp(2w)/(2 s^2) + w, curvature 2 at its mode
    w = log s, whatever s; log scale is normal with SD ``SCALE_PRIOR_SD``."""
    if name.startswith("raw_"):
        return 1.0
    if name.startswith("sigma_"):
        return 1.0 / math.sqrt(2.0)
    return SCALE_PRIOR_SD


def prior_curvature(model, name: str, w: float) -> float:
    """-d2 log p(w) / dw2 of a latent's prior at ``w``."""
    if name.startswith("raw_"):
        return 1.0
    if name.startswith("sigma_"):
        return 2.0 * math.exp(2.0 * w) / model.config.sigma_prior_scale**2
    return 1.0 / SCALE_PRIOR_SD**2


def _prior_logpdf_w(model, name: str, w: np.ndarray) -> np.ndarray:
    """Prior log density of a latent in its ``w`` coordinate (up to a constant)."""
    if name.startswith("raw_"):
        return -0.5 * w**2
    if name.startswith("sigma_"):
        s = model.config.sigma_prior_scale
        return -0.5 * np.exp(2 * w) / s**2 + w  # HalfNormal in log sigma, with its Jacobian
    centre = model.problem.scale_centres[model.scale_names.index(name)]
    return -0.5 * ((w - math.log(max(centre, 1e-12))) / SCALE_PRIOR_SD) ** 2


class LocalAnalysis:
    """The mode, its Hessian and slices of one fit's posterior (see the module docstring)."""

    def __init__(self, fit: Fit):
        from jax.flatten_util import ravel_pytree

        self.fit = fit
        self.model = fit.model
        potential, z0, _, value_and_grad = self.model.potential()
        self.names = tuple(self.model.latent_names)
        z0 = {k: jnp.asarray(z0[k]) for k in self.names}
        flat0, self._unravel = ravel_pytree(z0)
        # ravel_pytree orders z by sorted key; w is in report order (Jacobians handle both).
        self.n = flat0.size
        self._vg = value_and_grad
        self._potential = jax.jit(potential)
        self._ravel = lambda tree: ravel_pytree(tree)[0]
        self.prior_sd = np.array([prior_sd(self.model, n) for n in self.names])

        def w_of_z(flat):
            z = self._unravel(flat)
            c = self.model.constrain(z)
            return jnp.stack([c[n] if n.startswith("raw_") else z[n] for n in self.names]).reshape(
                -1
            )

        self._w_of_z = jax.jit(w_of_z)
        self._dw_dz = jax.jit(jax.jacfwd(w_of_z))

        def logdet(flat):
            return jnp.linalg.slogdet(jax.jacfwd(w_of_z)(flat))[1]

        self._logdet = jax.jit(logdet)
        self._logdet_vg = jax.jit(jax.value_and_grad(logdet))

    # -- the objective, -log p(w) evaluated on flat z, as numpy ----------------------------------
    def value_grad(self, flat: np.ndarray) -> tuple[float, np.ndarray]:
        flat = jnp.asarray(flat)
        val, grad = self._vg(self._unravel(flat))
        ld, g_ld = self._logdet_vg(flat)
        return float(val + ld), np.asarray(self._ravel(grad) + g_ld, dtype=float)

    def value(self, flat: np.ndarray) -> float:
        flat = jnp.asarray(flat)
        return float(self._potential(self._unravel(flat)) + self._logdet(flat))

    def z_of_w(self, w: np.ndarray) -> np.ndarray:
        """Unconstrained flat vector for coordinates ``w`` (inverse bijection per latent)."""
        from numpyro.distributions.transforms import biject_to

        tree = {}
        for i, n in enumerate(self.names):
            if n.startswith("raw_"):
                support = self.model.latent_distribution(n).support
                tree[n] = biject_to(support).inv(jnp.asarray(w[i]))
            else:
                tree[n] = jnp.asarray(w[i])
        return np.asarray(self._ravel(tree), dtype=float)

    # -- mode ----------------------------------------------------------------------------------
    def find_mode(self, config: FitConfig, key, *, polish_iter: int = 200) -> dict:
        from .engines import run_map

        t0 = time.perf_counter()
        start = run_map(self.model, config, key)
        x0 = np.asarray(self._ravel(start["unconstrained"]), dtype=float)

        start_val = self.value(x0)
        x, _, res = polish(self.value_grad, x0, polish_iter, gtol=1e-6, ftol=1e-13)
        val, grad = self.value_grad(x)
        return {
            "z": x,
            "neg_log_posterior": val,
            "adam_neg_log_posterior": start_val,
            "grad_norm": float(np.linalg.norm(grad)),
            "polish_iterations": int(res.nit),
            "polish_message": str(res.message),
            "seconds": time.perf_counter() - t0,
        }

    # -- curvature -----------------------------------------------------------------------------
    def hessian(self, x: np.ndarray, step: float = FD_STEP) -> tuple[np.ndarray, float]:
        """Central finite differences of the exact gradient; (symmetrised H, asymmetry)."""
        try:
            return fd_hessian(lambda x: self.value_grad(x)[1], x, step)
        except FloatingPointError:
            raise RuntimeError(
                "the Hessian at the mode is not finite (a solve failed within "
                f"{step} of the mode); rerun with a tighter solver tolerance"
            ) from None

    def diagonal_check(self, x: np.ndarray, h_v: np.ndarray) -> dict:
        """Recompute the whitened Hessian's diagonal with a larger step (``FD_CHECK_FACTOR``):
        noise in the gradient shows as disagreement between the two (relative to
        ``max(|H_ii|, 1)``, 1 being the prior's curvature in whitened units)."""
        step = FD_STEP * FD_CHECK_FACTOR
        jac = np.asarray(self._dw_dz(jnp.asarray(x)), dtype=float)
        jinv = np.linalg.inv(jac)  # columns: dz/dw_i
        diag = []
        for i in range(self.n):
            dz = jinv[:, i] * step * self.prior_sd[i]  # a step of ``step`` along v_i
            _, gp = self.value_grad(x + dz)
            _, gm = self.value_grad(x - dz)
            # d/dv_i of (dV/dv_i), with dV/dv_i = g . dz/dv_i
            diag.append(float((gp - gm) @ (jinv[:, i] * self.prior_sd[i]) / (2 * step)))
        diag = np.array(diag)
        ref = np.diag(h_v)
        rel = np.abs(diag - ref) / np.maximum(np.abs(ref), 1.0)
        worst = int(np.argmax(rel))
        return {
            "step": step,
            "max_relative_difference": float(rel[worst]),
            "worst": _display(self.names[worst]),
            "per_coordinate": rel.tolist(),
            "passed": bool(rel[worst] <= FD_CHECK_TOLERANCE),
        }

    def whitened(self, x: np.ndarray, h_z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(w at the mode, Hessian in v = w / prior_sd), in report order."""
        jac = np.asarray(self._dw_dz(jnp.asarray(x)), dtype=float)  # [n, n] rows: w, cols: z
        w = np.asarray(self._w_of_z(jnp.asarray(x)), dtype=float)
        jinv = np.linalg.inv(jac)
        h_w = jinv.T @ h_z @ jinv
        d = np.diag(self.prior_sd)
        return w, d @ h_w @ d

    def slices(self, w_mode: np.ndarray, half_widths: np.ndarray, points=SLICE_POINTS):
        """Per coordinate ``i``: grid (in w) over ``w_mode[i] +- half_widths[i]``, Delta log
        posterior and Delta log prior vs the mode.

        The log posterior is that of ``w`` (``-self.value``), the density the mode and Hessian
        describe."""

        def logpost(w):
            return -self.value(self.z_of_w(w))

        base = logpost(w_mode)
        out = {}
        for i, n in enumerate(self.names):
            lo = w_mode[i] - half_widths[i]
            hi = w_mode[i] + half_widths[i]
            if n.startswith("raw_"):
                support = self.model.latent_distribution(n).support
                a, b = float(support.lower_bound), float(support.upper_bound)
                pad = 1e-6 * (b - a)
                lo, hi = max(lo, a + pad), min(hi, b - pad)
            grid = np.linspace(lo, hi, points)
            vals = []
            for g in grid:
                w = w_mode.copy()
                w[i] = g
                v = logpost(w)
                vals.append(v - base if np.isfinite(v) else np.nan)
            prior = _prior_logpdf_w(self.model, n, grid) - _prior_logpdf_w(
                self.model, n, np.array([w_mode[i]])
            )
            out[n] = {
                "w": grid.tolist(),
                "dlogpost": vals,
                "dlogprior": np.asarray(prior).tolist(),
            }
        return out


def _natural(model, name: str, w: float) -> float:
    """Value of a latent in natural units from its w coordinate."""
    if name.startswith("raw_"):
        from .model import _from_standard

        return float(_from_standard(name.removeprefix("raw_"), jnp.asarray(w)))
    return float(np.exp(w))


def _display(name: str) -> str:
    return name.removeprefix("raw_")


def analyse(
    config: FitConfig, *, seed: int = 0, posterior: str | Path | None = None, progress=True
) -> dict:
    """The whole local analysis; a JSON-able dict (see ``render_markdown``)."""
    fit = Fit.create(config)
    la = LocalAnalysis(fit)
    t0 = time.perf_counter()

    def say(msg):
        if progress:
            print(f"  {msg}: {time.perf_counter() - t0:.0f} s", flush=True)

    mode = la.find_mode(config, jax.random.PRNGKey(seed))
    say("mode")
    h_z, asym = la.hessian(mode["z"])
    say("Hessian")
    w, h_v = la.whitened(mode["z"], h_z)
    fd_check = la.diagonal_check(mode["z"], h_v)
    say("Hessian check")
    evals, evecs = np.linalg.eigh(h_v)
    positive = bool(evals.min() > 0)
    # Covariance in v: inverse on the positive eigen-space; non-positive directions are
    # flagged (the mode is not a strict maximum there) and get the prior's unit variance.
    safe = np.where(evals > 1e-8, evals, 1.0)
    cov_v = (evecs / safe) @ evecs.T
    sd_v = np.sqrt(np.diag(cov_v))
    cond_v = 1.0 / np.sqrt(np.clip(np.diag(h_v), 1e-300, None))
    corr = cov_v / np.outer(sd_v, sd_v)
    names = la.names
    sd_w_all = sd_v * la.prior_sd
    slices = la.slices(w, np.minimum(SLICE_PRIOR_WIDTH * la.prior_sd, SLICE_POST_WIDTH * sd_w_all))
    say("slices")
    rows = []
    for i, n in enumerate(names):
        sd_w = sd_w_all[i]
        h_post_ii = h_v[i, i] / la.prior_sd[i] ** 2  # back to w units
        lo, hi = w[i] - 1.645 * sd_w, w[i] + 1.645 * sd_w
        rows.append(
            {
                "latent": n,
                "parameter": _display(n),
                "kind": "free" if n.startswith("raw_") else n.split("_")[0],
                "mode_w": float(w[i]),
                "mode": _natural(la.model, n, w[i]),
                "laplace_90": [_natural(la.model, n, lo), _natural(la.model, n, hi)],
                "prior_sd_w": float(la.prior_sd[i]),
                "posterior_sd_w": float(sd_w),
                "contraction": float(1.0 - sd_v[i] ** 2),
                "conditional_sd_w": float(cond_v[i] * la.prior_sd[i]),
                "marginal_over_conditional": float(sd_v[i] / cond_v[i]),
                "data_curvature_share": float(1.0 - prior_curvature(la.model, n, w[i]) / h_post_ii),
            }
        )
    pairs = [
        (names[i], names[j], float(corr[i, j]))
        for i in range(len(names))
        for j in range(i + 1, len(names))
    ]
    pairs.sort(key=lambda t: -abs(t[2]))

    def loadings(vec, k=4):
        idx = np.argsort(-np.abs(vec))[:k]
        return [[_display(names[i]), float(vec[i])] for i in idx]

    directions = [
        {"eigenvalue": float(evals[j]), "loadings": loadings(evecs[:, j])}
        for j in range(len(evals))
    ]
    result = {
        "config": config.to_toml(),
        "datasets": sorted(set(fit.problem.table["datasetId"])),
        "n_measurements": int(len(fit.problem.values)),
        "n_constraints": int(len(fit.problem.constraint_ids)),
        "mode": {k: v for k, v in mode.items() if k != "z"},
        "hessian_asymmetry": asym,
        "hessian_step_check": fd_check,
        "solver": {"rtol": config.rtol, "atol": config.atol, "max_steps": config.max_steps},
        "positive_definite": positive,
        "n_informed_directions": int(np.sum(evals > 1.0 / (1.0 - WELL_INFORMED))),
        "n_prior_dominated_directions": int(np.sum(evals < 1.0 / (1.0 - PRIOR_DOMINATED))),
        "parameters": rows,
        "correlation": corr.tolist(),
        "names": [_display(n) for n in names],
        "top_correlations": [[_display(a), _display(b), r] for a, b, r in pairs[:10]],
        "directions": directions,
        "slices": slices,
        "seconds": round(time.perf_counter() - t0, 1),
        "device": str(jax.devices()[0]),
    }
    if posterior is not None:
        result["nuts"] = nuts_contraction(posterior)
    return result


def nuts_contraction(path: str | Path) -> dict:
    """Contraction per parameter measured from a saved run's posterior and prior draws."""
    import arviz as az

    from .diagnostics import diagnose

    idata = az.from_netcdf(str(path))
    report = diagnose(idata)
    table = report.parameters
    return {
        "file": str(path),
        "passed_diagnostics": bool(report.passed),
        "failed_checks": [c.name for c in report.failed_checks],
        "contraction": {str(k): float(v) for k, v in table["contraction"].items()},
        "ess_bulk": {str(k): float(v) for k, v in table["ess_bulk"].items()},
    }


# --------------------------------------------------------------------------------------------
# Report


def _verdict(c: float) -> str:
    if c < PRIOR_DOMINATED:
        return "prior-dominated"
    if c >= WELL_INFORMED:
        return "well informed"
    return "partly informed"


def _solver_sentence(result: dict) -> str:
    solver = result.get("solver")
    if not solver:
        return ""
    return (
        f" The ODE solves use rtol {solver['rtol']:g}, atol {solver['atol']:g}, tighter than "
        "a fit needs: the adjoint gradient is exact for the solver's step sequence, but that "
        "sequence changes with the parameters, so at looser tolerances the gradient carries "
        "discretisation noise that finite differences amplify. As a check, the diagonal is "
        f"recomputed with a {FD_CHECK_FACTOR:g}x larger step."
    )


def _step_check_sentence(check: dict | None) -> str:
    if not check:
        return ""
    verdict = (
        "consistent"
        if check["passed"]
        else "INCONSISTENT: the curvatures are not reliable; tighten the solver tolerance "
        "(--rtol/--atol)"
    )
    return (
        f" Hessian diagonal with a {check['step']:g} step against the {FD_STEP:g} step: "
        f"largest relative difference {check['max_relative_difference']:.1e} "
        f"({check['worst']}), {verdict}."
    )


def render_markdown(result: dict, figures: dict[str, str]) -> str:
    from .diagnostics import _md_table

    rows = result["parameters"]
    lines = [
        "# Identifiability of the population parameters on the shipped data",
        "",
        "Generated by `python -m infer identify` (see `infer/identify.py`); do not edit by hand.",
        "",
        f"Data: {result['n_measurements']} measurements from {len(result['datasets'])} datasets "
        f"and {result['n_constraints']} soft qualitative constraints, fitted with the default "
        "configuration (below). Computed on "
        f"{result['device']} in {result['seconds']:.0f} s.",
        "",
        "## Method, and what it can and cannot tell",
        "",
        "A local (Laplace) analysis at the posterior mode, in prior-whitened coordinates: each "
        "free parameter on its prior-standardised log/logit axis, each between-neuron spread "
        "and nuisance scale on a log axis, divided by the prior's own Laplace SD on that axis "
        "(1, 1/sqrt(2) for a half-normal spread, 2 for a scale). The mode is found by "
        "multi-start Adam and polished with L-BFGS-B on the exact adjoint gradient; the "
        "Hessian is a central finite difference of that gradient." + _solver_sentence(result),
        "",
        "* **contraction** = 1 - (Laplace posterior variance / Laplace prior variance): 0 "
        "means the data add nothing to the prior, 1 means the data pin the parameter down. "
        f"Below {PRIOR_DOMINATED} we call a parameter *prior-dominated*, above "
        f"{WELL_INFORMED} *well informed*. A spread's log-half-normal prior is skewed, and "
        "its curvature grows steeply above its mode, so a spread pushed above its prior mode "
        "can show contraction from the prior alone; read it with the next column.",
        "* **data share** of the curvature at the mode = 1 - (prior curvature / posterior "
        "curvature) along the parameter, the others held fixed: how much of the local "
        "information comes from the data rather than the prior.",
        "* **marginal/conditional**: the posterior SD divided by the SD with every other "
        "parameter held at the mode. Values well above 1 mean the parameter is informed only "
        "in combination with others (see the correlations and eigen-directions).",
        "* **slices** (figure) are one-dimensional cuts through the mode with the others held "
        "fixed, not profiles: a flat slice shows that the data do not inform the parameter; a "
        "curved slice does not prove identifiability when the parameter trades off against "
        "others.",
        "* Everything is local: a second mode, a ridge that bends, or a posterior truncated by "
        "a bound is only partly described. The model uses "
        "the default fit's virtual-neuron population, so spreads are inferred from few "
        "neurons.",
        "",
        f"Mode: negative log posterior {result['mode']['neg_log_posterior']:.3f} "
        f"(Adam start {result['mode']['adam_neg_log_posterior']:.3f}), gradient norm "
        f"{result['mode']['grad_norm']:.2e} after {result['mode']['polish_iterations']} L-BFGS-B "
        f"iterations ({result['mode']['polish_message']}). Hessian asymmetry before "
        f"symmetrising: {result['hessian_asymmetry']:.1e}; positive definite: "
        f"{'yes' if result['positive_definite'] else 'NO (the mode is not a strict maximum)'}."
        + _step_check_sentence(result.get("hessian_step_check")),
        "",
        "## Summary",
        "",
    ]
    by = {}
    for r in rows:
        by.setdefault(_verdict(r["contraction"]), []).append(r["parameter"])
    for label in ("well informed", "partly informed", "prior-dominated"):
        names = by.get(label, [])
        lines.append(f"* **{label}** ({len(names)}): {', '.join(names) if names else 'none'}")
    lines += [
        f"* Of {len(rows)} whitened directions, {result['n_informed_directions']} have a "
        f"posterior precision at least {1 / (1 - WELL_INFORMED):.0f}x the prior's (data-"
        f"informed) and {result['n_prior_dominated_directions']} less than "
        f"{1 / (1 - PRIOR_DOMINATED):.2f}x (prior-dominated).",
        "",
        "**Do not over-interpret** the posterior of a prior-dominated parameter: it restates "
        "the prior (documented in `docs/parameters.md`), and a paper should say so. A partly "
        "informed parameter with a large marginal/conditional ratio is informed only jointly "
        "with its correlated partners; report the combination, not the parameter alone.",
        "",
        "## Per parameter",
        "",
    ]
    nuts = result.get("nuts")
    header = [
        "parameter",
        "mode",
        "Laplace 90% interval",
        "prior SD",
        "posterior SD",
        "contraction",
        "data share",
        "marginal/conditional",
        "verdict",
    ]
    if nuts:
        header.insert(6, "NUTS contraction")
    table = []
    for r in rows:
        row = [
            r["parameter"],
            f"{r['mode']:.3g}",
            f"{r['laplace_90'][0]:.3g} to {r['laplace_90'][1]:.3g}",
            f"{r['prior_sd_w']:.2f}",
            f"{r['posterior_sd_w']:.2f}",
            f"{r['contraction']:.2f}",
            f"{r['data_curvature_share']:.2f}",
            f"{r['marginal_over_conditional']:.1f}",
            _verdict(r["contraction"]),
        ]
        if nuts:
            c = nuts["contraction"].get(
                r["parameter"], nuts["contraction"].get(r["latent"], float("nan"))
            )
            row.insert(6, f"{c:.2f}")
        table.append(row)
    lines += _md_table(header, table)
    lines += [
        "",
        "SDs are in the coordinate's own units (prior-standardised u for free parameters, "
        "natural log for spreads and scales; the prior SD is the prior's Laplace SD there); "
        "the mode and interval are in natural units (see `docs/parameters.md`).",
    ]
    if nuts:
        lines += [
            "",
            f"NUTS contraction: from the draws in `{nuts['file']}`. That run "
            + (
                "passes its diagnostics."
                if nuts["passed_diagnostics"]
                else f"FAILS its diagnostics ({', '.join(nuts['failed_checks'])}), so its "
                "contraction is indicative only."
            ),
        ]
    lines += ["", "## Strongest Laplace correlations", ""]
    lines += _md_table(
        ["a", "b", "r"], [[a, b, f"{r:+.2f}"] for a, b, r in result["top_correlations"]]
    )
    dirs = result["directions"]
    lines += ["", "## Eigen-directions of the whitened posterior curvature", ""]
    lines += [
        "Eigenvalue = posterior precision along the direction in prior units (1: prior only). "
        "The stiffest directions are what the data measure; the sloppiest are combinations "
        "the data leave free.",
        "",
    ]

    def fmt(d):
        return ", ".join(f"{v:+.2f} {n}" for n, v in d["loadings"])

    lines += _md_table(
        ["", "eigenvalue", "largest loadings"],
        [["stiffest", f"{d['eigenvalue']:.3g}", fmt(d)] for d in dirs[::-1][:4]]
        + [["sloppiest", f"{d['eigenvalue']:.3g}", fmt(d)] for d in dirs[:4]],
    )
    lines += ["", "## Figures", ""]
    for title, path in figures.items():
        lines.append(f"![{title}]({path})")
        lines.append("")
    lines += ["## Configuration", "", "```toml", result["config"].rstrip(), "```", ""]
    return "\n".join(lines)


def plot(result: dict, out_dir: Path) -> dict[str, str]:
    """Contraction bars, correlation heatmap, slices, eigen-spectrum; returns {title: png}."""
    from . import style

    style.apply()
    plt = style.plt
    rows = result["parameters"]
    names = [r["parameter"] for r in rows]
    figs = {}

    fig, ax = plt.subplots(figsize=(4.2, 0.16 * len(rows) + 0.8))
    c = np.array([r["contraction"] for r in rows])
    y = np.arange(len(rows))[::-1]
    ax.barh(y, c, color=style.POSTERIOR, height=0.7, label="Laplace")
    if "nuts" in result:
        nc = [result["nuts"]["contraction"].get(n, np.nan) for n in names]
        ax.plot(nc, y, "o", ms=3, color=style.DATA, label="NUTS run")
        ax.legend(loc="lower right", frameon=False)
    for xv in (PRIOR_DOMINATED, WELL_INFORMED):
        ax.axvline(xv, color=style.PRIOR, lw=0.6, ls="--")
    ax.set_yticks(y, names)
    ax.set_xlim(min(-0.05, float(np.nanmin(c)) - 0.05), 1.0)
    ax.set_xlabel("posterior contraction, 1 - var(post)/var(prior) (dimensionless)")
    style.save(fig, out_dir / "identifiability_contraction")
    figs["Posterior contraction per parameter"] = "identifiability_contraction.png"

    fig, ax = plt.subplots(figsize=(5.2, 4.6))
    corr = np.asarray(result["correlation"])
    im = ax.imshow(corr, cmap="RdBu_r", vmin=-1, vmax=1)
    ax.set_xticks(range(len(names)), names, rotation=90)
    ax.set_yticks(range(len(names)), names)
    fig.colorbar(im, ax=ax, shrink=0.8, label="Laplace posterior correlation")
    style.save(fig, out_dir / "identifiability_correlation")
    figs["Laplace posterior correlations"] = "identifiability_correlation.png"

    cols = 4
    nrow = math.ceil(len(rows) / cols)
    fig, axes = plt.subplots(nrow, cols, figsize=(7.2, 1.45 * nrow), squeeze=False)
    for ax, r in zip(axes.ravel(), rows, strict=False):
        s = result["slices"][r["latent"]]
        grid = np.asarray(s["w"])
        quad = -0.5 * ((grid - r["mode_w"]) / r["conditional_sd_w"]) ** 2
        ax.plot(grid, s["dlogpost"], color=style.POSTERIOR, lw=1, label="posterior slice")
        ax.plot(grid, quad, color=style.POSTERIOR, lw=0.7, ls=":", label="its quadratic")
        ax.plot(grid, s["dlogprior"], color=style.PRIOR, lw=1, ls="--", label="prior")
        ax.axvline(r["mode_w"], color=style.DATA, lw=0.5)
        ax.set_title(r["parameter"].replace("scale_", "scale "), pad=2, fontsize=6.5)
        lo = np.nanmin(np.r_[s["dlogpost"], s["dlogprior"]])
        ax.set_ylim(max(lo, -12) - 0.5, 0.8)
    for ax in axes.ravel()[len(rows) :]:
        ax.axis("off")
    axes[0, 0].legend(frameon=False, loc="lower center", fontsize=5.5)
    fig.supxlabel("coordinate (prior-standardised u; log for spreads and scales)")
    fig.supylabel("Δ log density vs the mode")
    fig.tight_layout()
    style.save(fig, out_dir / "identifiability_slices")
    figs["One-dimensional slices through the mode (not profiles)"] = "identifiability_slices.png"

    fig, ax = plt.subplots(figsize=(4.0, 2.4))
    ev = np.array([d["eigenvalue"] for d in result["directions"]])
    ax.semilogy(np.arange(1, len(ev) + 1), np.sort(np.abs(ev))[::-1], "o-", ms=3, lw=0.8)
    ax.axhline(1.0, color=style.PRIOR, ls="--", lw=0.6)
    ax.set_xlabel("direction (stiffest first)")
    ax.set_ylabel("posterior precision / prior precision")
    style.save(fig, out_dir / "identifiability_eigen")
    figs["Eigen-spectrum of the whitened curvature"] = "identifiability_eigen.png"
    return figs


def write_report(result: dict, out_dir: str | Path) -> Path:
    """Write ``identifiability.json``, the figures and ``identifiability.md`` into out_dir,
    all or nothing."""
    from ._io import write_report_dir

    return write_report_dir(out_dir, "identifiability", result, plot, render_markdown)
