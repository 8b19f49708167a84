"""The PROVABGS model at one fixed redshift, with everything that depends on z alone precomputed.

For one galaxy the redshift is known, so the age of the universe, the 43 bin edges, every bin's
SSP spectrum at each grid metallicity, the NMF bin integrals, the metallicity-basis values at the
bin midpoints, the burst cut-off, the distance factor and the filter responses on the rest-frame
grid are constants. :class:`FixedRedshiftModel` computes them once (on the host, from a built
:class:`~sedflow_jax.model.ProvabgsModel`) and keeps only the wavelengths the filters see at this
redshift. What remains per call is exactly the part that depends on the parameters: the SFH and
metallicity weights, one ``(42 x n_met) @ (42 x n_met, n_wave)`` contraction, the burst SSP (bilinear
in metallicity and age), the two dust curves and a ``(n_band, n_wave)`` band matrix.

It is exact: the same arithmetic as ``ProvabgsModel.__call__(theta, z)`` regrouped (everything moved
to the host is linear or parameter-free), so the fluxes agree to float32 rounding
(``tests/mcmc/test_fixed_redshift.py``). It is the likelihood kernel of the NUTS sampler
(:mod:`sedflow_jax.mcmc`): about 10x more gradients per second than the general model on a CPU.
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from ..constants import PC10_MPC
from ..params import N_THETA
from .host_tables import flux_constant
from .provabgs import HIGHEST, ZMET_MAX, ZMET_MIN, ProvabgsModel
from .pwlinear import PiecewiseLinear
from .sfh import bin_edges, bin_midpoints, oldest_bin_midpoint
from .ssp_interp import gather_bilinear, linear_weights

__all__ = ["FixedRedshiftModel", "window_length"]


def window_length(model: ProvabgsModel) -> int:
    """Number of consecutive SED nodes that covers what the filters see at any 0 <= z <= z_max."""
    wave = np.asarray(model.wave_aa, np.float64)
    lo, hi = model.filters.wave_range_aa()
    z = np.linspace(0.0, model.z_max, 2001)
    i0 = np.searchsorted(wave, lo / (1 + z), side="right") - 1
    i1 = np.searchsorted(wave, hi / (1 + z), side="left") + 1
    return int(min(np.max(i1 - i0) + 2, wave.size))


class FixedRedshiftModel(eqx.Module):
    """PROVABGS photometry of one galaxy at a fixed redshift: ``model(theta) -> flux_nmgy``.

    Build with :meth:`from_model`. The redshift is a build-time constant (attribute ``redshift``);
    the call takes the 12 physical parameters only. Instances built at different redshifts from the
    same model have the same array shapes, so they stack (``jax.tree.map(jnp.stack, ...)``) and
    ``vmap`` over galaxies.
    """

    n_young: int = eqx.field(static=True)
    log10_zmet_offset: float = eqx.field(static=True)

    redshift: Float[Array, ""]
    log_flux_scale: Float[Array, ""]  # ln of (distance factor x constants), host float64
    mass_integrals: Float[Array, "4 42"]  # NMF basis integrals over the 42 bins
    zh_mids: Float[Array, "2 42"]  # metallicity basis at the bin midpoints
    burst_limit_gyr: Float[Array, ""]  # burst kept iff t_burst < this
    log10_zmet_grid: Float[Array, " n_met"]
    log10_age_grid: Float[Array, " n_age"]
    young_table: Float[Array, "n_young_rows n_wave"]  # (bin, met) rows of native ages <= 10 Myr
    old_table: Float[Array, "n_rows n_wave"]  # (bin, met) rows, 42 x n_met
    ssp_lnu: Float[Array, "n_met n_age n_wave"]  # for the burst
    band_matrix: Float[Array, "n_band n_wave"]  # R_b(lambda (1+z)) dln(lambda) / ab_norm_b
    zh_basis: PiecewiseLinear
    calzetti: Float[Array, " n_wave"]
    drude_over_rv: Float[Array, " n_wave"]
    ln_wave_over_v: Float[Array, " n_wave"]

    @classmethod
    def from_model(cls, model: ProvabgsModel, redshift: float) -> "FixedRedshiftModel":
        """Precompute ``model`` at ``redshift`` (a Python/NumPy scalar, 0 <= z <= model.z_max)."""
        z = float(redshift)
        if not np.isfinite(z) or not (0.0 <= z <= model.z_max):
            raise ValueError(f"redshift must lie in [0, {model.z_max}] (the model's z_max), got {redshift}")
        dtype = model.dtype
        z_arr = jnp.asarray(z, dtype)
        # quantities computed exactly as the model computes them (same dtype), then held fixed
        t_age = model.cosmology.age(z_arr)
        edges_j = bin_edges(t_age)
        edges = np.asarray(edges_j, np.float64)
        mids = bin_midpoints(edges_j)
        cum = np.asarray(model.sfh_basis.cumint(edges_j), np.float64)
        mass_integrals = cum[:, 1:] - cum[:, :-1]
        zh_mids = np.asarray(model.zh_basis(mids), np.float64)
        limit = oldest_bin_midpoint(t_age) if model.burst_rule == "fsps_quirk" else t_age

        # per-bin spectra at every grid metallicity: fixed rows as built, oldest bins interpolated here
        n_met = int(model.log10_zmet_grid.shape[0])
        n_fixed = model.n_fixed
        lnu = np.asarray(model.ssp_lnu, np.float64)
        lo, hi = edges[n_fixed:-1], edges[n_fixed + 1 :]
        fracs = np.asarray(model.runtime_sub_fracs)
        sub = lo[:, None] + (hi - lo)[:, None] * fracs  # (n_var, n_sub)
        # same float path as the model: ages in model dtype, weights by linear_weights in log age
        i_age, f_age = linear_weights(model.log10_age_grid, jnp.log10(jnp.asarray(sub, dtype)))
        i_age, f_age = np.asarray(i_age), np.asarray(f_age, np.float64)
        var = ((1 - f_age)[..., None, None] * np.moveaxis(lnu[:, i_age], 0, -2)
               + f_age[..., None, None] * np.moveaxis(lnu[:, i_age + 1], 0, -2)).mean(axis=1)  # (n_var, n_met, n_wave)
        old = np.concatenate([np.asarray(model.fixed_old, np.float64).reshape(n_fixed, n_met, -1), var], axis=0)
        young = np.asarray(model.fixed_young, np.float64)

        # band matrix on the model grid, then keep the wavelengths some band sees at this z
        wave = np.asarray(model.wave_aa, np.float64)
        resp = np.asarray(model.filters.response_at(jnp.asarray(model.wave_aa * (1 + z_arr))), np.float64)
        band = resp * np.asarray(model.trapz_dln_wave, np.float64)[None] / np.asarray(model.filters.ab_norm, np.float64)[:, None]
        seen = np.flatnonzero(np.any(band != 0, axis=0))
        if seen.size == 0:
            raise ValueError(f"no filter sees the model's wavelengths at z = {z}")
        # a window of fixed length for every z (same shapes -> one compile for all galaxies)
        n_keep = window_length(model)
        i0 = int(np.clip(seen[0], 0, wave.size - n_keep))
        i1 = i0 + n_keep
        if seen[-1] >= i1:  # pragma: no cover - window_length guarantees coverage
            raise RuntimeError("filter window longer than window_length(model)")
        d_l = float(model.cosmology.luminosity_distance(z_arr))
        dist_factor = (1 + z) / (d_l * d_l + PC10_MPC**2)
        log_scale = np.log(dist_factor * flux_constant(model.lsun_erg_per_s))
        as_arr = lambda a: jnp.asarray(a, dtype)  # noqa: E731
        return cls(
            n_young=model.n_young,
            log10_zmet_offset=model.log10_zmet_offset,
            redshift=as_arr(z),
            log_flux_scale=as_arr(log_scale),
            mass_integrals=as_arr(mass_integrals),
            zh_mids=as_arr(zh_mids),
            burst_limit_gyr=as_arr(np.asarray(limit, np.float64)),
            log10_zmet_grid=model.log10_zmet_grid,
            log10_age_grid=model.log10_age_grid,
            young_table=as_arr(young[:, i0:i1]),
            old_table=as_arr(old.reshape(-1, wave.size)[:, i0:i1]),
            ssp_lnu=as_arr(lnu[..., i0:i1]),
            band_matrix=as_arr(band[:, i0:i1]),
            zh_basis=model.zh_basis,
            calzetti=model.dust.calzetti[i0:i1],
            drude_over_rv=model.dust.drude_over_rv[i0:i1],
            ln_wave_over_v=model.dust.ln_wave_over_v[i0:i1],
        )

    @property
    def dtype(self):
        return self.old_table.dtype

    @property
    def n_band(self) -> int:
        return self.band_matrix.shape[-2]

    def _lnu_parts(self, theta: Float[Array, " 12"]):
        """(NMF light, burst light, dust transmission) on the cropped grid, per Msun formed."""
        theta = jnp.asarray(theta, self.dtype)
        if theta.shape != (N_THETA,):
            raise ValueError(f"theta must have shape ({N_THETA},) for one galaxy, got {theta.shape}; vmap for batches")
        beta, t_b, gamma = theta[1:5], theta[6], theta[7:9]
        mass = beta @ self.mass_integrals
        m = mass / jnp.sum(mass)
        z_bins = jnp.clip(gamma @ self.zh_mids, ZMET_MIN, ZMET_MAX)
        i_met, f_met = linear_weights(self.log10_zmet_grid, jnp.log10(z_bins) + self.log10_zmet_offset)
        # only the two bracketing metallicities of each bin carry weight: gather those 2 x 42 rows
        # instead of contracting all 42 x n_met (3.5x fewer flops; same sum)
        n_met = self.log10_zmet_grid.shape[0]
        row = jnp.arange(m.shape[0]) * n_met + i_met
        w_lo, w_hi = m * (1 - f_met), m * f_met
        ny = self.n_young
        young = (jnp.dot(w_lo[:ny], self.young_table[row[:ny]], precision=HIGHEST)
                 + jnp.dot(w_hi[:ny], self.young_table[row[:ny] + 1], precision=HIGHEST))
        old = (jnp.dot(w_lo, self.old_table[row], precision=HIGHEST)
               + jnp.dot(w_hi, self.old_table[row + 1], precision=HIGHEST))
        bc = jnp.exp(-theta[9] * jnp.exp(-self.ln_wave_over_v))  # birth cloud, index -1
        nmf = young * bc + old
        z_burst = jnp.clip(gamma @ self.zh_basis(t_b[None])[:, 0], ZMET_MIN, ZMET_MAX)
        ib, fb = linear_weights(self.log10_zmet_grid, jnp.log10(z_burst) + self.log10_zmet_offset)
        ia, fa = linear_weights(self.log10_age_grid, jnp.log10(t_b))
        burst = gather_bilinear(self.ssp_lnu, ib, fb, ia, fa)
        tau_ism, n = theta[10], theta[11]
        k = (self.calzetti + (0.85 - 1.9 * n) * self.drude_over_rv) * jnp.exp(n * self.ln_wave_over_v)
        return nmf, burst, jnp.exp(-tau_ism * k)

    def rest_lnu_unit_mass(self, theta: Float[Array, " 12"], burst_on=None) -> Float[Array, " n_wave"]:
        """Dust-attenuated rest-frame L_nu per Msun formed on the cropped grid (Lsun/Hz/Msun).

        ``burst_on`` (optional, 0/1): whether the burst is kept. ``None`` applies the model's rule
        (``t_burst < burst_limit_gyr``); the NUTS samplers pass their indicator, which
        agrees with the rule everywhere except where float rounding puts t_burst on the cut.
        """
        nmf, burst, trans = self._lnu_parts(theta)
        f_b, t_b = jnp.asarray(theta[5], self.dtype), jnp.asarray(theta[6], self.dtype)
        if burst_on is None:
            keep = (t_b < self.burst_limit_gyr).astype(self.dtype)
        else:
            keep = jnp.asarray(burst_on).astype(self.dtype)
        return ((1 - f_b) * nmf + (f_b * keep) * burst) * trans

    def unit_flux_parts(self, theta: Float[Array, " 12"]) -> tuple[Float[Array, " n_band"], Float[Array, " n_band"]]:
        """Fluxes (nmgy) of the NMF part and of the burst for 10^theta[0] Msun formed, dust included.

        ``model(theta, burst_on=s) == (1 - f_burst) * nmf + s * f_burst * burst``: one evaluation
        gives the fluxes with the burst on and off, which the mass-and-burst-marginalised
        likelihood (:mod:`sedflow_jax.mcmc.marginal`) needs.
        """
        nmf, burst, trans = self._lnu_parts(theta)
        scale = jnp.exp(jnp.asarray(theta[0], self.dtype) * jnp.log(10.0) + self.log_flux_scale)
        parts = jnp.stack([nmf * trans, burst * trans])
        out = jnp.dot(parts, self.band_matrix.T, precision=HIGHEST) * scale
        return out[0], out[1]

    def __call__(self, theta: Float[Array, " 12"], burst_on=None) -> Float[Array, " n_band"]:
        """Fluxes in nanomaggies, one per filter (same as ``ProvabgsModel(theta, redshift)``).

        ``burst_on``: see :meth:`rest_lnu_unit_mass` (``None``: the model's burst rule).
        """
        lnu = self.rest_lnu_unit_mass(theta, burst_on)
        band = jnp.dot(self.band_matrix, lnu, precision=HIGHEST)
        return band * jnp.exp(theta[0] * jnp.log(10.0) + self.log_flux_scale)
