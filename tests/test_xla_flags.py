"""The XLA CPU flags (models/xla_flags.py): set as documented, and NaN/inf survive.

The whole suite runs under the flags (tests/conftest.py), so the solver tests (e.g. the
pathological neuron that fails alone in test_models_population.py) check the finiteness
guards under them; here the flag handling itself and the IEEE checks in a jitted program."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from models.xla_flags import (
    FAST_MATH_FLAGS,
    FUSION_EMITTER_FLAGS,
    SMALL_LOOP_FLAGS,
    force_host_devices,
    use_cpu_flags,
)

ALL = [*FAST_MATH_FLAGS, *FUSION_EMITTER_FLAGS, *SMALL_LOOP_FLAGS]


def test_flags_are_added_once_after_the_users_own():
    env = {"XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    assert use_cpu_flags(env, jaxlib_series="0.10") == ALL
    assert env["XLA_FLAGS"].split() == ["--xla_force_host_platform_device_count=2", *ALL]
    assert use_cpu_flags(env, jaxlib_series="0.10") == []  # idempotent
    assert env["XLA_FLAGS"].split().count("--xla_cpu_enable_fast_math=true") == 1
    empty: dict[str, str] = {}
    assert use_cpu_flags(empty, jaxlib_series="0.10") == ALL
    assert empty["XLA_FLAGS"].split() == ALL


def test_a_users_setting_wins():
    env = {"XLA_FLAGS": "--xla_cpu_enable_fast_math=false"}
    assert use_cpu_flags(env, jaxlib_series="0.10") == [*FUSION_EMITTER_FLAGS, *SMALL_LOOP_FLAGS]
    assert env["XLA_FLAGS"].split() == [
        "--xla_cpu_enable_fast_math=false",
        *FUSION_EMITTER_FLAGS,
        *SMALL_LOOP_FLAGS,
    ]
    env = {"XLA_FLAGS": "--xla_cpu_use_fusion_emitters=true"}
    assert use_cpu_flags(env, jaxlib_series="0.10") == [*FAST_MATH_FLAGS, *SMALL_LOOP_FLAGS]
    assert "--xla_cpu_use_fusion_emitters=false" not in env["XLA_FLAGS"]
    # a user's own backend options (a comma-separated list) are left as they are
    own = "--xla_backend_extra_options=xla_cpu_small_while_loop_byte_threshold=0"
    env = {"XLA_FLAGS": own}
    assert use_cpu_flags(env, jaxlib_series="0.10") == [*FAST_MATH_FLAGS, *FUSION_EMITTER_FLAGS]
    assert env["XLA_FLAGS"].split().count(own) == 1
    assert not set(SMALL_LOOP_FLAGS) & set(env["XLA_FLAGS"].split())


def test_the_version_specific_flags_only_for_a_tested_jaxlib():
    # XLA aborts on a flag it does not know: an untested jaxlib gets only the fast-math flags
    env: dict[str, str] = {}
    assert use_cpu_flags(env, jaxlib_series="0.99") == list(FAST_MATH_FLAGS)
    assert use_cpu_flags({}, jaxlib_series=None) in (list(FAST_MATH_FLAGS), ALL)


def test_this_process_runs_under_the_flags_and_keeps_ieee_checks():
    flags = set(os.environ.get("XLA_FLAGS", "").split())
    assert set(FAST_MATH_FLAGS) <= flags
    assert set(FUSION_EMITTER_FLAGS) <= flags  # the installed jaxlib is a tested one
    assert set(SMALL_LOOP_FLAGS) <= flags

    @jax.jit
    def guard(x):
        y = jnp.log(x) * x  # NaN for x < 0, -inf * 0 = NaN at 0, inf at inf
        ok = jnp.isfinite(y)
        return ok, jnp.where(ok, y, 0.0), jnp.sum(y)

    x = jnp.asarray([1.0, -1.0, 0.0, np.inf, 2.0])
    ok, safe, total = guard(x)
    assert np.asarray(ok).tolist() == [True, False, False, False, True]
    assert np.isfinite(np.asarray(safe)).all()
    assert np.isnan(float(total))


def test_host_device_count_replaces_an_earlier_one_and_keeps_other_flags():
    env = {"XLA_FLAGS": "--xla_force_host_platform_device_count=8 --xla_cpu_enable_fast_math=false"}
    force_host_devices(2, env)
    assert env["XLA_FLAGS"].split() == [
        "--xla_cpu_enable_fast_math=false",
        "--xla_force_host_platform_device_count=2",
    ]
    with pytest.raises(ValueError, match=">= 1"):
        force_host_devices(0, env)


def test_both_command_line_entry_points_set_the_flags_before_running(monkeypatch):
    """``python -m infer`` and the ``homeoplast`` console script (pyproject) both go through
    ``infer.cli.run``, which sets the flags and then runs the command."""
    import tomllib
    from pathlib import Path

    from infer import cli

    root = Path(__file__).resolve().parents[1]
    scripts = tomllib.loads((root / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["homeoplast"] == "infer.cli:run"
    assert "raise SystemExit(run())" in (root / "infer" / "__main__.py").read_text()
    seen = []
    monkeypatch.setenv("XLA_FLAGS", "")
    monkeypatch.setattr(cli, "main", lambda: seen.append(os.environ["XLA_FLAGS"]) or 0)
    assert cli.run() == 0
    assert "--xla_cpu_enable_fast_math=true" in seen[0].split()
