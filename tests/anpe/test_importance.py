"""ANPE-IS: the importance weights against an independent box-coordinate computation, and diagnostics."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sedflow_jax.anpe.importance import _chunk, _chunk_latent, adapted_latent, importance_sample
from sedflow_jax.photometry import SDSS_LAYOUT


@pytest.fixture(scope="module")
def model():
    from sedflow_jax.model import ProvabgsModel

    return ProvabgsModel.build(z_max=0.2)


def _galaxy(model, sigma_mag=0.05):
    theta = np.array([10.8, 0.30, 0.35, 0.20, 0.15, 0.05, 1.5, 6e-3, 4e-3, 0.5, 0.4, -0.3])
    flux = np.asarray(model(jnp.asarray(theta, model.dtype), jnp.asarray(0.08, model.dtype)), np.float64)
    return np.r_[22.5 - 2.5 * np.log10(flux), np.full(5, sigma_mag), 0.08].astype(np.float32)


def test_weights_match_box_coordinate_density(tiny_posterior, model):
    """log w = log L + log p - log q in y-space equals the same ratio in box coordinates (up to a constant).

    The reference uses the flow's density evaluated in the other direction (``log_prob`` of the box
    draws, with the logit Jacobian), the uniform box prior and a float64 NumPy Gaussian likelihood of
    ``photometry_batch`` fluxes: no code shared with the y-space weights but the flow itself.
    """
    from sedflow_jax.model import photometry_batch
    from sedflow_jax.priors.sedflow import flow_to_physical

    _, post, _ = tiny_posterior
    x = _galaxy(model)
    flux, ivar = SDSS_LAYOUT.to_flux(x[None].astype(np.float64))
    u, lw = _chunk(post.flow, model, jax.random.key(3), jnp.asarray(x), jnp.asarray(flux[0], jnp.float32),
                   jnp.asarray(ivar[0], jnp.float32), 512)
    u, lw = np.asarray(u), np.asarray(lw, np.float64)
    p = (u - np.asarray(post.flow.low)) / (np.asarray(post.flow.high) - np.asarray(post.flow.low))
    inside = np.all((p > 1e-3) & (p < 1 - 1e-3), axis=1)  # away from the float32 clip of the box logit
    assert inside.sum() > 100
    log_q = post.log_prob(u[inside], np.broadcast_to(x, (inside.sum(), 11))).astype(np.float64)
    f = photometry_batch(model, np.asarray(flow_to_physical(jnp.asarray(u[inside]))), np.full(inside.sum(), 0.08))
    log_l = -0.5 * np.sum(ivar * (f - flux) ** 2, axis=1)
    ref = log_l - log_q  # the uniform prior is a constant inside the box
    d = lw[inside] - ref
    # same up to one constant (log box volume + Gaussian normalisation); float32 flow densities
    assert np.std(d) < 2e-3 * max(1.0, np.std(ref))


def test_adapted_latent_weights_match_box_coordinate_density(tiny_posterior, model):
    """With the latent N(0, I) replaced by N(m, L L^T), log w equals an independent reference up to one constant:
    log L (NumPy, float64) - log q'(u), where q'(u) = q(u) N(eps; m, L L^T) / N(eps; 0, I) (the flow's box
    density from ``log_prob``, the other direction of the flow, and SciPy's normal densities)."""
    from scipy.stats import multivariate_normal

    from sedflow_jax.model import photometry_batch
    from sedflow_jax.priors.sedflow import flow_to_physical

    _, post, _ = tiny_posterior
    x = _galaxy(model)
    flux, ivar = SDSS_LAYOUT.to_flux(x[None].astype(np.float64))
    rng = np.random.default_rng(0)
    mean = rng.normal(0, 0.3, 11).astype(np.float32)
    chol = np.tril(rng.normal(0, 0.05, (11, 11)), -1) + np.diag(rng.uniform(0.4, 0.9, 11))
    chol = chol.astype(np.float32)
    u, eps, lw = _chunk_latent(post.flow, model, jax.random.key(4), jnp.asarray(x), jnp.asarray(flux[0], jnp.float32),
                               jnp.asarray(ivar[0], jnp.float32), 512, jnp.asarray(mean), jnp.asarray(chol),
                               jnp.asarray(np.sum(np.log(np.diag(chol)))))
    u, eps, lw = np.asarray(u), np.asarray(eps, np.float64), np.asarray(lw, np.float64)
    p = (u - np.asarray(post.flow.low)) / (np.asarray(post.flow.high) - np.asarray(post.flow.low))
    inside = np.all((p > 1e-3) & (p < 1 - 1e-3), axis=1)
    assert inside.sum() > 100
    cov = chol.astype(np.float64) @ chol.T.astype(np.float64)
    log_q = (post.log_prob(u[inside], np.broadcast_to(x, (inside.sum(), 11))).astype(np.float64)
             + multivariate_normal(mean, cov).logpdf(eps[inside]) - multivariate_normal(np.zeros(11)).logpdf(eps[inside]))
    f = photometry_batch(model, np.asarray(flow_to_physical(jnp.asarray(u[inside]))), np.full(inside.sum(), 0.08))
    ref = -0.5 * np.sum(ivar * (f - flux) ** 2, axis=1) - log_q
    d = lw[inside] - ref
    assert np.std(d) < 2e-3 * max(1.0, np.std(ref))


def test_adapted_latent_moments_and_shrinkage():
    """Equal weights on N(mu, s^2 I) draws give mean a mu and covariance inflation (a s^2 + 1 - a) I with
    a = ESS / (ESS + prior_n); one draw holding all the weight leaves the flow's N(0, I) nearly as it is."""
    rng = np.random.default_rng(1)
    mu, s, n = 0.7, 0.3, 200_000
    eps = mu + s * rng.normal(size=(n, 11))
    mean, chol, log_det = (np.asarray(v, np.float64) for v in adapted_latent(eps, np.zeros(n), 2.0, prior_n=22.0))
    a = n / (n + 22.0)
    np.testing.assert_allclose(mean, a * mu, atol=0.005)
    np.testing.assert_allclose(chol @ chol.T, 2.0 * (a * s**2 + 1 - a) * np.eye(11), atol=0.005)
    assert log_det == pytest.approx(np.sum(np.log(np.diag(chol))), rel=1e-5)
    lw = np.full(n, -np.inf)
    lw[0] = 0.0
    mean1, chol1, _ = (np.asarray(v, np.float64) for v in adapted_latent(eps, lw, 1.0, prior_n=22.0))
    np.testing.assert_allclose(mean1, eps[0] / 23.0, rtol=1e-5)
    np.testing.assert_allclose(chol1 @ chol1.T, (22.0 / 23.0) * np.eye(11), atol=1e-6)


def test_adaptive_proposal_raises_the_ess_and_keeps_the_posterior(tiny_posterior, model):
    """The toy flow misses this galaxy's posterior (plain IS: Pareto k > 0.7). Pilot rounds that move its
    latent onto the weighted draws give a reliable k and >10x the ESS from the same final draws, and two
    independent adaptive runs agree on the posterior of log M* within Monte Carlo error (the weights' exactness
    is tested against an independent density above)."""
    _, post, _ = tiny_posterior
    x = _galaxy(model, sigma_mag=0.3)
    kw = dict(n_proposal=16384, n_samples=4000)
    plain = importance_sample(jax.random.key(0), post, model, x, **kw)
    a = importance_sample(jax.random.key(0), post, model, x, n_pilot=16384, adapt_rounds=2, **kw)
    b = importance_sample(jax.random.key(1), post, model, x, n_pilot=16384, adapt_rounds=2, **kw)
    assert plain.pareto_k > 0.7 and a.pareto_k < 0.7 and b.pareto_k < 0.7
    assert a.ess > 10 * plain.ess
    sd = np.std(a.samples[:, 0])
    assert abs(np.mean(a.samples[:, 0]) - np.mean(b.samples[:, 0])) < 4 * sd * np.sqrt(1 / a.ess + 1 / b.ess)
    assert 0.8 < np.std(b.samples[:, 0]) / sd < 1.25
    with pytest.raises(ValueError, match="inflation"):
        importance_sample(jax.random.key(0), post, model, x, n_proposal=64, n_pilot=64, inflation=0.0)
    with pytest.raises(ValueError, match="n_pilot"):
        importance_sample(jax.random.key(0), post, model, x, n_proposal=64, n_pilot=-1)


def test_reweighting_moves_towards_the_likelihood(tiny_posterior, model):
    """With an informative likelihood the reweighted log M* concentrates on the mass that fits the fluxes."""
    _, post, _ = tiny_posterior
    x = _galaxy(model, sigma_mag=0.02)
    r = importance_sample(jax.random.key(0), post, model, x, n_proposal=32768, n_samples=2000)
    assert r.samples.shape == (2000, 12) and r.theta_flow.shape == (32768, 11)
    assert np.isclose(np.exp(r.log_weights).sum(), 1.0)
    assert r.ess == pytest.approx(1 / np.sum(np.exp(2 * r.log_weights)))
    raw = post.sample(jax.random.key(1), x, 2000)
    # the toy flow knows nothing of this model: its log M* spread is wide, the reweighted one is not
    assert np.std(r.samples[:, 0]) < 0.5 * np.std(raw[:, 0])
    # a 32k-draw proposal from an untrained flow cannot give 400 effective draws: flagged, not hidden
    assert not r.reliable and r.reasons


def test_bad_input(tiny_posterior, model):
    _, post, _ = tiny_posterior
    x = _galaxy(model)
    with pytest.raises(ValueError, match="finite"):
        importance_sample(jax.random.key(0), post, model, np.r_[x[:10], np.nan], n_proposal=64)
    with pytest.raises(ValueError, match=r"\(11,\)"):
        importance_sample(jax.random.key(0), post, model, x[:10], n_proposal=64)
    with pytest.raises(ValueError, match="n_proposal"):
        importance_sample(jax.random.key(0), post, model, x, n_proposal=1)
    with pytest.raises(TypeError, match="typed"):
        importance_sample(0, post, model, x, n_proposal=64)


def test_catalogue_rows_use_reliable_reweighting_only(tiny_posterior, model, tmp_path, monkeypatch):
    """infer_catalog(importance=...): reliable rows take the reweighted draws, the others keep the flow's."""
    import h5py

    from sedflow_jax.anpe import Posterior
    from sedflow_jax.anpe import importance as imp
    from sedflow_jax.pipeline import InferConfig, catalogue_from_x, infer_catalog, read_posterior_file

    post = Posterior(tiny_posterior[1].flow, None, tiny_posterior[1].meta)  # no support model: nothing flagged outside
    x = np.stack([_galaxy(model), _galaxy(model, 0.03), _galaxy(model, 0.04)])
    x[1, 0] = np.nan  # invalid row: flagged, no importance sampling
    flags = np.array([0, 1, 0], np.uint8)
    real = imp.importance_sample

    def fake(key, posterior, mdl, xr, **kw):  # rows 0, 2 in order: row 2 "reliable" with known draws
        res = real(key, posterior, mdl, xr, **kw)
        if fake.calls == 1:
            assert np.array_equal(xr, x[2])
            res = imp.ISResult(np.full((kw["n_samples"], 12), 0.25, np.float32), res.theta_flow, res.log_weights,
                               500.0, 0.3, True, ())
        fake.calls += 1
        return res

    fake.calls = 0
    monkeypatch.setattr(imp, "importance_sample", fake)
    out = infer_catalog(post, catalogue_from_x(x, flags), tmp_path / "p.h5",
                        InferConfig(n_samples=50, importance=2048, progress=False))
    f = read_posterior_file(tmp_path / "p.h5", samples=False)
    assert f["method"].tolist() == ["anpe", "", "anpe_is"], (f["is_status"], f["flags"])
    assert out["n_importance_reliable"] == 1
    with h5py.File(tmp_path / "p.h5") as fh:
        status = [s.decode() for s in fh["is_status"][:]]
        assert status[1] == "" and status[2] == "reliable" and "ESS" in status[0]
        np.testing.assert_allclose(fh["samples"][2], 0.25)
        np.testing.assert_allclose(fh["median"][2], 0.25)
        assert np.isfinite(fh["is_ess"][0]) and np.isnan(fh["is_ess"][1])
        assert not np.allclose(fh["samples"][0], 0.25)


def test_cli_importance_writes_diagnostics(tiny_posterior, model, tmp_path, capsys):
    """`sedflow-jax infer --importance N --importance-pilot M`: every row gets an is_status; diagnostics only
    where it ran; the pilot setting is stored."""
    import json

    import h5py

    from sedflow_jax.cli.main import main

    model_dir, post, (_, x_train) = tiny_posterior
    x = np.stack([x_train[0], _galaxy(model)])  # a training-like row (inside the toy support) and a far one
    bands = "ugriz"
    cols = [f"mag_{b}" for b in bands] + [f"mag_err_{b}" for b in bands] + ["z"]
    csv = tmp_path / "cat.csv"
    csv.write_text(",".join(cols) + "\n" + "\n".join(",".join(f"{v:.6g}" for v in row) for row in x) + "\n")
    out = tmp_path / "post.h5"
    assert main(["infer", str(csv), "--out", str(out), "--model", str(model_dir), "--n-samples", "40",
                 "--importance", "1024", "--importance-pilot", "256", "--no-progress"]) == 0
    assert "importance sampling (1024 proposals/galaxy)" in capsys.readouterr().out
    with h5py.File(out) as fh:
        status = fh["is_status"].asstr()[:]
        outside = (fh["flags"][:] & 16) != 0
        assert outside.tolist() == [False, True]  # both paths exercised
        assert all(s == "not run: outside support" for s in status[outside])
        assert all(s and s != "not run: outside support" for s in status[~outside])
        assert np.all(np.isfinite(fh["is_ess"][:][~outside])) and np.all(np.isnan(fh["is_ess"][:][outside]))
        assert set(fh["method"].asstr()[:]) <= {"anpe", "anpe_is"}
        assert json.loads(fh.attrs["importance"])["n_pilot"] == 256
    capsys.readouterr()
    assert main(["infer", str(csv), "--out", str(tmp_path / "x.h5"), "--model", str(model_dir),
                 "--importance-pilot", "256"]) == 2  # a user error: one line, exit 2
    assert "needs --importance" in capsys.readouterr().err
