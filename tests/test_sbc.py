"""Simulation-based calibration: the rank statistic and its test (fast), and a quick SBC of the
reduced population model (slow)."""

from __future__ import annotations

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

    out = tmp_path / "sbc.json"
    assert main(["sbc", "--simulations", "0", "--out", str(out)]) == 2
    assert "simulations must be a positive integer" in capsys.readouterr().err
    assert not out.exists()
