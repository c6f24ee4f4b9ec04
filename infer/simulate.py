"""Population simulation for the command line: tidy CSV and a figure."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from models.population import SimulationResult

from . import style
from ._io import atomic_path

FIGURE_READOUTS = (
    "nmdar_block",
    "p_eEF2",
    "BDNF",
    "p_mTOR",
    "p_p70S6K",
    "p_4EBP1",
    "GluA1",
    "PSD95",
    "eta_14_3_3",
    "baclofen_ca",
    "spine_density",
    "mEPSC_amplitude",
)
TIDY_COLUMNS = ("condition", "readout", "time_h", "statistic", "value")


def write_tidy_csv(result: SimulationResult, path: str | Path) -> Path:
    """Write (condition, readout, time_h, statistic, value) rows atomically."""
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(TIDY_COLUMNS)
        for cond, readout, t, stat, value in result.tidy():
            writer.writerow((cond, readout, f"{t:g}", stat, f"{value:.10g}"))
    return path


def plot_population(
    result: SimulationResult, path_stem: str | Path, readouts: Sequence[str] = FIGURE_READOUTS
) -> list[Path]:
    """Per-neuron effect versus the paired vehicle over time: median, 50% and 90% bands."""
    import matplotlib.pyplot as plt

    style.apply()
    effect = result.effect()
    ok = result.ok
    ncol = 4
    nrow = -(-len(readouts) // ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(7.2, 1.75 * nrow), sharex=True, squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    t = result.times
    for ax, name in zip(axes.flat, readouts, strict=False):
        r = result.readout_names.index(name)
        ratio = result.ratio[r]
        for c, cond in enumerate(result.conditions):
            vals = effect[ok[:, c], c, :, r] if ratio else result.readouts[ok[:, c], c, :, r]
            if vals.size == 0:
                continue
            q05, q25, q50, q75, q95 = np.percentile(vals, [5, 25, 50, 75, 95], axis=0)
            col = colors[c % len(colors)]
            ax.fill_between(t, q05, q95, color=col, alpha=0.15, lw=0)
            ax.fill_between(t, q25, q75, color=col, alpha=0.3, lw=0)
            ax.plot(t, q50, color=col, lw=1.2, label=cond.spec.split(",")[0])
        label = style.READOUT_LABELS.get(name, name)
        unit = result_unit(name, ratio)
        ax.set_title(label)
        if t.max() > 12 * max(t[t > 0].min(), 1e-9) if (t > 0).any() else False:
            ax.set_xscale("symlog", linthresh=1.0)
        ax.set_ylabel(unit)
        if ratio:
            ax.axhline(1.0, color="0.6", lw=0.6, ls=":")
    for ax in axes.flat[len(readouts) :]:
        ax.set_visible(False)
    for ax in axes[-1]:
        ax.set_xlabel("time after treatment (h)")
    n = result.readouts.shape[0]
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(
        handles,
        labels,
        loc="upper center",
        ncol=min(3, len(labels)),
        frameon=False,
        bbox_to_anchor=(0.5, 1.02),
    )
    fig.suptitle(f"{n} virtual neurons: median, 50% and 90% of neurons", y=1.06)
    fig.tight_layout()
    return style.save(fig, path_stem)


def result_unit(name: str, ratio: bool) -> str:
    if name == "nmdar_block":
        return "fraction blocked"
    if name == "baclofen_ca":
        return "signal (model units)"
    return "fold vs vehicle" if ratio else "difference vs vehicle"
