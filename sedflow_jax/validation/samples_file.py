"""The posterior-sample HDF5 file read by ``sedflow-jax validate``.

Layout (one file per method, e.g. ANPE or NUTS, over the same galaxies)::

    samples      float (n_gal, n_draw, n_param)   posterior draws, galaxy-major
    truth        float (n_gal, n_param)           optional: true parameters (simulated test sets)
    attrs:
      param_names  list of n_param strings        optional (or a JSON list); default theta_0, theta_1, ...

On disk the galaxy axis comes first, so one galaxy's draws are contiguous; in memory the
validation functions take ``(n_draw, n_gal, n_param)`` (flowjax order), hence
:func:`read_samples_file` returns ``samples`` with ``sample_axis=1`` already moved to 0 on request.

``sedflow-jax validate`` also reads the posterior files of ``sedflow-jax infer`` (through
:func:`sedflow_jax.pipeline.read_posterior_file`, in :mod:`sedflow_jax.cli.validate`) into a
:class:`SampleFile` with per-row ``flags``; :func:`usable_rows` says which of their rows can be validated.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..flags import FLAGS, INVALID_MASK
from ..io import atomic_path
from ..io.hdf5 import open_hdf5

__all__ = ["SampleFile", "read_samples_file", "usable_rows", "write_samples_file"]


@dataclasses.dataclass(frozen=True)
class SampleFile:
    """Contents of a sample file.

    Attributes:
        samples: ``(n_draw, n_gal, n_param)`` draws (flowjax order, moved from the on-disk layout).
        truth: ``(n_gal, n_param)`` or ``None``.
        param_names: ``n_param`` names.
        flags: ``(n_gal,)`` per-row flags (:data:`sedflow_jax.flags.FLAGS`) of a posterior file written by
            ``sedflow-jax infer``, whose invalid rows hold NaN samples; ``None`` for a sample file, every
            row of which must be finite.
    """

    samples: np.ndarray
    truth: np.ndarray | None
    param_names: tuple[str, ...]
    flags: np.ndarray | None = None


def read_samples_file(path: str | os.PathLike) -> SampleFile:
    """Read a sample file (see the module docstring); errors (:class:`InputError`, ``FileNotFoundError``) name the
    file and the dataset."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"sample file {path} does not exist.")
    with open_hdf5(path, error=InputError, message="{path} is not a readable HDF5 file: {err}") as fh:
        if "samples" not in fh:
            raise InputError(f"{path} has no 'samples' dataset (expected (n_gal, n_draw, n_param)).")
        samples = np.asarray(fh["samples"][...], dtype=np.float64)
        if samples.ndim != 3:
            raise InputError(f"{path}: dataset 'samples' must be (n_gal, n_draw, n_param); got shape {samples.shape}.")
        truth = np.asarray(fh["truth"][...], dtype=np.float64) if "truth" in fh else None
        names = fh.attrs.get("param_names")
    n_gal, _, n_param = samples.shape
    if truth is not None and truth.shape != (n_gal, n_param):
        raise InputError(f"{path}: dataset 'truth' must be (n_gal, n_param) = {(n_gal, n_param)}; got {truth.shape}.")
    names = tuple(f"theta_{k}" for k in range(n_param)) if names is None else _names(names, path)
    if len(names) != n_param:
        raise InputError(f"{path}: attribute 'param_names' has {len(names)} names for n_param={n_param}.")
    return SampleFile(samples=np.moveaxis(samples, 1, 0), truth=truth, param_names=names)


def _names(value, path) -> tuple[str, ...]:
    """``param_names`` as stored: a list of strings, or one JSON string holding the list."""
    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, str) and value.lstrip().startswith("["):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as err:
            raise InputError(f"{path}: attribute 'param_names' is not a JSON list of names ({err}).") from None
    return tuple(n.decode() if isinstance(n, bytes) else str(n) for n in np.atleast_1d(np.asarray(value, dtype=object)))


def usable_rows(sf: SampleFile, truth=None) -> tuple[np.ndarray, list[str]]:
    """The galaxies of ``sf`` that can be validated, and why the others cannot.

    A sample file (``flags is None``) keeps every row (the metrics reject non-finite values, naming them). A
    posterior file of ``sedflow-jax infer`` drops rows flagged invalid (``flags & INVALID_MASK``: no samples),
    rows with non-finite samples, and, with ``truth (n_gal, n_param)``, rows without a finite truth.

    Returns:
        ``(rows, notes)``: sorted indices of the usable galaxies and one line per reason rows were left out
        (or, for rows flagged ``outside_support``, kept), with counts.
    """
    n_gal = sf.samples.shape[1]
    if sf.flags is None:
        return np.arange(n_gal), []
    flags = np.asarray(sf.flags).astype(np.int64)
    keep = np.ones(n_gal, bool)
    notes = []
    bad = (flags & INVALID_MASK) != 0
    if bad.any():
        why = ", ".join(f"{name} {int(np.sum((flags[bad] & bit) != 0))}" for name, bit in FLAGS.items()
                        if bit & INVALID_MASK and np.any(flags[bad] & bit))
        notes.append(f"excluded {int(bad.sum())} of {n_gal} rows flagged invalid by infer (no samples; {why})")
        keep &= ~bad
    nonfinite = keep & ~np.all(np.isfinite(sf.samples), axis=(0, 2))
    if nonfinite.any():
        notes.append(f"excluded {int(nonfinite.sum())} of {n_gal} rows with non-finite samples (rows "
                     f"{_head(np.flatnonzero(nonfinite))})")
        keep &= ~nonfinite
    if truth is not None:
        no_truth = keep & ~np.all(np.isfinite(np.asarray(truth, np.float64)), axis=1)
        if no_truth.any():
            notes.append(f"excluded {int(no_truth.sum())} of {n_gal} rows without a finite truth (rows "
                         f"{_head(np.flatnonzero(no_truth))})")
            keep &= ~no_truth
    outside = keep & ((flags & FLAGS["outside_support"]) != 0)
    if outside.any():
        notes.append(f"kept {int(outside.sum())} rows flagged outside_support (samples drawn; use with care)")
    return np.flatnonzero(keep), notes


def _head(rows: np.ndarray, n: int = 10) -> str:
    return f"{rows[:n].tolist()}{' ...' if rows.size > n else ''}"


def write_samples_file(path: str | os.PathLike, samples, truth=None, param_names=None, *,
                       sample_axis: int = 0) -> Path:
    """Write a sample file atomically.

    Args:
        path: output HDF5 path.
        samples: draws, ``(n_draw, n_gal, n_param)`` along ``sample_axis`` (stored galaxy-major).
        truth: optional ``(n_gal, n_param)``.
        param_names: optional ``n_param`` names.
        sample_axis: axis of ``samples`` that indexes draws.
    """
    import h5py

    from ._checks import as_samples, as_truth

    draws = as_samples(samples, "samples", sample_axis=sample_axis, min_draws=1)
    _, n_gal, n_param = draws.shape
    path = Path(path)
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as fh:
            fh.create_dataset("samples", data=np.moveaxis(draws, 0, 1))
            if truth is not None:
                fh.create_dataset("truth", data=as_truth(truth, n_gal, n_param))
            if param_names is not None:
                names = [str(n) for n in param_names]
                if len(names) != n_param:
                    raise ValueError(f"param_names has {len(names)} names for n_param={n_param}.")
                fh.attrs["param_names"] = names
    return path
