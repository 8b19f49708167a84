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
``p_on L_on(u, .) + (1 - p_on) L_off(.)`` (L_off does not depend on u).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np

__all__ = [
    "mass_statistics",
    "log_mass_integral",
    "sample_log_mass",
    "log_off_burst_integral",
    "sample_off_burst",
    "on_burst_statistics",
    "log_on_burst_integral",
    "sample_on_burst",
    "BREAKS_T",
]

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


def _segments(c, d, lo, hi, extra_y=None):
    """Segment ends (n_seg + 1,) as offsets from y_ref, monotone, from lo - y_ref to hi - y_ref.

    ``extra_y``: further ends (absolute y, clipped to the box) where a weight multiplying the
    integrand changes fast (:func:`log_on_burst_integral`).
    """
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
    if extra_y is not None:
        delta = jnp.concatenate([delta, extra_y - y_ref])
    delta = jnp.sort(jnp.clip(delta, a, b))
    ends = jnp.concatenate([jnp.reshape(a, (1,)), delta, jnp.reshape(b, (1,))]).astype(c.dtype)
    return ends, y_ref, big_d


def _log_h(delta, d, big_d):
    t = big_d * jnp.expm1(delta * _LN10) + (big_d - d)
    return -0.5 * t * t


def _log_edge_weight(delta, b):
    """log K = log(1 - 10^(y - hi)) at offsets ``delta`` (b = hi - y_ref): the f_burst measure of the
    burst-off mass integral (:func:`log_off_burst_integral`), floored where it vanishes at y = hi."""
    return jnp.log(jnp.maximum(-jnp.expm1((delta - b) * _LN10), 1e-30))


def _segment_log_integrals(c, d, lo, hi, edge_weight: bool = False, on_weight=None):
    """Per-segment log integrals of the mass integrand (times a weight), the ends, y_ref and D.

    ``edge_weight``: times K of the burst-off integral; ``on_weight``: ``(s_alpha, d_f, d_a)`` of
    the burst-on integral (:func:`_log_on_weight`), whose transitions also become segment ends.
    """
    extra = None if on_weight is None else _on_weight_ends(*on_weight, c.dtype)
    ends, y_ref, big_d = _segments(c, d, lo, hi, extra)
    x, w = np.polynomial.legendre.leggauss(_N_GL)
    a, b = ends[:-1], ends[1:]
    half = 0.5 * (b - a)
    y = (0.5 * (a + b))[:, None] + half[:, None] * jnp.asarray(x, c.dtype)
    # empty segments (clipped ends) get a tiny positive length: finite logs and zero gradient.
    # 1e-12, not smaller: its square must stay a normal float32 for finite second derivatives
    log_w = jnp.log(jnp.maximum(half, 1e-12))[:, None] + jnp.log(jnp.asarray(w, c.dtype))
    log_h = _log_h(y, d, big_d) + _log_weight(y, ends[-1], y_ref, big_d, c, edge_weight, on_weight)
    return jax.nn.logsumexp(log_w + log_h, axis=1), ends, y_ref, big_d


def _log_weight(delta, b, y_ref, big_d, c, edge_weight, on_weight):
    out = jnp.zeros_like(delta)
    if edge_weight:
        out = out + _log_edge_weight(delta, b)
    if on_weight is not None:
        out = out + _log_on_weight(delta, y_ref, big_d, c, *on_weight)
    return out


def _on_weight_ends(s_alpha, d_f, d_a, dtype):
    """y where the on-state weight's two Phi terms pass t = 0, +-1, +-3 (t1 = M d_a - d_f, t2 = t1 + s_alpha M)."""
    t = jnp.asarray((-3.0, -1.0, 0.0, 1.0, 3.0), dtype)
    def ratio(num, den):  # no inf/nan where den = 0 (the term has no step then)
        ok = jnp.abs(den) > 1e-30
        return jnp.where(ok, num / jnp.where(ok, den, 1.0), 1e-30)

    m = jnp.concatenate([ratio(d_f + t, d_a), ratio(d_f + t, s_alpha + d_a)])
    return jnp.log(jnp.maximum(m, 1e-30)) / _LN10


