"""Flux-conserving rebinning of tabulated spectra onto a new set of wavelength bins (NumPy, float64).

The native spectrum is taken to be the piecewise-linear function through its samples. The value in
each new bin is the exact integral of that function over the bin divided by the bin width, so the
integrated flux is conserved to rounding error. Plain interpolation at bin centres (point sampling)
aliases the absorption lines of SSP spectra and must not be used instead (0.03-0.2 mag errors; see
``docs/ssp_tables.md`` section 4).
"""

from __future__ import annotations

import numpy as np

__all__ = ["log_wave_edges", "rebin_flux_conserving"]


def log_wave_edges(wave_min_aa: float, wave_max_aa: float, n_wave: int) -> tuple[np.ndarray, np.ndarray]:
    """Logarithmically spaced wavelength bins.

    Args:
        wave_min_aa: lower edge of the first bin, Angstrom (> 0).
        wave_max_aa: upper edge of the last bin, Angstrom (> wave_min_aa).
        n_wave: number of bins (>= 1).

    Returns:
        ``(edges, centres)``: ``edges`` has shape ``(n_wave + 1,)`` (``numpy.geomspace``),
        ``centres`` has shape ``(n_wave,)`` and is the geometric mean of neighbouring edges,
        both float64 in Angstrom.

    Raises:
        ValueError: on non-positive or unordered limits, or ``n_wave < 1``.
    """
    n_wave = int(n_wave)
    if n_wave < 1:
        raise ValueError(f"n_wave must be >= 1, got {n_wave}")
    if not (0 < wave_min_aa < wave_max_aa) or not np.isfinite(wave_max_aa):
        raise ValueError(f"need 0 < wave_min_aa < wave_max_aa, got {wave_min_aa!r}, {wave_max_aa!r}")
    edges = np.geomspace(float(wave_min_aa), float(wave_max_aa), n_wave + 1)
    # geomspace already pins the end points; make it explicit against rounding.
    edges[0], edges[-1] = float(wave_min_aa), float(wave_max_aa)
    centres = np.sqrt(edges[:-1] * edges[1:])
    return edges, centres


def rebin_flux_conserving(wave_aa, flux, edges_aa) -> np.ndarray:
    """Bin-average a piecewise-linear spectrum over new wavelength bins.

    For bin ``k`` the result is ``(1 / (e[k+1] - e[k])) * integral_{e[k]}^{e[k+1]} f(x) dx`` where
    ``f`` is the linear interpolant of ``(wave_aa, flux)``. The integral is exact for that
    piecewise-linear function: each bin is split into the partial native interval at its lower edge,
    the whole native intervals inside it, and the partial interval at its upper edge, each integrated
    with the trapezoid rule (exact for a linear segment). The whole intervals are summed as a
    difference of the cumulative trapezoid integral (float64; relative rounding ~1e-13 for SSP
    spectra), and the result is clipped at 0 when the input is non-negative.

    Args:
        wave_aa: ``(n_native,)`` native wavelengths, strictly increasing (any unit, same as edges).
        flux: ``(..., n_native)`` native flux density per unit wavelength (e.g. L_lambda); leading
            axes are batch axes. Rebin densities per unit *wavelength*: a density per unit frequency
            must be converted first, or the bin average is not flux-conserving in wavelength.
        edges_aa: ``(n_bins + 1,)`` new bin edges, strictly increasing, inside
            ``[wave_aa[0], wave_aa[-1]]``.

    Returns:
        ``(..., n_bins)`` float64 bin averages, in the unit of ``flux``.

    Raises:
        ValueError: on bad shapes, non-increasing axes, non-finite values, or edges outside the
            native range (no extrapolation is done).
    """
    x = np.asarray(wave_aa, dtype=np.float64)
    f = np.asarray(flux, dtype=np.float64)
    e = np.asarray(edges_aa, dtype=np.float64)
    if x.ndim != 1 or x.shape[0] < 2:
        raise ValueError(f"wave_aa must be 1-D with >= 2 samples, got shape {x.shape}")
    if f.ndim < 1 or f.shape[-1] != x.shape[0]:
        raise ValueError(f"flux must have shape (..., {x.shape[0]}), got {f.shape}")
    if e.ndim != 1 or e.shape[0] < 2:
        raise ValueError(f"edges_aa must be 1-D with >= 2 entries, got shape {e.shape}")
    if not (np.all(np.isfinite(x)) and np.all(np.diff(x) > 0)):
        raise ValueError("wave_aa must be finite and strictly increasing")
    if not (np.all(np.isfinite(e)) and np.all(np.diff(e) > 0)):
        raise ValueError("edges_aa must be finite and strictly increasing")
    if e[0] < x[0] or e[-1] > x[-1]:
        raise ValueError(
            f"edges [{e[0]:.6g}, {e[-1]:.6g}] exceed the native range [{x[0]:.6g}, {x[-1]:.6g}]; "
            "no extrapolation is done"
        )

    n = x.shape[0]
    h = np.diff(x)  # (n-1,)
    # Native interval containing each edge: x[j] <= e < x[j+1]; the last native node maps to n-2.
    j = np.clip(np.searchsorted(x, e, side="right") - 1, 0, n - 2)  # (n_edges,)
    t = e - x[j]  # distance from the interval's left node, in [0, h[j]]
    s = x[j + 1] - e  # distance to the interval's right node
    w = t / h[j]
    f_lo = f[..., j]
    f_hi = f[..., j + 1]
    f_e = f_lo + (f_hi - f_lo) * w  # value of the interpolant at each edge, (..., n_edges)
    left_part = 0.5 * (f_lo + f_e) * t  # integral x[j] -> e
    right_part = 0.5 * (f_e + f_hi) * s  # integral e -> x[j+1]

    seg = 0.5 * (f[..., :-1] + f[..., 1:]) * h  # whole native intervals, (..., n-1)
    # Sum of whole intervals strictly between the edges' intervals: seg[j_a + 1 : j_b].
    # Difference of prefix sums: rounding error ~eps * (cumulative integral up to the bin), which is
    # ~1e-13 of the bin value for SSP spectra on log bins.
    csum = np.concatenate([np.zeros(f.shape[:-1] + (1,)), np.cumsum(seg, axis=-1)], axis=-1)
    ja, jb = j[:-1], j[1:]
    inner_start = np.minimum(ja + 1, jb)
    inner = csum[..., jb] - csum[..., inner_start]  # zero when jb <= ja + 1

    same = ja == jb
    # Different intervals: (e_a -> x[ja+1]) + whole intervals + (x[jb] -> e_b).
    total = right_part[..., :-1] + inner + left_part[..., 1:]
    # Same interval: integral e_a -> e_b = trapezoid between the two edge values.
    within = 0.5 * (f_e[..., :-1] + f_e[..., 1:]) * (e[1:] - e[:-1])
    total = np.where(same, within, total)
    out = total / np.diff(e)
    if np.all(f >= 0):
        # Prefix-sum differences can round to tiny negatives where the flux is ~0; the exact value
        # of a non-negative integrand is non-negative.
        out = np.maximum(out, 0.0)
    return out
