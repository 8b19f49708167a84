"""HDF5 training sets: chunked, compressed, written chunk by chunk, resumable, atomic on completion.

Layout (one row per draw, in row-index order; ``flags == 0`` marks training rows):

    /theta            (n, 12)  float32   physical parameters (THETA_NAMES)
    /theta_flow       (n, 11)  float32   flow-space parameters (FLOW_NAMES)
    /redshift         (n,)     float32
    /flux_nmgy        (n, B)   float32   noiseless fluxes [nanomaggies]
    /flux_obs_nmgy    (n, B)   float32   noisy fluxes f + N(0, sigma)
    /sigma_flux_nmgy  (n, B)   float32   flux uncertainties
    /x                (n, 2B+1) float32  flow conditioning vector (mags, sigma_mags, z)
    /flags            (n,)     uint8     cut bit mask (FLAG_BITS: bits of sedflow_jax.flags.FLAGS)

Root attributes: ``format``, ``format_version``, ``n_rows``, ``n_committed`` (rows known to be on
disk, updated after each flushed chunk), ``complete`` (set only at the very end), ``identity``
(JSON of everything that defines the rows), ``metadata`` (JSON provenance) and, when complete, the
cut counts ``n_valid`` and ``n_flag_<name>``.

Writing goes to ``<out>.partial``; on completion the file is renamed to ``<out>``. ``resume``
reopens the partial file, checks its identity, and continues from ``n_committed``: rows are a pure
function of their index, so re-writing rows after a crash between the data write and the commit
cannot duplicate or change anything. Every dataset carries HDF5's fletcher32 checksum per chunk, so
corruption is detected on read.

Format versions: 2 (today) stores the package-wide flag bits (:data:`sedflow_jax.flags.FLAGS`). Format 1
stored its own bits (:data:`V1_FLAG_BITS`: 1 sigma_nonpositive, 2 nonfinite, 4 flux_obs_nonpositive,
8 outside_mag_range, 16 redshift_outside_model); version-1 files still load, their training rows
(``flags == 0``) are the same rows, and their flags and ``n_flag_<name>`` counts are translated to
today's names and bits when read (:func:`flags_from_format_1`), so bit 16 never means a redshift flag.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import h5py
import jax.random as jr
import numpy as np

from ..errors import InputError
from ..io import partial_path
from ..io.hdf5 import open_hdf5
from .core import FLAG_BITS, SimulationConfig, Simulator, describe_flags, iter_chunks

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "V1_FLAG_BITS",
    "flags_from_format_1",
    "H5_CHUNK_ROWS",
    "TrainingSetError",
    "TrainingSetExistsError",
    "simulate_to_hdf5",
    "check_training_set",
    "load_training_set",
]

FORMAT = "sedflow_jax.training_set"
FORMAT_VERSION = 2
#: Format 1's flag bits: old name -> (old bit, today's name in :data:`sedflow_jax.flags.FLAGS`).
V1_FLAG_BITS = {
    "sigma_nonpositive": (1, "error_nonpositive"),
    "nonfinite": (2, "missing_value"),
    "flux_obs_nonpositive": (4, "flux_nonpositive"),
    "outside_mag_range": (8, "outside_mag_range"),
    "redshift_outside_model": (16, "redshift_outside_range"),
}
_V1_TABLE = np.zeros(256, np.uint8)
for _v in range(256):
    for _old, (_bit, _new) in V1_FLAG_BITS.items():
        if _v & _bit:
            _V1_TABLE[_v] |= FLAG_BITS[_new]


def flags_from_format_1(flags: np.ndarray) -> np.ndarray:
    """A format-1 flags column in today's bits (0 stays 0: the same training rows)."""
    return _V1_TABLE[np.asarray(flags, np.uint8)]
H5_CHUNK_ROWS = 4096  # HDF5 storage chunk (rows); fixed so the layout does not depend on --chunk
_COMPRESSION = {"compression": "lzf", "shuffle": True, "fletcher32": True}


class TrainingSetError(InputError):
    """A training-set file is missing, partial, corrupt or not a training set (a user error: the CLI
    prints it as one line)."""


class TrainingSetExistsError(TrainingSetError, FileExistsError):
    """The output (or a partial run of it) already exists."""


def _columns(n_band: int) -> dict[str, tuple[tuple[int, ...], str]]:
    return {
        "theta": ((12,), "float32"),
        "theta_flow": ((11,), "float32"),
        "redshift": ((), "float32"),
        "flux_nmgy": ((n_band,), "float32"),
        "flux_obs_nmgy": ((n_band,), "float32"),
        "sigma_flux_nmgy": ((n_band,), "float32"),
        "x": ((2 * n_band + 1,), "float32"),
        "flags": ((), "uint8"),
    }


