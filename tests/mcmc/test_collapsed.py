"""The collapsed sampler: log10 M* and the burst state integrated out, then drawn exactly.

References are independent: scipy quadrature of the closed-form integrand, and numpyro's log
density of the original ``photometry_model`` integrated over log10 M* by scipy and summed over the
two burst pieces.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numpyro.infer.util import log_density
from scipy import integrate, stats

from sedflow_jax.mcmc.marginal import (
    log_mass_integral,
    log_off_burst_integral,
    log_on_burst_integral,
    on_burst_statistics,
    sample_log_mass,
    sample_off_burst,
    sample_on_burst,
)
from sedflow_jax.mcmc.model import (
    F_BURST_INDEX,
    T_BURST_INDEX,
    burst_cut,
    collapsed_coordinates,
    collapsed_model,
    draw_mass_and_burst,
    photometry_model,
    split_to_t_burst,
)
from sedflow_jax.model.fixed_redshift import FixedRedshiftModel
from sedflow_jax.priors.sedflow import sedflow_prior

LO, HI = -2.75, 2.75  # log10 M* - 9.75 over the SEDflow box [7, 12.5]

# (c, d): peak inside the box at high and low S/N, above and below the box, noise-dominated (d < 0)
CASES = [(1.0, 600.0), (0.3, 3.0), (1.0, -2.0), (0.83, 598.46), (2e-3, 50.0), (50.0, 30.0), (1e-2, 8.0), (3.0, 1e4)]


def _t(c, d, y):
    return c * 10.0**y - d


def _reference_log_integral(c, d):
    y_pk = np.clip(np.log10(max(d, 1e-300) / c), LO, HI)
    shift = -0.5 * _t(c, d, y_pk) ** 2
    pts = [np.log10((d + t) / c) for t in (-8, -3, -1, 0, 1, 3, 8) if d + t > 0]
    ta, tb = _t(c, d, LO), _t(c, d, HI)
    for k in (0.1, 0.5, 2, 8, 30):
        for t in (ta + k / max(abs(ta), 1), tb - k / max(abs(tb), 1)):
            if d + t > 0:
                pts.append(np.log10((d + t) / c))
    pts = sorted(p for p in pts if LO < p < HI)
    val = integrate.quad(lambda y: np.exp(-0.5 * _t(c, d, y) ** 2 - shift), LO, HI, points=pts or None,
                         limit=1000, epsabs=0, epsrel=1e-12)[0]
    return np.log(val) + shift


def _check_integral(fn, ref, c, d):
    got = float(fn(jnp.float32(c), jnp.float32(d), jnp.float32(LO), jnp.float32(HI)))
    # float32: relative precision of a log density of size |ref|
    assert got == pytest.approx(ref, abs=2e-5 * max(1.0, abs(ref)))
    g = jax.grad(lambda cd: fn(cd[0], cd[1], LO, HI))(jnp.array([c, d], jnp.float32))
    assert np.all(np.isfinite(np.asarray(g)))


@pytest.mark.parametrize("c,d", CASES)
def test_log_mass_integral_matches_quadrature(c, d):
    _check_integral(log_mass_integral, _reference_log_integral(c, d), c, d)


# peak above the box: (0.01, 8) decays from the edge over 0.03 dex (narrower edges, e.g. (0.83, 598),
# are 5e-6 dex wide, below float32 resolution of log10 M*, so a KS test would measure rounding)
@pytest.mark.parametrize("c,d", [(1.0, 600.0), (0.3, 3.0), (1.0, -2.0), (0.01, 8.0)])
def test_sample_log_mass_matches_cdf(c, d):
    keys = jax.random.split(jax.random.key(0), 20000)
    y = np.asarray(jax.vmap(lambda k: sample_log_mass(k, jnp.float32(c), jnp.float32(d), LO, HI))(keys), np.float64)
    assert np.all((y >= LO) & (y <= HI))
    y_pk = np.clip(np.log10(max(d, 1e-300) / c), LO, HI)
    shift = -0.5 * _t(c, d, y_pk) ** 2
    dens = lambda v: np.exp(-0.5 * _t(c, d, v) ** 2 - shift)  # noqa: E731
    lo_g, hi_g = np.quantile(y, [0.0, 1.0])
    grid = np.linspace(max(LO, lo_g - 0.1 * (hi_g - lo_g)), min(HI, hi_g + 0.1 * (hi_g - lo_g)), 200001)
    cdf = integrate.cumulative_trapezoid(dens(grid), grid, initial=0.0)
    cdf /= cdf[-1]
    ks = stats.kstest(y, lambda v: np.interp(v, grid, cdf))
    assert ks.pvalue > 1e-3, ks


def _reference_log_off_integral(c, d):
    """log int_0^1 df int_LO^HI exp(-(c 10^y (1 - f) - d)^2 / 2) dy by nested adaptive quadrature (float64)."""
    y_pk = np.log10(max(d, 1e-300) / c)
    shift = -0.5 * _t(c, d, np.clip(y_pk, LO, HI)) ** 2

    def inner(f):
        s = np.log10(1.0 - f)
        pk = y_pk - s
        pts = [p for p in [pk - 0.01, pk, pk + 0.01] + [HI - 10.0**-k for k in range(1, 8)] if LO < p < HI]
        return integrate.quad(lambda y: np.exp(-0.5 * (c * 10 ** (y + s) - d) ** 2 - shift), LO, HI,
                              points=pts or None, limit=500, epsabs=0, epsrel=1e-10)[0]

    # the peak leaves the box at f = 1 - 10^(y_pk - HI); the integrand decays from f = 0 when y_pk > HI
    fs = sorted([f for f in (1 - 10 ** (y_pk - HI), 1 - 10 ** (y_pk - LO)) if 0 < f < 1] + [10.0**-k for k in range(1, 9)])
    val = integrate.quad(lambda f: inner(f) if f < 1 else 0.0, 0.0, 1.0, points=fs, limit=500, epsabs=0, epsrel=1e-9)[0]
    return np.log(val) + shift


# peak inside the box (high and low S/N), above it (the wall), below it (the part under lo matters), d < 0
OFF_CASES = [(0.3, 3.0), (1.0, -2.0), (1.0, 600.0), (2e-3, 50.0), (0.01, 8.0), (0.003, 0.5), (1000.0, 1.0)]


@pytest.mark.parametrize("c,d", OFF_CASES)
def test_log_off_burst_integral_matches_double_quadrature(c, d):
    _check_integral(log_off_burst_integral, _reference_log_off_integral(c, d), c, d)


@pytest.mark.parametrize("c,d", [(0.3, 3.0), (0.01, 8.0), (1000.0, 1.0), (1.0, 60.0)])
def test_sample_off_burst_matches_cdf(c, d):
    """(y, f) draws: the NMF mass y' = y + log10(1 - f) follows e(y') K(y'), f | y' is uniform on the box."""
    keys = jax.random.split(jax.random.key(1), 20000)
    y, f = jax.vmap(lambda k: sample_off_burst(k, jnp.float32(c), jnp.float32(d), LO, HI))(keys)
    y, f = np.asarray(y, np.float64), np.asarray(f, np.float64)
    assert np.all((y >= LO - 1e-4) & (y <= HI + 1e-4) & (f >= 0) & (f <= 1))
    yp = y + np.log10(1 - f)
    shift = -0.5 * _t(c, d, np.clip(np.log10(max(d, 1e-300) / c), -20.0, HI)) ** 2
    kern = lambda v: np.minimum(1.0, 10.0 ** (v - LO)) - 10.0 ** (v - HI)  # noqa: E731
    lo_g, hi_g = np.quantile(yp, [0.0, 1.0])
    grid = np.linspace(lo_g - 0.1 * (hi_g - lo_g) - 1e-3, min(HI, hi_g + 0.1 * (hi_g - lo_g) + 1e-3), 400001)
    cdf = integrate.cumulative_trapezoid(np.exp(-0.5 * _t(c, d, grid) ** 2 - shift) * kern(grid), grid, initial=0.0)
    cdf /= cdf[-1]
    assert stats.kstest(yp, lambda v: np.interp(v, grid, cdf)).pvalue > 1e-3
    f_lo, f_hi = 1 - np.minimum(1.0, 10.0 ** (yp - LO)), 1 - 10.0 ** (yp - HI)
    ok = f_hi - f_lo > 1e-3  # f/(interval) is resolved in float32
    assert stats.kstest((f[ok] - f_lo[ok]) / (f_hi[ok] - f_lo[ok]), "uniform").pvalue > 1e-3


_A0 = np.array([0.2, 0.6, 1.0, 1.3, 1.5])
# (burst fluxes B, true mass, true f_burst, S/N): young burst; burst of the NMF's colours; mass near the box top;
# low S/N; at the box top without a burst
ON_CASES = [(np.array([3.0, 2.5, 2.0, 1.8, 1.6]), 30.0, 0.05, 50), (_A0 * 1.001 + 0.001, 10.0, 0.3, 30),
            (np.array([0.5, 0.8, 1.1, 1.3, 1.45]), 300.0, 0.4, 80), (np.array([3.0, 2.5, 2.0, 1.8, 1.6]), 0.5, 0.5, 3),
            (np.array([6.0, 4.0, 2.0, 1.5, 1.2]), 550.0, 0.0, 100)]


def _on_case(i):
    burst, m_true, f_true, snr = ON_CASES[i]
    flux = m_true * ((1 - f_true) * _A0 + f_true * burst)
    sig = flux / snr
    obs = flux + sig * np.random.default_rng(i).standard_normal(5)
    return _A0, burst, obs, 1 / sig**2


def _on_grid(a, b, obs, ivar, n_y=2001, n_f=801):
    """-chi2/2 of fluxes M ((1 - f) A + f B) on a (y, f) grid over the box (float64)."""
    ys, fs = np.linspace(LO, HI, n_y), np.linspace(0.0, 1.0, n_f)
    m = 10.0 ** ys[:, None, None]
    model = m * ((1 - fs)[None, :, None] * a + fs[None, :, None] * b)
    return ys, fs, -0.5 * np.sum(ivar * (obs - model) ** 2, axis=-1)


@pytest.mark.parametrize("i", range(len(ON_CASES)))
def test_log_on_burst_integral_matches_double_quadrature(i):
    a, b, obs, ivar = _on_case(i)
    chi2 = lambda m_nmf, m_b: np.sum(ivar * (obs - m_nmf * a - m_b * b) ** 2)  # noqa: E731
    ys, fs, lg = _on_grid(a, b, obs, ivar, 1001, 201)
    top = lg.max()
    iy, jf = np.unravel_index(lg.argmax(), lg.shape)
    dens = lambda f, y: np.exp(-0.5 * chi2(10**y * (1 - f), 10**y * f) - top)  # noqa: E731
    inner = lambda y: integrate.quad(lambda f: dens(f, y), 0, 1, points=[fs[jf]], limit=400, epsabs=0, epsrel=1e-10)[0]  # noqa: E731
    val = integrate.quad(inner, LO, HI, points=[ys[iy] - 0.01, ys[iy], ys[iy] + 0.01], limit=400, epsabs=0, epsrel=1e-9)[0]
    c, d, chi2_perp, weight = on_burst_statistics(*(jnp.asarray(v, jnp.float32) for v in (a, b, obs, ivar)))
    ref = np.log(val) + top  # log int int exp(-chi2/2)
    got = float(log_on_burst_integral(c, d, weight, LO, HI)) - 0.5 * float(chi2_perp)
    assert got == pytest.approx(ref, abs=2e-5 * max(1.0, abs(ref)))
    f32 = jnp.asarray(obs, jnp.float32)
    g = jax.grad(lambda o: (lambda c_, d_, x_, w_: log_on_burst_integral(c_, d_, w_, LO, HI) - 0.5 * x_)(
        *on_burst_statistics(jnp.asarray(a, jnp.float32), jnp.asarray(b, jnp.float32), o, jnp.asarray(ivar, jnp.float32))))(f32)
    assert np.all(np.isfinite(np.asarray(g)))


@pytest.mark.parametrize("i", [0, 2, 3])
def test_sample_on_burst_matches_grid_marginals(i):
    """(y, f_burst) draws against the y and f marginals of the burst-on density on a fine grid."""
    a, b, obs, ivar = _on_case(i)
    c, d, _, weight = on_burst_statistics(*(jnp.asarray(v, jnp.float32) for v in (a, b, obs, ivar)))
    keys = jax.random.split(jax.random.key(2), 20000)
    y, f = jax.vmap(lambda k: sample_on_burst(k, c, d, weight, LO, HI))(keys)
    y, f = np.asarray(y, np.float64), np.asarray(f, np.float64)
    assert np.all((y >= LO - 1e-4) & (y <= HI + 1e-4) & (f >= 0) & (f <= 1))
    ys, fs, lg = _on_grid(a, b, obs, ivar, 4001, 2001)
    # the grid holds the density in (log10 M, f) (the box prior is flat in both)
    dens = np.exp(lg - lg.max())
    for draws, grid, marg in ((y, ys, dens.sum(axis=1)), (f, fs, dens.sum(axis=0))):
        cdf = integrate.cumulative_trapezoid(marg, grid, initial=0.0)
        cdf /= cdf[-1]
        assert stats.kstest(draws, lambda v, g=grid, cd=cdf: np.interp(v, g, cd)).pvalue > 1e-3


@pytest.fixture(scope="module")
def setup(nuts_model, galaxy):
    flux_obs, ivar, z, _ = galaxy
    prior = sedflow_prior()
    fm = FixedRedshiftModel.from_model(nuts_model, z)
    kw = dict(flux_model=fm, flux_obs_nmgy=jnp.asarray(flux_obs, jnp.float32), ivar=jnp.asarray(ivar, jnp.float32),
              low=prior.low, high=prior.high)
    return prior, fm, kw


def _rest_points(prior, n, seed):
    j = T_BURST_INDEX
    low_u, high_u = prior.low.at[j].set(0.0)[1:], prior.high.at[j].set(1.0)[1:]
    return jax.random.uniform(jax.random.key(seed), (n, 10), minval=low_u + 0.02 * (high_u - low_u),
                              maxval=high_u - 0.02 * (high_u - low_u))


def _original_pieces(prior, fm, kw, rest):
    """Per burst state s: log of |d t_burst/d u| x int p_orig(theta_flow) dlog10 M* (scipy), in float64."""
    j = T_BURST_INDEX
    lo_t, hi_t = float(prior.low[j]), float(prior.high[j])
    t_cut = float(burst_cut(fm, prior.low, prior.high))
    v, _ = collapsed_coordinates(rest, prior.low, prior.high, burst_cut(fm, prior.low, prior.high))
    logp = jax.jit(lambda th: log_density(photometry_model, (), kw, {"theta_flow": th})[0])
    out = []
    for s, slope in ((1, t_cut - lo_t), (0, hi_t - t_cut)):
        vs = v.at[j].set(split_to_t_burst(v[j], s, lo_t, hi_t, t_cut))
        f = lambda m: float(logp(vs.at[0].set(m)))  # noqa: E731
        grid = np.linspace(7.0, 12.5, 2001)
        lp = np.array([f(m) for m in grid])
        peak = grid[np.argmax(lp)]
        top = lp.max()
        val = integrate.quad(lambda m: np.exp(f(m) - top), 7.0, 12.5, points=[peak], limit=200, epsrel=1e-7)[0]
        out.append(np.log(val) + top + np.log(slope))
    return np.array(out)


def _joint_off_piece(prior, fm, kw, rest):
    """log of |d t_burst/d u| x int int p_orig dlog10 M* df_burst for the burst-off piece (float64, scipy).

    p_orig from the flat flow-box prior and a NumPy Gaussian likelihood of the fluxes M (1 - f_burst) u, u the
    model's burst-off fluxes of 1 Msun at f_burst = 0 (the model is linear in M (1 - f_burst) with the burst off:
    checked here).
    """
    j, k = T_BURST_INDEX, F_BURST_INDEX
    lo_t, hi_t = float(prior.low[j]), float(prior.high[j])
    t_cut = burst_cut(fm, prior.low, prior.high)
    v, _ = collapsed_coordinates(rest, prior.low, prior.high, t_cut)
    v = v.at[j].set(split_to_t_burst(v[j], 0, lo_t, hi_t, t_cut)).at[0].set(0.0)
    from sedflow_jax.priors.sedflow import flow_to_physical

    u = np.asarray(fm(flow_to_physical(v.at[k].set(0.0)), burst_on=0), np.float64)
    u37 = np.asarray(fm(flow_to_physical(v.at[k].set(0.37)), burst_on=0), np.float64)
    np.testing.assert_allclose(u37, 0.63 * u, rtol=2e-5)
    f_obs, ivar = np.asarray(kw["flux_obs_nmgy"], np.float64), np.asarray(kw["ivar"], np.float64)
    a, b = np.sum(ivar * u * u), np.sum(ivar * u * f_obs)
    m_hat = np.log10(b / a)
    chi2 = lambda mm: np.sum(ivar * (f_obs - mm * u) ** 2)  # noqa: E731
    top = -0.5 * chi2(10**np.clip(m_hat, 7.0, 12.5))

    def inner(f):
        pk = m_hat - np.log10(1 - f)
        pts = [p for p in (pk - 0.05, pk, pk + 0.05) if 7.0 < p < 12.5]
        return integrate.quad(lambda m: np.exp(-0.5 * chi2(10**m * (1 - f)) - top), 7.0, 12.5, points=pts or None,
                              limit=200, epsrel=1e-9)[0]

    f_edge = [f for f in (1 - 10 ** (m_hat - 12.5), 1 - 10 ** (m_hat - 7.0)) if 0 < f < 1]
    val = integrate.quad(lambda f: inner(f) if f < 1 else 0.0, 0.0, 1.0, points=f_edge or None, limit=200, epsrel=1e-8)[0]
    log_prior = -float(np.sum(np.log(np.asarray(prior.high, np.float64) - np.asarray(prior.low, np.float64))))
    norm = 0.5 * np.sum(np.log(ivar / (2 * np.pi)))
    return np.log(val) + top + log_prior + norm + np.log(hi_t - float(t_cut))


def _joint_on_piece(prior, fm, kw, rest):
    """log of |d t_burst/d u| x int int p_orig dlog10 M* df_burst for the burst-on piece (float64, scipy), from
    the model's burst-on fluxes at f_burst = 0 and 1 (linearity in f_burst checked here)."""
    j, k = T_BURST_INDEX, F_BURST_INDEX
    lo_t, hi_t = float(prior.low[j]), float(prior.high[j])
    t_cut = burst_cut(fm, prior.low, prior.high)
    v, _ = collapsed_coordinates(rest, prior.low, prior.high, t_cut)
    v = v.at[j].set(split_to_t_burst(v[j], 1, lo_t, hi_t, t_cut)).at[0].set(0.0)
    from sedflow_jax.priors.sedflow import flow_to_physical

    flux = lambda fb: np.asarray(fm(flow_to_physical(v.at[k].set(fb)), burst_on=1), np.float64)  # noqa: E731
    a, b = flux(0.0), flux(1.0)
    np.testing.assert_allclose(flux(0.37), 0.63 * a + 0.37 * b, rtol=2e-5)
    f_obs, ivar = np.asarray(kw["flux_obs_nmgy"], np.float64), np.asarray(kw["ivar"], np.float64)
    chi2 = lambda m, fb: np.sum(ivar * (f_obs - m * ((1 - fb) * a + fb * b)) ** 2)  # noqa: E731
    ys, fs = np.linspace(7.0, 12.5, 551), np.linspace(0.0, 1.0, 101)
    lg = np.array([[-0.5 * chi2(10**y, fb) for fb in fs] for y in ys])
    top = lg.max()
    iy, jf = np.unravel_index(lg.argmax(), lg.shape)
    inner = lambda y: integrate.quad(lambda fb: np.exp(-0.5 * chi2(10**y, fb) - top), 0.0, 1.0, points=[fs[jf]],  # noqa: E731
                                     limit=200, epsrel=1e-9)[0]
    val = integrate.quad(inner, 7.0, 12.5, points=[ys[iy] - 0.02, ys[iy], ys[iy] + 0.02], limit=200, epsrel=1e-8)[0]
    log_prior = -float(np.sum(np.log(np.asarray(prior.high, np.float64) - np.asarray(prior.low, np.float64))))
    norm = 0.5 * np.sum(np.log(ivar / (2 * np.pi)))
    return np.log(val) + top + log_prior + norm + np.log(float(t_cut) - lo_t)


