"""Derived numbers from a results file: ratios to peers, targets, distance to the limit, and
the markdown table for the README. ``python -m benchmarks.report results/<file>.json``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

TARGET_N = 1024


def _checkpoints(record: dict) -> str:
    """', N checkpoints' for a gradient record with explicit adjoint checkpoints, else ''."""
    ck = record.get("adjoint_checkpoints")
    return f", {ck} checkpoints" if ck else ""


def _ok(records, **match):
    return [
        r
        for r in records
        if r.get("status") == "ok" and all(r.get(k) == v for k, v in match.items())
    ]


def _forward_at(records, n, solver="tsit5", dtype="float64", protocol="standard"):
    """The forward record at N = n, else the largest N below it."""
    rows = _ok(records, case="forward", solver=solver, dtype=dtype, protocol=protocol)
    rows = [r for r in rows if r["n_neurons"] <= n]
    return max(rows, key=lambda r: r["n_neurons"]) if rows else None


def peer_ratios(records) -> list[dict]:
    """homeoplast throughput / peer throughput, wall clock and CPU seconds."""
    out = []
    peers = [r for r in _ok(records, case="peers") if "neuron_solves_per_s" in r]
    choices = []
    for solver in ("tsit5", "kvaerno5"):
        at = _forward_at(records, TARGET_N, solver=solver)
        if at is not None:
            choices.append(at)
        rows = _ok(records, case="forward", solver=solver, dtype="float64", protocol="standard")
        best = max(rows, key=lambda r: r["neuron_solves_per_s"]) if rows else None
        if best is not None and best is not at:
            choices.append(best)
    # the sharded neuron axis (K host devices = K cores on CPU) is homeoplast's best CPU setup
    shard = _ok(records, case="sharding", dtype="float64", protocol="standard")
    if shard:
        choices.append(max(shard, key=lambda r: r["neuron_solves_per_s"]))
    for ours in choices:
        solver = ours["solver"]
        sharded = f" sharded K={ours['k_devices']}" if ours.get("case") == "sharding" else ""
        ours_cpu = ours["neuron_solves"] / ours["cpu_s_min"] if ours.get("cpu_s_min") else None
        for p in peers:
            peer_cpu = p["neuron_solves"] / p["cpu_s"] if p.get("cpu_s") else None
            out.append(
                {
                    "homeoplast": f"{solver} float64 N={ours['n_neurons']}{sharded}",
                    "homeoplast_solves_per_s": ours["neuron_solves_per_s"],
                    "peer": p["peer"],
                    "peer_solves_per_s": p["neuron_solves_per_s"],
                    "ratio_wall": ours["neuron_solves_per_s"] / p["neuron_solves_per_s"],
                    "ratio_cpu_time": (ours_cpu / peer_cpu) if ours_cpu and peer_cpu else None,
                    "peer_max_rel_error": p.get("accuracy", {}).get("max_rel_error"),
                }
            )
    return out


def limit_notes(records) -> list[dict]:
    """Measured FLOP/s of each forward point against the device's practical and datasheet peaks."""
    flops = {r["dtype"]: r for r in _ok(records, case="flops")}
    out = []
    for r in _ok(records, case="forward"):
        f = flops.get(r["dtype"]) or flops.get("float64")
        if not f:
            continue
        per_step = f["step"][r["solver"]]["flops"]
        lanes = r["n_neurons"] * r["n_conditions"]
        useful = per_step * r["steps"]["total"] / r["time_s_min"]
        executed = per_step * r["steps"]["max"] * lanes / r["time_s_min"]
        peak = f["matmul_peak"]["flops_per_s"]
        sheet = f.get("datasheet_peak_flops")
        out.append(
            {
                "solver": r["solver"],
                "dtype": r["dtype"],
                "protocol": r["protocol"],
                "n_neurons": r["n_neurons"],
                "flops_per_step": per_step,
                "useful_flops_per_s": useful,
                "executed_flops_per_s": executed,
                "matmul_peak_flops_per_s": peak,
                "matmul_dtype": f["dtype"],
                "fraction_of_matmul_peak": useful / peak,
                "datasheet_peak_flops_per_s": sheet,
                "fraction_of_datasheet_peak": useful / sheet if sheet else None,
            }
        )
    return out


