"""Galaxy catalogue readers (CSV, FITS, HDF5) -> the ANPE's x = (ugriz mags, sigma_m, z), with row flags.

Two input conventions (column names configurable through :class:`CatalogColumns`):

* ``kind="flux"``: fluxes and inverse variances in nanomaggies, as NSA stores them. Either one column
  per band (``flux="flux_{band}"``, ``ivar="ivar_{band}"``) or one 2-D column (``flux="NMGY"``,
  ``ivar="NMGY_IVAR"``) whose band columns are picked by ``band_index`` (NSA: FUV, NUV, u, g, r, i, z,
  so the default for a 7-column array is (2, 3, 4, 5, 6)). m = 22.5 - 2.5 log10 f,
  sigma_m = 2.5 / ln 10 * ivar^-1/2 / f.
* ``kind="mag"``: AB magnitudes and their errors (``mag="mag_{band}"``, ``mag_err="mag_err_{band}"``).

Bad rows are **flagged, never dropped or raised on**: the output has one row per input row, in input
order, with a bit mask (:data:`ROW_FLAGS`) and a comma-separated reason. No JAX in this module.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..flags import FLAGS, INVALID_MASK, flag_reasons

__all__ = ["CatalogColumns", "ROW_FLAGS", "read_table", "read_catalog", "prepare_x", "flag_reasons", "read_sdss_mgs",
           "SDSS_MGS_LAYOUT"]

BANDS = ("u", "g", "r", "i", "z")
MAG_ZP = 22.5  # nanomaggie zero point
_PSTON = 2.5 / np.log(10.0)

#: Per-row flags (bit values, :mod:`sedflow_jax.flags`); ``flags == 0`` rows are inferred normally.
ROW_FLAGS = FLAGS


@dataclass(frozen=True)
class CatalogColumns:
    """Column names of a catalogue (``{band}`` is replaced by u, g, r, i, z)."""

    kind: str = "mag"
    mag: str = "mag_{band}"
    mag_err: str = "mag_err_{band}"
    flux: str = "flux_{band}"
    ivar: str = "ivar_{band}"
    redshift: str = "z"
    id: str | None = None
    band_index: tuple[int, ...] | None = None

    @classmethod
    def nsa(cls) -> CatalogColumns:
        """NSA: NMGY / NMGY_IVAR (FUV, NUV, u, g, r, i, z) and Z, NSAID."""
        return cls(kind="flux", flux="NMGY", ivar="NMGY_IVAR", redshift="Z", id="NSAID")


def read_table(path: str | os.PathLike, *, hdf5_group: str = "/") -> dict[str, np.ndarray]:
    """Read every column of a CSV, FITS (first table HDU) or HDF5 file (datasets in ``hdf5_group``)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"catalogue {path} not found")
    suffix = "".join(path.suffixes[-2:]).lower() if path.suffix.lower() == ".gz" else path.suffix.lower()
    if suffix in (".csv", ".txt"):
        return _read_csv(path)
    if suffix in (".fits", ".fit", ".fits.gz", ".fit.gz"):
        from astropy.table import Table

        t = Table.read(path)
        out = {}
        for name in t.colnames:
            col = t[name]
            arr = np.asarray(col.filled(np.nan) if hasattr(col, "filled") and col.dtype.kind == "f" else col)
            out[name] = arr
        return out
    if suffix in (".h5", ".hdf5", ".he5"):
        import h5py

        with h5py.File(path, "r") as fh:
            g = fh[hdf5_group]
            return {k: g[k][()] for k in g.keys() if hasattr(g[k], "shape")}
    raise ValueError(f"unknown catalogue format {path.suffix!r} (use .csv, .fits or .h5/.hdf5)")


def _read_csv(path: Path) -> dict[str, np.ndarray]:
    with open(path, newline="") as fh:
        rows = [r for r in csv.reader(fh) if r and not r[0].startswith("#")]
    if not rows:
        raise ValueError(f"{path}: empty CSV")
    header, body = [h.strip() for h in rows[0]], rows[1:]
    out = {}
    for j, name in enumerate(header):
        vals = [r[j].strip() if j < len(r) else "" for r in body]
        try:
            out[name] = np.array([float(v) if v not in ("", "nan", "NaN", "null", "None") else np.nan for v in vals])
        except ValueError:
            out[name] = np.array(vals)
    return out


def _band_columns(table: dict, pattern: str, band_index) -> np.ndarray:
    if "{band}" in pattern:
        missing = [pattern.format(band=b) for b in BANDS if pattern.format(band=b) not in table]
        if missing:
            raise ValueError(f"catalogue lacks column(s) {missing}; available: {sorted(table)}")
        return np.stack([np.asarray(table[pattern.format(band=b)], np.float64) for b in BANDS], 1)
    if pattern not in table:
        raise ValueError(f"catalogue lacks column {pattern!r}; available: {sorted(table)}")
    arr = np.asarray(table[pattern], np.float64)
    if arr.ndim != 2:
        raise ValueError(f"column {pattern!r} must be 2-D (n, n_band) when it has no '{{band}}' placeholder")
    idx = band_index if band_index is not None else ((2, 3, 4, 5, 6) if arr.shape[1] == 7 else tuple(range(5)))
    if len(idx) != 5 or max(idx) >= arr.shape[1]:
        raise ValueError(f"band_index {idx} does not pick 5 bands from {pattern!r} with {arr.shape[1]} columns")
    return arr[:, list(idx)]


