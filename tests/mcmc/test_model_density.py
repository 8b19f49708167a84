"""The numpyro model's log density equals prior + likelihood computed independently."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numpyro.infer.util import log_density, potential_energy
from scipy import stats

from sedflow_jax.mcmc.model import AtRedshift, photometry_model
from sedflow_jax.photometry import check_photometry
from sedflow_jax.model.fixed_redshift import FixedRedshiftModel
from sedflow_jax.priors.sedflow import SEDFLOW_BOUNDS, flow_to_physical, sedflow_prior


def _independent(nuts_model, u, flux_obs, ivar, z):
    """Prior (flat box, numpy) + Gaussian likelihood (scipy) with the general model."""
    low, high = SEDFLOW_BOUNDS
    inside = np.all((u > low) & (u < high))
    log_prior = -np.sum(np.log(high - low)) if inside else -np.inf
    flux = np.asarray(nuts_model(flow_to_physical(jnp.asarray(u, jnp.float32)), jnp.float32(z)), np.float64)
    ok = ivar > 0
    return log_prior + np.sum(stats.norm.logpdf(flux_obs[ok], flux[ok], 1 / np.sqrt(ivar[ok])))


@pytest.mark.parametrize("fixed", [True, False])
def test_log_density_equals_prior_plus_likelihood(nuts_model, galaxy, fixed):
    flux_obs, ivar, z, _ = galaxy
    ivar = ivar.copy()
    ivar[0] = 0.0  # a missing band is dropped from the likelihood
    prior = sedflow_prior()
    fm = FixedRedshiftModel.from_model(nuts_model, z) if fixed else AtRedshift(nuts_model, jnp.float32(z))
    kw = dict(flux_model=fm, flux_obs_nmgy=jnp.asarray(flux_obs, jnp.float32), ivar=jnp.asarray(ivar, jnp.float32),
              low=prior.low, high=prior.high)
    for u in np.asarray(prior.sample_flow(jax.random.key(0), 5), np.float64):
        ld, _ = log_density(photometry_model, (), kw, {"theta_flow": jnp.asarray(u, jnp.float32)})
        ref = _independent(nuts_model, u, flux_obs, ivar, z)
        assert float(ld) == pytest.approx(ref, rel=1e-4, abs=1e-2)
        # unconstrained potential = -(log density + log|d u / d x|) for u = low + (high - low) sigmoid(x)
        low, high = SEDFLOW_BOUNDS
        s = (u - low) / (high - low)
        x = np.log(s) - np.log1p(-s)
        log_jac = np.sum(np.log(high - low) + np.log(s) + np.log1p(-s))
        pe = potential_energy(photometry_model, (), kw, {"theta_flow": jnp.asarray(x, jnp.float32)})
        assert float(pe) == pytest.approx(-(ref + log_jac), rel=1e-4, abs=1e-2)


def test_check_photometry_errors():
    f, w = np.ones(5), np.ones(5)
    with pytest.raises(ValueError, match="shape"):
        check_photometry(f, np.ones(4))
    with pytest.raises(ValueError, match="filters"):
        check_photometry(f, w, 4)
    with pytest.raises(ValueError, match="ivar must be finite"):
        check_photometry(f, -w)
    with pytest.raises(ValueError, match="non-finite flux"):
        check_photometry(np.r_[np.nan, f[1:]], w)
    with pytest.raises(ValueError, match="no band"):
        check_photometry(f, 0 * w)
    out_f, _ = check_photometry(np.r_[np.nan, f[1:]], np.r_[0.0, w[1:]])  # masked NaN is fine
    assert np.isfinite(out_f).all()
