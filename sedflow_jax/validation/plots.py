"""Validation figures: SBC rank histograms, p-p curves, TARP coverage, corner overlays.

matplotlib is imported lazily inside each function. Figures are ``matplotlib.figure.Figure`` objects,
not pyplot figures, so nothing here chooses a backend or touches pyplot's state (a notebook keeps its
inline backend; only the CLI picks Agg). Every figure is written atomically with
:func:`sedflow_jax.plotting.save_figure`. Each function returns the path.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from ..plotting import new_figure

from ._checks import as_draws, as_ranks

__all__ = ["plot_corner_overlay", "plot_pp", "plot_sbc_histograms", "plot_tarp"]


def plot_sbc_histograms(ranks, path, *, param_names=None, n_bins: int = 10, n_draw: int | None = None,
                        cl: float = 0.99):
    """SBC rank histograms (SEDflow: 10 bins), one panel per parameter, with the uniform band.

    Args:
        ranks: ``(n_gal, n_param)`` normalised ranks.
        path: output image path.
        param_names: ``n_param`` panel titles.
        n_bins: histogram bins.
        n_draw: draws per galaxy (exact discrete expectation; see ``rank_bin_probabilities``).
        cl: pointwise binomial band of the bin counts under uniformity.
    """
    from scipy import stats

    from .ranks import rank_uniformity

    r = as_ranks(ranks)
    n_gal, n_param = r.shape
    res = rank_uniformity(r, n_bins=n_bins, n_draw=n_draw)
    p = res.expected / n_gal
    lo = stats.binom.ppf((1 - cl) / 2, n_gal, p)
    hi = stats.binom.ppf((1 + cl) / 2, n_gal, p)
    edges = np.linspace(0, 1, n_bins + 1)
    fig, axes = _grid(n_param)
    for j, ax in enumerate(axes[:n_param]):
        ax.fill_between(edges, np.append(lo, lo[-1]), np.append(hi, hi[-1]), step="post", color="0.85",
                        label=f"{cl:.0%} band")
        ax.stairs(res.counts[:, j], edges, color="C0", lw=1.5)
        ax.axhline(n_gal / n_bins, color="k", lw=0.8, ls="--")
        ax.set_title(f"{_name(param_names, j)}  KS p={res.ks_pvalue[j]:.2g}", fontsize=9)
        ax.set_xlim(0, 1)
        ax.set_xlabel("normalised rank")
    axes[0].set_ylabel("galaxies per bin")
    axes[0].legend(fontsize=7)
    return _finish(fig, axes, n_param, path)


def plot_pp(ranks, path, *, param_names=None, cl: float = 0.95, n_grid: int = 101):
    """p-p curves of all parameters on one panel, with the binomial band of ``n_gal`` uniform ranks."""
    from .coverage import pp_band, pp_curve

    r = as_ranks(ranks)
    grid, ecdf = pp_curve(r, n_grid=n_grid)
    lo, hi = pp_band(r.shape[0], grid, cl=cl)
    fig, ax = new_figure(figsize=(4.8, 4.8))
    ax.fill_between(grid, lo, hi, color="0.85", label=f"{cl:.0%} binomial band")
    ax.plot([0, 1], [0, 1], "k--", lw=0.8)
    for j in range(r.shape[1]):
        ax.plot(grid, ecdf[:, j], lw=1.2, label=_name(param_names, j))
    ax.set_xlabel("percentile of the truth in the posterior")
    ax.set_ylabel("cumulative fraction of galaxies")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7, ncol=2)
    return _save(fig, path)


def plot_tarp(result, path, *, cl: float = 0.95):
    """TARP expected coverage against credibility, with its bootstrap band if present."""
    fig, ax = new_figure(figsize=(4.8, 4.8))
    if result.ecp_bootstrap is not None:
        lo, hi = result.band(cl)
        ax.fill_between(result.alpha, lo, hi, color="C0", alpha=0.25, label=f"{cl:.0%} bootstrap")
    ax.plot([0, 1], [0, 1], "k--", lw=0.8)
    ax.plot(result.alpha, result.ecp, color="C0", lw=1.5, label=f"TARP (ATC = {result.atc:+.3f})")
    ax.set_xlabel(r"credibility level $1-\alpha$")
    ax.set_ylabel("expected coverage")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_corner_overlay(samples_a, samples_b, path, *, param_names=None, labels=("a", "b"), truth=None,
                        bins: int = 30, levels=(0.68, 0.95)):
    """Corner plot of two sample sets of one galaxy: 1-D histograms and 2-D credible contours.

    Args:
        samples_a, samples_b: ``(n_draw, n_param)`` draws (e.g. ANPE and NUTS).
        path: output image path.
        param_names: ``n_param`` axis labels.
        labels: legend labels of the two sets.
        truth: optional ``(n_param,)`` true values, drawn as lines.
        bins: histogram bins per axis.
        levels: probability mass enclosed by the 2-D contours.
    """
    a = as_draws(samples_a, "samples_a")
    b = as_draws(samples_b, "samples_b")
    if a.shape[1] != b.shape[1]:
        raise InputError(f"samples_a and samples_b must have the same n_param; got {a.shape[1]} and {b.shape[1]}.")
    n = a.shape[1]
    t = None if truth is None else np.asarray(truth, dtype=np.float64).reshape(n)
    both = np.concatenate([a, b])
    lims = np.percentile(both, [0.5, 99.5], axis=0).T
    lims[lims[:, 0] == lims[:, 1]] += np.array([-0.5, 0.5])
    fig, axes = new_figure(n, n, figsize=(1.8 * n + 1, 1.8 * n + 1), squeeze=False)
    for i in range(n):
        for j in range(n):
            ax = axes[i, j]
            if j > i:
                ax.set_visible(False)
                continue
            if i == j:
                for s, c, lab in ((a, "C0", labels[0]), (b, "C1", labels[1])):
                    ax.hist(s[:, i], bins=bins, range=lims[i], density=True, histtype="step", color=c, label=lab)
                ax.set_yticks([])
                if t is not None:
                    ax.axvline(t[i], color="k", lw=0.8)
            else:
                for s, c in ((a, "C0"), (b, "C1")):
                    _contour(ax, s[:, j], s[:, i], lims[j], lims[i], bins, levels, c)
                if t is not None:
                    ax.plot(t[j], t[i], "k+", ms=8)
                ax.set_ylim(lims[i])
            ax.set_xlim(lims[j])
            if i < n - 1:
                ax.set_xticklabels([])
            else:
                ax.set_xlabel(_name(param_names, j), fontsize=8)
            if j > 0 or i == 0:
                ax.set_yticklabels([]) if i != j else None
            else:
                ax.set_ylabel(_name(param_names, i), fontsize=8)
            ax.tick_params(labelsize=6)
    axes[0, 0].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.05, 1.0))
    return _save(fig, path)


def _contour(ax, x, y, xlim, ylim, bins, levels, color):
    h, xe, ye = np.histogram2d(x, y, bins=bins, range=[xlim, ylim])
    flat = np.sort(h.ravel())[::-1]
    cum = np.cumsum(flat) / max(flat.sum(), 1)
    thresholds = sorted({float(flat[min(np.searchsorted(cum, lv), flat.size - 1)]) for lv in levels})
    if len(thresholds) < 1 or thresholds[-1] <= 0:
        return
    xc, yc = 0.5 * (xe[1:] + xe[:-1]), 0.5 * (ye[1:] + ye[:-1])
    ax.contour(xc, yc, h.T, levels=[v for v in thresholds if v > 0], colors=color, linewidths=1.0)


def _name(names, j: int) -> str:
    return str(names[j]) if names is not None else f"theta_{j}"


def _grid(n_panel: int):
    ncol = min(4, n_panel)
    nrow = -(-n_panel // ncol)
    fig, axes = new_figure(nrow, ncol, figsize=(3.0 * ncol, 2.5 * nrow), squeeze=False)
    return fig, axes.ravel()


def _finish(fig, axes, n_used: int, path):
    for ax in axes[n_used:]:
        ax.set_visible(False)
    fig.tight_layout()
    return _save(fig, path)


def _save(fig, path):
    from ..plotting import save_figure

    return save_figure(fig, path)
