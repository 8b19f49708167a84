"""Training data for the ANPE: chunked reads of the HDF5 training set, split, standardisation."""

from __future__ import annotations

import os

import h5py
import numpy as np

__all__ = ["load_pairs", "split_indices", "x_statistics"]

READ_BLOCK_ROWS = 1 << 18  # rows per HDF5 read (bounded memory while filtering)


def load_pairs(path: str | os.PathLike, *, max_rows: int | None = None, block: int = READ_BLOCK_ROWS
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Read the valid (flags == 0) rows of a training set in blocks.

    Args:
        path: HDF5 training set written by ``sedflow-jax simulate``.
        max_rows: stop after this many *valid* rows (in file order).
        block: rows per read.

    Returns:
        ``(theta_flow (n, 11), x (n, 11), row_index (n,))`` float32 / int64.
    """
    from ..simulate import check_training_set

    check_training_set(path)
    us, xs, idx = [], [], []
    n_kept = 0
    with h5py.File(path, "r") as fh:
        n = int(fh.attrs["n_rows"])
        for s in range(0, n, block):
            flags = fh["flags"][s : s + block]
            keep = np.flatnonzero(flags == 0)
            if keep.size == 0:
                continue
            us.append(fh["theta_flow"][s : s + block][keep])
            xs.append(fh["x"][s : s + block][keep])
            idx.append(keep + s)
            n_kept += keep.size
            if max_rows is not None and n_kept >= max_rows:
                break
    u = np.concatenate(us).astype(np.float32)
    x = np.concatenate(xs).astype(np.float32)
    i = np.concatenate(idx).astype(np.int64)
    if max_rows is not None:
        u, x, i = u[:max_rows], x[:max_rows], i[:max_rows]
    return u, x, i


def split_indices(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Fixed random train/validation split of ``n`` rows (validation = ``ceil(val_fraction n)`` rows)."""
    perm = np.random.default_rng([seed, 7919]).permutation(n)
    n_val = int(np.ceil(val_fraction * n))
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def x_statistics(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-dimension mean and standard deviation (float64 accumulation, floor 1e-6)."""
    x64 = np.asarray(x, np.float64)
    return x64.mean(0).astype(np.float32), np.maximum(x64.std(0), 1e-6).astype(np.float32)