@pytest.mark.parametrize("joint_off,joint_on", [(False, False), (True, False), (True, True)])
def test_collapsed_density_equals_integrated_original(setup, joint_off, joint_on):
    """log density of collapsed_model = log_jac(w, q) + log sum over the burst pieces of the original posterior
    integrated over log10 M* (and over f_burst in the off piece with joint_off, in the on piece with joint_on)."""
    prior, fm, kw = setup
    t_cut = burst_cut(fm, prior.low, prior.high)
    for rest in _rest_points(prior, 3 if not joint_off else 1, 7):
        flags = {"joint_off": joint_off, "joint_on": joint_on}
        got = float(log_density(collapsed_model, (), kw | flags, {"theta_rest": rest})[0])
        _, log_jac = collapsed_coordinates(rest, prior.low, prior.high, t_cut)
        pieces = _original_pieces(prior, fm, kw, rest) if not joint_on else np.zeros(2)
        if joint_on:
            pieces[0] = _joint_on_piece(prior, fm, kw, rest)
        if joint_off:
            pieces[1] = _joint_off_piece(prior, fm, kw, rest)
        ref = float(np.logaddexp(*pieces)) + float(log_jac)
        assert got == pytest.approx(ref, abs=2e-3), (rest, got, ref)


def test_draws_follow_the_conditionals(setup):
    """P(burst on | rest) and the log10 M* draws agree with the brute-force conditionals."""
    prior, fm, kw = setup
    rest = _rest_points(prior, 1, 11)[0]
    pieces = _original_pieces(prior, fm, kw, rest)
    p_on = 1.0 / (1.0 + np.exp(pieces[1] - pieces[0]))
    keys = jax.random.split(jax.random.key(3), 20000)
    v, s = jax.vmap(lambda k: draw_mass_and_burst(k, rest, **kw, joint_off=False))(keys)
    s = np.asarray(s)
    sd = np.sqrt(p_on * (1 - p_on) / s.size) + 1e-4
    assert abs(s.mean() - p_on) < 5 * sd
    # log10 M* given the state with the larger share, against the brute-force conditional CDF
    state = int(p_on > 0.5)
    m = np.asarray(v[:, 0], np.float64)[s == state]
    j = T_BURST_INDEX
    lo_t, hi_t = float(prior.low[j]), float(prior.high[j])
    t_cut = burst_cut(fm, prior.low, prior.high)
    base, _ = collapsed_coordinates(rest, prior.low, prior.high, t_cut)
    vs = base.at[j].set(split_to_t_burst(base[j], state, lo_t, hi_t, t_cut))
    logp = jax.jit(jax.vmap(lambda mm: log_density(photometry_model, (), kw, {"theta_flow": vs.at[0].set(mm)})[0]))
    grid = np.linspace(m.min() - 0.2, m.max() + 0.2, 4001)
    lp = np.asarray(logp(jnp.asarray(grid, jnp.float32)), np.float64)
    cdf = integrate.cumulative_trapezoid(np.exp(lp - lp.max()), grid, initial=0.0)
    cdf /= cdf[-1]
    assert stats.kstest(m, lambda x: np.interp(x, grid, cdf)).pvalue > 1e-3
    # every draw has the burst state its t_burst implies
    t_b = np.asarray(v[:, j])
    assert np.all((t_b < float(t_cut)) == (s == 1))


