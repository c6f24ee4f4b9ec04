"""Facts about the machine, the device and the software, recorded with every result."""

from __future__ import annotations

import datetime as _dt
import importlib.metadata as _md
import os
import platform
import resource
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

_PACKAGES = (
    "homeoplast",
    "jax",
    "jaxlib",
    "diffrax",
    "equinox",
    "optimistix",
    "lineax",
    "numpy",
    "scipy",
    "numpyro",
    "libroadrunner",
    "python-libsbml",
    "jax-cuda12-plugin",
    "jax-cuda13-plugin",
)


def package_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in _PACKAGES:
        try:
            out[name] = _md.version(name)
        except _md.PackageNotFoundError:
            out[name] = None
    return out


def cpu_model() -> str:
    """CPU model name, with family/model numbers when the name is generic (VMs often say
    only 'AMD EPYC')."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "unknown"
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if ":" in line:
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
        if not line.strip() and fields:
            break
    name = fields.get("model name", "unknown")
    if "cpu family" in fields:
        name += f" (family {fields['cpu family']}, model {fields.get('model', '?')})"
    return name


def git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=10,
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def memory_total_bytes() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def memory_available_bytes() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def machine() -> dict:
    """Host facts (no JAX import: the parent process stays light)."""
    return {
        "hostname": platform.node(),
        "cpu": cpu_model(),
        "cpu_cores": os.cpu_count(),
        "memory_bytes": memory_total_bytes(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }


def device_info() -> dict:
    """The JAX devices of this process (imports jax)."""
    import jax

    devs = jax.devices()
    return {
        "backend": jax.default_backend(),
        "device_kind": devs[0].device_kind,
        "device_count": len(devs),
        "devices": [str(d) for d in devs],
        "x64": bool(jax.config.read("jax_enable_x64")),
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
    }


def peak_memory_bytes() -> dict:
    """Peak memory so far in this process: host RSS (ru_maxrss) and, on GPU, the device
    allocator's peak. Both are running maxima, so a sweep in increasing N reads the peak of
    the largest N done so far."""
    out: dict = {"host_peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}
    try:
        import jax

        stats = jax.devices()[0].memory_stats()
        if stats:
            out["device_peak_bytes"] = stats.get("peak_bytes_in_use")
            out["device_bytes_limit"] = stats.get("bytes_limit")
    except Exception:  # noqa: BLE001 - memory stats are optional per backend
        pass
    return out


def now_iso() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
