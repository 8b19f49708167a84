"""Charlot & Fall (2000) two-component dust with the Kriek & Conroy (2013) diffuse curve,
as FSPS ``dust_type=4`` implements it (``attn_curve.f90``, ``add_dust.f90``)."""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

__all__ = ["calzetti_fsps", "drude_profile", "kc13_curve", "DustCurves"]

V_BAND_AA = 5500.0
BUMP_CENTER_AA = 2175.0
BUMP_WIDTH_AA = 350.0
BIRTH_CLOUD_INDEX = -1.0  # FSPS dust1_index default


def calzetti_fsps(wave_aa: np.ndarray) -> np.ndarray:
    """FSPS's Calzetti curve normalised by R_V = 4.05, zeroed redward of its first root."""
    wave_aa = np.asarray(wave_aa, np.float64)
    x = 1e4 / wave_aa
    blue = 1.17 * (-2.156 + 1.509 * x - 0.198 * x**2 + 0.011 * x**3) + 1.78
    red = 1.17 * (-1.857 + 1.04 * x) + 1.78
    c = np.where(wave_aa <= 6300.0, blue, red)
    # red branch reaches zero at x = (1.857 - 1.78/1.17)/1.04 (lambda ~ 30,986 A)
    x_zero = (1.857 - 1.78 / 1.17) / 1.04
    c = np.where(x < x_zero, 0.0, c)
    return c / 0.44 / 4.05


def drude_profile(wave_aa: np.ndarray) -> np.ndarray:
    """UV bump shape with unit amplitude: (350 l)^2 / [(l^2 - 2175^2)^2 + (350 l)^2]."""
    wave_aa = np.asarray(wave_aa, np.float64)
    w2 = (BUMP_WIDTH_AA * wave_aa) ** 2
    return w2 / ((wave_aa**2 - BUMP_CENTER_AA**2) ** 2 + w2)


def kc13_curve(wave_aa, dust_index):
    """k(lambda) = [cal(lambda) + E_b D(lambda) / 4.05] (lambda / 5500)^n, E_b = 0.85 - 1.9 n.

    NumPy reference version (float64) of what ``DustCurves.ism_optical_depth`` evaluates.
    """
    wave_aa = np.asarray(wave_aa, np.float64)
    e_bump = 0.85 - 1.9 * dust_index
    return (calzetti_fsps(wave_aa) + e_bump * drude_profile(wave_aa) / 4.05) * (wave_aa / V_BAND_AA) ** dust_index


class DustCurves(eqx.Module):
    """Wavelength-only pieces of the dust curves, precomputed on a fixed rest-frame grid.

    Attributes:
        calzetti: ``(n_wave,)`` FSPS Calzetti part cal(lambda).
        drude_over_rv: ``(n_wave,)`` D(lambda) / 4.05 for unit bump amplitude.
        ln_wave_over_v: ``(n_wave,)`` ln(lambda / 5500 A).
    """

    calzetti: Float[Array, " n_wave"]
    drude_over_rv: Float[Array, " n_wave"]
    ln_wave_over_v: Float[Array, " n_wave"]

    @classmethod
    def on_grid(cls, wave_aa: np.ndarray, dtype=None) -> "DustCurves":
        dtype = dtype or jnp.result_type(float)
        return cls(
            calzetti=jnp.asarray(calzetti_fsps(wave_aa), dtype),
            drude_over_rv=jnp.asarray(drude_profile(wave_aa) / 4.05, dtype),
            ln_wave_over_v=jnp.asarray(np.log(np.asarray(wave_aa, np.float64) / V_BAND_AA), dtype),
        )

    def ism_transmission(self, tau_ism: Float[Array, ""], dust_index: Float[Array, ""]) -> Float[Array, " n_wave"]:
        """exp(-tau_ISM k(lambda)); E_b is not clamped (FSPS does not clamp it)."""
        e_bump = 0.85 - 1.9 * dust_index
        k = (self.calzetti + e_bump * self.drude_over_rv) * jnp.exp(dust_index * self.ln_wave_over_v)
        return jnp.exp(-tau_ism * k)

    def birth_cloud_transmission(self, tau_bc: Float[Array, ""]) -> Float[Array, " n_wave"]:
        """exp(-tau_BC (lambda / 5500)^-1), applied to SSPs of native age <= 10 Myr."""
        return jnp.exp(-tau_bc * jnp.exp(BIRTH_CLOUD_INDEX * self.ln_wave_over_v))
