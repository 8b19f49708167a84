"""SBC ranks and their uniformity tests on the Gaussian toy (known answers)."""

import numpy as np
import pytest
from scipy import stats

from sedflow_jax.validation import rank_bin_probabilities, rank_uniformity, sbc_ranks

from .conftest import N_DRAW

KS_P_CALIBRATED = 0.01  # exact posterior: KS p-value above this (fixed seed)
KS_P_SHIFTED = 1e-6  # 1-sigma bias over 5000 galaxies: p-value below this


def test_ranks_match_sedflow_percentileofscore(exact_toy):
    samples, truth = exact_toy
    ranks = sbc_ranks(samples[:, :20], truth[:20])
    ref = np.array([[stats.percentileofscore(samples[:, i, j], truth[i, j]) / 100 for j in range(2)]
                    for i in range(20)])
    np.testing.assert_allclose(ranks, ref, rtol=0, atol=1e-12)


def test_ranks_ties_count_half():
    samples = np.array([0.0, 1.0, 1.0, 2.0])[:, None, None]
    assert sbc_ranks(samples, np.array([[1.0]]))[0, 0] == pytest.approx(0.5)
    assert sbc_ranks(samples, np.array([[5.0]]))[0, 0] == 1.0


def test_sample_axis_is_respected(exact_toy):
    samples, truth = exact_toy
    a = sbc_ranks(samples[:, :50], truth[:50])
    b = sbc_ranks(np.moveaxis(samples[:, :50], 0, 1), truth[:50], sample_axis=1)
    np.testing.assert_array_equal(a, b)


def test_exact_posterior_gives_uniform_ranks(exact_toy):
    samples, truth = exact_toy
    res = rank_uniformity(sbc_ranks(samples, truth), n_draw=N_DRAW)
    assert np.all(res.ks_pvalue > KS_P_CALIBRATED), res.ks_pvalue
    assert np.all(res.chi2_pvalue > KS_P_CALIBRATED), res.chi2_pvalue
    assert res.counts.shape == (10, 2) and np.all(res.counts.sum(axis=0) == samples.shape[1])


def test_shifted_posterior_fails(shifted_toy):
    samples, truth = shifted_toy
    res = rank_uniformity(sbc_ranks(samples, truth))
    assert np.all(res.ks_pvalue < KS_P_SHIFTED) and np.all(res.chi2_pvalue < KS_P_SHIFTED)
    # draws biased high -> truths rank low
    assert np.all(res.counts[0] > 3 * res.counts[-1])


def test_narrow_is_u_shaped_and_wide_is_cap_shaped(narrow_toy, wide_toy):
    narrow = rank_uniformity(sbc_ranks(*narrow_toy)).counts
    wide = rank_uniformity(sbc_ranks(*wide_toy)).counts
    assert np.all(narrow[[0, -1]].min(axis=0) > 1.5 * narrow[4:6].max(axis=0))
    assert np.all(wide[4:6].min(axis=0) > 1.5 * wide[[0, -1]].max(axis=0))


def test_bin_probabilities_discrete_null():
    np.testing.assert_allclose(rank_bin_probabilities(4), 0.25)
    # ranks k/3, k = 0..3 -> bins [0, .25) .. [.75, 1]: {0}, {1/3}, {2/3}, {1}
    np.testing.assert_allclose(rank_bin_probabilities(4, n_draw=3), 0.25)
    # ranks k/2 -> {0}, {}, {0.5}, {1}
    np.testing.assert_allclose(rank_bin_probabilities(4, n_draw=2), [1 / 3, 0, 1 / 3, 1 / 3])
