"""Real SDSS MGS run (benchmarks/real_sdss.py): the MGS reader, the fallback checkpoints, reference curves
(the PPC and the fallback classification are tests/pipeline/test_checks.py).

Fast (no flow sampling, no model evaluations). The full run is ``benchmarks/real_sdss.py`` (docs/real_sdss.md).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from sedflow_jax.errors import InputError
from sedflow_jax.io.catalog import ROW_FLAGS, CatalogColumns, catalogue_from_table, read_sdss_mgs
from sedflow_jax.photometry import Photometry
from tests._shared import shared_dir

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def rs():
    bench = str(ROOT / "benchmarks")
    sys.path.insert(0, bench)  # as `python benchmarks/real_sdss.py` does: it imports benchmarks/_common.py
    try:
        spec = importlib.util.spec_from_file_location("real_sdss", ROOT / "benchmarks" / "real_sdss.py")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
    finally:
        sys.path.remove(bench)
    return mod


def _row(z, mags, errs):
    cols = [m1 - m2 for m1, m2 in zip(mags[:-1], mags[1:])]
    return [z, *mags, *cols, *errs, *(0.01,) * 4]


def test_read_sdss_mgs_synthetic(tmp_path):
    p = tmp_path / "mini.train"
    rows = [_row(0.1, [19.0, 18.0, 17.5, 17.2, 17.0], [0.05, 0.01, 0.006, 0.007, 0.02]),
            _row(0.25, [20.0, 18.5, 17.8, 17.4, 17.1], [0.09, 0.02, 0.01, 0.01, 0.03])]
    # header as in the real files: it omits `eu`, so it must not be used to name columns
    p.write_text("#zs u g r i z u-g g-r r-i i-z eg er ei ez eu-g eg-r er-i ei-z\n"
                 + "\n".join(" ".join(f"{v:.6f}" for v in r) for r in rows) + "\n")
    t = read_sdss_mgs(p)
    assert list(t["id"]) == ["mini.train:0", "mini.train:1"]
    np.testing.assert_allclose(t["mag_u"], [19.0, 20.0])
    np.testing.assert_allclose(t["mag_err_u"], [0.05, 0.09])  # eu is column 10, not eg
    np.testing.assert_allclose(t["mag_err_z"], [0.02, 0.03])
    cat = catalogue_from_table(t, CatalogColumns(id="id"), redshift_range=(0.0, 0.2))
    x, flags = cat.x, cat.flags
    assert cat.ids.tolist() == ["mini.train:0", "mini.train:1"]
    assert x.shape == (2, 11) and flags.tolist() == [0, ROW_FLAGS["redshift_outside_range"]]


def test_read_sdss_mgs_rejects_other_layouts(tmp_path):
    p = tmp_path / "bad.txt"
    p.write_text("0.1 19 18 17 16 15\n")
    with pytest.raises(InputError, match="19"):
        read_sdss_mgs(p)
    with pytest.raises(InputError, match="not found"):
        read_sdss_mgs(tmp_path / "missing.train")


def test_read_sdss_mgs_real_files():
    from sedflow_jax.simulate.noise import read_mag_catalogue

    d = shared_dir("data", "sdss_mgs")
    n_total, n_zbad = 0, 0
    for part in ("train", "test"):
        t = read_sdss_mgs(d / f"SDSS_MGS.{part}", id_prefix=part)
        mag, sig, z = read_mag_catalogue(d / f"SDSS_MGS.{part}", z_col=0)  # the noise-model fit's reader
        np.testing.assert_array_equal(np.stack([t[f"mag_{b}"] for b in "ugriz"], 1), mag)
        np.testing.assert_array_equal(np.stack([t[f"mag_err_{b}"] for b in "ugriz"], 1), sig)
        cat = catalogue_from_table(t, CatalogColumns(id="id"))
        x, flags = cat.x, cat.flags
        assert x.shape == (5000, 11)
        assert np.all((flags & ~np.uint8(ROW_FLAGS["redshift_outside_range"])) == 0)  # only z flags
        assert np.array_equal(flags != 0, t["z"] > 0.2)
        n_total += x.shape[0]
        n_zbad += int(np.sum(flags != 0))
    assert n_total == 10000 and 0 < n_zbad < 500


def test_reference_relations(rs):
    # Speagle+14 eq. 28 at t = 12.45 Gyr (z = 0.1): log SFR(10^10 Msun) = 0.022
    assert rs.sfms_speagle14(10.0, 12.45) == pytest.approx((0.84 - 0.026 * 12.45) * 10 - (6.51 - 0.11 * 12.45))
    assert rs.sfms_speagle14(10.0, 12.45) == pytest.approx(0.022, abs=0.002)
    assert rs.sfms_renzini_peng15(10.0) == pytest.approx(-0.04)
    assert rs.baldry04_divider(-20.07) == pytest.approx(2.06)
    g = rs.GALLAZZI05
    assert len(g["log_mstar"]) == len(g["p50"]) == len(g["p16"]) == len(g["p84"]) == 16
    assert np.all(np.array(g["p16"]) <= np.array(g["p50"])) and np.all(np.array(g["p50"]) <= np.array(g["p84"]))


def test_run_fallback_checkpoints_and_resumes(rs, tmp_path, monkeypatch):
    """An interrupted NUTS fallback keeps its finished rows and runs only the others on restart."""
    import sedflow_jax.pipeline as fb_mod

    asked = []

    def fake_refit(rows, photometry, n_samples, cfg, *, ids=None, stop_after=None):
        asked.append(np.asarray(rows).tolist())
        for k, r in enumerate(rows):
            if stop_after is not None and k == stop_after:
                raise KeyboardInterrupt  # the run is killed mid-way
            ok = r % 2 == 1
            d = {"wall_s": 10.0 + r, "max_rhat": 1.002, "min_ess_bulk": 800.0, "divergent_fraction": 0.0,
                 "n_gradient_evals_total": 1000 * r}
            smp = np.full((n_samples, 12), 10.0 + r, np.float32) if ok else None
            yield int(r), smp, "nuts converged" if ok else "nuts not converged: R-hat", d

    z = np.linspace(0.05, 0.25, 10)
    phot = Photometry(np.ones((10, 5)), np.ones((10, 5)), z)
    rows = np.array([3, 4, 7])
    monkeypatch.setattr(fb_mod, "refit_rows", lambda *a, **k: fake_refit(*a, **k, stop_after=2))
    with pytest.raises(KeyboardInterrupt):
        rs.run_fallback(rows, phot, "nuts", tmp_path, n_samples=20, tag="_t")
    assert sorted(p.name for p in (tmp_path / "fallback_nuts_t").iterdir()) == ["row_3.npz", "row_4.npz"]
    monkeypatch.setattr(fb_mod, "refit_rows", fake_refit)
    out = rs.run_fallback(rows, phot, "nuts", tmp_path, n_samples=20, tag="_t", zbad=z > 0.2)
    assert asked == [[3, 4, 7], [7]]
    assert out["n_redshift_outside_range"] == 1  # row 7 (z = 0.206) of the three
    assert out["n_rows"] == 3 and out["n_refit"] == 3 and out["n_converged"] == 2
    assert out["wall_s_max"] == pytest.approx(17.0)
    import csv

    with open(tmp_path / "fallback_nuts_t.csv") as fh:
        table = list(csv.DictReader(fh))
    assert [int(t["row"]) for t in table] == [3, 4, 7]
    assert [t["converged"] for t in table] == ["True", "False", "True"]
    assert float(table[0]["log10_mstar_p50"]) == pytest.approx(13.0) and table[1]["log10_mstar_p50"] == "nan"
