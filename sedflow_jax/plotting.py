"""Matplotlib figures (imported lazily, files written atomically).

Library figures are ``matplotlib.figure.Figure`` objects (:func:`new_figure`), never pyplot ones: saving
one needs no backend, so the library never calls ``matplotlib.use`` and leaves pyplot's state (a
notebook's inline backend, its open figures) alone. Only the CLI chooses a backend.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

__all__ = ["plot_spectrum", "save_figure", "new_figure"]


def new_figure(*args, figsize=None, **kwargs):
    """``(fig, axes)`` like ``plt.subplots(*args, figsize=..., **kwargs)``, without pyplot or a backend."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    return fig, fig.subplots(*args, **kwargs)


def save_figure(fig, path) -> Path:
    """Save a figure to ``path`` atomically (temp name, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    fig.savefig(tmp, dpi=120, bbox_inches="tight")
    os.replace(tmp, path)
    return path


def plot_spectrum(wave_obs_aa, flam_1e17, filters, flux_nmgy, redshift, path) -> Path:
    """Observed spectrum (f_lambda) with the band fluxes at their pivot wavelengths."""
    from .constants import C_AA_PER_S

    fig, ax = new_figure(figsize=(8, 4.5))
    ax.plot(wave_obs_aa, flam_1e17, lw=0.7, color="k", label=f"model, z = {float(redshift):.3g}")
    w = np.asarray(filters.wave_aa)
    r = np.asarray(filters.response)
    for b, name in enumerate(filters.names):
        n = filters.n_nodes[b]
        pivot = np.sqrt(np.trapezoid(r[b, :n] * w[b, :n], w[b, :n]) / np.trapezoid(r[b, :n] / w[b, :n], w[b, :n]))
        # f_lambda at the pivot from the band flux: f_nu = flux * 3631 Jy * 1e-9
        flam = flux_nmgy[b] * 3631e-23 * 1e-9 * C_AA_PER_S / pivot**2 / 1e-17
        ax.plot(pivot, flam, "o", ms=7, label=f"{name}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    lo, hi = np.nanpercentile(flam_1e17[flam_1e17 > 0], [1, 100])
    ax.set_ylim(lo / 3, hi * 3)
    ax.set_xlim(max(wave_obs_aa[0], 1000.0), min(wave_obs_aa[-1], 30000.0))
    ax.set_xlabel("observed wavelength [Å]")
    ax.set_ylabel(r"$f_\lambda$ [$10^{-17}$ erg s$^{-1}$ cm$^{-2}$ Å$^{-1}$]")
    ax.legend(fontsize=8, ncol=2)
    return save_figure(fig, path)
