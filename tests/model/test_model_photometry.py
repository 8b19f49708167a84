"""Photometry of the SED model against independent references.

(a) A flat-f_nu galaxy: the AB flux is (1+z) L_nu 10^logM Lsun / (4 pi d_L^2) / 3631 Jy, with d_L
    from astropy's Planck13 and Lsun = 3.846e33 erg/s (PROVABGS/FSPS), on a fine and on the default
    2000-bin wavelength grid.
(b) speclite's ``get_ab_maggies`` on the model's own observed-frame spectrum (BC03 table).
(c) +1 dex in log M* scales every flux by 10.
"""

from __future__ import annotations

import astropy.units as u
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from astropy.cosmology import Planck13

from sedflow_jax.model import ProvabgsModel
from sedflow_jax.sps.resample import log_wave_edges
from sedflow_jax.sps.table import SSPTable

L_SUN_ERG_S = 3.846e33  # PROVABGS / FSPS convention (provabgs_model.md section 5.2)
AB_ZP_CGS = 3631e-23  # 3631 Jy in erg/s/cm^2/Hz
L_NU_FLAT = 2.0e-13  # Lsun/Hz/Msun, constant in wavelength (arbitrary)
FLAT_Z = (0.02, 0.1, 0.2, 0.5, 0.9)
FLAT_LOG_M = 10.3
FINE_N_WAVE = 20_000
FINE_TOL_MAG = 1e-5  # fine grid: float32 rounding + residual trapezoid error of the band integral
DEFAULT_N_WAVE = 2000
# 2000 log bins (~1.7e-3 in ln lambda): the trapezoid on the SED grid misses the kinks of the
# sdss2010-i curve: 0.49 mmag at z = 0.1. speclite itself, on the same flat spectrum and grid,
# is off by the same 0.49 mmag (it inserts no filter nodes here), so this is the discretisation of
# the speclite convention the spec prescribes, not a model bug. The brief asked for 3e-4 mag; the
# i band cannot meet that on this grid with speclite's integration rule (reported).
DEFAULT_TOL_MAG = 6e-4
SAME_GRID_SPECLITE_TOL_MAG = 5e-5  # model vs speclite on the identical 2000-bin spectrum (measured 2.8e-5)
SPECLITE_TOL_MAG = 1e-3  # model integrates on the SED grid; speclite adds filter nodes where undersampled
SPECLITE_Z = (0.02, 0.1, 0.2, 0.5)
N_SPECLITE_DRAWS = 10
MASS_SCALE_RTOL = 1e-5  # float32: exp(log_scale) with |log_scale terms| ~ 30 -> ~4e-6 relative
BANDS = ("u", "g", "r", "i", "z")


def _flat_table(n_wave: int) -> SSPTable:
    edges, wave = log_wave_edges(900.0, 30000.0, n_wave)
    log10_zmet = np.array([-4.0, -2.5, -1.2])
    log10_age = np.linspace(-4.0, 1.15, 40)
    lnu = np.full((log10_zmet.size, log10_age.size, n_wave), L_NU_FLAT)
    return SSPTable(
        log10_zmet=log10_zmet, log10_age_gyr=log10_age, wave_aa=wave, lnu_lsun_per_hz_per_msun=lnu,
        mstar_surv_frac=np.ones((log10_zmet.size, log10_age.size)), wave_edges_aa=edges, attrs={"kind": "flat"},
    )


def _flat_theta(log_m=FLAT_LOG_M):
    # one-hot beta, no burst, no dust: the rest-frame L_nu is L_NU_FLAT per Msun formed everywhere
    return np.array([log_m, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 1e-3, 1e-3, 0.0, 0.0, 0.0])


@pytest.fixture(scope="module")
def speclite_ab_factor():
    """speclite's maggies for an exact 3631 Jy flat-f_nu source, per band, on a 400k-point grid.

    speclite's denominator is a trapezoid of R/lambda on the filter's own nodes; for sdss2010-u
    (a 3460 A gap between the last two nodes of its red tail) that differs from the exact integral
    by 4.2e-4 relative, so speclite reports 0.99958 maggies in u (0.46 mmag) for a true AB source;
    g, r, i, z are within 3e-6. The model follows speclite (spec section 5.3), so the flat-f_nu
    reference is the exact AB flux times this factor.
    """
    from speclite.filters import load_filters

    sdss = load_filters("sdss2010-*")
    w = np.geomspace(2000.0, 15000.0, 400_000)
    flam = AB_ZP_CGS * 2.99792458e18 / w**2 * u.erg / (u.s * u.cm**2 * u.AA)
    m = sdss.get_ab_maggies(flam, w * u.AA)
    return np.array([float(m[n][0]) for n in sdss.names])


