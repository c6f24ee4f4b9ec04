"""Inference: log density, no recompilation, InferenceData round trip, CLI, config errors.

One tiny fit problem (the short-horizon Wolfe 2016 datasets, 2 virtual neurons, a handful of
free parameters) is built once per session; everything that compiles shares it.
"""

from __future__ import annotations

import json
import subprocess
import tomllib
from pathlib import Path

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from infer.cli import main
from infer.config import ConfigError, FitConfig, config_from_mapping, load_config
from infer.fit import Fit, _git_commit, run_fit
from models.population import trace_count

ROOT = Path(__file__).resolve().parents[1]

TINY = dict(
    neurons=2,
    free=("f_Ystab", "k_Y", "c0", "w_ca", "g_FG"),
    datasets=("wolfe2016_fig7c", "wolfe2016_fig5ac", "wolfe2016_fig5h"),
    exclude=("GB15",),
    engine="map",
    map_starts=2,
    map_steps=5,
    map_polish_steps=20,
    posterior_draws=4,
    prior_draws=4,
    chains=1,
    warmup=3,
    draws=4,
    max_tree_depth=3,
)


@pytest.fixture(scope="session")
def tiny_config() -> FitConfig:
    return FitConfig(**TINY)


@pytest.fixture(scope="session")
def tiny_fit(tiny_config) -> Fit:
    return Fit.create(tiny_config)


@pytest.fixture(scope="session")
def value_and_grad(tiny_fit):
    return tiny_fit.model.potential()


@pytest.fixture(scope="session")
def map_run(tiny_fit, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run") / "map"
    run_fit(tiny_fit.config, out, fit=tiny_fit, progress=False)
    return out


def test_run_fit_refuses_a_fit_built_for_another_model_and_writes_nothing(tiny_fit, tmp_path):
    out = tmp_path / "run"
    other = tiny_fit.config.replace(neurons=tiny_fit.config.neurons + 1)
    with pytest.raises(ValueError, match=r"differs from this run's in \['neurons'\]"):
        run_fit(other, out, fit=tiny_fit, progress=False)
    assert not out.exists()


def _prior_points(fit: Fit, n: int):
    """n prior draws of the latent sites, mapped to the unconstrained space."""
    from numpyro.infer import Predictive
    from numpyro.infer.util import unconstrain_fn

    model = fit.model
    draws = Predictive(
        model,
        num_samples=n,
        return_sites=[
            *(f"raw_{p}" for p in model.free),
            *(f"sigma_{p}" for p in model.sigma_names),
            *model.scale_names,
        ],
    )(jax.random.PRNGKey(1), observed=False)
    points = []
    for i in range(n):
        params = {k: v[i] for k, v in draws.items()}
        points.append(unconstrain_fn(model, (), {}, params))
    return points


def test_log_density_and_gradient_finite_at_prior_draws(tiny_fit, value_and_grad):
    _, _, _, vg = value_and_grad
    for z in _prior_points(tiny_fit, 4):
        value, grad = vg(z)
        assert np.isfinite(float(value)), z
        assert all(bool(jnp.all(jnp.isfinite(g))) for g in jax.tree_util.tree_leaves(grad)), z


def test_fixed_parameters_and_common_inputs_are_compiled_in_without_changing_the_solve(
    tiny_fit, value_and_grad
):
    """Fit.create makes the parameters a fit does not sample, and the inputs one value in
    every condition of a solve group, constants of the compiled solve (models.solve.Constants:
    1.6x faster demo gradients); the levels and their gradient in the sampled parameters and
    spreads equal those of the generic solve, at a prior draw away from the defaults."""
    from infer.problem import PopulationPredictor
    from models.pathway import PATHWAY

    fit = tiny_fit
    pred = fit.model.predictor
    constants = pred.groups[0][3]
    names = PATHWAY.parameter_names
    assert {names[i] for i, _ in constants.theta} == set(names) - set(fit.config.free)
    assert all(v == fit.model.base_theta[i] for i, v in constants.theta)
    inputs = {PATHWAY.input_names[j]: v for j, v in constants.inputs}
    # no condition of these datasets has TTX, bicuculline or an i.v. dose; ethanol's bath
    # concentration, baclofen and cycloheximide differ between conditions: they stay inputs
    assert inputs["ttx"] == inputs["bic"] == inputs["is_iv"] == 0.0
    assert not {"bath_conc", "baclofen", "chx"} & set(inputs)

    generic = PopulationPredictor(fit.problem, pred.z, pred.config, long_config=pred.long_config)
    assert all(group[3] is None for group in generic.groups)
    from infer.model import _from_standard

    _, _, constrain, _ = value_and_grad
    latents = constrain(_prior_points(fit, 1)[0])
    values = {n: _from_standard(n, latents[f"raw_{n}"]) for n in fit.model.free}
    values.update({k: v for k, v in latents.items() if k.startswith("sigma_")})
    theta, sigma = fit.model.theta_sigma(values)
    free = fit.model.free_index
    assert not np.allclose(theta[free], fit.model.base_theta[free])

    def total(predictor):
        weights = jnp.linspace(0.5, 1.5, pred.z.shape[0])[:, None, None, None]
        return jax.jit(
            jax.value_and_grad(
                lambda th, sg: jnp.sum(weights * predictor.levels(th, sg)[0]), argnums=(0, 1)
            )
        )

    v_fast, (g_theta, g_sigma) = total(pred)(theta, sigma)
    v_generic, (h_theta, h_sigma) = total(generic)(theta, sigma)
    np.testing.assert_allclose(float(v_fast), float(v_generic), rtol=1e-12)
    np.testing.assert_allclose(g_theta[free], h_theta[free], rtol=1e-8, atol=1e-12)
    slot = fit.model.sigma_slot  # the spreads the fit samples (the others are fixed at 0)
    assert len(slot)
    np.testing.assert_allclose(g_sigma[slot], h_sigma[slot], rtol=1e-8, atol=1e-12)


def test_second_evaluation_and_refit_do_not_recompile(tiny_fit, value_and_grad, map_run):
    _, z0, _, vg = value_and_grad
    vg(z0)
    before = trace_count()
    shifted = jax.tree_util.tree_map(lambda x: x + 0.1, z0)
    vg(shifted)
    from infer.engines import run_map

    run_map(tiny_fit.model, tiny_fit.config, jax.random.PRNGKey(3))
    assert trace_count() == before


def test_map_polish_reaches_a_mode_adam_alone_does_not(tiny_fit):
    """The L-BFGS-B polish after Adam ends lower, with a far smaller gradient (a mode: what
    the Laplace mass matrix needs)."""
    from infer.engines import run_map

    key = jax.random.PRNGKey(5)
    cfg = tiny_fit.config.replace(map_starts=1)
    adam = run_map(tiny_fit.model, cfg.replace(map_polish_steps=0), key)
    polished = run_map(tiny_fit.model, cfg.replace(map_polish_steps=100), key)
    assert polished["neg_log_density"] < adam["neg_log_density"]
    assert polished["max_abs_gradient"] < 0.1 * adam["max_abs_gradient"]
    assert len(polished["traces"][0]) > len(adam["traces"][0])  # the polish's values appended


def test_inference_data_has_every_group_with_named_dims(map_run):
    idata = az.from_netcdf(map_run / "posterior.nc")
    for group in (
        "posterior",
        "log_likelihood",
        "prior",
        "prior_predictive",
        "posterior_predictive",
        "observed_data",
        "constant_data",
        "predictions",
    ):
        assert hasattr(idata, group), group
    assert "measurement" in idata.observed_data["obs"].dims
    # a measurement left out by data.exclude is absent from the data and named in the attrs
    assert json.loads(idata.attrs["excluded_measurements"]) == ["GB15"]
    measured = list(idata.observed_data["measurement"].values)
    assert "GB15" not in measured and "GB14" in measured
    log = json.loads(idata.attrs["fit_log"])
    assert np.isfinite(log["map_neg_log_density"]) and log["map_max_abs_gradient"] >= 0
    assert set(idata.predictions["neuron_effect"].dims) >= {
        "neuron",
        "condition",
        "time",
        "readout",
    }
    for key in ("package_versions", "device", "git_commit", "data_checksums", "config"):
        assert idata.attrs[key]
    # the commit recorded is the one the process started from (cached at run_fit's start)
    assert idata.attrs["git_commit"] == _git_commit()
    head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=ROOT)
    if head.returncode == 0:
        assert idata.attrs["git_commit"].removesuffix("+dirty") == head.stdout.strip()
    assert json.loads(idata.attrs["free_parameters"]) == list(TINY["free"])
    versions = json.loads(idata.attrs["package_versions"])
    assert {"jax", "diffrax", "numpyro"} <= set(versions)
    assert (map_run / "config.toml").exists()
    assert load_config(map_run / "config.toml") == FitConfig(**TINY)


