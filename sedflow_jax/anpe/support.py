"""Training-support score: k-nearest-neighbour distance of a galaxy's x to simulated training galaxies.

Features: (r, u-g, g-r, r-i, i-z, log10 sigma_ugriz, z), standardised by the reference set's mean and
std. The score is the mean Euclidean distance to the ``k`` nearest of ``n_ref`` stored training rows.
The threshold is the 99.9th percentile of the same score on *other* training rows, so about 0.1% of
in-distribution galaxies are flagged; colours no simulated galaxy has, or noise far from the noise
model, score above it (SEDflow's 588 failures were exactly such noise and colour outliers).
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from ..photometry import SDSS_LAYOUT

__all__ = ["SupportModel", "support_features", "fit_support"]

SDSS_BANDS = ("u", "g", "r", "i", "z")  #: band order of x's magnitudes
QUERY_CHUNK = 1024  # galaxies per compiled kNN call (padded)


def support_features(x: np.ndarray) -> np.ndarray:
    """(n, 11) x -> (n, 11) features: r, four colours, log10 sigma_m (5), z (SDSS ugriz x)."""
    x = np.asarray(x, np.float64)
    SDSS_LAYOUT.check(x)
    m = SDSS_LAYOUT.mag(x)
    colours = m[:, :-1] - m[:, 1:]  # u-g, g-r, r-i, i-z
    r_mag = m[:, SDSS_BANDS.index("r")][:, None]
    log_sigma = np.log10(np.maximum(SDSS_LAYOUT.sigma_mag(x), 1e-6))
    return np.concatenate([r_mag, colours, log_sigma, SDSS_LAYOUT.redshift(x)[:, None]], 1).astype(np.float32)


@jax.jit
def _knn_score(q, ref, k_onehot):
    d2 = jnp.sum(q * q, 1)[:, None] + jnp.sum(ref * ref, 1)[None, :] - 2 * q @ ref.T
    neg, _ = jax.lax.top_k(-d2, k_onehot.shape[0])
    return jnp.mean(jnp.sqrt(jnp.maximum(-neg, 0.0)), axis=1)


@dataclass(frozen=True)
class SupportModel:
    """kNN support score; ``score(x) > threshold`` flags a galaxy as outside the training support."""

    ref: np.ndarray  # (n_ref, 11) standardised features
    mean: np.ndarray
    std: np.ndarray
    k: int
    threshold: float
    quantile: float

    def score(self, x: np.ndarray) -> np.ndarray:
        f = (support_features(x) - self.mean) / self.std
        n = f.shape[0]
        out = np.empty(n, np.float32)
        ref = jnp.asarray(self.ref)
        kk = jnp.zeros(self.k)
        for s in range(0, n, QUERY_CHUNK):
            m = min(QUERY_CHUNK, n - s)
            q = np.zeros((QUERY_CHUNK, f.shape[1]), np.float32)
            q[:m] = f[s : s + m]
            out[s : s + m] = np.asarray(_knn_score(jnp.asarray(q), ref, kk))[:m]
        return np.where(np.all(np.isfinite(f), 1), out, np.inf).astype(np.float32)

    def save(self, path) -> None:
        np.savez_compressed(path, ref=self.ref.astype(np.float16), mean=self.mean, std=self.std, k=self.k,
                            threshold=self.threshold, quantile=self.quantile)

    @classmethod
    def load(cls, path) -> SupportModel:
        d = np.load(path)
        return cls(d["ref"].astype(np.float32), d["mean"], d["std"], int(d["k"]), float(d["threshold"]), float(d["quantile"]))


def fit_support(x: np.ndarray, *, n_ref: int = 20000, n_calib: int = 20000, k: int = 10, quantile: float = 0.999,
                seed: int = 0) -> SupportModel:
    """Store ``n_ref`` random rows of ``x`` as the reference; calibrate the threshold on ``n_calib`` others."""
    if x.shape[0] < 20:
        raise ValueError(f"fit_support needs at least 20 finite rows of x, got {x.shape[0]}")
    # small sets: half reference, half calibration (the calibration set must never be empty)
    n_ref = min(n_ref, x.shape[0] // 2)
    rng = np.random.default_rng(seed)
    idx = rng.permutation(x.shape[0])[: n_ref + n_calib]
    f = support_features(x[idx[:n_ref]])
    mean, std = f.mean(0), np.maximum(f.std(0), 1e-6)
    ref = ((f - mean) / std).astype(np.float16).astype(np.float32)  # stored as float16
    tmp = SupportModel(ref, mean.astype(np.float32), std.astype(np.float32), k, np.inf, quantile)
    cal = tmp.score(x[idx[n_ref:]])
    return SupportModel(ref, tmp.mean, tmp.std, k, float(np.quantile(cal, quantile)), quantile)
