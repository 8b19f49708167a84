import h5py
import numpy as np
import pytest

from sedflow_jax.cli.main import main
from sedflow_jax.errors import InputError
from sedflow_jax.io.catalog import ROW_FLAGS, CatalogColumns, catalogue_from_table, read_catalogue


def _write_csv(path, x, truth=None, bad=True):
    rows = []
    for i, r in enumerate(x):
        rows.append([f"{v:.6g}" for v in r])
    header = [f"mag_{b}" for b in "ugriz"] + [f"mag_err_{b}" for b in "ugriz"] + ["z"]
    if bad:
        rows[1][0] = "nan"  # missing
        rows[3][6] = "-0.1"  # negative error
        rows[4][10] = "0.5"  # outside z range
        rows[6][2] = ""  # empty cell
    with open(path, "w") as fh:
        fh.write(",".join(header + (["true_log10_mstar_formed"] if truth is not None else [])) + "\n")
        for i, r in enumerate(rows):
            fh.write(",".join(r + ([f"{truth[i]:.4f}"] if truth is not None else [])) + "\n")


def test_flux_catalogue_flags_and_nsa_layout():
    f = np.array([[1, 2, 3, 4, 5, 6, 7], [1, 2, -3, 4, 5, 6, 7], [1, 2, 3, 4, 5, 6, 7], [1, 2, 3, 4, 5, 6, np.nan]], float)
    ivar = np.full_like(f, 100.0)
    ivar[2, 4] = 0
    table = {"NMGY": f, "NMGY_IVAR": ivar, "Z": np.array([0.05, 0.05, 0.05, 0.05]), "NSAID": np.arange(4)}
    cat = catalogue_from_table(table, CatalogColumns.nsa())
    x, flags = cat.x, cat.flags
    assert x.shape == (4, 11) and cat.ids.tolist() == [0, 1, 2, 3]
    assert list(flags) == [0, ROW_FLAGS["flux_nonpositive"], ROW_FLAGS["error_nonpositive"], ROW_FLAGS["missing_value"]]
    assert x[0, 0] == pytest.approx(22.5 - 2.5 * np.log10(3), abs=1e-5)  # u is column 2
    assert x[0, 5] == pytest.approx(2.5 / np.log(10) * 0.1 / 3, rel=1e-5)
    # the fluxes and ivar are kept exactly as read (u..z = NSA columns 2..6); nothing is converted back
    np.testing.assert_array_equal(cat.photometry.flux_nmgy, f[:, 2:7])
    np.testing.assert_array_equal(cat.photometry.ivar, ivar[:, 2:7])
    np.testing.assert_array_equal(cat.photometry.redshift, table["Z"])


def test_mag_catalogue_x_is_the_magnitudes_as_read_and_photometry_is_float64():
    rng = np.random.default_rng(0)
    mag = rng.uniform(14, 22, (50, 5))
    sig = rng.uniform(0.005, 0.3, (50, 5))
    table = {"z": rng.uniform(0.01, 0.2, 50), **{f"mag_{b}": mag[:, j] for j, b in enumerate("ugriz")},
             **{f"mag_err_{b}": sig[:, j] for j, b in enumerate("ugriz")}}
    cat = catalogue_from_table(table)
    np.testing.assert_array_equal(cat.x, np.concatenate([mag, sig, table["z"][:, None]], 1).astype(np.float32))
    assert cat.photometry.flux_nmgy.dtype == np.float64
    np.testing.assert_allclose(cat.photometry.flux_nmgy, 10 ** ((22.5 - mag) / 2.5), rtol=1e-14)
    np.testing.assert_allclose(1 / np.sqrt(cat.photometry.ivar), cat.photometry.flux_nmgy * sig * np.log(10) / 2.5,
                               rtol=1e-13)
    # x derived from the photometry gives the same bits on valid rows (no information lost either way)
    np.testing.assert_array_equal(cat.photometry.x(), cat.x)


def test_bad_columns_raise_input_error(tmp_path):
    with pytest.raises(InputError, match="redshift column 'z'"):
        catalogue_from_table({"mag_u": np.ones(2)})
    with pytest.raises(InputError, match="mag_err_u"):
        catalogue_from_table({"z": np.ones(2), **{f"mag_{b}": np.ones(2) for b in "ugriz"}})
    with pytest.raises(InputError, match="kind"):
        catalogue_from_table({"z": np.ones(2)}, CatalogColumns(kind="jansky"))
    with pytest.raises(InputError, match="not found"):
        read_catalogue(tmp_path / "missing.csv")


def test_bad_rows_flagged_same_count_and_order_all_formats(tiny_posterior, tmp_path):
    model, post, (u, x) = tiny_posterior
    xs = x[:12]
    csv = tmp_path / "cat.csv"
    _write_csv(csv, xs, truth=u[:12, 0])
    cat = read_catalogue(csv)
    table, xc, flags = cat.table, cat.x, cat.flags
    assert xc.shape[0] == 12
    assert flags[1] & ROW_FLAGS["missing_value"] and flags[6] & ROW_FLAGS["missing_value"]
    assert flags[3] & ROW_FLAGS["error_nonpositive"] and flags[4] & ROW_FLAGS["redshift_outside_range"]
    assert np.all(flags[[0, 2, 5, 7, 8, 9, 10, 11]] == 0)
    # FITS and HDF5 give the same x
    from astropy.table import Table

    Table({k: v for k, v in table.items()}).write(tmp_path / "cat.fits")
    with h5py.File(tmp_path / "cat.h5", "w") as fh:
        for k, v in table.items():
            fh[k] = v
    for p in ("cat.fits", "cat.h5"):
        c2 = read_catalogue(tmp_path / p)
        x2, f2 = c2.x, c2.flags
        np.testing.assert_array_equal(f2, flags)
        np.testing.assert_allclose(x2[flags == 0], xc[flags == 0], rtol=1e-6)
    out = tmp_path / "post.h5"
    assert main(["infer", str(csv), "--out", str(out), "--model", str(model), "--n-samples", "40", "--no-progress"]) == 0
    with h5py.File(out, "r") as fh:
        assert fh["median"].shape == (12, 12) and fh["samples"].shape == (12, 40, 12)
        fl = fh["flags"][:]
        reasons = fh["flag_reason"].asstr()[:]
        med = fh["median"][:]
        np.testing.assert_allclose(fh["x"][:][flags == 0], xc[flags == 0])
        assert np.all(np.isnan(fh["samples"][1]))
        assert fh.attrs["schema_version"] == 2  # sedflow_jax.pipeline.layout.SCHEMA_VERSION
    assert np.all((fl & 15) == flags)
    assert reasons[1] == "missing_value" and "redshift_outside_range" in reasons[4]
    assert np.all(np.isnan(med[[1, 3, 4, 6]])) and np.all(np.isfinite(med[[0, 2, 5, 7]]))
