"""FixedRedshiftModel: same fluxes as ProvabgsModel at the build redshift (float32 rounding)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sedflow_jax.model.fixed_redshift import FixedRedshiftModel
from sedflow_jax.priors.sedflow import flow_to_physical, sedflow_prior


@pytest.mark.parametrize("z", [0.0, 0.013, 0.1, 0.2])
def test_matches_provabgs_model(nuts_model, z):
    u = sedflow_prior().sample_flow(jax.random.key(3), 64)
    theta = flow_to_physical(u)
    fm = FixedRedshiftModel.from_model(nuts_model, z)
    ref = jax.vmap(nuts_model, in_axes=(0, None))(theta, jnp.float32(z))
    got = jax.vmap(fm)(theta)
    np.testing.assert_allclose(np.asarray(got), np.asarray(ref), rtol=2e-6)


def test_same_shapes_for_all_redshifts(nuts_model):
    shapes = {jax.tree.map(jnp.shape, FixedRedshiftModel.from_model(nuts_model, z)).old_table for z in (0.0, 0.05, 0.2)}
    assert len(shapes) == 1


def test_gradient_matches(nuts_model):
    theta = jnp.array([10.8, 0.30, 0.35, 0.20, 0.15, 0.3, 1.5, 6e-3, 4e-3, 0.5, 0.4, -0.3])
    fm = FixedRedshiftModel.from_model(nuts_model, 0.08)
    g_ref = jax.jacfwd(lambda t: jnp.log(nuts_model(t, jnp.float32(0.08))))(theta)
    g = jax.jacfwd(lambda t: jnp.log(fm(t)))(theta)
    np.testing.assert_allclose(np.asarray(g), np.asarray(g_ref), rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("z", [-0.1, 0.5, float("nan")])
def test_bad_redshift(nuts_model, z):
    with pytest.raises(ValueError, match="redshift"):
        FixedRedshiftModel.from_model(nuts_model, z)


def test_matches_provabgs_model_integrated_sampling(bc03_table):
    """With ssp_sampling='integrated' the precomputed tables carry the bin-averaged SSPs too."""
    from sedflow_jax.model import ProvabgsModel

    model = ProvabgsModel.build(bc03_table, None, "sdss2010-ugriz", z_max=0.2, ssp_sampling="integrated")
    theta = flow_to_physical(sedflow_prior().sample_flow(jax.random.key(4), 32))
    fm = FixedRedshiftModel.from_model(model, 0.1)
    ref = jax.vmap(model, in_axes=(0, None))(theta, jnp.float32(0.1))
    np.testing.assert_allclose(np.asarray(jax.vmap(fm)(theta)), np.asarray(ref), rtol=2e-6)
