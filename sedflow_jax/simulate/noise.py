"""Photometric noise model p(sigma_X | f_X), per band, as in SEDflow (Hahn & Melchior 2022, §3.2).

For each band X the magnitude uncertainty is Gaussian at fixed magnitude,

    sigma_m,X ~ N(mu_X(m_X), s_X(m_X)),

where mu_X is the **median** and s_X the **scatter** of real sigma_m in bins of real magnitude. Both
are smooth functions of magnitude: piecewise linear in log10 between equal-count bin centres
(running 3-bin smoothing), constant brighter than the brightest bin, and growing as 10^(0.4 dm)
fainter than the faintest bin (sky-limited: a constant flux error), with s/mu held fixed there. The
noise is then applied in flux space,

    sigma_f = (ln 10 / 2.5) f sigma_m,    f_obs = f + N(0, sigma_f).

A draw with sigma_m <= 0 is not clipped: it is flagged by the simulator (SEDflow removes such draws).

The fitted table ships as ``sedflow_jax/data/noise_model_sdss.json`` (derived by
``scripts/fit_noise_model.py`` from the SDSS MGS training half); :func:`fit_noise_model` fits the
same model on any catalogue (``sedflow-jax noise fit CATALOG``).
"""

from __future__ import annotations

import hashlib
import json
import os
from importlib import resources
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from ..errors import InputError
from ..photometry import flux_to_mag, sigma_flux_to_mag, sigma_mag_to_flux

__all__ = [
    "NoiseModel",
    "fit_noise_model",
    "load_noise_model",
    "default_noise_model_path",
    "read_mag_catalogue",
    "validate_noise_model",
]

FAINT_SLOPE_DEX_PER_MAG = 0.4  # sky-limited extrapolation: constant sigma_f => sigma_m ~ 10^(0.4 m)
NOISE_FORMAT = "sedflow_jax.noise_model.gaussian_mag/1"
SDSS_MGS_COLUMNS = {"mag": (1, 2, 3, 4, 5), "err": (10, 11, 12, 13, 14), "z": 0}  # MLZ SDSS_MGS layout


