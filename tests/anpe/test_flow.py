import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest

from sedflow_jax.anpe import Posterior
from sedflow_jax.anpe.flow import box_to_unbounded, unbounded_to_box
from sedflow_jax.priors.sedflow import SEDFLOW_BOUNDS, physical_to_flow

LOGDET_ATOL = 1e-3  # nats, float32 autodiff vs closed form


def test_save_load_round_trip_identical_samples(tiny_posterior):
    path, post, (u, x) = tiny_posterior
    again = Posterior.load(path)
    a = post.sample(jr.key(1), x[:7], 50)
    b = again.sample(jr.key(1), x[:7], 50)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(post.log_prob(u[:20], x[:20]), again.log_prob(u[:20], x[:20]))
    assert again.support.threshold == pytest.approx(post.support.threshold)


def test_samples_inside_prior_box_even_far_outside_support(tiny_posterior):
    _, post, (u, x) = tiny_posterior
    wild = x[:4].copy()
    wild[0, :5] -= 20  # absurdly bright
    wild[1, 5:10] = 50.0  # huge errors
    wild[2, :5] = [30, 10, 25, 5, 40]  # impossible colours
    low, high = SEDFLOW_BOUNDS
    s = post.sample(jr.key(2), np.concatenate([x[:60], wild]), 500, physical=False)
    assert np.all(np.isfinite(s))
    assert np.all((s >= low.astype(np.float32)) & (s <= high.astype(np.float32)))
    theta = post.sample(jr.key(2), wild, 200)
    u_back = np.asarray(physical_to_flow(jnp.asarray(theta)))
    assert np.all((u_back >= low - 1e-5) & (u_back <= high + 1e-5))
    assert np.allclose(theta[..., 1:5].sum(-1), 1, atol=1e-5)


def test_sampling_independent_of_chunking(tiny_posterior):
    _, post, (_, x) = tiny_posterior
    a = post.sample(jr.key(3), x[:37], 64, samples_per_chunk=64 * 8)
    b = post.sample(jr.key(3), x[:37], 64, samples_per_chunk=64 * 64)
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
    single = post.sample(jr.key(3), x[5], 64)
    assert single.shape == (64, 12)


def test_box_bijection_logdet_matches_autodiff():
    import jax

    low, high = (jnp.asarray(b, jnp.float32) for b in SEDFLOW_BOUNDS)
    u = low + (high - low) * jnp.linspace(0.05, 0.95, 11)
    y, logdet = box_to_unbounded(u, low, high)
    jac = jax.jacfwd(lambda v: box_to_unbounded(v, low, high)[0])(u)
    assert float(logdet) == pytest.approx(float(jnp.linalg.slogdet(jac)[1]), abs=LOGDET_ATOL)
    np.testing.assert_allclose(unbounded_to_box(y, low, high), u, rtol=1e-5, atol=1e-5)


def test_typed_key_required(tiny_posterior):
    _, post, (_, x) = tiny_posterior
    with pytest.raises(TypeError):
        post.sample(jr.PRNGKey(0), x[:2], 4)


def test_sample_and_log_prob_compile_once_across_catalogue_lengths(tiny_posterior):
    from tests.compile_count import count_compiles

    _, post, (u, x) = tiny_posterior
    n = 23  # a sample count no other test uses: the first call must compile
    with count_compiles("_sample_chunk") as c:
        draws = [post.sample(jr.key(4), x[:k], n) for k in (3, 7, 20)]
    assert c.count == 1
    assert [d.shape for d in draws] == [(3, n, 12), (7, n, 12), (20, n, 12)]
    uu, xx = np.concatenate([u, u]), np.concatenate([x, x])  # 6000 rows: two chunks
    post.log_prob(uu[:2], xx[:2])  # compiles (unless an earlier test did)
    with count_compiles() as c:  # any compilation at all
        lps = [post.log_prob(uu[:k], xx[:k]) for k in (3, 7, 20, 5000)]
    assert c.count == 0
    assert [lp.shape for lp in lps] == [(3,), (7,), (20,), (5000,)]
    # chunked and padded evaluation = the flow's own density on the same rows
    ref = np.asarray(post.flow.log_prob(jnp.asarray(u[:20]), jnp.asarray(x[:20])))
    np.testing.assert_allclose(lps[2], ref, rtol=1e-6, atol=1e-5)
    np.testing.assert_array_equal(lps[3][:20], lps[2])
    assert post.log_prob(u[:6].reshape(2, 3, 11), x[0]).shape == (2, 3)


def test_float64_inputs_follow_the_flow_dtype(tiny_posterior):
    import jax

    _, post, (u, x) = tiny_posterior
    x64 = x[:5].astype(np.float64)
    a = post.sample(jr.key(6), x[:5], 16)
    b = post.sample(jr.key(6), x64, 16)
    assert a.dtype == b.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    lp = post.log_prob(u[:5].astype(np.float64), x64)
    assert lp.dtype == np.float32
    np.testing.assert_array_equal(lp, post.log_prob(u[:5], x[:5]))
    with jax.enable_x64(True):
        c = post.sample(jr.key(6), x64, 16)
        lp64 = post.log_prob(u[:5].astype(np.float64), x64)
    assert c.dtype == np.float32 and lp64.dtype == np.float32
    assert np.all(np.isfinite(c))
    np.testing.assert_allclose(lp64, lp, rtol=1e-4, atol=1e-3)