def prepare_x(table: dict, columns: CatalogColumns = CatalogColumns(), *, redshift_range=(0.0, 0.2)
              ) -> tuple[np.ndarray, np.ndarray]:
    """Build x (n, 11) = (mags, sigma_m, z) and per-row flags (:data:`ROW_FLAGS`) from a column table.

    Invalid rows keep their position; their x entries may be NaN and their flags say why.
    """
    z = np.asarray(table[columns.redshift], np.float64) if columns.redshift in table else None
    if z is None:
        raise ValueError(f"catalogue lacks redshift column {columns.redshift!r}; available: {sorted(table)}")
    flags = np.zeros(z.shape[0], np.uint8)
    with np.errstate(all="ignore"):
        if columns.kind == "flux":
            f = _band_columns(table, columns.flux, columns.band_index)
            ivar = _band_columns(table, columns.ivar, columns.band_index)
            missing = ~np.isfinite(f) | ~np.isfinite(ivar)
            flags |= np.where(np.any(missing, 1), ROW_FLAGS["missing_value"], 0).astype(np.uint8)
            flags |= np.where(np.any(np.isfinite(f) & (f <= 0), 1), ROW_FLAGS["flux_nonpositive"], 0).astype(np.uint8)
            flags |= np.where(np.any(np.isfinite(ivar) & (ivar <= 0), 1), ROW_FLAGS["error_nonpositive"], 0).astype(np.uint8)
            mag = MAG_ZP - 2.5 * np.log10(f)
            sig = _PSTON / np.sqrt(ivar) / f
        elif columns.kind == "mag":
            mag = _band_columns(table, columns.mag, columns.band_index)
            sig = _band_columns(table, columns.mag_err, columns.band_index)
            flags |= np.where(np.any(~np.isfinite(mag) | ~np.isfinite(sig), 1), ROW_FLAGS["missing_value"], 0).astype(np.uint8)
            flags |= np.where(np.any(np.isfinite(sig) & (sig <= 0), 1), ROW_FLAGS["error_nonpositive"], 0).astype(np.uint8)
        else:
            raise ValueError(f"columns.kind must be 'flux' or 'mag', got {columns.kind!r}")
        flags |= np.where(~np.isfinite(z), ROW_FLAGS["missing_value"], 0).astype(np.uint8)
        lo, hi = redshift_range
        flags |= np.where(np.isfinite(z) & ((z < lo) | (z > hi)), ROW_FLAGS["redshift_outside_range"], 0).astype(np.uint8)
    x = np.concatenate([mag, sig, z[:, None]], 1).astype(np.float32)
    return x, flags


def read_catalog(path, columns: CatalogColumns = CatalogColumns(), *, redshift_range=(0.0, 0.2), hdf5_group="/"):
    """Read a catalogue file; returns ``(table, x (n, 11), flags (n,))``."""
    table = read_table(path, hdf5_group=hdf5_group)
    x, flags = prepare_x(table, columns, redshift_range=redshift_range)
    return table, x, flags


#: MLZ ``SDSS_MGS.train/.test`` layout (0-based columns). The files' header line omits ``eu``, so the
#: columns are read by position: zs u g r i z u-g g-r r-i i-z eu eg er ei ez eu-g eg-r er-i ei-z (19 columns).
SDSS_MGS_LAYOUT = {"z": 0, "mag": (1, 2, 3, 4, 5), "mag_err": (10, 11, 12, 13, 14), "n_columns": 19}


def read_sdss_mgs(path: str | os.PathLike, *, id_prefix: str | None = None) -> dict[str, np.ndarray]:
    """Read an MLZ SDSS Main Galaxy Sample text file into the column table :func:`prepare_x` expects.

    The file is whitespace separated with '#' comment lines; its header omits the ``eu`` column, so
    columns are taken by position (:data:`SDSS_MGS_LAYOUT`), never by the header's names.

    Returns:
        ``{"id", "z", "mag_u".."mag_z", "mag_err_u".."mag_err_z"}`` (use ``CatalogColumns(id="id")``).
        ``id`` is ``"<id_prefix>:<row>"`` (``id_prefix`` defaults to the file name), row counted from 0.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"catalogue {path} not found")
    try:
        data = np.loadtxt(path, comments="#", ndmin=2)
    except ValueError as err:
        raise ValueError(f"cannot parse {path} as an SDSS MGS text table: {err}") from None
    if data.shape[1] != SDSS_MGS_LAYOUT["n_columns"]:
        raise ValueError(f"{path} has {data.shape[1]} columns; the MLZ SDSS MGS layout has "
                         f"{SDSS_MGS_LAYOUT['n_columns']} (zs, ugriz, 4 colours, 5 errors, 4 colour errors)")
    prefix = path.name if id_prefix is None else id_prefix
    out: dict[str, np.ndarray] = {"id": np.array([f"{prefix}:{i}" for i in range(data.shape[0])]),
                                  "z": data[:, SDSS_MGS_LAYOUT["z"]]}
    for b, jm, je in zip(BANDS, SDSS_MGS_LAYOUT["mag"], SDSS_MGS_LAYOUT["mag_err"]):
        out[f"mag_{b}"] = data[:, jm]
        out[f"mag_err_{b}"] = data[:, je]
    return out