class NoiseModel(eqx.Module):
    """Gaussian-in-magnitude noise model, one curve per band.

    Attributes:
        mag_nodes: ``(n_band, n_node)`` magnitudes of the curve nodes (increasing).
        log10_median: ``(n_band, n_node)`` log10 median sigma_m at the nodes.
        log10_scatter: ``(n_band, n_node)`` log10 scatter (std) of sigma_m at the nodes.
        mag_range: ``(n_band, 2)`` magnitude range of the calibration catalogue (for the optional cut).
        bands: band names (static).
        meta_json: provenance of the fit as a JSON string (static).
    """

    mag_nodes: Float[Array, "n_band n_node"]
    log10_median: Float[Array, "n_band n_node"]
    log10_scatter: Float[Array, "n_band n_node"]
    mag_range: Float[Array, "n_band 2"]
    bands: tuple[str, ...] = eqx.field(static=True)
    meta_json: str = eqx.field(static=True, default="{}")

    @property
    def n_band(self) -> int:
        return len(self.bands)

    @property
    def meta(self) -> dict:
        return json.loads(self.meta_json)

    def _curve(self, values, mag):
        def one(nodes, vals, m):
            inside = jnp.interp(m, nodes, vals)  # constant beyond both ends
            faint = vals[-1] + FAINT_SLOPE_DEX_PER_MAG * (m - nodes[-1])
            return jnp.where(m > nodes[-1], faint, inside)

        return jax.vmap(one, in_axes=(0, 0, -1), out_axes=-1)(self.mag_nodes, values, mag)

    def median_sigma_mag(self, mag: Float[Array, "... n_band"]) -> Float[Array, "... n_band"]:
        """Median sigma_m at magnitude ``mag`` (last axis: bands)."""
        return 10.0 ** self._curve(self.log10_median, jnp.asarray(mag, self.mag_nodes.dtype))

    def scatter_sigma_mag(self, mag: Float[Array, "... n_band"]) -> Float[Array, "... n_band"]:
        """Scatter (std) of sigma_m at magnitude ``mag``."""
        return 10.0 ** self._curve(self.log10_scatter, jnp.asarray(mag, self.mag_nodes.dtype))

    def sample_sigma_mag(self, key: PRNGKeyArray, mag: Float[Array, "... n_band"]) -> Float[Array, "... n_band"]:
        """sigma_m ~ N(median(m), scatter(m)); may be <= 0 (the caller flags such draws)."""
        mag = jnp.asarray(mag, self.mag_nodes.dtype)
        eps = jr.normal(key, mag.shape, mag.dtype)
        return self.median_sigma_mag(mag) + self.scatter_sigma_mag(mag) * eps

    def apply(self, key: PRNGKeyArray, flux_nmgy: Float[Array, " n_band"]):
        """Noise for one galaxy: returns ``(sigma_flux_nmgy, flux_obs_nmgy)``.

        sigma_m is drawn at the noiseless magnitude, converted to flux with the noiseless flux
        (sigma_f = ln10/2.5 * f * sigma_m) and Gaussian noise is added in flux space.
        """
        k_sig, k_obs = jr.split(key)
        sigma_mag = self.sample_sigma_mag(k_sig, flux_to_mag(flux_nmgy))
        sigma_flux = sigma_mag_to_flux(sigma_mag, flux_nmgy)
        noise = jr.normal(k_obs, flux_nmgy.shape, flux_nmgy.dtype) * sigma_flux
        return sigma_flux, flux_nmgy + noise

    # ------------------------------------------------------------------ persistence
    def to_dict(self) -> dict:
        return {
            "format": NOISE_FORMAT,
            "bands": list(self.bands),
            "faint_slope_dex_per_mag": FAINT_SLOPE_DEX_PER_MAG,
            "mag_nodes": np.asarray(self.mag_nodes, np.float64).round(5).tolist(),
            "log10_median_sigma_mag": np.asarray(self.log10_median, np.float64).round(5).tolist(),
            "log10_scatter_sigma_mag": np.asarray(self.log10_scatter, np.float64).round(5).tolist(),
            "mag_range": np.asarray(self.mag_range, np.float64).round(5).tolist(),
            "meta": self.meta,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1)

    def sha256(self) -> str:
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()

    @classmethod
    def from_dict(cls, d: dict, dtype=None) -> "NoiseModel":
        if d.get("format") != NOISE_FORMAT:
            raise InputError(f"not a noise-model table: format {d.get('format')!r}, expected {NOISE_FORMAT!r}")
        dtype = dtype or jnp.result_type(float)
        arr = lambda k: jnp.asarray(np.asarray(d[k], np.float64), dtype)  # noqa: E731
        nodes = arr("mag_nodes")
        if nodes.ndim != 2 or nodes.shape[0] != len(d["bands"]):
            raise InputError(f"mag_nodes must be (n_band, n_node) with n_band = {len(d['bands'])}, got {nodes.shape}")
        return cls(nodes, arr("log10_median_sigma_mag"), arr("log10_scatter_sigma_mag"), arr("mag_range"),
                   tuple(d["bands"]), json.dumps(d.get("meta", {}), sort_keys=True))

    def save(self, path: str | os.PathLike) -> None:
        from ..io import atomic_write_text

        atomic_write_text(path, self.to_json() + "\n")


def default_noise_model_path() -> Path:
    return Path(str(resources.files("sedflow_jax.data").joinpath("noise_model_sdss.json")))


def load_noise_model(path: str | os.PathLike | None = None, dtype=None) -> NoiseModel:
    """Load a noise-model table (default: the shipped SDSS MGS fit)."""
    path = Path(path) if path is not None else default_noise_model_path()
    if not path.exists():
        raise FileNotFoundError(f"noise-model table not found: {path}")
    try:
        d = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise InputError(f"noise-model table {path} is not valid JSON: {err}") from None
    return NoiseModel.from_dict(d, dtype)