def _log_on_weight(delta, y_ref, big_d, c, s_alpha, d_f, d_a):
    """log(10^-y (Phi(t2) - Phi(t1))) at offsets ``delta``: the burst-on integrand's weight (see
    :func:`log_on_burst_integral`); M = 10^y = (D / c) 10^delta."""
    log_m = jnp.log(big_d) - jnp.log(c) + delta * _LN10
    m = jnp.exp(log_m)
    return -log_m + _log_ndtr_diff(m * d_a - d_f, s_alpha * m)


def log_mass_integral(c, d, lo, hi):
    """``log int_lo^hi exp(-(c 10^y - d)^2 / 2) dy`` (c > 0; any real d), differentiable."""
    seg = _segment_log_integrals(c, d, lo, hi)[0]
    return jax.nn.logsumexp(seg)


def _log_ndtr_diff(a, h):
    """log(Phi(a + h) - Phi(a)) for h > 0, without cancellation in either tail or for small h."""
    from jax.scipy.special import log_ndtr

    b = a + h
    upper = a >= 0  # both in the upper tail: Phi(b) - Phi(a) = Phi(-a) - Phi(-b)
    hi_, lo_ = jnp.where(upper, log_ndtr(-a), log_ndtr(b)), jnp.where(upper, log_ndtr(-b), log_ndtr(a))
    wide = hi_ + jnp.log(-jnp.expm1(jnp.minimum(lo_ - hi_, -1e-30)))
    # narrow interval: midpoint rule with its h^2 correction (relative error O(h^4) < 1e-8)
    m, hs = a + 0.5 * h, jnp.minimum(h, 1e-2)
    narrow = -0.5 * m * m - 0.5 * np.log(2 * np.pi) + jnp.log(hs) + jnp.log1p(hs * hs * (m * m - 1) / 24)
    return jnp.where(h < 1e-2, narrow, wide)


def _log_below_box(c, d, lo, hi):
    """log of the burst-off integrand's mass below the box: y < lo, where K = 10^(y-lo) - 10^(y-hi).

    With x = 10^y: (1 - 10^(lo-hi)) 10^-lo / ln10 * int_0^(10^lo) exp(-(c x - d)^2 / 2) dx, an erf
    difference in closed form.
    """
    c_xlo = jnp.exp(jnp.log(c) + lo * _LN10)
    return (jnp.log(-jnp.expm1((lo - hi) * _LN10)) - lo * _LN10 - np.log(_LN10) + 0.5 * np.log(2 * np.pi) - jnp.log(c)
            + _log_ndtr_diff(-d, c_xlo))


def log_off_burst_integral(c, d, lo, hi):
    """``log int int_box exp(-(c 10^y (1 - f) - d)^2 / 2) dy df`` over y in [lo, hi], f in [0, 1].

    The burst-off fluxes are ``M (1 - f_burst) u``: they depend on the mass and f_burst only through
    the NMF mass y' = y + log10(1 - f). In (y', f) the f-measure of the box at fixed y' is
    K(y') = min(1, 10^(y'-lo)) - 10^(y'-hi), so the double integral is ``int_{-inf}^{hi} e(y') K(y') dy'``
    with ``e(y') = exp(-(c 10^y' - d)^2 / 2)``: segment quadrature with the weight K on [lo, hi]
    (K -> 0 linearly at hi) plus the part below lo in closed form (:func:`_log_below_box`).
    Differentiable; c > 0, any real d.
    """
    seg = _segment_log_integrals(c, d, lo, hi, edge_weight=True)[0]
    return jnp.logaddexp(jax.nn.logsumexp(seg), _log_below_box(c, d, lo, hi))


