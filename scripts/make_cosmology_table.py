"""Derive the Planck13 age and luminosity-distance table shipped in sedflow_jax/data.

Usage: python scripts/make_cosmology_table.py [--out sedflow_jax/data/planck13_table.npz]

astropy's Planck13 (H0 67.77, Om0 0.30712, Tcmb 2.7255 K, Neff 3.046, m_nu [0,0,0.06] eV),
radiation and massive neutrinos included, tabulated on a uniform redshift grid. The model
interpolates it linearly in JAX (error < 2e-6 relative for z in (0.001, 3]; see tests).
"""

import argparse
from pathlib import Path

import numpy as np
from astropy.cosmology import Planck13

Z_MAX = 3.0
DZ = 2.5e-4


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=Path(__file__).parents[1] / "sedflow_jax" / "data" / "planck13_table.npz")
    args = parser.parse_args()
    z = np.linspace(0.0, Z_MAX, int(round(Z_MAX / DZ)) + 1)
    age_gyr = Planck13.age(z).to_value("Gyr")
    d_l_mpc = Planck13.luminosity_distance(z).to_value("Mpc")
    np.savez(
        args.out,
        redshift=z,
        age_gyr=age_gyr,
        lum_dist_mpc=d_l_mpc,
        description=np.array("astropy.cosmology.Planck13 age [Gyr] and luminosity distance [Mpc]"),
    )
    print(f"wrote {args.out}: {z.size} redshifts, age(0) = {age_gyr[0]:.6f} Gyr")


if __name__ == "__main__":
    main()
