"""The NUTS fallback of catalogue inference: triggers, refits, and what each row reports."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from sedflow_jax.errors import InputError
from sedflow_jax.photometry import SDSS_LAYOUT, Photometry
from sedflow_jax.pipeline import (FallbackConfig, InferConfig, best_chi2, catalogue_from_x, fallback_nuts_config,
                                  infer_catalog, read_posterior_file, select_rows)


def test_best_chi2_zero_for_the_true_parameters():
    import jax.numpy as jnp

    from sedflow_jax.model import ProvabgsModel

    m = ProvabgsModel.build(z_max=0.2)
    theta = np.array([10.8, 0.30, 0.35, 0.20, 0.15, 0.05, 1.5, 6e-3, 4e-3, 0.5, 0.4, -0.3])
    flux = np.asarray(m(jnp.asarray(theta, m.dtype), jnp.asarray(0.08, m.dtype)), np.float64)
    x = np.r_[22.5 - 2.5 * np.log10(flux), np.full(5, 0.02), 0.08][None]
    x = Photometry.from_mags(SDSS_LAYOUT.mag(x), SDSS_LAYOUT.sigma_mag(x), SDSS_LAYOUT.redshift(x))
    other = theta.copy()
    other[0] += 0.1  # every flux x 10^0.1: chi2 = 5 ((10^0.1 - 1) / (ln10 / 2.5 x 0.02))^2 in flux space
    chi2 = best_chi2(m, np.stack([theta, other])[None], x)
    assert chi2[0] == pytest.approx(0.0, abs=1e-3)
    chi2_other = best_chi2(m, other[None, None], x)
    assert chi2_other[0] == pytest.approx(5 * ((10**0.1 - 1) / (np.log(10) / 2.5 * 0.02)) ** 2, rel=2e-3)
    # a floor of sqrt(3) x 0.02 mag doubles every error: the chi-square falls by 4 exactly
    chi2_floor = best_chi2(m, other[None, None], x, error_floor_mag=np.full(5, np.sqrt(3) * 0.02))
    assert chi2_floor[0] == pytest.approx(chi2_other[0] / 4, rel=1e-6)


def test_error_floor_config_is_checked():
    floor = (0.05, 0.02, 0.02, 0.02, 0.03)
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
        with pytest.raises(InputError, match="fallback-error-floor"):
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
    res = infer_catalog(post, catalogue_from_x(xs, flags), out, InferConfig(n_samples=50, fallback=cfg, progress=False))
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
    res2 = infer_catalog(post, catalogue_from_x(xs, flags), tmp_path / "post2.h5",
                         InferConfig(n_samples=50, fallback=strict, progress=False))
    assert res2["n_refit"] == 1 and res2["n_nuts"] == 0
    f2 = read_posterior_file(tmp_path / "post2.h5", samples=False)
    assert f2["method"][0] == "anpe" and f2["fallback_status"][0].startswith("nuts not converged")


def test_catalogue_ivar_reaches_every_likelihood_unchanged(tiny_posterior, tmp_path, monkeypatch):
    """A flux catalogue's own fluxes and ivar (not ones rebuilt from x) go to ANPE-IS, the chi-square check
    and NUTS, bit for bit."""
    from types import SimpleNamespace

    import sedflow_jax.anpe.importance as imp
    import sedflow_jax.mcmc as mcmc
    from sedflow_jax.anpe import Posterior
    from sedflow_jax.io.catalog import CatalogColumns, catalogue_from_table

    _, tiny, (_, x) = tiny_posterior
    post = Posterior(tiny.flow, None, tiny.meta)  # no support model: every valid row gets ANPE-IS
    flux, ivar = SDSS_LAYOUT.to_flux(np.asarray(x[:3], np.float64))
    ivar = ivar * np.array([1.37, 0.81, 1.0, 2.2, 0.5])  # not what float32 x would give back
    table = {"z": SDSS_LAYOUT.redshift(x[:3]).astype(np.float64), **{f"flux_{b}": flux[:, j] for j, b in enumerate("ugriz")},
             **{f"ivar_{b}": ivar[:, j] for j, b in enumerate("ugriz")}}
    cat = catalogue_from_table(table, CatalogColumns(kind="flux"))
    seen = {"is": [], "nuts": None}

    def fake_is(key, posterior, model, xr, *, flux_nmgy, ivar, n_samples, **kw):
        seen["is"].append((np.array(flux_nmgy), np.array(ivar)))
        return imp.ISResult(np.zeros((n_samples, 12), np.float32), np.zeros((4, 11)), np.zeros(4), 1.0, 2.0, False,
                            ("fake",))

    def fake_nuts(key, f, w, z, **kw):
        seen["nuts"] = (np.array(f), np.array(w))
        for j in range(len(z)):
            yield j, SimpleNamespace(converged=False, diagnostics={"reasons": ["fake"]})

    monkeypatch.setattr(imp, "importance_sample", fake_is)
    monkeypatch.setattr(mcmc, "run_nuts_batch", fake_nuts)
    cfg = InferConfig(n_samples=20, importance=64, progress=False,
                      fallback=FallbackConfig(chi2_p=1.0 - 1e-12, n_check=5))
    res = infer_catalog(post, cat, tmp_path / "p.h5", cfg)
    assert len(seen["is"]) == 3 and res["n_refit"] == 3
    for r, (f_is, w_is) in enumerate(seen["is"]):
        np.testing.assert_array_equal(f_is, flux[r])
        np.testing.assert_array_equal(w_is, ivar[r])
    np.testing.assert_array_equal(seen["nuts"][0], flux)
    np.testing.assert_array_equal(seen["nuts"][1], ivar)
    # the chi-square check: an independent float64 computation with the catalogue's ivar
    import h5py

    from sedflow_jax.model import ProvabgsModel, photometry_batch

    with h5py.File(tmp_path / "p.h5") as fh:
        s = fh["samples"][:, :5]
        chi2_best = fh["chi2_best"][:]
    m = ProvabgsModel.build(z_max=0.2)
    f_model = photometry_batch(m, s.reshape(-1, 12), np.repeat(table["z"], 5)).reshape(3, 5, 5)
    ref = np.min(np.sum(ivar[:, None] * (f_model - flux[:, None]) ** 2, -1), 1)
    np.testing.assert_allclose(chi2_best, ref, rtol=1e-5)
