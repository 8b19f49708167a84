"""TARP: Tests of Accuracy with Random Points (Lemos, Coogan et al. 2023, arXiv:2302.03026).

Written from the paper's algorithm (their Alg. 2). For galaxy ``i`` with posterior draws
``theta_ij`` (``j = 1..n_draw``), true value ``theta*_i`` and a random reference point
``theta_r``, the credible region of level ``alpha`` is the ball around ``theta_r`` that holds a
fraction ``alpha`` of the draws. The truth falls inside it exactly when

    f_i = (1 / n_draw) #{j : d(theta_ij, theta_r) < d(theta*_i, theta_r)} < alpha,

so the expected coverage probability is ``ECP(alpha) = mean_i 1[f_i < alpha]``. For an exact
posterior ``f`` is uniform and ``ECP(alpha) = alpha`` for any reference distribution; the test is
necessary *and* sufficient for calibration of the joint posterior when the references cover the
parameter space (the paper's theorem). Here each galaxy may get ``n_refs`` references, and ECP
averages over them (less Monte Carlo noise; ``n_refs=1`` is the paper's estimator).

Area to curve (ATC): ``int_{1/2}^{1} (ECP(alpha) - alpha) d alpha``; 0 for a calibrated posterior,
positive when it is over-dispersed (too wide, conservative) and negative when it is
under-dispersed (over-confident). A bias does not have a fixed ATC sign (with references spread
over the box it usually bends ECP *above* the diagonal at high alpha); look at
:attr:`TarpResult.max_abs_deviation` or the whole curve for it. sbi's ``check_tarp`` reports the *sum*
``sum_{alpha_k >= 1/2} (ECP - alpha)`` over its grid instead, i.e. about our ATC divided by the
grid step; :attr:`TarpResult.atc_sum` holds that value for comparison.

Sample arrays follow flowjax's order: ``samples`` is ``(n_draw, n_gal, n_param)``
(``sample_axis=0``), which is also the layout of the ``tarp`` package.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..errors import InputError
from ._checks import as_samples, as_truth, check_positive_int

__all__ = ["TarpResult", "tarp_atc", "tarp_coverage", "tarp_credibility", "tarp_ecp"]

#: Elements of the ``(n_draw, chunk, n_param)`` difference array built at once (memory bound).
_CHUNK_ELEMENTS = 4_000_000


@dataclasses.dataclass(frozen=True)
class TarpResult:
    """TARP expected coverage.

    Attributes:
        alpha: ``(n_alpha,)`` credibility levels, from 0 to 1.
        ecp: ``(n_alpha,)`` expected coverage probability at each level.
        atc: area to curve ``int_{1/2}^1 (ECP - alpha) d alpha`` (0 ideal; > 0 over-dispersed,
            < 0 under-dispersed; a bias has no fixed sign).
        atc_sum: sbi's ``check_tarp`` convention, ``sum_{alpha >= 1/2} (ECP - alpha)``.
        max_abs_deviation: ``max_alpha |ECP - alpha|``.
        credibility: ``(n_gal, n_refs)`` the per-galaxy, per-reference ``f`` values.
        ecp_bootstrap: ``(n_bootstrap, n_alpha)`` ECP of galaxy-bootstrap resamples, or ``None``.
    """

    alpha: np.ndarray
    ecp: np.ndarray
    atc: float
    atc_sum: float
    max_abs_deviation: float
    credibility: np.ndarray
    ecp_bootstrap: np.ndarray | None = None

    def band(self, cl: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
        """Central ``cl`` bootstrap band of ECP, ``(lower, upper)`` each ``(n_alpha,)``."""
        if self.ecp_bootstrap is None:
            raise InputError("no bootstrap: call tarp_coverage(..., n_bootstrap=N) with N > 0.")
        q = np.quantile(self.ecp_bootstrap, [(1 - cl) / 2, (1 + cl) / 2], axis=0)
        return q[0], q[1]


def tarp_credibility(samples, truth, references, *, metric: str = "euclidean", sample_axis: int = 0,
                     scale=None) -> np.ndarray:
    """The TARP statistic ``f`` of each galaxy and reference.

    Args:
        samples: posterior draws, ``(n_draw, n_gal, n_param)`` along ``sample_axis``.
        truth: ``(n_gal, n_param)`` true parameters.
        references: ``(n_refs, n_gal, n_param)`` reference points (a ``(n_gal, n_param)`` array
            means one reference per galaxy), in the units of ``samples``.
        metric: ``"euclidean"`` or ``"manhattan"``.
        sample_axis: axis of ``samples`` that indexes draws.
        scale: optional ``(n_param,)`` divisor applied to every coordinate before the distances
            (e.g. the prior widths); ``None`` uses the raw units.

    Returns:
        ``(n_gal, n_refs)`` fraction of draws closer to the reference than the truth.
    """
    draws = as_samples(samples, "samples", sample_axis=sample_axis)
    n_draw, n_gal, n_param = draws.shape
    theta = as_truth(truth, n_gal, n_param)
    refs = np.asarray(references, dtype=np.float64)
    if refs.ndim == 2:
        refs = refs[None]
    if refs.ndim != 3 or refs.shape[1:] != (n_gal, n_param) or refs.shape[0] == 0:
        raise InputError(f"Expected references.shape (n_refs, n_gal, n_param) with (n_gal, n_param) = "
                         f"{(n_gal, n_param)}; got references.shape {np.shape(references)}.")
    if not np.all(np.isfinite(refs)):
        raise InputError("references contains non-finite values (NaN/inf).")
    if metric not in ("euclidean", "manhattan"):
        raise InputError(f"metric must be 'euclidean' or 'manhattan'; got {metric!r}.")
    if scale is not None:
        s = np.asarray(scale, dtype=np.float64)
        if s.shape != (n_param,) or not np.all(np.isfinite(s)) or np.any(s <= 0):
            raise InputError(f"scale must be {n_param} positive finite numbers; got {scale!r}.")
        draws, theta, refs = draws / s, theta / s, refs / s
    chunk = max(1, _CHUNK_ELEMENTS // (n_draw * n_param))
    f = np.empty((n_gal, refs.shape[0]))
    for k, ref in enumerate(refs):
        d_truth = _distance(theta - ref, metric)  # (n_gal,)
        for lo in range(0, n_gal, chunk):
            sl = slice(lo, lo + chunk)
            d_draws = _distance(draws[:, sl] - ref[None, sl], metric)  # (n_draw, chunk)
            f[sl, k] = np.mean(d_draws < d_truth[None, sl], axis=0)
    return f


def tarp_coverage(samples, truth, *, n_refs: int = 1, rng=0, norm: bool = True, bounds=None,
                  references=None, metric: str = "euclidean", n_alpha: int = 100, n_bootstrap: int = 0,
                  sample_axis: int = 0) -> TarpResult:
    """Expected coverage of the joint posterior with TARP.

    Coordinates are first mapped to the box ``[low, high]`` -> ``[0, 1]`` when ``norm`` is true,
    where ``(low, high)`` is ``bounds`` (e.g. the prior box) or, by default, the per-parameter
    range of ``truth`` (as the ``tarp`` package does). Random references are drawn uniformly in that
    box, ``n_refs`` per galaxy.

    Args:
        samples: posterior draws, ``(n_draw, n_gal, n_param)`` along ``sample_axis``.
        truth: ``(n_gal, n_param)`` true parameters.
        n_refs: random references per galaxy (ignored when ``references`` is given).
        rng: ``numpy.random.Generator`` or integer seed for the references and the bootstrap.
        norm: rescale every parameter to [0, 1] before measuring distances.
        bounds: optional ``(low, high)``, each ``(n_param,)``, the box for ``norm`` and for the
            references; default the range of ``truth``.
        references: optional ``(n_refs, n_gal, n_param)`` reference points in parameter units,
            replacing the random ones.
        metric: ``"euclidean"`` or ``"manhattan"``.
        n_alpha: number of credibility bins; ECP is returned at ``n_alpha + 1`` levels from 0 to 1.
        n_bootstrap: galaxy-bootstrap resamples for an ECP band (0: none).
        sample_axis: axis of ``samples`` that indexes draws.

    Returns:
        A :class:`TarpResult` with ``(ecp, alpha)``, the ATC and optional bootstrap ECPs.

    Raises:
        ValueError: bad shapes, NaN/inf inputs, a degenerate box, or bad counts (the message names
            the argument).
    """
    draws = as_samples(samples, "samples", sample_axis=sample_axis)
    n_draw, n_gal, n_param = draws.shape
    theta = as_truth(truth, n_gal, n_param)
    n_alpha = check_positive_int(n_alpha, "n_alpha")
    n_bootstrap = check_positive_int(n_bootstrap, "n_bootstrap", minimum=0)
    if references is None:
        n_refs = check_positive_int(n_refs, "n_refs")
    if metric not in ("euclidean", "manhattan"):
        raise InputError(f"metric must be 'euclidean' or 'manhattan'; got {metric!r}.")
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    low, high = _box(theta, bounds)
    if references is None:
        references = low + (high - low) * gen.uniform(size=(n_refs, n_gal, n_param))
    f = tarp_credibility(draws, theta, references, metric=metric, scale=(high - low) if norm else None)
    alpha = np.linspace(0.0, 1.0, n_alpha + 1)
    ecp = tarp_ecp(f, alpha)
    boot = None
    if n_bootstrap:
        idx = gen.integers(0, n_gal, size=(n_bootstrap, n_gal))
        boot = np.stack([tarp_ecp(f[i], alpha) for i in idx])
    atc, atc_sum = tarp_atc(ecp, alpha)
    return TarpResult(alpha=alpha, ecp=ecp, atc=atc, atc_sum=atc_sum,
                      max_abs_deviation=float(np.max(np.abs(ecp - alpha))), credibility=f, ecp_bootstrap=boot)


def tarp_atc(ecp, alpha) -> tuple[float, float]:
    """Area to curve over ``alpha >= 1/2``: ``(trapezoid integral, sbi-style sum)`` of ``ECP - alpha``."""
    ecp = np.asarray(ecp, dtype=np.float64)
    alpha = np.asarray(alpha, dtype=np.float64)
    if ecp.shape != alpha.shape or ecp.ndim != 1:
        raise InputError(f"ecp and alpha must be 1-D of equal length; got ecp.shape {ecp.shape}, alpha.shape {alpha.shape}.")
    upper = alpha >= 0.5
    diff = ecp[upper] - alpha[upper]
    area = float(np.trapezoid(diff, alpha[upper])) if upper.sum() > 1 else 0.0
    return area, float(diff.sum())


def tarp_ecp(credibility, alpha) -> np.ndarray:
    """``ECP(alpha) = mean 1[f < alpha]`` over galaxies and references.

    Args:
        credibility: ``(n_gal, n_refs)`` values ``f`` from :func:`tarp_credibility`.
        alpha: ``(n_alpha,)`` credibility levels.

    Returns:
        ``(n_alpha,)`` expected coverage probabilities.
    """
    f = np.asarray(credibility, dtype=np.float64)
    alpha = np.asarray(alpha, dtype=np.float64)
    if f.size == 0 or not np.all(np.isfinite(f)):
        raise InputError("credibility must be a non-empty array of finite values.")
    flat = np.sort(f.ravel())
    return np.searchsorted(flat, alpha, side="left") / flat.size


def _box(theta: np.ndarray, bounds) -> tuple[np.ndarray, np.ndarray]:
    n_param = theta.shape[1]
    if bounds is None:
        low, high = theta.min(axis=0), theta.max(axis=0)
    else:
        try:
            low, high = (np.asarray(b, dtype=np.float64) for b in bounds)
        except (TypeError, ValueError) as err:
            raise InputError(f"bounds must be a pair (low, high) of (n_param,) arrays; got {bounds!r}.") from err
        if low.shape != (n_param,) or high.shape != (n_param,):
            raise InputError(f"bounds must be (low, high) with shapes ({n_param},); got {low.shape} and {high.shape}.")
    if not np.all(high > low):
        bad = np.flatnonzero(~(high > low)).tolist()
        raise InputError(f"TARP box has zero or negative width for parameters {bad} "
                         f"({'bounds' if bounds is not None else 'range of truth'}); pass bounds=(low, high).")
    return low, high


def _distance(diff: np.ndarray, metric: str) -> np.ndarray:
    if metric == "euclidean":
        return np.sqrt(np.sum(diff**2, axis=-1))
    return np.sum(np.abs(diff), axis=-1)
