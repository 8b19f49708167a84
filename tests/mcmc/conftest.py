"""Fixtures for the NUTS tests: the default BC03 model at z_max = 0.2 and one simulated galaxy."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="session")
def nuts_model(bc03_table):
    from sedflow_jax.model import ProvabgsModel

    return ProvabgsModel.build(bc03_table, None, "sdss2010-ugriz", z_max=0.2)


@pytest.fixture(scope="session")
def galaxy(nuts_model):
    """A bright star-forming galaxy at z = 0.08 with 5% flux errors (flux, ivar, z, theta)."""
    import jax.numpy as jnp

    theta = np.array([10.8, 0.30, 0.35, 0.20, 0.15, 0.05, 1.5, 6e-3, 4e-3, 0.5, 0.4, -0.3])
    z = 0.08
    flux = np.asarray(nuts_model(jnp.asarray(theta, nuts_model.dtype), jnp.asarray(z, nuts_model.dtype)), np.float64)
    sigma = 0.05 * flux
    rng = np.random.default_rng(0)
    return flux + sigma * rng.standard_normal(flux.size), 1.0 / sigma**2, z, theta


@pytest.fixture(scope="session")
def nuts_runs():
    """One compile cache for the NUTS tests of this session (tests with the same config compile once)."""
    from sedflow_jax.mcmc import CompiledRuns

    return CompiledRuns()