@pytest.mark.parametrize("joint_on", [False, True])
def test_joint_off_draws_follow_the_conditionals(setup, joint_on):
    """With joint_off (and joint_on): P(burst on | rest) against the brute-force pieces; draws inside the box and on
    the side of the cut their state says."""
    prior, fm, kw = setup
    j, k = T_BURST_INDEX, F_BURST_INDEX
    t_cut = float(burst_cut(fm, prior.low, prior.high))
    for rest in _rest_points(prior, 1, 13):
        on = _joint_on_piece(prior, fm, kw, rest) if joint_on else _original_pieces(prior, fm, kw, rest)[0]
        off = _joint_off_piece(prior, fm, kw, rest)
        p_on = 1.0 / (1.0 + np.exp(off - on))
        v, s = jax.vmap(lambda key: draw_mass_and_burst(key, rest, **kw, joint_off=True, joint_on=joint_on))(
            jax.random.split(jax.random.key(5), 20000))
        v, s = np.asarray(v, np.float64), np.asarray(s)
        assert abs(s.mean() - p_on) < 5 * np.sqrt(p_on * (1 - p_on) / s.size) + 1e-4, (s.mean(), p_on)
        assert np.all((v[:, j] < t_cut) == (s == 1))
        assert np.all((v[:, 0] >= 7.0 - 1e-4) & (v[:, 0] <= 12.5 + 1e-4) & (v[:, k] >= 0) & (v[:, k] <= 1))
        if (s == 0).sum() > 100:  # off draws of f_burst spread over the box (the state no longer fixes it)
            assert np.ptp(v[s == 0, k]) > 0.5


