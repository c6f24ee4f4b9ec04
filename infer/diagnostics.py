"""Convergence and identifiability diagnostics from a saved ArviZ InferenceData alone.

``diagnose(idata)`` returns a :class:`DiagnosticsReport`: a per-parameter table (posterior
summaries, R-hat, bulk/tail ESS, MCSE, prior SD, posterior/prior contraction), the global
sampler checks (divergences, tree-depth saturation, E-BFMI per chain, failed ODE solves), the
Monte-Carlo error of every posterior prediction and the strongest posterior correlations.
``write_report`` renders it as markdown with a PASS/FAIL header. Every statistic that ArviZ
provides is computed by ArviZ (``az.summary``, ``az.rhat``, ``az.ess``, ``az.mcse``, ``az.bfmi``).

Scales. Contraction ``1 - var_post / var_prior`` and correlations are computed on the scale on
which the prior is Gaussian: log for positive (log-normal) parameters, logit for fractions
(logit-normal), identity otherwise. The transform of each parameter is read from
``idata.attrs["parameter_transforms"]`` when present, else from the pathway definition, else
inferred from the draws (all positive -> log).

Convergence checks apply to MCMC (NUTS) runs only; for SVI and MAP runs the report says so and
keeps the checks that still mean something (failed solves, Monte-Carlo error of predictions).
"""

from __future__ import annotations

import dataclasses
import json
import math
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ._io import atomic_path

MCMC_ENGINES = ("nuts", "hmc", "mcmc")
NUMPYRO_DEFAULT_MAX_TREE_DEPTH = 10
SAMPLE_DIMS = ("chain", "draw")


@dataclasses.dataclass(frozen=True, kw_only=True)
class Thresholds:
    """Pass/fail thresholds of the diagnostics (defaults follow Vehtari et al. 2021 and Stan).

    Attributes:
        rhat_max: largest acceptable rank-normalised split R-hat of any parameter.
        ess_bulk_min: smallest acceptable bulk effective sample size of any parameter.
        ess_tail_min: smallest acceptable tail (5%/95% quantile) ESS of any parameter.
        divergences_max: largest acceptable number of divergent transitions (all chains).
        tree_depth_saturation_max: largest acceptable fraction of draws at the maximum tree depth.
        ebfmi_min: smallest acceptable energy Bayesian fraction of missing information per chain.
        failed_solves_max_fraction: largest acceptable fraction of posterior draws with at least
            one failed ODE solve.
        pred_mcse_rel_max: largest acceptable MCSE of the posterior mean of a prediction relative
            to its posterior SD (0.05 corresponds to an ESS of 400).
    """

    rhat_max: float = 1.01
    ess_bulk_min: float = 400.0
    ess_tail_min: float = 400.0
    divergences_max: int = 0
    tree_depth_saturation_max: float = 0.01
    ebfmi_min: float = 0.3
    failed_solves_max_fraction: float = 0.0
    pred_mcse_rel_max: float = 0.05

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise ValueError(
                    f"Thresholds.{field.name} must be a finite number >= 0, got {value!r}"
                )
        if self.rhat_max < 1.0:
            raise ValueError(f"Thresholds.rhat_max must be >= 1, got {self.rhat_max}")
        for name in ("tree_depth_saturation_max", "failed_solves_max_fraction"):
            if getattr(self, name) > 1.0:
                raise ValueError(
                    f"Thresholds.{name} is a fraction in [0, 1], got {getattr(self, name)}"
                )


@dataclasses.dataclass(frozen=True, kw_only=True)
class Check:
    """One pass/fail check. ``passed`` is None when the check does not apply to this run."""

    name: str
    value: str
    threshold: str
    passed: bool | None
    detail: str = ""

    @property
    def verdict(self) -> str:
        return {True: "PASS", False: "FAIL", None: "n/a"}[self.passed]


