"""HDF5 round trip (DSPS layout) and loader error messages."""

import os
import re

import h5py
import numpy as np
import pytest

from sedflow_jax.sps import SSPTable, load_ssp_table, save_ssp_table, synthetic_ssp_table
from sedflow_jax.sps.io import DSPS_KEYS, MSTAR_SURV_MISSING, ssp_table_info


@pytest.fixture(scope="module")
def table():
    return synthetic_ssp_table(n_met=3, n_age=8, n_wave=50)


def _write(path, table, drop=(), replace=None, attrs=None):
    """Write a DSPS-style file by hand (not via save_ssp_table), optionally corrupting datasets."""
    data = {
        "ssp_lgmet": table.log10_zmet,
        "ssp_lg_age_gyr": table.log10_age_gyr,
        "ssp_wave": table.wave_aa,
        "ssp_flux": table.lnu_lsun_per_hz_per_msun,
        "ssp_wave_edges": table.wave_edges_aa,
        "ssp_mstar_surv": table.mstar_surv_frac,
        "ssp_mstar_liv": table.mstar_liv_frac,
    }
    data.update(replace or {})
    with h5py.File(path, "w") as fh:
        for key, value in data.items():
            if key not in drop:
                fh.create_dataset(key, data=value)
        for key, value in (attrs or {}).items():
            fh.attrs[key] = value
    return path


def test_round_trip(tmp_path, table):
    path = save_ssp_table(table, tmp_path / "t.h5")
    assert sorted(os.listdir(tmp_path)) == ["t.h5"]  # no temporary file left behind
    loaded = load_ssp_table(path)
    assert isinstance(loaded, SSPTable)
    for name in ("log10_zmet", "log10_age_gyr", "wave_aa", "wave_edges_aa", "mstar_surv_frac", "mstar_liv_frac"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(table, name), err_msg=name)
    # flux is stored as float32
    np.testing.assert_allclose(loaded.lnu_lsun_per_hz_per_msun, table.lnu_lsun_per_hz_per_msun, rtol=1e-7)
    assert loaded.lnu_lsun_per_hz_per_msun.dtype == np.float64
    assert {k: v for k, v in loaded.attrs.items() if k != "path"} == dict(table.attrs)
    assert loaded.attrs["path"] == str(path)
    with h5py.File(path, "r") as fh:
        ds = fh["ssp_flux"]
        assert ds.dtype == np.float32 and ds.compression == "gzip" and ds.shuffle
    # re-saving a loaded table does not store the runtime 'path' attribute
    save_ssp_table(loaded, tmp_path / "t2.h5")
    with h5py.File(tmp_path / "t2.h5", "r") as fh:
        assert "path" not in fh.attrs
    text = ssp_table_info(loaded)
    assert "(3, 8, 50)" in text and "synthetic" in text


def test_save_replaces_atomically(tmp_path, table):
    path = tmp_path / "t.h5"
    path.write_bytes(b"old")
    save_ssp_table(table, path)
    load_ssp_table(path)
    assert sorted(os.listdir(tmp_path)) == ["t.h5"]


def test_dsps_only_file_loads(tmp_path, table):
    path = _write(tmp_path / "dsps.h5", table, drop=("ssp_wave_edges", "ssp_mstar_surv", "ssp_mstar_liv"))
    with pytest.warns(UserWarning, match="ssp_mstar_surv"):
        loaded = load_ssp_table(path)
    assert loaded.wave_edges_aa is None and loaded.mstar_liv_frac is None
    np.testing.assert_array_equal(loaded.mstar_surv_frac, np.ones((3, 8)))
    assert loaded.attrs["mstar_surv"] == MSTAR_SURV_MISSING


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.h5"):
        load_ssp_table(tmp_path / "nope.h5")


@pytest.mark.parametrize("key", DSPS_KEYS)
def test_missing_dataset(tmp_path, table, key):
    path = _write(tmp_path / "m.h5", table, drop=(key,))
    with pytest.raises(ValueError, match=rf"{re.escape(str(path))}: missing dataset '{key}'"):
        load_ssp_table(path)


@pytest.mark.parametrize(
    "key, value, match",
    [
        ("ssp_flux", np.ones((3, 8, 49)), r"'ssp_flux' has shape \(3, 8, 49\)"),
        ("ssp_flux", np.ones((3, 8)), r"'ssp_flux' has shape"),
        ("ssp_mstar_surv", np.ones((8, 3)), r"'ssp_mstar_surv' has shape"),
        ("ssp_mstar_liv", np.ones((3, 7)) * 0.5, r"'ssp_mstar_liv' has shape"),
        ("ssp_wave_edges", np.linspace(900.0, 30000.0, 50), r"'ssp_wave_edges' has shape"),
    ],
)
def test_wrong_shape(tmp_path, table, key, value, match):
    path = _write(tmp_path / "s.h5", table, replace={key: value})
    with pytest.raises(ValueError, match=match) as info:
        load_ssp_table(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("key", ["ssp_lgmet", "ssp_lg_age_gyr", "ssp_wave"])
def test_non_monotonic_axis(tmp_path, table, key):
    axis = {"ssp_lgmet": table.log10_zmet, "ssp_lg_age_gyr": table.log10_age_gyr, "ssp_wave": table.wave_aa}[key]
    bad = axis.copy()
    bad[[0, 1]] = bad[[1, 0]]
    path = _write(tmp_path / "n.h5", table, replace={key: bad})
    with pytest.raises(ValueError, match=rf"'{key}' must be strictly increasing") as info:
        load_ssp_table(path)
    assert str(path) in str(info.value)


def test_corrupt_file(tmp_path):
    path = tmp_path / "corrupt.h5"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(ValueError, match=rf"{re.escape(str(path))}: not a readable HDF5 file"):
        load_ssp_table(path)


def test_truncated_file(tmp_path, table):
    path = save_ssp_table(table, tmp_path / "t.h5")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=re.escape(str(path))):
        load_ssp_table(path)


def test_metallicity_relative_to_solar_is_rejected(tmp_path, table):
    zrel = np.log10(np.array([0.2, 1.0, 2.5]))  # log10(Z/Zsun) instead of log10(Z)
    path = _write(tmp_path / "z.h5", table, replace={"ssp_lgmet": zrel})
    with pytest.raises(ValueError, match=r"'ssp_lgmet' must be log10 of the absolute metal fraction.*Z/Zsun"):
        load_ssp_table(path)


def test_ages_in_years_are_rejected(tmp_path, table):
    path = _write(tmp_path / "a.h5", table, replace={"ssp_lg_age_gyr": table.log10_age_gyr + 9.0})
    with pytest.raises(ValueError, match=r"'ssp_lg_age_gyr' must be log10\(age/Gyr\).*age/yr"):
        load_ssp_table(path)


def test_non_numeric_dataset(tmp_path, table):
    path = _write(tmp_path / "b.h5", table, replace={"ssp_wave": np.array([b"a", b"b"])})
    with pytest.raises(ValueError, match=r"dataset 'ssp_wave' cannot be read as float64"):
        load_ssp_table(path)


def test_negative_flux_is_rejected(tmp_path, table):
    flux = table.lnu_lsun_per_hz_per_msun.copy()
    flux[0, 0, 0] = -1.0
    path = _write(tmp_path / "f.h5", table, replace={"ssp_flux": flux})
    with pytest.raises(ValueError, match=r"'ssp_flux' must be finite and non-negative"):
        load_ssp_table(path)