def test_netcdf_round_trip_and_figures_regenerate(map_run, tmp_path):
    from infer.diagnostics import diagnose_run
    from infer.figures import plot_run

    idata = az.from_netcdf(map_run / "posterior.nc")
    copy = tmp_path / "copy"
    copy.mkdir()
    idata.to_netcdf(str(copy / "posterior.nc"), engine="h5netcdf")
    again = az.from_netcdf(copy / "posterior.nc")
    np.testing.assert_array_equal(again.posterior["pred"].values, idata.posterior["pred"].values)
    report = diagnose_run(copy)
    assert report.exists() and "Inference diagnostics" in report.read_text()
    assert "measurements excluded from the fit" in report.read_text()
    assert "`GB15`" in report.read_text()
    figures = plot_run(copy)
    assert any(p.suffix == ".png" for p in figures) and any(p.suffix == ".pdf" for p in figures)


# two chains in threads, dense mass kept through warm-up: the NUTS tests' shared settings
# (one compiled driver for all of them, blocks of 2 transitions)
NUTS_TINY = dict(
    engine="nuts", warmup=3, chains=2, chain_method="threads", dense_mass=True, adapt_mass=False
)


def _nuts(model, cfg, ckpt, *, key=0, **kwargs):
    from infer.engines import run_nuts

    return run_nuts(
        model, cfg, jax.random.PRNGKey(key), checkpoint=ckpt, chunk=2, progress=False, **kwargs
    )


