"""The simulation-based calibration report: markdown, rank histograms and ECDF differences.

Made from the results JSON that ``infer.sbc.run_sbc`` returns (``python -m infer sbc`` writes
both; ``python -m infer sbc-report`` re-renders a saved JSON).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from scipy import stats

BAND = 0.99  # coverage of the binomial bands drawn on the rank plots


def _display(name: str) -> str:
    return name.removeprefix("raw_")


def _n_ranks(result: dict) -> int:
    s = result["settings"]
    return s["draws"] // s["thin"] + 1


def histogram_band(n_datasets: int, bins: int, level: float = BAND) -> tuple[float, float]:
    """Central ``level`` interval of one bin's count under uniform ranks (Binomial(S, 1/B))."""
    lo = stats.binom.ppf((1 - level) / 2, n_datasets, 1.0 / bins)
    hi = stats.binom.ppf(1 - (1 - level) / 2, n_datasets, 1.0 / bins)
    return float(lo), float(hi)


def ecdf_difference(rank: np.ndarray, n_ranks: int, level: float = BAND):
    """(grid z, ECDF(z) - z, pointwise lower, upper) of the normalised ranks.

    ``z = (r + 1) / n_ranks`` for each possible rank r; under uniformity the ECDF count at z
    is Binomial(S, z), so the band is pointwise, not simultaneous (Säilynoja et al. 2022 give
    simultaneous bands; a pointwise band is narrower, so excursions are flagged more often)."""
    rank = np.asarray(rank)
    s = len(rank)
    z = np.arange(1, n_ranks + 1) / n_ranks
    ecdf = np.array([(rank <= r).mean() for r in range(n_ranks)])
    lo = stats.binom.ppf((1 - level) / 2, s, z) / s - z
    hi = stats.binom.ppf(1 - (1 - level) / 2, s, z) / s - z
    return z, ecdf - z, lo, hi


CHEBYSHEV_Z = 3.0
CHEBYSHEV_BOUND = 1.0 / CHEBYSHEV_Z**2  # P(|theta - E theta| >= 3 SD) <= 1/9, any distribution


def chebyshev_excess(z: np.ndarray) -> tuple[int, int, float]:
    """(k, n, p): k of n finite z-scores have |z| > 3, and p = P(Binomial(n, 1/9) >= k).

    Under calibration the truth is a draw from its dataset's posterior, so by Chebyshev's
    inequality at most 1/9 of datasets (whatever the posterior's shape) have |z| >= 3 with the
    exact posterior mean and SD; a small p says more than that (a sign of miscalibration, or
    of posterior SDs underestimated by few draws)."""
    z = np.asarray(z, float)
    z = z[np.isfinite(z)]
    k = int(np.sum(np.abs(z) > CHEBYSHEV_Z))
    p = float(stats.binom.sf(k - 1, z.size, CHEBYSHEV_BOUND)) if z.size else float("nan")
    return k, int(z.size), p


