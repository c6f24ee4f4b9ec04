"""One figure style for every homeoplast figure: labelled units, 300 dpi, PNG and vector PDF."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from ._io import atomic_path  # noqa: E402

DPI = 300
RC = {
    "font.size": 8,
    "axes.titlesize": 8,
    "axes.labelsize": 8,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "legend.fontsize": 7,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "figure.dpi": 100,
    "savefig.dpi": DPI,
    "pdf.fonttype": 42,
}
POSTERIOR = "#1f5a96"
PRIOR = "#9a9a9a"
DATA = "#c0392b"

# Axis labels with units for model readouts shown as effects versus the paired vehicle.
READOUT_LABELS = {
    "p_eEF2": "p-eEF2",
    "BDNF": "BDNF",
    "p_Akt": "p-Akt",
    "p_mTOR": "p-mTOR",
    "p_p70S6K": "p-p70S6K",
    "p_4EBP1": "p-4E-BP1",
    "p_S6": "p-S6",
    "GluA1": "GluA1",
    "PSD95": "PSD-95",
    "synapsin": "synapsin I",
    "GABABR1": "GABABR1",
    "GABABR2": "GABABR2",
    "eta_14_3_3": "14-3-3η",
    "baclofen_ca": "baclofen Ca²⁺ signal",
    "spine_density": "spine density",
    "mEPSC_amplitude": "mEPSC amplitude",
    "mEPSC_frequency": "mEPSC frequency",
    "excitatory_drive": "excitatory drive",
    "drug_conc": "drug at NMDAR",
    "nmdar_block": "NMDAR block",
    "eEF2K": "eEF2K activity",
    "trkb_signal": "TrkB signal",
    "girk_coupled": "GIRK-coupled GABABR",
}


def apply() -> None:
    plt.rcParams.update(RC)


def save(fig, path_stem: str | Path, formats=("png", "pdf")) -> list[Path]:
    """Save ``fig`` atomically as PNG (300 dpi) and PDF; return the written paths."""
    stem = Path(path_stem)
    written = []
    for fmt in formats:
        target = stem.with_suffix(f".{fmt}")
        with atomic_path(target) as tmp:
            fig.savefig(tmp, format=fmt, dpi=DPI, bbox_inches="tight")
        written.append(target)
    plt.close(fig)
    return written
