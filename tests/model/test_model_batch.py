"""jit / vmap / chunked batch evaluation, and rejection of bad input with informative errors.

References: a Python loop of un-jitted single-galaxy calls (the kernel itself), and trace counts.
"""

from __future__ import annotations

import os
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sedflow_jax.model import ProvabgsModel, photometry_batch, validate_inputs
from sedflow_jax.model.batch import batched
from sedflow_jax.params import THETA_NAMES

N_VMAP = 64
LOOP_STRIDE = 16  # the eager loop checks every 16th of the 64 draws (4 calls; eager dispatch is ~2 s each on 2 shared cores)
VMAP_RTOL = 1e-5  # float32: jit fusion / reassociation vs op-by-op execution
N_CHUNK_ROWS, CHUNK = 20, 7  # 3 chunks, the last padded


@pytest.fixture(scope="module")
def draws(prior):
    key_t, key_z = jax.random.split(jax.random.PRNGKey(5))
    theta = np.asarray(prior.sample(key_t, N_VMAP), np.float64)
    z = np.asarray(prior.sample_redshift(key_z, N_VMAP), np.float64)
    z[0] = 0.0
    return theta, z


@pytest.fixture(scope="module")
def vmapped(model_synth_default, draws):
    theta, z = draws
    f = eqx.filter_jit(jax.vmap(model_synth_default))
    return np.asarray(f(jnp.asarray(theta, jnp.float32), jnp.asarray(z, jnp.float32)), np.float64)


def test_jit_vmap_equals_loop(model_synth_default, draws, vmapped):
    theta, z = draws
    rows = np.arange(0, N_VMAP, LOOP_STRIDE)
    loop = np.stack([np.asarray(model_synth_default(jnp.asarray(theta[i], jnp.float32), jnp.float32(z[i])), np.float64)
                     for i in rows])  # plain (un-jitted, op-by-op) single-galaxy calls
    assert np.all(np.isfinite(loop)) and np.all(loop > 0)
    np.testing.assert_allclose(vmapped[rows], loop, rtol=VMAP_RTOL)


def test_photometry_batch_chunks_compile_once(model_synth_default, draws, vmapped):
    theta, z = draws
    theta, z = theta[:N_CHUNK_ROWS], z[:N_CHUNK_ROWS]
    out = photometry_batch(model_synth_default, theta, z, chunk_size=CHUNK)
    assert out.shape == (N_CHUNK_ROWS, 5)
    np.testing.assert_allclose(out, vmapped[:N_CHUNK_ROWS], rtol=VMAP_RTOL)

    traces = []

    def counted(model, th, zz):
        traces.append(th.shape)  # runs only while tracing
        return model(th, zz)

    out2 = batched(counted, model_synth_default, theta, z, chunk_size=CHUNK)
    np.testing.assert_allclose(out2, out, rtol=0, atol=0)
    assert len(traces) == 1, f"chunk function traced {len(traces)} times for 3 chunks"
    assert traces[0] == (12,)  # traced once for the vmapped single-galaxy kernel


def test_photometry_batch_compiles_once_across_catalogue_lengths(model_synth_default, draws, vmapped):
    """A fixed chunk shape: catalogues shorter than a chunk are padded, not compiled at their own size."""
    from tests.compile_count import count_compiles

    theta, z = draws
    with count_compiles("_chunk_apply") as c:
        outs = [photometry_batch(model_synth_default, theta[:k], z[:k], chunk_size=N_VMAP) for k in (3, 10, 50)]
    assert c.count <= 1  # 0 when an earlier test compiled this chunk size already
    with count_compiles() as c:  # once compiled, no length compiles anything
        again = [photometry_batch(model_synth_default, theta[:k], z[:k], chunk_size=N_VMAP) for k in (4, 33, 64)]
    assert c.count == 0
    for k, out in zip((3, 10, 50, 4, 33, 64), outs + again):
        assert out.shape == (k, 5)
        np.testing.assert_allclose(out, vmapped[:k], rtol=VMAP_RTOL)
    np.testing.assert_array_equal(again[2][:50], outs[2])  # a row's value does not depend on the padding


def test_single_row_and_scalar_redshift(model_synth_default, draws, vmapped):
    theta, z = draws
    out = photometry_batch(model_synth_default, theta[3], z[3])
    np.testing.assert_allclose(out[0], vmapped[3], rtol=VMAP_RTOL)


# ---------------------------------------------------------------- bad input
def _good(prior, n=5):
    theta = np.asarray(prior.sample(jax.random.PRNGKey(9), n), np.float64)
    return theta, np.full(n, 0.1)


