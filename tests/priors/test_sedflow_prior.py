"""The SEDflow prior (provabgs_model.md section 1): moments, bounds, the flow <-> physical bijection,
its Jacobian, and the densities.

References: analytic moments of uniform stick-breaking (and the spec's printed values), the box
bounds of section 1.5, jax.jacobian of the map, and the density p(beta) ~ 1/[(1-b1)(1-b1-b2)]
times independent uniform / log-uniform factors written out here.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sedflow_jax.priors import (
    flow_to_physical,
    log_abs_det_jacobian,
    physical_to_flow,
    sedflow_prior,
)

N_DRAWS = 1_000_000
N_SIGMA = 3.0  # Monte Carlo tolerance in standard errors
BETA_MEAN = np.array([1 / 2, 1 / 4, 1 / 8, 1 / 8])  # spec section 1.3 (exact for uniform z)
# exact stds: b1 ~ U(0,1): 1/sqrt(12); b2 = z1(1-z2): sqrt(1/9 - 1/16); b3, b4: sqrt(1/27 - 1/64)
BETA_STD_EXACT = np.sqrt([1 / 12, 1 / 9 - 1 / 16, 1 / 27 - 1 / 64, 1 / 27 - 1 / 64])
BETA_STD_SPEC = np.array([0.289, 0.221, 0.146, 0.146])  # printed to 3 decimals
LOG10_GAMMA = (-4.3468, -1.8239)  # spec section 1.4 (4 decimals)
PHYS_BOUNDS = {  # spec section 1.2
    0: (7.0, 12.5), 5: (0.0, 1.0), 6: (0.01, 13.27), 7: (4.5e-5, 1.5e-2), 8: (4.5e-5, 1.5e-2),
    9: (0.0, 3.0), 10: (0.0, 3.0), 11: (-2.0, 1.0),
}
FLOW_LOW = np.array([7, 0, 0, 0, 0, 0.01, -4.3468, -4.3468, 0, 0, -2])  # spec section 1.5
FLOW_HIGH = np.array([12.5, 1, 1, 1, 1, 13.27, -1.8239, -1.8239, 3, 3, 1])
ROUND_TRIP_ATOL = 1e-5
BOUND_RTOL = 1e-5  # float32 draws: 10^(log10 gamma) and the 4-decimal log10 bounds
KS_CRIT_1PCT = 1.63  # Kolmogorov-Smirnov critical value x sqrt(N) at 1% significance
N_POINTS = 200  # random points for the Jacobian / density checks


@pytest.fixture(scope="module")
def draws():
    prior = sedflow_prior()
    return np.asarray(prior.sample(jax.random.PRNGKey(0), N_DRAWS), np.float64)


def test_box_matches_spec():
    prior = sedflow_prior()
    np.testing.assert_allclose(np.asarray(prior.low, np.float64), FLOW_LOW, atol=5e-5)
    np.testing.assert_allclose(np.asarray(prior.high, np.float64), FLOW_HIGH, atol=5e-5)
    assert prior.redshift_range == (0.0, 0.2)


def test_beta_moments(draws):
    beta = draws[:, 1:5]
    mean, std = beta.mean(0), beta.std(0)
    se_mean = std / np.sqrt(N_DRAWS)
    assert np.all(np.abs(mean - BETA_MEAN) < N_SIGMA * se_mean), f"mean {mean}"
    # standard error of the std: sqrt(mu4 - sigma^4) / (2 sigma sqrt(N))
    mu4 = ((beta - mean) ** 4).mean(0)
    se_std = np.sqrt(mu4 - std**4) / (2 * std * np.sqrt(N_DRAWS))
    assert np.all(np.abs(std - BETA_STD_EXACT) < N_SIGMA * se_std), f"std {std}"
    # spec: stds "from 10^6 draws", printed to 3 decimals: MC error ~2e-4 + rounding 5e-4 (0.22048 -> "0.221")
    np.testing.assert_allclose(BETA_STD_EXACT, BETA_STD_SPEC, atol=1e-3)
    # a flat Dirichlet would have mean 1/4 and std 0.194 for every beta: make sure it is not that
    assert abs(mean[0] - 0.25) > 0.2


def test_log10_gamma_uniform(draws):
    for col in (7, 8):
        x = np.sort(np.log10(draws[:, col]))
        cdf = (x - LOG10_GAMMA[0]) / (LOG10_GAMMA[1] - LOG10_GAMMA[0])
        ecdf_hi = np.arange(1, N_DRAWS + 1) / N_DRAWS
        d = max(np.max(ecdf_hi - cdf), np.max(cdf - (ecdf_hi - 1 / N_DRAWS)))
        assert d < KS_CRIT_1PCT / np.sqrt(N_DRAWS), f"KS D = {d:.2e}"
        assert x[0] >= LOG10_GAMMA[0] - 5e-5 and x[-1] <= LOG10_GAMMA[1] + 5e-5


def test_draws_within_bounds(draws):
    beta = draws[:, 1:5]
    assert np.all(beta >= 0) and np.all(beta <= 1)
    np.testing.assert_allclose(beta.sum(1), 1.0, atol=1e-6)  # float32 stick-breaking
    for col, (lo, hi) in PHYS_BOUNDS.items():
        # float32 draws; gamma = 10^x loses ~1e-6 relative at the ends
        assert draws[:, col].min() >= lo - BOUND_RTOL * abs(lo) - 1e-7, col
        assert draws[:, col].max() <= hi + BOUND_RTOL * abs(hi) + 1e-7, col


def _random_flow(key, n, dtype):
    prior = sedflow_prior(dtype=dtype)
    return prior.sample_flow(key, n)


@pytest.mark.parametrize("x64", [False, True])
def test_round_trip(x64):
    with jax.enable_x64(x64):
        dtype = jnp.float64 if x64 else jnp.float32
        u = _random_flow(jax.random.PRNGKey(1), 100_000, dtype)
        back = np.asarray(physical_to_flow(flow_to_physical(u)), np.float64)
        err = np.abs(back - np.asarray(u, np.float64))
        worst = np.unravel_index(np.argmax(err), err.shape)
        assert err.max() < ROUND_TRIP_ATOL, (
            f"{dtype.__name__}: max |u - u'| = {err.max():.2e} in column {worst[1]} at u = {np.asarray(u[worst[0]])}"
        )


def _chart(u):
    """The 11-D chart of the physical vector: drop beta4 (= 1 - beta1 - beta2 - beta3)."""
    return jnp.delete(flow_to_physical(u), 4, axis=-1, assume_unique_indices=True)


def test_log_abs_det_jacobian_vs_autodiff():
    with jax.enable_x64(True):
        u = _random_flow(jax.random.PRNGKey(3), N_POINTS, jnp.float64)
        jac = jax.vmap(jax.jacobian(_chart))(u)
        assert jac.shape == (N_POINTS, 11, 11)
        sign, logdet = np.linalg.slogdet(np.asarray(jac))
        assert np.all(sign != 0)
        np.testing.assert_allclose(np.asarray(log_abs_det_jacobian(u)), logdet, rtol=1e-10, atol=1e-10)


def _log_density_reference(theta):
    """Independent log density of the physical vector on the (b1, b2, b3) simplex chart."""
    b1, b2 = theta[:, 1], theta[:, 2]
    g = theta[:, 7:9]
    dlg = np.log10(1.5e-2) - np.log10(4.5e-5)
    return (
        -np.log(12.5 - 7.0)
        - np.log((1 - b1) * (1 - b1 - b2))  # uniform stick-breaking density on the simplex
        - np.log(1.0)  # f_burst ~ U(0, 1)
        - np.log(13.27 - 0.01)
        - np.sum(np.log(g * np.log(10.0) * dlg), axis=1)  # log-uniform gammas
        - 2 * np.log(3.0)  # tau_BC, tau_ISM ~ U(0, 3)
        - np.log(3.0)  # n_dust ~ U(-2, 1)
    )


def test_log_prob_vs_written_out_density():
    with jax.enable_x64(True):
        prior = sedflow_prior(dtype=jnp.float64)
        theta = prior.sample(jax.random.PRNGKey(4), N_POINTS)
        lp = np.asarray(prior.log_prob(theta))
        np.testing.assert_allclose(lp, _log_density_reference(np.asarray(theta)), rtol=1e-10)
    # float32 default
    prior = sedflow_prior()
    theta = prior.sample(jax.random.PRNGKey(4), N_POINTS)
    lp32 = np.asarray(prior.log_prob(theta), np.float64)
    np.testing.assert_allclose(lp32, _log_density_reference(np.asarray(theta, np.float64)), rtol=1e-4, atol=1e-4)


def test_log_prob_outside_support():
    prior = sedflow_prior()
    theta = np.asarray(prior.sample(jax.random.PRNGKey(5), 6), np.float64)
    theta[0, 0] = 13.0  # log M above the box
    theta[1, 1:5] = [0.5, 0.5, 0.5, -0.5]  # negative beta (sum 1)
    theta[2, 1:5] = [0.5, 0.3, 0.3, 0.3]  # off the simplex
    theta[3, 7] = 1e-1  # gamma above the box
    theta[4, 11] = 1.5  # dust index above the box
    lp = np.asarray(prior.log_prob(jnp.asarray(theta, jnp.float32)))
    assert np.all(lp[:5] == -np.inf) and np.isfinite(lp[5])


def test_numpyro_physical_distribution_log_prob():
    with jax.enable_x64(True):
        prior = sedflow_prior(dtype=jnp.float64)
        d = prior.physical_distribution()
        theta = d.sample(jax.random.PRNGKey(6), (N_POINTS,))
        assert theta.shape == (N_POINTS, 12)
        np.testing.assert_allclose(np.asarray(d.log_prob(theta)), np.asarray(prior.log_prob(theta)), rtol=1e-10)
        np.testing.assert_allclose(np.asarray(d.log_prob(theta)), _log_density_reference(np.asarray(theta)), rtol=1e-10)


def test_flow_distribution_samples_in_box():
    prior = sedflow_prior()
    u = np.asarray(prior.flow_distribution().sample(jax.random.PRNGKey(7), (100_000,)), np.float64)
    assert u.shape == (100_000, 11)
    assert np.all(u >= FLOW_LOW - 5e-5) and np.all(u <= FLOW_HIGH + 5e-5)
    assert np.all(np.asarray(prior.in_support_flow(jnp.asarray(u, jnp.float32))))
    # it fills the box: each coordinate reaches within 1% of both ends
    span = FLOW_HIGH - FLOW_LOW
    assert np.all(u.min(0) < FLOW_LOW + 0.01 * span) and np.all(u.max(0) > FLOW_HIGH - 0.01 * span)


def test_one_beta_simplex_tolerance_for_prior_and_model_checks():
    """The prior density and the model's input check accept and reject the same near-simplex betas."""
    from sedflow_jax.model import validate_inputs
    from sedflow_jax.priors import BETA_SIMPLEX_ATOL

    with jax.enable_x64(True):
        prior = sedflow_prior(dtype=jnp.float64)
        base = np.array(prior.sample(jax.random.PRNGKey(7), 1), np.float64)[0]
        base[1:5] = [0.4, 0.3, 0.2, 0.1]
        for factor, ok in ((0.5, True), (3.0, False)):
            theta = base.copy()
            theta[1] += factor * BETA_SIMPLEX_ATOL  # sum = 1 + factor * atol
            assert np.isfinite(float(prior.log_prob(jnp.asarray(theta)))) == ok
            if ok:
                validate_inputs(theta, 0.1, z_max=0.2)
            else:
                with pytest.raises(ValueError, match="not summing to 1"):
                    validate_inputs(theta, 0.1, z_max=0.2)
