"""Per-galaxy comparisons: Wasserstein / sigma and C2ST (known answers)."""

import numpy as np
import pytest

from sedflow_jax.validation import c2st, compare_posteriors, wasserstein_over_sigma

pytest.importorskip("sklearn")

W_ATOL = 0.05  # W/sigma of N(0.5, 1) vs N(0, 1) with 5000 draws each
C2ST_SAME_ATOL = 0.05  # |accuracy - 0.5| for identical distributions, 1000 draws each
C2ST_SEPARATED_MIN = 0.98  # 6-sigma separated Gaussians


def _gauss(seed, n, d=3, shift=0.0, scale=1.0):
    return shift + scale * np.random.default_rng(seed).normal(size=(n, d))


def test_wasserstein_shift_in_sigma_units():
    w = wasserstein_over_sigma(_gauss(0, 5000, shift=0.5), _gauss(1, 5000))
    np.testing.assert_allclose(w, 0.5, atol=W_ATOL)
    # units of the reference std: the same shift against a std-2 reference is 0.25
    w2 = wasserstein_over_sigma(_gauss(0, 5000, shift=1.0, scale=2.0), _gauss(1, 5000, scale=2.0))
    np.testing.assert_allclose(w2, 0.5, atol=W_ATOL)


def test_wasserstein_identical_is_small():
    assert np.all(wasserstein_over_sigma(_gauss(2, 5000), _gauss(3, 5000)) < 0.05)


@pytest.mark.parametrize("classifier", ["mlp", "gbt"])
def test_c2st_identical_is_chance(classifier):
    acc = c2st(_gauss(4, 1000), _gauss(5, 1500), classifier=classifier, seed=0)
    assert abs(acc - 0.5) < C2ST_SAME_ATOL, acc


@pytest.mark.parametrize("classifier", ["mlp", "rf"])
def test_c2st_separated_is_one(classifier):
    acc = c2st(_gauss(6, 500, shift=6.0), _gauss(7, 500), classifier=classifier, seed=0)
    assert acc > C2ST_SEPARATED_MIN, acc


def test_c2st_is_seeded():
    a, b = _gauss(8, 300, shift=0.5), _gauss(9, 300)
    assert c2st(a, b, seed=3, classifier="rf") == c2st(a, b, seed=3, classifier="rf")


def test_compare_posteriors_loops_galaxies():
    a = np.stack([_gauss(10, 400, d=2, shift=s) for s in (0.0, 3.0)], axis=1)  # (n_draw, n_gal, n_param)
    b = np.stack([_gauss(11, 300, d=2) for _ in range(2)], axis=1)
    res = compare_posteriors(a, b, classifier="gbt", seed=0)
    assert res.w_over_sigma.shape == (2, 2) and res.c2st.shape == (2,)
    assert res.w_over_sigma[0].max() < 0.3 and res.w_over_sigma[1].min() > 2.5
    assert res.c2st[0] < 0.6 and res.c2st[1] > 0.95
    assert compare_posteriors(a, b, with_c2st=False).c2st is None