@pytest.mark.parametrize("col", range(12))
def test_nan_names_parameter_and_row(model_synth_default, prior, col):
    theta, z = _good(prior)
    theta[3, col] = np.nan
    with pytest.raises(ValueError, match=rf"{THETA_NAMES[col]}.*row\(s\) \[3\]"):
        photometry_batch(model_synth_default, theta, z)


def _bad_cases():
    # (name, column, value, message regex)
    return [
        ("beta_off_simplex", 1, 0.9, r"beta1\.\.beta4 not summing to 1.*row\(s\) \[2\]"),
        ("negative_beta", None, None, r"negative SFH weight 'beta3'.*row\(s\) \[2\]"),
        ("f_burst_above_1", 5, 1.2, r"'f_burst' outside.*row\(s\) \[2\]"),
        ("f_burst_negative", 5, -0.1, r"'f_burst' outside.*row\(s\) \[2\]"),
        ("tau_ism_negative", 10, -0.5, r"'tau_ism' outside.*row\(s\) \[2\]"),
        ("gamma_negative", 7, -1e-3, r"'gamma1_zh' outside.*row\(s\) \[2\]"),
    ]


@pytest.mark.parametrize("name, col, value, msg", _bad_cases(), ids=[c[0] for c in _bad_cases()])
def test_bad_parameters(model_synth_default, prior, name, col, value, msg):
    theta, z = _good(prior)
    if name == "negative_beta":
        theta[2, 1:5] = [0.5, 0.3, -0.1, 0.3]
    else:
        theta[2, col] = value
    with pytest.raises(ValueError, match=msg):
        photometry_batch(model_synth_default, theta, z)
    with pytest.raises(ValueError, match=msg):
        validate_inputs(theta, z, z_max=model_synth_default.z_max)


@pytest.mark.parametrize("zbad, msg", [(-0.01, r"negative redshift.*row\(s\) \[1\]"),
                                       (1.5, r"redshift above the model's z_max.*row\(s\) \[1\]"),
                                       (np.nan, r"non-finite redshift.*row\(s\) \[1\]")])
def test_bad_redshift(model_synth_default, prior, zbad, msg):
    theta, z = _good(prior)
    z[1] = zbad
    with pytest.raises(ValueError, match=msg):
        photometry_batch(model_synth_default, theta, z)


def test_wrong_shapes(model_synth_default, prior):
    theta, z = _good(prior)
    with pytest.raises(ValueError, match=r"theta must have shape \(n_gal, 12\).*\(5, 11\)"):
        photometry_batch(model_synth_default, theta[:, :11], z)
    with pytest.raises(ValueError, match=r"theta must have shape"):
        photometry_batch(model_synth_default, theta[None], z)
    with pytest.raises(ValueError, match=r"redshift must have shape \(5,\).*\(4,\)"):
        photometry_batch(model_synth_default, theta, z[:4])
    with pytest.raises(ValueError, match=r"redshift must have shape"):
        photometry_batch(model_synth_default, theta, z[:, None])
    with pytest.raises(ValueError, match=r"theta must have shape \(12,\)"):  # the kernel itself
        model_synth_default(jnp.zeros(11), 0.1)


@pytest.mark.parametrize("filters, msg", [("sdss2010-q", r"sdss2010-q"), ("nonexistent-x", r"nonexistent-x"),
                                          (("sdss2010-g", "nonexistent-x"), r"nonexistent-x"),
                                          ("nonexistent-*", r"nonexistent")])
def test_unknown_filter(synthetic_table, filters, msg):
    with pytest.raises(ValueError, match=msg):
        ProvabgsModel.build(synthetic_table, None, filters=filters)


def test_unknown_burst_rule(synthetic_table):
    with pytest.raises(ValueError, match=r"burst_rule.*'emulator'"):
        ProvabgsModel.build(synthetic_table, None, burst_rule="emulator")