def test_nuts_checkpoint_and_resume(tiny_fit, tmp_path):
    """A NUTS run checkpoints its draws; resuming continues from the saved state. Two chains
    run concurrently in threads, with a dense mass matrix started from the Laplace curvature."""
    from infer.engines import ChunkedNUTS, laplace_inverse_mass

    cfg = tiny_fit.config.replace(draws=4, **NUTS_TINY)
    _, z0, _, _ = tiny_fit.model.potential()
    inverse_mass, eig = laplace_inverse_mass(tiny_fit.model, z0)
    n = len(z0)
    assert inverse_mass.shape == (n, n) and eig.shape == (n,)
    np.testing.assert_allclose(inverse_mass, inverse_mass.T)
    assert np.all(np.linalg.eigvalsh(inverse_mass) > 0)
    ckpt = tmp_path / "ckpt.pkl"
    first = _nuts(tiny_fit.model, cfg, ckpt, inverse_mass=inverse_mass)
    assert first["n_draws"] == 4 and ckpt.exists()
    traces = trace_count()
    more = cfg.replace(draws=6)
    resumed = _nuts(tiny_fit.model, more, ckpt, resume=True)
    assert resumed["n_draws"] == 6
    name = f"raw_{cfg.free[0]}"
    np.testing.assert_array_equal(resumed["samples"][name][:, :4], first["samples"][name])
    assert set(resumed["extra"]) >= {"diverging", "num_steps", "energy", "accept_prob"}
    assert resumed["extra"]["num_steps"].shape == (cfg.chains, 6)
    # after warm-up each chain keeps the step size it adapted
    steps = resumed["extra"]["step_size"]
    assert steps.shape == (cfg.chains, 6) and np.all(steps > 0)
    np.testing.assert_array_equal(steps, np.broadcast_to(steps[:, :1], steps.shape))
    # the resumed run reused the first run's compiled program (its state read back from disk)
    assert trace_count() == traces
    assert ChunkedNUTS.for_model(tiny_fit.model, more, 2)._block._cache_size() == 1
    # a checkpoint of a run with other settings is refused, naming what differs
    with pytest.raises(RuntimeError, match=r"max_tree_depth.*same config"):
        _nuts(tiny_fit.model, more.replace(max_tree_depth=2), ckpt, resume=True)


def test_vectorized_chains_compile_ahead_and_run(tiny_fit):
    """Chains vmapped in one program (``chain_method = "vectorized"``, the GPU set-up): the
    block program compiled ahead is the one the chains run (their first block compiles
    nothing), and every chain gets its transitions."""
    from infer.engines import ChunkedNUTS

    cfg = tiny_fit.config.replace(draws=2, **{**NUTS_TINY, "chain_method": "vectorized"})
    driver = ChunkedNUTS.for_model(tiny_fit.model, cfg, 2)
    assert driver.vectorized
    driver.compile_ahead()
    states = driver.init(tiny_fit.model.potential()[1], jax.random.PRNGKey(0), step_size=0.1)
    driver._compiling.result()
    compiles = []

    def count_compiles(event, duration, **kwargs):
        if event == "/jax/core/compile/backend_compile_duration":
            compiles.append(event)

    jax.monitoring.register_event_duration_secs_listener(count_compiles)
    try:
        states, records = driver.advance(states, 2)
    finally:
        jax.monitoring.unregister_event_duration_listener(count_compiles)
    assert compiles == []
    assert records["num_steps"].shape == (2, 2) and np.all(records["num_steps"] >= 1)
    assert np.all(np.isfinite(records["potential_energy"]))


def test_nuts_fixed_step_size_is_kept_and_checked_on_resume(tiny_fit, tmp_path):
    """engine.adapt_step_size = false: every transition, warm-up included, uses
    engine.step_size; a checkpoint written with another step size is refused."""
    cfg = tiny_fit.config.replace(draws=2, adapt_step_size=False, step_size=0.0625, **NUTS_TINY)
    ckpt = tmp_path / "ckpt.pkl"
    first = _nuts(tiny_fit.model, cfg, ckpt)
    np.testing.assert_array_equal(first["extra"]["step_size"], 0.0625)
    # the step size is an argument of the compiled program: another value reuses it
    other = _nuts(tiny_fit.model, cfg.replace(step_size=0.125), tmp_path / "other.pkl")
    np.testing.assert_array_equal(other["extra"]["step_size"], 0.125)
    with pytest.raises(RuntimeError, match=r"step_size.*same config"):
        _nuts(tiny_fit.model, cfg.replace(step_size=0.125, draws=4), ckpt, resume=True)
    resumed = _nuts(tiny_fit.model, cfg.replace(draws=4), ckpt, resume=True)
    np.testing.assert_array_equal(resumed["extra"]["step_size"], 0.0625)


