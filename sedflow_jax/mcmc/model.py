"""The numpyro models of one galaxy's photometry: SEDflow prior x Gaussian flux likelihood.

As SEDflow's and PROVABGS's MCMC (``sedflow_method.md`` §3.5, ``provabgs_model.md`` §9.1):

* the coordinates are the 11 flow-space parameters ``theta_flow`` (stick-breaking z1..z3 in place of
  beta, log10 gamma), uniform in the SEDflow box; numpyro's interval bijection (affine o sigmoid) maps
  them to R^11 and adds its log Jacobian, so the posterior on the box is exactly SEDflow's;
* the model maps them to the 12 physical parameters with
  :func:`~sedflow_jax.priors.sedflow.flow_to_physical` and evaluates the fluxes;
* the likelihood is ln L = sum_b ln N(f_obs,b | f_model,b, 1/sqrt(ivar_b)) with fluxes in nanomaggies
  (:func:`sedflow_jax.photometry.gaussian_log_likelihood`); bands with ``ivar = 0`` are dropped.

:func:`collapsed_model` (what NUTS samples) is that posterior with log10 M* and the burst state
integrated out exactly (:mod:`~sedflow_jax.mcmc.marginal`); :func:`draw_mass_and_burst` draws both
back. :func:`photometry_model`, the un-collapsed posterior, is the reference density the tests hold
the collapsed one to.

``flux_model`` is any callable ``theta (12,) -> flux_nmgy (n_band,)`` that is a JAX pytree, e.g. a
:class:`~sedflow_jax.model.fixed_redshift.FixedRedshiftModel` (what :func:`~sedflow_jax.mcmc.run_nuts`
uses) or :class:`AtRedshift` around a :class:`~sedflow_jax.model.ProvabgsModel`.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpyro
import numpyro.distributions as dist
from jaxtyping import Array, Float

from ..priors.sedflow import flow_to_physical
from .marginal import log_mass_integral, mass_statistics, sample_log_mass

__all__ = [
    "AtRedshift",
    "photometry_model",
    "collapsed_model",
    "collapsed_log_likelihood",
    "draw_mass_and_burst",
    "log_age_position",
    "burst_light_fraction",
    "collapsed_coordinates",
    "burst_cut",
    "split_to_t_burst",
    "T_BURST_INDEX",
    "F_BURST_INDEX",
]

T_BURST_INDEX = 5  # t_burst's position in the flow vector (FLOW_NAMES)
F_BURST_INDEX = 4  # f_burst's position in the flow vector


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
    """t_burst from its position u in (0, 1) inside the piece of burst state s: ``lo + u (t_cut - lo)`` if s = 1 else ``t_cut + u (hi - t_cut)``."""
    return jnp.where(s > 0, lo + u * (t_cut - lo), t_cut + u * (hi - t_cut))


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


def _unit_fluxes(flux_model, v_on, v_off):
    """Fluxes with the burst on (at v_on) and off (at v_off), for the mass v[0] (both the same)."""
    if hasattr(flux_model, "unit_flux_parts"):  # FixedRedshiftModel: one evaluation serves both
        theta = flow_to_physical(v_on)
        nmf, burst = flux_model.unit_flux_parts(theta)
        f_b = theta[5]  # f_burst in the physical vector (THETA_NAMES)
        return (1 - f_b) * nmf + f_b * burst, (1 - f_b) * nmf
    # general model: its own burst rule puts v_on before the cut and v_off after it
    return flux_model(flow_to_physical(v_on), burst_on=1), flux_model(flow_to_physical(v_off), burst_on=0)


def _collapsed_states(rest, flux_model, flux_obs_nmgy, ivar, low, high):
    """Per burst state (on, off): mass statistics (c, d) and log marginal; the flow vectors of both
    states; m_ref; the log prior density of the collapsed coordinates (:func:`collapsed_coordinates`).

    Mass statistics refer to fluxes of 10^m_ref Msun (c in units of 10^m_ref), so the mass integral
    runs over log10 M* - m_ref.
    """
    j = T_BURST_INDEX
    lo_t, hi_t = low[j], high[j]
    lo_m, hi_m = low[0], high[0]
    t_cut = burst_cut(flux_model, low, high)
    p_on = (t_cut - lo_t) / (hi_t - lo_t)
    # unit fluxes for 10^m_ref Msun (not 1 Msun): O(1) numbers keep float32 derivatives finite
    m_ref = 0.5 * (lo_m + hi_m)
    v, log_jac = collapsed_coordinates(rest, low, high, t_cut)
    v = v.at[0].set(m_ref)
    u = v[j]
    v_on = v.at[j].set(split_to_t_burst(u, 1, lo_t, hi_t, t_cut))
    v_off = v.at[j].set(split_to_t_burst(u, 0, lo_t, hi_t, t_cut))
    unit_on, unit_off = _unit_fluxes(flux_model, v_on, v_off)
    ok = ivar > 0
    safe = jnp.where(ok, ivar, 1.0)
    # the Gaussian normalisation of gaussian_log_likelihood and the mass prior's 1 / (hi - lo)
    norm = 0.5 * jnp.sum(jnp.where(ok, jnp.log(safe / (2 * jnp.pi)), 0.0)) - jnp.log(hi_m - lo_m)
    out = []
    # a state with zero prior probability (t_cut clipped to a box edge) contributes nothing
    for unit, prob in ((unit_on, p_on), (unit_off, 1 - p_on)):
        c, d, chi2 = mass_statistics(unit, flux_obs_nmgy, ivar)
        ll = norm - 0.5 * chi2 + log_mass_integral(c, d, lo_m - m_ref, hi_m - m_ref)
        out.append((c, d, jnp.where(prob > 0, jnp.log(jnp.maximum(prob, 1e-30)) + ll, -jnp.inf)))
    return (v_on, v_off), out, m_ref, log_jac


def log_age_position(w, lo, t_cut):
    """u in (0, 1) from the sampled coordinate w in (0, 1) of the collapsed model, the burst-on age
    t_on = lo + u (t_cut - lo) (Gyr), and log |du/dw|.

    With the burst on, t_burst = lo + u (t_cut - lo); the map makes that t_burst = lo (t_cut/lo)^w,
    uniform in log age. Young bursts change the fluxes far faster per Gyr than old ones (the SSPs
    evolve in log age), so in u the posterior curvature varies by orders of magnitude along t_burst
    and NUTS diverged at young bursts; in w it is even. The same u serves the burst-off piece
    (any bijection of u does: the off likelihood does not depend on u), and the prior density of w,
    du/dw, is added by :func:`collapsed_model`.
    """
    log_ratio = jnp.log(t_cut / lo)
    t_on = lo * jnp.exp(w * log_ratio)
    u = (t_on - lo) / (t_cut - lo)
    return jnp.clip(u, 0.0, 1.0), t_on, jnp.log(t_on) + jnp.log(log_ratio) - jnp.log(t_cut - lo)


#: reference age of the burst-light reparametrisation (:func:`burst_light_fraction`)
BURST_T_REF_GYR = 1.0


def burst_light_fraction(q, t_burst_gyr):
    """f_burst from the sampled coordinate q in (0, 1), and log |d f_burst / d q|.

    logit f_burst = logit q + ln(t_burst / 1 Gyr). A burst's light per unit mass falls roughly as
    1/age, so q tracks the burst's share of the light rather than of the mass: the data constrain
    q almost independently of t_burst, where f_burst lies on a ridge f_burst ~ t_burst that NUTS
    could not follow at young ages (divergences). Exact: any bijection of q for fixed t_burst
    keeps the posterior, with this Jacobian.
    """
    lq = jnp.log(q) - jnp.log1p(-q)
    lf = lq + jnp.log(t_burst_gyr / BURST_T_REF_GYR)
    f_b = jax.nn.sigmoid(lf)
    # log f(1-f) - log q(1-q), with log sigmoid(x) = -softplus(-x)
    log_jac = -jax.nn.softplus(-lf) - jax.nn.softplus(lf) + jax.nn.softplus(-lq) + jax.nn.softplus(lq)
    return f_b, log_jac


def collapsed_coordinates(rest, low, high, t_cut):
    """The 11-D flow vector (log10 M* slot 0, t_burst slot holding the position u) from ``rest``.

    ``rest`` (10,) are the collapsed model's sampled coordinates: the flow box without log10 M*,
    with w (log-age position, :func:`log_age_position`) in t_burst's slot and q (burst light,
    :func:`burst_light_fraction`) in f_burst's slot. Returns ``(v, log_jac)``, log_jac the log
    prior density of (w, q) relative to the uniform (u, f_burst).
    """
    j, k = T_BURST_INDEX, F_BURST_INDEX
    v = jnp.concatenate([jnp.zeros((1,), rest.dtype), rest])
    u, t_on, jac_w = log_age_position(v[j], low[j], t_cut)
    f_b, jac_q = burst_light_fraction(v[k], t_on)
    return v.at[j].set(u).at[k].set(f_b), jac_w + jac_q


def collapsed_log_likelihood(rest, flux_model, flux_obs_nmgy, ivar, low, high):
    """log of p(fluxes | other 10 coordinates), with log10 M* and the burst state summed out.

    ``rest`` (10,): the collapsed model's coordinates (:func:`collapsed_coordinates`). Equals
    ``log sum_s p(s) int L(logM, t_burst(u, s), ...) p(logM) dlogM`` for the Gaussian flux likelihood and
    the box prior of log10 M*; see :mod:`sedflow_jax.mcmc.marginal`.
    """
    _, (on, off), _, _ = _collapsed_states(rest, flux_model, flux_obs_nmgy, ivar, low, high)
    return jnp.logaddexp(on[2], off[2])


def collapsed_model(flux_model, flux_obs_nmgy, ivar, low, high):
    """numpyro model of the 10 coordinates left after integrating out log10 M* and the burst state.

    Site ``theta_rest`` ~ U(low'[1:], high'[1:]) (the flow box without log10 M*; t_burst's and
    f_burst's slots hold w and q in (0, 1), whose prior density comes from
    :func:`collapsed_coordinates`) and the factor :func:`collapsed_log_likelihood`. The density is smooth
    (no burst jump, no mass ridge). Draws of the full posterior follow from
    :func:`draw_mass_and_burst` applied to every draw of ``theta_rest``: together they sample
    exactly the posterior of :func:`photometry_model`.
    """
    j = T_BURST_INDEX
    low_u = low.at[j].set(0.0)
    high_u = high.at[j].set(1.0)
    rest = numpyro.sample("theta_rest", dist.Uniform(low_u[1:], high_u[1:]).to_event(1))
    # one evaluation of the coordinates and fluxes serves the Jacobian and the likelihood
    _, (on, off), _, log_jac = _collapsed_states(rest, flux_model, flux_obs_nmgy, ivar, low, high)
    numpyro.factor("coordinate_jacobian", log_jac)
    numpyro.factor("marginal_loglik", jnp.logaddexp(on[2], off[2]))


def draw_mass_and_burst(key, rest, flux_model, flux_obs_nmgy, ivar, low, high):
    """Exact conditional draw of (burst state s, log10 M*) given ``rest``; returns ``(theta_flow, s)``.

    s ~ Bernoulli(p_on L_on / (p_on L_on + (1 - p_on) L_off)) with the marginal likelihoods, then
    log10 M* from its conditional density given s (:func:`~sedflow_jax.mcmc.marginal.sample_log_mass`).
    """
    k_s, k_m = jr.split(key)
    (v_on, v_off), ((c_on, d_on, l_on), (c_off, d_off, l_off)), m_ref, _ = _collapsed_states(
        rest, flux_model, flux_obs_nmgy, ivar, low, high
    )
    s = jr.bernoulli(k_s, jax.nn.sigmoid(l_on - l_off)).astype(jnp.int32)
    lo, hi = low[0] - m_ref, high[0] - m_ref
    # one mass sampler for both states: draw once, in the state drawn
    c, d = jnp.where(s > 0, c_on, c_off), jnp.where(s > 0, d_on, d_off)
    return jnp.where(s > 0, v_on, v_off).at[0].set(m_ref + sample_log_mass(k_m, c, d, lo, hi)), s
