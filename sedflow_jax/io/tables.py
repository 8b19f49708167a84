"""Column tables read in blocks of rows: CSV, FITS (first table HDU), HDF5 (datasets of a group).

:func:`open_table` gives a :class:`Table`: ``n_rows``, column ``names``, and :meth:`Table.blocks`, which reads
the rows ``[start, stop)`` of some columns in blocks of at most ``block_rows`` rows, so a catalogue of any
length is read in constant memory. FITS and HDF5 are read by slicing (memory-mapped FITS, h5py datasets); a
CSV is parsed once on opening (field counts checked, row count and column types found) and then read
sequentially.

CSV column types, decided over the whole file: ``int`` (every value an integer written in canonical decimal
that fits int64: ids such as 19-digit SDSS objIDs stay exact; '007' is not one), ``float`` (numbers, with '', nan, null, None, NA as NaN) or ``str``. Every
error is an :class:`~sedflow_jax.errors.InputError` naming the file and the line, column or dataset.
"""

from __future__ import annotations

import csv
import os
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from ..errors import InputError

__all__ = ["Table", "open_table", "MISSING_TOKENS", "file_identity", "aligned_ranges"]

#: CSV cells read as NaN in numeric columns.
MISSING_TOKENS = ("", "nan", "NaN", "NAN", "null", "NULL", "None", "NA", "N/A")
_CSV = (".csv", ".txt")
_FITS = (".fits", ".fit", ".fits.gz", ".fit.gz")
_HDF5 = (".h5", ".hdf5", ".he5")


def _suffix(path: Path) -> str:
    return "".join(path.suffixes[-2:]).lower() if path.suffix.lower() == ".gz" else path.suffix.lower()


