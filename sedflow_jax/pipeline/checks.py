"""Checks of a catalogue's posteriors against its photometry: the posterior-predictive check and the
classification of rows that need the fallback (moved here from ``benchmarks/real_sdss.py``).

Everything is in flux space with the catalogue's fluxes and inverse variances
(:class:`~sedflow_jax.photometry.Photometry`); magnitudes appear only where the classification reads the
flow's x (colours, magnitude errors against the survey's noise model).
"""

from __future__ import annotations

import numpy as np

from ..flags import FLAGS
from ..photometry import XLayout, apply_error_floor, chi_square
from .fallback import trigger_strings

__all__ = ["posterior_predictive_check", "training_colour_range", "classify_fallback"]


def posterior_predictive_check(flux_nmgy, ivar, flux_model_nmgy, *, floor_mag=None) -> dict:
    """Posterior-predictive chi-square of the observed fluxes against ``K`` model draws per galaxy.

    Args:
        flux_nmgy, ivar: ``(n, B)`` observed fluxes [nmgy] and inverse variances (bands with ivar = 0 unused).
        flux_model_nmgy: ``(n, K, B)`` model fluxes of ``K`` posterior draws per galaxy.
        floor_mag: optional ``(B,)`` magnitude-error floor added in quadrature (model-systematics variant,
            :func:`~sedflow_jax.photometry.apply_error_floor`).

    Returns a dict of arrays:
        chi2_j ``(n, K)``: sum_b ivar_b (f_obs - f_j)^2 per draw;
        chi2_best ``(n,)``: min over draws (the cheap best-fit check);
        chi2_ppc ``(n,)``: sum_b (f_obs - <f>)^2 / (sigma_f^2 + Var_j f) (errors plus draw spread), ~chi2(B)
            if the model is adequate and the posterior calibrated;
        p_ppc ``(n,)``: chi2(B) survival of chi2_ppc;
        p_bayes ``(n,)``: posterior-predictive p-value P(T(y_rep) >= T(y_obs)) with T = chi2 against the draw;
            since y_rep - f_j ~ N(0, sigma) exactly, T(y_rep) ~ chi2(B) and p = mean_j chi2_B.sf(chi2_j).
    """
    from scipy import stats

    f_obs = np.asarray(flux_nmgy, np.float64)
    w = apply_error_floor(f_obs, np.asarray(ivar, np.float64), floor_mag)
    phot = np.asarray(flux_model_nmgy, np.float64)
    dof = f_obs.shape[-1]
    chi2_j = chi_square(phot, f_obs[:, None], w[:, None])
    mean, var = phot.mean(1), phot.var(1)
    w_ppc = w / (1.0 + w * var)  # 1 / (sigma^2 + Var_j f), 0 where the band is unused
    chi2_ppc = chi_square(mean, f_obs, w_ppc)
    return {"chi2_j": chi2_j, "chi2_best": chi2_j.min(1), "chi2_ppc": chi2_ppc, "p_ppc": stats.chi2.sf(chi2_ppc, dof),
            "p_bayes": stats.chi2.sf(chi2_j, dof).mean(1)}


def training_colour_range(posterior, q=(0.1, 99.9)) -> np.ndarray:
    """``(2, 4)`` percentiles ``q`` of the 4 colours (u-g, g-r, r-i, i-z) of the training rows the support model
    stores (its features: r, 4 colours, log10 sigma x 5, z; :mod:`sedflow_jax.anpe.support`)."""
    s = posterior.support
    feats = s.ref * s.std + s.mean  # de-standardise
    return np.percentile(feats[:, 1:5], q, axis=0)


def classify_fallback(x, flags, chi2_best, colour_lo, colour_hi, noise, *, chi2_cut: float) -> dict:
    """Rows that would need the (NUTS) fallback and why.

    A row needs the fallback if it is valid but flagged outside the training support, or if its best-fit
    chi-square over the posterior draws exceeds ``chi2_cut``, or if its redshift is outside the trained range
    (no samples are drawn). Reasons (SEDflow paper 4.2): ``noise`` = sigma_m > median + 3 scatter of the
    survey's noise model ``noise`` (``median_sigma_mag``, ``scatter_sigma_mag``, e.g.
    :func:`sedflow_jax.simulate.noise.load_noise_model`) at the observed magnitude in >= 1 band; ``colour`` = a
    colour outside ``[colour_lo, colour_hi]`` (:func:`training_colour_range`); ``neither``.

    Returns a dict of ``(n,)`` arrays: need, trigger ('redshift', 'support', 'chi2', comma-joined), why, noise_out,
    colour_blue, colour_red, zbad, support, chi2_fail.
    """
    layout = XLayout.of(x)
    mag, sig = (np.asarray(a, np.float64) for a in (layout.mag(x), layout.sigma_mag(x)))
    mu = np.asarray(noise.median_sigma_mag(mag))
    sc = np.asarray(noise.scatter_sigma_mag(mag))
    noise_out = np.any(sig > mu + 3 * sc, 1)
    col = mag[:, :-1] - mag[:, 1:]
    blue = np.any(col < colour_lo, 1)
    red = np.any(col > colour_hi, 1)
    colour_out = blue | red
    zbad = (flags & FLAGS["redshift_outside_range"]) != 0
    support = (flags & FLAGS["outside_support"]) != 0
    chi2_fail = np.isfinite(chi2_best) & (chi2_best > chi2_cut)
    need = zbad | support | chi2_fail
    trig = trigger_strings({"redshift": zbad, "support": support, "chi2": chi2_fail}).astype(str)
    why = np.where(noise_out & colour_out, "noise+colour",
                   np.where(noise_out, "noise", np.where(colour_out, "colour", "neither")))
    return {"need": need, "trigger": trig, "why": np.where(need, why, ""), "noise_out": noise_out,
            "colour_blue": blue, "colour_red": red, "zbad": zbad, "support": support, "chi2_fail": chi2_fail}
