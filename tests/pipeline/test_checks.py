"""The posterior-predictive check and the fallback classification (sedflow_jax.pipeline.checks)."""

from __future__ import annotations

import numpy as np
import pytest

from sedflow_jax.flags import FLAGS
from sedflow_jax.pipeline import classify_fallback, posterior_predictive_check

P_REJECT = 1e-3


def test_ppc_extremes():
    rng = np.random.default_rng(0)
    f = np.full((3, 5), 10 ** ((22.5 - 17.0) / 2.5))
    s_f = f * 0.01 * np.log(10) / 2.5  # 0.01 mag errors
    ivar = 1 / s_f**2
    phot = np.repeat(f[:, None, :], 50, 1).copy()
    phot[1] += s_f[1] * rng.standard_normal((50, 5))  # draws scattered by the errors: consistent
    phot[2] += 10 * s_f[2]  # 10 sigma off in every band: rejected
    r = posterior_predictive_check(f, ivar, phot)
    assert r["chi2_best"][0] == pytest.approx(0.0, abs=1e-6) and r["p_bayes"][0] == pytest.approx(1.0)
    assert r["p_bayes"][1] > 0.05
    assert r["chi2_best"][2] == pytest.approx(500.0, rel=1e-9) and r["p_bayes"][2] < P_REJECT
    # the draw spread enters chi2_ppc's variance: row 2 has none, so it equals the per-draw chi-square
    assert r["chi2_ppc"][2] == pytest.approx(500.0, rel=1e-9) and r["p_ppc"][2] < P_REJECT
    # an error floor of sqrt(99) x 0.01 mag in quadrature: errors x 10, chi-square / 100
    floored = posterior_predictive_check(f, ivar, phot, floor_mag=np.full(5, np.sqrt(99) * 0.01))
    assert floored["chi2_best"][2] == pytest.approx(5.0, rel=1e-9)


def test_ppc_drops_unused_bands():
    f = np.ones((1, 5))
    ivar = np.array([[1.0, 1.0, 1.0, 1.0, 0.0]])
    phot = np.ones((1, 4, 5))
    phot[..., 4] = 1e6  # a band with ivar = 0 cannot reject
    r = posterior_predictive_check(f, ivar, phot)
    assert r["chi2_best"][0] == 0.0 and np.isfinite(r["chi2_ppc"][0])


class _Noise:
    """A noise model with sigma_m = 0.02 +- 0.01 at every magnitude."""

    def median_sigma_mag(self, mag):
        return np.full(np.shape(mag), 0.02)

    def scatter_sigma_mag(self, mag):
        return np.full(np.shape(mag), 0.01)


def test_classify_fallback():
    mag = np.array([[18.5, 17.0, 16.5, 16.2, 16.0]] * 4)
    mag[2, 0] = 15.0  # u-g = -2: bluer than any training galaxy
    sig = np.full((4, 5), 0.02)
    sig[1, 0] = 1.0  # noise outlier in u (> 0.02 + 3 x 0.01)
    z = np.array([0.1, 0.1, 0.1, 0.25])
    x = np.concatenate([mag, sig, z[:, None]], 1)
    flags = np.array([0, FLAGS["outside_support"], 0, FLAGS["redshift_outside_range"]], np.uint8)
    chi2_best = np.array([1.0, 1.0, 100.0, np.nan])
    lo, hi = np.array([0.5, 0.2, 0.0, -0.2]), np.array([3.0, 1.5, 0.8, 0.6])
    fb = classify_fallback(x, flags, chi2_best, lo, hi, _Noise(), chi2_cut=20.5)
    assert fb["need"].tolist() == [False, True, True, True]
    assert fb["trigger"].tolist() == ["", "support", "chi2", "redshift"]
    assert fb["why"][:3].tolist() == ["", "noise", "colour"]
    assert fb["colour_blue"][2] and not fb["colour_red"][2]
    assert fb["noise_out"].tolist() == [False, True, False, False]