@dataclasses.dataclass(frozen=True, kw_only=True)
class DiagnosticsReport:
    """Everything ``write_report`` renders; also useful programmatically.

    Attributes:
        engine: inference engine from ``idata.attrs["engine"]`` (nuts / svi / map).
        n_chains, n_draws: posterior sample shape.
        convergence_applicable: whether MCMC convergence diagnostics apply (NUTS with draws).
        thresholds: the thresholds used.
        parameters: one row per parameter (index: name) with columns kind, transform, unit,
            mean, sd, q5, q50, q95, r_hat, ess_bulk, ess_tail, mcse_mean, prior_sd,
            contraction (on the ``transform`` scale).
        checks: the pass/fail checks, in report order.
        ebfmi: E-BFMI per chain, or None.
        sampler: per chain, the means of the NUTS sample_stats that describe its tuning
            (``step_size``, ``n_steps`` (leapfrog steps per draw), ``acceptance_rate``), for
            those present; empty without NUTS draws.
        divergences: number of divergent transitions, or None.
        tree_depth_saturation: fraction of draws at the maximum tree depth, or None.
        max_tree_depth: the NUTS maximum tree depth used for the saturation check, or None.
        failed_solves: total failed solves and fraction of draws with any, or None.
        pred_mcse: one row per measurement (index: measurement id) with columns dataset,
            readout, observed, mean, sd, mcse_mean, mcse_rel.
        coverage: :func:`predictive_coverage` (which data lie inside their 90 % posterior
            predictive interval); reported, not a pass/fail check.
        correlations: strongest posterior correlations (columns a, b, r), on transformed scales.
        provenance: engine, device, git commit, versions and data checksums from the attrs.
        notes: caveats met while computing (missing groups, assumed defaults).
    """

    engine: str
    n_chains: int
    n_draws: int
    convergence_applicable: bool
    thresholds: Thresholds
    parameters: pd.DataFrame
    checks: tuple[Check, ...]
    ebfmi: np.ndarray | None
    sampler: Mapping[str, np.ndarray]
    divergences: int | None
    tree_depth_saturation: float | None
    max_tree_depth: int | None
    failed_solves: Mapping[str, float] | None
    pred_mcse: pd.DataFrame
    coverage: pd.DataFrame
    correlations: pd.DataFrame
    provenance: Mapping[str, str]
    notes: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        """True when no applicable check failed."""
        return all(c.passed is not False for c in self.checks)

    @property
    def failed_checks(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if c.passed is False)


# --------------------------------------------------------------------------------------------
# Parameter metadata (names, kinds, transforms, units)


def _json_list(attrs: Mapping, key: str) -> list[str] | None:
    raw = attrs.get(key)
    if raw is None:
        return None
    if isinstance(raw, str):
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as err:
            raise ValueError(
                f"idata.attrs[{key!r}] is not valid JSON ({err}); expected a JSON list of names"
            ) from None
    else:
        value = list(np.atleast_1d(raw))
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"idata.attrs[{key!r}] must be a JSON list of names, got {raw!r}")
    return value


def _json_dict(attrs: Mapping, key: str) -> dict:
    raw = attrs.get(key)
    if raw is None:
        return {}
    if isinstance(raw, str):
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            return {"raw": raw}
        return value if isinstance(value, dict) else {"value": value}
    return dict(raw) if isinstance(raw, Mapping) else {"value": raw}


def parameter_kinds(idata) -> dict[str, str]:
    """Map each population parameter to its kind: "free", "sigma" or "nuisance" (report order).

    Names come from ``attrs["free_parameters"]``, ``["sigma_parameters"]`` and
    ``["nuisance_parameters"]``; without them, every scalar posterior variable except
    ``n_failed`` is taken, classified by its ``sigma_`` / ``scale_`` prefix.
    """
    post = idata.posterior
    attrs = idata.attrs
    lists = {
        kind: _json_list(attrs, f"{kind}_parameters") for kind in ("free", "sigma", "nuisance")
    }
    if all(v is None for v in lists.values()):
        scalars = [
            str(v)
            for v, da in post.data_vars.items()
            if set(da.dims) == set(SAMPLE_DIMS) and v != "n_failed"
        ]
        lists = {
            "free": [v for v in scalars if not v.startswith(("sigma_", "scale_"))],
            "sigma": [v for v in scalars if v.startswith("sigma_")],
            "nuisance": [v for v in scalars if v.startswith("scale_")],
        }
    kinds: dict[str, str] = {}
    for kind, names in lists.items():
        for name in names or ():
            if name not in post:
                raise ValueError(
                    f"attrs lists {kind} parameter {name!r} but the posterior has no such variable; "
                    f"posterior variables: {sorted(map(str, post.data_vars))}"
                )
            kinds[name] = kind
    if not kinds:
        raise ValueError("the posterior holds no scalar parameter to diagnose")
    return kinds


def _pathway_metadata() -> tuple[dict[str, str], dict[str, str], dict[str, bool]]:
    """(units, prior family, readout ratio flag) from the pathway definition, if importable."""
    try:
        from models import PATHWAY
    except Exception:  # the report must still render from the file alone
        return {}, {}, {}
    units = {p.name: p.unit for p in PATHWAY.parameters}
    families = {p.name: p.prior.family for p in PATHWAY.parameters}
    ratio = {o.name: o.ratio for o in PATHWAY.observables}
    return units, families, ratio


