"""Small calibration helpers for the ANPE docs (SBC ranks, p-p coverage, KS uniformity).

Kept minimal on purpose: :mod:`sedflow_jax.validation` is the package's validation API and will
replace these. Conventions follow SEDflow (sedflow_method.md §3): the rank of the truth among the
samples, normalised to [0, 1] (ties count half, as ``percentileofscore(kind='rank')``).
"""

from __future__ import annotations

import numpy as np
from scipy import stats

__all__ = ["normalised_ranks", "coverage_curve", "uniformity"]


def normalised_ranks(samples: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """``samples (n_gal, S, D)``, ``truth (n_gal, D)`` -> ranks in [0, 1], shape (n_gal, D)."""
    t = truth[:, None, :]
    return (np.sum(samples < t, 1) + 0.5 * np.sum(samples == t, 1)) / samples.shape[1]


def coverage_curve(ranks: np.ndarray, levels: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Empirical coverage of central credible intervals: fraction with ``|2 r - 1| <= level``; (levels, ecp (L, D))."""
    levels = np.linspace(0, 1, 101) if levels is None else levels
    dev = np.abs(2 * ranks - 1)
    return levels, np.mean(dev[None, :, :] <= levels[:, None, None], axis=1)


def uniformity(ranks: np.ndarray) -> dict[str, np.ndarray]:
    """Per parameter: KS distance and p-value vs U(0, 1) (p-p max deviation), central-interval max coverage
    deviation, and the chi^2 p-value of the 10-bin SBC histogram."""
    ks = [stats.kstest(ranks[:, j], "uniform") for j in range(ranks.shape[1])]
    levels, ecp = coverage_curve(ranks)
    h = np.stack([np.histogram(ranks[:, j], bins=10, range=(0, 1))[0] for j in range(ranks.shape[1])])
    chi2_p = stats.chisquare(h, axis=1).pvalue
    return {"ks_d": np.array([k.statistic for k in ks]), "ks_p": np.array([k.pvalue for k in ks]),
            "max_coverage_dev": np.max(np.abs(ecp - levels[:, None]), axis=0), "chi2_p": np.asarray(chi2_p)}
