"""Read and write SSP tables as flat HDF5 files in the DSPS layout.

File layout (DSPS ``load_ssp_templates`` reads the first four keys and ignores the rest):

=================== ======================== ===================================================
dataset             shape                    content
=================== ======================== ===================================================
``ssp_lgmet``       ``(n_met,)``             log10 of the absolute metal mass fraction Z
``ssp_lg_age_gyr``  ``(n_age,)``             log10(age / Gyr)
``ssp_wave``        ``(n_wave,)``            rest-frame wavelength (bin centres), Angstrom
``ssp_flux``        ``(n_met, n_age, n_wave)`` L_nu, Lsun/Hz per Msun formed, float32, gzip 4 + shuffle
``ssp_wave_edges``  ``(n_wave + 1,)``        bin edges, Angstrom (optional)
``ssp_mstar_surv``  ``(n_met, n_age)``       living + remnant mass per Msun formed (optional)
``ssp_mstar_liv``   ``(n_met, n_age)``       living-star mass per Msun formed (optional)
=================== ======================== ===================================================

The table's ``attrs`` are stored as string HDF5 file attributes. The ``path`` entry that
:func:`load_ssp_table` adds is runtime information and is not written back.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from sedflow_jax.errors import InputError
from sedflow_jax.io.hdf5 import open_hdf5
from sedflow_jax.sps.table import SSPTable, validate_ssp_arrays

__all__ = ["DSPS_KEYS", "MSTAR_SURV_MISSING", "load_ssp_table", "save_ssp_table", "ssp_table_info"]

#: The datasets DSPS requires, in order: metallicity, age, wavelength, flux.
DSPS_KEYS = ("ssp_lgmet", "ssp_lg_age_gyr", "ssp_wave", "ssp_flux")
#: ``attrs['mstar_surv']`` of a table loaded from a file without ``ssp_mstar_surv``.
MSTAR_SURV_MISSING = "missing: model surviving mass unavailable"
_RUNTIME_ATTRS = ("path",)


def save_ssp_table(table: SSPTable, path: str | os.PathLike) -> Path:
    """Write ``table`` to ``path`` atomically (temporary file in the same directory, then rename).

    The flux is stored as float32 (relative rounding 6e-8, < 1e-6 mag); axes, edges and mass
    fractions as float64. A file written by :func:`save_ssp_table` is readable by
    ``dsps.data_loaders.load_ssp_templates(fn=path)``.

    Args:
        table: the table to store.
        path: destination file; its directory must exist. An existing file is replaced.

    Returns:
        The destination path.
    """
    import h5py

    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        with h5py.File(tmp, "w") as fh:
            fh.create_dataset("ssp_lgmet", data=np.asarray(table.log10_zmet, dtype=np.float64))
            fh.create_dataset("ssp_lg_age_gyr", data=np.asarray(table.log10_age_gyr, dtype=np.float64))
            fh.create_dataset("ssp_wave", data=np.asarray(table.wave_aa, dtype=np.float64))
            flux = np.asarray(table.lnu_lsun_per_hz_per_msun, dtype=np.float32)
            fh.create_dataset(
                "ssp_flux",
                data=flux,
                compression="gzip",
                compression_opts=4,
                shuffle=True,
                chunks=(1,) + flux.shape[1:],
            )
            if table.wave_edges_aa is not None:
                fh.create_dataset("ssp_wave_edges", data=np.asarray(table.wave_edges_aa, dtype=np.float64))
            fh.create_dataset("ssp_mstar_surv", data=np.asarray(table.mstar_surv_frac, dtype=np.float64))
            if table.mstar_liv_frac is not None:
                fh.create_dataset("ssp_mstar_liv", data=np.asarray(table.mstar_liv_frac, dtype=np.float64))
            for key, value in table.attrs.items():
                if key not in _RUNTIME_ATTRS:
                    fh.attrs[str(key)] = str(value)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; a cache file should be world-readable
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path


def _attr_to_str(value) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, np.ndarray):
        return "; ".join(_attr_to_str(v) for v in value.ravel())
    return str(value)


def _read_float(fh, key: str, path: Path, required: bool) -> np.ndarray | None:
    import h5py

    obj = fh.get(key)
    if obj is None:
        if required:
            raise InputError(
                f"{path}: missing dataset '{key}' (a DSPS-format SSP file needs {', '.join(DSPS_KEYS)})"
            )
        return None
    if not isinstance(obj, h5py.Dataset):
        raise InputError(f"{path}: '{key}' is a {type(obj).__name__}, expected a numeric dataset")
    try:
        return np.asarray(obj[()], dtype=np.float64)
    except (TypeError, ValueError, OSError) as err:
        raise InputError(f"{path}: dataset '{key}' cannot be read as float64 ({err})") from err


def load_ssp_table(path: str | os.PathLike) -> SSPTable:
    """Read an SSP table written by :func:`save_ssp_table` or any DSPS-format HDF5 file.

    Only the four DSPS datasets are required. Missing optional datasets:

    * ``ssp_wave_edges``, ``ssp_mstar_liv``: set to None.
    * ``ssp_mstar_surv``: DSPS files do not carry it. It is filled with ones (surviving mass =
      mass formed), ``attrs['mstar_surv']`` is set to :data:`MSTAR_SURV_MISSING` and a
      ``UserWarning`` is issued. Code that needs surviving masses should check that attribute.

    Args:
        path: HDF5 file.

    Returns:
        The table, float64 arrays; ``attrs`` holds the file attributes as strings plus
        ``attrs['path']``.

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        ValueError: naming the file (and the dataset where one is at fault) when the file is not
            readable HDF5, a required dataset is missing, or shapes, units or monotonic axes are
            wrong (e.g. log10(Z/Zsun) instead of log10 Z, ages in yr instead of Gyr).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: SSP table file not found")
    with open_hdf5(path, error=InputError) as fh:
        lgmet, lgage, wave, flux = (_read_float(fh, k, path, True) for k in DSPS_KEYS)
        edges = _read_float(fh, "ssp_wave_edges", path, False)
        surv = _read_float(fh, "ssp_mstar_surv", path, False)
        liv = _read_float(fh, "ssp_mstar_liv", path, False)
        try:
            attrs = {str(k): _attr_to_str(v) for k, v in fh.attrs.items()}
        except OSError as err:
            raise InputError(f"{path}: cannot read file attributes ({err})") from err
    if surv is None:
        if lgmet.ndim == 1 and lgage.ndim == 1:
            surv = np.ones((lgmet.shape[0], lgage.shape[0]))
        attrs["mstar_surv"] = MSTAR_SURV_MISSING
        warnings.warn(
            f"{path}: no 'ssp_mstar_surv' dataset; surviving mass fraction set to 1 (mass formed)",
            UserWarning,
            stacklevel=2,
        )
    try:
        validate_ssp_arrays(lgmet, lgage, wave, flux, surv, edges, source=str(path))
    except InputError:
        raise
    except ValueError as err:  # the arrays came from the user's file: name it as a user error
        raise InputError(str(err)) from None
    if liv is not None:
        if liv.shape != surv.shape:
            raise InputError(
                f"{path}: 'ssp_mstar_liv' has shape {liv.shape}, expected (n_met, n_age) = {surv.shape}"
            )
        if not np.all(np.isfinite(liv)) or np.any(liv <= 0) or np.any(liv > 1.0 + 1e-6):
            raise InputError(f"{path}: 'ssp_mstar_liv' must lie in (0, 1] (mass per Msun formed)")
    attrs["path"] = str(path)
    return SSPTable(
        log10_zmet=lgmet,
        log10_age_gyr=lgage,
        wave_aa=wave,
        lnu_lsun_per_hz_per_msun=flux,
        mstar_surv_frac=surv,
        wave_edges_aa=edges,
        mstar_liv_frac=liv,
        attrs=attrs,
    )


