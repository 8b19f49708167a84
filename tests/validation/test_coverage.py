"""Expected coverage and p-p curves on the Gaussian toy (known answers)."""

import numpy as np
import pytest

from sedflow_jax.validation import coverage_from_ranks, expected_coverage, pp_band, pp_curve, sbc_ranks

COVERAGE_ATOL = 0.03  # max |coverage - level| for exact draws, 5000 galaxies (sup of ~0.007-sigma process)
COVERAGE_SHIFTED_MIN = 0.15  # 1-sigma bias: the 68% interval covers ~0.48 instead of 0.68


def test_exact_posterior_is_calibrated(exact_toy):
    res = expected_coverage(*exact_toy)
    assert res.coverage.shape == (19, 2)
    assert res.max_abs_deviation_all < COVERAGE_ATOL, res.max_abs_deviation


def test_shifted_posterior_undercovers(shifted_toy):
    res = expected_coverage(*shifted_toy)
    assert np.all(res.max_abs_deviation > COVERAGE_SHIFTED_MIN)
    assert np.all(res.coverage < res.levels[:, None] + 1e-9)


def test_width_errors_have_the_right_sign(wide_toy, narrow_toy):
    levels = np.array([0.5, 0.9])
    wide = expected_coverage(*wide_toy, levels)
    narrow = expected_coverage(*narrow_toy, levels)
    assert np.all(wide.coverage > levels[:, None] + 0.05)
    assert np.all(narrow.coverage < levels[:, None] - 0.05)
    # analytic: central interval of half-width z*s*scale covers 2 Phi(z s) - 1 of N(0, 1)
    from scipy import stats

    z = stats.norm.ppf(0.75)
    np.testing.assert_allclose(wide.coverage[0], 2 * stats.norm.cdf(1.5 * z) - 1, atol=0.03)


def test_coverage_from_ranks_hand_example():
    ranks = np.array([[0.5], [0.3], [0.05], [0.99]])
    res = coverage_from_ranks(ranks, levels=[0.0, 0.5, 0.95, 1.0])
    np.testing.assert_allclose(res.coverage[:, 0], [0.25, 0.5, 0.75, 1.0])
    assert res.max_abs_deviation_all == pytest.approx(0.25)


def test_pp_curve_and_band(exact_toy):
    ranks = sbc_ranks(*exact_toy)
    grid, ecdf = pp_curve(ranks, n_grid=41)
    assert grid.shape == (41,) and ecdf.shape == (41, 2)
    assert ecdf[0].max() <= 0.01 and np.all(ecdf[-1] == 1.0)
    assert np.all(np.diff(ecdf, axis=0) >= 0)
    lo, hi = pp_band(ranks.shape[0], grid, cl=0.999)
    # interior points only: at x = 0 a discrete rank of exactly 0 (probability 1/(n_draw+1)) lies outside
    # the continuous band, whose width there is 0
    inner = slice(1, -1)
    assert np.all((ecdf[inner] >= lo[inner, None]) & (ecdf[inner] <= hi[inner, None]))
    # band width at x = 0.5 is about 2 * 3.29 * sqrt(0.25 / n)
    assert hi[20] - lo[20] == pytest.approx(2 * 3.29 * np.sqrt(0.25 / ranks.shape[0]), rel=0.1)
