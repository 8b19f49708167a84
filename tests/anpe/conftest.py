import jax.random as jr
import numpy as np
import pytest

from sedflow_jax.anpe import FlowConfig, TrainConfig
from sedflow_jax.priors.sedflow import SEDFLOW_BOUNDS

TINY_FLOW = FlowConfig(flow_layers=2, nn_width=16, nn_depth=1)
TINY_TRAIN = TrainConfig(batch_size=256, max_epochs=3, patience=3, seed=0)


def synthetic_pairs(n=3000, seed=0):
    """Toy (theta_flow, x): x depends on theta with positive sigma_m, for fast training tests."""
    rng = np.random.default_rng(seed)
    low, high = SEDFLOW_BOUNDS
    u = (low + (high - low) * rng.uniform(size=(n, 11))).astype(np.float32)
    mag = 30 - 1.5 * u[:, :1] + 0.3 * u[:, 8:9] * np.arange(5)[::-1] + 0.05 * rng.normal(size=(n, 5))
    sig = np.exp(rng.normal(-3.5, 0.3, size=(n, 5)))
    z = rng.uniform(0.01, 0.2, size=(n, 1))
    return u, np.concatenate([mag, sig, z], 1).astype(np.float32)


@pytest.fixture(scope="session")
def tiny_posterior(tmp_path_factory):
    from sedflow_jax.anpe import Posterior, fit_support, train

    out = tmp_path_factory.mktemp("tiny_model")
    u, x = synthetic_pairs()
    flow, hist = train((u, x), out / "ckpt", flow_config=TINY_FLOW, train_config=TINY_TRAIN, progress=False,
                       log=lambda *a: None)
    post = Posterior(flow, fit_support(x, n_ref=1000, n_calib=1000), {"redshift_range": [0.0, 0.2], "name": "tiny"})
    post.save(out / "model")
    return out / "model", post, (u, x)