def _range(x: np.ndarray, fmt: str = ".4g") -> str:
    return f"{np.min(x):{fmt}} .. {np.max(x):{fmt}}"


def ssp_table_info(table: SSPTable) -> str:
    """Human-readable summary of a table: shapes, axis ranges, flux and mass ranges, attributes.

    Args:
        table: the table.

    Returns:
        A multi-line string (no trailing newline).
    """
    attrs: Mapping[str, str] = table.attrs
    zmet = 10.0**table.log10_zmet
    age_yr = 10.0 ** (table.log10_age_gyr + 9.0)
    lines = [
        f"SSP table{' ' + attrs['path'] if 'path' in attrs else ''}",
        f"  shape (n_met, n_age, n_wave) = {table.lnu_lsun_per_hz_per_msun.shape}",
        f"  Z (absolute)   : {table.n_met} values, {_range(zmet)}",
    ]
    if "zsun" in attrs:
        try:
            lines.append(f"  Z / Zsun       : {_range(zmet / float(attrs['zsun']))} (Zsun = {attrs['zsun']})")
        except ValueError:
            pass
    lines += [
        f"  age [yr]       : {table.n_age} values, {_range(age_yr)}",
        f"  wave [A]       : {table.n_wave} values, {_range(table.wave_aa, '.6g')}",
    ]
    if table.wave_edges_aa is not None:
        e = table.wave_edges_aa
        r = np.median(table.wave_aa / np.diff(e))
        lines.append(f"  wave edges [A] : {e[0]:.6g} .. {e[-1]:.6g} (median R = lambda/dlambda = {r:.0f})")
    else:
        lines.append("  wave edges [A] : none (point-sampled table)")
    lnu = table.lnu_lsun_per_hz_per_msun
    lines.append(f"  L_nu [Lsun/Hz/Msun] : {_range(lnu)}, zeros: {int(np.sum(lnu == 0))}")
    lines.append(f"  mstar_surv     : {_range(table.mstar_surv_frac, '.4f')}")
    if table.mstar_liv_frac is not None:
        lines.append(f"  mstar_liv      : {_range(table.mstar_liv_frac, '.4f')}")
    other = {k: v for k, v in attrs.items() if k != "path"}
    if other:
        lines.append("  attributes:")
        width = max(len(k) for k in other)
        for k in sorted(other):
            lines.append(f"    {k:<{width}} : {other[k]}")
    return "\n".join(lines)
