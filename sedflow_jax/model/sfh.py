"""PROVABGS time binning, NMF star-formation history, burst and derived SFH properties.

All kernels act on one galaxy. Times are lookback times in Gyr.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from .pwlinear import PiecewiseLinear

__all__ = [
    "MASTER_EDGES_GYR",
    "N_BIN",
    "bin_edges",
    "bin_midpoints",
    "nmf_mass_fractions",
    "avg_sfr",
    "bin_masses_with_burst",
    "oldest_bin_midpoint",
]

# 43 master edges: 0, 10^(-2.95 + 0.1 (k-1)) for k = 1..41, and 13.8 Gyr (PROVABGS util.tlookback_bin_edges).
MASTER_EDGES_GYR = np.concatenate([[0.0], 10.0 ** (-2.95 + 0.1 * np.arange(41)), [13.8]])
N_BIN = MASTER_EDGES_GYR.size - 1


def bin_edges(t_age_gyr: Float[Array, ""]) -> Float[Array, " 43"]:
    """Master edges clamped to the galaxy age: bins beyond the age get zero width."""
    return jnp.minimum(jnp.asarray(MASTER_EDGES_GYR, t_age_gyr.dtype), t_age_gyr)


def bin_midpoints(edges: Float[Array, " 43"]) -> Float[Array, " 42"]:
    """Arithmetic bin midpoints: the age of the single SSP that represents each bin."""
    return 0.5 * (edges[1:] + edges[:-1])


def oldest_bin_midpoint(t_age_gyr: Float[Array, ""]) -> Float[Array, ""]:
    """Midpoint of the oldest non-empty bin, [largest master edge < t_age, t_age]."""
    master = jnp.asarray(MASTER_EDGES_GYR, t_age_gyr.dtype)
    lower = jnp.max(jnp.where(master < t_age_gyr, master, 0.0))
    return 0.5 * (lower + t_age_gyr)


def nmf_mass_fractions(
    beta: Float[Array, " 4"], sfh_basis: PiecewiseLinear, edges: Float[Array, " 43"]
) -> tuple[Float[Array, " 42"], Float[Array, " 42"]]:
    """Fraction of the NMF formed mass in each bin, and the unit-mass SFR per Gyr.

    The combination sum_i beta_i s_i(t) is normalised over [0, t_age] after truncation (the
    bases are not renormalised individually), as PROVABGS does.

    Returns:
        m: ``(42,)`` mass fraction per bin, summing to 1.
        psi_hat: ``(42,)`` unit-normalised SFR density per Gyr (0 for empty bins).
    """
    cum = sfh_basis.cumint(edges)  # (4, 43)
    integrals = cum[:, 1:] - cum[:, :-1]  # (4, 42) Gyr-weighted basis integrals
    mass = beta @ integrals
    total = jnp.sum(mass)
    m = mass / total
    width = edges[1:] - edges[:-1]
    psi_hat = jnp.where(width > 0, m / jnp.where(width > 0, width, 1.0), 0.0)
    return m, psi_hat


def _burst_kept(f_burst, t_burst_gyr, t_age_gyr):
    # Derived properties drop a burst older than the galaxy (PROVABGS SFH/avgSFR/Z_MW).
    return jnp.where(t_burst_gyr > t_age_gyr, 0.0, f_burst)


def avg_sfr(
    log10_mstar_formed: Float[Array, ""],
    m: Float[Array, " 42"],
    psi_hat: Float[Array, " 42"],
    edges: Float[Array, " 43"],
    f_burst: Float[Array, ""],
    t_burst_gyr: Float[Array, ""],
    t_age_gyr: Float[Array, ""],
    dt_gyr: float,
) -> Float[Array, ""]:
    """SFR averaged over the last ``dt_gyr`` Gyr, Msun/yr (PROVABGS ``avgSFR``)."""
    overlap = jnp.clip(jnp.minimum(dt_gyr, edges[1:]) - edges[:-1], 0.0, None)
    m_recent = jnp.sum(psi_hat * overlap)
    fb = _burst_kept(f_burst, t_burst_gyr, t_age_gyr)
    m_recent = (1.0 - fb) * m_recent + jnp.where(t_burst_gyr < dt_gyr, fb, 0.0)
    return m_recent * 10.0**log10_mstar_formed / (dt_gyr * 1e9)


def bin_masses_with_burst(
    m: Float[Array, " 42"],
    edges: Float[Array, " 43"],
    f_burst: Float[Array, ""],
    t_burst_gyr: Float[Array, ""],
    t_age_gyr: Float[Array, ""],
) -> Float[Array, " 42"]:
    """Formed-mass fraction per bin with the burst placed in the bin containing t_burst.

    This is the SFH that PROVABGS's ``Z_MW`` and ``tage_MW`` weight with.
    """
    fb = _burst_kept(f_burst, t_burst_gyr, t_age_gyr)
    in_bin = (t_burst_gyr >= edges[:-1]) & (t_burst_gyr < edges[1:])
    return (1.0 - fb) * m + fb * in_bin.astype(m.dtype)