def _identity(meta: dict) -> str:
    keep = {k: meta[k] for k in ("config", "package_version", "model", "prior", "redshift_distribution", "mag_range")}
    keep["noise_model_sha256"] = meta["noise_model"]["sha256"]
    keep["format_version"] = FORMAT_VERSION
    return json.dumps(keep, sort_keys=True, default=str)


def _create(path: Path, meta: dict, n: int, n_band: int) -> h5py.File:
    fh = h5py.File(path, "w")  # default (earliest) superblock: no consistency flag that blocks reopening after a crash
    fh.attrs["format"] = FORMAT
    fh.attrs["format_version"] = FORMAT_VERSION
    fh.attrs["complete"] = False
    fh.attrs["n_rows"] = n
    fh.attrs["n_committed"] = 0
    fh.attrs["identity"] = _identity(meta)
    fh.attrs["metadata"] = json.dumps(meta, default=str)
    for name, (shape, dt) in _columns(n_band).items():
        ds = fh.create_dataset(name, shape=(n, *shape), dtype=dt, chunks=(min(H5_CHUNK_ROWS, n), *shape), **_COMPRESSION)
        if name == "x":
            ds.attrs["columns"] = json.dumps(meta["x_columns"])
        elif name == "theta":
            ds.attrs["columns"] = json.dumps(meta["theta_names"])
        elif name == "theta_flow":
            ds.attrs["columns"] = json.dumps(meta["flow_names"])
        elif name == "flags":
            ds.attrs["bits"] = json.dumps(FLAG_BITS)
    fh.flush()
    return fh


def _open_partial(path: Path, meta: dict) -> h5py.File:
    try:
        fh = h5py.File(path, "r+")
    except OSError as err:
        raise TrainingSetError(f"cannot reopen partial file {path} to resume ({err}); delete it to start over") from None
    if fh.attrs.get("format") != FORMAT:
        fh.close()
        raise TrainingSetError(f"{path} is not a sedflow_jax training set; refusing to resume into it")
    if fh.attrs.get("identity") != _identity(meta):
        fh.close()
        raise TrainingSetError(
            f"{path} was started with different settings (seed, n, bands, model, prior, noise model or "
            "package version); resume needs the same settings, or delete it / pass overwrite to start over"
        )
    return fh


def simulate_to_hdf5(
    sim: Simulator,
    meta: dict,
    out: str | os.PathLike,
    *,
    chunk: int = 16384,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
) -> dict:
    """Simulate ``meta['config']['n']`` rows into ``out`` (HDF5), chunk by chunk.

    Args:
        sim, meta: from :func:`~sedflow_jax.simulate.build_simulator`.
        out: final path; rows go to ``<out>.partial`` until the set is complete.
        chunk: rows per compiled step (any value gives the same file).
        resume: continue an interrupted run from ``<out>.partial``.
        overwrite: replace an existing ``out`` / discard an existing partial file.
        progress: show a tqdm bar (rows/s, ETA).

    Returns:
        Summary: path, n, n_valid, per-flag counts, seconds, rows_per_s (this call).

    Raises:
        FileExistsError: ``out`` exists (or a partial file exists without ``resume``) and not ``overwrite``.
        TrainingSetError: the partial file cannot be resumed.
    """
    from tqdm.auto import tqdm

    out = Path(out)
    part = partial_path(out)
    cfg = SimulationConfig(**{k: (tuple(map(tuple, v)) if k == "mag_range" and v is not None else
                                  tuple(v) if isinstance(v, list) else v) for k, v in meta["config"].items()})
    n = cfg.n
    if out.exists() and not overwrite:
        raise TrainingSetExistsError(f"{out} exists; pass overwrite (--overwrite) to replace it")
    out.parent.mkdir(parents=True, exist_ok=True)
    if part.exists() and resume:
        fh = _open_partial(part, meta)
        start = int(fh.attrs["n_committed"])
    elif part.exists() and not overwrite:
        raise TrainingSetExistsError(f"found {part} from an interrupted run: pass resume (--resume) to continue it, "
                              "or overwrite (--overwrite) to start over")
    else:
        fh = _create(part, meta, n, sim.n_band)
        start = 0
    key = jr.key(cfg.seed)
    t0 = time.perf_counter()
    try:
        bar = tqdm(total=n, initial=start, unit="rows", unit_scale=True, disable=not progress,
                   desc=out.name, smoothing=0.1, mininterval=0.5)
        for r0, rows in iter_chunks(sim, key, start, n, chunk):
            write_chunk(fh, r0, rows)
            m = rows["flags"].shape[0]
            commit_rows(fh, r0 + m)
            bar.update(m)
        bar.close()
        counts = _count_flags(fh["flags"], n)
        for k, v in counts.items():
            fh.attrs[f"n_flag_{k}" if k in FLAG_BITS else k] = v
        fh.attrs["complete"] = True
        fh.flush()
    finally:
        fh.close()
    os.replace(part, out)
    dt = time.perf_counter() - t0
    return {"path": str(out), **counts, "seconds": dt, "rows_per_s": (n - start) / dt if dt > 0 else float("nan")}


