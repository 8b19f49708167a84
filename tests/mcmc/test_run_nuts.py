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
