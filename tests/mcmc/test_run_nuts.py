"""run_nuts: one short run end to end, the output format, and input errors."""

from __future__ import annotations

import dataclasses
import warnings

import jax
import numpy as np
import pytest

from sedflow_jax.mcmc import NotConvergedError, NotConvergedWarning, NUTSConfig, diagnose, run_nuts

# the same settings as test_cli.py passes on the command line
SHORT = NUTSConfig(num_warmup=30, num_samples=20, num_chains=2, max_extensions=0)


def test_short_run_reports_non_convergence(nuts_model, galaxy, tmp_path, nuts_runs):
    import arviz as az

    flux, ivar, z, theta = galaxy
    with pytest.warns(NotConvergedWarning, match="did not converge"):
        res = run_nuts(jax.random.key(0), flux, ivar, z, model=nuts_model, config=SHORT, truth=theta, cache=nuts_runs)
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
        run_nuts(jax.random.key(0), flux, ivar, z, model=nuts_model, config=SHORT, require_converged=True,
                 cache=nuts_runs)
    _batch_compiles_nothing_more(nuts_model, flux, ivar, nuts_runs)


def _batch_compiles_nothing_more(nuts_model, flux, ivar, cache):
    """Compile count: after the run above, run_nuts_batch on two more galaxies of the same shape (other fluxes
    and redshifts) reuses its program: ``run_one`` is not compiled again and its jit cache holds one entry."""
    from sedflow_jax.mcmc import run_nuts_batch
    from tests.compile_count import count_compiles

    n_runners = len(cache)
    with count_compiles("run_one") as counter, warnings.catch_warnings():
        warnings.simplefilter("ignore", NotConvergedWarning)
        out = list(run_nuts_batch(jax.random.key(1), np.stack([1.1 * flux, 0.9 * flux]), np.stack([ivar] * 2),
                                  np.array([0.05, 0.12]), model=nuts_model, config=SHORT, progress=False, cache=cache))
    assert [r.idata.posterior["theta"].shape for _, r in out] == [(2, 20, 12)] * 2
    assert counter.count == 0 and len(cache) == n_runners  # no new program, no recompile
    assert all(run._cache_size() == 1 for run in cache.runners())



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
    for gone in ("sampler", "jump_tries", "joint_off", "init_select", "profile_mass"):  # removed options
        with pytest.raises(TypeError):
            NUTSConfig(**{gone: 0})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        NUTSConfig()


def test_passing_draws_are_not_continued_and_keep_their_diagnostics():
    """Draws that already pass R-hat and ESS end the extension loop at once (no sampler call: the model
    arguments are None) and carry the diagnostics of exactly those draws to the result."""
    from sedflow_jax.mcmc.drivers import extend_until_converged

    rng = np.random.default_rng(1)
    raw = {"theta_flow": rng.uniform(0.2, 0.8, (4, 1000, 11)), "diverging": np.zeros((4, 1000), bool),
           "burst_on": rng.integers(0, 2, (4, 1000))}
    out = extend_until_converged(NUTSConfig(max_extensions=3), raw, jax.random.key(0), None, None, None, None, None)
    assert out["n_blocks"] == 1 and out["theta_flow"] is raw["theta_flow"]
    ref = diagnose(raw["theta_flow"], raw["diverging"], NUTSConfig(), raw["burst_on"])
    assert out["diag"]["converged"] and out["diag"]["max_rhat"] == ref["max_rhat"]
    assert out["diag"]["min_ess_bulk"] == ref["min_ess_bulk"]


@pytest.mark.parametrize("n_dev, chains, expect", [(1, 4, 1), (2, 4, 2), (3, 4, 2), (4, 4, 4), (8, 4, 4),
                                                     (8, 6, 6), (4, 6, 3), (16, 8, 8)])
def test_chains_use_the_most_devices_that_divide_them(monkeypatch, n_dev, chains, expect):
    """Up to one device per chain; the count must divide the chains (2 per device on 2 cores, 1 per device
    on 8 devices for 4 chains: before, 4 chains on 8 devices ran all on one)."""
    from sedflow_jax.mcmc import devices

    monkeypatch.setattr(devices.jax, "local_device_count", lambda: n_dev)
    cfg = dataclasses.replace(SHORT, num_chains=chains)
    assert devices.chain_devices(cfg) == expect
    assert devices.chain_devices(dataclasses.replace(cfg, chain_method="sequential")) == 1


class _FakeExtend:
    """Stands in for the compiled extend: records the keys and returns draws that never pass."""

    def __init__(self):
        self.keys = []

    def get(self, cfg, kind):
        def extend(key, state, *args):
            self.keys.append(key)
            return {"theta_flow": np.zeros((2, 5, 11)), "diverging": np.zeros((2, 5), bool),
                    "burst_on": np.zeros((2, 5), np.int32), "num_steps": np.ones((2, 5)),
                    "accept_prob": np.ones((2, 5)), "potential_energy": np.zeros((2, 5)), "state": state}

        return extend


def test_extension_blocks_get_fresh_independent_keys():
    """Each extension block gets its own key, none of them a key (or the parent) of the first block: the
    run splits its key into the start search (whose first half draws the starts) and the sampler."""
    import jax.random as jr

    from sedflow_jax.mcmc.drivers import extend_until_converged, extension_keys

    cfg = NUTSConfig(num_chains=2, max_extensions=3)
    key = jr.key(7)
    raw = {k: np.zeros((2, 5) + ((11,) if k == "theta_flow" else ()), bool if k == "diverging" else float)
           for k in ("theta_flow", "diverging", "burst_on", "num_steps", "accept_prob", "potential_energy")}
    fake = _FakeExtend()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # constant draws: R-hat is NaN
        out = extend_until_converged(cfg, raw | {"state": None}, key, None, None, None, None, None, cache=fake)
    assert out["n_blocks"] == 4 and len(fake.keys) == 3
    data = lambda k: tuple(np.asarray(jr.key_data(k)).ravel().tolist())  # noqa: E731
    used = {data(key)}  # the first block: key -> (start search, sampler) -> (starts draw, ...)
    k_init, k_mcmc = jr.split(key)
    used |= {data(k_init), data(k_mcmc), data(jr.split(k_init)[0]), data(jr.fold_in(k_mcmc, 1))}
    got = [data(k) for k in fake.keys]
    assert len(set(got)) == 3 and not (set(got) & used)
    assert got == [data(k) for k in extension_keys(key, 3)]  # reproducible from the run key alone
    # the old scheme folded the already split run key: no block uses those keys any more
    assert not set(got) & {data(jr.fold_in(key, 1_000_003 + b)) for b in range(3)}
