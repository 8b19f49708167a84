"""Posterior validation: SBC ranks, expected coverage and p-p curves, TARP, per-galaxy comparisons.

Sample arrays follow flowjax's order, ``sample_shape + batch + event``: ``samples`` is
``(n_draw, n_gal, n_param)``; every function that takes them also accepts ``sample_axis``.
Truths are ``(n_gal, n_param)``. Everything here is host-side NumPy/SciPy (JAX arrays are
accepted and converted); :func:`c2st` needs scikit-learn and :mod:`.plots` needs matplotlib, both
imported lazily.
"""

from .compare import CompareResult, c2st, compare_posteriors, wasserstein_over_sigma
from .coverage import DEFAULT_LEVELS, CoverageResult, coverage_from_ranks, expected_coverage, pp_band, pp_curve
from .ranks import RankUniformity, rank_bin_probabilities, rank_uniformity, sbc_ranks
from .samples_file import SampleFile, read_samples_file, write_samples_file
from .tarp import TarpResult, tarp_atc, tarp_coverage, tarp_credibility, tarp_ecp

__all__ = [
    "DEFAULT_LEVELS",
    "CompareResult",
    "CoverageResult",
    "RankUniformity",
    "SampleFile",
    "TarpResult",
    "c2st",
    "compare_posteriors",
    "coverage_from_ranks",
    "expected_coverage",
    "pp_band",
    "pp_curve",
    "rank_bin_probabilities",
    "rank_uniformity",
    "read_samples_file",
    "sbc_ranks",
    "tarp_atc",
    "tarp_coverage",
    "tarp_credibility",
    "tarp_ecp",
    "wasserstein_over_sigma",
    "write_samples_file",
]
