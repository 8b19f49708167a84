"""A tiny deterministic analytic SSP table for fast unit tests (no bagpipes, no files).

The spectra are not stellar-population models. They only have the right units, orders of magnitude
and qualitative behaviour: a blackbody whose temperature falls with age (and slightly with
metallicity), a luminosity that fades as ``age^-0.9`` (985 Lsun/Msun at 1 Myr, ~0.2 at 10 Gyr),
a 4000 A break that deepens with age and metallicity, and a few Gaussian absorption lines.
Surviving and living mass fractions decrease with age.
"""

from __future__ import annotations

import numpy as np

from sedflow_jax.sps.resample import log_wave_edges
from sedflow_jax.sps.table import SSPTable

__all__ = ["synthetic_ssp_table"]

_H_ERG_S = 6.62607015e-27
_K_ERG_PER_K = 1.380649e-16
_C_AA_PER_S = 2.99792458e18
_SIGMA_SB = 5.670374419e-5  # erg/s/cm^2/K^4
#: (centre [A], Gaussian sigma [A], depth at old age and solar Z) of the absorption features.
_LINES = ((3934.8, 8.0, 0.5), (3969.6, 8.0, 0.45), (4862.7, 10.0, 0.25), (5177.0, 15.0, 0.2), (6564.6, 10.0, 0.2))


def _planck_lambda_normalised(wave_aa: np.ndarray, temp_k: np.ndarray) -> np.ndarray:
    """``B_lambda(T) / integral B_lambda dlambda`` in 1/Angstrom; broadcasts ``temp_k[..., None]``."""
    x = _H_ERG_S * _C_AA_PER_S / (wave_aa * _K_ERG_PER_K * temp_k[..., None])
    # B_lambda [erg/s/cm^2/sr/cm] with lambda in cm; the integral over lambda is sigma T^4 / pi.
    lam_cm = wave_aa * 1e-8
    b = 2.0 * _H_ERG_S * (_C_AA_PER_S * 1e-8) ** 2 / lam_cm**5 / np.expm1(np.minimum(x, 700.0))
    return b * 1e-8 / (_SIGMA_SB * temp_k[..., None] ** 4 / np.pi)


def synthetic_ssp_table(n_met: int = 4, n_age: int = 30, n_wave: int = 400) -> SSPTable:
    """Deterministic analytic SSP table in the layout and units of the real one.

    Args:
        n_met: number of metallicities, log-spaced in Z over [2e-4, 0.03].
        n_age: number of ages, log-spaced over [1e5 yr, 13.8 Gyr].
        n_wave: number of log-spaced wavelength bins over 900-30 000 Angstrom.

    Returns:
        SSPTable with L_nu in Lsun/Hz per Msun formed, ``(n_met, n_age, n_wave)``, bin edges,
        living and surviving mass fractions, and ``attrs['kind'] == 'synthetic'``. Spectra are
        evaluated at the bin centres (not bin-averaged).
    """
    if n_met < 2 or n_age < 2 or n_wave < 2:
        raise ValueError("synthetic_ssp_table needs n_met, n_age, n_wave >= 2")
    log10_zmet = np.linspace(np.log10(2e-4), np.log10(0.03), n_met)
    log10_age_gyr = np.linspace(-4.0, np.log10(13.8), n_age)
    edges, wave = log_wave_edges(900.0, 30000.0, n_wave)

    zrel = 10.0 ** (log10_zmet - np.log10(0.02))  # Z / Zsun
    age_yr = 10.0 ** (log10_age_gyr + 9.0)
    t_myr = np.maximum(age_yr / 1e6, 1.0)
    # Effective temperature: ~40 000 K when young, ~4500 K at 10 Gyr; metal-rich populations cooler.
    temp = 4000.0 + 36000.0 * t_myr[None, :] ** -0.35 * zrel[:, None] ** -0.03
    temp = np.broadcast_to(temp, (n_met, n_age))
    lbol = 985.0 * t_myr**-0.9  # Lsun per Msun formed
    llam = lbol[None, :, None] * _planck_lambda_normalised(wave, temp)  # Lsun/A per Msun formed

    # Strength of old-population features: 0 when young, -> 1 after ~1 Gyr; stronger at high Z.
    old = (1.0 - np.exp(-age_yr / 1e9))[None, :] * np.clip(zrel[:, None] ** 0.2, 0.3, 1.5)
    step = 0.5 * (1.0 - np.tanh((wave - 4000.0) / 60.0))  # 1 blueward of 4000 A, 0 redward
    brk = 1.0 - 0.5 * old[..., None] * step  # 4000 A break
    lines = np.ones_like(brk)
    for centre, sigma, depth in _LINES:
        lines *= 1.0 - np.clip(depth * old[..., None], 0.0, 0.9) * np.exp(-0.5 * ((wave - centre) / sigma) ** 2)
    llam = llam * brk * lines
    lnu = llam * wave**2 / _C_AA_PER_S

    # Mass fractions: living falls to ~0.45 at 10 Gyr, remnants grow to ~0.15.
    x = np.log10(1.0 + age_yr / 3e6)
    liv = np.clip(1.0 - 0.15 * x - 0.01 * np.log10(zrel)[:, None], 0.2, 1.0)
    liv = np.broadcast_to(liv, (n_met, n_age)).copy()
    surv = np.minimum(liv + 0.15 * (1.0 - np.exp(-age_yr / 3e8))[None, :], 1.0)
    return SSPTable(
        log10_zmet=log10_zmet,
        log10_age_gyr=log10_age_gyr,
        wave_aa=wave,
        lnu_lsun_per_hz_per_msun=lnu,
        mstar_surv_frac=surv,
        wave_edges_aa=edges,
        mstar_liv_frac=liv,
        attrs={
            "kind": "synthetic",
            "zsun": "0.02",
            "lsun_erg_per_s": "3.826e33",
            "imf": "none (analytic test table)",
            "builder": "sedflow_jax.sps.synthetic.synthetic_ssp_table",
            "n_wave": str(int(n_wave)),
        },
    )