def test_interrupted_fit_resumes_from_its_checkpoint_without_redoing_its_start(
    tiny_fit, tmp_path, monkeypatch
):
    """Ctrl-C during NUTS: run_fit writes the draws finished so far and keeps the checkpoint
    and a copy of the saved mass matrix (named by the run's config.toml); resuming continues
    the same chains without running the MAP again, and records the commit the run started
    with and the one that finished it. The sampler is compiled while the MAP runs
    (``ChunkedNUTS.compile_ahead``): the chains' first block compiles nothing."""
    from infer import fit as fit_module
    from infer.engines import ChunkedNUTS

    _, z0, _, _ = tiny_fit.model.potential()
    mass = tmp_path / "mass.npz"
    np.savez(mass, inverse_mass=0.5 * np.eye(len(z0)), latents=np.array(sorted(z0)))
    cfg = tiny_fit.config.replace(draws=6, mass_init="file", mass_file=str(mass), **NUTS_TINY)
    fit = tiny_fit  # built from a config that differs in [engine] only: the run records cfg
    out = tmp_path / "run"
    advance = ChunkedNUTS.advance
    calls, compiled_in_first_block = [], []
    compiles = []

    def count_compiles(event, duration, **kwargs):
        if event == "/jax/core/compile/backend_compile_duration":
            compiles.append(event)

    def interrupt_on_the_fourth_block(self, states, n):
        calls.append(n)
        if len(calls) == 4:  # warm-up 2 + 1, draws 2, then Ctrl-C
            raise KeyboardInterrupt
        if len(calls) == 1:  # the sampler was compiled during the MAP (compile_ahead)
            assert self._compiling is not None
            self._compiling.result()
            before = len(compiles)
            out = advance(self, states, n)
            compiled_in_first_block.append(len(compiles) - before)
            return out
        return advance(self, states, n)

    monkeypatch.setattr(ChunkedNUTS, "advance", interrupt_on_the_fourth_block)
    jax.monitoring.register_event_duration_secs_listener(count_compiles)
    try:
        run_fit(cfg, out, fit=fit, progress=False, checkpoint_every=2)
    finally:
        jax.monitoring.unregister_event_duration_listener(count_compiles)
    # the program compiled ahead is the one the chains ran: no compilation in their first block
    assert compiled_in_first_block == [0]
    first = az.from_netcdf(out / "posterior.nc")
    assert first.posterior.sizes["draw"] == 2
    assert json.loads(first.attrs["fit_log"])["nuts_interrupted"] is True
    assert (out / "nuts_checkpoint.pkl").exists()
    kept = load_config(out / "config.toml")
    assert kept.mass_file == str((out / "inverse_mass.npz").resolve())
    np.testing.assert_array_equal(np.load(kept.mass_file)["inverse_mass"], 0.5 * np.eye(len(z0)))
    started = first.attrs["git_commit"]

    monkeypatch.setattr(ChunkedNUTS, "advance", advance)

    def no_map(*args, **kwargs):
        raise AssertionError("a resumed NUTS run must not redo its MAP")

    monkeypatch.setattr(fit_module, "run_map", no_map)
    monkeypatch.setattr(fit_module, "_git_commit", lambda: "resuming-commit")
    mass.unlink()  # the resumed run needs neither the MAP nor the original mass file
    run_fit(cfg, out, fit=fit, progress=False, resume=True, checkpoint_every=2)
    resumed = az.from_netcdf(out / "posterior.nc")
    assert resumed.posterior.sizes["draw"] == 6
    assert "draws = 6" in resumed.attrs["config"]
    name = cfg.free[0]
    np.testing.assert_array_equal(
        resumed.posterior[name].values[:, :2], first.posterior[name].values
    )
    log = json.loads(resumed.attrs["fit_log"])
    assert log["resumed"] is True
    start = json.loads(first.attrs["fit_log"])  # the start's record, as the first run made it
    for k in ("map_neg_log_density", "seconds_map", "mass_file_sha256"):
        assert log[k] == start[k], k
    assert resumed.attrs["git_commit"] == started
    assert resumed.attrs["resumed_git_commit"] == "resuming-commit"
    assert not (out / "nuts_checkpoint.pkl").exists()


def test_nuts_pilot_rescales_the_mass_and_resumes(tiny_fit, tmp_path, monkeypatch):
    """With engine.mass_pilot, the chains run pilot rounds that each widen the mass matrix,
    then warm up with it; the ratios are returned and survive a resume (also one that starts
    mid-pilot, in its second round), and the later inits reuse the compiled programs."""
    from infer.engines import PILOT_RATIO_BOUNDS, ChunkedNUTS

    cfg = tiny_fit.config.replace(draws=2, mass_pilot=20, mass_pilot_rounds=2, **NUTS_TINY)
    n = len(tiny_fit.model.latent_names)
    start_mass = 0.05 * np.eye(n)  # not the identity: a resume must rescale this same matrix
    ckpt = tmp_path / "ckpt.pkl"
    first = _nuts(tiny_fit.model, cfg, ckpt, key=1, inverse_mass=start_mass)
    ratio = first["pilot_ratio"]
    assert sorted(ratio) == sorted(tiny_fit.model.latent_names)
    assert all(PILOT_RATIO_BOUNDS[0] <= r <= PILOT_RATIO_BOUNDS[1] for r in ratio.values())
    assert max(ratio.values()) > PILOT_RATIO_BOUNDS[0]  # widened: the matrix was too narrow
    assert first["extra"]["num_steps"].shape == (2, 2)
    driver = ChunkedNUTS.for_model(tiny_fit.model, cfg, 2)
    assert driver._init._cache_size() == 1 and driver._block._cache_size() == 1
    resumed = _nuts(tiny_fit.model, cfg.replace(draws=4), ckpt, key=1, resume=True)
    assert resumed["pilot_ratio"] == ratio and resumed["n_draws"] == 4
    with pytest.raises(RuntimeError, match="mass_pilot"):
        _nuts(tiny_fit.model, cfg.replace(mass_pilot=30), ckpt, key=1, resume=True)
    with pytest.raises(RuntimeError, match="mass_pilot_rounds"):
        _nuts(tiny_fit.model, cfg.replace(mass_pilot_rounds=3), ckpt, key=1, resume=True)
    # interrupted after 13 of the pilot's 2 x 10 blocks, resumed without the starting matrix:
    # the checkpoint carries the matrix of round 1, so the pilot and its ratios are those of
    # the uninterrupted run
    advance, calls = driver.advance, []

    def interrupt_after_3(states, k):
        calls.append(k)
        if len(calls) > 13:
            raise KeyboardInterrupt
        return advance(states, k)

    mid = tmp_path / "mid.pkl"
    monkeypatch.setattr(driver, "advance", interrupt_after_3)
    with pytest.raises(RuntimeError, match="interrupted before"):
        _nuts(tiny_fit.model, cfg, mid, key=1, inverse_mass=start_mass)
    monkeypatch.undo()
    assert _nuts(tiny_fit.model, cfg, mid, key=1, resume=True)["pilot_ratio"] == ratio