def _expected_nmgy(z):
    d_l_cm = Planck13.luminosity_distance(z).to_value("cm")
    f_nu = (1 + z) * L_NU_FLAT * 10.0**FLAT_LOG_M * L_SUN_ERG_S / (4 * np.pi * d_l_cm**2)
    return f_nu / AB_ZP_CGS * 1e9


@pytest.mark.parametrize("n_wave, tol_mag", [(FINE_N_WAVE, FINE_TOL_MAG), (DEFAULT_N_WAVE, DEFAULT_TOL_MAG)])
def test_flat_fnu_ab_magnitude(n_wave, tol_mag, speclite_ab_factor):
    model = ProvabgsModel.build(_flat_table(n_wave), None, z_max=1.0)
    f = eqx.filter_jit(jax.vmap(model, in_axes=(None, 0)))
    got = np.asarray(f(jnp.asarray(_flat_theta(), jnp.float32), jnp.asarray(FLAT_Z, jnp.float32)), np.float64)
    ref = np.array([_expected_nmgy(z) for z in FLAT_Z])[:, None] * speclite_ab_factor[None, :]
    dmag = 2.5 * np.log10(got / ref)
    assert np.abs(dmag).max() < tol_mag, f"max |dm| = {np.abs(dmag).max():.2e} mag\n{dmag}"
    if n_wave == DEFAULT_N_WAVE:  # and speclite on the very same observed-frame spectrum
        from speclite.filters import load_filters

        sdss = load_filters("sdss2010-*")
        wave = np.asarray(model.wave_aa, np.float64)
        for i, z in enumerate(FLAT_Z):
            wo = wave * (1 + z)
            f_nu = _expected_nmgy(z) * 1e-9 * AB_ZP_CGS
            flam = f_nu * 2.99792458e18 / wo**2 * u.erg / (u.s * u.cm**2 * u.AA)
            m = sdss.get_ab_maggies(flam, wo * u.AA)
            sp = np.array([float(m[n][0]) for n in sdss.names]) * 1e9
            d = 2.5 * np.log10(got[i] / sp)
            assert np.abs(d).max() < SAME_GRID_SPECLITE_TOL_MAG, f"z={z}: model vs speclite, same grid: {d}"


def _prior_draws(prior, n, seed):
    return np.asarray(prior.sample(jax.random.PRNGKey(seed), n), np.float64)


def test_speclite_cross_check(model_bc03_full, prior):
    from speclite.filters import load_filters

    sdss = load_filters("sdss2010-*")
    assert tuple(n.split("-")[1] for n in model_bc03_full.filters.names) == BANDS
    model = model_bc03_full
    spec = eqx.filter_jit(jax.vmap(model.observed_spectrum, in_axes=(0, None)))
    phot = eqx.filter_jit(jax.vmap(model, in_axes=(0, None)))
    theta = jnp.asarray(_prior_draws(prior, N_SPECLITE_DRAWS, 11), jnp.float32)
    worst = 0.0
    for z in SPECLITE_Z:
        wave, flux = (np.asarray(a, np.float64) for a in spec(theta, jnp.float32(z)))
        nmgy = np.asarray(phot(theta, jnp.float32(z)), np.float64)
        for i in range(N_SPECLITE_DRAWS):
            w, fl = wave[i], flux[i]
            assert w[0] < sdss.effective_wavelengths.value.min() and np.all(np.isfinite(fl))
            fl_q = fl * 1e-17 * u.erg / (u.s * u.cm**2 * u.AA)
            try:
                maggies = sdss.get_ab_maggies(fl_q, w * u.AA)
            except ValueError:  # spectrum does not cover a filter: zero-pad as PROVABGS does
                fl_p, w_p = sdss.pad_spectrum(fl_q, w * u.AA, method="zero")
                maggies = sdss.get_ab_maggies(fl_p, w_p)
            ref = np.array([maggies[name][0] for name in sdss.names]) * 1e9
            dmag = 2.5 * np.log10(nmgy[i] / ref)
            worst = max(worst, float(np.abs(dmag).max()))
            assert np.abs(dmag).max() < SPECLITE_TOL_MAG, f"z={z}, draw {i}: dm = {dmag}"
    assert worst > 0  # the comparison actually ran


def test_one_dex_mass_is_ten_times_flux(model_bc03_default, prior):
    theta = _prior_draws(prior, 6, 3)
    z = np.array([0.01, 0.05, 0.1, 0.15, 0.2, 0.6])
    f = eqx.filter_jit(jax.vmap(model_bc03_default))
    lo = np.asarray(f(jnp.asarray(theta, jnp.float32), jnp.asarray(z, jnp.float32)), np.float64)
    theta_hi = theta.copy()
    theta_hi[:, 0] += 1.0
    hi = np.asarray(f(jnp.asarray(theta_hi, jnp.float32), jnp.asarray(z, jnp.float32)), np.float64)
    np.testing.assert_allclose(hi, 10.0 * lo, rtol=MASS_SCALE_RTOL)
