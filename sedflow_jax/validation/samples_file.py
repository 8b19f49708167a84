"""The posterior-sample HDF5 file read by ``sedflow-jax validate``.

Layout (one file per method, e.g. ANPE or NUTS, over the same galaxies)::

    samples      float (n_gal, n_draw, n_param)   posterior draws, galaxy-major
    truth        float (n_gal, n_param)           optional: true parameters (simulated test sets)
    attrs:
      param_names  list of n_param strings        optional; default theta_0, theta_1, ...

On disk the galaxy axis comes first, so one galaxy's draws are contiguous; in memory the
validation functions take ``(n_draw, n_gal, n_param)`` (flowjax order), hence
:func:`read_samples_file` returns ``samples`` with ``sample_axis=1`` already moved to 0 on request.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np

from ..io import atomic_path
from ..io.hdf5 import open_hdf5

__all__ = ["SampleFile", "read_samples_file", "write_samples_file"]


@dataclasses.dataclass(frozen=True)
class SampleFile:
    """Contents of a sample file.

    Attributes:
        samples: ``(n_draw, n_gal, n_param)`` draws (flowjax order, moved from the on-disk layout).
        truth: ``(n_gal, n_param)`` or ``None``.
        param_names: ``n_param`` names.
    """

    samples: np.ndarray
    truth: np.ndarray | None
    param_names: tuple[str, ...]


def read_samples_file(path: str | os.PathLike) -> SampleFile:
    """Read a sample file (see the module docstring); errors name the file and the dataset."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"sample file {path} does not exist.")
    with open_hdf5(path, message="{path} is not a readable HDF5 file: {err}") as fh:
        if "samples" not in fh:
            raise ValueError(f"{path} has no 'samples' dataset (expected (n_gal, n_draw, n_param)).")
        samples = np.asarray(fh["samples"][...], dtype=np.float64)
        if samples.ndim != 3:
            raise ValueError(f"{path}: dataset 'samples' must be (n_gal, n_draw, n_param); got shape {samples.shape}.")
        truth = np.asarray(fh["truth"][...], dtype=np.float64) if "truth" in fh else None
        names = fh.attrs.get("param_names")
    n_gal, _, n_param = samples.shape
    if truth is not None and truth.shape != (n_gal, n_param):
        raise ValueError(f"{path}: dataset 'truth' must be (n_gal, n_param) = {(n_gal, n_param)}; got {truth.shape}.")
    if names is None:
        names = tuple(f"theta_{k}" for k in range(n_param))
    else:
        names = tuple(n.decode() if isinstance(n, bytes) else str(n) for n in np.atleast_1d(names))
        if len(names) != n_param:
            raise ValueError(f"{path}: attribute 'param_names' has {len(names)} names for n_param={n_param}.")
    return SampleFile(samples=np.moveaxis(samples, 1, 0), truth=truth, param_names=names)


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
