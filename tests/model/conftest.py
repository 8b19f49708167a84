"""Session-scoped SED models for the model tests, built once.

* ``model_synth_provabgs``: synthetic analytic SSP table (no files) + the ORIGINAL PROVABGS basis
  (from ``../shared``; skips without it, fails under CI=true). Used for SFH / derived-property
  tests, which do not depend on the SSP spectra.
* ``model_synth_default``: synthetic table + the package default basis (needs nothing external).
* ``model_bc03_provabgs``: the default BC03 table + the PROVABGS basis.
* ``model_bc03_default``: the default BC03 table + the package default basis.
* ``model_bc03_full``: as ``model_bc03_default`` but ``crop_to_filters=False`` (full spectra).

All models use ``z_max = Z_MAX`` and the default ``burst_rule='fsps_quirk'`` and dtype (float32).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

try:  # rootdir on sys.path (python -m pytest from the repository root)
    from tests._shared import provabgs_dir
except ImportError:  # pragma: no cover
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from _shared import provabgs_dir

Z_MAX = 1.0  # largest redshift the test models accept (covers the speclite check at z = 0.5)


@pytest.fixture(scope="session")
def provabgs_basis():
    from sedflow_jax.model import load_provabgs_basis

    return load_provabgs_basis(provabgs_dir())


@pytest.fixture(scope="session")
def synthetic_table():
    from sedflow_jax.sps.synthetic import synthetic_ssp_table

    return synthetic_ssp_table()


@pytest.fixture(scope="session")
def model_synth_provabgs(synthetic_table, provabgs_basis):
    from sedflow_jax.model import ProvabgsModel

    return ProvabgsModel.build(synthetic_table, provabgs_basis, z_max=Z_MAX)


@pytest.fixture(scope="session")
def model_synth_default(synthetic_table):
    from sedflow_jax.model import ProvabgsModel

    return ProvabgsModel.build(synthetic_table, None, z_max=Z_MAX)


@pytest.fixture(scope="session")
def model_bc03_provabgs(bc03_table, provabgs_basis):
    from sedflow_jax.model import ProvabgsModel

    return ProvabgsModel.build(bc03_table, provabgs_basis, z_max=Z_MAX)


@pytest.fixture(scope="session")
def model_bc03_default(bc03_table):
    from sedflow_jax.model import ProvabgsModel

    return ProvabgsModel.build(bc03_table, None, z_max=Z_MAX)


@pytest.fixture(scope="session")
def model_bc03_full(bc03_table):
    from sedflow_jax.model import ProvabgsModel

    return ProvabgsModel.build(bc03_table, None, z_max=Z_MAX, crop_to_filters=False)


@pytest.fixture(scope="session")
def prior():
    from sedflow_jax.priors import sedflow_prior

    return sedflow_prior()