def aligned_ranges(start: int, stop: int, size: int) -> list[tuple[int, int]]:
    """``[start, stop)`` cut at the multiples of ``size``: the blocks of every reader, so a block's rows do not
    depend on where a read starts (a resumed or split run sees the same blocks)."""
    if size < 1:
        raise ValueError(f"block size must be >= 1, got {size}")
    cuts = [start, *range((start // size + 1) * size, stop, size), stop]
    return [(a, b) for a, b in zip(cuts, cuts[1:]) if b > a]


def file_identity(path: str | os.PathLike) -> dict:
    """What identifies a file's version for a checkpoint: resolved path, size, modification time (ns)."""
    st = Path(path).stat()
    return {"path": str(Path(path).resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


class Table(ABC):
    """A column table of ``n_rows`` rows (subclasses read one format: :meth:`dtype_kind` and :meth:`blocks`)."""

    path: Path
    n_rows: int
    names: tuple[str, ...]

    def __contains__(self, name: str) -> bool:
        return name in self.names

    @abstractmethod
    def dtype_kind(self, name: str) -> str:
        """'int', 'float' or 'str': how :meth:`blocks` returns the column (numbers of any width as int/float)."""

    def shape(self, name: str) -> tuple[int, ...]:
        """A column's shape beyond the row axis (``()`` for a 1-D column)."""
        return ()

    def use(self, names: Sequence[str]) -> None:
        """Tell the table which columns will be read (an HDF5 group's row count is theirs)."""

    def check_numeric(self, names: Sequence[str]) -> None:
        """Raise :class:`InputError` naming the first column of ``names`` that does not hold numbers."""
        for name in names:
            if self.dtype_kind(name) == "str":
                raise InputError(f"{self.path}: column {name!r} holds text, not numbers")

    @abstractmethod
    def blocks(self, names: Sequence[str], start: int, stop: int, block_rows: int, *, text: Sequence[str] = ()
               ) -> Iterator[tuple[int, int, dict]]:
        """Yield ``(a, b, {name: rows a..b-1})`` for the blocks of :func:`aligned_ranges` covering ``[start, stop)``
        (``block_rows`` rows each but the first and last, cut at multiples of ``block_rows``); CSV columns in
        ``text`` come as the stripped text of their cells unless they hold integers (ids: never through float)."""

    def read(self, names: Sequence[str] | None = None, *, text: Sequence[str] = ()) -> dict[str, np.ndarray]:
        """Every row of ``names`` (default: all columns of the table's length) in memory (``text``: as
        :meth:`blocks`)."""
        names = list(self._full_length() if names is None else names)
        parts = [blk for _, _, blk in self.blocks(names, 0, self.n_rows, max(1, self.n_rows), text=text)]
        if not parts:
            return {k: self._empty(k) for k in names}
        return parts[0]

    def _full_length(self) -> list[str]:
        return list(self.names)

    def _empty(self, name: str) -> np.ndarray:
        return np.zeros(0, {"int": np.int64, "float": np.float64}.get(self.dtype_kind(name), object))

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def open_table(path: str | os.PathLike, *, hdf5_group: str = "/") -> Table:
    """Open a CSV, FITS or HDF5 catalogue by its suffix (:class:`Table`)."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"catalogue {path} not found")
    if path.is_dir():
        raise InputError(f"catalogue {path} is a directory, not a file")
    suffix = _suffix(path)
    if suffix in _CSV:
        return CSVTable(path)
    if suffix in _FITS:
        return FITSTable(path)
    if suffix in _HDF5:
        return HDF5Table(path, hdf5_group)
    raise InputError(f"{path}: unknown catalogue format {path.suffix!r} (use .csv, .fits or .h5/.hdf5)")


# -- CSV ---------------------------------------------------------------------------------------------------
class CSVTable(Table):
    """A CSV file: '#' comment lines and blank lines skipped, a UTF-8 byte-order mark ignored, every row
    with exactly the header's number of fields (else an error naming the line)."""

    def __init__(self, path: Path, *, scan_rows: int = 65536):
        self.path = path
        self._header, self._header_line = self._read_header()
        self.names = tuple(self._header)
        if len(set(self.names)) != len(self.names):
            dup = sorted({n for n in self.names if self.names.count(n) > 1})
            raise InputError(f"{path}: header line {self._header_line} repeats column(s) {dup}")
        kinds = dict.fromkeys(self.names, "int")
        n = 0
        for lines, rows in self._row_blocks(0, scan_rows):
            n += len(rows)
            for j, name in enumerate(self.names):
                if kinds[name] != "str":
                    kinds[name] = _kind_of(_column(rows, j), kinds[name])
        if n == 0:
            raise InputError(f"{path}: no data rows below the header (line {self._header_line})")
        self.n_rows, self._kinds = n, kinds

    def _open(self):
        return open(self.path, newline="", encoding="utf-8-sig")  # -sig: a leading BOM is not part of a name

    def _records(self, fh) -> Iterator[tuple[int, list[str]]]:
        """(physical line number, fields) of the header and every record below it: '#' comment lines and blank
        lines before the header are skipped, blank lines below it too. A record of empty fields is a row (of
        missing values), and so is one whose first field starts with '#' (a text id): never dropped."""
        reader = csv.reader(fh)
        header_seen = False
        try:
            for fields in reader:
                if not header_seen and (not fields or fields[0].lstrip().startswith("#")
                                        or not any(f.strip() for f in fields)):
                    continue
                if fields:
                    header_seen = True
                    yield reader.line_num, fields
        except (csv.Error, UnicodeDecodeError) as err:
            raise InputError(f"{self.path}, line {reader.line_num + 1}: not a readable CSV ({err})") from None

    def _read_header(self):
        with self._open() as fh:
            for line, fields in self._records(fh):
                return [h.strip() for h in fields], line
        raise InputError(f"{self.path}: empty CSV (no header line)")

    def _row_blocks(self, start: int, block_rows: int) -> Iterator[tuple[list[int], list[list[str]]]]:
        """Blocks of (line numbers, field lists) from data row ``start`` on, field counts checked."""
        n_col, i = len(self._header), -1
        lines, rows = [], []
        with self._open() as fh:
            records = self._records(fh)
            next(records)  # the header
            for line, fields in records:
                if len(fields) != n_col:
                    raise InputError(f"{self.path}, line {line}: {len(fields)} fields, the header has {n_col}")
                i += 1
                if i < start:
                    continue
                lines.append(line)
                rows.append(fields)
                if (i + 1) % block_rows == 0:
                    yield lines, rows
                    lines, rows = [], []
        if rows:
            yield lines, rows

    def dtype_kind(self, name: str) -> str:
        return self._kinds[name]

    def check_numeric(self, names):
        for name in names:
            if self._kinds[name] != "str":
                continue
            j = self.names.index(name)
            for lines, rows in self._row_blocks(0, 65536):
                values = _column(rows, j)
                for k, v in enumerate(values):
                    if _kind_of(np.array([v])) == "str":
                        raise InputError(f"{self.path}, line {lines[k]}, column {name!r}: {str(v)!r} is not a number")

    def blocks(self, names, start, stop, block_rows, *, text=()):
        idx = {n: self.names.index(n) for n in names}
        a = start
        for lines, rows in self._row_blocks(start, block_rows):
            rows, lines = rows[: stop - a], lines[: stop - a]
            if not rows:
                return
            out = {n: self._convert(_column(rows, j), n, lines, n in text) for n, j in idx.items()}
            yield a, a + len(rows), out
            a += len(rows)
            if a >= stop:
                return

    def _convert(self, values: np.ndarray, name: str, lines: list[int], as_text: bool) -> np.ndarray:
        kind = self._kinds[name]
        if kind == "str" or (as_text and kind != "int"):
            return values.astype(object)
        if kind == "int":
            return values.astype(np.int64)
        try:
            return _as_float(values)
        except ValueError:  # types were found on the whole file: only if it changed since it was opened
            raise InputError(f"{self.path} changed while being read (column {name!r}, lines {lines[0]}-"
                             f"{lines[-1]})") from None


def _column(rows: list[list[str]], j: int) -> np.ndarray:
    return np.char.strip(np.array([r[j] for r in rows], dtype=str))


def _as_float(values: np.ndarray) -> np.ndarray:
    values = np.where(np.isin(values, MISSING_TOKENS), "nan", values)
    return values.astype(np.float64)


def _kind_of(values: np.ndarray, at_least: str = "int") -> str:
    """The narrowest of 'int' < 'float' < 'str', no narrower than ``at_least``, that holds every value."""
    if at_least == "int":
        try:
            # canonical decimals only: '007' or '+7' read as an int would not be the id as written
            if np.array_equal(values.astype(np.int64).astype(str), values):
                return "int"
        except (ValueError, OverflowError):
            pass
    if at_least in ("int", "float"):
        try:
            _as_float(values)
            return "float"
        except ValueError:
            pass
    return "str"


# -- FITS and HDF5 ---------------------------------------------------------------------------------------
def _kind_of_dtype(dtype: np.dtype) -> str:
    return {"i": "int", "u": "int", "b": "int", "f": "float"}.get(dtype.kind, "str")


class _SlicedTable(Table):
    """A table read by slicing its columns (:meth:`_slice`); string cells decoded, read errors named."""

    @abstractmethod
    def _slice(self, name: str, a: int, b: int) -> np.ndarray:
        """Rows ``a..b-1`` of column ``name``."""

    def _check_range(self, names: Sequence[str], stop: int) -> None:
        pass

    def blocks(self, names, start, stop, block_rows, *, text=()):
        self._check_range(names, stop)
        for a, b in aligned_ranges(start, stop, block_rows):
            out = {}
            for name in names:
                try:
                    out[name] = _decoded(self._slice(name, a, b))
                except (OSError, UnicodeDecodeError) as err:
                    raise InputError(f"{self.path}: cannot read column {name!r} rows {a}-{b - 1} "
                                     f"(truncated or damaged file: {err})") from None
            yield a, b, out


class FITSTable(_SlicedTable):
    """The first table HDU of a FITS file, memory-mapped; masked float cells read as NaN."""

    def __init__(self, path: Path):
        from astropy.table import Table as AstropyTable

        self.path = path
        try:
            self._t = AstropyTable.read(path, format="fits", memmap=True)
        except Exception as err:  # astropy raises OSError, ValueError, TypeError... for damaged files
            first = (str(err).splitlines() or [""])[0]
            raise InputError(f"{path}: not a readable FITS table ({type(err).__name__}: {first})") from None
        self.names = tuple(self._t.colnames)
        self.n_rows = len(self._t)

    def dtype_kind(self, name):
        return _kind_of_dtype(self._t[name].dtype)

    def shape(self, name):
        return tuple(self._t[name].shape[1:])

    def _slice(self, name, a, b):
        col = self._t[name][a:b]
        return np.asarray(col.filled(np.nan) if hasattr(col, "filled") and col.dtype.kind == "f" else col)


class HDF5Table(_SlicedTable):
    """The datasets of one HDF5 group (every dataset's first axis is the row axis)."""

    def __init__(self, path: Path, group: str):
        import h5py

        self.path = path
        try:
            self._fh = h5py.File(path, "r")
            g = self._fh[group]
        except (OSError, KeyError) as err:
            raise InputError(f"{path}: not a readable HDF5 catalogue (group {group!r}: {err})") from None
        if not isinstance(g, h5py.Group):
            self._fh.close()
            raise InputError(f"{path}: {group!r} is a dataset, not a group of column datasets")
        self._ds = {k: g[k] for k in g.keys() if isinstance(g[k], h5py.Dataset) and g[k].ndim >= 1}
        self.names = tuple(self._ds)
        lengths = [d.shape[0] for d in self._ds.values()]
        # the most common length (unrelated arrays, e.g. a wavelength grid, may sit beside the columns);
        # use() fixes it to the columns a reader needs
        self.n_rows = max(set(lengths), key=lengths.count) if lengths else 0

    def use(self, names) -> None:
        lengths = {k: self._ds[k].shape[0] for k in names if k in self._ds}
        if len(set(lengths.values())) > 1:
            raise InputError(f"{self.path}: the columns have different lengths: {lengths}")
        if lengths:
            self.n_rows = next(iter(lengths.values()))

    def dtype_kind(self, name):
        return _kind_of_dtype(self._ds[name].dtype)

    def shape(self, name):
        return tuple(self._ds[name].shape[1:])

    def _check_range(self, names, stop):
        short = sorted(k for k in names if self._ds[k].shape[0] < stop)
        if short:
            raise InputError(f"{self.path}: dataset(s) {short} have fewer than {stop} rows")

    def _slice(self, name, a, b):
        return self._ds[name][a:b]

    def _full_length(self):
        return [k for k in self.names if self._ds[k].shape[0] == self.n_rows]

    def close(self):
        self._fh.close()


def _decoded(arr: np.ndarray) -> np.ndarray:
    if arr.dtype.kind == "S" or (arr.dtype.kind == "O" and arr.size and isinstance(arr.flat[0], bytes)):
        return np.array([v.decode() for v in arr.ravel()], dtype=object).reshape(arr.shape)
    return arr
