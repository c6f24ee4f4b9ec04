"""Solving one virtual neuron under one condition with diffrax.

The default is a stiff-capable, L-stable ESDIRK method (Kvaerno5) with a PID step-size
controller, clipped to land exactly on bath wash-out times. Solves never raise inside JAX
(``throw=False``): the result code and step count come back with the trajectory, and a failed
solve is replaced by the (finite) baseline so it cannot leak NaN into a population summary.
"""

from __future__ import annotations

import dataclasses

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int

from .dynamics import CompiledPathway, compiled
from .exposure import EncodedConditions, condition_inputs

CPU_NEURON_BATCH = 16  # SolverConfig.neuron_batch on the CPU when left automatic


@dataclasses.dataclass(frozen=True, kw_only=True)
class SolverConfig:
    """Numerical settings of a solve (keyword-only, immutable).

    Attributes:
        solver: a diffrax solver instance; Kvaerno5 (stiff, 5th order) by default, Tsit5 for
            explicit benchmarking.
        rtol, atol: PID controller tolerances (atol in the units of the states: fractions or
            normalised levels, so 1e-9 is far below any measurable change).
        dt0: initial step (h).
        max_steps: step budget per solve; a solve that runs out is flagged as failed.
        pcoeff, icoeff: PID coefficients (0, 1 is plain integral control).
        neuron_batch: how many neurons a population solve vectorises at once
            (:func:`models.population.simulate_population`). Under ``vmap`` every lane runs
            until the slowest lane of its batch is done, so on a CPU a large population
            solves faster in sequential batches (2-core Intel Xeon, N = 1,024, batches of 16:
            the default fit's log density 1.6-1.8x faster, its gradient 1.5-1.7x, the
            standard protocol set 1.2-1.3x in three A/B runs; benchmarks/README.md, "Neurons solved in batches"); on a GPU
            the whole population should be one batch. ``None`` (default): 16 on a CPU, else
            all neurons (:meth:`batch_size`); 0: all neurons in one batch. Each lane keeps its
            own steps, so the results agree to within the solver's tolerance (bit for bit
            without XLA's fast math, which may round a batch of another width differently
            and so move a step). A :class:`models.population.Simulator` sharded over several
            devices solves each device's neurons in such batches.
    """

    solver: diffrax.AbstractSolver = dataclasses.field(default_factory=diffrax.Kvaerno5)
    rtol: float = 1e-6
    atol: float = 1e-9
    dt0: float = 1e-3
    max_steps: int = 16384
    pcoeff: float = 0.0
    icoeff: float = 1.0
    neuron_batch: int | None = None
    adjoint: diffrax.AbstractAdjoint = dataclasses.field(
        default_factory=diffrax.RecursiveCheckpointAdjoint
    )

    def __post_init__(self):
        batch = self.neuron_batch
        if batch is not None and (
            isinstance(batch, bool) or not isinstance(batch, int) or batch < 0
        ):
            raise ValueError(
                f"neuron_batch must be None (automatic), 0 (all neurons at once) or a positive "
                f"number of neurons, got {batch!r}"
            )

    def batch_size(self, platform: str | None = None) -> int:
        """Neurons per vectorised batch; 0 means all of them. ``platform``: where the solve
        runs (a ``jax.Device.platform``: "cpu", "gpu", ...), JAX's default backend if None;
        it matters only when ``neuron_batch`` is automatic."""
        if self.neuron_batch is not None:
            return self.neuron_batch
        return CPU_NEURON_BATCH if (platform or jax.default_backend()) == "cpu" else 0

    def controller(self, jump_ts) -> diffrax.AbstractStepSizeController:
        pid = diffrax.PIDController(
            rtol=self.rtol, atol=self.atol, pcoeff=self.pcoeff, icoeff=self.icoeff
        )
        return diffrax.ClipStepSizeController(pid, jump_ts=jump_ts)


