"""THE posterior file of catalogue inference (``posteriors.h5``): names, dtypes, shapes, attrs, writer, reader.

One output row per input row, in input order (``n`` rows, ``S`` samples per galaxy):

    /flags            (n,)          uint8   flags (:data:`sedflow_jax.flags.FLAGS`; 16 = outside support)
    /flag_reason      (n,)          str     comma-separated flag names ('' = clean)
    /support_score    (n,)          float32 kNN support score (threshold in attrs)
    /x                (n, 11)       float32 the flow's input (mags, sigma_m, z)
    /samples          (n, S, 12)    float32 physical samples (THETA_NAMES), NaN for invalid rows (optional)
    /median, /p16, /p84 (n, 12)     float32 per-parameter summaries (NaN for invalid rows)
    /derived/{median,p16,p84} (n, 5) float32 derived properties (DERIVED_NAMES; attr ``names``), with properties
    /id               (n,)          catalogue id column, when given
    /input/<column>   (n,)          extra 1-D columns copied from the catalogue (e.g. ``true_*``), when given
    /method           (n,)          str     'anpe', 'anpe_is' (reliable importance reweighting), 'nuts'
                                            (fallback refit) or '' (invalid row)
    /is_ess, /is_pareto_k (n,)      float32 ANPE-IS effective sample size and Pareto k-hat (with importance)
    /is_status        (n,)          str     'reliable' or why the reweighting was not used (with importance)
    /fallback_trigger (n,)          str     why the row was sent to NUTS ('support', 'chi2', ...; with a fallback)
    /fallback_status  (n,)          str     outcome of the refit (with a fallback)
    /chi2_best        (n,)          float32 best chi-square of the flow draws (with a fallback)

Attributes: ``schema_version`` (:data:`SCHEMA_VERSION`), ``param_names`` (JSON list), ``flag_bits`` (JSON
dict), ``n_samples``, ``seed``, ``support_threshold``, ``model`` (JSON), ``row_start`` / ``row_stop`` (the
catalogue rows the file holds: ``[row_start, row_stop)``, so ``n = row_stop - row_start``), ``counts`` (JSON:
rows inferred, invalid, outside support, ...), ``settings`` (JSON: the run's :class:`InferConfig`), ``catalogue``
(JSON: the input's name, size, row count and column choice; in-memory catalogues: a digest), and ``importance`` / ``fallback`` (JSON settings and counts) when those steps ran. Files written before
the attribute existed read as version 0 (same layout); version 1 lacks row_start, row_stop, counts, settings.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import h5py
import numpy as np

from ..errors import InputError
from ..flags import FLAGS, flag_reasons
from ..params import DERIVED_NAMES, THETA_NAMES

__all__ = ["SCHEMA_VERSION", "SAMPLES_CHUNK_BYTES", "FILE_ATTRS", "samples_chunks", "iter_posterior_blocks", "is_string_dataset", "RowResults", "PosteriorFileWriter", "read_posterior_file"]

SCHEMA_VERSION = 2  #: bump when a dataset or attribute changes meaning, name, dtype or shape
SAMPLES_CHUNK_BYTES = 1 << 20  #: HDF5 chunk of /samples: whole galaxies, about this many bytes (float32)
_STR = h5py.string_dtype()


def samples_chunks(n_rows: int, n_samples: int) -> tuple[int, int, int]:
    """HDF5 chunk shape of /samples: whole galaxies, about :data:`SAMPLES_CHUNK_BYTES` each."""
    n_theta = len(THETA_NAMES)
    return max(1, min(max(1, n_rows), SAMPLES_CHUNK_BYTES // (n_samples * n_theta * 4))), n_samples, n_theta


def _nan(*shape) -> np.ndarray:
    return np.full(shape, np.nan, np.float32)


def _strings(n: int, value: str = "") -> np.ndarray:
    return np.full(n, value, dtype=object)


@dataclass
class RowResults:
    """Per-row outputs of a run, in memory (everything but the samples, which go straight to the file).

    Float arrays are NaN and strings '' where a row has no value; :meth:`empty` builds them.
    """

    flags: np.ndarray
    support_score: np.ndarray
    x: np.ndarray
    median: np.ndarray
    p16: np.ndarray
    p84: np.ndarray
    method: np.ndarray
    derived: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
    is_ess: np.ndarray = field(default=None)
    is_pareto_k: np.ndarray = field(default=None)
    is_status: np.ndarray = field(default=None)
    fallback_trigger: np.ndarray = field(default=None)
    fallback_status: np.ndarray = field(default=None)
    chi2_best: np.ndarray = field(default=None)

    @classmethod
    def empty(cls, x: np.ndarray, flags: np.ndarray, support_score: np.ndarray, valid: np.ndarray, *,
              properties: bool) -> RowResults:
        n, n_theta, n_derived = x.shape[0], len(THETA_NAMES), len(DERIVED_NAMES)
        return cls(flags=flags, support_score=support_score, x=x, median=_nan(n, n_theta), p16=_nan(n, n_theta),
                   p84=_nan(n, n_theta), method=np.where(valid, "anpe", "").astype(object),
                   derived=tuple(_nan(n, n_derived) for _ in range(3)) if properties else None,
                   is_ess=_nan(n), is_pareto_k=_nan(n), is_status=_strings(n), fallback_trigger=_strings(n),
                   fallback_status=_strings(n), chi2_best=_nan(n))

    def __len__(self) -> int:
        return int(self.flags.shape[0])


class PosteriorFileWriter:
    """Writes one posterior file into an open, empty ``h5py.File`` ``fh``.

    ``/samples`` is created at once (NaN-filled, chunked by whole galaxies) and filled as the flow's chunks
    arrive (:meth:`write_samples`) or rows are replaced (:meth:`write_row`); :meth:`finish` writes the rest.
    """

    def __init__(self, fh: h5py.File, n_rows: int, n_samples: int, *, write_samples: bool = True):
        self.fh = fh
        self.samples = None
        if write_samples:
            n_theta = len(THETA_NAMES)
            self.samples = fh.create_dataset("samples", shape=(n_rows, n_samples, n_theta), dtype="float32",
                                             chunks=samples_chunks(n_rows, n_samples), fillvalue=np.nan)

    def write_samples(self, rows: np.ndarray, samples: np.ndarray) -> None:
        """Samples ``(len(rows), S, 12)`` of the sorted rows ``rows`` (written in contiguous runs)."""
        if self.samples is None:
            return
        for a, b in _runs(rows):
            self.samples[a : b + 1] = samples[np.searchsorted(rows, a) : np.searchsorted(rows, b) + 1]

    def write_row(self, row: int, samples: np.ndarray) -> None:
        """Replace the samples ``(S, 12)`` of one row."""
        if self.samples is not None:
            self.samples[row] = samples

    def finish(self, res: RowResults, *, attrs: dict, ids=None, extra: dict | None = None,
               importance: dict | None = None, fallback: dict | None = None) -> None:
        """Every dataset but /samples, and the attributes (``attrs``: :data:`FILE_ATTRS`; JSON ones as objects)."""
        fh = self.fh
        fh.create_dataset("method", data=np.array(res.method.tolist(), dtype=_STR))
        if importance is not None:
            fh.create_dataset("is_ess", data=res.is_ess)
            fh.create_dataset("is_pareto_k", data=res.is_pareto_k)
            fh.create_dataset("is_status", data=np.array(res.is_status.tolist(), dtype=_STR))
            fh.attrs["importance"] = json.dumps(importance)
        if fallback is not None:
            fh.create_dataset("fallback_trigger", data=np.array(res.fallback_trigger.tolist(), dtype=_STR))
            fh.create_dataset("fallback_status", data=np.array(res.fallback_status.tolist(), dtype=_STR))
            fh.create_dataset("chi2_best", data=res.chi2_best)
            fh.attrs["fallback"] = json.dumps(fallback)
        fh.create_dataset("flags", data=res.flags)
        fh.create_dataset("flag_reason", data=np.array(flag_reasons(res.flags), dtype=_STR))
        fh.create_dataset("support_score", data=res.support_score)
        fh.create_dataset("x", data=res.x)
        for name, arr in (("median", res.median), ("p16", res.p16), ("p84", res.p84)):
            fh.create_dataset(name, data=arr)
        if res.derived is not None:
            g = fh.create_group("derived")
            for name, arr in zip(("median", "p16", "p84"), res.derived):
                g.create_dataset(name, data=arr)
            g.attrs["names"] = json.dumps(list(DERIVED_NAMES))
        if ids is not None:
            fh.create_dataset("id", data=_column(ids))
        if extra:
            g = fh.create_group("input")
            for k, v in extra.items():
                g.create_dataset(k, data=_column(v))
        fh.attrs["schema_version"] = SCHEMA_VERSION
        fh.attrs["param_names"] = json.dumps(list(THETA_NAMES))
        fh.attrs["flag_bits"] = json.dumps(FLAGS)
        for k in FILE_ATTRS:
            fh.attrs[k] = json.dumps(attrs[k]) if k in _JSON_ATTRS else attrs[k]


def is_string_dataset(d: h5py.Dataset) -> bool:
    """Whether a dataset holds strings (read it with ``d.asstr()``)."""
    return d.dtype.kind == "O" or h5py.check_string_dtype(d.dtype) is not None


def _column(values) -> np.ndarray:
    v = np.asarray(values)
    return v.astype(_STR) if v.dtype.kind in "OUS" else v


def _runs(rows: np.ndarray):
    """Contiguous runs (first, last) in a sorted index array."""
    if rows.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(rows) != 1)
    starts = np.r_[rows[0], rows[breaks + 1]]
    ends = np.r_[rows[breaks], rows[-1]]
    return list(zip(starts.tolist(), ends.tolist()))


_JSON_ATTRS = ("param_names", "flag_bits", "model", "importance", "fallback", "counts", "settings", "catalogue")
#: Attributes :meth:`PosteriorFileWriter.finish` takes from its ``attrs`` argument.
FILE_ATTRS = ("n_samples", "seed", "support_threshold", "model", "row_start", "row_stop", "counts", "settings",
              "catalogue")


def read_posterior_file(path, *, samples: bool = True, names=None) -> dict:
    """Read a posterior file into a dict: datasets by name (strings decoded; groups as ``"derived/median"``,
    ``"input/<col>"``; /samples only with ``samples``; only ``names`` when given) and ``"attrs"`` (JSON
    attributes decoded).

    Raises :class:`~sedflow_jax.errors.InputError` for a file of a newer schema or not a posterior file.
    """
    out: dict = {}
    try:
        fh = h5py.File(path, "r")
    except OSError as err:
        raise InputError(f"{path}: not a readable posterior file ({err})") from None
    with fh:
        version = int(fh.attrs.get("schema_version", 0))
        if version > SCHEMA_VERSION or "flags" not in fh or "median" not in fh:
            raise InputError(f"{path}: not a posterior file of schema <= {SCHEMA_VERSION} "
                             f"(schema_version {version}; needs /flags and /median)")

        def visit(name, obj):
            if not isinstance(obj, h5py.Dataset) or (names is not None and name not in names):
                return
            if samples or name != "samples":
                data = obj[()]
                out[name] = obj.asstr()[()] if is_string_dataset(obj) else data

        fh.visititems(visit)
        attrs = {k: fh.attrs[k] for k in fh.attrs}
    for k in _JSON_ATTRS:
        if k in attrs:
            attrs[k] = json.loads(attrs[k])
    attrs["schema_version"] = version
    out["attrs"] = attrs
    return out


def iter_posterior_blocks(path, names, *, block_rows: int = 65536):
    """Yield ``{name: rows a..b-1}`` of the datasets ``names`` present in a posterior file, a block of rows at a
    time (strings decoded): constant memory for a summary of any catalogue."""
    with h5py.File(path, "r") as fh:
        present = [k for k in names if k in fh]
        n = fh["flags"].shape[0]
        for a in range(0, n, block_rows):
            out = {}
            for k in present:
                d = fh[k]
                out[k] = d.asstr()[a : a + block_rows] if is_string_dataset(d) else d[a : a + block_rows]
            yield out