def parameter_transforms(idata, kinds: Mapping[str, str] | None = None) -> dict[str, str]:
    """The scale on which each parameter's prior is Gaussian: "log", "logit" or "identity"."""
    kinds = kinds or parameter_kinds(idata)
    given = _json_dict(idata.attrs, "parameter_transforms")
    _, families, _ = _pathway_metadata()
    out = {}
    for name, kind in kinds.items():
        draws = [np.asarray(idata.posterior[name])]
        if "prior" in idata.groups() and name in idata.prior:
            draws.append(np.asarray(idata.prior[name]))
        values = np.concatenate([d.ravel() for d in draws])
        values = values[np.isfinite(values)]
        positive = values.size > 0 and bool((values > 0).all())
        in_unit = positive and bool((values < 1).all())
        if name in given:
            wanted = str(given[name])
        elif kind in ("sigma", "nuisance"):
            wanted = "log"
        elif name in families:
            wanted = {"lognormal": "log", "logitnormal": "logit"}.get(families[name], "identity")
        else:
            wanted = "log" if positive else "identity"
        # Never apply a transform the draws do not support (e.g. a fraction at exactly 0).
        if (wanted == "log" and not positive) or (wanted == "logit" and not in_unit):
            wanted = "identity"
        out[name] = wanted
    return out


def parameter_units(idata, kinds: Mapping[str, str] | None = None) -> dict[str, str]:
    """Unit of each parameter: ``attrs["parameter_units"]``, else the pathway table."""
    kinds = kinds or parameter_kinds(idata)
    given = _json_dict(idata.attrs, "parameter_units")
    units, _, _ = _pathway_metadata()
    out = {}
    for name, kind in kinds.items():
        if name in given:
            out[name] = str(given[name])
        elif kind == "sigma":
            out[name] = "SD of log, dimensionless"
        elif kind == "nuisance":
            out[name] = "data units per model unit"
        else:
            out[name] = units.get(name, "unit not recorded")
    return out


def transform_values(values, transform: str) -> np.ndarray:
    """Apply a parameter transform ("log", "logit", "identity") to an array of draws."""
    x = np.asarray(values, dtype=float)
    if transform == "log":
        return np.log(x)
    if transform == "logit":
        return np.log(x) - np.log1p(-x)
    if transform == "identity":
        return x
    raise ValueError(f"unknown transform {transform!r}; expected log, logit or identity")


def readout_ratio(idata) -> dict[str, bool]:
    """Whether each predicted readout's neuron effect is a fold (True) or a difference (False)."""
    _, _, ratio = _pathway_metadata()
    if "predictions" in idata.groups() and "effect_kind" in idata.predictions.coords:
        kinds = idata.predictions["effect_kind"].values
        names = idata.predictions["readout"].values
        ratio.update({str(n): str(k) == "fold" for n, k in zip(names, kinds, strict=True)})
    return ratio


# --------------------------------------------------------------------------------------------
# Diagnostics


def _engine(idata) -> str:
    return str(idata.attrs.get("engine", "unknown")).lower()


def stacked_draws(da) -> np.ndarray:
    return np.asarray(da.transpose(*SAMPLE_DIMS, ...).values).reshape(-1, *da.shape[2:])


def _parameter_table(
    idata, kinds, transforms, units, convergence: bool, notes: list[str]
) -> pd.DataFrame:
    names = list(kinds)
    post = idata.posterior[names]
    quant = post.quantile([0.05, 0.5, 0.95], dim=SAMPLE_DIMS)
    table = pd.DataFrame(index=pd.Index(names, name="parameter"))
    table["kind"] = [kinds[n] for n in names]
    table["transform"] = [transforms[n] for n in names]
    table["unit"] = [units[n] for n in names]
    table["mean"] = [float(post[n].mean()) for n in names]
    table["sd"] = [float(post[n].std(ddof=1)) if post[n].size > 1 else math.nan for n in names]
    for q, col in zip((0.05, 0.5, 0.95), ("q5", "q50", "q95"), strict=True):
        table[col] = [float(quant[n].sel(quantile=q)) for n in names]
    if convergence:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=RuntimeWarning)
            diag = az_summary_diagnostics(idata, names)
        for col in ("r_hat", "ess_bulk", "ess_tail", "mcse_mean"):
            table[col] = diag[col].reindex(names).to_numpy(dtype=float)
    else:
        for col in ("r_hat", "ess_bulk", "ess_tail", "mcse_mean"):
            table[col] = math.nan
    has_prior = "prior" in idata.groups()
    if not has_prior:
        notes.append("no prior group: prior SD and contraction are not available")
    prior_sd, contraction = [], []
    for n in names:
        if has_prior and n in idata.prior:
            prior_draws = np.asarray(idata.prior[n]).ravel()
            post_draws = np.asarray(post[n]).ravel()
            prior_sd.append(float(np.std(prior_draws, ddof=1)))
            v_prior = np.var(transform_values(prior_draws, transforms[n]), ddof=1)
            v_post = (
                np.var(transform_values(post_draws, transforms[n]), ddof=1)
                if post_draws.size > 1
                else math.nan
            )
            contraction.append(float(1.0 - v_post / v_prior) if v_prior > 0 else math.nan)
        else:
            prior_sd.append(math.nan)
            contraction.append(math.nan)
    table["prior_sd"] = prior_sd
    table["contraction"] = contraction
    return table


