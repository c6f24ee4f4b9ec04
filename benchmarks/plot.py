"""Figure of a results file: ``python -m benchmarks.plot benchmarks/results/<file>.json``.

Four panels: throughput versus N (peers as horizontal lines), per-neuron step counts at the
largest N (the vmap-waits-for-the-slowest cost), gradient/forward and sharding, and measured
FLOP/s against the device's practical peak.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from .report import _ok, summarize


def _finish(ax, **legend) -> None:
    """Legend where the panel has labelled data; otherwise say that this run measured none
    (a run of a subset of cases, ``--cases``, leaves some panels empty)."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(**legend)
    elif not (ax.lines or ax.patches):
        ax.text(
            0.5,
            0.5,
            "not measured in this run",
            ha="center",
            va="center",
            transform=ax.transAxes,
            color="grey",
        )
        ax.set_xticks([])
        ax.set_yticks([])


def plot(path: str | Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    results = json.loads(path.read_text())
    records = results["records"]
    summary = results.get("summary") or summarize(results)
    meta = results["meta"]
    fig, axes = plt.subplots(2, 2, figsize=(12, 9))
    ax = axes[0, 0]
    styles = {"tsit5": "-", "kvaerno5": "--"}
    markers = {"standard": "o", "ketamine_24h": "s"}
    groups: dict = {}
    for r in _ok(records, case="forward"):
        groups.setdefault((r["protocol"], r["solver"], r["dtype"]), []).append(r)
    for (protocol, solver, dtype), rows in sorted(groups.items()):
        rows.sort(key=lambda r: r["n_neurons"])
        ax.plot(
            [r["n_neurons"] for r in rows],
            [r["neuron_solves_per_s"] for r in rows],
            styles.get(solver, ":"),
            marker=markers.get(protocol, "x"),
            label=f"homeoplast {solver} {dtype} ({protocol})",
        )
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, p in enumerate(r for r in _ok(records, case="peers") if "neuron_solves_per_s" in r):
        ax.axhline(
            p["neuron_solves_per_s"],
            color=colors[i % len(colors)],
            lw=0.8,
            ls=":",
            label=f"peer {p['peer']}",
        )
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="neurons N",
        ylabel="neuron-solves per second",
        title="Forward solve throughput (peers loop over neurons)",
    )
    _finish(ax, fontsize=6, loc="best")

    ax = axes[0, 1]
    for (protocol, solver, dtype), rows in sorted(groups.items()):
        if protocol != "standard":
            continue
        r = max(rows, key=lambda r: r["n_neurons"])
        h = r["steps"]["histogram"]
        centers = [(a + b) / 2 for a, b in zip(h["edges"][:-1], h["edges"][1:], strict=True)]
        ax.step(
            centers,
            h["counts"],
            where="mid",
            label=f"{solver} {dtype} N={r['n_neurons']}: max {r['steps']['max']}, lane eff. {r['steps']['lane_efficiency']:.2f}",
        )
    ax.set(
        xlabel="steps per neuron-solve",
        ylabel="count",
        title="Step counts (the batch runs until its slowest lane ends)",
    )
    _finish(ax, fontsize=7)

    ax = axes[1, 0]
    labels, values = [], []
    for g in _ok(records, case="gradient"):
        what = "log-lik." if g.get("variant") == "log_likelihood" else "proxy"
        ck = g.get("adjoint_checkpoints")
        ck = f", ckpt {ck}" if ck else ""
        labels.append(f"grad/fwd {what}\n{g['solver']} N={g['n_neurons']}{ck}")
        values.append(g["gradient_over_forward"])
    shard = sorted(_ok(records, case="sharding"), key=lambda r: r["k_devices"])
    if shard:
        t1 = shard[0]["time_s_min"]
        for r in shard:
            labels.append(f"speed-up\nK={r['k_devices']} N={r['n_neurons']}")
            values.append(t1 / r["time_s_min"])
    if values:
        ax.bar(
            range(len(values)), values, color=["C3" if "grad" in lab else "C2" for lab in labels]
        )
        ax.set_xticks(range(len(values)), labels, fontsize=7, rotation=30, ha="right")
        ax.axhline(4, color="C3", ls=":", lw=0.8, label="gradient target 4x")
    ax.set(ylabel="ratio", title="Gradient cost and sharded speed-up")
    _finish(ax, fontsize=7)

    ax = axes[1, 1]
    lim = summary.get("limit", [])
    for solver, marker in (("tsit5", "o"), ("kvaerno5", "s")):
        for dtype in ("float64", "float32"):
            rows = sorted(
                [
                    q
                    for q in lim
                    if q["solver"] == solver and q["dtype"] == dtype and q["protocol"] == "standard"
                ],
                key=lambda q: q["n_neurons"],
            )
            if rows:
                ax.plot(
                    [q["n_neurons"] for q in rows],
                    [q["useful_flops_per_s"] for q in rows],
                    marker=marker,
                    label=f"{solver} {dtype} useful FLOP/s",
                )
    for f in _ok(records, case="flops"):
        ax.axhline(
            f["matmul_peak"]["flops_per_s"],
            ls="--",
            lw=0.8,
            color="k" if f["dtype"] == "float64" else "grey",
            label=f"matmul peak {f['dtype']} (measured)",
        )
        if f.get("datasheet_peak_flops"):
            ax.axhline(
                f["datasheet_peak_flops"],
                ls=":",
                lw=0.8,
                color="r",
                label=f"datasheet {f['dtype']}",
            )
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="neurons N",
        ylabel="FLOP/s",
        title="Distance to the limit",
    )
    _finish(ax, fontsize=7)
    dev = meta.get("device", {})
    fig.suptitle(
        f"homeoplast benchmarks ({meta['plan']}), {meta['date'][:10]}: {meta['machine']['cpu']}, "
        f"{meta['machine']['cpu_cores']} cores; device {dev.get('device_kind')}",
        fontsize=10,
    )
    fig.tight_layout()
    out = path.with_suffix(".png")
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("usage: python -m benchmarks.plot benchmarks/results/<file>.json", file=sys.stderr)
        sys.exit(2)
    print(plot(sys.argv[1]))
