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