@dataclasses.dataclass(frozen=True)
class Constants:
    """Parameters and inputs with the same value in every lane of a solve, by position.

    :func:`solve_neuron` hands them to the vector field as Python numbers instead of traced
    scalars, so they are constants of the compiled solver loop: XLA folds what depends on
    them alone (products of fixed rate constants, a ``pow`` with a fixed integer exponent,
    terms switched off by a flag that is 0 in every condition), and the reverse pass has no
    cotangent to accumulate for them at every stage. The caller guarantees the values: a fit
    passes the parameters it does not sample (:class:`infer.problem.PopulationPredictor`).
    The solution is the same up to floating-point reassociation.
    """

    theta: tuple[tuple[int, float], ...] = ()
    inputs: tuple[tuple[int, float], ...] = ()

    @staticmethod
    def _apply(entries, fixed) -> tuple:
        values = dict(fixed)
        return tuple(values.get(i, e) for i, e in enumerate(entries))

    def apply(self, theta_entries, input_entries) -> tuple[tuple, tuple]:
        return self._apply(theta_entries, self.theta), self._apply(input_entries, self.inputs)


class NeuronSolution(eqx.Module):
    """Trajectory of one neuron under one condition."""

    ys: Float[Array, "time state"]
    readouts: Float[Array, "time readout"]
    ok: Bool[Array, ""]
    result: Int[Array, ""]  # 0 success, 1 step budget exhausted, 2 other failure / non-finite
    num_steps: Int[Array, ""]


def solve_neuron(
    theta: Float[Array, " param"],
    cond: EncodedConditions,
    ts: Float[Array, " time"],
    config: SolverConfig | None = None,
    cp: CompiledPathway | None = None,
    constants: Constants | None = None,
) -> NeuronSolution:
    """Solve ONE neuron (parameter vector ``theta``) under ONE encoded condition.

    ``ts`` are the output times (h, non-decreasing, >= 0); the solve starts at t = 0 from the
    analytic untreated baseline, when treatment begins. ``constants``: entries of ``theta``
    and of the condition's inputs known to the caller (:class:`Constants`). Not jitted here:
    jit at the driver.
    """
    cp = cp or compiled()
    config = config or SolverConfig()
    u = condition_inputs(theta, cond, cp)
    y0 = cp.baseline(theta)
    t1 = jnp.maximum(ts[-1], 1e-9)
    # theta and u as tuples of scalars: unstacked once, outside the solver loop
    # (CompiledPathway.namespace); known entries as Python numbers (Constants)
    args = (tuple(jnp.unstack(theta)), tuple(jnp.unstack(u)))
    if constants is not None:
        args = constants.apply(*args)
    sol = diffrax.diffeqsolve(
        diffrax.ODETerm(cp.vector_field),
        config.solver,
        t0=0.0,
        t1=t1,
        dt0=config.dt0,
        y0=y0,
        args=args,
        saveat=diffrax.SaveAt(ts=ts),
        stepsize_controller=config.controller(jnp.reshape(cond.t_off, (1,)).astype(ts.dtype)),
        max_steps=config.max_steps,
        adjoint=config.adjoint,
        throw=False,
    )
    ok = (sol.result == diffrax.RESULTS.successful) & jnp.all(jnp.isfinite(sol.ys))
    ys = jnp.where(ok, sol.ys, y0[None, :])
    readouts = jax.vmap(cp.observe, in_axes=(0, 0, None, None))(ts, ys, theta, u)
    return NeuronSolution(
        ys=ys,
        readouts=readouts,
        ok=ok,
        result=jnp.where(
            ok, 0, jnp.where(sol.result == diffrax.RESULTS.max_steps_reached, 1, 2)
        ).astype(jnp.int32),
        num_steps=jnp.asarray(sol.stats["num_steps"], jnp.int32),
    )


def baseline_readouts(
    theta: Float[Array, " param"], cond: EncodedConditions, cp: CompiledPathway | None = None
) -> Float[Array, " readout"]:
    """Readouts of the untreated steady state under the inputs of ``cond`` at t = 0."""
    cp = cp or compiled()
    u = condition_inputs(theta, cond, cp)
    return cp.observe(jnp.zeros((), theta.dtype), cp.baseline(theta), theta, u)
