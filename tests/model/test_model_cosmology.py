"""Planck13 age and luminosity distance of ``planck13()`` against astropy and the spec table.

Reference: ``astropy.cosmology.Planck13`` (what PROVABGS uses: radiation + massive neutrinos) and
the five-row table of provabgs_model.md section 2.3 (astropy 6 values).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
from astropy.cosmology import Planck13

from sedflow_jax.model import planck13

N_Z = 301  # redshifts checked in [0, 1], both ends included
REL_TOL = 1e-4  # relative error, age and d_L (task requirement; float32 rounding is ~1e-7)
DL_REL_MIN_Z = 1e-3  # below this z, d_L -> 0 and a relative error is meaningless
DL_ABS_TOL_MPC = 1e-4 * 4.4  # absolute d_L tolerance for z < 1e-3: 1e-4 x d_L(1e-3) ~ 4.4 Mpc x 1e-4
MPC_CM = 3.0856775814913673e24

# provabgs_model.md section 2.3: z, t_age [Gyr], d_L [cm]
SPEC_TABLE = [
    (0.0, 13.79629075645535, 0.0),
    (0.01, 13.653058838303743, 1.375455848387024e26),
    (0.05, 13.100499422622358, 7.082535727965244e26),
    (0.1, 12.453025465217658, 1.4661289075884825e27),
    (0.2, 11.287386766671133, 3.119708417598304e27),
]
SPEC_REL_TOL = 1e-5  # the spec lists 16 digits; float32 + linear table interpolation


@pytest.fixture(scope="module")
def cosmo():
    return planck13()  # float32 default


def _z_grid():
    z = np.unique(np.concatenate([np.linspace(0.0, 1.0, N_Z - 8), [1e-5, 1e-4, 5e-4, 1e-3, 0.0123, 0.4567, 0.777, 0.999]]))
    return z


def test_default_dtype_is_float32(cosmo):
    assert cosmo.age_gyr.dtype == jnp.float32
    assert cosmo.z_max >= 1.0


def test_age_vs_astropy(cosmo):
    z = _z_grid()
    got = np.asarray(cosmo.age(jnp.asarray(z, jnp.float32)), np.float64)
    ref = Planck13.age(z).to_value("Gyr")
    rel = np.abs(got / ref - 1)
    assert rel.max() < REL_TOL, f"max rel age error {rel.max():.2e} at z = {z[rel.argmax()]}"


def test_luminosity_distance_vs_astropy(cosmo):
    z = _z_grid()
    got = np.asarray(cosmo.luminosity_distance(jnp.asarray(z, jnp.float32)), np.float64)
    ref = Planck13.luminosity_distance(z).to_value("Mpc")
    big = z >= DL_REL_MIN_Z
    rel = np.abs(got[big] / ref[big] - 1)
    assert rel.max() < REL_TOL, f"max rel d_L error {rel.max():.2e} at z = {z[big][rel.argmax()]}"
    small = ~big
    assert np.abs(got[small] - ref[small]).max() < DL_ABS_TOL_MPC
    assert got[0] == 0.0 and z[0] == 0.0


@pytest.mark.parametrize("z, age_gyr, dl_cm", SPEC_TABLE)
def test_spec_table(cosmo, z, age_gyr, dl_cm):
    zz = jnp.asarray(z, jnp.float32)
    assert float(cosmo.age(zz)) == pytest.approx(age_gyr, rel=SPEC_REL_TOL)
    dl = float(cosmo.luminosity_distance(zz)) * MPC_CM
    assert dl == pytest.approx(dl_cm, rel=SPEC_REL_TOL, abs=1e-30)