def write_chunk(fh, r0: int, rows: dict) -> None:
    """Write one chunk of rows at ``r0`` and flush; rows count only once committed (:func:`commit_rows`)."""
    m = rows["flags"].shape[0]
    for name, arr in rows.items():
        fh[name][r0 : r0 + m] = arr
    fh.flush()


def commit_rows(fh, n_committed: int) -> None:
    """Mark the first ``n_committed`` rows as written (a resumed run continues from there)."""
    fh.attrs["n_committed"] = n_committed
    fh.flush()


def _count_flags(ds, n: int, block: int = 1 << 20) -> dict[str, int]:
    total = {"n": 0, "n_valid": 0, **{k: 0 for k in FLAG_BITS}}
    for s in range(0, n, block):
        c = describe_flags(ds[s : s + block])
        for k in total:
            total[k] += c[k]
    return total


def check_training_set(path: str | os.PathLike, *, verify_data: bool = False) -> dict:
    """Open ``path`` and check it is a complete training set; return its root attributes.

    Args:
        verify_data: also read every dataset, so a corrupt chunk fails its fletcher32 checksum.

    Raises:
        TrainingSetError: with a message saying what is wrong (missing, partial, truncated, corrupt,
            not a training set, inconsistent).
    """
    path = Path(path)
    if not path.exists():
        hint = f" (a partial run exists at {partial_path(path)}: finish it with --resume)" if partial_path(path).exists() else ""
        raise TrainingSetError(f"training set not found: {path}{hint}")
    with open_hdf5(path, error=TrainingSetError,
                   message="{path} is not a readable HDF5 file (truncated or corrupt?): {err}") as fh:
        attrs = dict(fh.attrs)
        if attrs.get("format") != FORMAT:
            raise TrainingSetError(f"{path} is not a sedflow_jax training set (format attribute {attrs.get('format')!r})")
        version = int(attrs.get("format_version", 1))
        if version not in (1, FORMAT_VERSION):
            raise TrainingSetError(f"{path}: training-set format version {version}; this sedflow_jax reads 1 and "
                                   f"{FORMAT_VERSION}")
        n = int(attrs.get("n_rows", -1))
        if not bool(attrs.get("complete", False)) or int(attrs.get("n_committed", -1)) != n:
            raise TrainingSetError(
                f"{path} is a partial training set ({int(attrs.get('n_committed', 0))} of {n} rows committed, "
                "not marked complete): finish it with `sedflow-jax simulate --resume` on the same --out"
            )
        meta = json.loads(attrs["metadata"])
        n_band = len(meta["model"]["filters"])
        for name, (shape, dt) in _columns(n_band).items():
            if name not in fh:
                raise TrainingSetError(f"{path}: dataset {name!r} is missing")
            if fh[name].shape != (n, *shape):
                raise TrainingSetError(f"{path}: dataset {name!r} has shape {fh[name].shape}, expected {(n, *shape)}")
        if verify_data:
            for name in _columns(n_band):
                ds = fh[name]
                try:
                    for s in range(0, n, 1 << 18):
                        ds[s : s + (1 << 18)]
                except OSError as err:
                    raise TrainingSetError(f"{path}: dataset {name!r} is corrupt near row {s} ({err})") from None
            flags = fh["flags"][:]
            if int(np.sum(flags == 0)) != int(attrs["n_valid"]):
                raise TrainingSetError(f"{path}: stored n_valid = {attrs['n_valid']} does not match the flags column")
    attrs["metadata"] = meta
    if version == 1:  # old flag names and bits -> today's
        for old, (_, new) in V1_FLAG_BITS.items():
            if f"n_flag_{old}" in attrs:
                attrs[f"n_flag_{new}"] = attrs.pop(f"n_flag_{old}")
    return attrs


def load_training_set(path: str | os.PathLike, *, valid_only: bool = True, columns=None, rows: slice | None = None) -> dict[str, np.ndarray]:
    """Read a complete training set (checked first) into memory.

    Args:
        valid_only: keep only training rows (flags == 0).
        columns: dataset names to read (default all).
        rows: a slice of rows to read (default all).
    """
    version = int(check_training_set(path).get("format_version", 1))
    columns = tuple(columns) if columns is not None else ("theta", "theta_flow", "redshift", "flux_nmgy",
                                                           "flux_obs_nmgy", "sigma_flux_nmgy", "x", "flags")
    rows = rows or slice(None)
    try:
        with h5py.File(path, "r") as fh:
            flags = fh["flags"][rows]
            keep = flags == 0 if valid_only else slice(None)
            if version == 1:
                flags = flags_from_format_1(flags)
            out = {c: (fh[c][rows][keep] if c != "flags" else flags[keep]) for c in columns}
    except OSError as err:
        raise TrainingSetError(f"{path}: corrupt data ({err})") from None
    return out
