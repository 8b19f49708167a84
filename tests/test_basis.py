"""The shipped default NMF basis, the PROVABGS loader, and how well the two span each other.

References are independent of the code under test: the PROVABGS facts come from
``provabgs_model.md`` sections 2-3; the spanning thresholds are the values measured by
``scripts/derive_default_basis.py`` and written into ``docs/default_basis.md`` (plus a small margin).
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.optimize import nnls

try:  # tests/ imported as a package (rootdir on sys.path) or as a plain directory
    from tests._shared import provabgs_dir
except ImportError:  # pragma: no cover
    from _shared import provabgs_dir

from sedflow_jax.model.basis import NMFBasis, load_default_basis, load_provabgs_basis, save_basis

REPO_ROOT = Path(__file__).resolve().parents[1]
SCRIPT = REPO_ROOT / "scripts" / "derive_default_basis.py"
DOC = REPO_ROOT / "docs" / "default_basis.md"
NODES_GYR = 0.0669886716 + 0.2767518593 * np.arange(50)
PROVABGS_ZH_ROW_SUMS = (98.7, 77.6)  # provabgs_model.md / default_basis_recipe.md, 3 significant digits
# NNLS relative L2 error of PROVABGS s1..s4, z1, z2 by the default basis, as measured by
# `python scripts/derive_default_basis.py --seed 0 --n-gal 30000` (docs/default_basis.md):
# 0.116, 0.139, 0.297, 0.195 | 0.119, 0.206. The limits add a 0.015 margin.
SPAN_LIMIT_SFH = (0.131, 0.154, 0.312, 0.210)
SPAN_LIMIT_ZH = (0.134, 0.221)


def _rel_nnls_err(rows, y):
    coef, _ = nnls(rows.T, y)
    return float(np.linalg.norm(y - coef @ rows) / np.linalg.norm(y))


def _peaks(rows, t):
    return t[np.argmax(rows, axis=1)]


@pytest.fixture(scope="module")
def default():
    return load_default_basis()


@pytest.fixture(scope="module")
def provabgs():
    return load_provabgs_basis(provabgs_dir())


# ---- (a) the shipped default basis ----


def test_default_basis_shapes_and_nodes(default):
    assert isinstance(default, NMFBasis)
    assert default.sfh.shape == (4, 50)
    assert default.zh.shape == (2, 50)
    np.testing.assert_allclose(default.t_lookback_gyr, NODES_GYR, rtol=0, atol=1e-9)


def test_default_basis_non_negative_and_finite(default):
    for rows in (default.sfh, default.zh):
        assert np.all(np.isfinite(rows))
        assert np.all(rows >= 0)
        assert np.all(rows.max(axis=1) > 0)


def test_default_sfh_rows_sum_to_one(default):
    np.testing.assert_allclose(default.sfh.sum(axis=1), 1.0, rtol=1e-12)


def test_default_zh_rows_match_provabgs_row_sums(default):
    # documented convention: each ZH row sums to the PROVABGS row sum (98.7, 77.6)
    np.testing.assert_allclose(default.zh.sum(axis=1), PROVABGS_ZH_ROW_SUMS, atol=0.06)


def test_default_components_ordered_young_to_old(default):
    t = default.t_lookback_gyr
    assert np.all(np.diff(_peaks(default.sfh, t)) > 0)
    assert np.all(np.diff(_peaks(default.zh, t)) > 0)
    assert _peaks(default.sfh, t)[0] < 2.0  # a young component exists
    assert _peaks(default.zh, t)[0] == t[0]  # z1 is the "today" component


def test_default_basis_provenance(default):
    attrs = default.attrs
    assert attrs["derived_by"] == "scripts/derive_default_basis.py"
    assert "SIMULATION_FIT_PARAMS['tng']" in attrs["parameter_set"]
    assert attrs["z_solar_of_mzr"] == "0.012"
    for key in ("seed", "n_gal", "scheme", "mzr", "zh_normalisation", "sfh_normalisation",
                "version_diffstar", "version_diffmah", "version_scikit-learn", "version_numpy"):
        assert attrs.get(key), key
    assert int(attrs["n_gal"]) >= 20000


def test_save_load_round_trip(default, tmp_path):
    path = tmp_path / "b.npz"
    save_basis(default, path)
    with np.load(path) as f:
        np.testing.assert_array_equal(f["sfh_basis"], default.sfh)
        np.testing.assert_array_equal(f["zh_basis"], default.zh)


# ---- (b) the PROVABGS loader against the spec facts ----


@pytest.mark.shared
def test_provabgs_nodes(provabgs):
    np.testing.assert_allclose(provabgs.t_lookback_gyr, NODES_GYR, rtol=0, atol=1e-8)


@pytest.mark.shared
def test_provabgs_sfh_peaks_and_maxima(provabgs):
    np.testing.assert_allclose(_peaks(provabgs.sfh, provabgs.t_lookback_gyr), [1.17, 5.60, 8.37, 11.14], atol=0.006)
    np.testing.assert_allclose(provabgs.sfh.max(axis=1), [0.0687, 0.0607, 0.0736, 0.0898], atol=6e-5)


@pytest.mark.shared
def test_provabgs_zh_first_node(provabgs):
    assert provabgs.zh[0, 0] == pytest.approx(5.458, abs=6e-4)
    assert provabgs.zh[1, 0] == 0.0


@pytest.mark.shared
def test_provabgs_raw_rows_sum_to_one_and_reorder():
    raw = np.loadtxt(provabgs_dir() / "NMF_2basis_SFH_components_nowgt_lin_Nc4.txt")
    np.testing.assert_allclose(raw.sum(axis=1), 1.0, atol=1e-6)
    loaded = load_provabgs_basis(provabgs_dir())
    np.testing.assert_array_equal(loaded.sfh, raw[[2, 0, 1, 3], ::-1])


# ---- (c) the spanning numbers documented in docs/default_basis.md ----


@pytest.mark.shared
def test_provabgs_components_spanned_by_default(default, provabgs):
    np.testing.assert_allclose(default.t_lookback_gyr, provabgs.t_lookback_gyr, atol=1e-8)
    sfh_err = [_rel_nnls_err(default.sfh, s) for s in provabgs.sfh]
    zh_err = [_rel_nnls_err(default.zh, z) for z in provabgs.zh]
    assert np.all(np.array(sfh_err) < SPAN_LIMIT_SFH), sfh_err
    assert np.all(np.array(zh_err) < SPAN_LIMIT_ZH), zh_err


@pytest.mark.shared
def test_documented_spanning_numbers_are_current(default, provabgs):
    row = next(line for line in DOC.read_text().splitlines() if line.startswith("| PROVABGS component by our basis"))
    documented = np.array([float(v) for v in re.findall(r"\d+\.\d+", row)])
    measured = [_rel_nnls_err(default.sfh, s) for s in provabgs.sfh] + [
        _rel_nnls_err(default.zh, z) for z in provabgs.zh
    ]
    np.testing.assert_allclose(measured, documented, atol=6e-4)


# ---- the derivation script ----


def _load_script():
    spec = importlib.util.spec_from_file_location("derive_default_basis", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_script_mzr_matches_dsps():
    pytest.importorskip("dsps")  # the check itself imports dsps in a child process (it flips jax x64)
    err = _load_script().check_mzr_against_dsps()
    assert err is not None and err < 1e-10


@pytest.mark.slow
def test_script_is_deterministic(tmp_path):
    pytest.importorskip("diffstar")
    pytest.importorskip("sklearn")
    outs = [tmp_path / f"b{i}.npz" for i in range(2)]
    for out in outs:
        subprocess.run([sys.executable, str(SCRIPT), "--n-gal", "5000", "--seed", "3", "--out", str(out),
                        "--no-compare"], check=True, cwd=REPO_ROOT, capture_output=True, timeout=300)
    assert outs[0].read_bytes() == outs[1].read_bytes()
    with np.load(outs[0]) as f:
        assert f["sfh_basis"].shape == (4, 50) and f["zh_basis"].shape == (2, 50)


# ---- the ../shared helper ----


@pytest.mark.parametrize(("ci", "outcome"), [("", pytest.skip.Exception), ("true", pytest.fail.Exception)])
def test_shared_helper_skips_locally_fails_in_ci(monkeypatch, tmp_path, ci, outcome):
    try:
        import tests._shared as shared
    except ImportError:  # pragma: no cover
        import _shared as shared
    monkeypatch.setattr(shared, "SHARED_ROOT", tmp_path / "absent")
    monkeypatch.setenv("CI", ci)
    with pytest.raises(outcome):
        shared.provabgs_dir()
