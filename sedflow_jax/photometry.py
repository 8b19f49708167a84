"""The observation layer: photometry as the likelihood sees it and as the flow sees it, defined once.

Two views of one galaxy's measurement, and the only place that converts between them:

* **flux space** (what every exact method uses: ANPE-IS, NUTS, the chi-square and posterior-predictive
  checks, the reference samplers): fluxes ``flux_nmgy`` in nanomaggies (may be negative) and inverse
  variances ``ivar`` in nmgy^-2, ``ivar = 0`` marking a band that is not used. The likelihood is
  Gaussian in flux, :func:`gaussian_log_likelihood`;
* **the flow's conditioning vector** ``x`` (what the amortised posterior is trained on, SEDflow's
  convention): AB magnitudes, their errors and the redshift, laid out by :class:`XLayout` (``B`` bands:
  ``x = (m_1..m_B, sigma_m_1..sigma_m_B, z)``, dimension ``2 B + 1``). Nothing outside this module
  indexes ``x`` by position.

Magnitudes are on the nanomaggie scale, m = 22.5 - 2.5 log10(f / nmgy); errors propagate to first
order, sigma_m = (2.5 / ln 10) sigma_f / f. A catalogue keeps its fluxes and ivar as read
(:class:`Photometry`); ``x`` is derived from them once, and never turned back into fluxes.

All functions take NumPy or JAX arrays and return the same kind (they are ``jit``/``vmap`` clean on
JAX inputs), except :func:`check_photometry`, which validates on the host.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "MAG_ZP_NMGY",
    "LN10_OVER_2P5",
    "XLayout",
    "SDSS_LAYOUT",
    "Photometry",
    "flux_to_mag",
    "mag_to_flux",
    "sigma_flux_to_mag",
    "sigma_mag_to_flux",
    "ivar_to_sigma",
    "sigma_to_ivar",
    "apply_error_floor",
    "gaussian_log_likelihood",
    "chi_square",
    "check_photometry",
]

MAG_ZP_NMGY = 22.5  #: m = 22.5 - 2.5 log10(f / nmgy): the nanomaggie zero point (AB)
LN10_OVER_2P5 = math.log(10.0) / 2.5  #: sigma_f = LN10_OVER_2P5 * f * sigma_m (first-order error propagation)


def _xp(*arrays):
    return jnp if any(isinstance(a, jax.Array) for a in arrays) else np


# ----------------------------------------------------------------------------- conversions
def flux_to_mag(flux_nmgy):
    """AB magnitude from flux in nanomaggies (NaN where flux <= 0)."""
    xp = _xp(flux_nmgy)
    f = xp.where(flux_nmgy > 0, flux_nmgy, xp.nan)
    return MAG_ZP_NMGY - 2.5 * xp.log10(f)


def mag_to_flux(mag):
    """Flux in nanomaggies from AB magnitude: 10^((22.5 - m) / 2.5)."""
    xp = _xp(mag)
    return xp.power(10.0, (MAG_ZP_NMGY - mag) / 2.5)


def sigma_flux_to_mag(sigma_flux_nmgy, flux_nmgy):
    """Magnitude error (2.5 / ln 10) sigma_f / f (NaN where flux <= 0)."""
    xp = _xp(sigma_flux_nmgy, flux_nmgy)
    f = xp.where(flux_nmgy > 0, flux_nmgy, xp.nan)
    return sigma_flux_nmgy / (LN10_OVER_2P5 * f)


def sigma_mag_to_flux(sigma_mag, flux_nmgy):
    """Flux error in nanomaggies from a magnitude error at flux ``flux_nmgy``: (ln 10 / 2.5) f sigma_m."""
    return LN10_OVER_2P5 * flux_nmgy * sigma_mag


def ivar_to_sigma(ivar):
    """1 / sqrt(ivar) (inf where ivar = 0: the band carries no information)."""
    xp = _xp(ivar)
    safe = xp.where(ivar > 0, ivar, 1.0)
    return xp.where(ivar > 0, 1.0 / xp.sqrt(safe), xp.inf)


def sigma_to_ivar(sigma):
    """1 / sigma^2 (0 where sigma is infinite)."""
    return 1.0 / sigma**2


def apply_error_floor(flux_nmgy, ivar, floor_mag):
    """Inverse variances with a magnitude error floor added in quadrature.

    ``floor_mag`` (n_band,) magnitudes (e.g. NSA's 0.05, 0.02, 0.02, 0.02, 0.03 for ugriz) become a flux
    error (ln 10 / 2.5) |f| floor added to sigma_f in quadrature: for f > 0 the same as adding the floor
    to sigma_m in quadrature. Bands with ivar = 0 stay unused. ``floor_mag = None`` returns ``ivar``.
    """
    if floor_mag is None:
        return ivar
    xp = _xp(flux_nmgy, ivar)
    floor_f = LN10_OVER_2P5 * xp.abs(flux_nmgy) * xp.asarray(floor_mag)
    safe = xp.where(ivar > 0, ivar, 1.0)
    return xp.where(ivar > 0, 1.0 / (1.0 / safe + floor_f**2), 0.0)


# ----------------------------------------------------------------------------- the flow's x
@dataclass(frozen=True)
class XLayout:
    """Layout of the flow's conditioning vector for ``n_band`` bands: ``x = (mags, sigma_mags, z)``.

    ``dim = 2 n_band + 1``. The accessors take ``x`` of shape ``(..., dim)``; :meth:`assemble` builds it.
    """

    n_band: int = 5

    def __post_init__(self):
        if int(self.n_band) < 1:
            raise ValueError(f"XLayout.n_band must be >= 1, got {self.n_band}")

    @classmethod
    def of(cls, x) -> XLayout:
        """The layout of an x array (its last axis must be 2 B + 1 long)."""
        d = int(np.shape(x)[-1])
        if d < 3 or d % 2 == 0:
            raise ValueError(f"x has {d} columns; the flow's x holds 2 x n_band + 1 (mags, sigma_m, z)")
        return cls((d - 1) // 2)

    @property
    def dim(self) -> int:
        return 2 * self.n_band + 1

    @property
    def mag_slice(self) -> slice:
        return slice(0, self.n_band)

    @property
    def sigma_slice(self) -> slice:
        return slice(self.n_band, 2 * self.n_band)

    @property
    def redshift_index(self) -> int:
        return 2 * self.n_band

    def check(self, x) -> None:
        if np.shape(x)[-1] != self.dim:
            raise ValueError(f"x has {np.shape(x)[-1]} columns; {self.n_band} bands need {self.dim} "
                             f"(mags, sigma_m, z)")

    def mag(self, x):
        """AB magnitudes ``(..., n_band)``."""
        return x[..., self.mag_slice]

    def sigma_mag(self, x):
        """Magnitude errors ``(..., n_band)``."""
        return x[..., self.sigma_slice]

    def redshift(self, x):
        """Redshifts ``(...)``."""
        return x[..., self.redshift_index]

    def assemble(self, mag, sigma_mag, redshift):
        """x ``(..., dim)`` from mags and errors ``(..., n_band)`` and redshifts ``(...)``."""
        xp = _xp(mag, sigma_mag, redshift)
        z = xp.asarray(redshift)[..., None]
        return xp.concatenate([mag, sigma_mag, xp.broadcast_to(z, mag.shape[:-1] + (1,)).astype(mag.dtype)], axis=-1)

    def from_flux(self, flux_nmgy, ivar, redshift):
        """x from fluxes and inverse variances (NaN mags/errors where flux <= 0 or ivar = 0)."""
        return self.assemble(flux_to_mag(flux_nmgy), sigma_flux_to_mag(ivar_to_sigma(ivar), flux_nmgy), redshift)

    def to_flux(self, x):
        """``(flux_nmgy, ivar)`` implied by x's magnitudes and errors.

        For simulated x and x-only inputs; a catalogue keeps the fluxes it was read with (:class:`Photometry`).
        """
        flux = mag_to_flux(self.mag(x))
        return flux, sigma_to_ivar(sigma_mag_to_flux(self.sigma_mag(x), flux))

    def feature_names(self, bands) -> list[str]:
        """Column names of x for the given band names."""
        bands = list(bands)
        if len(bands) != self.n_band:
            raise ValueError(f"{len(bands)} band names for a {self.n_band}-band layout")
        return [f"mag_{b}" for b in bands] + [f"sigma_mag_{b}" for b in bands] + ["redshift"]


SDSS_LAYOUT = XLayout(5)  #: SDSS ugriz: x has 11 columns


# ----------------------------------------------------------------------------- catalogue photometry
@dataclass(frozen=True)
class Photometry:
    """A catalogue's photometry as read: fluxes, inverse variances and redshifts of ``n`` galaxies.

    Attributes:
        flux_nmgy: ``(n, n_band)`` fluxes in nanomaggies (float64; NaN where not measured).
        ivar: ``(n, n_band)`` inverse variances in nmgy^-2 (0 where a band is not used).
        redshift: ``(n,)`` redshifts.
    """

    flux_nmgy: np.ndarray
    ivar: np.ndarray
    redshift: np.ndarray

    def __post_init__(self):
        f, w, z = np.shape(self.flux_nmgy), np.shape(self.ivar), np.shape(self.redshift)
        if len(f) != 2 or f != w or z != f[:1]:
            raise ValueError(f"Photometry needs flux_nmgy and ivar (n, n_band) and redshift (n,); got {f}, {w}, {z}")

    @classmethod
    def from_mags(cls, mag, sigma_mag, redshift) -> Photometry:
        """From AB magnitudes and errors (converted once, in float64)."""
        mag, sigma_mag = np.asarray(mag, np.float64), np.asarray(sigma_mag, np.float64)
        with np.errstate(all="ignore"):
            flux = mag_to_flux(mag)
            ivar = sigma_to_ivar(sigma_mag_to_flux(sigma_mag, flux))
        return cls(flux, ivar, np.asarray(redshift, np.float64))

    @property
    def n_band(self) -> int:
        return int(np.shape(self.flux_nmgy)[1])

    @property
    def layout(self) -> XLayout:
        return XLayout(self.n_band)

    def __len__(self) -> int:
        return int(np.shape(self.flux_nmgy)[0])

    def rows(self, index) -> Photometry:
        """The photometry of the rows ``index`` (an index array, mask or slice)."""
        return Photometry(self.flux_nmgy[index], self.ivar[index], self.redshift[index])

    def x(self, dtype=np.float32) -> np.ndarray:
        """The flow's conditioning vector ``(n, 2 n_band + 1)``."""
        with np.errstate(all="ignore"):
            return self.layout.from_flux(self.flux_nmgy, self.ivar, self.redshift).astype(dtype)

    def with_error_floor(self, floor_mag) -> Photometry:
        """The same photometry with a magnitude error floor in quadrature (:func:`apply_error_floor`)."""
        return Photometry(self.flux_nmgy, apply_error_floor(self.flux_nmgy, self.ivar, floor_mag), self.redshift)


# ----------------------------------------------------------------------------- likelihood
def gaussian_log_likelihood(flux_model_nmgy, flux_obs_nmgy, ivar):
    """Gaussian log likelihood of the observed fluxes, summed over the last axis; bands with ivar = 0 dropped.

    ln L = sum_b [ -ivar_b (f_obs,b - f_model,b)^2 / 2 + ln(ivar_b / 2 pi) / 2 ] over bands with ivar_b > 0.
    """
    xp = _xp(flux_model_nmgy, flux_obs_nmgy, ivar)
    ok = ivar > 0
    safe = xp.where(ok, ivar, 1.0)
    terms = -0.5 * safe * (flux_obs_nmgy - flux_model_nmgy) ** 2 + 0.5 * xp.log(safe / (2 * np.pi))
    return xp.sum(xp.where(ok, terms, 0.0), axis=-1)


def chi_square(flux_model_nmgy, flux_obs_nmgy, ivar):
    """sum_b ivar_b (f_obs,b - f_model,b)^2 over the last axis (bands with ivar = 0 contribute 0)."""
    xp = _xp(flux_model_nmgy, flux_obs_nmgy, ivar)
    ok = ivar > 0
    return xp.sum(xp.where(ok, ivar * (flux_obs_nmgy - flux_model_nmgy) ** 2, 0.0), axis=-1)


def check_photometry(flux_obs_nmgy, ivar, n_band: int | None = None, *, name: str = "galaxy"):
    """Validate one galaxy's (or a batch's) fluxes and inverse variances on the host.

    Raises ValueError naming the problem (and the first bad row of a batch): wrong shapes, non-finite
    flux where ivar > 0, negative or non-finite ivar, or no band with ivar > 0. Returns float64 NumPy
    arrays, with the flux of unused bands set to 0.
    """
    f = np.asarray(flux_obs_nmgy, np.float64)
    w = np.asarray(ivar, np.float64)
    if f.shape != w.shape:
        raise ValueError(f"{name}: flux_obs_nmgy has shape {f.shape} but ivar has shape {w.shape}")
    if f.ndim not in (1, 2) or f.shape[-1] == 0:
        raise ValueError(f"{name}: fluxes must have shape (n_band,) or (n_gal, n_band), got {f.shape}")
    if n_band is not None and f.shape[-1] != n_band:
        raise ValueError(f"{name}: {f.shape[-1]} fluxes given but the model has {n_band} filters")

    def where(bad):
        bad = np.atleast_2d(bad)
        rows = np.flatnonzero(np.any(bad, axis=-1))
        return f" (row {rows[0]})" if f.ndim == 2 else ""

    bad_w = ~np.isfinite(w) | (w < 0)
    if bad_w.any():
        raise ValueError(f"{name}: ivar must be finite and >= 0 (use ivar = 0 for a missing band){where(bad_w)}")
    bad_f = ~np.isfinite(f) & (w > 0)
    if bad_f.any():
        raise ValueError(f"{name}: non-finite flux in a band with ivar > 0 (set its ivar to 0 to drop it){where(bad_f)}")
    empty = np.all(w == 0, axis=-1)
    if np.any(empty):
        raise ValueError(f"{name}: no band has ivar > 0; nothing to fit{where(empty[..., None])}")
    return np.where(w > 0, f, 0.0), w