def az_summary_diagnostics(idata, names: Sequence[str]) -> pd.DataFrame:
    """R-hat, bulk/tail ESS and MCSE of the mean of ``names``, from ``az.summary``."""
    import arviz as az

    return az.summary(idata, var_names=list(names), kind="diagnostics", round_to="none")


def _correlations(idata, kinds, transforms, top: int = 10) -> pd.DataFrame:
    names = list(kinds)
    empty = pd.DataFrame(columns=["a", "b", "r"])
    cols, kept = [], []
    for n in names:
        x = transform_values(stacked_draws(idata.posterior[n]), transforms[n])
        if x.size >= 3 and np.all(np.isfinite(x)) and np.std(x) > 0:
            cols.append(x)
            kept.append(n)
    if len(kept) < 2:
        return empty
    corr = np.corrcoef(np.stack(cols, axis=1), rowvar=False)
    iu = np.triu_indices(len(kept), k=1)
    order = np.argsort(-np.abs(corr[iu]))[:top]
    return pd.DataFrame(
        {
            "a": [kept[iu[0][i]] for i in order],
            "b": [kept[iu[1][i]] for i in order],
            "r": [float(corr[iu][i]) for i in order],
        }
    )


def correlation_matrix(idata, names: Sequence[str], transforms: Mapping[str, str]) -> np.ndarray:
    """Posterior correlation matrix of ``names`` on their transformed scales."""
    cols = [transform_values(stacked_draws(idata.posterior[n]), transforms[n]) for n in names]
    return np.corrcoef(np.stack(cols, axis=1), rowvar=False)


