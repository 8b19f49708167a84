"""Interpolation in an SSP table: linear in log age (FSPS rule) and in log Z.

Host-side helpers (NumPy, float64) precompute the spectra of SSPs whose ages are fixed; the JAX
kernels interpolate at ages and metallicities known only at run time.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int

__all__ = ["linear_weights", "linear_weights_np", "age_weights_np", "gather_bilinear"]


def linear_weights(grid: Float[Array, " n"], x: Float[Array, "..."]) -> tuple[Int[Array, "..."], Float[Array, "..."]]:
    """Lower index and fraction for linear interpolation on ``grid``, clamped at both ends."""
    i = jnp.clip(jnp.searchsorted(grid, x, side="right") - 1, 0, grid.shape[0] - 2)
    f = jnp.clip((x - grid[i]) / (grid[i + 1] - grid[i]), 0.0, 1.0)
    return i, f


def linear_weights_np(grid: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """NumPy twin of :func:`linear_weights` for host-side precomputation."""
    grid = np.asarray(grid, np.float64)
    i = np.clip(np.searchsorted(grid, x, side="right") - 1, 0, grid.size - 2)
    f = np.clip((x - grid[i]) / (grid[i + 1] - grid[i]), 0.0, 1.0)
    return i, f


def age_weights_np(log10_age_gyr_grid: np.ndarray, age_gyr: np.ndarray) -> np.ndarray:
    """Dense ``(n_t, n_age)`` weights of native ages for SSPs at ``age_gyr`` (linear in log t)."""
    i, f = linear_weights_np(log10_age_gyr_grid, np.log10(np.asarray(age_gyr, np.float64)))
    w = np.zeros((np.size(age_gyr), log10_age_gyr_grid.size))
    rows = np.arange(np.size(age_gyr))
    w[rows, i] += 1.0 - f
    w[rows, i + 1] += f
    return w


def gather_bilinear(
    table: Float[Array, "n_met n_age n_wave"],
    i_met: Int[Array, ""],
    f_met: Float[Array, ""],
    i_age: Int[Array, ""],
    f_age: Float[Array, ""],
) -> Float[Array, " n_wave"]:
    """Spectrum at one (metallicity, age) point from the four bracketing grid spectra."""
    lo = table[i_met, i_age] * (1 - f_age) + table[i_met, i_age + 1] * f_age
    hi = table[i_met + 1, i_age] * (1 - f_age) + table[i_met + 1, i_age + 1] * f_age
    return lo * (1 - f_met) + hi * f_met
