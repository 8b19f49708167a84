"""The shipped models: names resolve, and the SDSS-range flow is the better density on SDSS-range photometry."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from sedflow_jax.anpe import SHIPPED_MODELS, Posterior


def test_shipped_names_resolve_and_sdss_flow_descends_from_the_default():
    default, sdss = Posterior.load("default"), Posterior.load("sdss")
    assert set(SHIPPED_MODELS) == {"default", "sdss"}
    assert sdss.flow.config == default.flow.config
    # fine-tuned: same input standardisation and box, so the two are directly comparable
    np.testing.assert_array_equal(np.asarray(sdss.flow.x_mean), np.asarray(default.flow.x_mean))
    assert sdss.meta["init_from"]["path"].endswith("default_flow") and sdss.meta["init_from"]["initial_val_loss"] > 0
    assert sdss.meta["training_set"]["identity"]["config"]["mag_cut"] is True
    assert sdss.support is not None


def test_sdss_flow_has_the_lower_heldout_loss_on_sdss_range_galaxies(bc03_table):
    """On fresh SDSS-range simulations (``mag_cut``, a seed no training set used), the per-galaxy
    -log q(theta_true | x) of the SDSS flow is lower than the default flow's by more than 3 standard errors:
    the mean difference estimates the difference of their KL divergences from the true posterior."""
    from sedflow_jax.simulate import SimulationConfig, build_simulator, simulate_arrays

    sim, _ = build_simulator(SimulationConfig(n=8192, seed=11, mag_cut=True))
    rows = simulate_arrays(jax.random.key(11), sim, 8192)
    ok = rows["flags"] == 0
    assert ok.sum() > 1000
    u, x = jnp.asarray(rows["theta_flow"][ok]), jnp.asarray(rows["x"][ok])
    nll = {name: -np.asarray(Posterior.load(name).flow.log_prob(u, x), np.float64) for name in ("default", "sdss")}
    d = nll["default"] - nll["sdss"]
    assert np.mean(d) > 3 * np.std(d) / np.sqrt(d.size), (np.mean(d), np.std(d), d.size)
