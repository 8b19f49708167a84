"""Gradients of the photometry: finite over the SEDflow prior and at the edges of the parameter space.

Reference: jax autodiff must give finite d sum(log flux) / d(theta, z) everywhere the model is
defined (the flow/MCMC code relies on it).
"""

from __future__ import annotations

import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sedflow_jax.priors import flow_to_physical

N_DRAWS = 10_000
CHUNK = 2_500  # 4 equal chunks through one compiled function (bounded memory)
REDSHIFT_RANGE = (0.0, 0.2)  # SEDflow training redshifts
LOG10_GAMMA_ENDS = (-4.3468, -1.8239)  # SEDflow box for log10 gamma (provabgs_model.md section 1.4)


def _loss(model, theta, z):
    return jnp.sum(jnp.log(model(theta, z)))


def _grad_fn(model):
    return eqx.filter_jit(jax.vmap(jax.grad(_loss, argnums=(1, 2)), in_axes=(None, 0, 0)))


@pytest.fixture(scope="module")
def grad_default(model_bc03_default):
    return _grad_fn(model_bc03_default)


def test_gradients_finite_over_prior(model_bc03_default, grad_default, prior):
    key_u, key_z = jax.random.split(jax.random.PRNGKey(2024))
    u = prior.sample_flow(key_u, N_DRAWS)
    theta = flow_to_physical(u)
    z = jax.random.uniform(key_z, (N_DRAWS,), jnp.float32, *REDSHIFT_RANGE)
    bad = []
    for s in range(0, N_DRAWS, CHUNK):
        g_t, g_z = grad_default(model_bc03_default, theta[s : s + CHUNK], z[s : s + CHUNK])
        g_t, g_z = np.asarray(g_t), np.asarray(g_z)
        assert g_t.shape == (CHUNK, 12)
        rows = np.flatnonzero(~np.all(np.isfinite(g_t), axis=1) | ~np.isfinite(g_z))
        bad.extend((s + rows).tolist())
    assert not bad, f"{len(bad)} draws with non-finite gradients, e.g. theta = {np.asarray(theta[bad[0]])}, z = {float(z[bad[0]])}"


def _base():
    # a generic galaxy: logM, beta, f_b, t_b, gamma, tau_bc, tau_ism, n
    return np.array([10.0, 0.4, 0.3, 0.2, 0.1, 0.2, 1.5, 3e-3, 2e-3, 0.5, 0.6, -0.3])


def _edge_cases():
    cases = {}
    for i in range(4):  # one beta exactly 0
        th = _base()
        th[1:5] = 1.0 / 3.0
        th[1 + i] = 0.0
        cases[f"beta{i + 1}=0"] = (th, 0.1)
    for fb in (0.0, 1.0):
        th = _base()
        th[5], th[6] = fb, 1.0  # burst well inside the age
        cases[f"f_burst={fb}"] = (th, 0.1)
    th = _base()
    th[5], th[6] = 0.4, 13.0  # burst older than the universe at z = 0.2 (t_age = 11.29 Gyr)
    cases["t_burst>age"] = (th, 0.2)
    th = _base()
    th[5], th[6] = 0.4, 11.27  # between t_c,last (11.254 Gyr) and t_age (11.287 Gyr) at z = 0.2
    cases["t_c,last<t_burst<age"] = (th, 0.2)
    for tb in (0.01, 13.27):
        th = _base()
        th[6] = tb
        cases[f"t_burst={tb}"] = (th, 0.01)
    for end in LOG10_GAMMA_ENDS:
        th = _base()
        th[7:9] = 10.0**end
        cases[f"log10gamma={end}"] = (th, 0.1)
    for name, col, ends in (("tau_bc", 9, (0.0, 3.0)), ("tau_ism", 10, (0.0, 3.0)), ("dust_index", 11, (-2.0, 1.0))):
        for v in ends:
            th = _base()
            th[col] = v
            cases[f"{name}={v}"] = (th, 0.1)
    th = _base()
    th[9:12] = (3.0, 3.0, -2.0)  # strongest attenuation in the prior box
    cases["max_dust"] = (th, 0.1)
    for z in (0.0, 0.2, "z_max"):
        cases[f"z={z}"] = (_base(), z)
    return cases


EDGE = _edge_cases()


@pytest.mark.parametrize("burst_rule", ["fsps_quirk", "age"])
@pytest.mark.parametrize("case", sorted(EDGE))
def test_gradients_finite_at_edges(model_bc03_default, grad_default, case, burst_rule):
    model = model_bc03_default if burst_rule == "fsps_quirk" else dataclasses.replace(model_bc03_default, burst_rule="age")
    th, z = EDGE[case]
    z = model.z_max if z == "z_max" else z
    flux = np.asarray(eqx.filter_jit(model)(jnp.asarray(th, jnp.float32), jnp.float32(z)))
    assert np.all(np.isfinite(flux)) and np.all(flux > 0), f"{case}: flux {flux}"
    g_t, g_z = grad_default(model, jnp.asarray(th, jnp.float32)[None], jnp.asarray([z], jnp.float32))
    assert np.all(np.isfinite(np.asarray(g_t))), f"{case}: d/dtheta = {np.asarray(g_t)}"
    assert np.all(np.isfinite(np.asarray(g_z))), f"{case}: d/dz = {np.asarray(g_z)}"


@pytest.mark.parametrize("burst_rule", ["fsps_quirk", "age"])
def test_f_burst_one_with_dropped_burst_is_dark(model_bc03_default, burst_rule):
    """Documented behaviour: the NMF light is scaled by (1 - f_b) even when the burst is dropped,
    so f_b = 1 with a burst older than the universe emits nothing."""
    model = model_bc03_default if burst_rule == "fsps_quirk" else dataclasses.replace(model_bc03_default, burst_rule="age")
    th = _base()
    th[5], th[6] = 1.0, 13.0
    flux = np.asarray(eqx.filter_jit(model)(jnp.asarray(th, jnp.float32), jnp.float32(0.2)))
    np.testing.assert_array_equal(flux, 0.0)


def test_burst_rules_differ_only_between_midpoint_and_age(model_bc03_default):
    """fsps_quirk keeps the burst iff t_b < t_c,last (11.254 Gyr at z=0.2); 'age' iff t_b < t_age (11.287)."""
    quirk = eqx.filter_jit(model_bc03_default)
    age = eqx.filter_jit(dataclasses.replace(model_bc03_default, burst_rule="age"))
    z = jnp.float32(0.2)
    for tb, same in ((11.2, True), (11.27, False), (11.4, True)):
        th = _base()
        th[5], th[6] = 0.5, tb
        a = np.asarray(quirk(jnp.asarray(th, jnp.float32), z))
        b = np.asarray(age(jnp.asarray(th, jnp.float32), z))
        assert np.allclose(a, b, rtol=1e-6) == same, f"t_burst = {tb}: {a} vs {b}"
