"""The identifiability report: prior geometry (fast), rendering and CLI errors (fast), and the
local analysis of a small fit (slow)."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest

from infer.identify import (
    _prior_logpdf_w,
    prior_curvature,
    prior_sd,
    render_markdown,
    write_report,
)


def _toy_model(sigma_scale=0.3, centre=5.0):
    return SimpleNamespace(
        config=SimpleNamespace(sigma_prior_scale=sigma_scale),
        problem=SimpleNamespace(scale_centres=np.array([centre])),
        scale_names=("scale_x",),
    )


@pytest.mark.parametrize("name", ["raw_K_T", "sigma_K_T", "scale_x"])
@pytest.mark.parametrize("w", [-2.0, -0.5, 1.3])
def test_prior_curvature_is_the_second_derivative_of_the_slice_prior(name, w):
    model = _toy_model()
    h = 1e-4
    f = _prior_logpdf_w(model, name, np.array([w - h, w, w + h]))
    fd = -(f[0] - 2 * f[1] + f[2]) / h**2
    assert prior_curvature(model, name, w) == pytest.approx(fd, rel=1e-5)


@pytest.mark.parametrize("scale", [0.1, 0.3, 2.0])
def test_prior_sd_is_the_laplace_width_at_the_prior_mode(scale):
    model = _toy_model(sigma_scale=scale)
    # log sigma's prior peaks at log(scale): zero slope there, curvature 1 / prior_sd^2
    w0 = math.log(scale)
    h = 1e-5
    f = _prior_logpdf_w(model, "sigma_a", np.array([w0 - h, w0 + h]))
    assert abs(f[1] - f[0]) / (2 * h) < 1e-6
    assert prior_sd(model, "sigma_a") == pytest.approx(
        prior_curvature(model, "sigma_a", w0) ** -0.5
    )
    assert prior_sd(model, "raw_a") == 1.0
    assert prior_sd(model, "scale_x") == 2.0


def _synthetic_result(contractions=(0.95, 0.5, 0.02)):
    names = ["raw_a", "sigma_a", "scale_x"][: len(contractions)]
    rows, slices = [], {}
    for n, c in zip(names, contractions, strict=True):
        sd = math.sqrt(1 - c)
        rows.append(
            {
                "latent": n,
                "parameter": n.removeprefix("raw_"),
                "kind": "free" if n.startswith("raw_") else n.split("_")[0],
                "mode_w": 0.1,
                "mode": 1.1,
                "laplace_90": [0.5, 2.0],
                "prior_sd_w": 1.0,
                "posterior_sd_w": sd,
                "contraction": c,
                "conditional_sd_w": sd,
                "marginal_over_conditional": 1.0,
                "data_curvature_share": c,
            }
        )
        grid = np.linspace(-3 * sd, 3 * sd, 7) + 0.1
        slices[n] = {
            "w": grid.tolist(),
            "dlogpost": (-0.5 * ((grid - 0.1) / sd) ** 2).tolist(),
            "dlogprior": (-0.5 * grid**2 + 0.005).tolist(),
        }
    k = len(names)
    return {
        "config": "[population]\nneurons = 1\n",
        "datasets": ["d1", "d2"],
        "n_measurements": 5,
        "n_constraints": 1,
        "mode": {
            "neg_log_posterior": 1.0,
            "adam_neg_log_posterior": 1.5,
            "grad_norm": 1e-4,
            "polish_iterations": 3,
            "polish_message": "CONVERGENCE",
            "seconds": 1.0,
        },
        "hessian_asymmetry": 1e-6,
        "positive_definite": True,
        "n_informed_directions": 1,
        "n_prior_dominated_directions": 1,
        "parameters": rows,
        "correlation": np.eye(k).tolist(),
        "names": [r["parameter"] for r in rows],
        "top_correlations": [["a", "sigma_a", 0.3]],
        "directions": [
            {"eigenvalue": 1.0 / (1 - c), "loadings": [[r["parameter"], 1.0]]}
            for c, r in sorted(zip(contractions, rows, strict=True), key=lambda t: t[0])
        ],
        "slices": slices,
        "seconds": 2.0,
        "device": "cpu:0",
    }


def test_markdown_sorts_parameters_by_what_the_data_inform():
    text = render_markdown(_synthetic_result(), {"Contraction": "c.png"})
    assert "* **well informed** (1): a" in text
    assert "* **partly informed** (1): sigma_a" in text
    assert "* **prior-dominated** (1): scale_x" in text
    assert "![Contraction](c.png)" in text
    assert "NUTS contraction" not in text


def test_report_writes_every_figure_and_the_json(tmp_path):
    res = _synthetic_result()
    res["nuts"] = {
        "file": "runs/demo/posterior.nc",
        "passed_diagnostics": False,
        "failed_checks": ["bulk ESS"],
        "contraction": {"a": 0.9, "sigma_a": 0.4, "scale_x": 0.0},
        "ess_bulk": {"a": 50.0, "sigma_a": 40.0, "scale_x": 60.0},
    }
    path = write_report(res, tmp_path / "ident")
    text = path.read_text()
    assert "NUTS contraction" in text and "FAILS its diagnostics (bulk ESS)" in text
    for stem in ("contraction", "correlation", "slices", "eigen"):
        for ext in ("png", "pdf"):
            assert (tmp_path / "ident" / f"identifiability_{stem}.{ext}").stat().st_size > 1000
        assert f"(identifiability_{stem}.png)" in text
    assert json.loads((tmp_path / "ident" / "identifiability.json").read_text()) == res


def test_a_failing_report_leaves_the_previous_one_whole(tmp_path):
    out = tmp_path / "ident"
    write_report(_synthetic_result(), out)
    before = sorted(p.name for p in out.iterdir())
    broken = _synthetic_result()
    del broken["slices"]["sigma_a"]
    with pytest.raises(KeyError):
        write_report(broken, out)
    assert sorted(p.name for p in out.iterdir()) == before
    assert [p.name for p in tmp_path.iterdir()] == ["ident"]


def test_identify_cli_rejects_bad_input_without_writing(tmp_path, capsys):
    from infer.cli import main

    out = tmp_path / "ident"
    missing = tmp_path / "nope" / "posterior.nc"
    assert main(["identify", "--out", str(out), "--posterior", str(missing)]) == 2
    assert "--posterior" in capsys.readouterr().err
    assert main(["identify", "--out", str(out), "--map-starts", "0"]) == 2
    assert "map_starts must be a positive integer" in capsys.readouterr().err
    assert main(["identify", "--out", str(out), "--rtol", "-1"]) == 2
    assert "rtol must be a positive number" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.slow
def test_local_analysis_of_a_small_fit_is_self_consistent():
    """One neuron, two free parameters: the polished mode is stationary, the Hessian (finite
    differences of the adjoint gradient in z, mapped to w) agrees with the curvature of the
    log posterior evaluated directly on a fine w-grid through the mode."""
    import jax

    from infer.config import load_config
    from infer.fit import Fit
    from infer.fit_cli import DEFAULT_CONFIG
    from infer.identify import LocalAnalysis

    config = load_config(DEFAULT_CONFIG).replace(
        neurons=1, free=("K_T", "g_FG"), map_starts=1, map_steps=20
    )
    la = LocalAnalysis(Fit.create(config))
    mode = la.find_mode(config, jax.random.PRNGKey(0))
    assert mode["grad_norm"] < 1e-2, mode
    h_z, asym = la.hessian(mode["z"])
    assert asym < 1e-3
    w, h_v = la.whitened(mode["z"], h_z)
    h_w = h_v / np.outer(la.prior_sd, la.prior_sd)
    assert np.all(np.linalg.eigvalsh(h_w) > 0)
    steps = 0.05 / np.sqrt(np.diag(h_w))  # 1/20 of a conditional SD
    cuts = la.slices(w, 2 * steps, points=5)
    for i, n in enumerate(la.names):
        f = np.asarray(cuts[n]["dlogpost"])
        curvature = -(f[1] - 2 * f[2] + f[3]) / steps[i] ** 2
        assert curvature == pytest.approx(h_w[i, i], rel=0.05), n
