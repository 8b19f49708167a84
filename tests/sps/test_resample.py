"""Flux-conserving rebinning: exact for piecewise-linear input, vectorised, and strict on input."""

import numpy as np
import pytest

from sedflow_jax.sps.resample import log_wave_edges, rebin_flux_conserving


def _brute_force(x, f, e):
    """Bin averages by the trapezoid rule on the union of native nodes and edges (exact here)."""
    xx = np.union1d(x, e)
    ff = np.interp(xx, x, f)
    out = []
    for lo, hi in zip(e[:-1], e[1:]):
        m = (xx >= lo) & (xx <= hi)
        out.append(np.trapezoid(ff[m], xx[m]) / (hi - lo))
    return np.array(out)


def test_exact_for_piecewise_linear_and_conserves_total():
    rng = np.random.default_rng(1)
    x = np.sort(rng.uniform(0.0, 10.0, 60))
    x[0], x[-1] = 0.0, 10.0
    f = rng.uniform(0.0, 3.0, (2, 3, 60))  # leading batch axes
    # edges: some bins within one native interval, some spanning many, end points on the range
    e = np.unique(np.concatenate([[0.0, 10.0], rng.uniform(0.0, 10.0, 25), x[10:12] + 1e-3]))
    out = rebin_flux_conserving(x, f, e)
    assert out.shape == (2, 3, e.size - 1)
    for idx in np.ndindex(2, 3):
        np.testing.assert_allclose(out[idx], _brute_force(x, f[idx], e), rtol=1e-12, atol=1e-14)
    # total integral over the full range is conserved exactly
    np.testing.assert_allclose((out * np.diff(e)).sum(-1), np.trapezoid(f, x, axis=-1), rtol=1e-13)


def test_matches_analytic_integral_of_linear_function():
    # A linear function is reproduced exactly by its piecewise-linear interpolant.
    x = np.geomspace(100.0, 1e4, 37)
    f = 2.0 + 0.003 * x
    e, _ = log_wave_edges(150.0, 9000.0, 50)
    out = rebin_flux_conserving(x, f, e)
    analytic = 2.0 + 0.003 * 0.5 * (e[1:] + e[:-1])  # mean of a linear function = value at midpoint
    np.testing.assert_allclose(out, analytic, rtol=1e-13)


def test_matches_analytic_integral_of_smooth_function():
    # A fine native sampling of exp(-x) converges to the analytic bin average.
    x = np.linspace(0.0, 5.0, 200001)
    e = np.linspace(0.5, 4.5, 9)
    out = rebin_flux_conserving(x, np.exp(-x), e)
    analytic = (np.exp(-e[:-1]) - np.exp(-e[1:])) / np.diff(e)
    np.testing.assert_allclose(out, analytic, rtol=1e-9)


def test_nonnegative_output_for_nonnegative_input():
    x = np.linspace(1.0, 2.0, 1001)
    f = np.zeros((1001,))
    f[500] = 1e-300
    out = rebin_flux_conserving(x, f, np.linspace(1.0, 2.0, 37))
    assert np.all(out >= 0)


def test_log_wave_edges():
    edges, centres = log_wave_edges(900.0, 30000.0, 2000)
    assert edges.shape == (2001,) and centres.shape == (2000,)
    assert edges[0] == 900.0 and edges[-1] == 30000.0
    np.testing.assert_allclose(np.diff(np.log(edges)), np.log(30000.0 / 900.0) / 2000, rtol=1e-9)
    np.testing.assert_allclose(centres, np.sqrt(edges[1:] * edges[:-1]))
    with pytest.raises(ValueError):
        log_wave_edges(100.0, 50.0, 10)
    with pytest.raises(ValueError):
        log_wave_edges(100.0, 500.0, 0)


@pytest.mark.parametrize(
    "edges, match",
    [
        (np.array([0.5, 2.0]), "exceed the native range"),
        (np.array([1.0, 3.5]), "exceed the native range"),
        (np.array([2.0, 1.5]), "edges_aa must be finite and strictly increasing"),
    ],
)
def test_rejects_bad_edges(edges, match):
    with pytest.raises(ValueError, match=match):
        rebin_flux_conserving(np.array([1.0, 2.0, 3.0]), np.ones(3), edges)


def test_rejects_bad_native_axis():
    with pytest.raises(ValueError, match="wave_aa"):
        rebin_flux_conserving(np.array([1.0, 3.0, 2.0]), np.ones(3), np.array([1.0, 2.0]))
    with pytest.raises(ValueError, match="flux must have shape"):
        rebin_flux_conserving(np.array([1.0, 2.0, 3.0]), np.ones(4), np.array([1.0, 2.0]))
