"""Marginal expected coverage of central credible intervals, and p-p curves.

Sample arrays follow flowjax's order: ``samples`` is ``(n_draw, n_gal, n_param)``
(``sample_axis=0``). Both quantities are functions of the SBC ranks
(:func:`~sedflow_jax.validation.ranks.sbc_ranks`): the truth lies inside the central ``c``
credible interval of its marginal draws exactly when ``|rank - 1/2| <= c / 2``, and the p-p curve
is the empirical CDF of the ranks (SEDflow's ``np.histogram(pp, bins=40)`` + ``cumsum`` evaluated
at the bin edges).
"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy import stats

from ..errors import InputError
from ._checks import as_levels, as_ranks, check_positive_int
from .ranks import sbc_ranks

__all__ = ["DEFAULT_LEVELS", "CoverageResult", "coverage_from_ranks", "expected_coverage", "pp_band", "pp_curve"]

#: Credibility levels 0.05, 0.10, ..., 0.95 of the central intervals.
DEFAULT_LEVELS = np.round(np.arange(1, 20) * 0.05, 2)


@dataclasses.dataclass(frozen=True)
class CoverageResult:
    """Expected coverage of central credible intervals.

    Attributes:
        levels: ``(n_level,)`` nominal credibility levels.
        coverage: ``(n_level, n_param)`` fraction of galaxies whose truth lies in the interval.
        max_abs_deviation: ``(n_param,)`` ``max_levels |coverage - level|`` per parameter.
        max_abs_deviation_all: the largest of those over parameters (a scalar).
    """

    levels: np.ndarray
    coverage: np.ndarray
    max_abs_deviation: np.ndarray
    max_abs_deviation_all: float


def coverage_from_ranks(ranks, levels=DEFAULT_LEVELS) -> CoverageResult:
    """Expected coverage of central intervals from ``(n_gal, n_param)`` normalised ranks."""
    r = as_ranks(ranks)
    lv = as_levels(levels)
    inside = np.abs(r[None] - 0.5) <= lv[:, None, None] / 2 + 1e-12  # (n_level, n_gal, n_param)
    cov = inside.mean(axis=1)
    dev = np.abs(cov - lv[:, None]).max(axis=0)
    return CoverageResult(levels=lv, coverage=cov, max_abs_deviation=dev, max_abs_deviation_all=float(dev.max()))


def expected_coverage(samples, truth, levels=DEFAULT_LEVELS, *, sample_axis: int = 0) -> CoverageResult:
    """Per-parameter coverage of the central credible intervals at the given credibility levels.

    A calibrated posterior has ``coverage == levels`` up to binomial noise
    (standard error ``sqrt(c (1 - c) / n_gal)``); coverage below the level means over-confident
    (too narrow or biased) posteriors, above it under-confident ones.

    Args:
        samples: posterior draws, ``(n_draw, n_gal, n_param)`` along ``sample_axis``.
        truth: true parameters, ``(n_gal, n_param)``.
        levels: ``(n_level,)`` credibility levels in [0, 1].
        sample_axis: axis of ``samples`` that indexes draws.
    """
    return coverage_from_ranks(sbc_ranks(samples, truth, sample_axis=sample_axis), levels)


def pp_curve(ranks, *, n_grid: int = 101) -> tuple[np.ndarray, np.ndarray]:
    """p-p curve: empirical CDF of the ranks on a uniform grid of [0, 1].

    Args:
        ranks: ``(n_gal, n_param)`` normalised ranks.
        n_grid: number of grid points, including 0 and 1.

    Returns:
        ``(grid, ecdf)``: ``(n_grid,)`` and ``(n_grid, n_param)``; a calibrated posterior follows
        the diagonal ``ecdf == grid``.
    """
    r = as_ranks(ranks)
    n_grid = check_positive_int(n_grid, "n_grid", minimum=2)
    grid = np.linspace(0.0, 1.0, n_grid)
    ecdf = np.stack([np.searchsorted(np.sort(r[:, j]), grid, side="right") / r.shape[0]
                     for j in range(r.shape[1])], axis=1)
    return grid, ecdf


def pp_band(n_gal: int, grid, *, cl: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Pointwise binomial band of the p-p curve of ``n_gal`` uniform ranks.

    Returns:
        ``(lower, upper)``, each ``(n_grid,)``: the central ``cl`` interval of
        ``Binomial(n_gal, x) / n_gal`` at each grid point ``x``.
    """
    n_gal = check_positive_int(n_gal, "n_gal")
    if not 0.0 < cl < 1.0:
        raise InputError(f"cl must be in (0, 1); got {cl}.")
    x = np.asarray(grid, dtype=np.float64)
    lower = stats.binom.ppf((1 - cl) / 2, n_gal, x) / n_gal
    upper = stats.binom.ppf((1 + cl) / 2, n_gal, x) / n_gal
    return lower, upper
