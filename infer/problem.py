"""From curated measurements and constraints to arrays the likelihood can index.

Each measurement compares the population at (condition, time) with a reference at the same
time: the paired vehicle (fold change), a named reference condition, or nothing (a free scale
maps model units to reported units). Vehicle conditions are the analytic baseline and are never
solved; every other condition is solved once, only as far in time as its data need.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from jax.scipy.special import log_ndtr

from models.conditions import Condition, parse_condition
from models.dynamics import compiled
from models.exposure import condition_inputs, encode_conditions
from models.pathway import PATHWAY
from models.population import neuron_thetas, simulate_population
from models.solve import Constants, SolverConfig, baseline_readouts

SCALED = ("arbitrary_scale", "absolute")
_DIRECTIONS = {"up": 1, "down": -1, "no_change": 0}


class ProblemError(ValueError):
    """The data cannot be turned into a fit problem (message names the row and field)."""


@dataclasses.dataclass(frozen=True)
class FitProblem:
    conditions: tuple[Condition, ...]  # every condition referred to (solved and vehicles)
    solved: np.ndarray  # indices of conditions that need an ODE solve
    vehicles: np.ndarray  # indices of pure-vehicle conditions (analytic baseline)
    times: np.ndarray  # [solved condition, time] padded per-condition output times
    # measurements
    measurement_ids: tuple[str, ...]
    values: np.ndarray
    obs_sd: np.ndarray
    m_readout: np.ndarray
    m_cond: np.ndarray  # index into conditions
    m_time: np.ndarray  # column in that condition's time row
    m_ref: np.ndarray  # index into conditions or -1
    m_ref_time: np.ndarray
    m_ratio: np.ndarray  # bool: readout compared as a ratio (else difference)
    m_per_cell: np.ndarray
    m_spread_sd: np.ndarray  # observed between-cell SD (NaN where n unknown)
    m_spread_n: np.ndarray
    m_scale: np.ndarray  # nuisance scale index or -1
    scale_groups: tuple[str, ...]
    scale_centres: np.ndarray  # prior median of each scale (median |value| of its group)
    table: pd.DataFrame  # the measurements used, in order
    # constraints
    constraint_ids: tuple[str, ...] = ()
    c_readout: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, int))
    c_cond: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, int))
    c_time: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, int))
    c_ref: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, int))
    c_ref_time: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, int))
    c_ratio: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, bool))
    c_direction: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, int))
    c_tolerance: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0))

    @property
    def n_measurements(self) -> int:
        return len(self.measurement_ids)


def _sd_of_mean(row, rel_floor: float, secondary_floor: float) -> float:
    """SD of the reported mean: SEM as is, SD/sqrt(n), CI95 half-width/1.96; plus a floor."""
    err = pd.to_numeric(row.get("error"), errors="coerce")
    etype = str(row.get("error_type", "")).strip().upper()
    n = pd.to_numeric(row.get("n"), errors="coerce")
    sd = 0.0
    if np.isfinite(err):
        if etype == "SEM":
            sd = float(err)
        elif etype == "SD":
            sd = float(err / np.sqrt(n)) if np.isfinite(n) and n > 0 else float(err)
        elif etype in ("CI95", "CI"):
            sd = float(err / 1.96)
        else:  # a stated spread of unknown type: used as is
            sd = float(err)
    confidence = str(row.get("confidence", "")).lower()
    extraction = str(row.get("extraction", "")).lower()
    floor = (
        secondary_floor
        if ("secondary" in confidence or "digitis" in extraction or "third-party" in confidence)
        else rel_floor
    )
    return float(np.sqrt(sd**2 + (floor * abs(float(row["measurement"]))) ** 2))


def build_problem(
    measurements: pd.DataFrame,
    constraints: pd.DataFrame | None = None,
    *,
    relative_noise_floor: float = 0.05,
    secondary_noise_floor: float = 0.15,
) -> FitProblem:
    """Index the data. Rows must use model readout names and parseable condition specs."""
    if measurements.empty:
        raise ProblemError("no measurements to fit")
    obs_names = PATHWAY.observable_names
    ratio_of = {o.name: o.ratio for o in PATHWAY.observables}
    conds: list[Condition] = []
    times: dict[int, set[float]] = {}

    def cond_index(spec: str, where: str) -> int:
        try:
            cond = parse_condition(spec)
        except ValueError as err:
            raise ProblemError(f"{where}: condition {spec!r}: {err}") from None
        if cond not in conds:
            conds.append(cond)
        return conds.index(cond)

    rows = []
    for _, row in measurements.iterrows():
        where = f"measurement {row['measurementId']}"
        if row["observableId"] not in obs_names:
            raise ProblemError(f"{where}: observableId {row['observableId']!r} is no model readout")
        k = cond_index(row["condition"], where)
        ref_spec = row.get("reference")
        norm = row["normalisation"]
        if norm == "fold_vs_vehicle" and not (isinstance(ref_spec, str) and ref_spec.strip()):
            kr = cond_index(conds[k].paired_vehicle().spec, where)
        elif isinstance(ref_spec, str) and ref_spec.strip():
            kr = cond_index(ref_spec, where)
        else:
            kr = -1
        t = float(row["time_h"])
        times.setdefault(k, set()).add(t)
        if kr >= 0:
            times.setdefault(kr, set()).add(t)
        rows.append((row, k, kr, t, where))

    crow = []
    if constraints is not None and not constraints.empty:
        for _, row in constraints.iterrows():
            where = f"constraint {row['constraintId']}"
            if row["observableId"] not in obs_names:
                continue
            k = cond_index(row["condition"], where)
            comp = row.get("comparator")
            comp = (
                comp if isinstance(comp, str) and comp.strip() else conds[k].paired_vehicle().spec
            )
            kr = cond_index(comp, where)
            t = float(row["time_h"])
            times.setdefault(k, set()).add(t)
            times.setdefault(kr, set()).add(t)
            crow.append((row, k, kr, t))

    vehicles = np.array([i for i, c in enumerate(conds) if c.is_vehicle], int)
    solved = np.array([i for i, c in enumerate(conds) if not c.is_vehicle], int)
    width = max((len(times.get(i, {0.0})) for i in solved), default=1)
    time_rows = np.zeros((len(solved), width))
    column: dict[tuple[int, float], int] = {}
    for j, i in enumerate(solved):
        ts = sorted(times.get(i, {0.0}))
        time_rows[j, : len(ts)] = ts
        time_rows[j, len(ts) :] = ts[-1]
        for col, t in enumerate(ts):
            column[(i, t)] = col
    for i in vehicles:
        for t in times.get(i, ()):
            column[(i, t)] = 0

    scale_groups: list[str] = []
    m = {
        key: []
        for key in (
            "readout",
            "cond",
            "time",
            "ref",
            "ref_time",
            "ratio",
            "per_cell",
            "spread_sd",
            "spread_n",
            "scale",
            "values",
            "sd",
        )
    }
    for row, k, kr, t, _ in rows:
        name = row["observableId"]
        m["readout"].append(obs_names.index(name))
        m["cond"].append(k)
        m["time"].append(column[(k, t)])
        m["ref"].append(kr)
        m["ref_time"].append(column[(kr, t)] if kr >= 0 else 0)
        m["ratio"].append(ratio_of[name])
        per_cell = str(row.get("per_cell", "")).lower() in ("true", "1", "yes")
        m["per_cell"].append(per_cell)
        err = pd.to_numeric(row.get("error"), errors="coerce")
        n = pd.to_numeric(row.get("n"), errors="coerce")
        spread = np.nan
        if (
            per_cell
            and str(row.get("error_type", "")).upper() == "SEM"
            and np.isfinite(n)
            and n > 1
        ):
            spread = float(err * np.sqrt(n))  # SD = SEM * sqrt(n), only where n is stated
        elif (
            per_cell and str(row.get("error_type", "")).upper() == "SD" and np.isfinite(n) and n > 1
        ):
            spread = float(err)
        m["spread_sd"].append(spread)
        m["spread_n"].append(float(n) if np.isfinite(n) else np.nan)
        if row["normalisation"] in SCALED:
            group = str(row.get("scale_group") or row["datasetId"])
            if group not in scale_groups:
                scale_groups.append(group)
            m["scale"].append(scale_groups.index(group))
        else:
            m["scale"].append(-1)
        m["values"].append(float(row["measurement"]))
        m["sd"].append(_sd_of_mean(row, relative_noise_floor, secondary_noise_floor))
    values = np.asarray(m["values"])
    scale_idx = np.asarray(m["scale"], int)
    centres = np.array(
        [np.median(np.abs(values[scale_idx == g])) for g in range(len(scale_groups))]
    )

    c = {key: [] for key in ("readout", "cond", "time", "ref", "ref_time", "ratio", "dir", "tol")}
    ids = []
    for row, k, kr, t in crow:
        direction = str(row["direction"]).strip().lower()
        if direction not in _DIRECTIONS:
            raise ProblemError(
                f"constraint {row['constraintId']}: direction {direction!r} not in {list(_DIRECTIONS)}"
            )
        tol = float(row["tolerance"])
        if not tol > 0:
            raise ProblemError(f"constraint {row['constraintId']}: tolerance must be > 0")
        ids.append(str(row["constraintId"]))
        c["readout"].append(obs_names.index(row["observableId"]))
        c["cond"].append(k)
        c["time"].append(column[(k, t)])
        c["ref"].append(kr)
        c["ref_time"].append(column[(kr, t)])
        c["ratio"].append(ratio_of[row["observableId"]])
        c["dir"].append(_DIRECTIONS[direction])
        c["tol"].append(tol)

    return FitProblem(
        conditions=tuple(conds),
        solved=solved,
        vehicles=vehicles,
        times=time_rows,
        measurement_ids=tuple(str(r[0]["measurementId"]) for r in rows),
        values=values,
        obs_sd=np.asarray(m["sd"]),
        m_readout=np.asarray(m["readout"], int),
        m_cond=np.asarray(m["cond"], int),
        m_time=np.asarray(m["time"], int),
        m_ref=np.asarray(m["ref"], int),
        m_ref_time=np.asarray(m["ref_time"], int),
        m_ratio=np.asarray(m["ratio"], bool),
        m_per_cell=np.asarray(m["per_cell"], bool),
        m_spread_sd=np.asarray(m["spread_sd"], float),
        m_spread_n=np.asarray(m["spread_n"], float),
        m_scale=scale_idx,
        scale_groups=tuple(scale_groups),
        scale_centres=centres,
        table=measurements.reset_index(drop=True),
        constraint_ids=tuple(ids),
        c_readout=np.asarray(c["readout"], int),
        c_cond=np.asarray(c["cond"], int),
        c_time=np.asarray(c["time"], int),
        c_ref=np.asarray(c["ref"], int),
        c_ref_time=np.asarray(c["ref_time"], int),
        c_ratio=np.asarray(c["ratio"], bool),
        c_direction=np.asarray(c["dir"], int),
        c_tolerance=np.asarray(c["tol"], float),
    )


class PopulationPredictor:
    """Population levels of every condition the problem needs, as a JAX function of
    (theta_pop, sigma): solved conditions by one vmapped diffrax solve, vehicles analytically.
    """

    # Optionally, conditions are solved in groups of similar horizon: under vmap every lane
    # waits for the slowest, so a 48-h condition holds up ten 2-h ones; but every group is a
    # separately compiled solve (and gradient), so grouping trades run time for compile time.
    HORIZONS = (4.0, np.inf)

    def __init__(
        self,
        problem: FitProblem,
        z,
        config: SolverConfig,
        *,
        group_by_horizon: bool = True,
        long_config: SolverConfig | None = None,
        fixed: dict[int, float] | None = None,
    ):
        """``long_config`` solves the groups beyond the first horizon (> 4 h) with other
        settings, e.g. a stiff solver where an explicit one is held to small steps by
        stability over 48 h; ``config`` otherwise.

        ``fixed``: {position in theta: value} of the parameters that are the same for every
        neuron in every call (a fit's parameters that are neither sampled nor spread); they
        and the inputs that are the same in every condition of a group become constants of
        that group's compiled solve (:class:`models.solve.Constants`). The caller vouches for
        the values: :meth:`levels` must then be called with those entries of ``theta_pop``
        (and no spread on them)."""
        self.problem = problem
        self.z = z
        self.config = config
        self.long_config = long_config or config
        self.cp = compiled()
        self.het_index = np.array(
            [PATHWAY.parameter_names.index(n) for n in PATHWAY.heterogeneous_names]
        )
        ends = problem.times[:, -1] if len(problem.solved) else np.zeros(0)
        bucket = (
            np.searchsorted(self.HORIZONS, ends) if group_by_horizon else np.zeros(len(ends), int)
        )
        # (rows of problem.times, encoded conditions, solver settings, Constants or None)
        self.groups = []
        order = []
        for b in np.unique(bucket):
            rows = np.flatnonzero(bucket == b)
            enc = encode_conditions([problem.conditions[problem.solved[r]] for r in rows])
            constants = None if fixed is None else self._constants(enc, fixed)
            self.groups.append((rows, enc, self.config if b == 0 else self.long_config, constants))
            order += [int(problem.solved[r]) for r in rows]
        self.enc_vehicle = (
            encode_conditions([problem.conditions[i] for i in problem.vehicles])
            if len(problem.vehicles)
            else None
        )
        order += [int(i) for i in problem.vehicles]
        # position of each condition in the stacked [groups..., vehicles...] level array
        self.slot = np.array([order.index(i) for i in range(len(problem.conditions))], int)

    def _constants(self, enc, fixed: dict[int, float]) -> Constants:
        """The fixed parameters, and the inputs with one value in every condition of ``enc``
        whatever the parameters: found by evaluating the inputs with every parameter NaN
        (an input that comes out finite reads no parameter in that condition)."""
        nan = jnp.full(len(PATHWAY.parameter_names), jnp.nan)
        u = np.asarray(jax.vmap(condition_inputs, in_axes=(None, 0, None))(nan, enc, self.cp))
        inputs = tuple(
            (j, float(u[0, j]))
            for j in range(u.shape[1])
            if np.all(np.isfinite(u[:, j])) and np.all(u[:, j] == u[0, j])
        )
        return Constants(
            theta=tuple(sorted((int(i), float(v)) for i, v in fixed.items())), inputs=inputs
        )

    def levels(self, theta_pop, sigma):
        """Per-neuron readouts [neuron, condition, time, readout] and ok [neuron, condition]."""
        p = self.problem
        n = self.z.shape[0]
        T = p.times.shape[1]
        R = len(PATHWAY.observables)
        parts, oks = [], []
        n_failed = jnp.asarray(0)
        for rows, enc, config, constants in self.groups:
            ts = jnp.asarray(p.times[rows], theta_pop.dtype)
            sol = simulate_population(
                theta_pop, sigma, self.z, enc, ts, config, constants=constants
            )
            parts.append(sol.readouts)
            oks.append(sol.ok)
            n_failed = n_failed + jnp.sum(~sol.ok)
        if self.enc_vehicle is not None:
            thetas = neuron_thetas(theta_pop, sigma, self.z, self.het_index)

            def base(theta, cond):
                return baseline_readouts(theta, cond, self.cp)

            b = jax.vmap(jax.vmap(base, in_axes=(None, 0)), in_axes=(0, None))(
                thetas, self.enc_vehicle
            )
            parts.append(jnp.broadcast_to(b[:, :, None, :], (n, b.shape[1], T, R)))
            oks.append(jnp.ones((n, b.shape[1]), bool))
        levels = jnp.concatenate(parts, axis=1)[:, self.slot]
        ok = jnp.concatenate(oks, axis=1)[:, self.slot]
        return levels, ok, n_failed


def _wmean(x, w):
    return jnp.sum(x * w, axis=0) / jnp.maximum(jnp.sum(w, axis=0), 1.0)


def predict_measurements(problem: FitProblem, levels, ok, scales):
    """Predicted value of each measurement, and the predicted between-neuron SD of per-cell
    effects. ``levels`` [neuron, condition, time, readout]; ``scales`` [scale group]."""
    p = problem
    num = levels[:, p.m_cond, p.m_time, p.m_readout]  # [neuron, measurement]
    has_ref = p.m_ref >= 0
    ref = jnp.where(has_ref, p.m_ref, 0)
    den = levels[:, ref, p.m_ref_time, p.m_readout]
    w_num = ok[:, p.m_cond].astype(levels.dtype)
    w_both = w_num * jnp.where(has_ref, ok[:, ref], True).astype(levels.dtype)
    mean_num = _wmean(num, w_num)
    mean_den = _wmean(den, jnp.where(has_ref, ok[:, ref], True).astype(levels.dtype))
    tissue = jnp.where(
        has_ref, jnp.where(p.m_ratio, mean_num / mean_den, mean_num - mean_den), mean_num
    )
    effect = jnp.where(has_ref, jnp.where(p.m_ratio, num / den, num - den), num)
    cell_mean = _wmean(effect, w_both)
    var = _wmean((effect - cell_mean) ** 2, w_both)
    positive = var > 0  # identical effects (e.g. vehicle vs vehicle): SD 0 with a finite gradient
    cell_sd = jnp.where(positive, jnp.sqrt(jnp.where(positive, var, 1.0)), 0.0)
    base = jnp.where(p.m_per_cell, cell_mean, tissue)
    scale = jnp.where(
        p.m_scale >= 0, scales[jnp.maximum(p.m_scale, 0)] if scales.shape[0] else 1.0, 1.0
    )
    scaled_sd = cell_sd * jnp.abs(scale)
    return base * scale, scaled_sd


def _log_prob_within(x, tol, width):
    """log P(|x + e| <= tol) for e ~ N(0, width^2): smooth (even) in x, unlike a probit of
    ``tol - |x|``, whose gradient jumps at x = 0 (a kink that gradient-based samplers,
    optimisers and finite-difference Hessians handle badly when an effect sits near zero)."""
    x = jnp.abs(x)  # the function is even, so this keeps the gradient continuous (0 at x = 0)
    upper = log_ndtr((tol - x) / width)
    lower = log_ndtr((-tol - x) / width)  # < upper, always
    return upper + jnp.log1p(-jnp.exp(lower - upper))


def constraint_log_terms(problem: FitProblem, levels, ok):
    """Soft (probit) log-likelihood of each qualitative constraint.

    With e ~ N(0, (tolerance/2)^2) a fuzz on the effect d: up is log P(d + e >= tol), down
    log P(d + e <= -tol), no change log P(|d + e| <= tol).
    """
    p = problem
    if not len(p.constraint_ids):
        return jnp.zeros(0, levels.dtype)
    num = _wmean(levels[:, p.c_cond, p.c_time, p.c_readout], ok[:, p.c_cond].astype(levels.dtype))
    den = _wmean(levels[:, p.c_ref, p.c_ref_time, p.c_readout], ok[:, p.c_ref].astype(levels.dtype))
    d = jnp.where(p.c_ratio, num / den - 1.0, num - den)
    tol = jnp.asarray(p.c_tolerance)
    width = tol / 2
    up = log_ndtr((d - tol) / width)
    down = log_ndtr((-d - tol) / width)
    same = _log_prob_within(d, tol, width)
    return jnp.where(p.c_direction > 0, up, jnp.where(p.c_direction < 0, down, same))
