"""The default BC03 table: structure, provenance, cache behaviour and the research note's physics checks.

Reference numbers: docs/ssp_tables.md section 5 (10 Gyr, Z = 0.02, AB at 10 pc, Lsun = 3.826e33).
"""

import h5py
import numpy as np
import pytest

from _ssp_test_helpers import BANDS, flam_at_10pc, speclite_zeropoint_correction, table_grid_maggies, table_llam


def _index(values, target):
    i = int(np.argmin(np.abs(np.asarray(values) - target)))
    assert abs(values[i] - target) < 1e-6, (values[i], target)
    return i


def test_structure_and_provenance(bc03_table):
    t = bc03_table
    assert t.lnu_lsun_per_hz_per_msun.shape == (7, 220, 2000)
    np.testing.assert_allclose(10**t.log10_zmet, 0.02 * np.array([0.005, 0.02, 0.2, 0.4, 1, 2.5, 5]), rtol=1e-12)
    np.testing.assert_allclose(10 ** (t.log10_age_gyr[[0, -1]] + 9), [1e5, 2e10], rtol=1e-6)
    assert t.wave_edges_aa[0] == 900.0 and t.wave_edges_aa[-1] == 30000.0
    for key, value in {
        "imf": "Kroupa2001 0.1-100",
        "isochrones": "Padova1994",
        "library": "BC03-2016 xmiless (MILES)",
        "zsun": "0.02",
        "lsun_erg_per_s": "3.826e33",
        "source_file": "bc03_miles_stellar_grids.fits",
        "n_wave": "2000",
    }.items():
        assert t.attrs[key] == value, key
    assert len(t.attrs["source_sha256"]) == 64
    assert "Bruzual & Charlot 2003" in t.attrs["citations"]


def test_flux_conserved_against_native(bc03_table, bc03_native):
    """Integrated L_lambda over 900-30000 A equals the native integral (float32 storage aside)."""
    from sedflow_jax.sps.resample import rebin_flux_conserving

    edges = bc03_table.wave_edges_aa
    llam = table_llam(bc03_table)
    total_table = np.sum(llam * np.diff(edges), axis=-1)
    total_native = np.sum(rebin_flux_conserving(bc03_native.wave_aa, bc03_native.llam_lsun_per_aa,
                                                edges[[0, -1]]), axis=-1) * (edges[-1] - edges[0])
    # L_nu -> L_lambda at the centre and float32 rounding: bin sums agree to ~1e-7
    np.testing.assert_allclose(total_table, total_native, rtol=1e-6)


def test_10gyr_solar_photometry(bc03_table, bc03_native, sdss_filters):
    it = _index(10 ** (bc03_table.log10_age_gyr + 9), 1e10)
    izt = _index(10**bc03_table.log10_zmet, 0.02)
    ref = {"u": 9.223, "g": 7.432, "r": 6.625, "i": 6.243, "z": 5.943}
    flam_tab = flam_at_10pc(table_llam(bc03_table)[izt, it])
    mags_tab = {b: -2.5 * np.log10(table_grid_maggies(bc03_table.wave_aa, flam_tab, f))
                for b, f in zip(BANDS, sdss_filters)}
    # independent reference: speclite on the full-resolution native spectrum
    inat = _index(bc03_native.age_yr, 1e10)
    spl = sdss_filters.get_ab_magnitudes(flam_at_10pc(bc03_native.llam_lsun_per_aa[4, inat]), bc03_native.wave_aa)
    for b, f in zip(BANDS, sdss_filters):
        m_native = float(spl[f.name][0]) + 2.5 * np.log10(speclite_zeropoint_correction(f))
        assert mags_tab[b] == pytest.approx(ref[b], abs=0.01), b
        assert m_native == pytest.approx(ref[b], abs=0.01), b
        assert mags_tab[b] == pytest.approx(m_native, abs=0.001), b
    assert mags_tab["r"] == pytest.approx(6.625, abs=0.01)
    assert mags_tab["g"] - mags_tab["r"] == pytest.approx(0.807, abs=0.005)


def test_mass_fractions(bc03_table):
    ages = 10 ** (bc03_table.log10_age_gyr + 9)
    iz = _index(10**bc03_table.log10_zmet, 0.02)
    liv, surv = bc03_table.mstar_liv_frac, bc03_table.mstar_surv_frac
    assert liv[iz, _index(ages, 1e10)] == pytest.approx(0.459, abs=0.001)
    assert surv[iz, _index(ages, 1e10)] == pytest.approx(0.609, abs=0.005)
    # research note section 5 (remnant estimate); 100 Myr and 1 Gyr are the nearest grid ages
    assert surv[iz, int(np.argmin(np.abs(np.log10(ages / 1e8))))] == pytest.approx(0.783, abs=0.01)
    assert surv[iz, int(np.argmin(np.abs(np.log10(ages / 1e9))))] == pytest.approx(0.688, abs=0.01)
    assert surv[0, _index(ages, 1e10)] == pytest.approx(0.586, abs=0.01)  # Z = 1e-4
    assert surv[-1, _index(ages, 1e10)] == pytest.approx(0.521, abs=0.01)  # Z = 0.1
    assert np.all(liv <= surv) and np.all(surv <= 1.0)
    # BC03's own living fraction rises by up to 0.0035 between neighbouring ages (Z = 1e-4, ~200 Myr)
    assert np.all(np.diff(surv, axis=1) <= 0.01)


def test_cache_reuse_and_rebuild(bc03_fits, tmp_path, capsys):
    from sedflow_jax.sps.bc03 import default_ssp_path, default_ssp_table

    small = dict(n_wave=50, wave_min_aa=3000.0, wave_max_aa=9000.0, cache_dir_override=tmp_path)
    path = default_ssp_path(**small)
    assert "building BC03 SSP table" in capsys.readouterr().err
    assert path.parent == tmp_path and "n50" in path.name
    mtime = path.stat().st_mtime_ns
    assert default_ssp_path(**small) == path and path.stat().st_mtime_ns == mtime
    assert capsys.readouterr().err == ""
    # a stale checksum forces a rebuild
    with h5py.File(path, "r+") as fh:
        fh.attrs["source_sha256"] = "0" * 64
    default_ssp_path(**small)
    assert "building BC03 SSP table" in capsys.readouterr().err
    with h5py.File(path, "r") as fh:
        assert fh.attrs["source_sha256"] != "0" * 64
    # a corrupt cache file is rebuilt too
    path.write_bytes(b"garbage")
    table = default_ssp_table(**small)
    assert table.n_wave == 50


def test_cache_dir_env(monkeypatch, tmp_path):
    from sedflow_jax.sps.bc03 import cache_dir

    monkeypatch.setenv("SEDFLOW_JAX_CACHE", str(tmp_path))
    assert cache_dir() == tmp_path
    assert cache_dir(tmp_path / "x") == tmp_path / "x"
    monkeypatch.delenv("SEDFLOW_JAX_CACHE")
    assert "sedflow_jax" in str(cache_dir())
