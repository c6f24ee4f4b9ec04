"""Diagnostics report and figures from a small synthetic InferenceData following the contract.

No model solve: posteriors, predictions and sampler statistics are drawn with numpy, so each
failure mode (disagreeing chains, divergences, saturated trees, failed solves) can be injected.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import xarray as xr

az = pytest.importorskip("arviz")

from infer import diagnostics, figures  # noqa: E402
from infer.diagnostics import Thresholds, diagnose, write_report  # noqa: E402

FREE = {  # name: (prior median, prior sd on the log/logit scale, transform)
    "k_B": (0.5, 0.7, "log"),
    "h_K": (2.0, 0.5, "log"),
    "ic50_ketamine": (1.0, 1.0, "log"),
    "f_glun2b": (0.5, 1.0, "logit"),
    "g_fb": (1.0, 0.8, "log"),
}
SIGMA = ["sigma_k_B"]
NUISANCE = ["scale_fig7c"]


def _measurements():
    """(id, dataset, readout, condition, time_h, normalisation) for three dataset layouts."""
    rows = []
    for i, t in enumerate([0.0, 0.5, 2.0, 5.0, 10.0, 30.0]):  # a time course
        rows.append(
            (
                f"AK{i:02d}",
                "akt_timecourse",
                "p_Akt",
                "vehicle + BDNF 2 nM, rat, cultured neurons, wild type",
                t,
                "relative_to_reference",
            )
        )
    for i, cond in enumerate(
        [
            "vehicle + baclofen, mouse, cultured neurons, wild type",  # categorical
            "ethanol 30000 uM bath + baclofen, mouse, cultured neurons, wild type",
            "vehicle + baclofen, mouse, cultured neurons, Fmr1 KO",
            "ethanol 30000 uM bath + baclofen, mouse, cultured neurons, Fmr1 KO",
        ]
    ):
        rows.append((f"GB{i:02d}", "fig7c", "baclofen_ca", cond, 2.0, "arbitrary_scale"))
    for i, (ro, gen) in enumerate(
        [(r, g) for g in ("wild type", "Fmr1 KO") for r in ("GABABR1", "GABABR2")]
    ):
        rows.append(
            (
                f"GR{i:02d}",
                "fig5ac",
                ro,
                f"ethanol 2500 mg/kg i.p., mouse, synaptoneurosomes, {gen}",
                30.0,
                "fold_vs_vehicle",
            )
        )
    for i, dose in enumerate([0.3, 1, 3, 5, 10, 20, 30, 50]):  # a dose series: rotated labels
        rows.append(
            (
                f"DS{i:02d}",
                "dose_series",
                "spine_density",
                f"ketamine {dose:g} mg/kg i.p., mouse",
                24.0,
                "fold_vs_vehicle",
            )
        )
    rows.append(
        (
            "AO00",
            "single",
            "mEPSC_amplitude",
            "ketamine 10 mg/kg i.p., mouse",
            1.0,
            "fold_vs_vehicle",
        )
    )
    return rows


def synthetic_idata(
    *,
    chains=4,
    draws=500,
    seed=0,
    engine="nuts",
    rhat_fail=False,
    divergences=0,
    saturate=0.0,
    failed_draws=0,
    with_predictions=True,
    prediction_sample_dims=False,
):
    """A small InferenceData following the contract (see infer/diagnostics.py)."""
    rng = np.random.default_rng(seed)
    shape = (chains, draws)
    names = list(FREE) + SIGMA + NUISANCE

    def draw_params(n_chain, n_draw, contraction):
        z = rng.standard_normal((n_chain, n_draw, len(names)))
        z[..., 1] = 0.9 * z[..., 0] + np.sqrt(1 - 0.9**2) * z[..., 1]  # k_B, h_K ridge
        out = {}
        for j, n in enumerate(names):
            med, sd, tr = FREE.get(n, (0.3 if n.startswith("sigma") else 5.0, 0.5, "log"))
            s = sd * np.sqrt(1 - contraction[j])
            x = (
                np.log(med) + s * z[..., j]
                if tr == "log"
                else np.log(med / (1 - med)) + s * z[..., j]
            )
            out[n] = np.exp(x) if tr == "log" else 1 / (1 + np.exp(-x))
        return out

    contraction = np.array([0.95, 0.9, 0.02, 0.5, 0.3, 0.7, 0.99])
    post = draw_params(chains, draws, contraction)
    prior = draw_params(1, 1000, np.zeros(len(names)))
    if rhat_fail:  # chains disagree: shift chain 0 of k_B far away
        post["k_B"][0] *= 3.0

    meas = _measurements()
    n_meas = len(meas)
    times = np.array([m[4] for m in meas])
    columns = []
    for j, (_, _, readout, _, t, _) in enumerate(meas):
        if readout == "p_Akt":
            columns.append(1 + 2 * (1 - np.exp(-post["k_B"] * t)) * np.exp(-0.05 * t))
        elif readout == "baclofen_ca":
            columns.append(post["scale_fig7c"] * [-1.0, 1.0, 0.3, 0.4][j % 4])
        else:
            columns.append(1 + 0.05 * post["h_K"] * (1 + j % 5))
    pred = np.stack(columns, axis=-1)
    obs_sd = np.abs(pred.mean((0, 1))) * 0.1 + 0.05
    observed = pred.mean((0, 1)) + obs_sd * rng.standard_normal(n_meas)
    pp = pred + obs_sd * rng.standard_normal(pred.shape)
    prior_pred = np.stack([np.full((1, 1000), observed[j]) for j in range(n_meas)], axis=-1)
    prior_pred = prior_pred * np.exp(0.5 * rng.standard_normal(prior_pred.shape))
    loglik = -0.5 * ((pp - observed) / obs_sd) ** 2

    n_failed = np.zeros(shape, dtype=np.int64)
    n_failed.flat[:failed_draws] = 1
    max_depth = 8
    n_steps = rng.choice([7, 15, 31], size=shape)
    n_sat = int(round(saturate * chains * draws))
    n_steps.flat[:n_sat] = 2**max_depth - 1
    diverging = np.zeros(shape, dtype=bool)
    diverging.flat[:divergences] = True
    energy = rng.standard_normal(shape).cumsum(axis=1) * 0.02 + rng.standard_normal(shape)

    ids = [m[0] for m in meas]
    coords = {"measurement": ids}
    dims = {
        "pred": ["measurement"],
        "obs": ["measurement"],
        "obs_sd": ["measurement"],
        "time_h": ["measurement"],
        "readout": ["measurement"],
        "condition": ["measurement"],
        "dataset": ["measurement"],
        "normalisation": ["measurement"],
        "per_cell": ["measurement"],
    }
    posterior = dict(post, pred=pred, n_failed=n_failed)
    groups = dict(
        posterior=posterior,
        prior=prior,
        log_likelihood={"obs": loglik},
        posterior_predictive={"obs": pp},
        prior_predictive={"obs": prior_pred},
        observed_data={"obs": observed},
        constant_data={
            "obs_sd": obs_sd,
            "time_h": times,
            "readout": np.array([m[2] for m in meas]),
            "condition": np.array([m[3] for m in meas]),
            "dataset": np.array([m[1] for m in meas]),
            "normalisation": np.array([m[5] for m in meas]),
            "per_cell": np.array([m[5] == "arbitrary_scale" for m in meas]),
        },
    )
    if engine == "nuts":
        groups["sample_stats"] = {
            "diverging": diverging,
            "n_steps": n_steps,
            "energy": energy,
            "lp": rng.standard_normal(shape),
            "acceptance_rate": rng.uniform(0.7, 1, shape),
            # per chain, constant over draws (as after warm-up)
            "step_size": np.broadcast_to(np.array([0.1, 0.2, 0.3, 0.4])[: shape[0], None], shape),
        }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        idata = az.from_dict(**groups, coords=coords, dims=dims)
    if with_predictions:  # no chain/draw dims: evaluated at the posterior-median parameters
        eff = np.exp(
            0.1 * rng.standard_normal((200, 2, 4, 3))
            + np.array([0.3, -0.2, 0.0])[None, None, None, :]
            * np.array([0.2, 1.0, 0.8, 0.4])[None, None, :, None]
        )
        eff[..., 2] = np.log(eff[..., 2]) - 0.3  # a difference readout
        pcoords = {
            "neuron": np.arange(200),
            "condition": ["ketamine 10 mg/kg i.p., mouse", "ro25_6981 10 mg/kg i.p., mouse"],
            "time": [0.5, 2.0, 24.0, 72.0],
            "readout": ["spine_density", "p_eEF2", "baclofen_ca"],
        }
        pred_ds = xr.Dataset(
            {"neuron_effect": (("neuron", "condition", "time", "readout"), eff)}, coords=pcoords
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            idata.add_groups(predictions=pred_ds)
        if prediction_sample_dims:  # as az.from_dict-style writers give it: chain = draw = 1
            idata.predictions = idata.predictions.expand_dims(chain=1, draw=1)
    idata.attrs.update(
        {
            "engine": engine,
            "free_parameters": json.dumps(list(FREE)),
            "sigma_parameters": json.dumps(SIGMA),
            "nuisance_parameters": json.dumps(NUISANCE),
            "n_neurons": 200,
            "max_tree_depth": max_depth,
            "device": "cpu (synthetic)",
            "git_commit": "0" * 40,
            "package_versions": json.dumps({"arviz": az.__version__}),
            "data_checksums": json.dumps({"measurements.csv": "sha256:synthetic"}),
            "config": "[fit]\nengine = 'nuts'\n",
        }
    )
    return idata


@pytest.fixture(scope="module")
def good():
    return synthetic_idata()


def test_thresholds_validate():
    with pytest.raises(ValueError, match="rhat_max"):
        Thresholds(rhat_max=0.9)
    with pytest.raises(ValueError, match="fraction"):
        Thresholds(tree_depth_saturation_max=2.0)


def test_clean_run_passes(good, tmp_path):
    report = diagnose(good)
    assert report.passed, [c for c in report.checks if c.passed is False]
    t = report.parameters
    assert list(t.index) == list(FREE) + SIGMA + NUISANCE
    assert t.loc["f_glun2b", "transform"] == "logit" and t.loc["k_B", "transform"] == "log"
    assert t["r_hat"].max() < 1.01 and t["ess_bulk"].min() > 400
    # contraction on the log scale recovers the injected values
    assert t.loc["k_B", "contraction"] == pytest.approx(0.95, abs=0.03)
    assert t.loc["ic50_ketamine", "contraction"] == pytest.approx(0.02, abs=0.15)
    top = report.correlations.iloc[0]
    assert {top["a"], top["b"]} == {"k_B", "h_K"} and top["r"] > 0.8
    assert report.ebfmi is not None and report.ebfmi.shape == (4,)
    assert report.pred_mcse["mcse_rel"].max() < 0.05
    path = write_report(report, tmp_path / "report.md")
    text = path.read_text()
    assert text.startswith("# Inference diagnostics: PASS")
    assert "## What the data inform" in text and "`k_B`" in text and "## Thresholds" in text
    # each chain's tuning, so a chain that adapted an outlying step size is visible
    np.testing.assert_allclose(report.sampler["step_size"], [0.1, 0.2, 0.3, 0.4])
    assert "step size 0.1, 0.2, 0.3, 0.4; leapfrog steps per draw" in text


def test_report_lists_the_data_outside_their_predictive_band(tmp_path):
    """The coverage table: which data lie outside their 90 % posterior predictive interval
    (the predictive figure's light band), counted against the 10 % a calibrated model leaves."""
    idata = synthetic_idata(draws=200)
    pp = idata.posterior_predictive["obs"].values.reshape(-1, idata.observed_data["obs"].size)
    lo, hi = np.quantile(pp, [0.05, 0.95], axis=0)
    inside = (lo + hi) / 2
    inside[3] = hi[3] + 10 * (hi[3] - lo[3])  # one datum far above its band
    idata.observed_data["obs"].values[:] = inside
    report = diagnose(idata, Thresholds(ess_bulk_min=100, ess_tail_min=100))
    cov = report.coverage
    mid = str(idata.observed_data["obs"]["measurement"].values[3])
    assert list(cov.index[~cov["inside"]]) == [mid]
    np.testing.assert_allclose(cov["lo"], lo)
    np.testing.assert_allclose(cov["hi"], hi)
    text = write_report(report, tmp_path / "report.md").read_text()
    n = len(inside)
    assert f"1 of {n} measurements lie outside their central 90 % posterior predictive" in text
    assert f"| `{mid}` |" in text.split("## Posterior predictive coverage")[1]


@pytest.mark.parametrize(
    "kwargs, check",
    [
        ({"rhat_fail": True}, "R-hat"),
        ({"divergences": 3}, "divergent"),
        ({"saturate": 0.05}, "tree-depth"),
        ({"failed_draws": 2}, "failed ODE"),
    ],
)
def test_injected_failures_fail(kwargs, check, tmp_path):
    report = diagnose(
        synthetic_idata(draws=200, **kwargs), Thresholds(ess_bulk_min=100, ess_tail_min=100)
    )
    failed = [c.name for c in report.failed_checks]
    assert any(check in name for name in failed), failed
    text = write_report(report, tmp_path / "report.md").read_text()
    assert text.startswith("# Inference diagnostics: FAIL")


def test_svi_and_map_say_convergence_does_not_apply(tmp_path):
    svi = diagnose(synthetic_idata(engine="svi", chains=1, draws=1000, with_predictions=False))
    assert not svi.convergence_applicable and svi.passed
    assert all(c.passed is None for c in svi.checks if "R-hat" in c.name or "E-BFMI" in c.name)
    text = write_report(svi, tmp_path / "svi.md").read_text()
    assert "Engine `svi`: MCMC convergence diagnostics do not apply" in text
    mp = synthetic_idata(engine="map", chains=1, draws=1, with_predictions=False)
    report = diagnose(mp)
    assert report.engine == "map" and not report.convergence_applicable
    assert "do not apply" in write_report(report, tmp_path / "map.md").read_text()
    paths = figures.make_figures(mp, tmp_path / "map_figs")
    assert paths and all(p.exists() for p in paths)
    assert not any("trace" in p.name or "rank" in p.name for p in paths)


def test_figures_png_pdf_and_netcdf_round_trip(good, tmp_path):
    nc = tmp_path / "run" / "posterior.nc"
    nc.parent.mkdir()
    small = good.sel(draw=slice(0, 100))
    small.to_netcdf(nc)
    paths = figures.plot_run(nc.parent)
    stems = {p.stem for p in paths}
    assert {
        "predictive",
        "posterior_vs_prior",
        "pairs",
        "neuron_distribution",
        "trace",
        "rank",
    } <= stems
    for stem in stems:
        for ext in (".png", ".pdf"):
            f = nc.parent / "figures" / f"{stem}{ext}"
            assert f.is_file() and f.stat().st_size > 1000, f
    report = diagnostics.diagnose_run(nc.parent)
    assert report == nc.parent / "report.md" and report.read_text().startswith(
        "# Inference diagnostics"
    )


def test_missing_run_file_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="posterior.nc"):
        diagnostics.diagnose_run(tmp_path)


def test_neuron_distribution_accepts_singleton_sample_dims(tmp_path):
    idata = synthetic_idata(chains=1, draws=20, prediction_sample_dims=True)
    assert idata.predictions["neuron_effect"].dims[:2] == ("chain", "draw")
    paths = figures.plot_neuron_distribution(idata, tmp_path)
    assert [p.suffix for p in paths] == [".png", ".pdf"]