def _pred_mcse(idata, mcse_ok: bool) -> pd.DataFrame:
    import arviz as az

    post = idata.posterior
    if "pred" not in post:
        return pd.DataFrame()
    pred = post["pred"]
    dim = [d for d in pred.dims if d not in SAMPLE_DIMS][0]
    out = pd.DataFrame(index=pd.Index([str(m) for m in pred[dim].values], name="measurement"))
    cd = idata.constant_data if "constant_data" in idata.groups() else None
    for col, key in (("dataset", "dataset"), ("readout", "readout")):
        out[col] = [str(v) for v in cd[key].values] if cd is not None and key in cd else ""
    if "observed_data" in idata.groups() and "obs" in idata.observed_data:
        out["observed"] = np.asarray(idata.observed_data["obs"].values, dtype=float)
    out["mean"] = np.asarray(pred.mean(SAMPLE_DIMS).values, dtype=float)
    out["sd"] = (
        np.asarray(pred.std(SAMPLE_DIMS, ddof=1).values, dtype=float)
        if pred.sizes["draw"] * pred.sizes["chain"] > 1
        else math.nan
    )
    if mcse_ok:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=RuntimeWarning)
            mcse = az.mcse(post[["pred"]], method="mean")["pred"]
        out["mcse_mean"] = np.asarray(mcse.values, dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            out["mcse_rel"] = np.where(out["sd"] > 0, out["mcse_mean"] / out["sd"], 0.0)
    else:
        out["mcse_mean"] = math.nan
        out["mcse_rel"] = math.nan
    return out


PREDICTIVE_LEVEL = 0.9  # the posterior predictive interval of the coverage table (figures: 90 %)


def predictive_quantiles(idata, qs: Sequence[float]) -> np.ndarray | None:
    """[len(qs), measurement] quantiles of the posterior predictive ``obs`` (observation noise
    included), or None without at least two posterior predictive draws."""
    if "posterior_predictive" not in idata.groups() or "obs" not in idata.posterior_predictive:
        return None
    pp = stacked_draws(idata.posterior_predictive["obs"])
    if pp.shape[0] < 2:
        return None
    return np.nanquantile(pp, list(qs), axis=0)


def predictive_coverage(idata, level: float = PREDICTIVE_LEVEL) -> pd.DataFrame:
    """One row per measurement (index: measurement id): dataset, observed, the central
    ``level`` posterior predictive interval (lo, hi) and whether the datum lies inside it.
    Empty without observed data or posterior predictive draws."""
    q = predictive_quantiles(idata, ((1 - level) / 2, (1 + level) / 2))
    if q is None or "observed_data" not in idata.groups() or "obs" not in idata.observed_data:
        return pd.DataFrame()
    obs = idata.observed_data["obs"]
    out = pd.DataFrame(
        index=pd.Index([str(m) for m in obs[obs.dims[0]].values], name="measurement")
    )
    cd = idata.constant_data if "constant_data" in idata.groups() else None
    out["dataset"] = (
        [str(v) for v in cd["dataset"].values] if cd is not None and "dataset" in cd else ""
    )
    out["observed"] = np.asarray(obs.values, dtype=float)
    out["lo"], out["hi"] = q[0], q[1]
    out["inside"] = (out["observed"] >= out["lo"]) & (out["observed"] <= out["hi"])
    return out


def _max_tree_depth(idata, notes: list[str]) -> int:
    raw = idata.attrs.get("max_tree_depth")
    if raw is None:
        notes.append(
            f"attrs has no max_tree_depth: assumed numpyro's default {NUMPYRO_DEFAULT_MAX_TREE_DEPTH}"
        )
        return NUMPYRO_DEFAULT_MAX_TREE_DEPTH
    return int(raw)


def _fmt(x: float | None, spec: str = ".3g") -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    return format(x, spec)


def diagnose(idata, thresholds: Thresholds = Thresholds()) -> DiagnosticsReport:  # noqa: B008 (frozen)
    """Compute the diagnostics of a fitted InferenceData (see the module docstring)."""
    import arviz as az

    if "posterior" not in idata.groups():
        raise ValueError(
            "the InferenceData has no posterior group; was the file written by 'python -m infer fit'?"
        )
    notes: list[str] = []
    post = idata.posterior
    engine = _engine(idata)
    n_chains, n_draws = int(post.sizes["chain"]), int(post.sizes["draw"])
    has_stats = "sample_stats" in idata.groups()
    convergence = has_stats and n_draws > 1 and engine not in ("svi", "map")
    if not convergence:
        why = (
            f"engine {engine!r}"
            if engine in ("svi", "map")
            else "no sample_stats group"
            if not has_stats
            else f"{n_draws} draw(s) per chain"
        )
        notes.append(
            f"MCMC convergence diagnostics (R-hat, ESS, divergences, tree depth, E-BFMI) do not apply: {why}"
        )
    if convergence and engine not in MCMC_ENGINES:
        notes.append(
            f"engine {engine!r} is not recorded as NUTS; sample_stats present, so MCMC checks are run"
        )
    kinds = parameter_kinds(idata)
    transforms = parameter_transforms(idata, kinds)
    units = parameter_units(idata, kinds)
    table = _parameter_table(idata, kinds, transforms, units, convergence, notes)
    t = thresholds
    checks: list[Check] = []

    def na(name, threshold):
        checks.append(
            Check(
                name=name,
                value="n/a",
                threshold=threshold,
                passed=None,
                detail=f"not applicable to engine {engine}",
            )
        )

    if convergence:
        worst = table["r_hat"].idxmax() if table["r_hat"].notna().any() else None
        rmax = float(table["r_hat"].max())
        checks.append(
            Check(
                name="R-hat (max over parameters)",
                value=_fmt(rmax, ".4f"),
                threshold=f"<= {t.rhat_max}",
                passed=bool(rmax <= t.rhat_max),
                detail=f"worst: {worst}; {int((table['r_hat'] > t.rhat_max).sum())} parameter(s) above",
            )
        )
        for col, lim, label in (
            ("ess_bulk", t.ess_bulk_min, "bulk ESS"),
            ("ess_tail", t.ess_tail_min, "tail ESS"),
        ):
            emin = float(table[col].min())
            checks.append(
                Check(
                    name=f"{label} (min over parameters)",
                    value=_fmt(emin, ".0f"),
                    threshold=f">= {lim:g}",
                    passed=bool(emin >= lim),
                    detail=f"worst: {table[col].idxmin()}; {int((table[col] < lim).sum())} parameter(s) below",
                )
            )
    else:
        na("R-hat (max over parameters)", f"<= {t.rhat_max}")
        na("bulk ESS (min over parameters)", f">= {t.ess_bulk_min:g}")
        na("tail ESS (min over parameters)", f">= {t.ess_tail_min:g}")

    ss = idata.sample_stats if has_stats else None
    divergences = saturation = ebfmi = max_depth = None
    if convergence and "diverging" in ss:
        divergences = int(np.asarray(ss["diverging"]).astype(bool).sum())
        per_chain = np.asarray(ss["diverging"]).astype(bool).sum(axis=1)
        checks.append(
            Check(
                name="divergent transitions",
                value=str(divergences),
                threshold=f"<= {t.divergences_max}",
                passed=divergences <= t.divergences_max,
                detail="per chain: " + ", ".join(map(str, per_chain)),
            )
        )
    elif convergence:
        notes.append("sample_stats has no 'diverging' field: divergences not checked")
        na("divergent transitions", f"<= {t.divergences_max}")
    else:
        na("divergent transitions", f"<= {t.divergences_max}")

    if convergence and ("tree_depth" in ss or "n_steps" in ss):
        max_depth = _max_tree_depth(idata, notes)
        if "tree_depth" in ss:
            at_max = np.asarray(ss["tree_depth"]) >= max_depth
            how = f"tree_depth >= {max_depth}"
        else:  # numpyro's num_steps: a full tree of depth d has 2**d - 1 leapfrog steps
            at_max = np.asarray(ss["n_steps"]) >= 2**max_depth - 1
            how = f"n_steps >= 2**{max_depth} - 1"
        saturation = float(at_max.mean())
        checks.append(
            Check(
                name="tree-depth saturation (fraction of draws)",
                value=_fmt(saturation, ".3%"),
                threshold=f"<= {t.tree_depth_saturation_max:.1%}",
                passed=saturation <= t.tree_depth_saturation_max,
                detail=f"{how}, max tree depth {max_depth}",
            )
        )
    else:
        if convergence:
            notes.append(
                "sample_stats has neither 'tree_depth' nor 'n_steps': tree depth not checked"
            )
        na("tree-depth saturation (fraction of draws)", f"<= {t.tree_depth_saturation_max:.1%}")

    if convergence and "energy" in ss:
        ebfmi = np.asarray(az.bfmi(idata), dtype=float)
        checks.append(
            Check(
                name="E-BFMI (min over chains)",
                value=_fmt(float(ebfmi.min()), ".3f"),
                threshold=f">= {t.ebfmi_min}",
                passed=bool(ebfmi.min() >= t.ebfmi_min),
                detail="per chain: " + ", ".join(f"{v:.3f}" for v in ebfmi),
            )
        )
    else:
        if convergence:
            notes.append("sample_stats has no 'energy' field: E-BFMI not checked")
        na("E-BFMI (min over chains)", f">= {t.ebfmi_min}")

    log = json.loads(idata.attrs.get("fit_log", "{}"))
    if convergence and "nuts_interrupted" in log:
        planned = log.get("nuts_draws_planned")
        stopped = bool(log["nuts_interrupted"])
        checks.append(
            Check(
                name="NUTS run finished (not interrupted)",
                value=f"{n_draws} of {planned} draws" if planned else f"{n_draws} draws",
                threshold="all planned draws",
                passed=not stopped,
                detail="interrupted: continue it with `python -m infer fit --config "
                "RUN_DIR/config.toml --out RUN_DIR --resume`"
                if stopped
                else "per chain",
            )
        )

    failed = None
    if "n_failed" in post:
        nf = np.asarray(post["n_failed"])
        frac = float((nf > 0).mean())
        failed = {"total": float(nf.sum()), "fraction_of_draws": frac}
        checks.append(
            Check(
                name="failed ODE solves (fraction of draws with any)",
                value=_fmt(frac, ".3%"),
                threshold=f"<= {t.failed_solves_max_fraction:.1%}",
                passed=frac <= t.failed_solves_max_fraction,
                detail=f"{int(nf.sum())} failed solve(s) in {nf.size} draw(s)",
            )
        )
    else:
        notes.append("posterior has no 'n_failed': failed solves not counted")

    pred_mcse = _pred_mcse(idata, mcse_ok=n_draws * n_chains > 1)
    if not pred_mcse.empty and pred_mcse["mcse_rel"].notna().any():
        worst_rel = float(pred_mcse["mcse_rel"].max())
        checks.append(
            Check(
                name="MCSE of predictions / posterior SD (max)",
                value=_fmt(worst_rel, ".3f"),
                threshold=f"<= {t.pred_mcse_rel_max}",
                passed=worst_rel <= t.pred_mcse_rel_max,
                detail=f"worst: {pred_mcse['mcse_rel'].idxmax()}",
            )
        )
    else:
        na("MCSE of predictions / posterior SD (max)", f"<= {t.pred_mcse_rel_max}")

    provenance = {
        k: str(idata.attrs[k])
        for k in (
            "engine",
            "device",
            "git_commit",
            "resumed_git_commit",
            "n_neurons",
            "excluded_measurements",
            "package_versions",
            "data_checksums",
        )
        if k in idata.attrs
    }
    return DiagnosticsReport(
        engine=engine,
        n_chains=n_chains,
        n_draws=n_draws,
        convergence_applicable=convergence,
        thresholds=thresholds,
        parameters=table,
        checks=tuple(checks),
        ebfmi=ebfmi,
        sampler={
            k: np.asarray(ss[k], dtype=float).mean(axis=1)
            for k in SAMPLER_STATS
            if convergence and k in ss
        },
        divergences=divergences,
        tree_depth_saturation=saturation,
        max_tree_depth=max_depth,
        failed_solves=failed,
        pred_mcse=pred_mcse,
        coverage=predictive_coverage(idata),
        correlations=_correlations(idata, kinds, transforms),
        provenance=provenance,
        notes=tuple(notes),
    )


# --------------------------------------------------------------------------------------------
# Markdown


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    def cell(x) -> str:
        return str(x).replace("|", "\\|").replace("\n", " ")

    lines = [
        "| " + " | ".join(map(cell, header)) + " |",
        "|" + "|".join("---" for _ in header) + "|",
    ]
    lines += ["| " + " | ".join(map(cell, r)) + " |" for r in rows]
    return lines


SAMPLER_STATS = {
    "step_size": "step size",
    "n_steps": "leapfrog steps per draw",
    "acceptance_rate": "acceptance",
}


def render_markdown(report: DiagnosticsReport) -> str:
    """The report as markdown text (see ``write_report``)."""
    r = report
    verdict = "PASS" if r.passed else "FAIL"
    lines = [f"# Inference diagnostics: {verdict}", ""]
    if r.passed:
        applicable = sum(c.passed is not None for c in r.checks)
        lines.append(f"All {applicable} applicable check(s) pass.")
    else:
        lines.append(
            "Failed: "
            + "; ".join(f"{c.name} = {c.value} (needs {c.threshold})" for c in r.failed_checks)
            + "."
        )
    if not r.convergence_applicable:
        lines.append("")
        lines.append(
            f"**Engine `{r.engine}`: MCMC convergence diagnostics do not apply.** "
            "The posterior is an approximation (SVI) or a point estimate (MAP); "
            "its quality must be judged by predictive checks and by comparison with NUTS."
        )
    lines += ["", f"- engine: `{r.engine}`; {r.n_chains} chain(s) x {r.n_draws} draw(s)"]
    for key, value in r.provenance.items():
        if key in ("package_versions", "data_checksums"):
            continue
        if key == "excluded_measurements":
            ids = _json_list(r.provenance, key) or []
            lines.append(
                "- measurements excluded from the fit (config `data.exclude`; see its comments): "
                + (", ".join(f"`{i}`" for i in ids) if ids else "none")
            )
        elif key != "engine":
            lines.append(f"- {key}: `{value}`")
    lines += ["", "## Checks", ""]
    lines += _md_table(
        ["check", "value", "threshold", "result", "detail"],
        [[c.name, c.value, c.threshold, c.verdict, c.detail] for c in r.checks],
    )
    if r.ebfmi is not None:
        lines += ["", "E-BFMI per chain: " + ", ".join(f"{v:.3f}" for v in r.ebfmi)]
    if r.sampler:
        lines += [
            "",
            "Sampler per chain (means over draws): "
            + "; ".join(
                f"{SAMPLER_STATS[k]} " + ", ".join(f"{v:.4g}" for v in values)
                for k, values in r.sampler.items()
            ),
        ]
    if r.notes:
        lines += ["", "Notes:", ""] + [f"- {n}" for n in r.notes]

    lines += ["", "## Thresholds", ""]
    lines += _md_table(
        ["threshold", "value"],
        [[f.name, getattr(r.thresholds, f.name)] for f in dataclasses.fields(r.thresholds)],
    )

    t = r.parameters
    lines += [
        "",
        "## Parameters",
        "",
        "Summaries on the natural scale (5/50/95% are posterior quantiles). R-hat is the "
        "rank-normalised split R-hat; ESS and MCSE of the mean from ArviZ. Contraction = "
        "1 - var(posterior)/var(prior), computed on the `scale` column (log for positive "
        "log-normal parameters, logit for fractions), where the prior is Gaussian; "
        "1 = fully informed by the data, 0 = prior unchanged, < 0 = posterior wider than the prior.",
        "",
    ]
    for kind, title in (
        ("free", "Population parameters"),
        ("sigma", "Between-neuron log-SDs"),
        ("nuisance", "Nuisance scales"),
    ):
        sub = t[t["kind"] == kind]
        if sub.empty:
            continue
        lines += [f"### {title}", ""]
        rows = []
        for name, row in sub.iterrows():
            rows.append(
                [
                    f"`{name}`",
                    row["unit"],
                    _fmt(row["mean"]),
                    _fmt(row["sd"]),
                    _fmt(row["q5"]),
                    _fmt(row["q50"]),
                    _fmt(row["q95"]),
                    _fmt(row["r_hat"], ".3f"),
                    _fmt(row["ess_bulk"], ".0f"),
                    _fmt(row["ess_tail"], ".0f"),
                    _fmt(row["mcse_mean"], ".2g"),
                    _fmt(row["prior_sd"]),
                    row["transform"],
                    _fmt(row["contraction"], ".2f"),
                ]
            )
        lines += _md_table(
            [
                "parameter",
                "unit",
                "mean",
                "sd",
                "5%",
                "50%",
                "95%",
                "R-hat",
                "ESS bulk",
                "ESS tail",
                "MCSE mean",
                "prior sd",
                "scale",
                "contraction",
            ],
            rows,
        )
        lines.append("")

    lines += ["## What the data inform", ""]
    ranked = t["contraction"].dropna().sort_values(ascending=False)
    if ranked.empty:
        lines.append("No prior draws: contraction cannot be computed.")
    else:
        strong = ranked[ranked >= 0.5]
        weak = ranked[ranked < 0.1]
        lines.append(
            f"{len(strong)} of {len(ranked)} parameters contract by at least 50% "
            f"(data-informed); {len(weak)} contract by less than 10% (prior-dominated: "
            "their posteriors restate the prior and should not be read as estimates)."
        )
        lines.append("")
        rows = [
            [
                i + 1,
                f"`{n}`",
                t.loc[n, "kind"],
                t.loc[n, "transform"],
                f"{c:.2f}",
                "data" if c >= 0.5 else ("partly" if c >= 0.1 else "prior"),
            ]
            for i, (n, c) in enumerate(ranked.items())
        ]
        lines += _md_table(
            ["rank", "parameter", "kind", "scale", "contraction", "informed by"], rows
        )
    lines += [
        "",
        "### Strongest posterior correlations",
        "",
        "Pearson correlation of the posterior draws on the transformed scales; |r| near 1 "
        "marks combinations the data constrain while the individual parameters are not "
        "(ridges), which also slow NUTS.",
        "",
    ]
    if r.correlations.empty:
        lines.append("Not available (fewer than 2 varying parameters or 3 draws).")
    else:
        lines += _md_table(
            ["parameter a", "parameter b", "r"],
            [
                [f"`{a}`", f"`{b}`", f"{v:+.3f}"]
                for a, b, v in r.correlations.itertuples(index=False)
            ],
        )

    cov = r.coverage
    if not cov.empty:
        outside = cov[~cov["inside"]]
        n, k = len(cov), len(outside)
        pct = round(100 * PREDICTIVE_LEVEL)
        lines += ["", "## Posterior predictive coverage", ""]
        lines.append(
            f"{k} of {n} measurements lie outside their central {pct} % posterior predictive "
            "interval (observation noise included; the light band of the predictive figure). "
            f"A calibrated model leaves about {100 - pct} % of new data outside "
            f"({(1 - PREDICTIVE_LEVEL) * n:.1f} of {n}); these data also informed the "
            "posterior, so fewer are expected in-sample. Reported, not a check."
        )
        if k:
            lines.append("")
            lines += _md_table(
                ["measurement", "dataset", "observed", f"{pct} % interval"],
                [
                    [
                        f"`{mid}`",
                        row["dataset"],
                        _fmt(row["observed"]),
                        f"{_fmt(row['lo'])} to {_fmt(row['hi'])}",
                    ]
                    for mid, row in outside.iterrows()
                ],
            )

    lines += ["", "## Monte-Carlo error of the predictions", ""]
    pm = r.pred_mcse
    if pm.empty:
        lines.append("The posterior has no `pred` variable.")
    elif pm["mcse_mean"].isna().all():
        lines.append("Not available (a single draw).")
    else:
        lines.append(
            "MCSE of the posterior mean prediction of each measurement (ArviZ `mcse`, "
            "method mean), absolute and relative to the posterior SD of that prediction. "
            f"Largest relative error: {pm['mcse_rel'].max():.3f}; median: {pm['mcse_rel'].median():.3f}."
        )
        lines.append("")
        rows = []
        for mid, row in pm.sort_values("mcse_rel", ascending=False).iterrows():
            rows.append(
                [
                    f"`{mid}`",
                    row["dataset"],
                    row["readout"],
                    _fmt(row.get("observed", math.nan)),
                    _fmt(row["mean"]),
                    _fmt(row["sd"]),
                    _fmt(row["mcse_mean"], ".2g"),
                    _fmt(row["mcse_rel"], ".3f"),
                ]
            )
        lines += _md_table(
            [
                "measurement",
                "dataset",
                "readout",
                "observed",
                "pred mean",
                "pred sd",
                "MCSE",
                "MCSE / sd",
            ],
            rows,
        )

    extra = [
        (k, r.provenance[k]) for k in ("package_versions", "data_checksums") if k in r.provenance
    ]
    if extra:
        lines += ["", "## Provenance", ""]
        for key, value in extra:
            lines += [f"{key}:", "", "```json", value, "```", ""]
    return "\n".join(lines).rstrip() + "\n"


def write_report(report: DiagnosticsReport, path: str | Path) -> Path:
    """Write the markdown report atomically; return its path."""
    path = Path(path)
    text = render_markdown(report)
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


def load_run(run_dir: str | Path):
    """Read ``RUN_DIR/posterior.nc`` with a clear error when it is missing."""
    import arviz as az

    path = Path(run_dir) / "posterior.nc"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: run 'python -m infer fit' first, or give the run directory that holds posterior.nc"
        )
    return az.from_netcdf(path)


def diagnose_run(run_dir: str | Path, thresholds: Thresholds = Thresholds()) -> Path:  # noqa: B008 (frozen)
    """Read ``RUN_DIR/posterior.nc``, write ``RUN_DIR/report.md``; return the report path."""
    report = diagnose(load_run(run_dir), thresholds)
    return write_report(report, Path(run_dir) / "report.md")
