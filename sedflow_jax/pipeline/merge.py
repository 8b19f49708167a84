"""Merge posterior files of consecutive row ranges into one (a run's chunks; a catalogue split over machines).

Each input holds catalogue rows ``[row_start, row_stop)`` (attributes of :mod:`.layout`); the inputs must
cover one contiguous range without gaps or overlaps, with the same datasets and the same run settings. Every
per-row dataset is concatenated in row order (``/samples`` copied a few galaxies at a time, so memory stays
bounded), counts are summed, and the result is written atomically. Merging the parts of a split run gives
the file of the run over the whole range.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import h5py
import numpy as np

from ..errors import InputError
from ..io import atomic_path
from .layout import SCHEMA_VERSION, samples_chunks

__all__ = ["merge_posterior_files", "compare_posterior_files"]

_STR = h5py.string_dtype()
#: Attributes that differ between the parts of one run (summed or spanned when merged).
_PER_PART = ("row_start", "row_stop", "counts", "importance", "fallback")
_SUMMED = {"importance": ("n_reliable",), "fallback": ("n_triggered", "n_refit", "n_nuts")}
_COPY_ROWS = 256  # galaxies of /samples copied at a time


def _open_parts(paths):
    parts = []
    for path in paths:
        try:
            fh = h5py.File(path, "r")
        except OSError as err:
            raise InputError(f"{path}: not a readable posterior file ({err})") from None
        if int(fh.attrs.get("schema_version", 0)) != SCHEMA_VERSION or "row_start" not in fh.attrs:
            fh.close()
            raise InputError(f"{path}: not a posterior file of schema {SCHEMA_VERSION} with a row range "
                             "(written by this version's infer)")
        parts.append(fh)
    return sorted(parts, key=lambda fh: int(fh.attrs["row_start"]))


def _datasets(fh: h5py.File) -> dict:
    out = {}
    fh.visititems(lambda name, obj: out.__setitem__(name, obj) if isinstance(obj, h5py.Dataset) else None)
    return out


def _check_compatible(parts) -> None:
    first = parts[0]
    ref_attrs = {k: first.attrs[k] for k in first.attrs if k not in _PER_PART}
    ref_ds = {k: (d.shape[1:], d.dtype.kind) for k, d in _datasets(first).items()}
    for fh in parts[1:]:
        attrs = {k: fh.attrs[k] for k in fh.attrs if k not in _PER_PART}
        differ = sorted(k for k in set(attrs) | set(ref_attrs) if str(attrs.get(k)) != str(ref_attrs.get(k)))
        if differ:
            raise InputError(f"{fh.filename} and {first.filename} come from runs with different {', '.join(differ)}")
        ds = {k: (d.shape[1:], d.dtype.kind) for k, d in _datasets(fh).items()}
        if ds != ref_ds:
            raise InputError(f"{fh.filename} and {first.filename} hold different datasets: "
                             f"{sorted(set(ds.items()) ^ set(ref_ds.items()))}")
    for a, b in zip(parts, parts[1:]):
        stop, start = int(a.attrs["row_stop"]), int(b.attrs["row_start"])
        if stop != start:
            what = "overlap" if start < stop else "leave a gap"
            raise InputError(f"{a.filename} (rows to {stop}) and {b.filename} (rows from {start}) {what}")


def _merged_attrs(parts) -> dict:
    attrs = {k: parts[0].attrs[k] for k in parts[0].attrs}
    attrs["row_start"], attrs["row_stop"] = int(parts[0].attrs["row_start"]), int(parts[-1].attrs["row_stop"])
    counts = [json.loads(fh.attrs["counts"]) for fh in parts]
    attrs["counts"] = json.dumps({k: sum(c[k] for c in counts) for k in counts[0]})
    for name, keys in _SUMMED.items():
        if name in attrs:
            vals = [json.loads(fh.attrs[name]) for fh in parts]
            merged = dict(vals[0])
            merged.update({k: sum(v[k] for v in vals) for k in keys})
            attrs[name] = json.dumps(merged)
    return attrs


def _copy_dataset(name: str, parts, out: h5py.File, n: int) -> None:
    src = parts[0][name]
    is_str = src.dtype.kind == "O" or h5py.check_string_dtype(src.dtype) is not None
    kw = {"chunks": samples_chunks(n, src.shape[1]), "fillvalue": np.nan} if name == "samples" else {}
    dst = out.create_dataset(name, shape=(n, *src.shape[1:]), dtype=_STR if is_str else src.dtype, **kw)
    for k, v in src.attrs.items():
        dst.attrs[k] = v
    at = 0
    for fh in parts:
        d = fh[name]
        step = _COPY_ROWS if name == "samples" else max(1, d.shape[0])
        for a in range(0, d.shape[0], step):
            b = min(d.shape[0], a + step)
            dst[at + a : at + b] = d.asstr()[a:b] if is_str else d[a:b]
        at += d.shape[0]


def merge_posterior_files(paths, out: str | os.PathLike) -> Path:
    """Merge the posterior files ``paths`` (consecutive row ranges, any order) into ``out`` (atomically).

    Raises :class:`~sedflow_jax.errors.InputError` when they are not posterior files of this schema, overlap,
    leave a gap, or come from runs with different settings.
    """
    paths = [Path(p) for p in paths]
    if not paths:
        raise InputError("merge: no posterior files given")
    out = Path(out)
    if any(out.exists() and os.path.samefile(out, p) for p in paths):
        raise InputError(f"merge: --out {out} is one of the inputs")
    parts = _open_parts(paths)
    try:
        _check_compatible(parts)
        n = int(parts[-1].attrs["row_stop"]) - int(parts[0].attrs["row_start"])
        with atomic_path(out) as tmp, h5py.File(tmp, "w") as fh:
            for name in _datasets(parts[0]):
                _copy_dataset(name, parts, fh, n)
            for name in ("derived",):
                if name in parts[0]:
                    for k, v in parts[0][name].attrs.items():
                        fh[name].attrs[k] = v
            for k, v in _merged_attrs(parts).items():
                fh.attrs[k] = v
    finally:
        for fh in parts:
            fh.close()
    return out


def compare_posterior_files(a, b) -> list[str]:
    """What differs between two posterior files: names of datasets (values compared bit for bit, NaN equal to
    NaN; read a block of rows at a time) and attributes (``attrs/<name>``) that are not identical. Empty: the
    files hold the same results."""
    diff = []
    with h5py.File(a, "r") as fa, h5py.File(b, "r") as fb:
        da, db = _datasets(fa), _datasets(fb)
        diff += sorted(set(da) ^ set(db))
        for name in sorted(set(da) & set(db)):
            x, y = da[name], db[name]
            if x.shape != y.shape or x.dtype.kind != y.dtype.kind:
                diff.append(name)
                continue
            is_str = h5py.check_string_dtype(x.dtype) is not None
            step = _COPY_ROWS if name == "samples" else max(1, x.shape[0])
            for i in range(0, x.shape[0], step):
                u, v = (d.asstr()[i : i + step] if is_str else d[i : i + step] for d in (x, y))
                if not np.array_equal(u, v, equal_nan=u.dtype.kind == "f"):
                    diff.append(name)
                    break
        for k in sorted(set(fa.attrs) | set(fb.attrs)):
            if str(fa.attrs.get(k)) != str(fb.attrs.get(k)):
                diff.append(f"attrs/{k}")
    return diff
