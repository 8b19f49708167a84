"""The SSP table type (host side, NumPy).

A table holds simple-stellar-population spectra on a (metallicity, age, wavelength) grid in the
DSPS layout. Model code turns it into JAX arrays once, when a model is built.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

__all__ = ["SSPTable", "validate_ssp_arrays"]


@dataclass(frozen=True, eq=False)
class SSPTable:
    """SSP spectra per solar mass formed, rest frame.

    Attributes:
        log10_zmet: ``(n_met,)`` log10 of the absolute metal mass fraction Z, increasing.
        log10_age_gyr: ``(n_age,)`` log10 of the SSP age in Gyr, increasing.
        wave_aa: ``(n_wave,)`` rest-frame wavelength (bin centres), Angstrom, increasing.
        lnu_lsun_per_hz_per_msun: ``(n_met, n_age, n_wave)`` L_nu in Lsun/Hz per Msun formed.
        mstar_surv_frac: ``(n_met, n_age)`` surviving stellar mass (living stars + remnants)
            per Msun formed.
        wave_edges_aa: ``(n_wave + 1,)`` bin edges when the table is bin-averaged, else None.
        mstar_liv_frac: ``(n_met, n_age)`` living-star mass per Msun formed, or None.
        attrs: provenance (source, IMF, isochrones, L_sun convention, source checksum, ...).
    """

    log10_zmet: np.ndarray
    log10_age_gyr: np.ndarray
    wave_aa: np.ndarray
    lnu_lsun_per_hz_per_msun: np.ndarray
    mstar_surv_frac: np.ndarray
    wave_edges_aa: np.ndarray | None = None
    mstar_liv_frac: np.ndarray | None = None
    attrs: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self):
        validate_ssp_arrays(
            self.log10_zmet,
            self.log10_age_gyr,
            self.wave_aa,
            self.lnu_lsun_per_hz_per_msun,
            self.mstar_surv_frac,
            self.wave_edges_aa,
            source=self.attrs.get("path", "SSPTable"),
        )

    @property
    def n_met(self) -> int:
        return self.log10_zmet.shape[0]

    @property
    def n_age(self) -> int:
        return self.log10_age_gyr.shape[0]

    @property
    def n_wave(self) -> int:
        return self.wave_aa.shape[0]


def _strictly_increasing(name: str, x: np.ndarray, source: str) -> None:
    if x.ndim != 1 or x.shape[0] < 2:
        raise ValueError(f"{source}: '{name}' must be 1-D with >= 2 entries, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{source}: '{name}' has non-finite values")
    if not np.all(np.diff(x) > 0):
        i = int(np.argmin(np.diff(x) > 0))
        raise ValueError(
            f"{source}: '{name}' must be strictly increasing (fails at index {i}: "
            f"{x[i]!r} -> {x[i + 1]!r})"
        )


def validate_ssp_arrays(
    log10_zmet, log10_age_gyr, wave_aa, lnu, mstar_surv_frac, wave_edges_aa=None, *, source="SSP table"
) -> None:
    """Check shapes, finiteness, units and monotonic axes; raise ValueError naming the dataset."""
    _strictly_increasing("ssp_lgmet", np.asarray(log10_zmet), source)
    _strictly_increasing("ssp_lg_age_gyr", np.asarray(log10_age_gyr), source)
    _strictly_increasing("ssp_wave", np.asarray(wave_aa), source)
    if np.any(np.asarray(log10_zmet) > 0) or np.any(np.asarray(log10_zmet) < -8):
        raise ValueError(
            f"{source}: 'ssp_lgmet' must be log10 of the absolute metal fraction Z "
            f"(expected within [-8, 0], got {np.min(log10_zmet):.3g}..{np.max(log10_zmet):.3g}); "
            "is it log10(Z/Zsun) instead?"
        )
    if np.any(np.asarray(log10_age_gyr) < -6) or np.any(np.asarray(log10_age_gyr) > 1.5):
        raise ValueError(
            f"{source}: 'ssp_lg_age_gyr' must be log10(age/Gyr) (expected within [-6, 1.5], got "
            f"{np.min(log10_age_gyr):.3g}..{np.max(log10_age_gyr):.3g}); is it log10(age/yr)?"
        )
    if np.min(wave_aa) <= 0:
        raise ValueError(f"{source}: 'ssp_wave' must be positive wavelengths in Angstrom")
    expect = (len(log10_zmet), len(log10_age_gyr), len(wave_aa))
    if tuple(np.shape(lnu)) != expect:
        raise ValueError(
            f"{source}: 'ssp_flux' has shape {tuple(np.shape(lnu))}, expected (n_met, n_age, n_wave) = {expect}"
        )
    lnu = np.asarray(lnu)
    if not np.all(np.isfinite(lnu)) or np.any(lnu < 0):
        raise ValueError(f"{source}: 'ssp_flux' must be finite and non-negative (L_nu, Lsun/Hz/Msun)")
    if tuple(np.shape(mstar_surv_frac)) != expect[:2]:
        raise ValueError(
            f"{source}: 'ssp_mstar_surv' has shape {tuple(np.shape(mstar_surv_frac))}, expected "
            f"(n_met, n_age) = {expect[:2]}"
        )
    ms = np.asarray(mstar_surv_frac)
    if not np.all(np.isfinite(ms)) or np.any(ms <= 0) or np.any(ms > 1.0 + 1e-6):
        raise ValueError(f"{source}: 'ssp_mstar_surv' must lie in (0, 1] (mass per Msun formed)")
    if wave_edges_aa is not None:
        edges = np.asarray(wave_edges_aa)
        if edges.shape != (len(wave_aa) + 1,):
            raise ValueError(
                f"{source}: 'ssp_wave_edges' has shape {edges.shape}, expected ({len(wave_aa) + 1},)"
            )
        _strictly_increasing("ssp_wave_edges", edges, source)
