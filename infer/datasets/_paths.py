"""Where the data live. Every public function also takes ``data_dir`` to point elsewhere."""

from __future__ import annotations

from pathlib import Path

DEFAULT_DATA_DIR = Path(__file__).resolve().parents[2] / "data"

MEASUREMENTS = "measurements.csv"
CONSTRAINTS = "constraints.csv"
SOURCES = "sources.csv"
DATASETS = "datasets.csv"
PRIORS = "priors.csv"
LITERATURE = "literature/values.csv"
MANIFEST = "MANIFEST.sha256"
DIGITISED = "digitised"
# Files inside one digitised dataset folder data/digitised/<datasetId>/
DIGITISED_MEASUREMENTS = "measurements.csv"
DIGITISED_SOURCES = "sources.csv"
DIGITISED_RAW = "wpd.csv"
DIGITISED_SIDECAR = "sidecar.toml"


def data_dir_of(data_dir: str | Path | None) -> Path:
    """The data directory to use: the given one, or the repository's ``data/``."""
    return Path(data_dir) if data_dir is not None else DEFAULT_DATA_DIR
