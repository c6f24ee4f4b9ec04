"""Where a fit's NUTS step size should sit: the step sizes warm-up adapts, and what fixed ones do.

``python -m benchmarks.step_size_scan --config infer/configs/demo.toml --out FILE.json``

1. MAP (the fit's own), then ``--chains`` chains (threads) each run the config's warm-up with
   step-size adaptation from the MAP point, with the config's mass matrix; each chain's
   adapted step size is recorded. This is the spread a fit with ``adapt_step_size = true``
   draws its step sizes from.
2. From where those chains ended (the typical set), each fixed step size in ``--steps``
   (default: 0.8, 1.0 and 1.25 times the median adapted one) runs ``--transitions``
   transitions in every chain; recorded per step size: mean acceptance, leapfrog steps per
   transition, the fraction at the maximum tree depth and divergences.

The JSON has both tables, the config, the host and the wall times. Used to choose the demo's
``engine.step_size`` (benchmarks/README.md, "Demo fit: a fixed step size").
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

from models.xla_flags import use_cpu_flags

use_cpu_flags()

import jax  # noqa: E402
import numpy as np  # noqa: E402

jax.config.update("jax_enable_x64", True)

from infer._io import atomic_path  # noqa: E402
from infer.config import load_config  # noqa: E402
from infer.engines import ChunkedNUTS, load_inverse_mass, run_map  # noqa: E402
from infer.fit import Fit  # noqa: E402


def _summary(records: dict, max_depth: int) -> dict:
    steps = np.asarray(records["num_steps"])
    return {
        "acceptance_per_chain": np.asarray(records["accept_prob"]).mean(axis=1).round(4).tolist(),
        "acceptance": round(float(np.mean(records["accept_prob"])), 4),
        "leapfrog_per_chain": steps.mean(axis=1).round(1).tolist(),
        "leapfrog": round(float(steps.mean()), 1),
        "max_depth_fraction": round(float(np.mean(steps >= 2**max_depth - 1)), 4),
        "divergences": int(np.sum(records["diverging"])),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="infer/configs/demo.toml")
    ap.add_argument("--out", required=True)
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--transitions", type=int, default=40)
    ap.add_argument("--steps", type=float, nargs="*", default=None)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument(
        "--adapted",
        type=float,
        nargs="*",
        default=None,
        help="step sizes an earlier run of phase 1 adapted: skip phase 1, burn in at their median",
    )
    ap.add_argument("--burn-in", type=int, default=30)
    args = ap.parse_args(argv)

    t_start = time.perf_counter()
    config = load_config(args.config).replace(chains=args.chains, chain_method="threads")
    fit = Fit.create(config)
    model = fit.model
    z0 = model.potential()[1]
    mass = load_inverse_mass(config.mass_file, z0) if config.mass_init == "file" else None
    key = jax.random.PRNGKey(args.seed)
    k_map, k_warm, k_fixed = jax.random.split(key, 3)
    map_result = run_map(model, config, k_map)
    t_map = time.perf_counter()

    chunk = 50

    def run(driver, states, n):
        """n transitions in blocks: (states, records [chain, n] without the positions)."""
        blocks = []
        for left in range(n, 0, -chunk):
            states, records = driver.advance(states, min(chunk, left))
            blocks.append(records)
        keys = [k for k in blocks[0] if k != "z"]
        return states, {k: np.concatenate([b[k] for b in blocks], axis=1) for k in keys}

    def positions(states):
        return {k: np.stack([np.asarray(s.z[k]) for s in states]) for k in states[0].z}

    fixed_cfg = config.replace(adapt_step_size=False, step_size=1.0)
    fixed_driver = ChunkedNUTS.for_model(model, fixed_cfg, chunk)
    warm_summary = None
    if args.adapted:  # phase 1 done before: burn in at their median from the MAP point
        adapted = list(args.adapted)
        states = fixed_driver.init(
            map_result["unconstrained"], k_warm, mass, step_size=float(np.median(adapted))
        )
        states, _ = run(fixed_driver, states, args.burn_in)
    else:
        driver = ChunkedNUTS.for_model(model, config.replace(adapt_step_size=True), chunk)
        states = driver.init(map_result["unconstrained"], k_warm, mass)
        states, warm = run(driver, states, config.warmup)
        adapted = [float(s.adapt_state.step_size) for s in states]
        warm_summary = _summary({k: v[:, -50:] for k, v in warm.items()}, config.max_tree_depth)
    ends = positions(states)
    t_warm = time.perf_counter()
    print(json.dumps({"adapted_step_sizes": adapted, "seconds": t_warm - t_start}), flush=True)

    median = float(np.median(adapted))
    candidates = args.steps or [round(f * median, 4) for f in (0.8, 1.0, 1.25)]
    scan = []
    for eps in candidates:
        t0 = time.perf_counter()
        st = fixed_driver.init(ends, k_fixed, mass, step_size=eps, per_chain=True)
        _, rec = run(fixed_driver, st, args.transitions)
        row = {"step_size": eps, **_summary(rec, config.max_tree_depth)}
        row["seconds"] = round(time.perf_counter() - t0, 1)
        scan.append(row)
        print(json.dumps(row), flush=True)

    result = {
        "what": "NUTS step sizes for a fit: adapted by warm-up, and fixed ones scanned",
        "config": config.to_toml(),
        "config_file": args.config,
        "seed": args.seed,
        "host": {"machine": platform.machine(), "processor": platform.processor()},
        "device": str(jax.devices()[0]),
        "adapted_step_sizes": adapted,
        "adapted_from_an_earlier_run": bool(args.adapted),
        "warmup_summary_last_50": warm_summary,
        "fixed_scan": scan,
        "transitions_per_fixed_step": args.transitions,
        "seconds": {
            "map": round(t_map - t_start, 1),
            "warmup": round(t_warm - t_map, 1),
            "scan": round(time.perf_counter() - t_warm, 1),
        },
    }
    with atomic_path(Path(args.out)) as tmp:
        tmp.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: result[k] for k in ("adapted_step_sizes", "seconds")}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
