"""run_nuts: one short run end to end, the output format, and input errors."""

from __future__ import annotations

import dataclasses
import warnings

import jax
import numpy as np
import pytest

from sedflow_jax.mcmc.run import NotConvergedError, NotConvergedWarning, NUTSConfig, diagnose, run_nuts

# the same settings as test_cli.py passes on the command line: one compile (cached) serves both files
SHORT = NUTSConfig(num_warmup=30, num_samples=20, num_chains=2, max_extensions=0)


def test_short_run_reports_non_convergence(nuts_model, galaxy, tmp_path):
    import arviz as az

    flux, ivar, z, theta = galaxy
    with pytest.warns(NotConvergedWarning, match="did not converge"):
        res = run_nuts(jax.random.key(0), flux, ivar, z, model=nuts_model, config=SHORT, truth=theta)
    assert not res.converged  # 40 draws cannot give ESS >= 400
    post = res.idata.posterior
    assert post["theta_flow"].shape == (2, 20, 11) and post["theta"].shape == (2, 20, 12)
    assert np.allclose(post["theta"].sel(param=["beta1", "beta2", "beta3", "beta4"]).sum("param"), 1, atol=1e-5)
    assert res.idata.attrs["converged"] == 0 and res.idata.attrs["convergence_failures"]
    # posterior mass near the truth: the data are informative about the stellar mass
    assert abs(float(post["theta"].sel(param="log10_mstar_formed").median()) - theta[0]) < 0.5
    path = tmp_path / "g.nc"
    res.to_netcdf(path)
    back = az.from_netcdf(path)
    assert back.posterior["theta"].shape == (2, 20, 12)
    assert int(back.attrs["converged"]) == 0
    with pytest.raises(NotConvergedError):
        run_nuts(jax.random.key(0), flux, ivar, z, model=nuts_model, config=SHORT, require_converged=True)


def test_diagnose_flags_disagreeing_chains():
    rng = np.random.default_rng(0)
    good = rng.uniform(0.2, 0.8, (4, 1000, 11))
    d = diagnose(good, np.zeros((4, 1000), bool), NUTSConfig())
    assert d["converged"], d["reasons"]
    bad = good.copy()
    bad[0, :, 0] += 0.3  # one chain in another mode
    d = diagnose(bad, np.zeros((4, 1000), bool), NUTSConfig())
    assert not d["converged"] and "R-hat" in d["reasons"][0]
    few = np.zeros((4, 1000), bool)
    few[:, ::500] = True  # 0.2% divergent: within the default 1% allowance, reported
    d = diagnose(good, few, NUTSConfig())
    assert d["converged"] and d["n_divergent"] == 8
    many = np.zeros((4, 1000), bool)
    many[:, ::50] = True  # 2%
    d = diagnose(good, many, NUTSConfig())
    assert not d["converged"] and "divergent" in d["reasons"][0]
    d = diagnose(good, few, NUTSConfig(max_divergence_fraction=0.0))  # the strict rule
    assert not d["converged"]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(redshift=0.5), "redshift outside"),
        (dict(redshift=-0.01), "redshift outside"),
        (dict(ivar=-np.ones(5)), "ivar"),
        (dict(flux=np.ones(4), ivar=np.ones(4)), "filters"),
    ],
)
def test_bad_inputs(nuts_model, galaxy, kwargs, match):
    flux, ivar, z, _ = galaxy
    args = dict(flux=flux, ivar=ivar, redshift=z) | kwargs
    with pytest.raises(ValueError, match=match):
        run_nuts(jax.random.key(0), args["flux"], args["ivar"], args["redshift"], model=nuts_model, config=SHORT)


def test_bad_key_and_config(nuts_model, galaxy):
    flux, ivar, z, _ = galaxy
    with pytest.raises(TypeError, match="typed"):
        run_nuts(jax.random.PRNGKey(0), flux, ivar, z, model=nuts_model, config=SHORT)
    with pytest.raises(ValueError, match="chain_method"):
        NUTSConfig(chain_method="parallel-ish")
    with pytest.raises(ValueError, match="init"):
        NUTSConfig(init="bogus")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        NUTSConfig()


def test_joint_marginals_refuse_a_narrowed_f_burst_box(nuts_model, galaxy):
    """joint_off / joint_on need the f_burst box [0, 1]; the refusal comes before any compile.
    (Their runs, with the burst jumps, are in ``test_collapsed.py::test_chains_split_over_host_devices``.)"""
    import equinox as eqx

    from sedflow_jax.priors.sedflow import sedflow_prior

    flux, ivar, z, _ = galaxy
    prior = sedflow_prior()
    narrow = eqx.tree_at(lambda p: p.high, prior, prior.high.at[4].set(0.5))  # f_burst <= 0.5
    for opts in (dict(joint_off=True), dict(joint_on=True)):
        with pytest.raises(ValueError, match="f_burst prior box"):
            run_nuts(jax.random.key(2), flux, ivar, z, model=nuts_model, prior=narrow,
                     config=dataclasses.replace(SHORT, **opts))
    with pytest.raises(ValueError, match="collapsed"):
        NUTSConfig(sampler="gibbs", jump_tries=4)
    with pytest.raises(ValueError, match="jump_tries"):
        NUTSConfig(jump_tries=-1)


