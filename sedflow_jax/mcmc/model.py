"""The numpyro model of one galaxy's photometry: SEDflow prior x Gaussian flux likelihood.

As SEDflow's and PROVABGS's MCMC (``sedflow_method.md`` §3.5, ``provabgs_model.md`` §9.1):

* the sampled coordinates are the 11 flow-space parameters ``theta_flow`` (stick-breaking z1..z3
  in place of beta, log10 gamma), uniform in the SEDflow box. The site is a numpyro ``Uniform``,
  so NUTS works in R^11 through numpyro's interval bijection (affine o sigmoid) and the log
  Jacobian of that map is added to the potential: the posterior on the box is exactly SEDflow's
  (flat prior inside, zero outside);
* the model maps them to the 12 physical parameters with
  :func:`~sedflow_jax.priors.sedflow.flow_to_physical` and evaluates the fluxes;
* the likelihood is ln L = sum_b ln N(f_obs,b | f_model,b, 1/sqrt(ivar_b)) with fluxes in
  nanomaggies (the same chi^2 as PROVABGS, plus the constant normalisation). Bands with
  ``ivar = 0`` are masked out (missing data), so any filter set and partially observed galaxies
  work.

``flux_model`` is any callable ``theta (12,) -> flux_nmgy (n_band,)`` that is a JAX pytree, e.g. a
:class:`~sedflow_jax.model.fixed_redshift.FixedRedshiftModel` (what :func:`~sedflow_jax.mcmc.run_nuts`
uses) or :class:`AtRedshift` around a :class:`~sedflow_jax.model.ProvabgsModel`.
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from jaxtyping import Array, Float

from ..priors.sedflow import flow_to_physical

__all__ = [
    "AtRedshift",
    "photometry_model",
    "burst_split_model",
    "burst_cut",
    "split_to_t_burst",
    "split_log_jacobian",
    "log_likelihood",
    "check_photometry",
    "T_BURST_INDEX",
]

T_BURST_INDEX = 5  # t_burst's position in the flow vector (FLOW_NAMES)


class AtRedshift(eqx.Module):
    """``ProvabgsModel`` bound to one redshift: ``AtRedshift(model, z)(theta) == model(theta, z)``."""

    model: eqx.Module
    redshift: Float[Array, ""]

    @property
    def burst_limit_gyr(self):
        """t_burst at which the model drops the burst (see :func:`burst_cut`)."""
        from ..model.sfh import oldest_bin_midpoint

        t_age = self.model.cosmology.age(jnp.asarray(self.redshift, self.model.dtype))
        return oldest_bin_midpoint(t_age) if self.model.burst_rule == "fsps_quirk" else t_age

    def __call__(self, theta, burst_on=None):
        return self.model(theta, self.redshift)  # the model's own burst rule


def burst_cut(flux_model, low, high):
    """The burst cut t_cut of ``flux_model``, clipped to the prior box of t_burst [low_j, high_j].

    ``flux_model.burst_limit_gyr`` is the model's cut: the oldest non-empty bin's midpoint for
    ``burst_rule='fsps_quirk'``, t_age for ``'age'`` (both depend on the redshift only).
    """
    j = T_BURST_INDEX
    return jnp.clip(jnp.asarray(flux_model.burst_limit_gyr, low.dtype), low[j], high[j])


def split_to_t_burst(u, s, lo, hi, t_cut):
    """t_burst from the split coordinates: ``lo + u (t_cut - lo)`` if s = 1 else ``t_cut + u (hi - t_cut)``."""
    return jnp.where(s > 0, lo + u * (t_cut - lo), t_cut + u * (hi - t_cut))


def split_log_jacobian(s, lo, hi, t_cut):
    """log |d t_burst / d u| of :func:`split_to_t_burst` (constant on each piece)."""
    return jnp.where(s > 0, jnp.log(t_cut - lo), jnp.log(hi - t_cut))


def log_likelihood(flux_model_nmgy, flux_obs_nmgy, ivar):
    """Gaussian log likelihood of the observed fluxes, bands with ivar = 0 dropped."""
    ok = ivar > 0
    safe = jnp.where(ok, ivar, 1.0)
    terms = -0.5 * safe * (flux_obs_nmgy - flux_model_nmgy) ** 2 + 0.5 * jnp.log(safe / (2 * jnp.pi))
    return jnp.sum(jnp.where(ok, terms, 0.0), axis=-1)


def photometry_model(flux_model, flux_obs_nmgy, ivar, low, high):
    """numpyro model: ``theta_flow ~ U(low, high)``, ``flux_obs ~ N(flux_model(theta), ivar^-1/2)``.

    Args:
        flux_model: pytree callable ``theta (12,) -> (n_band,)`` fluxes in nanomaggies.
        flux_obs_nmgy: ``(n_band,)`` observed fluxes (nanomaggies; may be negative).
        ivar: ``(n_band,)`` inverse variances (nmgy^-2); 0 marks a missing band.
        low, high: ``(11,)`` flow-space box (:class:`~sedflow_jax.priors.SEDflowPrior`).

    Sites: ``theta_flow`` (sampled), ``flux_obs`` (observed). The physical parameters are not
    recorded in the trace (derive them with ``flow_to_physical`` after sampling).
    """
    u = numpyro.sample("theta_flow", dist.Uniform(low, high).to_event(1))
    flux = flux_model(flow_to_physical(u))
    ok = ivar > 0
    sigma = 1.0 / jnp.sqrt(jnp.where(ok, ivar, 1.0))
    numpyro.sample("flux_obs", dist.Normal(flux, sigma).mask(ok).to_event(1), obs=flux_obs_nmgy)


def burst_split_model(flux_model, flux_obs_nmgy, ivar, low, high):
    """The same posterior as :func:`photometry_model`, with t_burst split at the burst cut.

    PROVABGS drops the burst when t_burst >= t_cut (:func:`burst_cut`), so the likelihood jumps at
    t_cut, inside the prior box [lo, hi] of t_burst; HMC cannot cross the jump. Here

    * ``burst_on`` = s ~ Bernoulli(p_on), p_on = (t_cut - lo) / (hi - lo) (discrete: Gibbs);
    * ``theta_flow_u`` ~ U(low', high'): the flow box with t_burst's coordinate replaced by
      u ~ U(0, 1) (continuous: NUTS);
    * t_burst = lo + u (t_cut - lo) if s = 1 (burst kept) else t_cut + u (hi - t_cut).

    t_burst is then exactly U(lo, hi) (density p_on / (t_cut - lo) = (1 - p_on) / (hi - t_cut) =
    1 / (hi - lo) on both pieces), and given s the likelihood is smooth in every continuous
    coordinate. The log density equals :func:`photometry_model`'s at the mapped point plus
    :func:`split_log_jacobian` (``tests/mcmc/test_model_density.py``). The flux model receives
    ``burst_on = s`` where it accepts it (:class:`~sedflow_jax.model.fixed_redshift.FixedRedshiftModel`).
    """
    j = T_BURST_INDEX
    lo, hi = low[j], high[j]
    t_cut = burst_cut(flux_model, low, high)
    p_on = (t_cut - lo) / (hi - lo)
    low_u = low.at[j].set(0.0)
    high_u = high.at[j].set(1.0)
    v = numpyro.sample("theta_flow_u", dist.Uniform(low_u, high_u).to_event(1))
    s = numpyro.sample("burst_on", dist.Bernoulli(probs=p_on))
    u = v.at[j].set(split_to_t_burst(v[j], s, lo, hi, t_cut))
    flux = flux_model(flow_to_physical(u), burst_on=s)
    ok = ivar > 0
    sigma = 1.0 / jnp.sqrt(jnp.where(ok, ivar, 1.0))
    numpyro.sample("flux_obs", dist.Normal(flux, sigma).mask(ok).to_event(1), obs=flux_obs_nmgy)


def check_photometry(flux_obs_nmgy, ivar, n_band: int | None = None, *, name: str = "galaxy"):
    """Validate one galaxy's (or a batch's) fluxes and inverse variances on the host.

    Raises ValueError naming the problem: wrong shapes, non-finite flux where ivar > 0, negative
    or non-finite ivar, or no band with ivar > 0. Returns float64 NumPy arrays.
    """
    f = np.asarray(flux_obs_nmgy, np.float64)
    w = np.asarray(ivar, np.float64)
    if f.shape != w.shape:
        raise ValueError(f"{name}: flux_obs_nmgy has shape {f.shape} but ivar has shape {w.shape}")
    if f.ndim not in (1, 2) or f.shape[-1] == 0:
        raise ValueError(f"{name}: fluxes must have shape (n_band,) or (n_gal, n_band), got {f.shape}")
    if n_band is not None and f.shape[-1] != n_band:
        raise ValueError(f"{name}: {f.shape[-1]} fluxes given but the model has {n_band} filters")
    if np.any(~np.isfinite(w)) or np.any(w < 0):
        raise ValueError(f"{name}: ivar must be finite and >= 0 (use ivar = 0 for a missing band)")
    if np.any(~np.isfinite(f) & (w > 0)):
        raise ValueError(f"{name}: non-finite flux in a band with ivar > 0 (set its ivar to 0 to drop it)")
    if np.any(np.all(w == 0, axis=-1)):
        raise ValueError(f"{name}: no band has ivar > 0; nothing to fit")
    return np.where(w > 0, f, 0.0), w