def test_table_not_covering_filters():
    from sedflow_jax.sps.synthetic import synthetic_ssp_table
    from sedflow_jax.sps.table import SSPTable

    t = synthetic_ssp_table()
    keep = t.wave_aa < 9000.0  # z band reaches 11,141 A
    narrow = SSPTable(t.log10_zmet, t.log10_age_gyr, t.wave_aa[keep], t.lnu_lsun_per_hz_per_msun[..., keep],
                      t.mstar_surv_frac, None, None, dict(t.attrs))
    with pytest.raises(ValueError, match=r"SSP table covers .*sdss2010-z"):
        ProvabgsModel.build(narrow, None)
    # with z_max = 1 the u band's blue edge (2939 A) needs 1470 A rest frame
    keep = t.wave_aa > 2000.0
    red = SSPTable(t.log10_zmet, t.log10_age_gyr, t.wave_aa[keep], t.lnu_lsun_per_hz_per_msun[..., keep],
                   t.mstar_surv_frac, None, None, dict(t.attrs))
    with pytest.raises(ValueError, match=r"SSP table covers .*sdss2010-u"):
        ProvabgsModel.build(red, None, z_max=1.0)


def test_corrupt_ssp_file(tmp_path):
    path = tmp_path / "corrupt_table.h5"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(ValueError, match=r"corrupt_table\.h5"):
        ProvabgsModel.build(path, None)
    with pytest.raises(ValueError, match=r"corrupt_table\.h5"):
        ProvabgsModel.build(os.fspath(path), None)


def test_missing_ssp_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no_such_table\.h5"):
        ProvabgsModel.build(tmp_path / "no_such_table.h5", None)


def test_bad_z_max(synthetic_table):
    with pytest.raises(ValueError, match=r"z_max"):
        ProvabgsModel.build(synthetic_table, None, z_max=0.0)
    with pytest.raises(ValueError, match=r"z_max"):
        ProvabgsModel.build(synthetic_table, None, z_max=100.0)


def test_build_accepts_provabgs_basis_directory(synthetic_table_for_basis_dir):
    """``basis=<directory>`` reads PROVABGS's own text format (same as load_provabgs_basis)."""
    import equinox as eqx
    import jax.numpy as jnp

    from sedflow_jax.model import ProvabgsModel, load_provabgs_basis

    table, directory = synthetic_table_for_basis_dir
    a = ProvabgsModel.build(table, directory, z_max=0.5)
    b = ProvabgsModel.build(table, load_provabgs_basis(directory), z_max=0.5)
    theta = jnp.array([10.0, 0.4, 0.3, 0.2, 0.1, 0.1, 2.0, 3e-3, 2e-3, 0.3, 0.3, -0.2])
    assert a.basis_name == "provabgs"
    np.testing.assert_array_equal(np.asarray(eqx.filter_jit(a)(theta, 0.1)), np.asarray(eqx.filter_jit(b)(theta, 0.1)))
    with pytest.raises(FileNotFoundError, match="lacks"):
        ProvabgsModel.build(table, Path(directory).parent / "no_such_dir", z_max=0.5)


@pytest.fixture
def synthetic_table_for_basis_dir():
    from sedflow_jax.sps import synthetic_ssp_table

    from _shared import provabgs_dir

    return synthetic_ssp_table(n_wave=3000), provabgs_dir()


def test_blocked_chunks_equal_vmap(model_synth_default, draws, vmapped):
    """Chunks evaluated as a lax.map over row blocks (the CPU fast path) give the vmapped numbers."""
    from sedflow_jax.model.batch import _photometry, batched

    theta, z = draws
    out = batched(_photometry, model_synth_default, theta, z, chunk_size=16, block_rows=4)
    np.testing.assert_allclose(out, vmapped, rtol=VMAP_RTOL)


def test_redshift_beyond_z_max_raises_inside_jit_and_vmap(model_synth_default, draws):
    """The public kernels check 0 <= z <= z_max (band windows, precomputed bins and the cosmology table
    assume it and would clamp silently), also traced under jit and vmap."""
    theta, _ = draws
    m = model_synth_default
    z_bad = m.z_max * 1.01
    for fn in (m, m.properties, m.observed_spectrum, m.rest_frame_absmag):
        with pytest.raises(Exception, match=r"redshift outside the model's range \[0, z_max = 1.0\]"):
            jax.block_until_ready(eqx.filter_jit(fn)(jnp.asarray(theta[0], jnp.float32), z_bad))
    zz = jnp.asarray([0.1, z_bad, 0.2], jnp.float32)
    with pytest.raises(Exception, match="z_max"):
        jax.block_until_ready(eqx.filter_jit(jax.vmap(m, in_axes=(None, 0)))(jnp.asarray(theta[0], jnp.float32), zz))
    with pytest.raises(Exception, match="redshift outside"):
        jax.block_until_ready(m(theta[0], -0.01))
    assert np.all(np.isfinite(np.asarray(eqx.filter_jit(m)(jnp.asarray(theta[0], jnp.float32), m.z_max))))
