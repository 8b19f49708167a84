"""File helpers: atomic writes and the HDF5 training-set format."""

from .atomic import atomic_path, atomic_write_bytes, atomic_write_json, atomic_write_text, partial_path

__all__ = ["atomic_path", "atomic_write_bytes", "atomic_write_json", "atomic_write_text", "partial_path"]