def test_cli_fit_smoke_and_bad_config(tmp_path, capsys):
    config = tmp_path / "tiny.toml"
    config.write_text(FitConfig(**TINY).to_toml())
    out = tmp_path / "run"
    code = main(["fit", "--config", str(config), "--out", str(out), "--quiet", "--no-plots"])
    assert code == 0
    assert (out / "posterior.nc").exists() and (out / "report.md").exists()
    bad = tmp_path / "bad.toml"
    bad.write_text('[engine]\nname = "hmc"\n')
    assert main(["fit", "--config", str(bad), "--out", str(tmp_path / "x")]) == 2
    assert "engine.name" in capsys.readouterr().err
    assert not (tmp_path / "x" / "posterior.nc").exists()


def test_ctrl_c_during_a_cli_fit_keeps_its_draws_and_says_how_to_resume(tmp_path):
    """A real SIGINT to ``python -m infer fit`` during NUTS (the in-process resume test
    simulates Ctrl-C): the process writes the draws finished so far, keeps the checkpoint, a
    report whose run-finished check fails, prints the resume command and exits 130."""
    import pickle
    import signal
    import sys
    import time

    planned = 1_000_000  # never reached: the signal stops it
    cfg = FitConfig(**{**TINY, "engine": "nuts", "chains": 1, "warmup": 5, "draws": planned})
    config = tmp_path / "nuts.toml"
    config.write_text(cfg.to_toml())
    out = tmp_path / "run"
    # A test run started in the background by a shell inherits SIGINT ignored, and a Python
    # started so never raises KeyboardInterrupt: the child restores Python's handler (as a
    # terminal would give it) and then runs `python -m infer fit ...`.
    launch = (
        "import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
        "sys.argv = ['infer'] + sys.argv[1:]; runpy.run_module('infer', run_name='__main__')"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", launch, "fit", "--config", str(config), "--out", str(out)]
        + ["--quiet", "--no-plots"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    ckpt = out / "nuts_checkpoint.pkl"
    deadline = time.monotonic() + 600
    try:
        while True:  # until the checkpoint holds a block of draws (written atomically)
            assert proc.poll() is None, proc.communicate()
            if ckpt.exists() and pickle.loads(ckpt.read_bytes())["chunks"]:
                break
            assert time.monotonic() < deadline, "no draws checkpointed in 10 minutes"
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr
    assert f"--out {out} --resume" in stderr
    assert "stops when the block of transitions under way ends (it is kept)" in stderr
    n = az.from_netcdf(out / "posterior.nc").posterior.sizes["draw"]
    assert 0 < n < planned
    assert ckpt.exists() and (out / "config.toml").exists()
    saved = pickle.loads(ckpt.read_bytes())["chunks"]
    assert sum(c["num_steps"].shape[1] for c in saved) == n  # every kept block checkpointed
    report = (out / "report.md").read_text()
    assert f"| NUTS run finished (not interrupted) | {n} of {planned} draws |" in report
    assert report.startswith("# Inference diagnostics: FAIL")


def test_first_ctrl_c_during_nuts_asks_to_stop_after_the_block_and_a_second_stops_at_once():
    """stop_after_block: the first SIGINT sets the event (no KeyboardInterrupt, so the block
    under way finishes and is kept), a second raises KeyboardInterrupt; Python's handler is
    back afterwards."""
    import os
    import signal
    import time

    from infer.engines import stop_after_block

    before = signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal
    try:
        with stop_after_block() as stop:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)
            assert stop.is_set()
            with pytest.raises(KeyboardInterrupt):
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.5)
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # SIGINT ignored: left alone
        with stop_after_block() as stop:
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, before)


@pytest.mark.parametrize(
    ("table", "needle"),
    [
        ({"population": {"neurons": 0}}, "neurons"),
        ({"population": {"neurons": 2.5}}, "neurons"),
        ({"population": {"free": ["not_a_parameter"]}}, "unknown parameters"),
        ({"population": {"free": []}}, "at least one"),
        ({"solver": {"method": "euler"}}, "solver.method"),
        ({"solver": {"rtol": -1}}, "rtol"),
        ({"engine": {"name": "hmc"}}, "engine.name"),
        ({"engine": {"target_accept": 1.5}}, "target_accept"),
        ({"engine": {"chains": -2}}, "chains"),
        ({"engine": {"unknown_key": 1}}, "unknown key"),
        ({"data": {"use": ["everything"]}}, "data.use"),
        ({"engine": {"device": "tpu"}}, "device"),
        ({"population": 3}, "must be a table"),
        ({"engine": {"chain_method": "parallel"}}, "threads"),
        ({"engine": {"mass_init": "laplace"}}, "dense_mass"),
        ({"engine": {"mass_init": "fisher", "dense_mass": True}}, "mass_init"),
        ({"solver": {"long_method": "euler"}}, "long_method"),
        ({"solver": {"sampler_method": "kvaerno5"}}, "sampler_method must be"),
        ({"solver": {"method": "kvaerno5", "sampler_method": "tsit5"}}, "none exists"),
        ({"solver": {"pcoeff": -0.1}}, "pcoeff"),
        ({"engine": {"adapt_mass": "no"}}, "engine.adapt_mass must be true or false"),
        ({"engine": {"map_polish_steps": -1}}, "map_polish_steps"),
        ({"data": {"include_constraints": 1}}, "data.include_constraints"),
        ({"data": {"exclude": [15]}}, "data.exclude must be a list of ids"),
        ({"engine": {"mass_pilot": 5, "adapt_mass": False}}, "mass_pilot must be 0"),
        ({"engine": {"mass_pilot": 40}}, "adapt_mass = false"),
        ({"engine": {"mass_pilot_rounds": 0}}, "mass_pilot_rounds"),
        ({"engine": {"mass_init": "file", "dense_mass": True}}, "go together"),
        ({"engine": {"mass_file": "m.npz", "dense_mass": True}}, "go together"),
        ({"engine": {"mass_init": "file", "mass_file": "m.npz"}}, "dense_mass"),
        ({"engine": {"mass_file": 3}}, "mass_file must be a path"),
        ({"engine": {"adapt_step_size": False}}, "set step_size > 0"),
        ({"engine": {"step_size": -0.1}}, "step_size must be a number >= 0"),
        ({"engine": {"adapt_step_size": "no"}}, "adapt_step_size must be true or false"),
        ({"solver": {"neuron_batch": -4}}, "solver.neuron_batch"),
        ({"solver": {"neuron_batch": "fast"}}, "solver.neuron_batch"),
    ],
)
def test_each_bad_config_value_gives_a_clear_error(table, needle):
    with pytest.raises(ConfigError, match=needle):
        config_from_mapping(table)