def targets(records, ratios) -> list[dict]:
    out = []
    scipy = [
        r for r in ratios if r["peer"].startswith("scipy") and r["homeoplast"].startswith("tsit5")
    ]
    if scipy:
        # homeoplast's fastest 2-core configuration against the fastest scipy loop
        best_ours = max(r["homeoplast_solves_per_s"] for r in scipy)
        fair = min(
            (r for r in scipy if r["homeoplast_solves_per_s"] == best_ours),
            key=lambda r: r["ratio_wall"],
        )
        out.append(
            {
                "target": "2 CPU cores, N=1024: >= 20x the scipy loop's throughput",
                "measured": f"{fair['ratio_wall']:.1f}x ({fair['homeoplast']}) vs {fair['peer']} (fastest scipy loop); "
                f"CPU-time ratio {fair['ratio_cpu_time'] or float('nan'):.1f}x",
                "met": fair["ratio_wall"] >= 20,
            }
        )
    grads = _ok(records, case="gradient")
    for g in grads:
        full = g.get("variant") == "log_likelihood"
        note = ""
        if full and g["n_neurons"] != TARGET_N:
            note = f"; target is stated at N={TARGET_N}"
        finite = g.get("gradient_finite", True)
        if not finite:  # a fast NaN gradient is no result: say so in the table
            note += "; gradient NOT finite"
        out.append(
            {
                "target": "gradient of the full log-likelihood <= 4x forward"
                if full
                else "gradient <= 4x forward cost",
                "measured": f"{g['gradient_over_forward']:.1f}x ({g['variant']}, {g['solver']}, "
                f"N={g['n_neurons']}{_checkpoints(g)}{note})",
                "met": finite and g["gradient_over_forward"] <= 4,
            }
        )
    for g in [r for r in records if r.get("case") == "gradient" and r.get("status") == "skipped"]:
        out.append(
            {
                "target": "gradient of the full log-likelihood <= 4x forward",
                "measured": g["reason"],
                "met": None,
            }
        )
    ket = _ok(records, case="forward", protocol="ketamine_24h")
    gpu = [r for r in ket if r.get("device", {}).get("backend") == "gpu"]
    if gpu:
        best = max(gpu, key=lambda r: r["neuron_solves_per_s"])
        out.append(
            {
                "target": "one H100: >= 1e6 neuron-solves/s, 24-h ketamine protocol",
                "measured": f"{best['neuron_solves_per_s']:.3g}/s ({best['solver']} {best['dtype']}, N={best['n_neurons']}, {best['device']['device_kind']})",
                "met": best["neuron_solves_per_s"] >= 1e6,
            }
        )
    else:
        out.append(
            {
                "target": "one H100: >= 1e6 neuron-solves/s, 24-h ketamine protocol",
                "measured": "no GPU in this run",
                "met": None,
            }
        )
    inf = [r for r in records if r.get("case") == "inference" and r.get("engine") != "svi"]
    for r in inf:
        target = "one H100: NUTS fit of the default data, 4,096 neurons, < 10 min"
        if r.get("status") != "ok":
            measured = r.get("reason") or r.get("error") or r.get("status")
            out.append({"target": target, "measured": measured, "met": None})
            continue
        on_target = r.get("device", {}).get("backend") == "gpu" and r["n_neurons"] >= 4096
        measured = (
            f"N={r['n_neurons']}, {r['fit']['chains']} chains x ({r['fit']['warmup']} warmup + "
            f"{r['fit']['draws']} draws): {r['seconds']:.0f} s, min bulk ESS "
            f"{r['min_ess_bulk']:.0f} ({r['min_ess_per_s']:.3g}/s), max R-hat {r['max_rhat']:.3f}; "
            + ("diagnostics passed" if r["diagnostics_passed"] else "did not pass")
        )
        if not on_target:
            measured += " (not the target's device or size)"
            met = None
        else:
            met = bool(r["diagnostics_passed"] and r["seconds"] < 600)
        out.append({"target": target, "measured": measured, "met": met})
    return out


def summarize(results: dict) -> dict:
    records = results["records"]
    ratios = peer_ratios(records)
    return {
        "peer_ratios": ratios,
        "limit": limit_notes(records),
        "targets": targets(records, ratios),
    }


def _fmt(x, spec=".3g"):
    return "–" if x is None else format(x, spec)


