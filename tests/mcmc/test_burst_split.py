"""The burst-split reparametrisation: same posterior as the original model, exact sampler.

* the log density of ``burst_split_model`` at (u, s) equals ``photometry_model``'s at the mapped
  t_burst plus the constant log Jacobian of the piecewise-linear map, on a real galaxy;
* with ``profile_mass`` as well, plus log |d log10 M* / d mass_offset| (by autodiff);
* the prior of t_burst implied by (s, u) is U(lo, hi);
* on a toy likelihood with a jump at t_cut, NUTS-within-Gibbs recovers P(s = 1 | data) from
  quadrature within Monte Carlo error.
"""

from __future__ import annotations

from functools import partial

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numpyro.infer.util import log_density

from sedflow_jax.mcmc.model import (
    T_BURST_INDEX,
    AtRedshift,
    burst_cut,
    burst_split_model,
    mass_from_offset,
    photometry_model,
    split_log_jacobian,
    split_to_t_burst,
)
from sedflow_jax.mcmc.run import NUTSConfig, make_run_one
from sedflow_jax.model.fixed_redshift import FixedRedshiftModel
from sedflow_jax.model.sfh import oldest_bin_midpoint
from sedflow_jax.priors.sedflow import flow_to_physical, sedflow_prior

J = T_BURST_INDEX


@pytest.mark.parametrize("fixed", [True, False])
def test_log_density_matches_original_plus_jacobian(nuts_model, galaxy, fixed):
    _check_split_density(nuts_model, galaxy, fixed, profile_mass=False)


def test_log_density_profile_mass(nuts_model, galaxy):
    _check_split_density(nuts_model, galaxy, True, profile_mass=True, off_power=3.0)


def _check_split_density(nuts_model, galaxy, fixed, profile_mass, off_power=1.0):
    flux_obs, ivar, z, _ = galaxy
    prior = sedflow_prior()
    fm = FixedRedshiftModel.from_model(nuts_model, z) if fixed else AtRedshift(nuts_model, jnp.float32(z))
    t_cut = float(burst_cut(fm, prior.low, prior.high))
    t_age = nuts_model.cosmology.age(jnp.float32(z))
    assert t_cut == pytest.approx(float(oldest_bin_midpoint(t_age)), rel=1e-6)
    assert 0.01 < t_cut < 13.27  # the cut lies inside the prior box: the reason for the split
    lo, hi = float(prior.low[J]), float(prior.high[J])
    kw = dict(flux_model=fm, flux_obs_nmgy=jnp.asarray(flux_obs, jnp.float32), ivar=jnp.asarray(ivar, jnp.float32),
              low=prior.low, high=prior.high)
    for i, u in enumerate(np.asarray(prior.sample_flow(jax.random.key(1), 6), np.float64)):
        s = i % 2
        uu = 0.05 + 0.9 * (i + 0.5) / 6  # away from the piece ends
        v = u.copy()
        v[J] = uu
        t = float(split_to_t_burst(uu, s, lo, hi, t_cut))
        assert (t < t_cut) == bool(s)
        u[J] = t
        log_jac = float(split_log_jacobian(s, lo, hi, t_cut))
        assert log_jac == pytest.approx(np.log(t_cut - lo) if s else np.log(hi - t_cut))
        if profile_mass:
            x0 = 0.3 * (i - 2.5)
            params = {"theta_rest": jnp.asarray(v[1:], jnp.float32), "mass_offset": jnp.float32(x0),
                      "burst_on": jnp.asarray(s)}
            model = partial(burst_split_model, profile_mass=True, off_power=off_power)
            ld_split, tr = log_density(model, (), kw, params)
            u = np.asarray(tr["theta_flow"]["value"], np.float64)  # mass mapped from the offset
            assert u[J] == pytest.approx(t, rel=1e-6) and 7.0 < u[0] < 12.5
            w = v[J - 1]  # the sampled f_burst coordinate
            if s == 0:  # f_burst = w^(1/off_power): add log |d f / d w|
                assert u[J - 1] == pytest.approx(w ** (1 / off_power), rel=1e-5)
                log_jac += np.log(w ** (1 / off_power - 1) / off_power)
            else:
                assert u[J - 1] == pytest.approx(w, rel=1e-6)

            def logm(x):
                uu = jnp.asarray(u, jnp.float32).at[0].set(0.0)
                f_unit = fm(flow_to_physical(uu), burst_on=s) if fixed else fm(flow_to_physical(uu))
                return mass_from_offset(x, f_unit, kw["flux_obs_nmgy"], kw["ivar"], 7.0, 12.5)[0]

            assert float(logm(jnp.float32(x0))) == pytest.approx(u[0], abs=1e-5)
            log_jac += float(jnp.log(jax.grad(logm)(jnp.float32(x0))))  # d log10 M* / d x0, by autodiff
        else:
            ld_split, _ = log_density(burst_split_model, (), kw, {"theta_flow_u": jnp.asarray(v, jnp.float32),
                                                                 "burst_on": jnp.asarray(s)})
        ld_orig, _ = log_density(photometry_model, (), kw, {"theta_flow": jnp.asarray(u, jnp.float32)})
        assert float(ld_split) == pytest.approx(float(ld_orig) + log_jac, rel=1e-5, abs=2e-3)


