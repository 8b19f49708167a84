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
from .layout import SCHEMA_VERSION, is_string_dataset, samples_chunks

__all__ = ["merge_posterior_files", "compare_posterior_files"]

_STR = h5py.string_dtype()
#: Attributes that differ between the parts of one run (summed or spanned when merged).
_PER_PART = ("row_start", "row_stop", "counts", "importance", "fallback")
_SUMMED = {"importance": ("n_reliable",), "fallback": ("n_triggered", "n_refit", "n_nuts")}
_COPY_ROWS = 256  # galaxies of /samples copied at a time
_BLOCK_ROWS = 65536  # rows of the other datasets


def _meta(path: Path) -> dict:
    """A part's attributes and dataset layout (the file is closed again: one part is open at a time)."""
    try:
        fh = h5py.File(path, "r")
    except OSError as err:
        raise InputError(f"{path}: not a readable posterior file ({err})") from None
    with fh:
        if int(fh.attrs.get("schema_version", 0)) != SCHEMA_VERSION or "row_start" not in fh.attrs:
            raise InputError(f"{path}: not a posterior file of schema {SCHEMA_VERSION} with a row range "
                             "(written by this version's infer)")
        layout = {}
        for name, d in _datasets(fh).items():
            layout[name] = (d.shape[1:], "str" if is_string_dataset(d) else d.dtype.str, dict(d.attrs))
        groups = {k: dict(fh[k].attrs) for k in fh if isinstance(fh[k], h5py.Group)}
        return {"path": path, "attrs": {k: fh.attrs[k] for k in fh.attrs}, "layout": layout, "groups": groups,
                "start": int(fh.attrs["row_start"]), "stop": int(fh.attrs["row_stop"])}


def _datasets(fh: h5py.File) -> dict:
    out = {}
    fh.visititems(lambda name, obj: out.__setitem__(name, obj) if isinstance(obj, h5py.Dataset) else None)
    return out


def _check_compatible(parts: list[dict]) -> None:
    first = parts[0]
    ref = {k: v for k, v in first["attrs"].items() if k not in _PER_PART}
    for p in parts[1:]:
        attrs = {k: v for k, v in p["attrs"].items() if k not in _PER_PART}
        differ = sorted(k for k in set(attrs) | set(ref) if str(attrs.get(k)) != str(ref.get(k)))
        if differ:
            raise InputError(f"{p['path']} and {first['path']} come from runs with different {', '.join(differ)}")
        if {k: v[:2] for k, v in p["layout"].items()} != {k: v[:2] for k, v in first["layout"].items()}:
            raise InputError(f"{p['path']} and {first['path']} hold different datasets: "
                             f"{sorted(set(p['layout']) ^ set(first['layout'])) or 'shapes or dtypes differ'}")
    for a, b in zip(parts, parts[1:]):
        if a["stop"] != b["start"]:
            what = "overlap" if b["start"] < a["stop"] else "leave a gap"
            raise InputError(f"{a['path']} (rows to {a['stop']}) and {b['path']} (rows from {b['start']}) {what}")


def _merged_attrs(parts: list[dict]) -> dict:
    attrs = dict(parts[0]["attrs"])
    attrs["row_start"], attrs["row_stop"] = parts[0]["start"], parts[-1]["stop"]
    counts = [json.loads(p["attrs"]["counts"]) for p in parts]
    attrs["counts"] = json.dumps({k: sum(c[k] for c in counts) for k in counts[0]})
    for name, keys in _SUMMED.items():
        if name in attrs:
            vals = [json.loads(p["attrs"][name]) for p in parts]
            merged = dict(vals[0])
            merged.update({k: sum(v[k] for v in vals) for k in keys})
            attrs[name] = json.dumps(merged)
    return attrs


def _step(name: str) -> int:
    return _COPY_ROWS if name == "samples" else _BLOCK_ROWS


def _create(out: h5py.File, name: str, spec, n: int):
    shape, dtype, attrs = spec
    kw = {"chunks": samples_chunks(n, shape[0]), "fillvalue": np.nan} if name == "samples" else {}
    dst = out.create_dataset(name, shape=(n, *shape), dtype=_STR if dtype == "str" else np.dtype(dtype), **kw)
    for k, v in attrs.items():
        dst.attrs[k] = v
    return dst


def merge_posterior_files(paths, out: str | os.PathLike) -> Path:
    """Merge the posterior files ``paths`` (consecutive row ranges, any order) into ``out`` (atomically), reading
    one file and a block of rows at a time.

    Raises :class:`~sedflow_jax.errors.InputError` when they are not posterior files of this schema, overlap,
    leave a gap, or come from runs with different settings or catalogues.
    """
    paths = [Path(p) for p in paths]
    if not paths:
        raise InputError("merge: no posterior files given")
    out = Path(out)
    if any(out.exists() and os.path.samefile(out, p) for p in paths):
        raise InputError(f"merge: --out {out} is one of the inputs")
    parts = sorted((_meta(p) for p in paths), key=lambda m: m["start"])
    _check_compatible(parts)
    n = parts[-1]["stop"] - parts[0]["start"]
    with atomic_path(out) as tmp, h5py.File(tmp, "w") as fh:
        dst = {name: _create(fh, name, spec, n) for name, spec in parts[0]["layout"].items()}
        for group, attrs in parts[0]["groups"].items():
            for k, v in attrs.items():
                fh[group].attrs[k] = v
        at = 0
        for p in parts:
            with h5py.File(p["path"], "r") as src:
                for name, d in dst.items():
                    s, is_str = src[name], p["layout"][name][1] == "str"
                    for a in range(0, s.shape[0], _step(name)):
                        b = min(s.shape[0], a + _step(name))
                        d[at + a : at + b] = s.asstr()[a:b] if is_str else s[a:b]
            at += p["stop"] - p["start"]
        for k, v in _merged_attrs(parts).items():
            fh.attrs[k] = v
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
            is_str = is_string_dataset(x)
            step = _step(name)
            for i in range(0, x.shape[0], step):
                u, v = (d.asstr()[i : i + step] if is_str else d[i : i + step] for d in (x, y))
                if not np.array_equal(u, v, equal_nan=u.dtype.kind == "f"):
                    diff.append(name)
                    break
        for k in sorted(set(fa.attrs) | set(fb.attrs)):
            if str(fa.attrs.get(k)) != str(fb.attrs.get(k)):
                diff.append(f"attrs/{k}")
    return diff
