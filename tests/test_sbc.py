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

    settings = SBCSettings(simulations=12, batch=12, warmup=100, draws=98, thin=2, bins=7)
    out = run_sbc(settings, progress=False)
    assert out["redrawn_truths"] <= 12
    assert set(out["latents"]) >= {"raw_K_T", "raw_bdnf_ref_nM", "raw_g_FG"}
    assert all(len(r) == 12 for r in out["ranks"].values())
    assert out["calibrated"], out["tests"]


def test_sbc_cli_rejects_bad_settings_without_writing(tmp_path, capsys):
    from infer.cli import main

    out = tmp_path / "sbc"
    assert main(["sbc", "--simulations", "0", "--out", str(out)]) == 2
    assert "simulations must be a positive integer" in capsys.readouterr().err
    assert not out.exists()


# ------------------------------------------------------------------------------ the report
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
    assert ("failing: a" in text) == biased
    for stem in ("sbc_rank_histograms", "sbc_ecdf_difference", "sbc_zscore_contraction"):
        for ext in ("png", "pdf"):
            assert (tmp_path / "sbc" / f"{stem}.{ext}").stat().st_size > 1000
        assert f"({stem}.png)" in text
    assert json.loads((tmp_path / "sbc" / "sbc.json").read_text())["ranks"] == res["ranks"]


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
