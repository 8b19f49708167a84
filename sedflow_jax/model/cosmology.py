"""Planck13 age and luminosity distance, tabulated with astropy and interpolated in JAX."""

from __future__ import annotations

from importlib import resources

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

__all__ = ["Cosmology", "planck13"]

COSMOLOGY_FILE = "planck13_table.npz"


class Cosmology(eqx.Module):
    """Age and luminosity distance on a uniform redshift grid, linear interpolation.

    Attributes:
        z_step: grid spacing in redshift (static).
        z_max: last grid redshift (static).
        age_gyr: ``(n_z,)`` age of the universe, Gyr.
        lum_dist_mpc: ``(n_z,)`` luminosity distance, Mpc.
    """

    z_step: float = eqx.field(static=True)
    z_max: float = eqx.field(static=True)
    age_gyr: Float[Array, " n_z"]
    lum_dist_mpc: Float[Array, " n_z"]

    def _interp(self, table: Array, redshift: Array) -> Array:
        # Uniform grid: the index is arithmetic, no search needed.
        x = jnp.clip(redshift, 0.0, self.z_max) / self.z_step
        i = jnp.clip(jnp.floor(x).astype(jnp.int32), 0, table.shape[0] - 2)
        f = x - i
        return table[i] * (1 - f) + table[i + 1] * f

    def age(self, redshift: Float[Array, "..."]) -> Float[Array, "..."]:
        """Age of the universe at ``redshift``, Gyr."""
        return self._interp(self.age_gyr, redshift)

    def luminosity_distance(self, redshift: Float[Array, "..."]) -> Float[Array, "..."]:
        """Luminosity distance to ``redshift``, Mpc."""
        return self._interp(self.lum_dist_mpc, redshift)


def planck13(dtype=None) -> Cosmology:
    """The Planck13 cosmology PROVABGS uses (astropy values, radiation and neutrinos included)."""
    ref = resources.files("sedflow_jax.data").joinpath(COSMOLOGY_FILE)
    with resources.as_file(ref) as path, np.load(path) as f:
        z = f["redshift"]
        dtype = dtype or jnp.result_type(float)
        return Cosmology(
            z_step=float(z[1] - z[0]),
            z_max=float(z[-1]),
            age_gyr=jnp.asarray(f["age_gyr"], dtype),
            lum_dist_mpc=jnp.asarray(f["lum_dist_mpc"], dtype),
        )
