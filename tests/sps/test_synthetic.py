"""The analytic test table: valid, deterministic, physically ordered."""

import numpy as np

from sedflow_jax.sps import SSPTable, synthetic_ssp_table

C_AA_PER_S = 2.99792458e18


def test_shapes_and_determinism():
    a, b = synthetic_ssp_table(), synthetic_ssp_table()
    assert isinstance(a, SSPTable)
    assert a.lnu_lsun_per_hz_per_msun.shape == (4, 30, 400)
    assert a.wave_edges_aa.shape == (401,)
    np.testing.assert_array_equal(a.lnu_lsun_per_hz_per_msun, b.lnu_lsun_per_hz_per_msun)
    t = synthetic_ssp_table(n_met=2, n_age=5, n_wave=20)
    assert t.lnu_lsun_per_hz_per_msun.shape == (2, 5, 20)


def test_fades_reddens_and_loses_mass_with_age():
    t = synthetic_ssp_table()
    llam = t.lnu_lsun_per_hz_per_msun * C_AA_PER_S / t.wave_aa**2
    lbol = np.trapezoid(llam, t.wave_aa, axis=-1)
    assert np.all(np.diff(lbol, axis=1) < 0)
    blue = llam[..., np.searchsorted(t.wave_aa, 4500.0)]
    red = llam[..., np.searchsorted(t.wave_aa, 8000.0)]
    assert np.all(np.diff(blue / red, axis=1) < 0)
    assert np.all(np.diff(t.mstar_surv_frac, axis=1) <= 0)
    assert np.all(t.mstar_liv_frac <= t.mstar_surv_frac)
    assert 0.5 < t.mstar_surv_frac[:, -1].min() < 0.7