def test_unknown_dataset_in_config_is_named(tmp_path):
    from infer.fit import load_problem

    with pytest.raises(ConfigError, match="no_such_dataset"):
        load_problem(FitConfig(**{**TINY, "datasets": ("no_such_dataset",)}))
    # an excluded id that is not a measurement of the fit's datasets (GB05: another dataset)
    with pytest.raises(ConfigError, match=r"data.exclude: \['GB05', 'nope'\]"):
        load_problem(FitConfig(**{**TINY, "exclude": ("GB15", "GB05", "nope")}))


def test_saved_inverse_mass_is_checked_against_the_latents(tmp_path):
    """engine.mass_init = 'file': the matrix is used only for the same latents, and every
    defect (missing file, other latents, wrong shape, not positive definite) names the file."""
    from infer.engines import load_inverse_mass

    z0 = {"raw_b": 0.0, "raw_a": 0.0}  # ravel_pytree order: sorted names
    good = np.array([[2.0, 0.5], [0.5, 1.0]])
    path = tmp_path / "m.npz"
    np.savez(path, inverse_mass=good, latents=np.array(["raw_a", "raw_b"]))
    assert np.array_equal(load_inverse_mass(path, z0), good)
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        load_inverse_mass(tmp_path / "nope.npz", z0)
    with pytest.raises(ValueError, match=r"m.npz is for other latents \(missing \['raw_c'\]"):
        load_inverse_mass(path, {**z0, "raw_c": 0.0})
    for bad, needle in (
        (np.eye(3), "finite 2x2"),
        (np.array([[1.0, 2.0], [2.0, 1.0]]), "positive definite"),
        (np.array([[1.0, np.nan], [np.nan, 1.0]]), "finite 2x2"),
    ):
        np.savez(path, inverse_mass=bad, latents=np.array(["raw_a", "raw_b"]))
        with pytest.raises(ValueError, match=needle):
            load_inverse_mass(path, z0)
    np.savez(path, something=good)
    with pytest.raises(ValueError, match="not an .npz with 'inverse_mass'"):
        load_inverse_mass(path, z0)


def test_shipped_demo_mass_file_matches_the_demo_fit():
    """demo.toml's saved mass matrix is for exactly the demo fit's latents (found beside the
    config, wherever the command runs), so `make demo` cannot silently use a stale one."""
    from infer.engines import load_inverse_mass
    from infer.fit_cli import DEMO_CONFIG

    config = load_config(DEMO_CONFIG)
    assert config.mass_init == "file" and Path(config.mass_file).is_absolute()
    model = Fit.create(config).model  # no solve, no compilation: names only
    latents = {f"raw_{n}": 0.0 for n in config.free}
    latents |= {f"sigma_{n}": 0.0 for n in model.sigma_names}
    latents |= {n: 0.0 for n in model.scale_names}
    inv = load_inverse_mass(config.mass_file, latents)
    assert inv.shape == (len(latents), len(latents))


def _fake_nuts_run(tiny_fit, z: dict, out: Path, chains: int = 2, free=None) -> Path:
    """A run directory whose posterior holds the constrained values of unconstrained draws
    ``z`` (name -> [draw]), with the attributes a NUTS run records."""
    model = tiny_fit.model
    values = model.constrain({k: jnp.asarray(v) for k, v in z.items()})
    post = {}
    for name, v in values.items():
        key = name.removeprefix("raw_")
        if name.startswith("raw_"):
            from infer.model import _from_standard

            v = _from_standard(key, v)
        post[key] = np.asarray(v).reshape(chains, -1)
    idata = az.from_dict(posterior=post)
    idata.attrs.update(
        engine="nuts",
        git_commit="abc",
        free_parameters=json.dumps(list(model.free if free is None else free)),
        sigma_parameters=json.dumps([f"sigma_{n}" for n in model.sigma_names]),
        nuisance_parameters=json.dumps(list(model.scale_names)),
    )
    out.mkdir(parents=True)
    idata.to_netcdf(out / "posterior.nc")
    return out


