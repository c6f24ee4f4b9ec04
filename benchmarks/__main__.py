"""``python -m benchmarks --quick | --full | --gpu``: run a plan, write JSON and a figure.

Each spec of the plan runs in a fresh worker process (``benchmarks.worker``), so JAX
precision, forced host devices and peak-memory readings are per case. Results are rewritten
after every worker (an interrupted run keeps what it measured) to
``benchmarks/results/<date>_<device>_<plan>.json``; the figure goes beside it as ``.png``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import plans, report
from ._env import REPO, git_commit, machine, now_iso, package_versions
from .worker import RECORD_PREFIX

RESULTS = Path(__file__).resolve().parent / "results"


def _worker_env(spec: dict, backend: str) -> dict:
    env = dict(os.environ)
    env.setdefault("PYTHONUNBUFFERED", "1")
    if spec["case"] == "peers":
        # scipy and roadrunner are CPU tools; their JAX pieces (the jitted right-hand side,
        # the reference solve) must not pay a GPU round trip per call
        env["JAX_PLATFORMS"] = "cpu"
    if spec["case"] == "sharding" and backend == "cpu":
        env["JAX_PLATFORMS"] = "cpu"
        from models.xla_flags import force_host_devices  # imports jax, starts no backend

        force_host_devices(spec["k_devices"], env)
    return env


def _run_worker(spec: dict, backend: str, timeout_s: float) -> list[dict]:
    cmd = [sys.executable, "-m", "benchmarks.worker", json.dumps(spec)]
    records: list[dict] = []
    t0 = time.perf_counter()
    try:
        proc = subprocess.Popen(
            cmd, cwd=REPO, env=_worker_env(spec, backend), stdout=subprocess.PIPE, text=True
        )
    except OSError as err:
        return [dict(spec) | {"status": "error", "error": f"could not start worker: {err}"}]
    deadline = time.monotonic() + timeout_s
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith(RECORD_PREFIX):
                records.append(json.loads(line[len(RECORD_PREFIX) :]))
            else:
                print(line, end="", flush=True)
            if time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(cmd, timeout_s)
        proc.wait(timeout=max(deadline - time.monotonic(), 1))
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        records.append(
            dict(spec) | {"status": "error", "error": f"worker timed out after {timeout_s:.0f} s"}
        )
    if proc.returncode not in (0, None) and not any(r.get("status") == "error" for r in records):
        reason = (
            "killed (out of memory?)" if proc.returncode < 0 else f"exit code {proc.returncode}"
        )
        records.append(dict(spec) | {"status": "error", "error": f"worker failed: {reason}"})
    for r in records:
        r.setdefault("worker_wall_s", time.perf_counter() - t0)
    return records


def _detect_backend() -> tuple[str, dict]:
    """Backend and device facts from a short subprocess (the parent never imports jax)."""
    code = "import json, benchmarks._env as e; print(json.dumps(e.device_info()))"
    try:
        out = subprocess.run(
            [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300
        )
        info = json.loads(out.stdout.strip().splitlines()[-1])
    except (subprocess.SubprocessError, ValueError, IndexError):
        return "cpu", {"backend": "unknown"}
    return info.get("backend", "cpu"), info


def _write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.splitlines()[0]
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--quick",
        action="store_const",
        const="quick",
        dest="plan",
        help="under 10 min on 2 CPU cores (default)",
    )
    mode.add_argument(
        "--full",
        action="store_const",
        const="full",
        dest="plan",
        help="the full sweeps (long on CPU)",
    )
    mode.add_argument(
        "--gpu",
        action="store_const",
        const="gpu",
        dest="plan",
        help="the one-GPU plan (~10 min on an H100)",
    )
    parser.add_argument(
        "--cases",
        default="",
        help="comma-separated subset: forward,flops,peers,gradient,sharding,inference",
    )
    parser.add_argument(
        "--out", type=Path, default=RESULTS, help="results folder (default benchmarks/results)"
    )
    parser.add_argument("--label", default="", help="file stem (default <date>_<device>_<plan>)")
    parser.add_argument(
        "--budget-s",
        type=float,
        default=None,
        help="stop starting new workers after this many seconds (default: quick 570, gpu 540, full none)",
    )
    parser.add_argument("--no-plot", action="store_true")
    args = parser.parse_args(argv)
    plan_name = args.plan or "quick"
    budget = (
        args.budget_s
        if args.budget_s is not None
        else {"quick": 570.0, "gpu": 540.0}.get(plan_name)
    )
    specs = plans.PLANS[plan_name]()
    opted_out: list[dict] = []
    if args.cases:
        wanted = {c.strip() for c in args.cases.split(",") if c.strip()}
        specs = [s for s in specs if s["case"] in wanted]
    else:
        # cases too long for the plan's time (the quick plan's NUTS/SVI) run only when named
        opted_out = [s for s in specs if s.get("opt_in")]
        specs = [s for s in specs if not s.get("opt_in")]

    start = time.perf_counter()
    backend, device = _detect_backend()
    host = machine()
    if backend == "cpu":
        tag = f"cpu-{host['cpu_cores']}core-{_slug(host['cpu'].split('(')[0])}"
    else:
        tag = f"{backend}-{_slug(device.get('device_kind', backend))}"
    date = now_iso()
    label = args.label or f"{date[:10]}_{tag}_{plan_name}"
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"{label}.json"
    results = {
        "meta": {
            "plan": plan_name,
            "date": date,
            "machine": host,
            "device": device,
            "versions": package_versions(),
            "git_commit": git_commit(),
            "command": " ".join(sys.argv),
            "notes": [
                "time_s_min/median: wall clock of one call after compilation, block_until_ready, over repeats",
                "one neuron-solve = one neuron under one condition over the whole protocol (to 24 h)",
                "cpu_s_min: process CPU seconds of the fastest call (all threads); on a shared host the "
                "wall clock includes waiting for other processes, see machine.load_average",
                "memory: running peaks of the worker process (sweeps go in increasing N); xla_memory: "
                "XLA's compile-time buffer sizes for that N",
            ],
        },
        "records": [
            dict(s)
            | {
                "status": "skipped",
                "reason": f"opt-in (too long for this plan's time): python -m benchmarks "
                f"--{plan_name} --cases {s['case']}",
            }
            for s in opted_out
        ],
    }
    print(
        f"benchmarks: plan {plan_name}, {len(specs)} workers, backend {backend}, writing {path}",
        flush=True,
    )
    for i, spec in enumerate(specs):
        elapsed = time.perf_counter() - start
        if budget is not None and elapsed > budget:
            results["records"].append(
                dict(spec) | {"status": "skipped", "reason": f"plan budget of {budget:.0f} s spent"}
            )
            continue
        print(f"[{i + 1}/{len(specs)} {elapsed:5.0f}s] {json.dumps(spec)}", flush=True)
        timeout = 1200.0 if budget is None else max(budget - elapsed + 120.0, 60.0)
        if "timeout_s" in spec and (budget is None or spec.get("opt_in")):
            timeout = float(spec["timeout_s"])  # long cases (inference), full plan or opt-in
        results["records"].extend(_run_worker(spec, backend, timeout))
        results["meta"]["elapsed_s"] = time.perf_counter() - start
        results["summary"] = report.summarize(results)
        _write_atomic(path, json.dumps(results, indent=1))
    results["meta"]["elapsed_s"] = time.perf_counter() - start
    results["meta"]["load_average_end"] = os.getloadavg()
    results["summary"] = report.summarize(results)
    _write_atomic(path, json.dumps(results, indent=1))
    if not args.no_plot:
        try:
            from .plot import plot

            png = plot(path)
            print(f"figure: {png}")
        except Exception as err:  # noqa: BLE001 - a plotting problem must not lose results
            print(f"plot failed: {type(err).__name__}: {err}", file=sys.stderr)
    print()
    print(report.markdown(results))
    print(f"\nresults: {path} ({results['meta']['elapsed_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
