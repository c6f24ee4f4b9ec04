"""Populations of heterogeneous virtual neurons: the one place that vmaps over neurons.

theta_i = theta_pop * exp(sigma * z_i) for the heterogeneous parameters, with z_i ~ N(0, 1)
drawn once (common random numbers), so population summaries are smooth, differentiable
functions of (theta_pop, sigma). One vmapped solve covers neurons x conditions; the neuron axis
can be sharded over several devices with ``jax.sharding`` (same code on 1 CPU, 1 GPU or many).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from jaxtyping import Array, Bool, Float, Int

from ._spec import Pathway
from .conditions import Condition, as_conditions
from .dynamics import compiled, default_theta
from .exposure import EncodedConditions, encode_conditions
from .pathway import PATHWAY
from .solve import Constants, SolverConfig, solve_neuron

DEFAULT_SIGMA = 0.2  # between-neuron log-SD used when none is given
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)

_TRACES = {"population": 0}


def trace_count() -> int:
    """How many times the population solve has been traced (compiled) in this process."""
    return _TRACES["population"]


def heterogeneous_index(pathway: Pathway = PATHWAY) -> np.ndarray:
    return np.array([pathway.parameter_names.index(n) for n in pathway.heterogeneous_names])


def draw_z(n_neurons: int, seed: int = 0, pathway: Pathway = PATHWAY, dtype=jnp.float64):
    """Fixed standard-normal deviates [neuron, heterogeneous parameter]."""
    key = jax.random.PRNGKey(seed)
    return jax.random.normal(key, (n_neurons, len(pathway.heterogeneous_names)), dtype)


def neuron_thetas(
    theta_pop: Float[Array, " param"],
    sigma: Float[Array, " het"],
    z: Float[Array, "neuron het"],
    het_index: np.ndarray,
) -> Float[Array, "neuron param"]:
    """Per-neuron parameter vectors."""
    # Multiplicative factor per (neuron, parameter): exp(sigma z) on heterogeneous columns, 1
    # elsewhere (a dense product keeps reverse-mode gradients simple).
    log_factor = jnp.zeros((z.shape[0], theta_pop.shape[0]), theta_pop.dtype)
    log_factor = log_factor.at[:, het_index].set(sigma[None, :] * z, unique_indices=True)
    return theta_pop[None, :] * jnp.exp(log_factor)


class PopulationSolution(eqx.Module):
    """Readouts of every neuron under every condition."""

    readouts: Float[Array, "neuron condition time readout"]
    ok: Bool[Array, "neuron condition"]
    num_steps: Int[Array, "neuron condition"]


def _in_batches(fn, thetas, size: int):
    """``fn`` (vectorised over the leading axis of ``thetas``) applied to consecutive batches of
    ``size`` neurons one after the other (``lax.map``); 0, or no more neurons than that, is one
    batch. The last neuron is repeated to fill the last batch (one compiled batch shape) and
    its copies are dropped."""
    n = thetas.shape[0]
    if not size or n <= size:
        return fn(thetas)
    m = -(-n // size)
    pad = m * size - n
    if pad:
        thetas = jnp.concatenate([thetas, jnp.broadcast_to(thetas[-1:], (pad, *thetas.shape[1:]))])
    out = jax.lax.map(fn, thetas.reshape(m, size, *thetas.shape[1:]))
    return jax.tree_util.tree_map(lambda a: a.reshape(m * size, *a.shape[2:])[:n], out)


def simulate_population(
    theta_pop: Float[Array, " param"],
    sigma: Float[Array, " het"],
    z: Float[Array, "neuron het"],
    conditions: EncodedConditions,
    ts: Float[Array, " time"] | Float[Array, "condition time"],
    config: SolverConfig | None = None,
    pathway: Pathway = PATHWAY,
    constants: Constants | None = None,
) -> PopulationSolution:
    """Solve all neurons under all conditions (pure; jit it at the driver). ``constants``:
    parameters and inputs the same for every neuron and condition (see :class:`Constants`)."""
    _TRACES["population"] += 1  # runs at trace time only
    config = config or SolverConfig()
    cp = compiled(pathway)
    thetas = neuron_thetas(theta_pop, sigma, z, heterogeneous_index(pathway))

    def one(theta, cond, ts_c):
        return solve_neuron(theta, cond, ts_c, config, cp, constants)

    # ts: shared [time] or per condition [condition, time] (each row non-decreasing; pad a
    # short row by repeating its last time), so each condition integrates only as far as needed.
    ts_axis = 0 if ts.ndim == 2 else None
    per_condition = jax.vmap(one, in_axes=(None, 0, ts_axis))
    batch = jax.vmap(lambda theta: per_condition(theta, conditions, ts))
    sol = _in_batches(batch, thetas, config.batch_size())
    return PopulationSolution(readouts=sol.readouts, ok=sol.ok, num_steps=sol.num_steps)


# ----------------------------------------------------------------------------- summaries
def masked_summary(
    values: np.ndarray, ok: np.ndarray, quantiles=QUANTILES
) -> dict[str, np.ndarray]:
    """Mean, SD, quantiles over axis 0 (neurons) of the neurons with ``ok``, with Monte-Carlo
    standard errors: SD/sqrt(n) for the mean, and for each quantile half the distance between
    the order statistics at n*q -/+ sqrt(n*q*(1-q)) (the binomial interval of the quantile).
    """
    values = np.asarray(values, float)
    mask = np.broadcast_to(
        np.asarray(ok, bool).reshape(ok.shape + (1,) * (values.ndim - ok.ndim)), values.shape
    )
    data = np.where(mask, values, np.nan)
    n = mask.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.nanmean(data, axis=0)
        sd = np.nanstd(data, axis=0, ddof=1)
        out = {"n_ok": n.astype(float), "mean": mean, "sd": sd, "mcse_mean": sd / np.sqrt(n)}
        ordered = np.sort(data, axis=0)  # NaN sorts last
        for q in quantiles:
            tag = f"q{int(round(q * 100)):02d}"
            out[tag] = np.nanquantile(data, q, axis=0)
            half = np.sqrt(n * q * (1 - q))
            lo = np.clip(np.floor(n * q - half).astype(int), 0, np.maximum(n - 1, 0))
            hi = np.clip(np.ceil(n * q + half).astype(int), 0, np.maximum(n - 1, 0))
            x_lo = np.take_along_axis(ordered, lo[None], axis=0)[0]
            x_hi = np.take_along_axis(ordered, hi[None], axis=0)[0]
            out[f"mcse_{tag}"] = (x_hi - x_lo) / 2
    return out


@dataclasses.dataclass
class SimulationResult:
    """Population readouts for conditions and their paired vehicles, with summaries."""

    conditions: tuple[Condition, ...]
    vehicles: tuple[Condition, ...]  # paired vehicle of each condition
    times: np.ndarray
    readout_names: tuple[str, ...]
    ratio: tuple[bool, ...]  # per readout: fold change (True) or difference (False) vs vehicle
    readouts: np.ndarray  # [neuron, condition, time, readout]
    vehicle_readouts: np.ndarray  # [neuron, condition, time, readout]
    ok: np.ndarray  # [neuron, condition]: treated and vehicle solves both succeeded
    num_steps: np.ndarray  # [neuron, condition]

    def effect(self) -> np.ndarray:
        """Per-neuron effect vs paired vehicle: fold for ratio readouts, difference otherwise."""
        ratio = np.asarray(self.ratio)[None, None, None, :]
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(
                ratio, self.readouts / self.vehicle_readouts, self.readouts - self.vehicle_readouts
            )

    def summary(self) -> dict[str, np.ndarray]:
        """Statistics [condition, time, readout] of levels and effects.

        ``fold_of_means`` is the tissue-style effect (mean treated / mean vehicle, or the
        difference of means); ``effect_*`` summarise the per-neuron effect (per-cell data).
        """
        out = {}
        for key, val in masked_summary(self.readouts, self.ok).items():
            out[key] = val
        for key, val in masked_summary(self.effect(), self.ok).items():
            if key != "n_ok":
                out[f"effect_{key}"] = val
        veh = masked_summary(self.vehicle_readouts, self.ok)
        ratio = np.asarray(self.ratio)[None, None, :]
        with np.errstate(divide="ignore", invalid="ignore"):
            out["fold_of_means"] = np.where(
                ratio, out["mean"] / veh["mean"], out["mean"] - veh["mean"]
            )
        return out

    def tidy(self) -> list[tuple[str, str, float, str, float]]:
        """Rows (condition, readout, time_h, statistic, value) for a tidy CSV."""
        stats = self.summary()
        rows = []
        for c, cond in enumerate(self.conditions):
            for r, name in enumerate(self.readout_names):
                for k, t in enumerate(self.times):
                    for stat, arr in stats.items():
                        rows.append((cond.spec, name, float(t), stat, float(arr[c, k, r])))
        return rows


def in_threads(run_one, k: int):
    """``run_one(theta_pop, sigma, z, enc, ts)`` on ``k`` consecutive parts of the neurons
    of ``z`` at once, each from its own thread (the last neuron repeated to fill the last
    part: one compiled shape), the parts' solutions joined in order. Each neuron's solve is
    the one ``run_one`` gives it alone, so the result does not depend on ``k``."""
    from concurrent.futures import ThreadPoolExecutor

    def run(theta_pop, sigma, z_, enc, ts):
        n = z_.shape[0]
        m = -(-n // k)
        if m * k > n:
            z_ = jnp.concatenate([z_, jnp.broadcast_to(z_[-1:], (m * k - n, *z_.shape[1:]))])
        parts = [z_[i * m : (i + 1) * m] for i in range(k)]
        with ThreadPoolExecutor(k) as pool:
            outs = list(pool.map(lambda zp: run_one(theta_pop, sigma, zp, enc, ts), parts))
        return jax.tree_util.tree_map(lambda *a: jnp.concatenate(a)[:n], *outs)

    return run


class Simulator:
    """Jitted population simulator with fixed common random numbers.

    A second call with new parameter values (same numbers of neurons, conditions and times)
    reuses the compiled function: nothing is retraced. With several ``devices`` the neurons
    are split between them and each device solves its own in batches of
    ``config.neuron_batch``: with an explicit solver (Tsit5) in one ``jax.shard_map``
    program, with an implicit one (Kvaerno) in one program per device run from its own
    thread. The result is sharded over the devices like ``z``. On one CPU device the
    neurons are solved in ``threads`` parts at once (default: one per core the process may
    use, at most one per batch; 1 elsewhere; with several devices each device is one part);
    the result does not depend on it.
    """

    def __init__(
        self,
        *,
        n_neurons: int = 1000,
        seed: int = 0,
        config: SolverConfig | None = None,
        pathway: Pathway = PATHWAY,
        devices: Sequence[jax.Device] | None = None,
        threads: int | None = None,
    ):
        if n_neurons < 1:
            raise ValueError(f"n_neurons must be >= 1, got {n_neurons}")
        if threads is not None and (
            isinstance(threads, bool) or not isinstance(threads, int) or threads < 1
        ):
            raise ValueError(f"threads must be None (automatic) or >= 1, got {threads!r}")
        self.pathway = pathway
        self.n_neurons = n_neurons
        self.devices = tuple(devices) if devices is not None else tuple(jax.devices()[:1])
        n_dev = len(self.devices)
        config = config or SolverConfig()
        implicit = isinstance(config.solver, diffrax.AbstractImplicitSolver)
        # "auto" resolved for the devices the solve runs on, not JAX's default backend
        config = dataclasses.replace(
            config, neuron_batch=config.batch_size(self.devices[0].platform)
        )
        self.config = config
        self.n_padded = -(-n_neurons // n_dev) * n_dev
        z = draw_z(self.n_padded, seed, pathway)
        config_ = self.config

        def run(theta_pop, sigma, z_, enc, ts):
            return simulate_population(theta_pop, sigma, z_, enc, ts, config_, pathway)

        # How the neuron axis is split over several devices: each device always solves its
        # own neurons with its own loops. One program partitioned by the compiler over the
        # devices synchronised them at every loop iteration: on 2 host devices the implicit
        # Kvaerno5 solve of 64 neurons did not finish in 13 min (1.6 s on one device).
        self.partitioning = (
            "one device"
            if n_dev == 1
            else "one program per device (threads)"
            if implicit
            else "shard_map, batches per device"
        )
        self._run = jax.jit(run)
        # One device: its neurons in `threads` parts, each solved from its own thread (a
        # batched CPU solve keeps one core busy; 2 threads on 2 cores: 1.9x, same result).
        batch = self.config.neuron_batch
        if threads is None:
            cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
            cpu = self.devices[0].platform == "cpu"
            threads = min(cores, -(-self.n_padded // batch)) if cpu and batch else 1
        self.threads = threads if n_dev == 1 else 1
        if self.threads > 1:
            self._run = in_threads(self._run, self.threads)
            self.partitioning = f"one device, {self.threads} threads"
        if n_dev > 1:
            mesh = Mesh(np.array(self.devices), ("neuron",))
            z = jax.device_put(z, NamedSharding(mesh, PartitionSpec("neuron", None)))
            if implicit:
                # jax.shard_map fails inside lineax's linear solve of the implicit solvers
                # ("pytree does not match out_structure"): each device runs the one-device
                # program on its share from its own thread instead.
                self._run = self._per_device(self._run, mesh)
            else:
                rep = PartitionSpec()  # replicated: parameters, conditions, times
                # Each device solves its own neurons, in its own sequential batches.
                self._run = jax.jit(
                    jax.shard_map(
                        run,
                        mesh=mesh,
                        in_specs=(rep, rep, PartitionSpec("neuron", None), rep, rep),
                        out_specs=PartitionSpec("neuron"),
                        check_vma=False,
                    )
                )
        self.z = z

    @staticmethod
    def _per_device(run_one, mesh: Mesh):
        """``run_one`` (a jitted one-device solve) on every device's share of the neurons at
        once, one thread per device; the results are assembled into arrays sharded like z."""
        from concurrent.futures import ThreadPoolExecutor

        def run(theta_pop, sigma, z_, enc, ts):
            shards = {s.device: s.data for s in z_.addressable_shards}
            devices = list(mesh.devices.flat)

            def one(device):
                common = jax.device_put((theta_pop, sigma, enc, ts), device)
                return run_one(common[0], common[1], shards[device], common[2], common[3])

            with ThreadPoolExecutor(len(devices)) as pool:
                outs = list(pool.map(one, devices))

            def assemble(*parts):
                spec = PartitionSpec("neuron", *([None] * (parts[0].ndim - 1)))
                shape = (sum(p.shape[0] for p in parts), *parts[0].shape[1:])
                return jax.make_array_from_single_device_arrays(
                    shape, NamedSharding(mesh, spec), list(parts)
                )

            return jax.tree_util.tree_map(assemble, *outs)

        return run

    def default_sigma(self, value: float = DEFAULT_SIGMA):
        return jnp.full((len(self.pathway.heterogeneous_names),), value)

    def solve(self, conditions, times, theta_pop=None, sigma=None) -> PopulationSolution:
        """Raw population solve (arrays on device), neurons beyond n_neurons dropped."""
        enc = (
            conditions
            if isinstance(conditions, EncodedConditions)
            else encode_conditions(conditions)
        )
        theta_pop = default_theta(self.pathway) if theta_pop is None else jnp.asarray(theta_pop)
        sigma = self.default_sigma() if sigma is None else jnp.asarray(sigma)
        ts = jnp.asarray(times, theta_pop.dtype)
        if ts.ndim != 1 or ts.size == 0 or bool(jnp.any(ts < 0)) or bool(jnp.any(jnp.diff(ts) < 0)):
            raise ValueError("times must be a non-empty, non-decreasing list of hours >= 0")
        sol = self._run(theta_pop, sigma, self.z, enc, ts)
        return jax.tree_util.tree_map(lambda a: a[: self.n_neurons], sol)

    def run(self, conditions, times, theta_pop=None, sigma=None) -> SimulationResult:
        """Simulate conditions and their paired vehicles; return readouts and summaries."""
        conds = as_conditions(conditions)
        vehicles = tuple(c.paired_vehicle() for c in conds)
        unique = list(dict.fromkeys(conds + vehicles))
        sol = self.solve(unique, times, theta_pop, sigma)
        readouts = np.asarray(sol.readouts)
        ok = np.asarray(sol.ok)
        ci = [unique.index(c) for c in conds]
        vi = [unique.index(v) for v in vehicles]
        return SimulationResult(
            conditions=conds,
            vehicles=vehicles,
            times=np.asarray(times, float),
            readout_names=self.pathway.observable_names,
            ratio=tuple(o.ratio for o in self.pathway.observables),
            readouts=readouts[:, ci],
            vehicle_readouts=readouts[:, vi],
            ok=ok[:, ci] & ok[:, vi],
            num_steps=np.asarray(sol.num_steps)[:, ci],
        )
