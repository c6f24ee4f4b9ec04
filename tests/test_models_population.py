"""Populations of virtual neurons: vmap equals a loop, failures stay per neuron, no retracing,
and the neuron axis shards over several devices with the same result."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from models import PATHWAY
from models.dynamics import default_theta, theta_from
from models.exposure import encode_conditions, select_condition
from models.population import (
    Simulator,
    heterogeneous_index,
    masked_summary,
    neuron_thetas,
    trace_count,
)
from models.solve import SolverConfig, solve_neuron
from models.xla_flags import force_host_devices

ROOT = Path(__file__).resolve().parents[1]
N_NEURONS = 6  # not a multiple of 4: the 4-device run also exercises padding
SEED = 3
CONDITIONS = (
    "ketamine 10 mg/kg i.p., mouse",
    "vehicle, mouse",
    "ethanol 30 mM bath washout 2 h + baclofen, cultured neurons, Fmr1 KO",
)
TIMES = (0.0, 0.5, 1.0, 6.0, 24.0, 336.0)


@pytest.fixture(scope="module")
def simulator():
    return Simulator(n_neurons=N_NEURONS, seed=SEED)


@pytest.fixture(scope="module")
def population(simulator):
    """One population solve at the default parameters and sigma (shared by several tests)."""
    sol = simulator.solve(CONDITIONS, TIMES)
    return jax.tree_util.tree_map(np.asarray, sol)


def test_population_shapes_success_and_vehicle_baseline(population):
    """[neuron, condition, time, readout] for 6 neurons; every solve succeeds; every
    heterogeneous vehicle neuron stays at its baseline readouts (1e-8) through 336 h."""
    shape = (N_NEURONS, len(CONDITIONS), len(TIMES), len(PATHWAY.observable_names))
    assert population.readouts.shape == shape
    assert population.ok.all()
    vehicle = population.readouts[:, CONDITIONS.index("vehicle, mouse")]
    np.testing.assert_allclose(
        vehicle, np.broadcast_to(vehicle[:, :1], vehicle.shape), rtol=0, atol=1e-8
    )


def test_vmap_over_neurons_equals_python_loop(simulator, population):
    """Simulator (vmap over neurons x conditions in one jit) equals solve_neuron called neuron
    by neuron and condition by condition (one jitted single solve). Tolerance rtol 1e-8, atol
    1e-10: the batched and unbatched XLA programs may round differently (~1e-12 seen), far
    below the solver tolerance (1e-6)."""
    thetas = neuron_thetas(
        default_theta(), simulator.default_sigma(), simulator.z, heterogeneous_index()
    )[:N_NEURONS]
    enc = encode_conditions(CONDITIONS)
    ts = jnp.asarray(TIMES)
    single = jax.jit(lambda theta, cond: solve_neuron(theta, cond, ts, SolverConfig()))
    assert len({float(t) for t in thetas[:, heterogeneous_index()[0]]}) == N_NEURONS
    for i in range(N_NEURONS):
        for c in range(len(CONDITIONS)):
            one = single(thetas[i], select_condition(enc, c))
            assert bool(one.ok)
            np.testing.assert_allclose(
                population.readouts[i, c],
                np.asarray(one.readouts),
                rtol=1e-8,
                atol=1e-10,
                err_msg=f"neuron {i}, {CONDITIONS[c]}",
            )


def test_pathological_neuron_fails_alone(solve_pairs):
    """In one vmapped batch, neurons with a pathological parameter (a negative BDNF turnover
    rate, which makes BDNF blow up after ketamine; a NaN rate) fail alone: ok False, result
    code 1 (step budget) or 2 (non-finite), readouts finite (the baseline is substituted); every
    other neuron succeeds with finite values equal to those it gets in a batch without the
    failing ones, and the masked population summary counts only the healthy neurons.

    Equal to rtol 1e-8, not bitwise: a NaN lane changes the others by up to ~2e-10 relative
    with the implicit Kvaerno5 (not with explicit Tsit5), presumably through the batched
    Newton iterations; far below the solver tolerance (1e-6), and no NaN crosses."""
    ket = "ketamine 10 mg/kg i.p., mouse"
    draws = np.exp(0.2 * np.random.default_rng(1).standard_normal((5, 1)))
    k_b = PATHWAY.defaults()["k_B"]
    healthy = [np.asarray(theta_from({"k_B": k_b * f})) for f in draws[:, 0]]
    bad = [np.asarray(theta_from({"k_B": -k_b})), np.asarray(theta_from({"k_B": float("nan")}))]
    conds = [ket] * 7 + ["vehicle, mouse"]
    thetas = np.stack(healthy[:3] + bad + healthy[3:] + [healthy[0]])
    bad_rows = [3, 4]
    ts = (0.0, 0.5, 1.0, 6.0, 24.0, 72.0)

    sol = jax.tree_util.tree_map(np.asarray, solve_pairs(thetas, conds, ts))
    good = [i for i in range(len(conds)) if i not in bad_rows]
    clean = jax.tree_util.tree_map(
        np.asarray, solve_pairs(thetas[good], [conds[i] for i in good], ts)
    )
    assert not sol.ok[bad_rows].any()
    assert set(sol.result[bad_rows].tolist()) <= {1, 2}
    assert sol.ok[good].all() and (sol.result[good] == 0).all()
    assert np.isfinite(sol.readouts).all() and np.isfinite(sol.ys).all()
    np.testing.assert_allclose(sol.readouts[good], clean.readouts, rtol=1e-8, atol=1e-12)

    # Population summary over the 7 ketamine neurons, failures masked out.
    values, ok = sol.readouts[:7], sol.ok[:7]
    summary = masked_summary(values, ok)
    np.testing.assert_array_equal(summary["n_ok"], 5.0)
    np.testing.assert_allclose(summary["mean"], values[ok].mean(axis=0), rtol=1e-12)
    assert np.isfinite(summary["mean"]).all() and np.isfinite(summary["sd"]).all()


def test_second_call_with_new_parameters_does_not_retrace(simulator, population):
    """After the first population solve, calls with new theta_pop, sigma and output-time values
    (same numbers of neurons, conditions and times) reuse the compiled program: trace_count()
    does not move and XLA compiles nothing (JAX's backend-compile events are counted)."""
    del population  # ensures the first call (and its trace) happened
    compiles = []

    def listener(event, duration, **kwargs):
        if event == "/jax/core/compile/backend_compile_duration":
            compiles.append(kwargs)

    before = trace_count()
    theta2 = theta_from({"k_B": 2.0, "K_an": 0.8, "g_dis": 0.7})
    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        a = simulator.solve(CONDITIONS, TIMES, theta_pop=theta2)
        b = simulator.solve(CONDITIONS, TIMES, theta_pop=theta2, sigma=simulator.default_sigma(0.3))
        c = simulator.solve(CONDITIONS, [t * 0.5 for t in TIMES])
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
    assert trace_count() == before
    assert compiles == []
    assert np.asarray(a.ok).all() and np.asarray(b.ok).all() and np.asarray(c.ok).all()
    assert not np.allclose(np.asarray(a.readouts), np.asarray(b.readouts))


_SHARDED_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import jax
    import numpy as np
    jax.config.update("jax_enable_x64", True)
    jax.config.update("jax_numpy_rank_promotion", "raise")
    from models.population import Simulator
    from models.solve import SolverConfig

    n_neurons, seed, conditions, times, out = json.loads(sys.argv[1])
    devices = jax.devices()
    assert len(devices) == 4, devices
    sim = Simulator(n_neurons=n_neurons, seed=seed, devices=devices[:4])
    sol = sim.solve(conditions, times)
    assert sim.partitioning == "one program per device (threads)"  # the implicit default
    assert sim.config.neuron_batch == 16  # automatic on CPU devices: each its own batches
    # an explicit solver: every device solves its own neurons (shard_map) in batches of 1
    import diffrax
    tsit = dict(solver=diffrax.Tsit5(), rtol=1e-7, atol=1e-10)  # to 24 h: not stiff yet
    sharded = Simulator(n_neurons=n_neurons, seed=seed, devices=devices[:4],
                        config=SolverConfig(neuron_batch=1, **tsit))
    one = Simulator(n_neurons=n_neurons, seed=seed, devices=devices[:1],
                    config=SolverConfig(neuron_batch=0, **tsit))
    a, b = sharded.solve(conditions, times[:5]), one.solve(conditions, times[:5])
    assert times[4] == 24.0
    assert len(a.readouts.sharding.device_set) == 4 and np.asarray(a.ok).all()
    np.testing.assert_allclose(np.asarray(a.readouts), np.asarray(b.readouts), rtol=1e-6, atol=1e-9)
    np.savez(out, readouts=np.asarray(sol.readouts), ok=np.asarray(sol.ok),
             z_devices=len(sim.z.sharding.device_set),
             out_devices=len(sol.readouts.sharding.device_set), n_padded=sim.n_padded)
    """
)


def test_neuron_axis_shards_over_four_host_devices(population, tmp_path):
    """A fresh process with XLA_FLAGS=--xla_force_host_platform_device_count=4 runs
    Simulator(devices=jax.devices()[:4]) on 6 neurons (padded to 8, two per device): the
    common random numbers and the result are spread over the 4 devices, and the readouts equal
    the 1-device result of this process (rtol 1e-8, atol 1e-10: different XLA partitioning may
    round differently). Each device solves its own neurons in its own batches: with the
    implicit default in a program per device, with an explicit solver in a shard_map."""
    out = tmp_path / "sharded.npz"
    env = dict(os.environ)
    force_host_devices(4, env)
    env["JAX_PLATFORMS"] = "cpu"
    args = json.dumps([N_NEURONS, SEED, list(CONDITIONS), list(TIMES), str(out)])
    proc = subprocess.run(
        [sys.executable, "-c", _SHARDED_SCRIPT, args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=540,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    got = np.load(out)
    assert int(got["z_devices"]) == 4 and int(got["out_devices"]) == 4
    assert int(got["n_padded"]) == 8
    assert got["ok"].all()
    np.testing.assert_allclose(got["readouts"], population.readouts, rtol=1e-8, atol=1e-10)


def test_neuron_batches_give_the_same_solution_and_gradient():
    """Solving the neurons in sequential batches (SolverConfig.neuron_batch; 4 of 6 neurons:
    two batches, the last neuron repeated to fill the second) gives the one-batch readouts
    and the same gradient of a population summary; bad batch sizes are refused."""
    import diffrax

    from models.population import draw_z, simulate_population

    theta = default_theta()
    sigma = jnp.full((len(PATHWAY.heterogeneous_names),), 0.3)
    z = draw_z(N_NEURONS, SEED)
    enc = encode_conditions(CONDITIONS[:1])
    ts = jnp.asarray([0.0, 1.0, 2.0])

    def summary(batch):
        config = SolverConfig(solver=diffrax.Tsit5(), rtol=1e-6, neuron_batch=batch)

        def f(theta_pop, sigma_):
            sol = simulate_population(theta_pop, sigma_, z, enc, ts, config)
            return jnp.mean(sol.readouts[..., -1, :] ** 2), sol.readouts

        return jax.jit(jax.value_and_grad(f, argnums=(0, 1), has_aux=True))(theta, sigma)

    (v0, r0), g0 = summary(0)
    (v4, r4), g4 = summary(4)
    assert r4.shape == r0.shape == (N_NEURONS, 1, 3, len(PATHWAY.observable_names))
    np.testing.assert_allclose(r4, r0, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(v4, v0, rtol=1e-13)
    for a, b in zip(g4, g0, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-14)
    assert np.any(np.asarray(g0[1]) != 0)
    for bad in (-1, 2.5, True):
        with pytest.raises(ValueError, match="neuron_batch"):
            SolverConfig(neuron_batch=bad)
    # automatic: batches on a CPU, one batch on an accelerator, for the platform named
    from models.solve import CPU_NEURON_BATCH

    auto = SolverConfig()
    assert auto.batch_size("cpu") == CPU_NEURON_BATCH and auto.batch_size("gpu") == 0
    assert SolverConfig(neuron_batch=3).batch_size("gpu") == 3
    assert (
        Simulator(n_neurons=2, devices=jax.devices("cpu")[:1]).config.neuron_batch
        == CPU_NEURON_BATCH
    )


def test_vector_field_reverse_mode_matches_forward_mode_and_finite_differences():
    """The vector field's VJP (what every reverse-mode gradient of a solve is built from)
    agrees with forward mode and with central differences, in the parameters and the states,
    at a perturbed state under a drug."""
    from models.dynamics import compiled
    from models.exposure import condition_inputs

    cp = compiled()
    theta = default_theta()
    enc = select_condition(encode_conditions(CONDITIONS), 0)
    u = condition_inputs(theta, enc, cp)
    y = cp.baseline(theta) * (1.0 + 0.1 * jnp.sin(jnp.arange(len(PATHWAY.species_names))))
    t = jnp.asarray(0.3)

    def f(y, theta):
        return cp.vector_field(t, y, (theta, u))

    # solve_neuron passes theta and u unstacked (tuples of scalars): the same field
    unstacked = cp.vector_field(t, y, (tuple(jnp.unstack(theta)), tuple(jnp.unstack(u))))
    np.testing.assert_array_equal(unstacked, f(y, theta))

    for argnum, x in ((0, y), (1, theta)):
        rev = jax.jacrev(f, argnums=argnum)(y, theta)
        fwd = jax.jacfwd(f, argnums=argnum)(y, theta)
        np.testing.assert_allclose(rev, fwd, rtol=1e-12, atol=1e-12)
        rng = np.random.default_rng(argnum)
        for j in rng.choice(x.shape[0], size=5, replace=False):
            h = 1e-6 * max(abs(float(x[j])), 1.0)
            args_p = [y, theta]
            args_m = [y, theta]
            args_p[argnum] = x.at[j].add(h)
            args_m[argnum] = x.at[j].add(-h)
            fd = (f(*args_p) - f(*args_m)) / (2 * h)
            np.testing.assert_allclose(rev[:, j], fd, rtol=1e-5, atol=1e-7)


def test_vector_field_gradient_finite_where_a_trial_stage_overshoots_a_bound():
    """An explicit solver's trial stage can push a fraction past its bound (p-eEF2 above 1, so
    the elongation factor 1 - pE is negative). The gradient there must stay finite: a NaN
    partial derivative of a rejected stage turns the whole reverse-mode gradient into NaN
    (0 x NaN), which is what the benchmark proxy met at 64 neurons under XLA fast math."""
    from models.dynamics import compiled
    from models.exposure import condition_inputs

    cp = compiled()
    theta = default_theta()
    u = condition_inputs(theta, select_condition(encode_conditions(CONDITIONS), 0), cp)
    y = cp.baseline(theta).at[PATHWAY.species_names.index("pE")].set(1.001)

    def total(theta, y):
        return jnp.sum(cp.vector_field(jnp.asarray(0.3), y, (theta, u)))

    g_theta, g_y = jax.grad(total, argnums=(0, 1))(theta, y)
    assert bool(jnp.all(jnp.isfinite(g_theta))) and bool(jnp.all(jnp.isfinite(g_y)))
    assert bool(jnp.isfinite(total(theta, y)))


def test_simulator_threads_give_the_one_thread_result():
    """On one CPU device the Simulator solves its neurons in parts from several threads
    (5 neurons in 2 parts of 3, batches of 2): the readouts equal the one-thread solve's;
    a bad thread count is refused."""
    import diffrax

    config = SolverConfig(solver=diffrax.Tsit5(), rtol=1e-6, neuron_batch=2)
    one = Simulator(n_neurons=5, seed=SEED, config=config, threads=1)
    two = Simulator(n_neurons=5, seed=SEED, config=config, threads=2)
    assert one.partitioning == "one device" and two.partitioning == "one device, 2 threads"
    a, b = one.solve(CONDITIONS[:1], TIMES[:4]), two.solve(CONDITIONS[:1], TIMES[:4])
    assert b.readouts.shape == a.readouts.shape and np.asarray(b.ok).all()
    np.testing.assert_allclose(np.asarray(b.readouts), np.asarray(a.readouts), rtol=1e-12)
    np.testing.assert_array_equal(np.asarray(b.num_steps), np.asarray(a.num_steps))
    for bad in (0, 1.5, True):
        with pytest.raises(ValueError, match="threads"):
            Simulator(n_neurons=2, threads=bad)
