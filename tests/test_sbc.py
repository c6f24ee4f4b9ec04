"""Simulation-based calibration: the rank statistic and its test (fast), and a quick SBC of the
reduced population model (slow)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from infer.sbc import SBCSettings, ranks, uniformity


def test_ranks_count_draws_below_truth():
    truth = {"a": np.array([0.5, 2.0, -1.0])}
    draws = {"a": np.array([[0.0, 1.0, 0.2], [0.0, 1.0, 3.0], [0.0, 1.0, 3.0]])}
    assert ranks(truth, draws)["a"].tolist() == [2, 2, 0]


def test_uniformity_accepts_calibrated_and_rejects_biased_posteriors():
    rng = np.random.default_rng(0)
    n_sim, n_draws = 400, 99
    truth = rng.normal(size=n_sim)
    # calibrated: posterior = prior here (no data), so truth and draws are exchangeable
    calibrated = rng.normal(size=(n_sim, n_draws))
    # overconfident and shifted posterior: the truth falls in the tails far too often
    biased = truth[:, None] + 0.5 + 0.1 * rng.normal(size=(n_sim, n_draws))
    good = uniformity(ranks({"x": truth}, {"x": calibrated})["x"], n_draws + 1, 10)
    bad = uniformity(ranks({"x": truth}, {"x": biased})["x"], n_draws + 1, 10)
    assert sum(good["counts"]) == n_sim and len(good["counts"]) == 10
    assert good["p_value"] > 0.01
    assert bad["p_value"] < 1e-6


def test_settings_reject_unbinnable_ranks():
    with pytest.raises(ValueError, match="bins"):
        SBCSettings(draws=200, thin=2, bins=10)
    with pytest.raises(ValueError, match="multiple of thin"):
        SBCSettings(draws=199, thin=2)


@pytest.mark.slow
def test_quick_sbc_of_reduced_population_model():
    """12 simulated datasets of the reduced setting: ranks of every latent pass the chi-square
    test at the Bonferroni-corrected 1% level (weak power at this size; the committed full run
    in docs/validation is the real check)."""
    import jax

    jax.config.update("jax_enable_x64", True)
    from infer.sbc import run_sbc

    # the run's own warm-up, start and depth; 49 thinned draws, so 50 ranks in 5 bins
    settings = SBCSettings(simulations=12, batch=4, bins=5)
    out = run_sbc(settings, progress=False)
    assert out["redrawn_truths"] <= 12
    assert set(out["latents"]) >= {"raw_K_T", "raw_bdnf_ref_nM", "raw_g_FG"}
    assert all(len(r) == 12 for r in out["ranks"].values())
    assert out["calibrated"], out["tests"]


def test_sbc_progress_file_round_trips_and_guards_its_settings(tmp_path):
    import dataclasses

    from infer.sbc import _load_progress, _save_progress

    settings = SBCSettings()
    path = tmp_path / "sbc.progress.pkl"
    assert _load_progress(path, settings) == {"parts": [], "seconds_nuts": 0.0}
    parts = [{"diverging": np.zeros(8), "latent": {"raw_a": np.arange(8 * 49.0).reshape(8, 49)}}]
    _save_progress(path, settings, parts, 12.5)
    saved = _load_progress(path, settings)
    assert saved["seconds_nuts"] == 12.5
    np.testing.assert_array_equal(saved["parts"][0]["latent"]["raw_a"], parts[0]["latent"]["raw_a"])
    with pytest.raises(ValueError, match="other settings"):
        _load_progress(path, dataclasses.replace(settings, seed=1))
    path.write_bytes(b"not a pickle")
    with pytest.raises(ValueError, match="not a readable SBC progress file"):
        _load_progress(path, settings)


def test_an_interrupted_sbc_resumes_to_the_uninterrupted_result(tmp_path, monkeypatch):
    """The batching and progress bookkeeping of run_sbc, with the per-batch NUTS replaced by a
    stand-in whose draws depend on the batch's key and data (the real one is compiled in the
    slow tests): stopped after its first batch and resumed, a run returns what an
    uninterrupted one does; fit_more=False reports the saved datasets as partial."""
    from types import SimpleNamespace

    import jax

    from infer import sbc

    names = ("raw_a", "sigma_a")

    class StandIn:
        calls = 0

        def __init__(self, model, **kwargs):
            pass

        def run_keys(self, obs, keys, device=None):
            StandIn.calls += 1
            if StandIn.calls == stop_at:
                raise KeyboardInterrupt
            noise = np.asarray(jax.vmap(lambda k: jax.random.normal(k, (19,)))(keys))
            one = np.ones(len(obs))
            return {
                "latent": {n: obs[:, :1] + (i + 1) * noise for i, n in enumerate(names)},
                **{k: one for k in ("diverging", "mean_steps", "max_steps", "accept")},
                **{k: one for k in ("step_size", "start_potential")},
            }

    def simulate(model, key, n):
        rng = np.random.default_rng(0)
        return {"latent": {k: rng.normal(size=n) for k in names}, "obs": rng.normal(size=(n, 3))}

    monkeypatch.setattr(sbc, "BatchedNUTS", StandIn)
    monkeypatch.setattr(
        sbc, "simulate_datasets", lambda m, k, n: {**simulate(m, k, n), "redrawn": 0}
    )
    fit = SimpleNamespace(model=None, problem=SimpleNamespace(measurement_ids=["m"], solved=[0]))
    settings = SBCSettings(simulations=10, batch=4, draws=38, thin=2, bins=4)
    stop_at = 0
    whole = sbc.run_sbc(settings, progress=False, fit=fit)
    assert not whole["partial"] and len(whole["ranks"]["raw_a"]) == 10

    path = tmp_path / "sbc.progress.pkl"
    StandIn.calls, stop_at = 0, 2  # the second batch is interrupted
    with pytest.raises(KeyboardInterrupt):
        sbc.run_sbc(settings, progress=False, fit=fit, progress_file=path)
    partial = sbc.run_sbc(settings, progress=False, fit=fit, progress_file=path, fit_more=False)
    assert partial["partial"] and len(partial["ranks"]["raw_a"]) == 4
    assert partial["ranks"]["raw_a"] == whole["ranks"]["raw_a"][:4]
    StandIn.calls, stop_at = 0, 0
    resumed = sbc.run_sbc(settings, progress=False, fit=fit, progress_file=path)
    assert StandIn.calls == 2  # batches 2 and 3 only
    for key in ("ranks", "tests", "truth", "posterior_mean", "calibrated", "partial"):
        assert resumed[key] == whole[key], key


def test_sbc_cli_does_not_overwrite_an_unfinished_run(tmp_path, capsys):
    from infer.cli import main

    out = tmp_path / "sbc"
    (tmp_path / "sbc.progress.pkl").write_bytes(b"datasets of an unfinished run")
    assert main(["sbc", "--out", str(out)]) == 2
    assert "pass --resume to continue" in capsys.readouterr().err
    assert not out.exists()


def test_sbc_cli_rejects_bad_settings_without_writing(tmp_path, capsys):
    from infer.cli import main

    out = tmp_path / "sbc"
    assert main(["sbc", "--simulations", "0", "--out", str(out)]) == 2
    assert "simulations must be a positive integer" in capsys.readouterr().err
    assert not out.exists()


# ------------------------------------------------------------------------------ the report
def test_descend_reaches_the_minimum_and_steps_back_from_non_finite_values():
    import jax
    import jax.numpy as jnp

    from infer.sbc import descend

    def bowl(z):  # minimum at a = 1, b = -2; non-finite for a > 1.5
        a, b = z["a"], z["b"]
        return jnp.where(a > 1.5, jnp.nan, (a - 1.0) ** 2 + 10.0 * (b + 2.0) ** 2)

    start = {"a": jnp.asarray(-3.0), "b": jnp.asarray(2.0)}
    best, value = jax.jit(lambda z: descend(bowl, z, 400, 0.2))(start)
    assert float(value) < 1e-3 and abs(float(best["a"]) - 1.0) < 0.05
    assert float(value) == pytest.approx(float(bowl(best)))
    # no steps: the start and its potential
    same, v0 = descend(bowl, start, 0, 0.2)
    assert same is start and float(v0) == float(bowl(start))


def test_lowest_ess_flags_a_chain_that_never_moved():
    from infer.sbc import lowest_ess

    rng = np.random.default_rng(0)
    mixing = rng.normal(size=(1, 49))
    stuck = np.full((1, 49), 0.3)
    sticky = np.repeat(rng.normal(size=(1, 7)), 7, axis=1)  # 7 values, each held 7 draws
    draws = {"a": np.concatenate([mixing, stuck, sticky]), "b": rng.normal(size=(3, 49))}
    ess = lowest_ess(draws)
    assert ess[1] == 0.0  # arviz alone reports 48 for a constant chain
    assert ess[0] > 4.9 and 0.0 < ess[2] < ess[0]


def _synthetic_result(rng, n_sim=60, draws=38, thin=2, bins=5, biased=False):
    """A results dict shaped like run_sbc's, from a conjugate normal toy whose posterior is
    exact (calibrated) or shifted by one posterior SD (biased)."""
    from infer.sbc import ranks, uniformity

    n_draws = draws // thin
    truth = rng.normal(size=n_sim)
    obs = truth + rng.normal(size=n_sim)  # y ~ N(theta, 1), theta ~ N(0, 1)
    mean, sd = obs / 2 + (np.sqrt(0.5) if biased else 0.0), np.sqrt(0.5)
    post = mean[:, None] + sd * rng.normal(size=(n_sim, n_draws))
    rk = ranks({"raw_a": truth}, {"raw_a": post})
    tests = {"raw_a": uniformity(rk["raw_a"], n_draws + 1, bins)}
    settings = dict(
        SBCSettings(simulations=n_sim, batch=n_sim, draws=draws, thin=thin, bins=bins).__dict__
    )
    return {
        "settings": settings,
        "latents": ["raw_a"],
        "measurements": ["m1", "m2"],
        "n_solved_conditions": 2,
        "seconds_simulate": 1.0,
        "seconds_nuts": 2.0,
        "redrawn_truths": 0,
        "ranks": {"raw_a": rk["raw_a"].tolist()},
        "tests": tests,
        "alpha": 0.01,
        "bonferroni_threshold": 0.01,
        "calibrated": tests["raw_a"]["p_value"] > 0.01,
        "divergent_transitions": 0,
        "datasets_with_divergences": 0,
        "mean_leapfrog_steps": 3.0,
        "max_leapfrog_steps": 7,
        "mean_accept": 0.9,
        "truth": {"raw_a": truth.tolist()},
        "posterior_mean": {"raw_a": post.mean(axis=1).tolist()},
        "posterior_sd": {"raw_a": post.std(axis=1).tolist()},
    }


def test_histogram_band_and_ecdf_difference_match_the_binomial():
    from scipy import stats

    from infer.sbc_report import ecdf_difference, histogram_band

    lo, hi = histogram_band(100, 10, level=0.99)
    assert stats.binom.cdf(hi, 100, 0.1) - stats.binom.cdf(lo - 1, 100, 0.1) >= 0.99
    assert lo < 10 < hi
    # every rank 0..19 once each: the ECDF is exactly uniform, the difference is zero
    z, d, blo, bhi = ecdf_difference(np.arange(20), 20)
    assert z[-1] == 1.0 and np.allclose(d, 0.0)
    assert np.all(blo <= 1e-12) and np.all(bhi >= -1e-12)


def test_zscore_and_contraction_of_a_conjugate_toy():
    from infer.sbc_report import zscore_contraction

    res = _synthetic_result(np.random.default_rng(1), n_sim=400)
    z, c = zscore_contraction(res, "raw_a")
    # posterior variance 1/2 of a unit prior: contraction about 0.5, z-scores about N(0, 1)
    assert abs(np.median(c) - 0.5) < 0.1
    assert abs(np.mean(z)) < 0.15 and abs(np.std(z) - 1.0) < 0.15


@pytest.mark.parametrize("biased", [False, True])
def test_report_renders_verdict_and_figures(tmp_path, biased):
    from infer.sbc_report import write_report

    res = _synthetic_result(np.random.default_rng(2), n_sim=300, biased=biased)
    path = write_report(res, tmp_path / "sbc")
    text = path.read_text()
    assert ("Calibration HOLDS" in text) != biased
    assert "Per dataset" not in text  # results from before per-dataset health was recorded
    assert ("failing: a" in text) == biased
    for stem in ("sbc_rank_histograms", "sbc_ecdf_difference", "sbc_zscore_contraction"):
        for ext in ("png", "pdf"):
            assert (tmp_path / "sbc" / f"{stem}.{ext}").stat().st_size > 1000
        assert f"({stem}.png)" in text
    assert json.loads((tmp_path / "sbc" / "sbc.json").read_text())["ranks"] == res["ranks"]


def test_report_names_the_datasets_whose_chain_barely_moved(tmp_path):
    from infer.sbc_report import write_report

    res = _synthetic_result(np.random.default_rng(3), n_sim=40)
    res["settings"].update(init_steps=1000, init_learning_rate=0.05)
    ess = np.full(40, 15.0)
    ess[[3, 17]] = [0.0, 1.5]  # of 19 thinned draws: below a tenth (1.9)
    res.update(lowest_ess=ess.tolist(), step_size=[0.1] * 40, start_potential=[1.0] * 40)
    res["partial"] = True
    res["settings"]["simulations"] = 100
    text = write_report(res, tmp_path / "sbc").read_text()
    assert "**PARTIAL: 40 of 100 datasets fitted.**" in text
    assert "1000 Adam steps (learning rate 0.05)" in text
    assert "2 datasets fall below 1.9 (a tenth of the draws): 3, 17." in text


def test_sbc_report_cli_rejects_bad_results_without_writing(tmp_path, capsys):
    from infer.cli import main

    out = tmp_path / "report"
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert main(["sbc-report", str(bad), "--out", str(out)]) == 2
    assert "not valid JSON" in capsys.readouterr().err
    bad.write_text(json.dumps({"settings": {}}))
    assert main(["sbc-report", str(bad), "--out", str(out)]) == 2
    assert "missing latents" in capsys.readouterr().err
    assert main(["sbc-report", str(tmp_path / "nope.json"), "--out", str(out)]) == 2
    assert "no such file" in capsys.readouterr().err
    assert not out.exists()


def test_chebyshev_excess_counts_finite_zscores_and_tests_against_one_ninth():
    from scipy import stats

    from infer.sbc_report import chebyshev_excess

    z = np.array([0.1, -3.5, 4.0, np.nan, 0.0, 2.9, -0.2, 3.01, 1.0, -1.0])
    k, n, p = chebyshev_excess(z)
    assert (k, n) == (3, 9)
    assert p == pytest.approx(stats.binom.sf(2, 9, 1 / 9))
    # far more than 1/9 beyond 3 SD: a small p; none beyond: p = 1
    assert chebyshev_excess(np.r_[np.full(30, 5.0), np.zeros(30)])[2] < 1e-6
    assert chebyshev_excess(np.zeros(50))[2] == pytest.approx(1.0)


_DEVICES_NUTS_SCRIPT = """
import jax, jax.numpy as jnp, numpy as np
jax.config.update("jax_enable_x64", True)
from infer.sbc import BatchedNUTS