def test_implied_prior_is_uniform():
    lo, hi, t_cut = 0.01, 13.27, 11.3
    rng = np.random.default_rng(0)
    n = 200_000
    s = rng.uniform(size=n) < (t_cut - lo) / (hi - lo)
    t = np.asarray(split_to_t_burst(rng.uniform(size=n), s, lo, hi, t_cut))
    hist, _ = np.histogram(t, bins=20, range=(lo, hi))
    expect = n / 20
    assert np.all(np.abs(hist - expect) < 5 * np.sqrt(expect))


class _ToyFlux(eqx.Module):
    """One band: flux = A [burst on] + B t_burst; the other parameters do not enter."""

    burst_limit_gyr: jax.Array

    def __call__(self, theta, burst_on=None):
        on = (theta[6] < self.burst_limit_gyr) if burst_on is None else burst_on
        return jnp.stack([1.0 * on + 0.1 * theta[6]])


@pytest.mark.parametrize("off_power", [4.0])  # off_power = 1 (the bare split) passes too; one compile keeps the suite fast
def test_gibbs_recovers_jump_posterior(off_power):
    prior = sedflow_prior()
    lo, hi, t_cut = float(prior.low[J]), float(prior.high[J]), 9.0
    f_obs, sigma = 1.2, 0.5
    # quadrature: P(s = 1 | data) = int_lo^t_cut L / int_lo^hi L (flat prior on t_burst)
    t = np.linspace(lo, hi, 400_001)
    like = np.exp(-0.5 * ((f_obs - (1.0 * (t < t_cut) + 0.1 * t)) / sigma) ** 2)
    p_exact = np.sum(like[t < t_cut]) / np.sum(like)
    # profile_mass off: the toy's flux does not scale with the mass
    cfg = NUTSConfig(sampler="gibbs", num_warmup=300, num_samples=1500, num_chains=2, init_draws=8, init_keep=2,
                     init_steps=20, dense_mass=False, profile_mass=False, off_power=off_power)
    run = jax.jit(make_run_one(cfg))
    out = run(jax.random.key(0), _ToyFlux(jnp.float32(t_cut)), jnp.array([f_obs], jnp.float32),
              jnp.array([1 / sigma**2], jnp.float32), prior.low, prior.high)
    s = np.asarray(out["burst_on"], np.float64)
    tb = np.asarray(out["theta_flow"][..., J])
    assert np.all((tb < t_cut) == (s > 0))
    import arviz as az

    ess = float(az.ess(s, method="mean"))
    err = np.sqrt(p_exact * (1 - p_exact) / ess)
    assert abs(s.mean() - p_exact) < 4 * err, (s.mean(), p_exact, err, ess)
    # and the burst-off piece is the flat-likelihood-times-linear-term posterior, not an artefact:
    # its mean t_burst matches quadrature too
    off = t >= t_cut
    mean_off = np.sum(t[off] * like[off]) / np.sum(like[off])
    assert abs(tb[s == 0].mean() - mean_off) < 0.15
    # f_burst does not enter the toy likelihood: its marginal stays the U(0, 1) prior in both states,
    # including the burst-off state where it is sampled as w^(1/off_power)
    fb = np.asarray(out["theta_flow"][..., J - 1])
    for part in (s == 0, s == 1):
        assert abs(fb[part].mean() - 0.5) < 0.05 and abs(np.mean(fb[part] < 0.25) - 0.25) < 0.05
