"""Fit configuration: a validated, immutable object read from TOML.

Example (``infer/configs/default.toml``)::

    [population]
    neurons = 32
    seed = 0
    free = ["ic50_ethanol", "f_Ystab", ...]   # parameters sampled; the rest stay at defaults
    [solver]
    method = "tsit5"     # or "tsit5-unrolled", "kvaerno5", "kvaerno3"
    sampler_method = ""  # NUTS chains only, e.g. "tsit5-unrolled" (same results, faster steps)
    rtol = 1e-5
    [engine]
    name = "nuts"        # nuts | svi | map
    chains = 2
    ...
"""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path

from models.pathway import PATHWAY


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the key and the fix."""


_SOLVERS = ("tsit5", "tsit5-unrolled", "kvaerno5", "kvaerno3", "dopri5")  # models.solvers.SOLVERS
# Solvers that compute the same solution to rounding (one method, other code): the pairs
# solver.method / solver.sampler_method may name
SAME_METHOD = {"tsit5": ("tsit5-unrolled",), "tsit5-unrolled": ("tsit5",)}
_ENGINES = ("nuts", "svi", "map")
_USES = ("fit", "submodule")
MIN_PILOT = 20  # shortest NUTS pilot (engine.mass_pilot) that estimates a variance

DEFAULT_FREE = (
    "ic50_ethanol",
    "kdose_ethanol",
    "f_Ystab",
    "k_Y",
    "c0",
    "c0_ko",
    "w_ca",
    "k_G",
    "g_FG",
    "a_ttx",
    "a_bic",
    "pE0",
    "h_K",
    "k_pE",
    "K_T",
    "bdnf_ref_nM",
    "pAkt0",
)


@dataclasses.dataclass(frozen=True, kw_only=True)
class FitConfig:
    """Everything that defines a fit. Keyword-only; validated on construction."""

    neurons: int = 32
    seed: int = 0
    free: tuple[str, ...] = DEFAULT_FREE
    sigma_prior_scale: float = 0.3  # HalfNormal scale of between-neuron log-SDs
    solver: str = "tsit5"
    # Solver of the lanes whose data reach beyond 4 h (e.g. 48 h of TTX or bicuculline), where
    # an explicit solver's step is held down by stability; empty: the same as ``solver``.
    long_solver: str = ""
    # Solver of the NUTS sampler's program only; empty: the same as ``solver``. It must compute
    # the same solution to rounding (a variant of ``solver``: "tsit5-unrolled" for "tsit5"), so
    # the MAP, the start of the chains and the predictive draws can use a program that compiles
    # quickly while the sampler runs one that is faster per step (models/solvers.py).
    sampler_solver: str = ""
    rtol: float = 1e-5
    atol: float = 1e-8
    max_steps: int = 8192
    # Reverse-mode checkpoints of each solve (diffrax RecursiveCheckpointAdjoint); 0 keeps
    # diffrax's default (about log2(max_steps), with recomputation). At least the number of
    # steps of the longest solve stores every step and recomputes none: a cheaper gradient,
    # for memory of about checkpoints x (states x output times) x lanes.
    adjoint_checkpoints: int = 0
    # Step-size controller: proportional and integral coefficients of diffrax's PIDController
    # (0, 1 is plain integral control). Where an explicit solver's step is limited by
    # stability (the 48-h lanes), a PI controller (e.g. 0.4, 0.3) rejects fewer steps.
    pcoeff: float = 0.0
    icoeff: float = 1.0
    # Neurons solved at once (models.solve.SolverConfig.neuron_batch): "auto" is 16 on a CPU
    # and the whole population on a GPU; 0 is the whole population (results agree to within
    # the solver tolerance).
    neuron_batch: int | str = "auto"
    engine: str = "nuts"
    chains: int = 2
    warmup: int = 200
    draws: int = 200
    max_tree_depth: int = 6
    target_accept: float = 0.85
    dense_mass: bool = False  # NUTS: dense (full) mass matrix instead of diagonal
    mass_init: str = "identity"  # identity | laplace (curvature at the MAP; dense) | file
    # mass_init = "file": a saved inverse mass matrix (engines.load_inverse_mass; .npz with
    # 'inverse_mass' and 'latents'), e.g. the posterior covariance of an earlier long run of
    # the same model, like CmdStan's metric_file; a relative path is from the config file's folder
    mass_file: str = ""
    adapt_mass: bool = True  # NUTS warm-up re-estimates the mass matrix (false: step size only)
    # NUTS step size: with adapt_step_size = false, the step size of every transition (warm-up
    # is then burn-in only; needs step_size > 0), like CmdStan's stepsize with adaptation off.
    # Otherwise where the step-size search and dual averaging start (0: numpyro's 1.0).
    step_size: float = 0.0
    adapt_step_size: bool = True
    # NUTS pilot: transitions per round run before warm-up; after each round the mass matrix
    # is widened to the spread of the round's draws (dense: along the directions where they
    # spread significantly further; engines.rescale_inverse_mass) and the chains start afresh
    # from where they are (0: no pilot). Warm-up follows the last round.
    mass_pilot: int = 0
    mass_pilot_rounds: int = 1
    map_starts: int = 4
    map_steps: int = 300
    map_learning_rate: float = 0.05
    map_polish_steps: int = 300  # L-BFGS-B iterations after Adam, per start (0: none)
    svi_steps: int = 500
    svi_learning_rate: float = 0.02
    svi_guide: str = "normal"  # normal | lowrank
    posterior_draws: int = 200  # draws from SVI/MAP approximations
    prior_draws: int = 100
    use: tuple[str, ...] = ("fit",)
    datasets: tuple[str, ...] = ()  # dataset ids to fit; empty: every simulable dataset
    # measurement ids left out of the fit (e.g. a point the model's structure cannot express);
    # recorded in the InferenceData and the report, so the exclusion is visible in the results
    exclude: tuple[str, ...] = ()
    include_constraints: bool = True
    relative_noise_floor: float = 0.05  # added in quadrature to every SD, as a fraction of |value|
    secondary_noise_floor: float = 0.15  # for secondary / digitised rows
    chain_method: str = "sequential"  # sequential | threads | vectorized
    device: str = "cpu"

    def __post_init__(self) -> None:
        def positive_int(key, value):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{key} must be a positive integer, got {value!r}")

        for key in (
            "neurons",
            "chains",
            "draws",
            "max_steps",
            "map_starts",
            "map_steps",
            "svi_steps",
            "posterior_draws",
            "prior_draws",
            "max_tree_depth",
            "mass_pilot_rounds",
        ):
            positive_int(key, getattr(self, key))
        for key in ("warmup", "adjoint_checkpoints", "map_polish_steps", "mass_pilot"):
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ConfigError(f"{key} must be a non-negative integer, got {value!r}")
        batch = self.neuron_batch
        if batch != "auto" and (not isinstance(batch, int) or isinstance(batch, bool) or batch < 0):
            raise ConfigError(
                f'solver.neuron_batch must be "auto", 0 (all neurons at once) or a positive '
                f"number of neurons, got {batch!r}"
            )
        if self.solver not in _SOLVERS:
            raise ConfigError(f"solver.method must be one of {_SOLVERS}, got {self.solver!r}")
        if self.long_solver not in ("", *_SOLVERS):
            raise ConfigError(
                f'solver.long_method must be one of {_SOLVERS} (or "" for solver.method), '
                f"got {self.long_solver!r}"
            )
        same = ("", self.solver, *SAME_METHOD.get(self.solver, ()))
        if self.sampler_solver not in same:
            raise ConfigError(
                f'solver.sampler_method must be "" (solver.method for everything) or a variant '
                f"of solver.method {self.solver!r} that computes the same solution to rounding "
                f"({list(same[2:]) or 'none exists'}), got {self.sampler_solver!r}"
            )
        if self.engine not in _ENGINES:
            raise ConfigError(f"engine.name must be one of {_ENGINES}, got {self.engine!r}")
        if self.svi_guide not in ("normal", "lowrank"):
            raise ConfigError(
                f"engine.svi_guide must be 'normal' or 'lowrank', got {self.svi_guide!r}"
            )
        if self.chain_method not in ("sequential", "threads", "vectorized"):
            raise ConfigError(
                "engine.chain_method must be 'sequential', 'threads' or 'vectorized' ('parallel' "
                "runs chains under pmap, where the gradient of diffrax's checkpointed solve fails "
                "with equinox's closure conversion; 'threads' uses several CPU cores instead)"
            )
        if self.mass_init not in ("identity", "laplace", "file"):
            raise ConfigError(
                f"engine.mass_init must be 'identity', 'laplace' or 'file', got {self.mass_init!r}"
            )
        if not isinstance(self.mass_file, str):
            raise ConfigError(f"engine.mass_file must be a path string, got {self.mass_file!r}")
        if (self.mass_init == "file") != bool(self.mass_file):
            raise ConfigError(
                "engine.mass_init = 'file' and engine.mass_file (the .npz to read) go together: "
                f"got mass_init {self.mass_init!r}, mass_file {self.mass_file!r}"
            )
        if self.mass_init == "file" and not self.dense_mass:
            raise ConfigError(
                "engine.mass_init = 'file' needs engine.dense_mass = true (the saved matrix is "
                "dense)"
            )
        for key in ("dense_mass", "adapt_mass", "adapt_step_size", "include_constraints"):
            if not isinstance(getattr(self, key), bool):
                section = "data" if key == "include_constraints" else "engine"
                raise ConfigError(
                    f"{section}.{key} must be true or false, got {getattr(self, key)!r}"
                )
        step = self.step_size
        if not isinstance(step, int | float) or isinstance(step, bool) or not step >= 0:
            raise ConfigError(f"engine.step_size must be a number >= 0, got {step!r}")
        if not self.adapt_step_size and not step > 0:
            raise ConfigError(
                "engine.adapt_step_size = false keeps engine.step_size for every transition: "
                "set step_size > 0 (e.g. the step size a good run adapted: its sample_stats "
                "step_size), or adapt_step_size = true"
            )
        if 0 < self.mass_pilot < MIN_PILOT:
            raise ConfigError(
                f"engine.mass_pilot must be 0 (no pilot) or at least {MIN_PILOT} transitions per "
                f"round (its draws estimate the spread per latent), got {self.mass_pilot}"
            )
        if self.mass_pilot and self.adapt_mass:
            raise ConfigError(
                "engine.mass_pilot rescales a mass matrix that warm-up then keeps: set "
                "engine.adapt_mass = false, or mass_pilot = 0"
            )
        if self.mass_init == "laplace" and not self.dense_mass:
            raise ConfigError(
                "engine.mass_init = 'laplace' needs engine.dense_mass = true (the curvature at "
                "the MAP point is a dense matrix)"
            )
        for key in ("pcoeff", "icoeff"):
            value = getattr(self, key)
            if not isinstance(value, int | float) or isinstance(value, bool) or not 0 <= value <= 2:
                raise ConfigError(f"solver.{key} must be a number in [0, 2], got {value!r}")
        if self.icoeff == 0:
            raise ConfigError("solver.icoeff must be > 0 (it sets the step-size adaptation)")
        if self.device not in ("cpu", "gpu"):
            raise ConfigError(f"device must be 'cpu' or 'gpu', got {self.device!r}")
        for key in ("rtol", "atol", "sigma_prior_scale", "map_learning_rate", "svi_learning_rate"):
            value = getattr(self, key)
            if not isinstance(value, int | float) or not value > 0:
                raise ConfigError(f"{key} must be a positive number, got {value!r}")
        if not 0.5 <= self.target_accept < 1:
            raise ConfigError(f"target_accept must be in [0.5, 1), got {self.target_accept}")
        unknown = [n for n in self.free if n not in PATHWAY.parameter_names]
        if unknown:
            raise ConfigError(
                f"population.free: unknown parameters {unknown}; see docs/parameters.md for names"
            )
        if len(set(self.free)) != len(self.free) or not self.free:
            raise ConfigError("population.free must list each parameter once, and at least one")
        for key in ("datasets", "exclude"):
            value = getattr(self, key)
            if not isinstance(value, tuple) or not all(isinstance(v, str) for v in value):
                raise ConfigError(f"data.{key} must be a list of ids (strings), got {value!r}")
        bad_use = [u for u in self.use if u not in _USES]
        if bad_use:
            raise ConfigError(f"data.use entries must be in {_USES}, got {bad_use}")

    @property
    def free_heterogeneous(self) -> tuple[str, ...]:
        return tuple(n for n in self.free if PATHWAY.parameter(n).heterogeneous)

    def replace(self, **changes) -> FitConfig:
        return dataclasses.replace(self, **changes)

    def to_toml(self) -> str:
        """The config as TOML text (stored beside results and in the InferenceData attrs)."""
        lines = []
        for section, keys in TOML_SECTIONS.items():
            lines.append(f"[{section}]")
            for key in keys:
                value = getattr(self, key)
                name = _TOML_NAMES.get(key, key)
                lines.append(f"{name} = {_toml_value(value)}")
            lines.append("")
        return "\n".join(lines)


# The TOML sections of a config and their keys (to_toml; the run_fit model check)
TOML_SECTIONS = {
    "population": ("neurons", "seed", "free", "sigma_prior_scale"),
    "solver": (
        "solver",
        "long_solver",
        "sampler_solver",
        "rtol",
        "atol",
        "max_steps",
        "adjoint_checkpoints",
        "pcoeff",
        "icoeff",
        "neuron_batch",
    ),
    "engine": (
        "engine",
        "chains",
        "warmup",
        "draws",
        "max_tree_depth",
        "target_accept",
        "dense_mass",
        "mass_init",
        "mass_file",
        "adapt_mass",
        "step_size",
        "adapt_step_size",
        "mass_pilot",
        "mass_pilot_rounds",
        "map_starts",
        "map_steps",
        "map_learning_rate",
        "map_polish_steps",
        "svi_steps",
        "svi_learning_rate",
        "svi_guide",
        "posterior_draws",
        "prior_draws",
        "chain_method",
        "device",
    ),
    "data": (
        "use",
        "datasets",
        "exclude",
        "include_constraints",
        "relative_noise_floor",
        "secondary_noise_floor",
    ),
}


_TOML_NAMES = {
    "solver": "method",
    "long_solver": "long_method",
    "sampler_solver": "sampler_method",
    "engine": "name",
}
_FROM_TOML = {
    ("solver", "method"): "solver",
    ("solver", "long_method"): "long_solver",
    ("solver", "sampler_method"): "sampler_solver",
    ("engine", "name"): "engine",
}


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return repr(value)


def config_from_mapping(table: dict) -> FitConfig:
    """Build a FitConfig from a parsed TOML table, rejecting unknown keys."""
    fields = {f.name: f for f in dataclasses.fields(FitConfig)}
    values = {}
    for section, content in table.items():
        if not isinstance(content, dict):
            raise ConfigError(f"top-level key {section!r} must be a table like [population]")
        for key, value in content.items():
            name = _FROM_TOML.get((section, key), key)
            if name not in fields:
                raise ConfigError(f"unknown key [{section}] {key}; known: {sorted(fields)}")
            if isinstance(value, list):
                value = tuple(value)
            values[name] = value
    try:
        return FitConfig(**values)
    except TypeError as err:
        raise ConfigError(str(err)) from None


def load_config(path: str | Path) -> FitConfig:
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"config file {path} does not exist")
    try:
        table = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML: {err}") from None
    try:
        config = config_from_mapping(table)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None
    if config.mass_file and not Path(config.mass_file).is_absolute():
        # a file named by a config is found beside it, wherever the command runs
        config = config.replace(mass_file=str(path.parent.resolve() / config.mass_file))
    return config
