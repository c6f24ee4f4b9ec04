"""The benchmark report's target table (pure Python on result records, no JAX)."""

from __future__ import annotations

from benchmarks.report import targets


def _gradient_record(ratio: float, finite: bool) -> dict:
    return {
        "case": "gradient",
        "variant": "log_likelihood",
        "status": "ok",
        "solver": "tsit5",
        "n_neurons": 1024,
        "gradient_over_forward": ratio,
        "gradient_finite": finite,
    }


def test_gradient_target_met_only_by_a_finite_gradient():
    fast_nan, fast_ok, slow_ok = (
        _gradient_record(3.0, False),
        _gradient_record(3.0, True),
        _gradient_record(5.0, True),
    )
    rows = targets([fast_nan, fast_ok, slow_ok], [])
    grad_rows = [r for r in rows if r["target"].startswith("gradient")]
    assert [r["met"] for r in grad_rows] == [False, True, False]
    assert "NOT finite" in grad_rows[0]["measured"]
    assert "NOT finite" not in grad_rows[1]["measured"]
