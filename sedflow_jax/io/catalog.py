"""Galaxy catalogue readers (CSV, FITS, HDF5) -> photometry as read, the flow's x and row flags (:class:`Catalogue`).

Two input conventions (column names configurable through :class:`CatalogColumns`):

* ``kind="flux"``: fluxes and inverse variances in nanomaggies, as NSA stores them. Either one column
  per band (``flux="flux_{band}"``, ``ivar="ivar_{band}"``) or one 2-D column (``flux="NMGY"``,
  ``ivar="NMGY_IVAR"``) whose band columns are picked by ``band_index`` (NSA: FUV, NUV, u, g, r, i, z,
  so the default for a 7-column array is (2, 3, 4, 5, 6)). The fluxes and ivar are kept as read
  (:class:`~sedflow_jax.photometry.Photometry`); x is derived from them (:meth:`Photometry.x`).
* ``kind="mag"``: AB magnitudes and their errors (``mag="mag_{band}"``, ``mag_err="mag_err_{band}"``), converted
  once to fluxes and ivar in float64 (:meth:`Photometry.from_mags`); x holds the magnitudes as read.

Bad rows are **flagged, never dropped or raised on**: the output has one row per input row, in input
order, with a bit mask (:data:`ROW_FLAGS`) and a comma-separated reason. Magnitudes with ``|value| >=
MAG_SENTINEL`` (SDSS's 99, -99, -9999 "no measurement" values) are missing values, like NaN. No JAX
arrays in this module; a bad file, a missing column or text in a numeric column raises
:class:`~sedflow_jax.errors.InputError` naming the file, column and line.

:func:`read_catalogue` reads a whole file into a :class:`Catalogue`; :class:`CatalogueReader` reads one in
blocks of rows (constant memory, :func:`sedflow_jax.pipeline.infer_catalog`). Ids are carried as read: int64
where every id is an integer, else text, never float.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..flags import FLAGS, INVALID_MASK, flag_reasons
from ..photometry import Photometry, XLayout
from .tables import file_identity, open_table

__all__ = ["CatalogColumns", "Catalogue", "CatalogueReader", "ROW_FLAGS", "INVALID_MASK", "MAG_SENTINEL", "read_table",
           "catalogue_photometry", "catalogue_from_table", "read_catalogue", "flag_reasons", "read_sdss_mgs",
           "SDSS_MGS_LAYOUT"]

#: Magnitudes at or beyond this absolute value are "no measurement" sentinels (read as NaN: missing_value).
MAG_SENTINEL = 50.0

BANDS = ("u", "g", "r", "i", "z")

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

    def photometry_names(self) -> list[str]:
        """The columns the photometry is read from (``{band}`` expanded) and the redshift column."""
        pats = (self.flux, self.ivar) if self.kind == "flux" else (self.mag, self.mag_err)
        names = [p.format(band=b) for p in pats for b in BANDS] if "{band}" in pats[0] else list(pats)
        return list(dict.fromkeys([*names, self.redshift]))

    def check(self, available, source="catalogue", *, with_id: bool = True) -> None:
        """Raise :class:`InputError` unless the columns ``available`` hold what these names ask for (the kind is
        known; the redshift, photometry and, ``with_id``, id columns exist; the id is not a photometry column)."""
        if self.kind not in ("flux", "mag"):
            raise InputError(f"columns.kind must be 'flux' or 'mag', got {self.kind!r}")
        names = list(available)
        if self.redshift not in names:
            raise InputError(f"{source} lacks redshift column {self.redshift!r}; available: {sorted(names)}")
        missing = [n for n in self.photometry_names() if n not in names]
        if missing:
            raise InputError(f"{source} lacks column(s) {missing}; available: {sorted(names)}")
        if with_id and self.id is not None:
            if self.id not in names:
                raise InputError(f"{source} lacks id column {self.id!r} (--id-col); available: {sorted(names)}")
            if self.id in self.photometry_names():
                raise InputError(f"{source}: the id column {self.id!r} (--id-col) is also a photometry or redshift "
                                 "column")

    @classmethod
    def nsa(cls) -> CatalogColumns:
        """NSA: NMGY / NMGY_IVAR (FUV, NUV, u, g, r, i, z) and Z, NSAID."""
        return cls(kind="flux", flux="NMGY", ivar="NMGY_IVAR", redshift="Z", id="NSAID")


def read_table(path: str | os.PathLike, *, hdf5_group: str = "/") -> dict[str, np.ndarray]:
    """Every column of a CSV, FITS (first table HDU) or HDF5 file (datasets in ``hdf5_group``), in memory
    (:func:`~sedflow_jax.io.tables.open_table`; CSV columns typed int64, float64 or text over the whole file)."""
    with open_table(path, hdf5_group=hdf5_group) as t:
        return t.read()


def _band_columns(table: dict, pattern: str, band_index) -> np.ndarray:
    if "{band}" in pattern:  # the columns exist: CatalogColumns.check
        return np.stack([np.asarray(table[pattern.format(band=b)], np.float64) for b in BANDS], 1)
    arr = np.asarray(table[pattern], np.float64)
    if arr.ndim != 2:
        raise InputError(f"column {pattern!r} must be 2-D (n, n_band) when it has no '{{band}}' placeholder")
    idx = band_index if band_index is not None else ((2, 3, 4, 5, 6) if arr.shape[1] == 7 else tuple(range(5)))
    if len(idx) != 5 or max(idx) >= arr.shape[1]:
        raise InputError(f"band_index {idx} does not pick 5 bands from {pattern!r} with {arr.shape[1]} columns")
    return arr[:, list(idx)]


@dataclass(frozen=True)
class Catalogue:
    """A catalogue as read: its column table, photometry, the flow's x, per-row flags and ids.

    Attributes:
        table: every column of the file (:func:`read_table`), e.g. ``true_*`` columns to copy.
        photometry: fluxes and inverse variances as read (flux catalogues) or converted once, in float64,
            from magnitudes and errors (mag catalogues); what every flux-space method (ANPE-IS, the
            chi-square check, NUTS) uses.
        x: ``(n, 11)`` float32 flow input derived once: :meth:`Photometry.x` for flux catalogues, the
            magnitudes and errors as read for mag catalogues (no round trip; on valid rows
            ``photometry.x()`` gives the same bits).
        flags: ``(n,)`` uint8 (:data:`ROW_FLAGS`); rows with a bit of :data:`INVALID_MASK` get no samples.
        ids: the id column, or ``None``.
    """

    table: dict
    photometry: Photometry
    x: np.ndarray
    flags: np.ndarray
    ids: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.flags.shape[0])

    def rows(self, start: int, stop: int) -> Catalogue:
        """The rows ``[start, stop)`` (the table's 1-D columns of full length sliced too)."""
        n, sl = len(self), slice(start, stop)
        table = {k: v[sl] for k, v in self.table.items() if np.ndim(v) >= 1 and np.shape(v)[0] == n}
        ids = None if self.ids is None else np.asarray(self.ids)[sl]
        return replace(self, table=table, photometry=self.photometry.rows(sl), x=self.x[sl],
                       flags=self.flags[sl], ids=ids)


def _flag(mask_rows: np.ndarray, name: str) -> np.ndarray:
    return np.where(mask_rows, ROW_FLAGS[name], 0).astype(np.uint8)


def catalogue_photometry(table: dict, columns: CatalogColumns = CatalogColumns(), *, redshift_range=(0.0, 0.2)
                         ) -> tuple[Photometry, np.ndarray, np.ndarray]:
    """``(photometry, x (n, 11) float32, flags (n,) uint8)`` from a column table (see :class:`Catalogue`).

    Invalid rows keep their position; their entries may be NaN and their flags say why. Raises
    :class:`~sedflow_jax.errors.InputError` for a missing column or an unknown ``columns.kind``.
    """
    columns.check(table, with_id=False)
    return _photometry(table, columns, redshift_range)


def _photometry(table: dict, columns: CatalogColumns, redshift_range):
    z = np.asarray(table[columns.redshift], np.float64)
    flags = np.zeros(z.shape[0], np.uint8)
    with np.errstate(all="ignore"):
        if columns.kind == "flux":
            f = _band_columns(table, columns.flux, columns.band_index)
            ivar = _band_columns(table, columns.ivar, columns.band_index)
            flags |= _flag(np.any(~np.isfinite(f) | ~np.isfinite(ivar), 1), "missing_value")
            flags |= _flag(np.any(np.isfinite(f) & (f <= 0), 1), "flux_nonpositive")
            flags |= _flag(np.any(np.isfinite(ivar) & (ivar <= 0), 1), "error_nonpositive")
            phot = Photometry(f, ivar, z)
            x = phot.x()
        else:  # "mag" (CatalogColumns.check knows no other kind)
            mag = _band_columns(table, columns.mag, columns.band_index)
            sig = _band_columns(table, columns.mag_err, columns.band_index)
            # sentinel magnitudes (99, -99, -9999) are no measurement: NaN, so the row is flagged missing_value.
            # Errors are not screened so: a huge error (a faint band) is a measurement, and flux space keeps it
            mag = np.where(np.abs(mag) >= MAG_SENTINEL, np.nan, mag)
            flags |= _flag(np.any(~np.isfinite(mag) | ~np.isfinite(sig), 1), "missing_value")
            flags |= _flag(np.any(np.isfinite(sig) & (sig <= 0), 1), "error_nonpositive")
            phot = Photometry.from_mags(mag, sig, z)
            x = XLayout(mag.shape[1]).assemble(mag, sig, z).astype(np.float32)
        flags |= _flag(~np.isfinite(z), "missing_value")
        # compared as the float32 the flow and the model see (0.2 in float32 is above 0.2 in float64)
        z32, lo, hi = z.astype(np.float32), np.float32(redshift_range[0]), np.float32(redshift_range[1])
        flags |= _flag(np.isfinite(z) & ((z32 < lo) | (z32 > hi)), "redshift_outside_range")
    return phot, x, flags


def catalogue_from_table(table: dict, columns: CatalogColumns = CatalogColumns(), *,
                         redshift_range=(0.0, 0.2)) -> Catalogue:
    """A :class:`Catalogue` from a column table (:func:`catalogue_photometry` plus the id column)."""
    columns.check(table)
    phot, x, flags = _photometry(table, columns, redshift_range)
    ids = np.asarray(table[columns.id]) if columns.id is not None else None
    return Catalogue(table, phot, x, flags, ids)


def read_catalogue(path, columns: CatalogColumns = CatalogColumns(), *, redshift_range=(0.0, 0.2),
                   hdf5_group="/") -> Catalogue:
    """Read a whole catalogue file (CSV, FITS, HDF5) into a :class:`Catalogue` (all its columns in ``table``)."""
    with CatalogueReader(path, columns, redshift_range=redshift_range, hdf5_group=hdf5_group) as reader:
        return reader.read()


class CatalogueReader:
    """A catalogue file read in blocks of rows: :meth:`blocks` yields a :class:`Catalogue` per block.

    Opening checks what can be checked before any work: the columns exist, the photometry and redshift
    columns hold numbers (else the first bad line is named), the id column exists. ``extra``: names of 1-D
    columns to carry beside the photometry, where present; ``extra_prefix``: also every numeric column whose
    name starts with it (e.g. ``"true_"``).
    """

    def __init__(self, path: str | os.PathLike, columns: CatalogColumns = CatalogColumns(), *,
                 redshift_range=(0.0, 0.2), extra=(), extra_prefix: str | None = None, hdf5_group: str = "/"):
        self.path, self.columns, self.redshift_range = Path(path), columns, tuple(redshift_range)
        self.table = open_table(path, hdf5_group=hdf5_group)
        try:
            columns.check(self.table.names, f"{path}: catalogue")
            names = columns.photometry_names()
            self.table.use(names + ([columns.id] if columns.id else []))
            if self.table.n_rows == 0:
                raise InputError(f"{path}: the catalogue has no rows")
            self.table.check_numeric(names)
        except BaseException:
            self.table.close()
            raise
        self._names = names
        if extra_prefix:
            extra = (*extra, *(n for n in self.table.names if n.startswith(extra_prefix)
                               and self.table.dtype_kind(n) != "str" and len(self.table.shape(n)) == 0))
        self.extra = tuple(dict.fromkeys(n for n in extra if n in self.table and n not in names and n != columns.id))

    @property
    def n_rows(self) -> int:
        return int(self.table.n_rows)

    def identity(self) -> dict:
        """The file's identity for checkpoints (:func:`~sedflow_jax.io.tables.file_identity`)."""
        return file_identity(self.path)

    def blocks(self, start: int, stop: int, block_rows: int) -> Iterator[tuple[int, int, Catalogue]]:
        """``(a, b, Catalogue of rows a..b-1)`` for consecutive blocks covering ``[start, stop)``; the block's
        ``table`` holds the photometry, id and extra columns."""
        cols = [*self._names, *self.extra, *([self.columns.id] if self.columns.id else [])]
        text = [self.columns.id] if self.columns.id else []
        for a, b, table in self.table.blocks(list(dict.fromkeys(cols)), start, stop, block_rows, text=text):
            yield a, b, catalogue_from_table(table, self.columns, redshift_range=self.redshift_range)

    def read(self) -> Catalogue:
        """Every row, with every column of the file in ``table``."""
        table = self.table.read(text=[self.columns.id] if self.columns.id else [])  # ids as read, never float
        return catalogue_from_table(table, self.columns, redshift_range=self.redshift_range)

    def close(self) -> None:
        self.table.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


#: MLZ ``SDSS_MGS.train/.test`` layout (0-based columns). The files' header line omits ``eu``, so the
#: columns are read by position: zs u g r i z u-g g-r r-i i-z eu eg er ei ez eu-g eg-r er-i ei-z (19 columns).
SDSS_MGS_LAYOUT = {"z": 0, "mag": (1, 2, 3, 4, 5), "mag_err": (10, 11, 12, 13, 14), "n_columns": 19}


def read_sdss_mgs(path: str | os.PathLike, *, id_prefix: str | None = None) -> dict[str, np.ndarray]:
    """Read an MLZ SDSS Main Galaxy Sample text file into the column table :func:`catalogue_from_table` expects.

    The file is whitespace separated with '#' comment lines; its header omits the ``eu`` column, so
    columns are taken by position (:data:`SDSS_MGS_LAYOUT`), never by the header's names.

    Returns:
        ``{"id", "z", "mag_u".."mag_z", "mag_err_u".."mag_err_z"}`` (use ``CatalogColumns(id="id")``).
        ``id`` is ``"<id_prefix>:<row>"`` (``id_prefix`` defaults to the file name), row counted from 0.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"catalogue {path} not found")
    try:
        data = np.loadtxt(path, comments="#", ndmin=2)
    except ValueError as err:
        raise InputError(f"cannot parse {path} as an SDSS MGS text table: {err}") from None
    if data.shape[1] != SDSS_MGS_LAYOUT["n_columns"]:
        raise InputError(f"{path} has {data.shape[1]} columns; the MLZ SDSS MGS layout has "
                         f"{SDSS_MGS_LAYOUT['n_columns']} (zs, ugriz, 4 colours, 5 errors, 4 colour errors)")
    prefix = path.name if id_prefix is None else id_prefix
    out: dict[str, np.ndarray] = {"id": np.array([f"{prefix}:{i}" for i in range(data.shape[0])]),
                                  "z": data[:, SDSS_MGS_LAYOUT["z"]]}
    for b, jm, je in zip(BANDS, SDSS_MGS_LAYOUT["mag"], SDSS_MGS_LAYOUT["mag_err"]):
        out[f"mag_{b}"] = data[:, jm]
        out[f"mag_err_{b}"] = data[:, je]
    return out
