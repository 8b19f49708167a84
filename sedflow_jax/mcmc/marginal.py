"""The photometric likelihood with log10 M* and the burst switch integrated out exactly.

Two features of the PROVABGS posterior defeat plain NUTS (``docs/nuts.md``):

* the fluxes are exactly linear in M* = 10^logM, so the mass lies on a thin ridge that follows
  every other parameter (dust, SFH, f_burst);
* the burst is dropped when t_burst >= t_cut (the burst cut, inside the prior box), so the
  likelihood jumps in t_burst.

Both can be integrated out of the posterior in closed form or by a one-dimensional quadrature, which
leaves a smooth density in the 10 other coordinates for NUTS; the removed coordinates are then
drawn exactly from their conditionals, draw by draw (a collapsed sampler: the joint draws have the
original posterior).

Mass. For fluxes ``f = M u`` (u: flux per Msun formed) and Gaussian errors,
``-2 ln L(M) = chi2_min + (c M - d)^2`` with ``c = sqrt(sum ivar u^2)``,
``d = sum ivar u f_obs / c`` and ``chi2_min = sum ivar (f_obs - (d/c) u)^2``. Under the box prior
logM ~ U(lo, hi) the marginal is ``exp(-chi2_min/2) / (hi - lo) * I(c, d)`` with
``I = int_lo^hi exp(-(c 10^y - d)^2 / 2) dy``, computed by Gauss-Legendre quadrature on segments
whose ends are placed where ``c 10^y - d = 0, +-1, +-3, +-8`` and, for a peak outside the box,
along the decay from the nearer box edge (:func:`log_mass_integral`; relative
error < 1e-6 against ``scipy.integrate.quad`` in float64, ``tests/mcmc/test_collapsed.py``).

Burst. t_burst ~ U(lo_t, hi_t) is written as a state s (on: t_burst < t_cut) with prior
p_on = (t_cut - lo_t) / (hi_t - lo_t) and a position u ~ U(0, 1) inside the state's piece
(:func:`~sedflow_jax.mcmc.model.split_to_t_burst`). Summing over s gives the smooth mixture
``p_on L_on(u, .) + (1 - p_on) L_off(.)`` (L_off does not depend on u); that sum is in
:mod:`~sedflow_jax.mcmc.model`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np

__all__ = ["mass_statistics", "log_mass_integral", "sample_log_mass", "BREAKS_T"]

#: where the segments of the mass quadrature end, in units of t = c 10^y - d
BREAKS_T = (-8.0, -3.0, -1.0, 0.0, 1.0, 3.0, 8.0)
#: extra segment ends next to each box edge, in units of the edge's decay length 1/|t_edge|
EDGE_STEPS = (0.5, 2.0, 8.0, 30.0)
_N_GL = 16  # Gauss-Legendre nodes per segment
_N_GRID = 64  # sub-intervals per segment for drawing log10 M*
_LN10 = float(np.log(10.0))


def mass_statistics(unit_flux, flux_obs_nmgy, ivar):
    """``(c, d, chi2_min)`` of the Gaussian likelihood in M for fluxes ``M * unit_flux``.

    ``-2 ln L(M) = chi2_min + (c M - d)^2 + const``; bands with ``ivar = 0`` drop out. ``d / c``
    is the unconstrained maximum-likelihood mass (may be negative for noise-dominated data).
    """
    w = jnp.where(ivar > 0, ivar, 0.0)
    a = jnp.sum(w * unit_flux * unit_flux)
    c = jnp.sqrt(a)
    d = jnp.sum(w * unit_flux * flux_obs_nmgy) / c
    m_hat = d / c
    chi2 = jnp.sum(w * (flux_obs_nmgy - m_hat * unit_flux) ** 2)
    return c, d, chi2


def _frame(c, d, lo):
    """Reference point y_ref = log10(D / c), D = max(d, c 10^lo), and D itself.

    Nodes are placed at offsets delta = y - y_ref, with t = D 10^delta - d = D expm1(delta ln10) + (D - d):
    no cancellation in float32 even at signal-to-noise ratios of thousands.
    """
    floor = jnp.exp(jnp.log(c) + lo * _LN10)  # c 10^lo > 0
    big_d = jnp.maximum(d, floor)
    y_ref = (jnp.log(big_d) - jnp.log(c)) / _LN10
    return y_ref, big_d, floor


def _segments(c, d, lo, hi):
    """Segment ends (n_seg + 1,) as offsets from y_ref, monotone, from lo - y_ref to hi - y_ref."""
    y_ref, big_d, floor = _frame(c, d, lo)
    a, b = lo - y_ref, hi - y_ref
    # t at the box edges; when the peak lies outside the box the integrand decays from the
    # nearer edge over dt ~ 1/|t_edge|: extra ends resolve that decay
    t_a = big_d * jnp.expm1(a * _LN10) + (big_d - d)
    t_b = big_d * jnp.expm1(b * _LN10) + (big_d - d)
    k = jnp.asarray(EDGE_STEPS, c.dtype)
    t = jnp.concatenate([
        jnp.asarray(BREAKS_T, c.dtype),
        t_a + k / jnp.maximum(jnp.abs(t_a), 1.0),
        t_b - k / jnp.maximum(jnp.abs(t_b), 1.0),
    ])
    delta = jnp.log(jnp.maximum(d + t, floor) / big_d) / _LN10
    delta = jnp.sort(jnp.clip(delta, a, b))
    ends = jnp.concatenate([jnp.reshape(a, (1,)), delta, jnp.reshape(b, (1,))]).astype(c.dtype)
    return ends, y_ref, big_d


def _log_h(delta, d, big_d):
    t = big_d * jnp.expm1(delta * _LN10) + (big_d - d)
    return -0.5 * t * t


def _segment_log_integrals(c, d, lo, hi):
    """Per-segment log integrals of the mass integrand, the ends, y_ref and D."""
    ends, y_ref, big_d = _segments(c, d, lo, hi)
    x, w = np.polynomial.legendre.leggauss(_N_GL)
    a, b = ends[:-1], ends[1:]
    half = 0.5 * (b - a)
    y = (0.5 * (a + b))[:, None] + half[:, None] * jnp.asarray(x, c.dtype)
    # empty segments (clipped ends) get a tiny positive length: finite logs and zero gradient.
    # 1e-12, not smaller: its square must stay a normal float32 for finite second derivatives
    log_w = jnp.log(jnp.maximum(half, 1e-12))[:, None] + jnp.log(jnp.asarray(w, c.dtype))
    log_h = _log_h(y, d, big_d)
    return jax.nn.logsumexp(log_w + log_h, axis=1), ends, y_ref, big_d


def log_mass_integral(c, d, lo, hi):
    """``log int_lo^hi exp(-(c 10^y - d)^2 / 2) dy`` (c > 0; any real d), differentiable."""
    seg = _segment_log_integrals(c, d, lo, hi)[0]
    return jax.nn.logsumexp(seg)


def sample_log_mass(key, c, d, lo, hi):
    """One draw of y = log10 M* from the density ``exp(-(c 10^y - d)^2 / 2)`` on [lo, hi].

    A segment is chosen by its quadrature mass; inside it, one of 64 equal sub-intervals by its
    trapezoid mass, and the position from the linear density between the sub-interval's ends
    (inverse CDF in closed form). The discretisation error is far below Monte Carlo noise
    (``tests/mcmc/test_collapsed.py`` compares with the exact CDF).
    """
    return _draw_in_segments(key, c, d, lo, hi)[0]


def _draw_in_segments(key, c, d, lo, hi):
    """One draw of y from the mass integrand, and the per-segment log masses it used."""
    k_seg, k_grid = jr.split(key)
    seg, ends, y_ref, big_d = _segment_log_integrals(c, d, lo, hi)
    i = jr.categorical(k_seg, seg)
    a, b = ends[i], ends[i + 1]
    grid = a + (b - a) * jnp.linspace(0.0, 1.0, _N_GRID + 1, dtype=c.dtype)
    lh = _log_h(grid, d, big_d)
    return y_ref + _draw_on_grid(k_grid, grid, lh), seg


def _draw_on_grid(key, grid, lh):
    """One draw from the density exp(lh) given at the ``grid`` points: a sub-interval by its
    trapezoid mass, the position by the closed-form inverse CDF of the linear density on it."""
    k_sub, k_pos = jr.split(key)
    h = jnp.exp(lh - jnp.max(lh))
    h0, h1 = h[:-1], h[1:]
    j = jr.categorical(k_sub, jnp.log(jnp.maximum(h0 + h1, 1e-37)))
    h0, h1 = h0[j], h1[j]
    u = jr.uniform(k_pos, (), grid.dtype)
    x = u * (h0 + h1) / (h0 + jnp.sqrt(jnp.maximum(h0 * h0 + u * (h1 * h1 - h0 * h0), 0.0)) + 1e-37)
    return grid[j] + jnp.clip(x, 0.0, 1.0) * (grid[j + 1] - grid[j])