def test_mass_file_from_runs_recovers_the_unconstrained_covariance(tiny_fit, tmp_path):
    """`python -m infer mass RUN...`: the draws are mapped back to the sampler's unconstrained
    coordinates exactly (so the covariance is that of the draws the sampler made), pooled over
    runs, regularised as Stan does, and the file loads as the fit's engine.mass_file."""
    from infer.engines import load_inverse_mass

    _, z0, _, _ = tiny_fit.model.potential()
    names = sorted(z0)
    rng = np.random.default_rng(0)
    a = rng.standard_normal((len(names), len(names))) * 0.3
    draws = rng.standard_normal((400, len(names))) @ a.T  # correlated, around the origin
    runs = [
        _fake_nuts_run(tiny_fit, {n: draws[i::2, j] for j, n in enumerate(names)}, tmp_path / r)
        for i, r in enumerate(("r1", "r2"))
    ]
    out = tmp_path / "m.npz"
    assert main(["mass", *map(str, runs), "--out", str(out), "--note", "for a test"]) == 0
    inv = load_inverse_mass(out, {n: 0.0 for n in names})
    pooled = np.concatenate([draws[0::2], draws[1::2]])
    n = len(pooled)
    expected = n / (n + 5) * np.cov(pooled, rowvar=False) + 1e-3 * 5 / (n + 5) * np.eye(len(names))
    np.testing.assert_allclose(inv, expected, rtol=1e-8, atol=1e-12)
    with np.load(out) as f:
        source = str(f["source"])
    assert "400 posterior draws" in source and "for a test" in source and "commit abc" in source
    # runs of different fits, a run without draws, too few draws: clear errors, no file
    dropped = f"raw_{tiny_fit.model.free[0]}"
    other = _fake_nuts_run(
        tiny_fit,
        {n: draws[:200, j] for j, n in enumerate(names) if n != dropped},
        tmp_path / "other",
        free=tiny_fit.model.free[1:],
    )
    for bad, needle in (
        ([runs[0], other], "other latents"),
        ([tmp_path / "nothing"], "no posterior.nc"),
    ):
        with pytest.raises(Exception, match=needle):
            from infer.mass import write_mass_file

            write_mass_file(bad, tmp_path / "bad.npz")
    assert not (tmp_path / "bad.npz").exists()
    few = _fake_nuts_run(tiny_fit, {n: draws[:4, j] for j, n in enumerate(names)}, tmp_path / "few")
    assert main(["mass", str(few), "--out", str(tmp_path / "bad.npz")]) == 2
    assert not (tmp_path / "bad.npz").exists()


def test_rescale_inverse_mass_widens_a_correlated_direction_only():
    """Dense matrix C = L L^T: draws that spread 9x further than C along one whitened direction
    and far less along another widen C along the first only (a pilot never shrinks); draws
    that match C (white noise once whitened) leave it unchanged. Diagonal: per-latent ratios."""
    from infer.engines import PILOT_RATIO_BOUNDS, rescale_inverse_mass

    cov = np.array([[1.0, 0.9, 0.0], [0.9, 1.0, 0.0], [0.0, 0.0, 4.0]])
    chol = np.linalg.cholesky(cov)
    u = np.array([1.0, 1.0, 0.0]) / np.sqrt(2.0)  # whitened directions: wide ...
    w = np.array([1.0, -1.0, 0.0]) / np.sqrt(2.0)  # ... and narrow
    white = np.eye(3) + 8.0 * np.outer(u, u) - (1.0 - 1e-6) * np.outer(w, w)
    rng = np.random.default_rng(0)
    draws = rng.standard_normal((20000, 3)) @ np.linalg.cholesky(white).T @ chol.T
    new, ratio = rescale_inverse_mass(cov, draws)
    expected = chol @ (np.eye(3) + 8.0 * np.outer(u, u)) @ chol.T
    np.testing.assert_allclose(new, expected, rtol=0.05, atol=0.1)
    np.testing.assert_allclose(ratio, np.diag(new) / np.diag(cov))
    assert np.all(np.linalg.eigvalsh(new - cov) > -1e-9)  # only widened
    # 100 draws that match C: no eigenvalue beyond the Marchenko-Pastur edge, C unchanged
    same = rng.standard_normal((100, 3)) @ chol.T
    np.testing.assert_allclose(rescale_inverse_mass(cov, same)[0], cov, atol=1e-12)
    # diagonal: each latent's variance ratio, clipped below at 1
    diag, dratio = rescale_inverse_mass(
        np.diag(cov), rng.standard_normal((20000, 3)) * [3, 1, 1e-3]
    )
    np.testing.assert_allclose(dratio[:2], [9.0, 1.0], rtol=0.05)
    assert dratio[2] == PILOT_RATIO_BOUNDS[0]
    np.testing.assert_allclose(diag, np.diag(cov) * dratio)


@pytest.mark.parametrize(
    "name", sorted(p.name for p in (Path(__file__).parents[1] / "infer" / "configs").glob("*.toml"))
)
def test_shipped_configs_load_and_name_known_datasets(name):
    from infer.fit import load_problem
    from infer.fit_cli import CONFIG_DIR

    config = load_config(CONFIG_DIR / name)
    assert config_from_mapping(__import__("tomllib").loads(config.to_toml())) == config
    if config.datasets:
        load_problem(config)  # raises ConfigError naming an unknown dataset


def test_config_toml_round_trip():
    cfg = FitConfig(**TINY)
    assert config_from_mapping(__import__("tomllib").loads(cfg.to_toml())) == cfg
    batched = cfg.replace(neuron_batch=8)
    assert config_from_mapping(__import__("tomllib").loads(batched.to_toml())) == batched
    from infer.fit import solver_config

    assert solver_config(cfg).neuron_batch is None  # "auto": the package's choice
    assert solver_config(batched).neuron_batch == 8


