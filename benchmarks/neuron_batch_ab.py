"""Neurons solved at once (``SolverConfig.neuron_batch``): an A/B on one device.

``python -m benchmarks.neuron_batch_ab --out FILE.json [--n 1024]``

Under ``vmap`` every lane of a population solve runs until the slowest lane of its batch has
finished, so solving the neurons in sequential batches can be faster on a CPU. For each batch
size this times (``benchmarks._timing.timed``: one warm-up call, then ``--repeats``; min and
median; one compilation each):

1. the standard protocol set (4 conditions to 24 h, Tsit5, rtol 1e-6, float64) at N neurons,
   the forward case of the suite;
2. the default fit's log density and its value-and-gradient at N neurons (the gradient case's
   ``log_likelihood`` variant), for the batch sizes in ``--fit-batches``.

Every point records how far its result lies from the first batch size's. The JSON has the
machine, the versions and every time; benchmarks/README.md, "Neurons solved in batches".
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from models.xla_flags import use_cpu_flags

use_cpu_flags()

import diffrax  # noqa: E402
import jax  # noqa: E402
import numpy as np  # noqa: E402

jax.config.update("jax_enable_x64", True)

from infer._io import atomic_path  # noqa: E402
from infer.config import load_config  # noqa: E402
from infer.fit_cli import DEFAULT_CONFIG  # noqa: E402
from infer.likelihood import make_log_density  # noqa: E402
from models.population import Simulator  # noqa: E402
from models.solve import SolverConfig  # noqa: E402

from ._env import device_info, git_commit, machine, now_iso, package_versions  # noqa: E402
from ._timing import timed  # noqa: E402
from .protocols import ATOL, PROTOCOLS, RTOL  # noqa: E402


def standard_set(n: int, batch: int, repeats: int) -> dict:
    proto = PROTOCOLS["standard"]
    config = SolverConfig(solver=diffrax.Tsit5(), rtol=RTOL, atol=ATOL, neuron_batch=batch)
    sim = Simulator(n_neurons=n, config=config)
    timing, out = timed(
        lambda: sim.solve(proto["conditions"], proto["times"]).readouts, repeats=repeats
    )
    return timing | {"readouts": np.asarray(out)}


def fit_log_density(n: int, batch: int, repeats: int) -> dict:
    config = load_config(DEFAULT_CONFIG).replace(neuron_batch=batch)
    log_density, z0, _ = make_log_density(config, neurons=n)
    value = jax.jit(log_density).lower(z0).compile()
    grad = jax.jit(jax.value_and_grad(log_density)).lower(z0).compile()
    t_value, v = timed(lambda: value(z0), repeats=repeats)
    t_grad, (_, g) = timed(lambda: grad(z0), repeats=repeats)
    flat = np.concatenate([np.ravel(x) for x in jax.tree_util.tree_leaves(g)])
    return {
        "value": t_value,
        "value_and_gradient": t_grad,
        "gradient_over_value": t_grad["time_s_min"] / t_value["time_s_min"],
        "log_density": float(v),
        "gradient": flat,
    }


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--n", type=int, default=1024)
    ap.add_argument("--batches", default="0,4,16,64", help="standard set: batch sizes")
    ap.add_argument("--fit-batches", default="0,16", help="fit log density: batch sizes")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    started = time.perf_counter()
    record = {
        "what": "neuron_batch A/B",
        "date": now_iso(),
        "git_commit": git_commit(),
        "machine": machine(),
        "device": device_info(),
        "versions": package_versions(),
        "n_neurons": args.n,
        "standard_set": [],
        "fit_log_density": [],
    }
    ref = None
    for b in [int(x) for x in args.batches.split(",")]:
        point = standard_set(args.n, b, args.repeats)
        readouts = point.pop("readouts")
        ref = readouts if ref is None else ref
        point |= {
            "neuron_batch": b,
            "max_rel_diff_vs_first": float(np.max(np.abs(readouts - ref) / (np.abs(ref) + 1e-300))),
        }
        record["standard_set"].append(point)
        print(json.dumps(point), flush=True)
    ref = None
    for b in [int(x) for x in args.fit_batches.split(",")]:
        point = fit_log_density(args.n, b, args.repeats)
        grad = point.pop("gradient")
        ref = (point["log_density"], grad) if ref is None else ref
        point |= {
            "neuron_batch": b,
            "value_diff_vs_first": abs(point["log_density"] - ref[0]),
            "gradient_max_rel_diff_vs_first": float(
                np.max(np.abs(grad - ref[1]) / (np.abs(ref[1]) + 1e-12))
            ),
        }
        record["fit_log_density"].append(point)
        print(json.dumps(point), flush=True)
    record["wall_s"] = time.perf_counter() - started
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        Path(tmp).write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
