"""Stellar-remnant mass per solar mass formed, for a Kroupa (2001) IMF (NumPy, float64).

BC03 tabulates only the mass in *living* stars. FSPS (and therefore PROVABGS) counts remnants in
the surviving stellar mass (``add_stellar_remnants=1``). This module estimates the remnant mass
the same way FSPS does:

* IMF: Kroupa (2001), ``dN/dm ~ m^-1.3`` for ``0.1 <= m < 0.5`` and ``m^-2.3`` for
  ``0.5 <= m <= 100`` Msun, normalised to 1 Msun formed.
* Turn-off mass: inverse of the metallicity-dependent main-sequence lifetimes of Raiteri, Villata &
  Navarro (1996, A&A 315, 105), eq. 3, ``log t = a0 + a1 log m + a2 (log m)^2`` (t in yr); Z is
  clamped to that fit's range of validity, 7e-5 <= Z <= 0.03.
* Remnant masses of Renzini & Ciotti (1993), as in FSPS ``add_remnants``: white dwarf
  ``0.077 m + 0.48`` for ``m < 8.5``; neutron star ``1.4`` for ``8.5 <= m < 40``; black hole
  ``0.5 m`` for ``m >= 40`` (Msun).

With the BC03 living fraction this gives 0.609 (10 Gyr), 0.688 (1 Gyr) and 0.783 (100 Myr) at
Z = 0.02, within 0.01 of FSPS-MIST Kroupa (0.599 at 10 Gyr).
"""

from __future__ import annotations

import numpy as np

__all__ = ["kroupa_mass_integral", "raiteri96_turnoff_mass", "remnant_mass_fraction"]

M_LO, M_HI = 0.1, 100.0
#: Kroupa (2001) segments above 0.1 Msun: (m_lo, m_hi, power-law slope of dN/dm).
_KROUPA = ((0.1, 0.5, -1.3), (0.5, 100.0, -2.3))
#: Renzini & Ciotti (1993) remnant masses: (m_lo, m_hi, slope, intercept) of m_rem = slope m + intercept.
_REMNANT = ((M_LO, 8.5, 0.077, 0.48), (8.5, 40.0, 0.0, 1.4), (40.0, M_HI, 0.5, 0.0))
_Z_RANGE_RAITERI = (7e-5, 0.03)


def _kroupa_coeffs() -> list[tuple[float, float, float, float]]:
    """Segments (m_lo, m_hi, slope, coefficient) with continuity and 1 Msun formed in 0.1-100."""
    coeffs, c = [], 1.0
    for i, (lo, hi, a) in enumerate(_KROUPA):
        if i > 0:  # continuity at lo
            c = c * lo ** (_KROUPA[i - 1][2]) / lo**a
        coeffs.append((lo, hi, a, c))
    mass = sum(c * (hi ** (a + 2) - lo ** (a + 2)) / (a + 2) for lo, hi, a, c in coeffs)
    return [(lo, hi, a, c / mass) for lo, hi, a, c in coeffs]


_KROUPA_NORM = _kroupa_coeffs()


def kroupa_mass_integral(m_lo, m_hi, power: int) -> np.ndarray:
    """``integral_{m_lo}^{m_hi} m^power phi(m) dm`` for the normalised Kroupa IMF.

    Args:
        m_lo, m_hi: integration limits, Msun (arrays broadcast; clipped to [0.1, 100]).
        power: 0 for a number integral (stars per Msun formed), 1 for a mass integral
            (Msun per Msun formed).

    Returns:
        The integral, float64, broadcast shape of the limits (0 where ``m_hi <= m_lo``).
    """
    lo_all = np.clip(np.asarray(m_lo, dtype=np.float64), M_LO, M_HI)
    hi_all = np.clip(np.asarray(m_hi, dtype=np.float64), M_LO, M_HI)
    total = np.zeros(np.broadcast(lo_all, hi_all).shape)
    for lo, hi, a, c in _KROUPA_NORM:
        a_lo = np.clip(lo_all, lo, hi)
        a_hi = np.clip(hi_all, lo, hi)
        q = a + power + 1.0
        total = total + np.where(a_hi > a_lo, c * (a_hi**q - a_lo**q) / q, 0.0)
    return total


def raiteri96_turnoff_mass(age_yr, zmet) -> np.ndarray:
    """Main-sequence turn-off mass from the Raiteri et al. (1996) lifetimes.

    Args:
        age_yr: ages in years (array, > 0).
        zmet: absolute metal mass fraction Z (broadcasts with ``age_yr``); clamped to
            [7e-5, 0.03], the range of the fit.

    Returns:
        Turn-off mass in Msun, clipped to [0.1, 100]; 100 where the age is shorter than the
        shortest lifetime of the fit (no star has died yet).
    """
    lz = np.log10(np.clip(np.asarray(zmet, dtype=np.float64), *_Z_RANGE_RAITERI))
    a0 = 10.13 + 0.07547 * lz - 0.008084 * lz**2
    a1 = -4.424 - 0.7939 * lz - 0.1187 * lz**2
    a2 = 1.262 + 0.3385 * lz + 0.05417 * lz**2
    lt = np.log10(np.asarray(age_yr, dtype=np.float64))
    disc = a1**2 - 4.0 * a2 * (a0 - lt)
    # Lower root of a2 x^2 + a1 x + (a0 - log t) = 0: the branch where lifetime falls with mass.
    x = (-a1 - np.sqrt(np.maximum(disc, 0.0))) / (2.0 * a2)
    m = np.where(disc > 0, 10.0**x, M_HI)
    return np.clip(m, M_LO, M_HI)


def _remnant_mass_above(m_to) -> np.ndarray:
    """Remnant mass (Msun per Msun formed) left by all stars with initial mass in [m_to, 100]."""
    m_to = np.asarray(m_to, dtype=np.float64)
    total = np.zeros_like(m_to)
    for lo, hi, slope, icpt in _REMNANT:
        a = np.maximum(m_to, lo)
        total = total + slope * kroupa_mass_integral(a, hi, 1) + icpt * kroupa_mass_integral(a, hi, 0)
    return total


def remnant_mass_fraction(age_yr, zmet) -> np.ndarray:
    """Mass locked in stellar remnants per Msun formed, for an SSP of given age and metallicity.

    Args:
        age_yr: SSP ages in years (array).
        zmet: absolute metal mass fraction Z, broadcasting with ``age_yr``.

    Returns:
        Remnant mass fraction, float64, broadcast shape (0.150 at 10 Gyr, Z = 0.02).
    """
    return _remnant_mass_above(raiteri96_turnoff_mass(age_yr, zmet))
