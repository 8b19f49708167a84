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
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import numpyro
import numpyro.distributions as dist
from numpyro.distributions import constraints
from jaxtyping import Array, Float

from ..priors.sedflow import flow_to_physical

__all__ = [
    "AtRedshift",
    "photometry_model",
    "burst_split_model",
    "collapsed_model",
    "collapsed_log_likelihood",
    "draw_mass_and_burst",
    "log_age_position",
    "burst_light_fraction",
    "collapsed_coordinates",
    "mass_from_offset",
    "off_fburst",
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


def mass_from_offset(x0, flux_unit, flux_obs_nmgy, ivar, lo, hi, soft_clip: bool = True):
    """log10 M* from the sampled offset ``x0``, and log |d log10 M* / d x0| (``profile_mass``).

    The fluxes are linear in 10^log10 M*, so for fixed other parameters the maximum-likelihood
    mass is m_ML = log10(sum_b ivar f_obs f_unit / sum_b ivar f_unit^2), clipped into the box
    (``soft_clip``: a softplus clip 2% inside the edges, so that the map has no kink where the
    profile mass leaves the box; a hard clip made such kinks where e.g. f_burst -> 1 with the burst
    off needs a mass beyond the box). The map is log10 M* = lo + (hi - lo) sigmoid(logit((m_ML - lo) / (hi - lo)) + x0): a
    bijection R -> (lo, hi) for fixed other parameters, with x0 = 0 at the profile maximum.
    Its Jacobian matrix is triangular, so the density in (x0, others) is the box prior's
    1 / (hi - lo) times (hi - lo) sigmoid'(.), i.e. ``log_jac`` below plus the dropped constant.
    """
    ok = ivar > 0
    w = jnp.where(ok, ivar, 0.0)
    num = jnp.sum(w * flux_obs_nmgy * flux_unit)
    den = jnp.sum(w * flux_unit * flux_unit)
    width = hi - lo
    m_ml = jnp.log10(jnp.maximum(num, 1e-30 * den)) - jnp.log10(den)
    a, b = lo + 0.02 * width, hi - 0.02 * width
    if soft_clip:  # smooth clip into [a, b] (any smooth function of the others keeps the map exact)
        k = 20.0  # 1/dex
        m_ml = a + jax.nn.softplus(k * (m_ml - a)) / k
        m_ml = b - jax.nn.softplus(k * (b - m_ml)) / k
    m_ml = jnp.clip(m_ml, lo + 1e-4 * width, hi - 1e-4 * width)
    p = (m_ml - lo) / width
    z = jnp.log(p) - jnp.log1p(-p) + x0
    logm = lo + width * jax.nn.sigmoid(z)
    log_jac = -jax.nn.softplus(-z) - jax.nn.softplus(z)  # log sigmoid(z) (1 - sigmoid(z))
    return logm, log_jac


F_BURST_INDEX = 4  # f_burst's position in the flow vector


def off_fburst(w, s, power):
    """f_burst and log |d f_burst / d w| from the sampled coordinate w (``off_power``).

    With the burst on (s = 1), f_burst = w. With it off, f_burst only scales the NMF light by
    (1 - f_burst) (degenerate with the mass), and f_burst = w^(1/power): the same uniform prior on
    f_burst puts w near 0 in the off state, so a Gibbs flip off -> on (which keeps w) proposes a
    faint burst that the data can accept. Exact for any power > 0 (the Jacobian is returned).
    """
    if power == 1.0:
        return w, jnp.zeros_like(w)
    inv = 1.0 / power
    f_off = jnp.exp(inv * jnp.log(w))
    jac_off = jnp.log(inv) + (inv - 1.0) * jnp.log(w)
    return jnp.where(s > 0, w, f_off), jnp.where(s > 0, 0.0, jac_off)


def burst_split_model(flux_model, flux_obs_nmgy, ivar, low, high, profile_mass: bool = False,
                      off_power: float = 1.0):
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

    ``profile_mass=True`` also replaces log10 M* by the offset ``mass_offset`` from its profile
    maximum (:func:`mass_from_offset`; the other 10 coordinates are the site ``theta_rest``), which
    removes the tight curved ridge along which the mass follows every other parameter. The
    posterior is the same (the Jacobian is added with ``numpyro.factor``).

    ``off_power != 1`` samples f_burst in the burst-off state as w^(1/off_power)
    (:func:`off_fburst`), which makes the Gibbs flips of s accepted far more often.

    Deterministic site ``theta_flow``: the 11 flow coordinates (t_burst mapped back).
    """
    j = T_BURST_INDEX
    lo, hi = low[j], high[j]
    t_cut = burst_cut(flux_model, low, high)
    p_on = (t_cut - lo) / (hi - lo)
    low_u = low.at[j].set(0.0)
    high_u = high.at[j].set(1.0)
    s = numpyro.sample("burst_on", dist.Bernoulli(probs=p_on))
    if profile_mass:
        rest = numpyro.sample("theta_rest", dist.Uniform(low_u[1:], high_u[1:]).to_event(1))
        x0 = numpyro.sample("mass_offset", dist.ImproperUniform(constraints.real, (), ()))
        v = jnp.concatenate([jnp.zeros((1,), rest.dtype), rest])
    else:
        v = numpyro.sample("theta_flow_u", dist.Uniform(low_u, high_u).to_event(1))
    u = v.at[j].set(split_to_t_burst(v[j], s, lo, hi, t_cut))
    if off_power != 1.0:
        f_b, jac_fb = off_fburst(v[F_BURST_INDEX], s, off_power)
        numpyro.factor("f_burst_jacobian", jac_fb)
        u = u.at[F_BURST_INDEX].set(f_b)
    if profile_mass:
        f_unit = flux_model(flow_to_physical(u), burst_on=s)  # log10 M* = 0
        logm, log_jac = mass_from_offset(x0, f_unit, flux_obs_nmgy, ivar, low[0], high[0])
        numpyro.factor("mass_jacobian", log_jac)
        u = u.at[0].set(logm)
        flux = f_unit * jnp.exp(logm * jnp.log(10.0))
    else:
        flux = flux_model(flow_to_physical(u), burst_on=s)
    numpyro.deterministic("theta_flow", u)
    ok = ivar > 0
    sigma = 1.0 / jnp.sqrt(jnp.where(ok, ivar, 1.0))
    numpyro.sample("flux_obs", dist.Normal(flux, sigma).mask(ok).to_event(1), obs=flux_obs_nmgy)


def _unit_fluxes(flux_model, v_on, v_off, joint_off: bool, joint_on: bool = False):
    """Fluxes with the burst on (at v_on) and off (at v_off), for the mass v[0] (both the same),
    and, for ``joint_on``, the (NMF, burst) parts with the burst on (f_burst = 0 and 1; else None).

    ``joint_off``: the off fluxes are those of the NMF part alone (f_burst = 0; the caller has set
    v_off's f_burst slot to 0), as the joint (mass, f_burst) integral of the off state needs.
    """
    if hasattr(flux_model, "unit_flux_parts"):  # FixedRedshiftModel: one evaluation serves all
        theta = flow_to_physical(v_on)
        nmf, burst = flux_model.unit_flux_parts(theta)
        f_b = theta[5]
        unit_off = nmf if joint_off else (1 - f_b) * nmf
        return (1 - f_b) * nmf + f_b * burst, unit_off, ((nmf, burst) if joint_on else None)
    # general model: its own burst rule puts v_on before the cut and v_off after it
    unit_on = flux_model(flow_to_physical(v_on), burst_on=1)
    unit_off = flux_model(flow_to_physical(v_off), burst_on=0)
    if not joint_on:
        return unit_on, unit_off, None
    k = F_BURST_INDEX
    parts = (flux_model(flow_to_physical(v_on.at[k].set(0.0)), burst_on=1),
             flux_model(flow_to_physical(v_on.at[k].set(1.0)), burst_on=1))
    return unit_on, unit_off, parts


def _collapsed_states(rest, flux_model, flux_obs_nmgy, ivar, low, high, joint_off: bool = False, joint_on: bool = False):
    """Per burst state: flow vectors, mass statistics (c, d) and log marginal; m_ref; the log
    prior density of the collapsed coordinates (:func:`collapsed_coordinates`).

    Mass statistics refer to fluxes of 10^m_ref Msun (c in units of 10^m_ref), so the mass
    integral runs over log10 M* - m_ref. ``joint_off``: the off state's marginal integrates
    log10 M* and f_burst jointly (:func:`~sedflow_jax.mcmc.marginal.log_off_burst_integral`; the
    f_burst box must be [0, 1]) and does not depend on (w, q); otherwise log10 M* only, at the f_burst of q.
    ``joint_on``: the same for the on state (:func:`~sedflow_jax.mcmc.marginal.log_on_burst_integral`); its
    entry then carries the on-state weight statistics as a 4th element.
    """
    from .marginal import (log_mass_integral, log_off_burst_integral, log_on_burst_integral, mass_statistics,
                           on_burst_statistics)

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
    if joint_off:
        v_off = v_off.at[F_BURST_INDEX].set(0.0)
    unit_on, unit_off, parts = _unit_fluxes(flux_model, v_on, v_off, joint_off, joint_on)
    ok = ivar > 0
    safe = jnp.where(ok, ivar, 1.0)
    norm = 0.5 * jnp.sum(jnp.where(ok, jnp.log(safe / (2 * jnp.pi)), 0.0)) - jnp.log(hi_m - lo_m)
    out = []
    # a state with zero prior probability (t_cut clipped to a box edge) contributes nothing
    for state, (unit, prob) in enumerate(((unit_on, p_on), (unit_off, 1 - p_on))):
        extra = ()
        if state == 0 and joint_on:
            c, d, chi2, weight = on_burst_statistics(*parts, flux_obs_nmgy, ivar)
            log_int = log_on_burst_integral(c, d, weight, lo_m - m_ref, hi_m - m_ref)
            extra = (weight,)
        else:
            c, d, chi2 = mass_statistics(unit, flux_obs_nmgy, ivar)
            integral = log_off_burst_integral if (state == 1 and joint_off) else log_mass_integral
            log_int = integral(c, d, lo_m - m_ref, hi_m - m_ref)
        ll = norm - 0.5 * chi2 + log_int
        out.append((c, d, jnp.where(prob > 0, jnp.log(jnp.maximum(prob, 1e-30)) + ll, -jnp.inf)) + extra)
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


def collapsed_log_likelihood(rest, flux_model, flux_obs_nmgy, ivar, low, high, joint_off: bool = False,
                             joint_on: bool = False):
    """log of p(fluxes | other 10 coordinates), with log10 M* and the burst state summed out.

    ``rest`` (10,): the collapsed model's coordinates (:func:`collapsed_coordinates`). Equals ``log sum_s p(s) int L(logM, t_burst(u, s), ...) p(logM) dlogM``
    for the Gaussian flux likelihood and the box prior of log10 M*, with f_burst integrated too in the
    off term when ``joint_off`` (and in the on term when ``joint_on``); see :mod:`sedflow_jax.mcmc.marginal`.
    """
    _, (on, off), _, _ = _collapsed_states(rest, flux_model, flux_obs_nmgy, ivar, low, high, joint_off, joint_on)
    l_on, l_off = on[2], off[2]
    return jnp.logaddexp(l_on, l_off)


def collapsed_model(flux_model, flux_obs_nmgy, ivar, low, high, joint_off: bool = False, joint_on: bool = False):
    """numpyro model of the 10 coordinates left after integrating out log10 M* and the burst state.

    Site ``theta_rest`` ~ U(low'[1:], high'[1:]) (the flow box without log10 M*; t_burst's and
    f_burst's slots hold w and q in (0, 1), whose prior density comes from
    :func:`collapsed_coordinates`) and the factor :func:`collapsed_log_likelihood`. The density is smooth
    (no burst jump, no mass ridge). Draws of the full posterior follow from
    :func:`draw_mass_and_burst` applied to every draw of ``theta_rest``: together they sample
    exactly the posterior of :func:`photometry_model`.

    ``joint_off``: in the burst-off state the fluxes depend on log10 M* and f_burst only
    through the NMF mass M (1 - f_burst), so both are integrated out of that state, whose term then
    does not depend on (w, q): there they keep their prior and are dummies. With f_burst sampled in
    the off state (``joint_off=False``), the box edge of log10 M* becomes a steep wall in (w, q)
    wherever 1 - f_burst asks for more than 10^12.5 Msun, and NUTS diverged there (row 55 of the
    benchmark: 23% of the off-state transitions divergent, 2% of the on-state ones). Off by default:
    in the off state (w, q) then wander over their prior, and t_burst mixed worse (``docs/nuts.md``).
    ``joint_on``: f_burst integrated out of the on state as well
    (:func:`~sedflow_jax.mcmc.marginal.log_on_burst_integral`); with both, q is a dummy in both states.
    """
    j = T_BURST_INDEX
    low_u = low.at[j].set(0.0)
    high_u = high.at[j].set(1.0)
    rest = numpyro.sample("theta_rest", dist.Uniform(low_u[1:], high_u[1:]).to_event(1))
    # one evaluation of the coordinates and fluxes serves the Jacobian and the likelihood
    _, (on, off), _, log_jac = _collapsed_states(rest, flux_model, flux_obs_nmgy, ivar, low, high, joint_off, joint_on)
    l_on, l_off = on[2], off[2]
    numpyro.factor("coordinate_jacobian", log_jac)
    numpyro.factor("marginal_loglik", jnp.logaddexp(l_on, l_off))


def draw_mass_and_burst(key, rest, flux_model, flux_obs_nmgy, ivar, low, high, joint_off: bool = False,
                        joint_on: bool = False):
    """Exact conditional draw of (burst state s, log10 M*) given ``rest``; returns ``(theta_flow, s)``.

    s ~ Bernoulli(p_on L_on / (p_on L_on + (1 - p_on) L_off)) with the marginal likelihoods, then
    log10 M* from its conditional density given s (:func:`~sedflow_jax.mcmc.marginal.sample_log_mass`);
    with ``joint_off`` and s = 0, log10 M* and f_burst jointly
    (:func:`~sedflow_jax.mcmc.marginal.sample_off_burst`), and likewise with ``joint_on`` and s = 1
    (:func:`~sedflow_jax.mcmc.marginal.sample_on_burst`). Use the flags of the model sampled.
    """
    from .marginal import sample_log_mass, sample_off_burst, sample_on_burst

    k_s, k_m = jr.split(key)
    (v_on, v_off), (on, (c_off, d_off, l_off)), m_ref, _ = _collapsed_states(
        rest, flux_model, flux_obs_nmgy, ivar, low, high, joint_off, joint_on
    )
    c_on, d_on, l_on = on[:3]
    s = jr.bernoulli(k_s, jax.nn.sigmoid(l_on - l_off)).astype(jnp.int32)
    lo, hi = low[0] - m_ref, high[0] - m_ref
    if not (joint_on or joint_off):  # one mass sampler for both states: draw once, in the state drawn
        c, d = jnp.where(s > 0, c_on, c_off), jnp.where(s > 0, d_on, d_off)
        return jnp.where(s > 0, v_on, v_off).at[0].set(m_ref + sample_log_mass(k_m, c, d, lo, hi)), s
    if joint_on:
        y_on, f_on = sample_on_burst(k_m, c_on, d_on, on[3], lo, hi)
        v_on = v_on.at[F_BURST_INDEX].set(f_on)
    else:
        y_on = sample_log_mass(k_m, c_on, d_on, lo, hi)
    if joint_off:
        y_off, f_off = sample_off_burst(k_m, c_off, d_off, lo, hi)
        v_off = v_off.at[F_BURST_INDEX].set(f_off)
    else:
        y_off = sample_log_mass(k_m, c_off, d_off, lo, hi)
    v = jnp.where(s > 0, v_on.at[0].set(m_ref + y_on), v_off.at[0].set(m_ref + y_off))
    return v, s


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
