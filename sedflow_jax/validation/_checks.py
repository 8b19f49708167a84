"""Boundary checks shared by the validation metrics (private).

Every public metric calls these first, so that a bad shape or a NaN raises a ``ValueError``
that names the offending argument instead of propagating into a silent wrong answer.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError

__all__: list[str] = []


def as_samples(samples, name: str = "samples", *, sample_axis: int = 0, min_draws: int = 2) -> np.ndarray:
    """Return ``samples`` as float64 ``(n_draw, n_gal, n_param)``, with the draw axis moved first.

    Raises:
        ValueError: not 3-D, an empty axis, fewer than ``min_draws`` draws, or non-finite values.
    """
    arr = np.asarray(samples, dtype=np.float64)
    if arr.ndim != 3:
        raise InputError(f"Expected {name} with 3 dimensions (n_draw, n_gal, n_param) along "
                         f"sample_axis={sample_axis}; got {name}.shape {arr.shape}.")
    if not -3 <= sample_axis < 3:
        raise InputError(f"sample_axis must be in [-3, 2] for 3-D {name}; got {sample_axis}.")
    arr = np.moveaxis(arr, sample_axis, 0)
    if 0 in arr.shape:
        raise InputError(f"{name} has an empty axis: (n_draw, n_gal, n_param) = {arr.shape}.")
    if arr.shape[0] < min_draws:
        raise InputError(f"{name} needs at least {min_draws} draws per galaxy; got n_draw={arr.shape[0]} "
                         f"(did you pass sample_axis correctly?).")
    _check_finite(arr, name)
    return arr


def as_draws(samples, name: str, *, min_draws: int = 2) -> np.ndarray:
    """Return one galaxy's samples as float64 ``(n_draw, n_param)`` (1-D input means one parameter)."""
    arr = np.asarray(samples, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise InputError(f"Expected {name} with shape (n_draw, n_param) for one galaxy; got {name}.shape {arr.shape}.")
    if arr.shape[0] < min_draws or arr.shape[1] == 0:
        raise InputError(f"{name} needs at least {min_draws} draws and one parameter; got {name}.shape {arr.shape}.")
    _check_finite(arr, name)
    return arr


def as_truth(truth, n_gal: int, n_param: int, name: str = "truth") -> np.ndarray:
    """Return ``truth`` as float64 ``(n_gal, n_param)`` matching the samples."""
    arr = np.asarray(truth, dtype=np.float64)
    if arr.shape != (n_gal, n_param):
        raise InputError(f"Expected {name}.shape (n_gal, n_param) = {(n_gal, n_param)} to match the samples; "
                         f"got {name}.shape {arr.shape}.")
    _check_finite(arr, name)
    return arr


def as_ranks(ranks, name: str = "ranks") -> np.ndarray:
    """Return normalised ranks as float64 ``(n_gal, n_param)`` in [0, 1]."""
    arr = np.asarray(ranks, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or 0 in arr.shape:
        raise InputError(f"Expected {name} with shape (n_gal, n_param); got {name}.shape {arr.shape}.")
    _check_finite(arr, name)
    if arr.min() < 0.0 or arr.max() > 1.0:
        raise InputError(f"{name} must be normalised ranks in [0, 1]; got values in "
                         f"[{arr.min():g}, {arr.max():g}].")
    return arr


def as_levels(levels, name: str = "levels") -> np.ndarray:
    """Return credibility levels as float64 ``(n_level,)`` in [0, 1]."""
    arr = np.atleast_1d(np.asarray(levels, dtype=np.float64))
    if arr.ndim != 1 or arr.size == 0:
        raise InputError(f"Expected {name} as a 1-D array of credibility levels; got shape {arr.shape}.")
    if not np.all(np.isfinite(arr)) or arr.min() < 0.0 or arr.max() > 1.0:
        raise InputError(f"{name} must lie in [0, 1]; got {arr}.")
    return arr


def check_positive_int(value, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or int(value) != value or value < minimum:
        raise InputError(f"{name} must be an integer >= {minimum}; got {value!r}.")
    return int(value)


def _check_finite(arr: np.ndarray, name: str) -> None:
    bad = ~np.isfinite(arr)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise InputError(f"{name} contains {int(bad.sum())} non-finite values (NaN/inf), first at index {first}; "
                         f"drop or flag those galaxies before validating.")