def sample_off_burst(key, c, d, lo, hi):
    """One draw of (y, f_burst) from ``exp(-(c 10^y (1 - f) - d)^2 / 2)`` on the box [lo, hi] x [0, 1].

    First the NMF mass y' = y + log10(1 - f) from ``e(y') K(y')`` (:func:`log_off_burst_integral`): on
    [lo, hi] as :func:`sample_log_mass` does with the weight K, below lo from the truncated normal of
    x = 10^y' on (0, 10^lo] (:func:`_draw_truncated_normal`); then f uniform on the interval the box allows at that y'.
    Returns ``(y, f_burst)``.
    """
    k_part, k_in, k_below, k_f = jr.split(key, 4)
    in_box, seg = _draw_in_segments(k_in, c, d, lo, hi, edge_weight=True)
    # below lo: t = c x - d standard normal truncated to (-d, c 10^lo - d]
    t = _draw_truncated_normal(k_below, -d, jnp.exp(jnp.log(c) + lo * _LN10) - d)
    below = jnp.log(jnp.maximum((t + d) / c, 1e-37)) / _LN10
    use_below = jr.bernoulli(k_part, jax.nn.sigmoid(_log_below_box(c, d, lo, hi) - jax.nn.logsumexp(seg)))
    y_nmf = jnp.minimum(jnp.where(use_below, below, in_box), hi)
    # the box at fixed y' = y + log10(1 - f): f in [1 - min(1, 10^(y'-lo)), 1 - 10^(y'-hi)], uniform
    f_lo = 1.0 - jnp.minimum(1.0, jnp.exp((y_nmf - lo) * _LN10))
    f_hi = -jnp.expm1((y_nmf - hi) * _LN10)
    f = f_lo + jr.uniform(k_f, (), c.dtype) * (f_hi - f_lo)
    return y_nmf - jnp.log1p(-f) / _LN10, f


def sample_log_mass(key, c, d, lo, hi):
    """One draw of y = log10 M* from the density ``exp(-(c 10^y - d)^2 / 2)`` on [lo, hi].

    A segment is chosen by its quadrature mass; inside it, one of 64 equal sub-intervals by its
    trapezoid mass, and the position from the linear density between the sub-interval's ends
    (inverse CDF in closed form). The discretisation error is far below Monte Carlo noise
    (``tests/mcmc/test_collapsed.py`` compares with the exact CDF).
    """
    return _draw_in_segments(key, c, d, lo, hi)[0]


def _draw_in_segments(key, c, d, lo, hi, edge_weight: bool = False, on_weight=None):
    """One draw of y from the (weighted) mass integrand, and the per-segment log masses it used."""
    k_seg, k_grid = jr.split(key)
    seg, ends, y_ref, big_d = _segment_log_integrals(c, d, lo, hi, edge_weight, on_weight)
    i = jr.categorical(k_seg, seg)
    a, b = ends[i], ends[i + 1]
    grid = a + (b - a) * jnp.linspace(0.0, 1.0, _N_GRID + 1, dtype=c.dtype)
    lh = _log_h(grid, d, big_d) + _log_weight(grid, ends[-1], y_ref, big_d, c, edge_weight, on_weight)
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


