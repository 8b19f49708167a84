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

from sedflow_jax.mcmc.marginal import log_mass_integral, sample_log_mass
from sedflow_jax.mcmc.model import (
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


def test_collapsed_density_equals_integrated_original(setup):
    """log density of collapsed_model = log_jac(w, q) + log sum over the burst pieces of the original posterior
    (photometry_model) integrated over log10 M*."""
    prior, fm, kw = setup
    t_cut = burst_cut(fm, prior.low, prior.high)
    for rest in _rest_points(prior, 3, 7):
        got = float(log_density(collapsed_model, (), kw, {"theta_rest": rest})[0])
        _, log_jac = collapsed_coordinates(rest, prior.low, prior.high, t_cut)
        ref = float(np.logaddexp(*_original_pieces(prior, fm, kw, rest))) + float(log_jac)
        assert got == pytest.approx(ref, abs=2e-3), (rest, got, ref)


def test_draws_follow_the_conditionals(setup):
    """P(burst on | rest) and the log10 M* draws agree with the brute-force conditionals."""
    prior, fm, kw = setup
    rest = _rest_points(prior, 1, 11)[0]
    pieces = _original_pieces(prior, fm, kw, rest)
    p_on = 1.0 / (1.0 + np.exp(pieces[1] - pieces[0]))
    keys = jax.random.split(jax.random.key(3), 20000)
    v, s = jax.vmap(lambda k: draw_mass_and_burst(k, rest, **kw))(keys)
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


def test_chains_split_over_host_devices(tmp_path):
    """With 2 host devices a galaxy's 4 chains run 2 per device and come back as 4 chains, continued once
    from the per-device states (extension keys of their own); the starts are searched once for all 4 chains
    and sharded."""
    code = textwrap.dedent(
        """
        import os
        os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
        import warnings, jax, numpy as np
        from sedflow_jax.mcmc import NUTSConfig, run_nuts
        from sedflow_jax.mcmc.devices import chain_devices
        from sedflow_jax.model import ProvabgsModel
        assert jax.local_device_count() == 2
        m = ProvabgsModel.build(z_max=0.2)
        theta = np.array([10.8, 0.30, 0.35, 0.20, 0.15, 0.05, 1.5, 6e-3, 4e-3, 0.5, 0.4, -0.3])
        flux = np.asarray(m(theta, 0.08)); ivar = 1 / (0.05 * flux) ** 2
        cfg = NUTSConfig(num_warmup=30, num_samples=20, num_chains=4, max_tree_depth=5, init_draws=8,
                         init_keep=2, init_steps=10, max_extensions=1)
        assert chain_devices(cfg) == 2
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
        assert "collapsed_model" in res.idata.attrs["sampler"]
        print("OK", tf.shape)
        """
    )
    env = dict(os.environ)
    env.pop("XLA_FLAGS", None)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0 and "OK" in r.stdout, r.stderr[-3000:]
