"""Paper figures from a saved ArviZ InferenceData alone (contract: infer/diagnostics.py).

``make_figures(idata, out_dir)`` writes, as PNG (300 dpi) and PDF through ``style.save``:

- ``predictive``: every dataset with its data (obs +- the SD used in the likelihood) over the
  50% and 90% posterior predictive bands and the median model prediction; time courses on a
  time axis, single-time datasets on a categorical condition axis.
- ``posterior_vs_prior`` (``_2``, ``_3``... when there are many parameters): marginal
  densities, on log axes for positive parameters and logit axes for fractions.
- ``pairs``: the most correlated parameters (by |r| on the transformed scales).
- ``neuron_distribution``: per-neuron effect versus the paired vehicle across the virtual
  population at a few times (needs the ``predictions`` group).
- ``trace`` and ``rank``: for the parameters with the worst R-hat (MCMC runs only).
"""

from __future__ import annotations

import math
import textwrap
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from . import style
from .diagnostics import (
    SAMPLE_DIMS,
    correlation_matrix,
    load_run,
    parameter_kinds,
    parameter_transforms,
    parameter_units,
    predictive_quantiles,
    readout_ratio,
    stacked_draws,
    transform_values,
)

SERIES_COLORS = (style.POSTERIOR, "#d9822b", "#2a9d8f", "#7b4f9d", "#8c6d31", "#d45087")
NORMALISATION_UNITS = {
    "fold_vs_vehicle": "fold vs vehicle",
    "relative_to_reference": "relative to reference",
    "arbitrary_scale": "arbitrary units",
    "absolute": "units as reported",
}
KEY_READOUTS = (
    "spine_density",
    "mEPSC_amplitude",
    "p_eEF2",
    "BDNF",
    "p_S6",
    "GluA1",
    "baclofen_ca",
    "GABABR1",
    "p_Akt",
    "p_mTOR",
)
PARAMS_PER_PAGE = 36


def _plt():
    import matplotlib.pyplot as plt

    style.apply()
    return plt


def _readout_label(name: str) -> str:
    return style.READOUT_LABELS.get(name, name.replace("_", " "))


def _param_label(name: str) -> str:
    return name


# --------------------------------------------------------------------------------------------
# (a) posterior predictive checks per dataset


def _measurement_frame(idata) -> pd.DataFrame:
    """One row per measurement: metadata, data, predictive quantiles and the median prediction."""
    if "observed_data" not in idata.groups() or "obs" not in idata.observed_data:
        raise ValueError(
            "the InferenceData has no observed_data 'obs': cannot draw predictive checks"
        )
    obs = idata.observed_data["obs"]
    dim = obs.dims[0]
    ids = [str(v) for v in obs[dim].values]
    frame = pd.DataFrame(index=pd.Index(ids, name="measurement"))
    frame["obs"] = np.asarray(obs.values, dtype=float)
    cd = idata.constant_data if "constant_data" in idata.groups() else None

    def col(key, default):
        if cd is not None and key in cd:
            return cd[key].values
        return np.full(len(ids), default)

    frame["obs_sd"] = np.asarray(col("obs_sd", np.nan), dtype=float)
    frame["time_h"] = np.asarray(col("time_h", np.nan), dtype=float)
    for key, default in (
        ("readout", "readout"),
        ("condition", ""),
        ("dataset", "data"),
        ("normalisation", ""),
        ("unit", ""),
    ):
        frame[key] = [str(v) for v in col(key, default)]
    q = predictive_quantiles(idata, (0.05, 0.25, 0.75, 0.95))
    if q is not None:
        for name, row in zip(("pp05", "pp25", "pp75", "pp95"), q, strict=True):
            frame[name] = row
    if "pred" in idata.posterior:
        frame["pred50"] = np.nanmedian(stacked_draws(idata.posterior["pred"]), axis=0)
    return frame