def zscore_contraction(result: dict, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Posterior z-score (mean - truth) / sd and contraction 1 - var_post / var_prior per
    dataset (Schad et al. 2021); the prior variance is that of the truth draws."""
    truth = np.asarray(result["truth"][name], float)
    mean = np.asarray(result["posterior_mean"][name], float)
    sd = np.asarray(result["posterior_sd"][name], float)
    v_prior = np.var(truth, ddof=1)
    z = (mean - truth) / np.where(sd > 0, sd, np.nan)
    contraction = 1.0 - sd**2 / v_prior if v_prior > 0 else np.full_like(sd, np.nan)
    return z, contraction


def _panels(style, names, draw, out_stem: Path, xlabel: str, ylabel: str) -> None:
    """One panel per latent (``draw(ax, name)``), unused panels hidden, saved PNG + PDF."""
    cols = min(3, len(names))
    nrow = math.ceil(len(names) / cols)
    fig, axes = style.plt.subplots(nrow, cols, figsize=(2.4 * cols, 1.9 * nrow), squeeze=False)
    for ax, n in zip(axes.ravel(), names, strict=False):
        draw(ax, n)
    for ax in axes.ravel()[len(names) :]:
        ax.axis("off")
    fig.supxlabel(xlabel)
    fig.supylabel(ylabel)
    fig.tight_layout()
    style.save(fig, out_stem)


def plot(result: dict, out_dir: Path) -> dict[str, str]:
    """Rank histograms, ECDF differences and z-score/contraction; returns {title: png}."""
    from . import style

    style.apply()
    names = result["latents"]
    s = result["settings"]
    n_ranks = _n_ranks(result)
    n_sets = len(next(iter(result["ranks"].values())))
    lo, hi = histogram_band(n_sets, s["bins"])

    def histogram(ax, n):
        counts = result["tests"][n]["counts"]
        edges = np.arange(s["bins"] + 1) * n_ranks / s["bins"]
        ax.axhspan(lo, hi, color=style.PRIOR, alpha=0.3, lw=0)
        ax.axhline(n_sets / s["bins"], color=style.PRIOR, lw=0.8)
        ax.stairs(counts, edges, fill=True, color=style.POSTERIOR, alpha=0.25, lw=0)
        ax.stairs(counts, edges, color=style.POSTERIOR, lw=1.2)
        ax.set_title(f"{_display(n)} (p = {result['tests'][n]['p_value']:.2f})", pad=2)
        ax.set_xlim(0, n_ranks)

    def ecdf(ax, n):
        z, d, blo, bhi = ecdf_difference(result["ranks"][n], n_ranks)
        ax.fill_between(z, blo, bhi, color=style.PRIOR, alpha=0.3, lw=0, step="post")
        ax.step(z, d, where="post", color=style.POSTERIOR, lw=1)
        ax.axhline(0, color=style.PRIOR, lw=0.6)
        ax.set_title(_display(n), pad=2)
        ax.set_xlim(0, 1)

    def zscores(ax, n):
        zs, c = zscore_contraction(result, n)
        ax.plot(c, zs, "o", ms=2.2, color=style.POSTERIOR, alpha=0.7)
        ax.axhline(0, color=style.PRIOR, lw=0.6)
        for y in (-3, 3):
            ax.axhline(y, color=style.PRIOR, lw=0.5, ls="--")
        ax.set_title(_display(n), pad=2)
        ax.set_xlim(min(-0.05, float(np.nanmin(c)) - 0.05), 1.0)

    _panels(
        style,
        names,
        histogram,
        out_dir / "sbc_rank_histograms",
        f"rank of the truth among {n_ranks - 1} posterior draws",
        "datasets per bin",
    )
    _panels(style, names, ecdf, out_dir / "sbc_ecdf_difference", "normalised rank z", "ECDF(z) - z")
    _panels(
        style,
        names,
        zscores,
        out_dir / "sbc_zscore_contraction",
        "posterior contraction, 1 - var(post)/var(prior) (dimensionless)",
        "posterior z-score (mean - truth)/sd",
    )
    return {
        f"Rank histograms ({n_sets} simulated datasets); grey band: {BAND:.0%} binomial "
        "interval of a bin under calibration": "sbc_rank_histograms.png",
        f"ECDF difference of the normalised ranks; grey: pointwise {BAND:.0%} band": (
            "sbc_ecdf_difference.png"
        ),
        "Posterior z-score against contraction, one point per dataset": (
            "sbc_zscore_contraction.png"
        ),
    }


def _chebyshev_cell(z) -> str:
    k, n, p = chebyshev_excess(z)
    return f"{k}/{n} ({k / max(n, 1):.0%}); p = {p:.2f}"


def _per_dataset_health(result: dict, n_draws: int) -> list[str]:
    """A paragraph on each dataset's own chain (results from before these were recorded: none)."""
    if "lowest_ess" not in result:
        return []
    ess = np.asarray(result["lowest_ess"], dtype=float)
    step = np.asarray(result["step_size"], dtype=float)
    # a tenth: the bulk ESS of 49 independent draws falls below 8 in about 1 % of chains
    low = np.flatnonzero(ess < n_draws / 10)
    listed = ", ".join(str(i) for i in low[:20]) + (" ..." if len(low) > 20 else "")
    return [
        "",
        "Per dataset (its one chain): the lowest bulk ESS over latents of its "
        f"{n_draws} thinned draws has median {np.median(ess):.0f}; {len(low)} datasets fall "
        f"below {n_draws / 10:.1f} (a tenth of the draws)"
        + (f": {listed}" if len(low) else "")
        + ". Such a chain's draws are autocorrelated and its ranks over-dispersed (a chain "
        "that did not move gives rank 0 or the maximum). Adapted step sizes: median "
        f"{np.median(step):.3g}, range {step.min():.3g} to {step.max():.3g}.",
    ]


def render_markdown(result: dict, figures: dict[str, str]) -> str:
    from .diagnostics import _md_table

    s = result["settings"]
    names = result["latents"]
    n_sets = len(next(iter(result["ranks"].values())))
    n_ranks = _n_ranks(result)
    verdict = "HOLDS" if result["calibrated"] else "FAILS"
    failing = [
        _display(n)
        for n in names
        if result["tests"][n]["p_value"] <= result["bonferroni_threshold"]
    ]
    total_transitions = n_sets * s["draws"]
    lines = [
        "# Simulation-based calibration of the population model",
        "",
        "Generated by `python -m infer sbc` (see `infer/sbc.py`, `infer/sbc_report.py`); do "
        "not edit by hand.",
        "",
        *(
            [
                f"**PARTIAL: {n_sets} of {s['simulations']} datasets fitted.** Everything "
                "below covers only these; `python -m infer sbc --resume` (same settings) fits "
                "the rest.",
                "",
            ]
            if result.get("partial")
            else []
        ),
        f"**Calibration {verdict}** at the stated test: every latent's rank histogram is "
        f"tested for uniformity (chi-square over {s['bins']} bins), and the run passes when no "
        f"p-value falls at or below {result['bonferroni_threshold']:.2g} (alpha = "
        f"{result['alpha']} Bonferroni-corrected over {len(names)} latents)"
        + (f"; failing: {', '.join(failing)}." if failing else "."),
        "",
        "## What was done (Talts et al. 2018)",
        "",
        f"1. {n_sets} 'true' latent vectors were drawn from the prior; each was simulated "
        "through the population model's own likelihood (the same measurements, conditions, "
        "times, observation SDs and fixed virtual neurons as a real fit) to give one dataset. "
        f"{result['redrawn_truths']} truth draws whose ODE solve failed were redrawn, so the "
        "prior being calibrated is the prior restricted to solvable parameters.",
        f"2. Each dataset was fitted with NUTS ({s['warmup']} warm-up, {s['draws']} draws "
        f"thinned by {s['thin']}, maximum tree depth {s['max_tree_depth']}, target acceptance "
        f"{s['target_accept']}), "
        + (
            f"its warm-up starting where {s['init_steps']} Adam steps (learning rate "
            f"{s['init_learning_rate']:g}) from the prior medians down its own log density "
            "ended, as a fit starts from its MAP"
            if s.get("init_steps")
            else "its warm-up starting at the prior medians"
        )
        + "; one compiled program fits many datasets at once (numpyro's functional NUTS "
        f"vmapped over datasets; batches of {s['batch']}, each cut into 2K pieces when K > 1 "
        "devices share the work), each with its own step-size and mass-matrix adaptation.",
        f"3. The rank of each truth among its dataset's {n_ranks - 1} thinned draws (0 to "
        f"{n_ranks - 1}) is uniform when the inference is calibrated.",
        "",
        "## Reduced setting (so it runs on 2 CPU cores)",
        "",
    ]
    lines += _md_table(
        ["setting", "value"],
        [
            ["datasets", ", ".join(s["datasets"])],
            [
                "measurements / solved conditions",
                f"{len(result['measurements'])} / {result['n_solved_conditions']}",
            ],
            ["free parameters", ", ".join(s["free"])],
            ["latents ranked", ", ".join(_display(n) for n in names)],
            ["virtual neurons", str(s["neurons"])],
            ["solver", f"Tsit5, rtol {s['rtol']:g}, atol {s['atol']:g}"],
            ["seed", str(s["seed"])],
            [
                "left out",
                "the soft qualitative constraints and the one-sided spread bound (no simulator "
                "exists for them; the model runs with generative_only=True)",
            ],
        ],
    )
    lines += [
        "",
        "Ranks are taken on each latent's sampled scale: free parameters as their "
        "prior-standardised value u (a monotone map of the parameter, so the rank equals the "
        "parameter's rank), spreads and nuisance scales as themselves.",
        "",
        "## Results",
        "",
    ]
    rows = []
    for n in names:
        t = result["tests"][n]
        z, c = zscore_contraction(result, n)
        rows.append(
            [
                _display(n),
                " ".join(str(x) for x in t["counts"]),
                f"{t['chi2']:.1f}",
                f"{t['p_value']:.3f}",
                f"{np.nanmedian(c):.2f}",
                _chebyshev_cell(z),
            ]
        )
    lines += _md_table(
        [
            "latent",
            "counts per bin",
            "chi-square",
            "p",
            "median contraction",
            "|z| > 3 (p vs Chebyshev's 1/9)",
        ],
        rows,
    )
    lo, hi = histogram_band(n_sets, s["bins"])
    lines += [
        "",
        f"Under calibration each bin holds {n_sets / s['bins']:.0f} datasets on average, and "
        f"{lo:.0f} to {hi:.0f} with {BAND:.0%} probability. 'median contraction' is "
        "1 - var(posterior)/var(prior) per dataset (how much the reduced data inform the "
        "latent); '|z| > 3' is the share of datasets whose posterior mean lies more than 3 "
        "posterior SDs from the truth. A Gaussian posterior gives 0.3 %, but a calibrated "
        "posterior of any shape can give up to 1/9 (Chebyshev's inequality: the truth is a "
        "draw from the posterior), so the p beside it is P(Binomial(datasets, 1/9) >= count); "
        "a small p would flag miscalibration (or posterior SDs underestimated from few "
        "draws). Both use the posterior mean and SD on the ranked scale; the ranks are the "
        "test.",
        "",
        "Sampler health over all datasets: "
        f"{result['divergent_transitions']} divergent transitions in "
        f"{total_transitions} post-warm-up transitions "
        f"({result['datasets_with_divergences']} datasets with any), mean acceptance "
        f"{result['mean_accept']:.2f}, mean {result['mean_leapfrog_steps']:.1f} and at most "
        f"{result['max_leapfrog_steps']} leapfrog steps per transition. Wall time: "
        f"{result['seconds_simulate']:.0f} s simulating, {result['seconds_nuts']:.0f} s NUTS"
        + (f" on {result['device']}." if "device" in result else "."),
        *_per_dataset_health(result, n_ranks - 1),
        "",
        "## What this does and does not show",
        "",
        "* It tests the sampler and the likelihood code together on data the model itself "
        "generates: a bug in the likelihood, a biased sampler or a wrong Jacobian shows as "
        "non-uniform ranks (a U shape: over-confident; a hump: under-confident; a slope: "
        "biased).",
        "* With "
        f"{n_sets} datasets and {s['bins']} bins the test detects gross miscalibration only; "
        "small biases can pass.",
        "* It says nothing about whether the model is right for the real data (that is the "
        "posterior predictive check of a fit), and it covers the reduced setting above, not "
        "the full default fit (`infer/configs/default.toml`: more free parameters and "
        "neurons, constraints included).",
        "",
        "## Figures",
        "",
    ]
    for title, path in figures.items():
        lines.append(f"![{title}]({path})")
        lines.append("")
        lines.append(f"*{title}.*")
        lines.append("")
    return "\n".join(lines)


def write_report(result: dict, out_dir: str | Path) -> Path:
    """Write ``sbc.json``, the figures and ``sbc.md`` into ``out_dir``, all or nothing."""
    from ._io import write_report_dir

    return write_report_dir(out_dir, "sbc", result, plot, render_markdown)


REQUIRED_KEYS = (
    "settings",
    "latents",
    "measurements",
    "n_solved_conditions",
    "ranks",
    "tests",
    "alpha",
    "bonferroni_threshold",
    "calibrated",
    "truth",
    "posterior_mean",
    "posterior_sd",
)


def load_result(path: str | Path) -> dict:
    """Read a results JSON, with a clear error when it is not one."""
    path = Path(path)
    try:
        result = json.loads(path.read_text())
    except FileNotFoundError:
        raise ValueError(f"{path}: no such file; run 'python -m infer sbc --out DIR'") from None
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from None
    missing = [k for k in REQUIRED_KEYS if k not in result] if isinstance(result, dict) else []
    if not isinstance(result, dict) or missing:
        raise ValueError(
            f"{path}: not an SBC results file (missing {', '.join(missing) or 'everything'}); "
            "it must be the sbc.json written by 'python -m infer sbc'"
        )
    return result