# ---------------------------------------------------------------------- fitting


def read_mag_catalogue(path: str | os.PathLike, *, mag_cols=None, err_cols=None, z_col=None, units: str = "mag"):
    """Read a whitespace/comma-separated catalogue of magnitudes (or fluxes) and their errors.

    Args:
        path: text file; lines starting with '#' are comments. Default column layout: MLZ's
            SDSS_MGS files (zs u g r i z u-g g-r r-i i-z eu eg er ei ez ...; 0-based columns).
        mag_cols, err_cols: 0-based column indices of the values and their 1-sigma errors.
        z_col: 0-based column of the redshift (None: not read).
        units: ``'mag'`` (AB magnitudes and magnitude errors) or ``'nmgy'`` (fluxes and flux errors
            in nanomaggies, converted to magnitudes; rows with flux <= 0 become NaN).

    Returns:
        ``(mag, sigma_mag, z)``: ``(n, n_band)``, ``(n, n_band)`` and ``(n,)`` or None.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"catalogue not found: {path}")
    mag_cols = tuple(SDSS_MGS_COLUMNS["mag"] if mag_cols is None else mag_cols)
    err_cols = tuple(SDSS_MGS_COLUMNS["err"] if err_cols is None else err_cols)
    if len(mag_cols) != len(err_cols):
        raise InputError(f"{len(mag_cols)} value columns but {len(err_cols)} error columns")
    delim = "," if path.suffix.lower() == ".csv" else None
    try:
        data = np.loadtxt(path, comments="#", delimiter=delim, ndmin=2)
    except ValueError as err:
        raise InputError(f"cannot parse catalogue {path} as numbers: {err}") from None
    need = max(mag_cols + err_cols + ((z_col,) if z_col is not None else ()))
    if data.shape[1] <= need:
        raise InputError(f"catalogue {path} has {data.shape[1]} columns; column {need} was requested")
    val, err = data[:, mag_cols], data[:, err_cols]
    if units == "nmgy":
        mag, sig = flux_to_mag(val), sigma_flux_to_mag(err, val)
    elif units == "mag":
        mag, sig = val, err
    else:
        raise InputError(f"units must be 'mag' or 'nmgy', got {units!r}")
    z = data[:, z_col] if z_col is not None else None
    return mag, sig, z


def _smooth3(y):
    out = y.copy()
    out[1:-1] = (y[:-2] + y[1:-1] + y[2:]) / 3.0
    return out


def fit_noise_model(mag, sigma_mag, bands=("u", "g", "r", "i", "z"), *, n_bins: int = 20,
                    scatter: str = "mad", meta: dict | None = None, dtype=None) -> NoiseModel:
    """Fit the Gaussian-in-magnitude noise model per band.

    Per band: sort the good rows (finite, sigma > 0) by magnitude, cut them into ``n_bins``
    equal-count bins, take the median magnitude of each bin as node, the median of sigma_m, and its
    scatter (``'mad'``: 1.4826 x median absolute deviation, robust to the catalogue's rare outliers;
    ``'std'``: the plain standard deviation as the paper words it). log10 values are smoothed over
    3 neighbouring bins.
    """
    mag, sigma_mag = np.asarray(mag, np.float64), np.asarray(sigma_mag, np.float64)
    if mag.shape != sigma_mag.shape or mag.ndim != 2 or mag.shape[1] != len(bands):
        raise ValueError(f"mag and sigma_mag must both be (n, {len(bands)}); got {mag.shape} and {sigma_mag.shape}")
    if scatter not in ("mad", "std"):
        raise InputError(f"scatter must be 'mad' or 'std', got {scatter!r}")
    nodes, med, scat, rng, n_used = [], [], [], [], []
    for b in range(len(bands)):
        ok = np.isfinite(mag[:, b]) & np.isfinite(sigma_mag[:, b]) & (sigma_mag[:, b] > 0)
        m, s = mag[ok, b], sigma_mag[ok, b]
        if m.size < 3 * n_bins:
            raise InputError(f"band {bands[b]!r}: {m.size} usable rows, need at least {3 * n_bins} for {n_bins} bins")
        order = np.argsort(m)
        m, s = m[order], s[order]
        parts = np.array_split(np.arange(m.size), n_bins)
        nb = np.array([np.median(m[p]) for p in parts])
        md = np.array([np.median(s[p]) for p in parts])
        if scatter == "mad":
            sc = np.array([1.4826 * np.median(np.abs(s[p] - np.median(s[p]))) for p in parts])
        else:
            sc = np.array([np.std(s[p], ddof=1) for p in parts])
        sc = np.maximum(sc, 1e-5)
        nodes.append(nb)
        med.append(_smooth3(np.log10(md)))
        scat.append(_smooth3(np.log10(sc)))
        rng.append([float(m[0]), float(m[-1])])
        n_used.append(int(m.size))
    info = {"n_bins": n_bins, "scatter": scatter, "n_rows_used": n_used, "smoothing": "3-bin running mean in log10"}
    info.update(meta or {})
    dtype = dtype or jnp.result_type(float)
    a = lambda x: jnp.asarray(np.asarray(x), dtype)  # noqa: E731
    return NoiseModel(a(nodes), a(med), a(scat), a(rng), tuple(bands), json.dumps(info, sort_keys=True))


# ---------------------------------------------------------------------- validation


def validate_noise_model(noise: NoiseModel, mag, sigma_mag, *, n_bins: int = 10, key=None, n_rep: int = 20) -> dict:
    """Compare the model's sigma distribution at fixed magnitude with a held-out catalogue.

    Statistics per band (all on rows with finite mag and sigma > 0):

    - ``pit_ks``: the primary statistic. For each real galaxy i, u_i = F(sigma_i | m_i), the model's
      CDF at its observed sigma given its magnitude. If the model's conditional distribution is
      right, the u_i are U(0, 1) whatever the magnitude distribution; ``pit_ks`` is the KS distance
      sup|ECDF(u) - u|.
    - ``bin_ks_median`` / ``bin_ks_max``: in ``n_bins`` equal-count magnitude bins, the two-sample KS
      distance between the real sigmas and ``n_rep`` simulated sigmas drawn at each real galaxy's
      magnitude; median and maximum over bins.
    - ``median_rel_err_max``: max over bins of |median(sim) - median(real)| / median(real).
    """
    from scipy import stats

    key = jr.key(0) if key is None else key
    mag, sigma_mag = np.asarray(mag, np.float64), np.asarray(sigma_mag, np.float64)
    out = {}
    for b, band in enumerate(noise.bands):
        ok = np.isfinite(mag[:, b]) & np.isfinite(sigma_mag[:, b]) & (sigma_mag[:, b] > 0)
        m, s = mag[ok, b], sigma_mag[ok, b]
        full = np.zeros((m.size, noise.n_band))
        full[:, b] = m
        mu = np.asarray(noise.median_sigma_mag(jnp.asarray(full, noise.mag_nodes.dtype)))[:, b].astype(np.float64)
        sc = np.asarray(noise.scatter_sigma_mag(jnp.asarray(full, noise.mag_nodes.dtype)))[:, b].astype(np.float64)
        pit = stats.norm.cdf((s - mu) / sc)
        d_pit = float(stats.kstest(pit, "uniform").statistic)
        eps = np.asarray(jr.normal(jr.fold_in(key, b), (n_rep, m.size)), np.float64)
        sim = mu[None] + sc[None] * eps
        order = np.argsort(m)
        ks, rel = [], []
        for p in np.array_split(order, n_bins):
            ks.append(float(stats.ks_2samp(s[p], sim[:, p].ravel()).statistic))
            rel.append(float(abs(np.median(sim[:, p]) - np.median(s[p])) / np.median(s[p])))
        out[band] = {
            "n": int(m.size),
            "pit_ks": d_pit,
            "bin_ks_median": float(np.median(ks)),
            "bin_ks_max": float(np.max(ks)),
            "median_rel_err_max": float(np.max(rel)),
        }
    return out