def on_burst_statistics(nmf_flux, burst_flux, flux_obs_nmgy, ivar):
    """Statistics of the burst-on likelihood in (log10 M*, f_burst) for fluxes M ((1 - f) A + f B).

    With D = B - A (ivar metric), s_alpha = |D|, d_f = <D/|D|, f_obs>, d_a = <D/|D|, A>, and A_perp, f_perp the
    parts of A and f_obs orthogonal to D: ``-2 ln L = chi2_perp + (c M - d)^2 + (t - ...)``, c = |A_perp|,
    d = <A_perp, f_perp> / c, chi2_perp = |f_perp|^2 - d^2. Returns ``(c, d, chi2_perp, (s_alpha, d_f, d_a))``.
    """
    w = jnp.where(ivar > 0, ivar, 0.0)
    dv = burst_flux - nmf_flux
    s_alpha = jnp.sqrt(jnp.maximum(jnp.sum(w * dv * dv), 1e-30))
    unit = dv / s_alpha
    d_f, d_a = jnp.sum(w * unit * flux_obs_nmgy), jnp.sum(w * unit * nmf_flux)
    a_perp, f_perp = nmf_flux - d_a * unit, flux_obs_nmgy - d_f * unit
    c = jnp.sqrt(jnp.maximum(jnp.sum(w * a_perp * a_perp), 1e-30))
    d = jnp.sum(w * a_perp * f_perp) / c
    resid = f_perp - (d / c) * a_perp  # the residual itself: |f_perp|^2 - d^2 would cancel in float32
    chi2 = jnp.sum(w * resid * resid)
    return c, d, chi2, (s_alpha, d_f, d_a)


def log_on_burst_integral(c, d, on_weight, lo, hi):
    """``log int_lo^hi dy int_0^1 df exp(-(chi2(M (1 - f) A + M f B) - chi2_perp) / 2)``, M = 10^y.

    With b = M f the burst mass, chi2 is quadratic in b along the line a + b = M: the f-integral is
    (2 pi)^(1/2) / (s_alpha M) (Phi(t2) - Phi(t1)), t1 = M d_a - d_f, t2 = t1 + s_alpha M, times the
    Gaussian in M of the part orthogonal to D. The y-integral is the segment quadrature of the mass
    integrand with the weight 10^-y (Phi(t2) - Phi(t1)), whose steps are extra segment ends.
    ``(c, d, on_weight)`` from :func:`on_burst_statistics`. Differentiable.
    """
    s_alpha = on_weight[0]
    seg = _segment_log_integrals(c, d, lo, hi, on_weight=on_weight)[0]
    return jax.nn.logsumexp(seg) + 0.5 * np.log(2 * np.pi) - jnp.log(s_alpha)


def sample_on_burst(key, c, d, on_weight, lo, hi):
    """One draw of (y, f_burst) from the burst-on integrand of :func:`log_on_burst_integral`.

    y from the weighted segment quadrature, then t ~ N(0, 1) truncated to [t1, t2] (on a grid over
    the part of the interval that holds the mass) and f = (t - t1) / (t2 - t1). Returns ``(y, f_burst)``.
    """
    k_y, k_t = jr.split(key)
    s_alpha, d_f, d_a = on_weight
    y = _draw_in_segments(k_y, c, d, lo, hi, on_weight=on_weight)[0]
    m = jnp.exp(y * _LN10)
    t1 = m * d_a - d_f
    h = s_alpha * m
    t = _draw_truncated_normal(k_t, t1, t1 + h)
    return y, jnp.clip((t - t1) / jnp.maximum(h, 1e-30), 0.0, 1.0)


def _draw_truncated_normal(key, t1, t2):
    """One draw of t ~ N(0, 1) truncated to [t1, t2] (t1 < t2), on a grid over the part of the
    interval that holds the mass: around 0 if inside, else within ~40/|t| of the nearer end (the
    density falls by e^-40 there), so either tail is drawn without loss of precision."""
    inside = (t1 < 0) & (t2 > 0)
    g_lo = jnp.where(inside, jnp.maximum(t1, -9.0), jnp.where(t1 >= 0, t1, jnp.maximum(t1, t2 - 40.0 / jnp.maximum(-t2, 1.0))))
    g_hi = jnp.where(inside, jnp.minimum(t2, 9.0), jnp.where(t1 >= 0, jnp.minimum(t2, t1 + 40.0 / jnp.maximum(t1, 1.0)), t2))
    grid = g_lo + (g_hi - g_lo) * jnp.linspace(0.0, 1.0, 4 * _N_GRID + 1, dtype=jnp.result_type(t1))
    return _draw_on_grid(key, grid, -0.5 * grid * grid)