class Toy:  # z ~ N(obs, 0.5^2) per coordinate: each dataset has its own target
    def potential_gen(self):
        def gen(obs):
            return lambda z: 2.0 * jnp.sum((z["a"] - obs) ** 2)
        return gen, {"a": jnp.zeros(3)}
    def constrain(self, z):
        return z

devices = jax.devices()
assert len(devices) == 2
nuts = BatchedNUTS(Toy(), warmup=30, draws=20, init_steps=5)
obs = jnp.arange(12.0).reshape(4, 3) / 10
keys = jax.random.split(jax.random.PRNGKey(1), 4)
whole = nuts.run_keys(obs, keys)
halves = [nuts.run_keys(obs[i : i + 2], keys[i : i + 2], devices[i // 2]) for i in (0, 2)]
a = np.concatenate([h["latent"]["a"] for h in halves])
np.testing.assert_allclose(a, whole["latent"]["a"], rtol=1e-10, atol=1e-12)
assert a.shape == (4, 20, 3)
np.testing.assert_allclose(a.mean(axis=1), np.asarray(obs), atol=0.6)
print("ok")
"""


def test_batched_nuts_gives_each_dataset_the_same_draws_on_any_device_and_in_any_batch():
    """Fitting datasets two at a time, on two (forced host) devices, gives each dataset the
    draws it gets in one batch of four on the default device: what lets the SBC run cut its
    batches into pieces for idle devices without changing the result."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from models.xla_flags import force_host_devices

    env = dict(os.environ)
    force_host_devices(2, env)
    env["JAX_PLATFORMS"] = "cpu"
    proc = subprocess.run(
        [sys.executable, "-c", _DEVICES_NUTS_SCRIPT],
        cwd=Path(__file__).resolve().parents[1],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0 and "ok" in proc.stdout, proc.stderr[-4000:]


def test_in_order_on_devices_yields_in_task_order_and_stops_after_an_error():
    """Workers (one per device) finish tasks out of order; results come back in task order;
    after a failed task no new task starts, and the error is raised at its turn."""
    import threading
    import time as time_

    from infer.sbc import in_order_on_devices

    started = []
    lock = threading.Lock()

    def run(task, device):
        with lock:
            started.append(task)
        time_.sleep(0.05 if task % 2 == 0 else 0.01)  # even tasks slower
        return (task, device)

    out = list(in_order_on_devices(run, list(range(7)), ["d0", "d1"]))
    assert [t for t, _ in out] == list(range(7))
    assert {d for _, d in out} == {"d0", "d1"}

    started.clear()

    def failing(task, device):
        with lock:
            started.append(task)
        if task == 1:
            raise ValueError("bad piece")
        time_.sleep(0.02)
        return task

    got = []
    with pytest.raises(ValueError, match="bad piece"):
        for r in in_order_on_devices(failing, list(range(10)), ["d0"]):
            got.append(r)
    time_.sleep(0.1)
    assert got == [0] and started == [0, 1]  # nothing started after the failure