def markdown(results: dict) -> str:
    meta, records = results["meta"], results["records"]
    summary = results.get("summary") or summarize(results)
    dev = meta.get("device", {})
    lines = [
        f"**{meta['plan']} run, {meta['date'][:10]}** — machine: {meta['machine']['cpu']}, "
        f"{meta['machine']['cpu_cores']} cores; device: {dev.get('backend', '?')} "
        f"({dev.get('device_kind', '?')}); jax {meta['versions'].get('jax')}, diffrax "
        f"{meta['versions'].get('diffrax')}; commit {meta.get('git_commit')}; total "
        f"{meta.get('elapsed_s', 0):.0f} s; load average at start {meta['machine'].get('load_average')}",
        "",
        "| case | solver | dtype | N | conditions | time min / median (s) | neuron-solves/s | steps mean / max | lane eff. |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in _ok(records, case="forward"):
        s = r["steps"]
        lines.append(
            f"| forward {r['protocol']} | {r['solver']} | {r['dtype']} | {r['n_neurons']} | {r['n_conditions']} "
            f"| {_fmt(r['time_s_min'])} / {_fmt(r['time_s_median'])} | {_fmt(r['neuron_solves_per_s'])} "
            f"| {s['mean']:.0f} / {s['max']} | {s['lane_efficiency']:.2f} |"
        )
    for r in _ok(records, case="sharding"):
        lines.append(
            f"| sharded K={r['k_devices']} | {r['solver']} | {r['dtype']} | {r['n_neurons']} | {len(r['conditions'])} "
            f"| {_fmt(r['time_s_min'])} / {_fmt(r['time_s_median'])} | {_fmt(r['neuron_solves_per_s'])} "
            f"| {r['steps']['mean']:.0f} / {r['steps']['max']} | {r['steps']['lane_efficiency']:.2f} |"
        )
    for r in _ok(records, case="peers"):
        if "neuron_solves_per_s" not in r:
            continue
        lines.append(
            f"| peer {r['peer']} | {r.get('method', '')} | float64 | {r['n_neurons']} (loop) | {r['n_conditions']} "
            f"| {_fmt(r['seconds_per_solve'])} per solve | {_fmt(r['neuron_solves_per_s'])} | – | – |"
        )
    for r in _ok(records, case="gradient"):
        lines.append(
            f"| gradient ({r['variant']}{_checkpoints(r)}) | {r['solver']} | {r['dtype']} | {r['n_neurons']} | {len(r['conditions'])} "
            f"| {_fmt(r['gradient']['time_s_min'])} (forward {_fmt(r['forward']['time_s_min'])}) "
            f"| grad/forward = {r['gradient_over_forward']:.1f}x | – | – |"
        )
    inf = _ok(records, case="inference")
    if inf:
        lines += [
            "",
            "| inference | N | sizes | wall (s, incl. compile) | min bulk ESS | min ESS/s "
            "| max R-hat | gradients | verdict |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for r in inf:
            f = r["fit"]
            if r["engine"] == "svi":
                lines.append(
                    f"| SVI ({r.get('guide')}) | {r['n_neurons']} | {r['steps']} steps "
                    f"| {r['seconds']:.0f} | – | – | – | – | loss {r['loss_first']:.4g} -> "
                    f"{r['loss_final_mean']:.4g} |"
                )
            else:
                lines.append(
                    f"| NUTS | {r['n_neurons']} | {f['chains']} x ({f['warmup']}+{f['draws']}), "
                    f"depth {f['max_tree_depth']} | {r['seconds']:.0f} | {r['min_ess_bulk']:.0f} "
                    f"| {r['min_ess_per_s']:.3g} | {r['max_rhat']:.3f} "
                    f"| {r['sampled_gradient_evaluations']} | {r['verdict']} |"
                )
    lines += [
        "",
        "| homeoplast | peer | peer max rel. error | ratio (wall) | ratio (CPU time) |",
        "|---|---|---|---|---|",
    ]
    for q in summary["peer_ratios"]:
        lines.append(
            f"| {q['homeoplast']} | {q['peer']} | {_fmt(q['peer_max_rel_error'], '.1e')} "
            f"| {q['ratio_wall']:.1f}x | {_fmt(q['ratio_cpu_time'], '.1f')}x |"
        )
    lines += ["", "| target | measured | met |", "|---|---|---|"]
    for t in summary["targets"]:
        met = {True: "yes", False: "**no**", None: "not measured"}[t["met"]]
        lines.append(f"| {t['target']} | {t['measured']} | {met} |")
    skipped = [r for r in records if r.get("status") in ("skipped", "error")]
    if skipped:
        lines += ["", "Skipped or failed:"]
        for r in skipped:
            what = " ".join(
                str(r.get(k))
                for k in ("case", "variant", "solver", "dtype", "n_neurons")
                if r.get(k) is not None
            )
            lines.append(
                f"- {what}: {r['status']}: {(r.get('reason') or r.get('error') or '')[:300]}"
            )
    return "\n".join(lines)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    rewrite = "--rewrite" in argv
    argv = [a for a in argv if a != "--rewrite"]
    if len(argv) != 1:
        print(
            "usage: python -m benchmarks.report [--rewrite] benchmarks/results/<file>.json\n"
            "  --rewrite: recompute the summary stored in the file and redraw its figure",
            file=sys.stderr,
        )
        return 2
    path = Path(argv[0])
    results = json.loads(path.read_text())
    if rewrite:
        results["summary"] = summarize(results)
        path.write_text(json.dumps(results, indent=1))
        from .plot import plot

        plot(path)
    print(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