def test_chains_split_over_host_devices(tmp_path):
    """With 2 host devices a galaxy's 4 chains run 2 per device and come back as 4 chains, continued once
    from the per-device states; the starts are searched once for all 4 chains and sharded. One compile serves
    the options too (compiles dominate the suite's time): f_burst integrated out of both burst states
    (joint_off, joint_on), the burst jumps (jump_tries) and the Laplace start selection (init_select)."""
    code = textwrap.dedent(
        """
        import os
        os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
        import warnings, jax, numpy as np
        from sedflow_jax.mcmc import NUTSConfig, run_nuts
        from sedflow_jax.mcmc.run import _chain_devices
        from sedflow_jax.model import ProvabgsModel
        assert jax.local_device_count() == 2
        m = ProvabgsModel.build(z_max=0.2)
        theta = np.array([10.8, 0.30, 0.35, 0.20, 0.15, 0.05, 1.5, 6e-3, 4e-3, 0.5, 0.4, -0.3])
        flux = np.asarray(m(theta, 0.08)); ivar = 1 / (0.05 * flux) ** 2
        cfg = NUTSConfig(num_warmup=30, num_samples=20, num_chains=4, max_tree_depth=5, init_draws=8,
                         init_keep=2, init_steps=10, max_extensions=1, joint_off=True, joint_on=True, jump_tries=8,
                         init_select="laplace")
        assert _chain_devices(cfg) == 2
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = run_nuts(jax.random.key(0), flux, ivar, 0.08, model=m, config=cfg)
        tf = np.asarray(res.idata.posterior["theta_flow"])
        assert tf.shape == (4, 40, 11), tf.shape  # 20 draws cannot pass ESS >= 400: always continued once
        assert np.all(np.isfinite(tf))
        assert res.diagnostics["n_blocks"] == 2
        th = np.asarray(res.idata.posterior["theta"]).reshape(-1, 12)
        assert np.all((th[:, 5] >= 0) & (th[:, 5] <= 1) & (th[:, 0] >= 7) & (th[:, 0] <= 12.5))
        assert abs(float(np.median(th[:, 0])) - theta[0]) < 0.5, np.median(th[:, 0])
        txt = res.idata.attrs["sampler"]
        assert "f_burst too" in txt and "multiple-try jumps" in txt, txt
        assert 0.0 < res.diagnostics["jump_rate"] <= 1.0
        assert res.idata.attrs["jump_rate"] == res.diagnostics["jump_rate"]
        print("OK", tf.shape)
        """
    )
    env = dict(os.environ)
    env.pop("XLA_FLAGS", None)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0 and "OK" in r.stdout, r.stderr[-3000:]
