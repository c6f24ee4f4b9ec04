"""Case (d): the neuron axis sharded over K devices with ``Simulator(devices=...)``.

On CPU the runner starts this worker with ``XLA_FLAGS=--xla_force_host_platform_device_count=K``
(K host "devices", each running its shard on its own thread); on GPUs it uses the real
devices. Strong scaling: fixed N, K varies; the record holds time, speed-up inputs and the
sharding actually used.
"""

from __future__ import annotations

from .._env import peak_memory_bytes
from .._timing import timed
from ..protocols import ATOL, PROTOCOLS, RTOL, solver_config
from ._common import dtype_of, error_record, step_stats


def run(spec: dict):
    import jax
    import jax.numpy as jnp

    from models.dynamics import default_theta
    from models.exposure import encode_conditions
    from models.population import Simulator

    protocol = spec.get("protocol", "standard")
    proto = PROTOCOLS[protocol]
    n, k = int(spec["n_neurons"]), int(spec["k_devices"])
    base = {
        "case": "sharding",
        "protocol": protocol,
        "conditions": list(proto["conditions"]),
        "solver": spec["solver"],
        "dtype": spec["dtype"],
        "rtol": RTOL,
        "atol": ATOL,
        "n_neurons": n,
        "k_devices": k,
        "devices_visible": len(jax.devices()),
    }
    if len(jax.devices()) < k:
        yield base | {
            "status": "skipped",
            "reason": f"only {len(jax.devices())} devices visible, need {k}",
        }
        return
    try:
        dt = dtype_of(spec["dtype"])
        sim = Simulator(
            n_neurons=n, config=solver_config(spec["solver"]), devices=jax.devices()[:k]
        )
        enc = encode_conditions(list(proto["conditions"]), dtype=jnp.dtype(dt).type)
        theta = default_theta(dtype=dt)
        sigma = sim.default_sigma().astype(dt)
        timing, sol = timed(
            lambda: sim.solve(enc, proto["times"], theta, sigma), repeats=spec.get("repeats", 3)
        )
    except Exception as err:  # noqa: BLE001
        yield error_record(base, err)
        return
    solves = n * len(proto["conditions"])
    yield (
        base
        | timing
        | {
            "status": "ok",
            "api": "models.population.Simulator(devices=jax.devices()[:k]).solve",
            "sharding": str(getattr(sim.z, "sharding", None)),
            "neuron_batch": sim.config.batch_size() or n,  # neurons solved at once
            "partitioning": sim.partitioning,
            "threads": sim.threads,  # one device: parts of the neurons solved from threads
            "neuron_solves": solves,
            "neuron_solves_per_s": solves / timing["time_s_min"],
            "steps": step_stats(sol.num_steps, sol.ok),
            "memory": peak_memory_bytes(),
        }
    )
