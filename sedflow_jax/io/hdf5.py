"""Opening HDF5 files for reading with errors that name the file."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["open_hdf5"]


def open_hdf5(path: str | os.PathLike, *, error: type[Exception] = ValueError, message: str | None = None):
    """``h5py.File(path, 'r')``; an unreadable file raises ``error`` naming ``path``.

    Args:
        path: the file (its existence is the caller's check: the "missing" message differs per format).
        error: exception type to raise for a file that is not readable HDF5 (truncated, corrupt, text).
        message: the message, formatted with ``path`` and ``err``; default
            ``"{path}: not a readable HDF5 file ({err})"``.
    """
    import h5py

    try:
        return h5py.File(Path(path), "r")
    except OSError as err:
        text = (message or "{path}: not a readable HDF5 file ({err})").format(path=path, err=err)
        raise error(text) from None
