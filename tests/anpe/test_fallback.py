"""The NUTS fallback of catalogue inference: triggers, refits, and what each row reports."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from sedflow_jax.anpe.fallback import FallbackConfig, best_chi2, fallback_nuts_config, fluxes_from_x, select_rows


def test_fluxes_from_x_inverts_magnitudes():
    x = np.zeros((1, 11))
    x[0, :5] = [18.0, 17.0, 16.5, 16.2, 16.0]
    x[0, 5:10] = 0.01
    f, ivar = fluxes_from_x(x)
    np.testing.assert_allclose(22.5 - 2.5 * np.log10(f[0]), x[0, :5], atol=1e-12)
    np.testing.assert_allclose(1 / np.sqrt(ivar[0]), f[0] * np.log(10) / 2.5 * 0.01, rtol=1e-12)


def test_best_chi2_zero_for_the_true_parameters():
    import jax.numpy as jnp

    from sedflow_jax.model import ProvabgsModel

    m = ProvabgsModel.build(z_max=0.2)
    theta = np.array([10.8, 0.30, 0.35, 0.20, 0.15, 0.05, 1.5, 6e-3, 4e-3, 0.5, 0.4, -0.3])
    flux = np.asarray(m(jnp.asarray(theta, m.dtype), jnp.asarray(0.08, m.dtype)), np.float64)
    x = np.r_[22.5 - 2.5 * np.log10(flux), np.full(5, 0.02), 0.08][None]
    other = theta.copy()
    other[0] += 0.1  # every flux x 10^0.1: chi2 = 5 ((10^0.1 - 1) / (ln10 / 2.5 x 0.02))^2 in flux space
    chi2 = best_chi2(m, np.stack([theta, other])[None], x)
    assert chi2[0] == pytest.approx(0.0, abs=1e-3)
    chi2_other = best_chi2(m, other[None, None], x)
    assert chi2_other[0] == pytest.approx(5 * ((10**0.1 - 1) / (np.log(10) / 2.5 * 0.02)) ** 2, rel=2e-3)
    # a floor of sqrt(3) x 0.02 mag doubles every error: the chi-square falls by 4 exactly
    chi2_floor = best_chi2(m, other[None, None], x, error_floor_mag=np.full(5, np.sqrt(3) * 0.02))
    assert chi2_floor[0] == pytest.approx(chi2_other[0] / 4, rel=1e-6)


def test_error_floor_is_added_in_quadrature_and_checked():
    x = np.r_[np.full(5, 18.0), [0.01, 0.02, 0.03, 0.04, 0.0], 0.1][None]
    floor = (0.05, 0.02, 0.02, 0.02, 0.03)
    flux, ivar = fluxes_from_x(x, floor)
    sig_m = np.hypot([0.01, 0.02, 0.03, 0.04, 0.0], floor)
    np.testing.assert_allclose(flux, 10 ** ((22.5 - 18.0) / 2.5))
    np.testing.assert_allclose(1 / np.sqrt(ivar[0]), flux[0] * np.log(10) / 2.5 * sig_m, rtol=1e-12)
    assert FallbackConfig(error_floor_mag=np.array(floor)).error_floor_mag == floor
    for bad in ((0.05,) * 4, (0.05, 0.02, 0.02, 0.02, -0.01), (0.05, np.nan, 0.02, 0.02, 0.03)):
        with pytest.raises(ValueError, match="error_floor_mag"):
            FallbackConfig(error_floor_mag=bad)


def test_cli_error_floor_parsing():
    from sedflow_jax.cli.infer import _floor

    assert _floor(None) is None
    assert _floor("0.03") == (0.03,) * 5
    assert _floor("0.05,0.02,0.02,0.02,0.03") == (0.05, 0.02, 0.02, 0.02, 0.03)
    for bad in ("0.05,0.02", "x", "-0.1"):
        with pytest.raises(SystemExit, match="fallback-error-floor"):
            _floor(bad)


def test_fallback_nuts_config_is_the_robust_variant():
    from sedflow_jax.mcmc import NUTSConfig

    c = fallback_nuts_config(num_warmup=123)
    assert (c.target_accept_prob, c.max_extensions, c.num_warmup) == (0.95, 7, 123)
    assert c.num_samples == NUTSConfig().num_samples and NUTSConfig().target_accept_prob == 0.9
    assert fallback_nuts_config(target_accept_prob=0.8).target_accept_prob == 0.8


def test_select_rows_triggers():
    cfg = FallbackConfig(chi2_p=1e-3)
    assert cfg.chi2_cut == pytest.approx(20.515, abs=1e-3)  # chi2(5) 99.9% point
    valid = np.array([True, True, True, True, False])
    support = np.array([False, True, False, True, True])
    chi2 = np.array([3.0, 3.0, 50.0, 50.0, np.nan])
    rows, trig = select_rows(valid, support, chi2, cfg)
    assert rows.tolist() == [1, 2, 3]
    assert trig.tolist() == ["", "support", "chi2", "support,chi2", ""]


def test_infer_with_nuts_fallback(tiny_posterior, tmp_path):
    """Every row comes out; refit rows report NUTS's outcome; the rest keep the flow posterior."""
    from sedflow_jax.anpe import infer_catalog
    from sedflow_jax.mcmc import NUTSConfig

    _, post, (u, x) = tiny_posterior
    xs = np.asarray(x[:4], np.float32)
    flags = np.zeros(4, np.uint8)
    # a cut below every chi-square sends every row; the limit refits two. The first refit runs with
    # criteria it passes (its samples replace the flow's), the check of the outcome is what matters
    loose = NUTSConfig(num_warmup=40, num_samples=30, num_chains=2, max_tree_depth=5, init_draws=8, init_keep=2,
                       init_steps=10, max_extensions=0, rhat_max=100.0, ess_min=1.0, max_divergence_fraction=1.0)
    cfg = FallbackConfig(chi2_p=1.0 - 1e-12, limit=2, nuts=loose, n_check=10)
    out = tmp_path / "post.h5"
    res = infer_catalog(post, xs, flags, out, n_samples=50, fallback=cfg, progress=False)
    assert res["n_fallback_triggered"] == 4 and res["n_refit"] == 2 and res["n_nuts"] == 2
    with h5py.File(out, "r") as fh:
        method = fh["method"].asstr()[:]
        status = fh["fallback_status"].asstr()[:]
        trig = fh["fallback_trigger"].asstr()[:]
        samples = fh["samples"][:]
        med = fh["median"][:]
        assert np.all(np.isfinite(fh["chi2_best"][:]))
    assert method.tolist() == ["nuts", "nuts", "anpe", "anpe"]
    assert all(t for t in trig)
    assert status[0].startswith("nuts converged") and status[2] == "not refit: limit"
    assert np.all(np.isfinite(samples)) and samples.shape == (4, 50, 12)
    np.testing.assert_allclose(med[0], np.percentile(samples[0], 50, axis=0), rtol=1e-5, atol=1e-6)
    # strict criteria on so short a run: the failure is stated and the flow posterior kept
    strict = FallbackConfig(chi2_p=1.0 - 1e-12, limit=1, nuts=NUTSConfig(
        num_warmup=40, num_samples=30, num_chains=2, max_tree_depth=5, init_draws=8, init_keep=2, init_steps=10,
        max_extensions=0))
    res2 = infer_catalog(post, xs, flags, tmp_path / "post2.h5", n_samples=50, fallback=strict, progress=False)
    assert res2["n_refit"] == 1 and res2["n_nuts"] == 0
    assert res2["method"][0] == "anpe" and res2["fallback_status"][0].startswith("nuts not converged")
