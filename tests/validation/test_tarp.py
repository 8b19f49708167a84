"""TARP coverage (Lemos et al. 2023) on the Gaussian toy, and a cross-check with the `tarp` package."""

import numpy as np
import pytest

from sedflow_jax.validation import tarp_atc, tarp_coverage, tarp_credibility, tarp_ecp

ATC_CALIBRATED = 0.01  # |ATC| for exact draws (ECP noise ~0.005 over 5000 galaxies x 2 references)
ATC_DISPERSION = 0.02  # |ATC| at least this for a 1.5x too wide / 0.6x too narrow posterior
MAX_DEV_SHIFTED = 0.1  # max |ECP - alpha| for a 1-sigma bias


def test_exact_posterior_atc_near_zero(exact_toy):
    res = tarp_coverage(*exact_toy, n_refs=2, rng=0, n_bootstrap=50)
    assert res.alpha.shape == res.ecp.shape == (101,)
    assert res.ecp[0] == 0.0 and np.all(np.diff(res.ecp) >= 0)
    assert abs(res.atc) < ATC_CALIBRATED, res.atc
    assert res.max_abs_deviation < 0.03
    lo, hi = res.band(0.99)
    assert res.ecp_bootstrap.shape == (50, 101)
    inside = (res.alpha >= lo - 0.01) & (res.alpha <= hi + 0.01)
    assert inside.mean() > 0.95


def test_dispersion_sets_atc_sign(wide_toy, narrow_toy):
    assert tarp_coverage(*wide_toy, rng=0).atc > ATC_DISPERSION
    assert tarp_coverage(*narrow_toy, rng=0).atc < -ATC_DISPERSION


def test_shifted_posterior_deviates(shifted_toy):
    assert tarp_coverage(*shifted_toy, rng=0).max_abs_deviation > MAX_DEV_SHIFTED


def test_credibility_hand_example():
    # draws at distances 1, 2, 3 from the reference at the origin; truth at distance 2.5
    samples = np.array([[1.0, 0.0], [0.0, 2.0], [-3.0, 0.0]])[:, None, :]
    f = tarp_credibility(samples, np.array([[2.5, 0.0]]), np.zeros((1, 1, 2)))
    assert f.shape == (1, 1) and f[0, 0] == pytest.approx(2 / 3)
    f1 = tarp_credibility(samples, np.array([[2.5, 0.0]]), np.zeros((1, 2)), metric="manhattan")
    assert f1[0, 0] == pytest.approx(2 / 3)


def test_ecp_and_atc_of_uniform_credibility():
    f = (np.arange(1000) + 0.5)[:, None] / 1000
    alpha = np.linspace(0, 1, 11)
    np.testing.assert_allclose(tarp_ecp(f, alpha), alpha, atol=1e-3)
    atc, atc_sum = tarp_atc(alpha + 0.1, alpha)
    assert atc == pytest.approx(0.05) and atc_sum == pytest.approx(0.6)


def test_bounds_and_references_are_reproducible(exact_toy):
    samples, truth = exact_toy[0][:, :200], exact_toy[1][:200]
    a = tarp_coverage(samples, truth, rng=np.random.default_rng(5))
    b = tarp_coverage(samples, truth, rng=5)
    np.testing.assert_array_equal(a.ecp, b.ecp)
    c = tarp_coverage(samples, truth, bounds=(-np.ones(2) * 4, np.ones(2) * 4), rng=5)
    assert c.credibility.shape == (200, 1)


@pytest.mark.parametrize("norm", [False, True])
def test_matches_tarp_package(shifted_toy, norm):
    """Same references -> same ECP as ``tarp.get_tarp_coverage`` 0.1.1 on its own alpha grid."""
    tarp = pytest.importorskip("tarp")
    samples, truth = shifted_toy[0][:, :400], shifted_toy[1][:400]
    rng = np.random.default_rng(7)
    unit_refs = rng.uniform(size=truth.shape)
    low, high = truth.min(axis=0), truth.max(axis=0)
    if norm:  # the package draws references in the normalised space; ours are in parameter units
        pkg_refs, our_refs = unit_refs, low + (high - low) * unit_refs
    else:
        pkg_refs = our_refs = low + (high - low) * unit_refs
    ecp_pkg, alpha_pkg = tarp.get_tarp_coverage(samples, truth, references=pkg_refs, norm=norm, num_alpha_bins=40)
    f = tarp_credibility(samples, truth, our_refs, scale=(high - low) if norm else None)
    ours = tarp_ecp(f, alpha_pkg)
    # the package's histogram closes its last bin (ECP(max f) = 1); we keep the strict f < alpha
    np.testing.assert_allclose(ours[:-1], ecp_pkg[:-1], rtol=0, atol=1e-9)
    full = tarp_coverage(samples, truth, references=our_refs[None], norm=norm)
    np.testing.assert_array_equal(full.credibility, f)