def test_passing_draws_are_not_continued_and_keep_their_diagnostics():
    """Draws that already pass R-hat and ESS end the extension loop at once (no sampler call: the model
    arguments are None) and carry the diagnostics of exactly those draws to the result."""
    from sedflow_jax.mcmc.run import _extend_until_converged

    rng = np.random.default_rng(1)
    raw = {"theta_flow": rng.uniform(0.2, 0.8, (4, 1000, 11)), "diverging": np.zeros((4, 1000), bool),
           "burst_on": rng.integers(0, 2, (4, 1000))}
    out = _extend_until_converged(NUTSConfig(max_extensions=3), raw, jax.random.key(0), None, None, None, None, None)
    assert out["n_blocks"] == 1 and out["theta_flow"] is raw["theta_flow"]
    ref = diagnose(raw["theta_flow"], raw["diverging"], NUTSConfig(), raw["burst_on"])
    assert out["diag"]["converged"] and out["diag"]["max_rhat"] == ref["max_rhat"]
    assert out["diag"]["min_ess_bulk"] == ref["min_ess_bulk"]


def test_laplace_start_selection_passes_over_a_narrow_spike():
    """Two Gaussian modes in 2-D: a spike (sigma 0.01, 10% of the mass) whose peak density is 1,000x
    that of a broad mode (sigma 1, 90%). Picking by density starts in the spike; the Laplace mass
    (log p - log det(-H) / 2, exact for Gaussians) picks the broad mode, which holds the mass."""
    import jax.numpy as jnp
    from jax.scipy.special import logsumexp
    from jax.scipy.stats import multivariate_normal as mvn

    from sedflow_jax.mcmc.run import _log_det_curvature, _start_scores

    mu = jnp.array([[0.0, 0.0], [5.0, 5.0]])
    sd = jnp.array([0.01, 1.0])
    w = jnp.array([0.1, 0.9])

    def logp(x, s):
        comps = jnp.stack([mvn.logpdf(x, mu[k], sd[k] ** 2 * jnp.eye(2)) for k in range(2)])
        return logsumexp(comps + jnp.log(w))

    x, s = mu, jnp.zeros(2, jnp.int32)
    lp = jax.vmap(logp)(x, s)
    assert int(jnp.argmax(_start_scores(logp, x, s, lp, "density"))) == 0
    score = _start_scores(logp, x, s, lp, "laplace")
    assert int(jnp.argmax(score)) == 1
    # Laplace log mass at a Gaussian mode = log(weight) + log(2 pi): the two differ by log(9)
    np.testing.assert_allclose(float(score[1] - score[0]), np.log(9.0), rtol=1e-4)
    # the floor: a direction that curves up (a saddle) counts as broad, not as NaN
    flat = _log_det_curvature(lambda v: -0.5 * v[0] ** 2 + 0.5 * v[1] ** 2, jnp.zeros(2))
    np.testing.assert_allclose(float(flat), np.log(1.0) + np.log(0.1), rtol=1e-6)
    with pytest.raises(ValueError, match="init_select"):
        NUTSConfig(init_select="mass")


def test_pooled_starts_replace_a_chain_stuck_in_a_minor_mode():
    import jax.numpy as jnp

    from sedflow_jax.mcmc.run import LAPLACE_GAP_NATS, _pick_starts

    score = jnp.array([[-3.0, -1.0],  # chain 0: own best is candidate 1 (flat 1)
                       [-2.0, -9.0],  # chain 1: flat 2, within the gap of the best
                       [-20.0, -30.0],  # chain 2: 19 nats below: a minor mode
                       [-0.5, -4.0]])  # chain 3: flat 6, the best of all
    assert _pick_starts(score, pooled=False).tolist() == [1, 2, 4, 6]
    # chain 2 takes the 3rd best candidate of all chains (ranking 6, 1, 2, 0, ...): flat 2
    assert _pick_starts(score, pooled=True).tolist() == [1, 2, 2, 6]
    near = score.at[2, 0].set(-0.5 - LAPLACE_GAP_NATS + 0.1)  # just inside the gap: keeps its own
    assert _pick_starts(near, pooled=True).tolist() == [1, 2, 4, 6]


@pytest.mark.parametrize("n_dev, chains, expect", [(1, 4, 1), (2, 4, 2), (3, 4, 2), (4, 4, 4), (8, 4, 4),
                                                     (8, 6, 6), (4, 6, 3), (16, 8, 8)])
def test_chains_use_the_most_devices_that_divide_them(monkeypatch, n_dev, chains, expect):
    """Up to one device per chain; the count must divide the chains (2 per device on 2 cores, 1 per device
    on 8 devices for 4 chains: before, 4 chains on 8 devices ran all on one)."""
    from sedflow_jax.mcmc import run as run_mod

    monkeypatch.setattr(run_mod.jax, "local_device_count", lambda: n_dev)
    cfg = dataclasses.replace(SHORT, num_chains=chains)
    assert run_mod._chain_devices(cfg) == expect
    assert run_mod._chain_devices(dataclasses.replace(cfg, chain_method="sequential")) == 1