def _y_unit(sub: pd.DataFrame) -> str:
    units = {u for u in sub["unit"] if u and u != "nan"}
    if len(units) == 1:
        return units.pop()
    norms = {n for n in sub["normalisation"]}
    if len(norms) == 1:
        return NORMALISATION_UNITS.get(norms.pop(), "units as reported")
    return "units as reported"


def _split_conditions(conditions: Sequence[str]) -> tuple[list[str], str]:
    """Per-condition labels without the comma-separated parts every condition shares."""
    parts = [[p.strip() for p in c.split(",")] for c in conditions]
    common = [p for p in parts[0] if all(p in q for q in parts[1:])]
    labels = [", ".join(p for p in q if p not in common) or q[0] for q in parts]
    return labels, ", ".join(common)


def _draw_categorical(ax, sub: pd.DataFrame, color: str) -> None:
    conditions = list(sub["condition"])
    if len(set(conditions)) == 1:  # the condition goes in the title; categories are readouts
        labels = [_readout_label(r) for r in sub["readout"]]
    else:
        labels, _ = _split_conditions(conditions)
        if sub["readout"].nunique() > 1:
            labels = [
                f"{_readout_label(r)}, {lab}" for r, lab in zip(sub["readout"], labels, strict=True)
            ]
    x = np.arange(len(sub))
    if "pp05" in sub:
        ax.bar(
            x,
            sub["pp95"] - sub["pp05"],
            bottom=sub["pp05"],
            width=0.5,
            color=color,
            alpha=0.2,
            lw=0,
        )
        ax.bar(
            x,
            sub["pp75"] - sub["pp25"],
            bottom=sub["pp25"],
            width=0.5,
            color=color,
            alpha=0.45,
            lw=0,
        )
    if "pred50" in sub:
        ax.hlines(sub["pred50"], x - 0.25, x + 0.25, color=color, lw=1.4)
    ax.errorbar(
        x + 0.33,
        sub["obs"],
        yerr=np.nan_to_num(sub["obs_sd"]),
        fmt="o",
        ms=3.2,
        color=style.DATA,
        elinewidth=0.9,
        capsize=1.5,
        zorder=5,
    )
    ax.set_xticks(x)
    if len(x) <= 6:  # horizontal labels wrapped to the width of a category
        width = max(8, 44 // len(x))
        wrapped = [
            "\n".join(textwrap.fill(part, width) for part in lab.split(", ")) for lab in labels
        ]
        ax.set_xticklabels(wrapped, fontsize=5.5, linespacing=1.0)
    else:
        ax.set_xticklabels(
            [textwrap.shorten(lab, 40, placeholder="…") for lab in labels],
            rotation=40,
            ha="right",
            rotation_mode="anchor",
            fontsize=5.5,
        )
    ax.set_xlim(-0.6, len(x) - 0.2)
    ax.set_xlabel("condition" if len(set(conditions)) > 1 else "readout")


def _draw_timecourse(ax, sub: pd.DataFrame) -> list[str]:
    keys = list(dict.fromkeys(zip(sub["readout"], sub["condition"], strict=True)))
    cond_labels, _ = _split_conditions([c for _, c in keys])
    names = []
    for k, (ro, cond) in enumerate(keys):
        s = sub[(sub["readout"] == ro) & (sub["condition"] == cond)].sort_values("time_h")
        col = SERIES_COLORS[k % len(SERIES_COLORS)]
        dcol = style.DATA if len(keys) == 1 else col
        t = s["time_h"].to_numpy()
        if "pp05" in s:
            ax.fill_between(t, s["pp05"], s["pp95"], color=col, alpha=0.18, lw=0)
            ax.fill_between(t, s["pp25"], s["pp75"], color=col, alpha=0.35, lw=0)
        if "pred50" in s:
            ax.plot(t, s["pred50"], color=col, lw=1.2)
        ax.errorbar(
            t,
            s["obs"],
            yerr=np.nan_to_num(s["obs_sd"]),
            fmt="o",
            ms=3.2,
            color=dcol,
            mec="white" if len(keys) > 1 else dcol,
            mew=0.4,
            elinewidth=0.9,
            capsize=1.5,
            zorder=5,
        )
        lab = cond_labels[k]
        if sub["readout"].nunique() > 1:
            lab = f"{_readout_label(ro)}, {lab}"
        names.append(lab)
    _time_axis(ax, sub["time_h"].to_numpy())
    ax.set_xlabel("time after treatment (h)")
    if len(keys) > 1:
        from matplotlib.lines import Line2D

        handles = [
            Line2D([], [], color=SERIES_COLORS[k % len(SERIES_COLORS)], marker="o", ms=3, lw=1.2)
            for k in range(len(keys))
        ]
        ax.legend(
            handles, [textwrap.shorten(n, 40) for n in names], frameon=False, fontsize=6, loc="best"
        )
    return names


def _time_axis(ax, t: np.ndarray) -> None:
    """Symmetric-log time axis (linear below 1 h) when the times span more than ~1.5 decades."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    tpos = t[t > 0]
    if not (len(tpos) and t.max() > 30 * tpos.min() and t.max() > 3):
        return
    ax.set_xscale("symlog", linthresh=1.0, linscale=0.6)
    ticks = [0.0] if t.min() <= 0 else []
    ticks += [v for v in (1, 10, 100, 1000, 10000) if tpos.min() * 0.5 <= v <= t.max() * 1.5]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
    ax.xaxis.set_minor_locator(NullLocator())


def plot_predictive(idata, out_dir: str | Path, ncols: int = 3) -> list[Path]:
    """(a) Posterior predictive bands over every dataset, with its data and error bars."""
    plt = _plt()
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    frame = _measurement_frame(idata)
    datasets = list(dict.fromkeys(frame["dataset"]))
    ncols = min(ncols, len(datasets))
    nrows = math.ceil(len(datasets) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(2.5 * ncols, 2.6 * nrows), squeeze=False)
    for ax, ds in zip(axes.flat, datasets, strict=False):
        sub = frame[frame["dataset"] == ds]
        _, common = _split_conditions(list(sub["condition"]))
        if sub["time_h"].nunique() > 1:
            _draw_timecourse(ax, sub)
        else:
            _draw_categorical(ax, sub, style.POSTERIOR)
            t = sub["time_h"].iloc[0]
            if np.isfinite(t):
                common = f"{common}; at {t:g} h" if common else f"at {t:g} h"
        readouts = list(dict.fromkeys(sub["readout"]))
        what = _readout_label(readouts[0]) if len(readouts) == 1 else "level"
        ax.set_ylabel(textwrap.fill(f"{what} ({_y_unit(sub)})", 30))
        title = ds if not common else f"{ds}\n" + textwrap.fill(textwrap.shorten(common, 100), 42)
        ax.set_title(title, fontsize=6.5, loc="left")
        norm = set(sub["normalisation"])
        if norm == {"fold_vs_vehicle"} or norm == {"relative_to_reference"}:
            ax.axhline(1.0, color="0.75", lw=0.6, ls=":", zorder=0)
    for ax in axes.flat[len(datasets) :]:
        ax.set_visible(False)
    handles = [
        Line2D(
            [], [], color=style.DATA, marker="o", ms=3.5, lw=0.9, label="data ± SD in likelihood"
        ),
        Patch(color=style.POSTERIOR, alpha=0.45, lw=0, label="posterior predictive 50%"),
        Patch(color=style.POSTERIOR, alpha=0.2, lw=0, label="posterior predictive 90%"),
        Line2D([], [], color=style.POSTERIOR, lw=1.4, label="model prediction (posterior median)"),
    ]
    fig.tight_layout(h_pad=1.2, w_pad=1.0)
    fig.legend(
        handles=handles, loc="lower center", ncol=4, frameon=False, bbox_to_anchor=(0.5, 1.0)
    )
    return style.save(fig, Path(out_dir) / "predictive")


# --------------------------------------------------------------------------------------------
# (b) posteriors against priors


def _density(values: np.ndarray, transform: str) -> tuple[np.ndarray, np.ndarray] | None:
    """KDE (ArviZ) on the transformed scale, returned on the natural scale of the x axis."""
    import arviz as az

    y = transform_values(values, transform)
    y = y[np.isfinite(y)]
    if y.size < 3 or np.std(y) == 0:
        return None
    grid, pdf = az.kde(y)
    if transform == "log":
        grid = np.exp(grid)
    elif transform == "logit":
        grid = 1.0 / (1.0 + np.exp(-grid))
    return grid, pdf


def _set_param_scale(ax, transform: str, axis: str = "x") -> None:
    """Log axis for log-normal parameters, logit axis for fractions (ticks: see _nice_ticks)."""
    if transform in ("log", "logit"):
        (ax.set_xscale if axis == "x" else ax.set_yscale)(transform)


def _nice_ticks(ax, transform: str, axis: str = "x", max_ticks: int = 4) -> None:
    """Readable major ticks on log/logit axes at any span (matplotlib leaves narrow ranges bare).

    Call after the data limits are final.
    """
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter, NullLocator

    if transform not in ("log", "logit"):
        return
    target = ax.xaxis if axis == "x" else ax.yaxis
    lo, hi = sorted(ax.get_xlim() if axis == "x" else ax.get_ylim())
    if transform == "log":
        if not (lo > 0 and hi > lo):
            return
        k0, k1 = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
        ticks: list[float] = []
        for subs in (
            (1,),
            (1, 3),
            (1, 2, 5),
            (1, 1.5, 2, 3, 4, 5, 6, 7, 8, 9),
            tuple(np.arange(1, 10, 0.25)),
        ):
            cand = [m * 10.0**k for k in range(k0, k1 + 1) for m in subs if lo <= m * 10.0**k <= hi]
            if len(cand) >= 2:
                ticks = cand
                break
            ticks = cand
        if len(ticks) > max_ticks:  # wide range: every n-th decade
            step = math.ceil(len(ticks) / max_ticks)
            ticks = ticks[::step]
        wide = math.log10(hi / lo) > 3
    else:
        ticks = []
        for grid in (
            (1e-4, 1e-3, 0.01, 0.1, 0.5, 0.9, 0.99, 0.999, 0.9999),
            (0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99),
            tuple(np.round(np.arange(0.1, 0.95, 0.1), 2)),
            tuple(np.round(np.arange(0.05, 0.99, 0.05), 2)),
            tuple(np.round(np.arange(0.01, 1.0, 0.01), 2)),
        ):
            ticks = [t for t in grid if lo <= t <= hi]
            if len(ticks) >= 3:
                break
        if len(ticks) > max_ticks:
            step = math.ceil(len(ticks) / max_ticks)
            ticks = ticks[::step]
        wide = False

    def fmt(v, _pos=None):
        if wide:
            return (
                f"$10^{{{round(math.log10(v))}}}$"
                if math.isclose(v, 10.0 ** round(math.log10(v)))
                else f"{v:g}"
            )
        return f"{v:g}"

    target.set_major_locator(FixedLocator(ticks))
    target.set_major_formatter(FuncFormatter(fmt))
    if transform == "logit" or not wide:
        target.set_minor_locator(NullLocator())
    target.set_minor_formatter(NullFormatter())


def plot_posterior_vs_prior(idata, out_dir: str | Path, ncols: int = 6) -> list[Path]:
    """(b) Marginal posterior against prior density of every parameter, pages of 36."""
    plt = _plt()
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    kinds = parameter_kinds(idata)
    transforms = parameter_transforms(idata, kinds)
    units = parameter_units(idata, kinds)
    has_prior = "prior" in idata.groups()
    engine = str(idata.attrs.get("engine", "point"))
    names = list(kinds)
    written: list[Path] = []
    pages = [names[i : i + PARAMS_PER_PAGE] for i in range(0, len(names), PARAMS_PER_PAGE)]
    for p, page in enumerate(pages):
        nc = min(ncols, len(page))
        nr = math.ceil(len(page) / nc)
        fig, axes = plt.subplots(nr, nc, figsize=(1.2 * nc + 0.2, 1.18 * nr), squeeze=False)
        for ax, name in zip(axes.flat, page, strict=False):
            tr = transforms[name]
            post = stacked_draws(idata.posterior[name]).ravel()
            contraction = math.nan
            if has_prior and name in idata.prior:
                prior = stacked_draws(idata.prior[name]).ravel()
                d = _density(prior, tr)
                if d is not None:
                    ax.fill_between(d[0], d[1], color=style.PRIOR, alpha=0.45, lw=0)
                vp = np.var(transform_values(prior, tr))
                if post.size > 1 and vp > 0:
                    contraction = 1 - np.var(transform_values(post, tr)) / vp
            d = _density(post, tr)
            if d is not None:
                ax.plot(d[0], d[1], color=style.POSTERIOR, lw=1.1)
                ax.fill_between(d[0], d[1], color=style.POSTERIOR, alpha=0.15, lw=0)
            else:  # a point estimate (MAP) or a constant
                ax.axvline(float(np.median(post)), color=style.POSTERIOR, lw=1.3)
            _set_param_scale(ax, tr)
            _nice_ticks(ax, tr)
            ax.set_yticks([])
            ax.spines["left"].set_visible(False)
            ax.set_ylim(bottom=0)
            ax.set_title(_param_label(name), fontsize=7, pad=2)
            ax.set_xlabel(units[name], fontsize=6, labelpad=1)
            ax.tick_params(axis="x", labelsize=5.5, pad=1)
            if np.isfinite(contraction):
                ax.text(
                    0.98,
                    0.97,
                    f"c = {contraction:.2f}",
                    transform=ax.transAxes,
                    ha="right",
                    va="top",
                    fontsize=5.5,
                    color="0.3",
                )
        for ax in axes.flat[len(page) :]:
            ax.set_visible(False)
        fig.tight_layout(h_pad=0.6, w_pad=0.4)
        handles = [
            Patch(color=style.PRIOR, alpha=0.45, lw=0, label="prior"),
            Patch(facecolor=style.POSTERIOR + "26", edgecolor=style.POSTERIOR, label="posterior")
            if idata.posterior.sizes["chain"] * idata.posterior.sizes["draw"] > 1
            else Line2D([], [], color=style.POSTERIOR, lw=1.3, label=f"{engine.upper()} estimate"),
        ]
        note = (
            "log axes: log-normal parameters; logit axes: fractions; densities of the log or logit. "
            "c = contraction 1 − var(post)/var(prior) on that scale"
        )
        fig.legend(
            handles=handles, loc="lower left", ncol=2, frameon=False, bbox_to_anchor=(0.0, 1.0)
        )
        fig.text(
            0.99, 1.005, textwrap.fill(note, 110), ha="right", va="bottom", fontsize=6, color="0.3"
        )
        stem = "posterior_vs_prior" if p == 0 else f"posterior_vs_prior_{p + 1}"
        written += style.save(fig, Path(out_dir) / stem)
    return written


# --------------------------------------------------------------------------------------------
# (c) pair plot of the most correlated parameters


def most_correlated(idata, k: int = 5) -> list[str]:
    """Up to ``k`` parameters taken from the pairs with the largest posterior |r|."""
    kinds = parameter_kinds(idata)
    transforms = parameter_transforms(idata, kinds)
    names = [
        n
        for n in kinds
        if np.std(transform_values(stacked_draws(idata.posterior[n]), transforms[n])) > 0
    ]
    if len(names) < 2:
        return []
    corr = correlation_matrix(idata, names, transforms)
    iu = np.triu_indices(len(names), k=1)
    chosen: list[str] = []
    for i in np.argsort(-np.abs(corr[iu])):
        for j in (iu[0][i], iu[1][i]):
            if names[j] not in chosen and len(chosen) < k:
                chosen.append(names[j])
        if len(chosen) >= k:
            break
    return chosen


def plot_pairs(idata, out_dir: str | Path, k: int = 5, max_points: int = 2000) -> list[Path]:
    """(c) Lower-triangle pair plot of the ``k`` most correlated parameters."""
    plt = _plt()
    names = most_correlated(idata, k)
    if len(names) < 2:
        return []
    kinds = parameter_kinds(idata)
    transforms = parameter_transforms(idata, kinds)
    units = parameter_units(idata, kinds)
    corr = correlation_matrix(idata, names, transforms)
    draws = {n: stacked_draws(idata.posterior[n]).ravel() for n in names}
    n_all = next(iter(draws.values())).size
    idx = np.random.default_rng(0).choice(n_all, size=min(max_points, n_all), replace=False)
    m = len(names)
    fig, axes = plt.subplots(m, m, figsize=(1.45 * m + 0.3, 1.45 * m + 0.3), squeeze=False)
    for i, yi in enumerate(names):
        for j, xj in enumerate(names):
            ax = axes[i, j]
            if j > i:
                ax.set_axis_off()
                r = corr[i, j]
                ax.text(
                    0.5,
                    0.5,
                    f"r = {r:+.2f}",
                    ha="center",
                    va="center",
                    transform=ax.transAxes,
                    fontsize=6 + 4 * abs(r),
                    color=style.POSTERIOR if abs(r) >= 0.5 else "0.5",
                )
                continue
            if i == j:
                y = transform_values(draws[xj], transforms[xj])
                bins = np.linspace(y.min(), y.max(), 31)
                edges = {"log": np.exp, "logit": lambda v: 1 / (1 + np.exp(-v))}.get(
                    transforms[xj], lambda v: v
                )(bins)
                ax.hist(draws[xj], bins=edges, color=style.POSTERIOR, alpha=0.6, lw=0)
                ax.set_yticks([])
                ax.spines["left"].set_visible(False)
            else:
                ax.scatter(
                    draws[xj][idx],
                    draws[yi][idx],
                    s=1.5,
                    color=style.POSTERIOR,
                    alpha=0.25,
                    lw=0,
                    rasterized=True,
                )
                _set_param_scale(ax, transforms[yi], "y")
            _set_param_scale(ax, transforms[xj], "x")
            ax.tick_params(labelsize=5.5, pad=1)
            if i == m - 1:
                ax.set_xlabel(f"{_param_label(xj)}\n({units[xj]})", fontsize=6.5)
            if j == 0 and i > 0:
                ax.set_ylabel(f"{_param_label(yi)}\n({units[yi]})", fontsize=6.5)
    limits = {}
    for n in names:  # common limits per parameter: 2% padding on the transformed scale
        y = transform_values(draws[n], transforms[n])
        pad = 0.02 * (y.max() - y.min())
        lo, hi = y.min() - pad, y.max() + pad
        back = {"log": np.exp, "logit": lambda v: 1 / (1 + np.exp(-v))}.get(
            transforms[n], lambda v: v
        )
        limits[n] = (float(back(lo)), float(back(hi)))
    for i, yi in enumerate(names):
        for j, xj in enumerate(names):
            if j > i:
                continue
            ax = axes[i, j]
            ax.set_xlim(*limits[xj])
            _nice_ticks(ax, transforms[xj], "x")
            if j < i:
                ax.set_ylim(*limits[yi])
                _nice_ticks(ax, transforms[yi], "y")
            ax.tick_params(labelbottom=i == m - 1, labelleft=j == 0 and i > 0)
    fig.suptitle(
        "Most correlated parameters (posterior draws; r on the log/logit scale)", fontsize=8
    )
    fig.tight_layout(h_pad=0.3, w_pad=0.3)
    return style.save(fig, Path(out_dir) / "pairs")


# --------------------------------------------------------------------------------------------
# (d) distribution of readouts across virtual neurons


def plot_neuron_distribution(
    idata, out_dir: str | Path, max_readouts: int = 4, max_times: int = 4, max_conditions: int = 3
) -> list[Path]:
    """(d) Per-neuron effect vs the paired vehicle (posterior-median parameters): violins."""
    if "predictions" not in idata.groups() or "neuron_effect" not in idata.predictions:
        return []
    plt = _plt()
    eff = idata.predictions["neuron_effect"]
    # az.from_dict / add_groups may give the group singleton chain/draw dims: one evaluation.
    extra = {d: 0 for d in SAMPLE_DIMS if d in eff.dims}
    eff = eff.isel(extra).transpose("neuron", "condition", "time", "readout")
    if 0 in eff.shape:
        return []
    readouts = [str(r) for r in eff["readout"].values]
    chosen = [r for r in KEY_READOUTS if r in readouts][:max_readouts] or readouts[:max_readouts]
    times = np.asarray(eff["time"].values, dtype=float)
    t_idx = np.unique(
        np.round(np.linspace(0, len(times) - 1, min(max_times, len(times)))).astype(int)
    )
    conds = [str(c) for c in eff["condition"].values][:max_conditions]
    cond_labels, common = _split_conditions(conds)
    ratio = readout_ratio(idata)
    n_neurons = eff.sizes["neuron"]
    ncols = min(2, len(chosen))
    nrows = math.ceil(len(chosen) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.5 * ncols, 2.3 * nrows), squeeze=False)
    width = 0.8 / len(conds)
    for ax, ro in zip(axes.flat, chosen, strict=False):
        is_ratio = ratio.get(ro, True)
        for c in range(len(conds)):
            data = []
            for t in t_idx:
                v = np.asarray(eff.sel(readout=ro).isel(condition=c, time=t).values, dtype=float)
                data.append(v[np.isfinite(v)])
            pos = np.arange(len(t_idx)) + (c - (len(conds) - 1) / 2) * width
            keep = [k for k, d in enumerate(data) if d.size > 1 and np.ptp(d) > 0]
            col = SERIES_COLORS[c % len(SERIES_COLORS)]
            if keep:
                parts = ax.violinplot(
                    [data[k] for k in keep],
                    positions=pos[keep],
                    widths=width * 0.9,
                    showextrema=False,
                    showmedians=False,
                )
                for body in parts["bodies"]:
                    body.set_facecolor(col)
                    body.set_edgecolor(col)
                    body.set_alpha(0.45)
            med = [np.median(d) if d.size else np.nan for d in data]
            ax.scatter(
                pos,
                med,
                color=col,
                s=8,
                zorder=3,
                edgecolor="white",
                lw=0.4,
                label=textwrap.shorten(cond_labels[c], 45),
            )
        ax.axhline(1.0 if is_ratio else 0.0, color="0.6", lw=0.6, ls=":", zorder=0)
        ax.set_xticks(np.arange(len(t_idx)))
        ax.set_xticklabels([f"{times[t]:g}" for t in t_idx])
        ax.set_xlabel("time after treatment (h)")
        ax.set_ylabel(
            "fold vs paired vehicle" if is_ratio else "difference vs paired vehicle\n(model units)"
        )
        ax.set_title(_readout_label(ro))
    for ax in axes.flat[len(chosen) :]:
        ax.set_visible(False)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.tight_layout()
    fig.legend(
        handles,
        labels,
        loc="lower center",
        ncol=min(3, len(labels)),
        frameon=False,
        bbox_to_anchor=(0.5, 1.0),
        title=f"{n_neurons} virtual neurons, posterior-median parameters"
        + (f"; {common}" if common else "")
        + " (violin: distribution across neurons; dot: median)",
        title_fontsize=7,
    )
    return style.save(fig, Path(out_dir) / "neuron_distribution")


# --------------------------------------------------------------------------------------------
# (e) trace and rank plots


def _worst_rhat(idata, k: int) -> list[str]:
    import arviz as az

    names = list(parameter_kinds(idata))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rhat = az.rhat(idata, var_names=names)
    values = {n: float(rhat[n]) for n in names}
    return sorted(names, key=lambda n: -values[n] if np.isfinite(values[n]) else 0.0)[:k]


def plot_trace_rank(idata, out_dir: str | Path, k: int = 6) -> list[Path]:
    """(e) Trace and rank plots of the ``k`` parameters with the worst R-hat (MCMC only)."""
    import arviz as az

    post = idata.posterior
    engine = str(idata.attrs.get("engine", "")).lower()
    if "sample_stats" not in idata.groups() or engine in ("svi", "map") or post.sizes["draw"] < 4:
        return []
    plt = _plt()
    names = _worst_rhat(idata, k)
    units = parameter_units(idata)
    written: list[Path] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        axes = az.plot_trace(
            idata,
            var_names=names,
            compact=False,
            figsize=(7.2, 1.25 * len(names)),
            divergences="bottom",
            plot_kwargs={"linewidth": 0.9},
            trace_kwargs={"linewidth": 0.5, "alpha": 0.6},
        )
    axes = np.atleast_2d(axes)
    fig = axes.ravel()[0].figure
    for row, name in zip(axes, names, strict=True):
        row[0].set_title(_param_label(name), fontsize=7)
        row[0].set_xlabel(f"{name} ({units[name]})", fontsize=6.5)
        row[0].set_ylabel("density", fontsize=6.5)
        row[1].set_title(_param_label(name), fontsize=7)
        row[1].set_xlabel("draw (post-warmup iteration)", fontsize=6.5)
        row[1].set_ylabel(f"{name}\n({units[name]})", fontsize=6.5)
        for ax in row:
            ax.tick_params(labelsize=6)
    fig.suptitle("Traces (one colour per chain) of the parameters with the worst R-hat", fontsize=8)
    fig.tight_layout()
    written += style.save(fig, Path(out_dir) / "trace")

    ncols = min(3, len(names))
    nrows = math.ceil(len(names) / ncols)
    fig, axs = plt.subplots(nrows, ncols, figsize=(2.4 * ncols, 1.7 * nrows), squeeze=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        az.plot_rank(idata, var_names=names, ax=axs.ravel()[: len(names)])
    for ax, name in zip(axs.flat, names, strict=False):
        ax.set_title(_param_label(name), fontsize=7)
        ax.set_xlabel("rank of draw (all chains pooled)", fontsize=6.5)
        ax.set_ylabel("chain", fontsize=6.5)
        ax.tick_params(labelsize=6)
    for ax in axs.flat[len(names) :]:
        ax.set_visible(False)
    fig.suptitle("Rank histograms per chain (uniform when chains agree)", fontsize=8)
    fig.tight_layout()
    written += style.save(fig, Path(out_dir) / "rank")
    return written


# --------------------------------------------------------------------------------------------


def make_figures(idata, out_dir: str | Path) -> list[Path]:
    """Write every figure that the groups present allow; return the written PNG and PDF paths."""
    out_dir = Path(out_dir)
    written: list[Path] = []
    if "observed_data" in idata.groups():
        written += plot_predictive(idata, out_dir)
    written += plot_posterior_vs_prior(idata, out_dir)
    written += plot_pairs(idata, out_dir)
    written += plot_neuron_distribution(idata, out_dir)
    written += plot_trace_rank(idata, out_dir)
    return written


def plot_run(run_dir: str | Path) -> list[Path]:
    """Read ``RUN_DIR/posterior.nc`` and write every figure under ``RUN_DIR/figures/``."""
    return make_figures(load_run(run_dir), Path(run_dir) / "figures")
