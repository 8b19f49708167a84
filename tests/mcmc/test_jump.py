"""JumpNUTS: NUTS plus independent multiple-try jumps leaves the posterior invariant and crosses barriers."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest
from numpyro.infer import MCMC, NUTS
from scipy import integrate, stats

from sedflow_jax.mcmc.jump import JumpNUTS, MixtureJumpNUTS, fit_t_mixture

W_RIGHT = 0.7  # posterior mass of the right mode of x[0]
MU, SD = (0.2, 0.8), 0.02


def _log_mode_mix(a):
    return jnp.logaddexp(jnp.log(1 - W_RIGHT) + dist.Normal(MU[0], SD).log_prob(a),
                         jnp.log(W_RIGHT) + dist.Normal(MU[1], SD).log_prob(a))


def bimodal(slope):
    """x ~ U(0, 1)^3 times two narrow modes in x[0] (barrier of ~400 nats) and a tilt in x[1]."""
    x = numpyro.sample("x", dist.Uniform(jnp.zeros(3), jnp.ones(3)).to_event(1))
    numpyro.factor("modes", _log_mode_mix(x[0]) + slope * x[1])


def _run(kernel, n_chains=4, n=1500):
    mc = MCMC(kernel, num_warmup=500, num_samples=n, num_chains=n_chains, chain_method=jax.vmap, progress_bar=False)
    # every chain starts in the left mode
    mc.run(jax.random.key(3), 2.0, init_params={"x": jnp.tile(jnp.array([-1.386, 0.0, 0.0]), (n_chains, 1))},
           extra_fields=("jumped",) if isinstance(kernel, (JumpNUTS, MixtureJumpNUTS)) else ())
    return mc


def test_jumps_give_the_mode_weights_and_keep_the_rest():
    mc = _run(JumpNUTS(NUTS(bimodal), "x", (0,), 0.0, 1.0, n_try=8))
    x = np.asarray(mc.get_samples()["x"])
    right = np.mean(x[:, 0] > 0.5)
    assert right == pytest.approx(W_RIGHT, abs=0.05)  # exact weight (mode tails beyond the box are ~1e-20)
    # the untouched coordinate keeps its exact marginal p(x1) ~ exp(2 x1) on (0, 1)
    cdf = lambda t: np.expm1(2 * t) / np.expm1(2.0)  # noqa: E731
    assert stats.kstest(x[::10, 1], cdf).pvalue > 1e-3
    # within a mode, x0 follows the Gaussian
    left = x[x[:, 0] < 0.5, 0]
    assert np.std(left) == pytest.approx(SD, rel=0.15)
    assert 0.05 < float(np.mean(mc.get_extra_fields()["jumped"])) < 0.95


def test_without_jumps_the_chains_stay_in_one_mode():
    """The case the move exists for: plain NUTS does not cross the barrier (so the test above can fail)."""
    mc = _run(NUTS(bimodal), n=500)
    x = np.asarray(mc.get_samples()["x"])
    assert np.mean(x[:, 0] > 0.5) < 0.05


def test_mode_weight_reference():
    """W_RIGHT is the exact posterior mass of the right mode (independent quadrature)."""
    dens = lambda a: float(jnp.exp(_log_mode_mix(a)))  # noqa: E731
    tot = integrate.quad(dens, 0, 1, points=MU, limit=200)[0]
    assert integrate.quad(dens, 0.5, 1, points=[MU[1]], limit=200)[0] / tot == pytest.approx(W_RIGHT, abs=1e-6)


def test_bad_arguments():
    with pytest.raises(ValueError, match="n_try"):
        JumpNUTS(NUTS(bimodal), "x", (0,), 0.0, 1.0, n_try=0)
    with pytest.raises(ValueError, match="one value per moved component"):
        JumpNUTS(NUTS(bimodal), "x", (0, 1), 0.0, 1.0)


# ------------------------------------------------------------------ mixture jumps (NUTSConfig.mode_jumps)
def _two_chain_draws(rng, n=200):
    """Unconstrained 'warm-up draws' of two chains, one in each mode of ``bimodal`` (logit of x)."""
    logit = lambda p: np.log(p) - np.log1p(-p)  # noqa: E731
    sd0 = SD / (MU[0] * (1 - MU[0]))  # width of a mode in logit(x0)
    out = []
    for mu in MU:
        x0 = rng.normal(logit(mu), sd0, n)
        rest = logit(rng.uniform(size=(n, 2)))
        out.append(np.column_stack([x0, rest]))
    return np.stack(out).astype(np.float32)


def test_t_mixture_density_and_draws_match_scipy():
    rng = np.random.default_rng(1)
    draws = np.stack([rng.normal(m, 1 + i, (300, 3)) for i, m in enumerate((0.0, 5.0))])
    mix = fit_t_mixture(draws)
    k = mix.loc.shape[0]
    comps = [stats.multivariate_t(loc=np.asarray(mix.loc[c], float),
                                  shape=np.asarray(mix.chol[c] @ mix.chol[c].T, float), df=4) for c in range(k)]
    x = rng.normal(2.0, 3.0, (50, 3))
    ref = np.log(sum(c.pdf(x) for c in comps) / k)
    np.testing.assert_allclose(np.asarray(mix.log_prob(jnp.asarray(x))), ref, rtol=0, atol=1e-5)  # float32
    # draws: a 1-D projection against the mixture's CDF (a projected multivariate t is a univariate t)
    a = np.array([0.3, -0.5, 0.8])
    y = np.asarray(mix.sample(jax.random.key(1), 20000), np.float64) @ a
    sc = [float(np.sqrt(a @ np.asarray(mix.chol[c] @ mix.chol[c].T, float) @ a)) for c in range(k)]
    cdf = lambda t: np.mean([stats.t.cdf((t - float(np.asarray(mix.loc[c]) @ a)) / sc[c], 4)  # noqa: E731
                             for c in range(k)], axis=0)
    assert stats.kstest(y, cdf).pvalue > 1e-3
    # one component per chain: the chain's mean, and its covariance x 1.2^2 plus 5% of the pooled one
    np.testing.assert_allclose(np.asarray(mix.loc), draws.mean(axis=1), atol=1e-5)
    pooled = np.cov(draws.reshape(-1, 3), rowvar=False)
    cov1 = np.asarray(mix.chol[1] @ mix.chol[1].T, float)
    np.testing.assert_allclose(cov1, 1.44 * np.cov(draws[1], rowvar=False) + 0.05 * pooled, rtol=1e-4, atol=1e-4)


def test_t_mixture_bad_arguments():
    with pytest.raises(ValueError, match="chains, n >= 2, d"):
        fit_t_mixture(np.zeros((10, 3)))
    with pytest.raises(ValueError, match="n_try"):
        MixtureJumpNUTS(NUTS(bimodal), "x", fit_t_mixture(np.ones((2, 5, 3)) + np.arange(5)[:, None]), n_try=0)


def test_mixture_jumps_carry_chains_into_the_mode_another_chain_found():
    """All chains start in the left mode; the proposal was fitted to one chain per mode (as after a warm-up in
    which the chains split): the jumps give the exact mode weight and keep the other coordinate's marginal."""
    mix = fit_t_mixture(_two_chain_draws(np.random.default_rng(0)))
    mc = _run(MixtureJumpNUTS(NUTS(bimodal), "x", mix, n_try=4))
    x = np.asarray(mc.get_samples()["x"])
    assert np.mean(x[:, 0] > 0.5) == pytest.approx(W_RIGHT, abs=0.05)
    cdf = lambda t: np.expm1(2 * t) / np.expm1(2.0)  # noqa: E731
    assert stats.kstest(x[::10, 1], cdf).pvalue > 1e-3
    assert np.std(x[x[:, 0] > 0.5, 0]) == pytest.approx(SD, rel=0.15)
    assert 0.05 < float(np.mean(mc.get_extra_fields()["jumped"])) < 0.95