def test_no_change_constraint_is_smooth_and_a_probability():
    """log P(|d + e| <= tol), e ~ N(0, (tol/2)^2): matches the normal CDF difference, is even,
    and its derivative is continuous through d = 0 (no kink for a mode to sit on)."""
    from scipy.stats import norm

    from infer.problem import _log_prob_within

    tol, width = 0.2, 0.1
    d = np.array([-1.0, -0.3, -0.2, -0.05, 0.0, 0.05, 0.2, 0.3, 1.0])
    x = np.abs(d)  # the lower tails, where the CDF difference has no cancellation
    expected = np.log(norm.cdf((tol - x) / width) - norm.cdf((-tol - x) / width))
    got = np.asarray(_log_prob_within(jnp.asarray(d), tol, width))
    np.testing.assert_allclose(got, expected, rtol=1e-10)
    np.testing.assert_allclose(got, got[::-1], rtol=1e-12)  # even in d
    assert np.isfinite(float(_log_prob_within(jnp.asarray(5.0), tol, width)))  # deep tail
    grad = jax.grad(lambda x: _log_prob_within(x, tol, width))
    eps = 1e-7
    assert float(grad(0.0)) == 0.0
    assert abs(float(grad(eps)) - float(grad(-eps))) < 1e-4  # no jump across 0


def test_long_lanes_get_their_own_solver():
    """solver.long_method applies to the lanes beyond 4 h only (no solve needed to check)."""
    import diffrax

    cfg = FitConfig(
        **{**TINY, "datasets": ("wolfe2016_fig5ac", "verpelli2010_fig1d_dendrite"), "exclude": ()},
        long_solver="kvaerno3",
    )
    fit = Fit.create(cfg)
    groups = fit.model.predictor.groups
    assert len(groups) == 2
    (short_rows, _, short, _), (long_rows, _, long, _) = groups
    assert isinstance(short.solver, diffrax.Tsit5) and isinstance(long.solver, diffrax.Kvaerno3)
    assert fit.problem.times[short_rows].max() <= 4 < fit.problem.times[long_rows].max()
    assert FitConfig(**TINY).replace(long_solver="").long_solver == ""


def test_sampler_solver_builds_a_sampling_model_with_its_solver():
    """solver.sampler_method: Fit.create gives the model a sibling for NUTS's chains that
    solves with the written-out Tsit5, the model itself keeps diffrax's (no solve needed)."""
    import diffrax

    from models.solvers import UnrolledTsit5

    small = {**TINY, "neurons": 1, "datasets": ("wolfe2016_fig7c",), "exclude": ()}
    cfg = FitConfig(**small, sampler_solver="tsit5-unrolled")
    assert config_from_mapping(tomllib.loads(cfg.to_toml())) == cfg
    fit = Fit.create(cfg)
    (_, _, solve, _), *_ = fit.model.predictor.groups
    (_, _, sampler_solve, _), *_ = fit.model.sampling.predictor.groups
    assert type(solve.solver) is diffrax.Tsit5 and type(sampler_solve.solver) is UnrolledTsit5
    assert Fit.create(FitConfig(**small)).model.sampling is None


@pytest.mark.slow  # compiles a NUTS program with the written-out Tsit5: ~5 min on 2 cores
def test_sampler_solver_runs_the_chains_and_the_model_the_rest(tmp_path, monkeypatch):
    """solver.sampler_method: NUTS's chains run the written-out Tsit5, while the start's
    potential and gradient (and the MAP and predictive draws) come from diffrax's Tsit5; the
    chains' recorded potential energy is the fit's posterior at each draw, to rounding."""
    import diffrax

    from infer.engines import ChunkedNUTS
    from models.solvers import UnrolledTsit5

    traced = []
    unrolled_step = UnrolledTsit5.step

    def counting_step(self, *args, **kwargs):
        traced.append(1)  # runs while JAX traces a program that solves with UnrolledTsit5
        return unrolled_step(self, *args, **kwargs)

    monkeypatch.setattr(UnrolledTsit5, "step", counting_step)
    small = {**TINY, "neurons": 1, "datasets": ("wolfe2016_fig7c",), "exclude": ()}
    cfg = FitConfig(**{**small, **NUTS_TINY, "chains": 1}, sampler_solver="tsit5-unrolled")
    assert config_from_mapping(tomllib.loads(cfg.to_toml())) == cfg
    fit = Fit.create(cfg)
    (_, _, solve, _), *_ = fit.model.predictor.groups
    (_, _, sampler_solve, _), *_ = fit.model.sampling.predictor.groups
    assert type(solve.solver) is diffrax.Tsit5 and type(sampler_solve.solver) is UnrolledTsit5
    assert Fit.create(FitConfig(**small)).model.sampling is None  # no sampler solver: one model

    potential, z0, _, _ = fit.model.potential()
    driver = ChunkedNUTS.for_model(fit.model, cfg, 2)
    states = driver.init(z0, jax.random.PRNGKey(0), step_size=0.05)
    assert traced == []  # the start's gradient is the model's (diffrax's Tsit5)
    states, records = driver.advance(states, 2)
    assert traced  # the chains' program solves with the written-out stages
    for i in range(2):
        z = {k: v[0, i] for k, v in records["z"].items()}
        np.testing.assert_allclose(records["potential_energy"][0, i], potential(z), rtol=1e-10)
