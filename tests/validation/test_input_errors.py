"""Bad inputs fail with a ValueError that names the argument."""

import numpy as np
import pytest

from sedflow_jax.validation import (c2st, coverage_from_ranks, expected_coverage, rank_uniformity, sbc_ranks,
                                    tarp_coverage, wasserstein_over_sigma)

SAMPLES = np.random.default_rng(0).normal(size=(50, 4, 2))
TRUTH = np.zeros((4, 2))


@pytest.mark.parametrize("fn", [sbc_ranks, expected_coverage, tarp_coverage])
def test_truth_shape_mismatch(fn):
    with pytest.raises(ValueError, match=r"truth\.shape"):
        fn(SAMPLES, np.zeros((3, 2)))


@pytest.mark.parametrize("fn", [sbc_ranks, expected_coverage, tarp_coverage])
def test_samples_not_3d(fn):
    with pytest.raises(ValueError, match=r"samples.*3 dimensions"):
        fn(SAMPLES[:, 0], TRUTH)


def test_nan_samples_named():
    bad = SAMPLES.copy()
    bad[3, 1, 0] = np.nan
    with pytest.raises(ValueError, match=r"samples contains 1 non-finite.*\(3, 1, 0\)"):
        sbc_ranks(bad, TRUTH)


def test_nan_truth_named():
    bad = TRUTH.copy()
    bad[2, 1] = np.inf
    with pytest.raises(ValueError, match="truth contains 1 non-finite"):
        tarp_coverage(SAMPLES, bad)


def test_wrong_sample_axis_hint():
    with pytest.raises(ValueError, match="n_draw=1.*sample_axis"):
        sbc_ranks(SAMPLES[:1], TRUTH)


def test_ranks_out_of_range():
    with pytest.raises(ValueError, match=r"ranks must be normalised ranks in \[0, 1\]"):
        rank_uniformity(np.full((10, 2), 3.0))


def test_bad_levels_and_bins():
    with pytest.raises(ValueError, match="levels must lie in"):
        coverage_from_ranks(np.full((10, 1), 0.5), levels=[0.5, 1.5])
    with pytest.raises(ValueError, match="n_bins"):
        rank_uniformity(np.full((10, 1), 0.5), n_bins=0)


def test_tarp_bad_arguments():
    with pytest.raises(ValueError, match="n_refs"):
        tarp_coverage(SAMPLES, TRUTH, n_refs=0)
    with pytest.raises(ValueError, match="metric"):
        tarp_coverage(SAMPLES, TRUTH, metric="cosine")
    with pytest.raises(ValueError, match="zero or negative width.*range of truth"):
        tarp_coverage(SAMPLES, TRUTH)  # all truths equal -> degenerate box
    with pytest.raises(ValueError, match=r"references\.shape"):
        tarp_coverage(SAMPLES, TRUTH + np.arange(8).reshape(4, 2), references=np.zeros((1, 3, 2)))


def test_compare_bad_arguments():
    a = np.random.default_rng(1).normal(size=(100, 2))
    with pytest.raises(ValueError, match="same n_param"):
        wasserstein_over_sigma(a, a[:, :1])
    with pytest.raises(ValueError, match="samples_b has zero spread"):
        wasserstein_over_sigma(a, np.ones((100, 2)))
    with pytest.raises(ValueError, match=r"samples_a.*shape \(n_draw, n_param\)"):
        c2st(a[None], a)
    with pytest.raises(ValueError, match="classifier must be one of"):
        c2st(a, a, classifier="svm")
    with pytest.raises(ValueError, match="n_folds"):
        c2st(a, a, n_folds=1)
