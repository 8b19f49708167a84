"""Simulation-based calibration (SBC) ranks and their uniformity tests (Talts et al. 2018).

Sample arrays follow flowjax's order, ``sample_shape + batch + event``: ``samples`` is
``(n_draw, n_gal, n_param)`` (``sample_axis=0``); pass ``sample_axis=1`` for the
``(n_gal, n_draw, n_param)`` layout of the HDF5 sample files.

For a calibrated posterior the rank of the true value among the posterior draws is uniform.
A U-shaped rank histogram means the posterior is too narrow (over-confident), a cap shape that it
is too wide, and a skew that it is biased.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy import stats

from ._checks import as_ranks, as_samples, as_truth, check_positive_int

__all__ = ["RankUniformity", "rank_bin_probabilities", "rank_uniformity", "sbc_ranks"]


def sbc_ranks(samples, truth, *, sample_axis: int = 0) -> np.ndarray:
    """Normalised SBC rank of each true value among its galaxy's posterior draws.

    ``rank = (#{draws < truth} + 0.5 #{draws == truth}) / n_draw``, in [0, 1]. For continuous
    samples (no ties) this is SEDflow's ``scipy.stats.percentileofscore(draws, truth) / 100``.

    Args:
        samples: posterior draws, ``(n_draw, n_gal, n_param)`` along ``sample_axis``.
        truth: true parameters, ``(n_gal, n_param)``.
        sample_axis: axis of ``samples`` that indexes draws (0: flowjax order).

    Returns:
        ranks: ``(n_gal, n_param)`` normalised ranks.

    Raises:
        ValueError: shapes do not match, or either input contains NaN/inf (the message names it).
    """
    draws = as_samples(samples, "samples", sample_axis=sample_axis)
    n_draw, n_gal, n_param = draws.shape
    theta = as_truth(truth, n_gal, n_param)
    below = np.sum(draws < theta[None], axis=0)
    equal = np.sum(draws == theta[None], axis=0)
    return (below + 0.5 * equal) / n_draw


def rank_bin_probabilities(n_bins: int, n_draw: int | None = None) -> np.ndarray:
    """Probability of each of ``n_bins`` equal bins of [0, 1] under the null of uniform ranks.

    With ``n_draw`` given, the null is the exact discrete uniform over ``k / n_draw``,
    ``k = 0..n_draw``; otherwise the continuous U(0, 1) (every bin ``1 / n_bins``).

    Returns:
        ``(n_bins,)`` probabilities summing to 1.
    """
    n_bins = check_positive_int(n_bins, "n_bins")
    if n_draw is None:
        return np.full(n_bins, 1.0 / n_bins)
    n_draw = check_positive_int(n_draw, "n_draw")
    values = np.arange(n_draw + 1) / n_draw
    counts = np.bincount(_bin_index(values, n_bins), minlength=n_bins)
    return counts / counts.sum()


@dataclasses.dataclass(frozen=True)
class RankUniformity:
    """Per-parameter uniformity statistics of SBC ranks; every array is ``(n_param,)`` unless noted.

    Attributes:
        ks_stat: Kolmogorov-Smirnov distance between the ranks and U(0, 1).
        ks_pvalue: its p-value.
        chi2_stat: Pearson chi-square of the ``n_bins`` rank histogram.
        chi2_pvalue: its p-value (``n_bins - 1`` degrees of freedom).
        counts: ``(n_bins, n_param)`` rank histogram.
        expected: ``(n_bins,)`` expected count per bin under uniformity.
    """

    ks_stat: np.ndarray
    ks_pvalue: np.ndarray
    chi2_stat: np.ndarray
    chi2_pvalue: np.ndarray
    counts: np.ndarray
    expected: np.ndarray


def rank_uniformity(ranks, *, n_bins: int = 10, n_draw: int | None = None) -> RankUniformity:
    """Test each parameter's ranks for uniformity: KS against U(0, 1) and chi-square on bins.

    ``n_bins=10`` matches SEDflow's SBC histograms. The KS test treats the ranks as continuous;
    their grid of step ``1 / n_draw`` inflates the KS distance by at most ``1 / n_draw``, which is
    negligible while ``n_draw >> sqrt(n_gal)`` (e.g. 1,000 draws for 10,000 galaxies). Give
    ``n_draw`` so that the chi-square expectation uses the exact discrete rank distribution.

    Args:
        ranks: ``(n_gal, n_param)`` normalised ranks from :func:`sbc_ranks`.
        n_bins: histogram bins for the chi-square test.
        n_draw: draws per galaxy that produced the ranks (optional, see above).
    """
    r = as_ranks(ranks)
    n_gal, n_param = r.shape
    prob = rank_bin_probabilities(n_bins, n_draw)
    counts = np.stack([np.bincount(_bin_index(r[:, j], n_bins), minlength=n_bins) for j in range(n_param)], axis=1)
    expected = prob * n_gal
    keep = expected > 0
    chi2 = np.sum((counts[keep] - expected[keep, None]) ** 2 / expected[keep, None], axis=0)
    chi2_p = stats.chi2.sf(chi2, df=max(int(keep.sum()) - 1, 1))
    ks = [stats.kstest(r[:, j], "uniform") for j in range(n_param)]
    return RankUniformity(
        ks_stat=np.array([k.statistic for k in ks]),
        ks_pvalue=np.array([k.pvalue for k in ks]),
        chi2_stat=chi2,
        chi2_pvalue=chi2_p,
        counts=counts,
        expected=expected,
    )


def _bin_index(values: np.ndarray, n_bins: int) -> np.ndarray:
    """Bin of each value in [0, 1] among ``n_bins`` equal bins, right edge included in the last."""
    return np.clip(np.floor(values * n_bins).astype(np.int64), 0, n_bins - 1)
