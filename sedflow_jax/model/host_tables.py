"""Host-side (NumPy, float64) tables of :class:`~sedflow_jax.model.provabgs.ProvabgsModel`, built once.

* :func:`crop_to_bands`: the SSP wavelengths the filters can see for 0 <= z <= z_max;
* :func:`trapezoid_widths` and :func:`band_window_lengths`: the photometric integral's weights and the
  fixed-length node window of each band;
* :func:`precompute_fixed_bins`: the age-interpolated SSP spectra of the lookback-time bins whose edges
  stay below the age of the universe at ``z_max`` (their midpoints do not move with redshift);
* :func:`flux_constant`: Lsun / (4 pi Mpc^2) in nanomaggy units, folded in float64.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..constants import BIRTH_CLOUD_LOG10_AGE_YR, MPC_CM, NMGY_PER_MAGGY
from .sfh import MASTER_EDGES_GYR
from .ssp_interp import age_weights_np

__all__ = ["crop_to_bands", "trapezoid_widths", "band_window_lengths", "FixedBins", "precompute_fixed_bins",
           "runtime_sub_fractions", "flux_constant", "N_SUB_HOST", "N_SUB_RUNTIME"]

N_SUB_HOST = 512  #: sub-ages per bin for 'integrated' sampling of redshift-independent bins
N_SUB_RUNTIME = 8  #: ... and of the oldest bins at run time (SSPs evolve slowly there)


def flux_constant(lsun_erg_per_s: float) -> float:
    """Lsun / (4 pi Mpc^2) in erg/s/cm^2 times nanomaggies per maggy.

    Folded on the host in float64 so that no float32 intermediate ever holds Lsun in erg/s or d_L in cm.
    """
    return lsun_erg_per_s / (4.0 * np.pi * MPC_CM**2) * NMGY_PER_MAGGY


def crop_to_bands(ssp, fset, z_max: float) -> tuple[np.ndarray, np.ndarray]:
    """``(wave_aa, lnu)`` of the table restricted to what ``fset`` sees at 0 <= z <= z_max (+2 nodes)."""
    wave = np.asarray(ssp.wave_aa, np.float64)
    lnu = np.asarray(ssp.lnu_lsun_per_hz_per_msun, np.float64)
    lo, hi = fset.wave_range_aa()
    if wave[0] > lo / (1.0 + z_max) or wave[-1] < hi:
        raise ValueError(
            f"SSP table covers {wave[0]:.0f}-{wave[-1]:.0f} A, but filters {fset.names} at "
            f"0 <= z <= {z_max} need {lo / (1 + z_max):.0f}-{hi:.0f} A rest frame"
        )
    i0 = max(int(np.searchsorted(wave, lo / (1.0 + z_max), side="right")) - 2, 0)
    i1 = min(int(np.searchsorted(wave, hi, side="left")) + 2, wave.size)
    return wave[i0:i1], lnu[..., i0:i1]


def trapezoid_widths(wave: np.ndarray) -> np.ndarray:
    """Trapezoid weights: integral of g dlambda = sum g_i * widths_i."""
    dw = np.empty_like(wave)
    dw[1:-1] = 0.5 * (wave[2:] - wave[:-2])
    dw[0] = 0.5 * (wave[1] - wave[0])
    dw[-1] = 0.5 * (wave[-1] - wave[-2])
    return dw


def band_window_lengths(fset, wave_aa: np.ndarray, z_max: float) -> tuple[int, ...]:
    """Number of SED nodes each band can touch for any 0 <= z <= z_max (+ margin)."""
    z = np.linspace(0.0, z_max, 4001)
    windows = []
    for b in range(fset.n_band):
        w = np.asarray(fset.wave_aa[b, : fset.n_nodes[b]], np.float64)
        lo = np.searchsorted(wave_aa, w[0] / (1 + z), side="right") - 1
        hi = np.searchsorted(wave_aa, w[-1] / (1 + z), side="left")
        windows.append(min(int(np.max(hi - lo)) + 3, wave_aa.size))
    return tuple(windows)


class FixedBins(NamedTuple):
    """Precomputed redshift-independent bins: ``n_fixed`` bins, the first ``n_young`` with light younger
    than the birth-cloud age; ``young`` (n_young * n_met, n_wave) and ``old`` (n_fixed * n_met, n_wave)
    unit-mass spectra (rows: bin-major, metallicity-minor)."""

    n_fixed: int
    n_young: int
    young: np.ndarray
    old: np.ndarray


def runtime_sub_fractions(ssp_sampling: str) -> tuple[float, ...]:
    """Fractions of a run-time bin at which its SSP is sampled: the midpoint, or N_SUB_RUNTIME sub-ages."""
    if ssp_sampling == "midpoint":
        return (0.5,)
    return tuple(float(f) for f in (np.arange(N_SUB_RUNTIME) + 0.5) / N_SUB_RUNTIME)


def precompute_fixed_bins(log10_age_gyr: np.ndarray, lnu: np.ndarray, t_age_min_gyr: float, z_max: float,
                          ssp_sampling: str) -> FixedBins:
    """Age-interpolated SSP spectra (float64) of the bins whose edges lie below ``t_age_min_gyr``.

    Args:
        log10_age_gyr: the table's age grid; ``lnu`` its ``(n_met, n_age, n_wave)`` spectra.
        t_age_min_gyr: age of the universe at ``z_max`` (the youngest universe the model sees).
        ssp_sampling: ``'midpoint'`` (one SSP at each bin's midpoint) or ``'integrated'`` (the bin's
            SSP averaged over N_SUB_HOST sub-ages).
    """
    n_fixed = int(np.sum(MASTER_EDGES_GYR[1:] <= t_age_min_gyr))
    if n_fixed < 1:
        raise ValueError(f"z_max = {z_max} leaves no redshift-independent bins")
    lo_edge, hi_edge = MASTER_EDGES_GYR[:n_fixed], MASTER_EDGES_GYR[1 : n_fixed + 1]
    host_fracs = np.array([0.5]) if ssp_sampling == "midpoint" else (np.arange(N_SUB_HOST) + 0.5) / N_SUB_HOST
    sub_ages = lo_edge[:, None] + (hi_edge - lo_edge)[:, None] * host_fracs
    w_age = age_weights_np(log10_age_gyr, sub_ages.ravel()).reshape(n_fixed, host_fracs.size, -1).mean(axis=1)
    young = log10_age_gyr <= BIRTH_CLOUD_LOG10_AGE_YR - 9.0 + 1e-9
    w_young, w_old = w_age * young, w_age * ~young
    has_young = np.any(w_young > 0, axis=1)
    n_young = int(np.sum(has_young))
    if not np.all(has_young[:n_young]):
        raise ValueError("SSP age grid gives young (<= 10 Myr) weight to non-leading bins")
    if MASTER_EDGES_GYR[n_fixed] <= 10.0 ** (BIRTH_CLOUD_LOG10_AGE_YR - 9.0) * 1.2:
        raise ValueError("run-time bins must be older than the birth-cloud age")
    n_met = lnu.shape[0]
    fixed_young = np.einsum("ka,maw->kmw", w_young[:n_young], lnu).reshape(n_young * n_met, -1)
    fixed_old = np.einsum("ka,maw->kmw", w_old, lnu).reshape(n_fixed * n_met, -1)
    return FixedBins(n_fixed, n_young, fixed_young, fixed_old)
