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

from sedflow_jax.mcmc.jump import JumpNUTS

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
           extra_fields=("jumped",) if isinstance(kernel, JumpNUTS) else ())
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
