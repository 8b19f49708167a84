"""Whole-catalogue inference, streamed in chunks: a catalogue -> one posterior file, one output row per input row."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import time

import h5py
import numpy as np

from ..errors import InputError
from ..io.catalog import Catalogue, CatalogueReader
from ..io.tables import aligned_ranges
from ..photometry import Photometry, XLayout
from .checkpoint import Checkpoint, check_output_path
from .chunk import COUNT_KEYS, infer_chunk
from .config import InferConfig
from .layout import SCHEMA_VERSION
from .merge import merge_posterior_files

__all__ = ["infer_catalog", "catalogue_from_x"]


def catalogue_from_x(x: np.ndarray, flags=None, ids=None) -> Catalogue:
    """A :class:`Catalogue` of simulated x rows (tests, benchmarks): fluxes and ivar are those x implies
    (:meth:`XLayout.to_flux`, float64). A real catalogue keeps its own (:func:`~sedflow_jax.io.catalog.read_catalogue`)."""
    x = np.asarray(x, np.float32)
    layout = XLayout.of(x)
    x64 = x.astype(np.float64)
    with np.errstate(all="ignore"):
        flux, ivar = layout.to_flux(x64)
    flags = np.zeros(x.shape[0], np.uint8) if flags is None else np.asarray(flags, np.uint8)
    return Catalogue({}, Photometry(flux, ivar, layout.redshift(x64)), x, flags, ids)


def _model_for(posterior, config: InferConfig):
    if not config.needs_model:
        return None
    from ..model import ProvabgsModel

    return ProvabgsModel.build(z_max=float(posterior.redshift_range[1]))


class _MemorySource:
    """An in-memory :class:`Catalogue` read in blocks like a :class:`~sedflow_jax.io.catalog.CatalogueReader`."""

    path = None

    def __init__(self, catalogue: Catalogue, extra: dict | None):
        self.catalogue, self.n_rows = catalogue, len(catalogue)
        self.extra = {k: np.asarray(v) for k, v in (extra or {}).items()}
        for k, v in self.extra.items():
            if v.ndim != 1 or v.shape[0] != self.n_rows:
                raise InputError(f"extra column {k!r} has shape {v.shape}; need ({self.n_rows},)")

    @functools.cached_property
    def _digest(self) -> str:  # the checkpoint's manifest and the file's attribute both need it: hash once
        c, h = self.catalogue, hashlib.sha256()
        for a in (c.x, c.flags, c.photometry.flux_nmgy, c.photometry.ivar, c.photometry.redshift):
            h.update(np.ascontiguousarray(a).tobytes())
        h.update(json.dumps([] if c.ids is None else np.asarray(c.ids).tolist(), default=str).encode())
        for k in sorted(self.extra):
            h.update(k.encode() + np.ascontiguousarray(self.extra[k]).tobytes())
        return h.hexdigest()

    def identity(self) -> dict:
        return {"in_memory_sha256": self._digest}

    def summary(self) -> dict:
        """What the file's ``catalogue`` attribute records (merging refuses parts of different catalogues)."""
        return {"n_rows": self.n_rows, **self.identity()}

    def blocks(self, start, stop, block_rows):
        for a, b in aligned_ranges(start, stop, block_rows):
            yield a, b, self.catalogue.rows(a, b), {k: v[a:b] for k, v in self.extra.items()}


class _FileSource:
    """A :class:`~sedflow_jax.io.catalog.CatalogueReader` whose ``extra`` columns go under ``/input``."""

    def __init__(self, reader: CatalogueReader):
        self.reader, self.path, self.n_rows = reader, reader.path, reader.n_rows

    def identity(self) -> dict:
        return {**self.reader.identity(), **self.summary()}

    def summary(self) -> dict:
        """The catalogue's name, size, rows and column choice: the same for copies of the file on other machines,
        so the parts of a split run merge."""
        return {"name": self.path.name, "size": self.path.stat().st_size, "n_rows": self.n_rows,
                "columns": repr(self.reader.columns), "extra": list(self.reader.extra)}

    def blocks(self, start, stop, block_rows):
        for a, b, cat in self.reader.blocks(start, stop, block_rows):
            yield a, b, cat, {k: cat.table[k] for k in self.reader.extra}


def _row_range(rows, n: int) -> tuple[int, int]:
    start, stop = (0, n) if rows is None else (int(rows[0]), n if rows[1] is None else int(rows[1]))
    if not 0 <= start < stop <= n:
        raise InputError(f"--rows {start}:{stop} is not a non-empty range within the catalogue's {n} rows")
    return start, stop


def _model_digest(posterior) -> str:
    """A digest of everything of the posterior that shapes the output: the flow's arrays, the support model,
    the redshift range."""
    import equinox as eqx
    import jax

    h = hashlib.sha256()
    for leaf in jax.tree_util.tree_leaves(eqx.filter(posterior.flow, eqx.is_array)):
        h.update(np.asarray(leaf).tobytes())
    sup = posterior.support
    if sup is not None:
        for a in (sup.ref, sup.mean, sup.std, sup.k, sup.threshold):
            h.update(np.asarray(a).tobytes())
    h.update(json.dumps(list(map(float, posterior.redshift_range))).encode())
    return h.hexdigest()


def _run_attrs(posterior, config: InferConfig, source) -> dict:
    return {"n_samples": config.n_samples, "seed": config.seed,
            "support_threshold": float(posterior.support.threshold) if posterior.support else np.nan,
            "model": json.loads(json.dumps({k: posterior.meta.get(k) for k in ("flow_config", "train_config", "name")},
                                           default=str)),
            "settings": config.settings(), "catalogue": source.summary()}


def infer_catalog(posterior, catalogue, out: str | os.PathLike, config: InferConfig = InferConfig(), *,
                  extra: dict | None = None, rows: tuple[int, int | None] | None = None, resume: bool = False) -> dict:
    """Infer every valid row of ``catalogue`` chunk by chunk and write the posterior file ``out`` (:mod:`.layout`).

    Each chunk of ``config.chunk_rows`` rows is read, inferred (:func:`~sedflow_jax.pipeline.chunk.infer_chunk`:
    support flags -> flow samples and summaries (plus derived properties and the fallback's chi-square check as
    configured) -> ANPE-IS -> NUTS fallback) and checkpointed as a part file (:mod:`.checkpoint`); then the parts
    are merged into ``out`` atomically. Memory is bounded by a chunk, time is linear in the rows.

    Args:
        posterior: trained :class:`~sedflow_jax.anpe.Posterior`.
        catalogue: a :class:`~sedflow_jax.io.catalog.CatalogueReader` (streamed; its ``extra`` columns are copied
            under ``/input``), or an in-memory :class:`Catalogue` (:func:`~sedflow_jax.io.catalog.read_catalogue`,
            :func:`catalogue_from_x`).
        out: the posterior file to write.
        config: :class:`InferConfig`.
        extra: with an in-memory catalogue, a dict of 1-D arrays (e.g. true parameters) copied under ``/input``.
        rows: ``(start, stop)`` catalogue rows to infer (``stop`` None: to the end); the file holds those rows and
            :func:`~sedflow_jax.pipeline.merge.merge_posterior_files` joins the files of consecutive ranges.
        resume: continue a killed run from its checkpoint (same catalogue, rows and settings).

    Returns:
        the run's counts (:data:`~sedflow_jax.pipeline.chunk.COUNT_KEYS`), ``seconds`` (this call) and ``resumed``
        (chunks taken from the checkpoint). Per-row results are in the file (:func:`read_posterior_file`).
    """
    from tqdm.auto import tqdm

    source = _FileSource(catalogue) if isinstance(catalogue, CatalogueReader) else _MemorySource(catalogue, extra)
    start, stop = _row_range(rows, source.n_rows)
    out = check_output_path(out, inputs=[source.path])
    size = int(config.chunk_rows)
    ckpt = Checkpoint(out, {"schema_version": SCHEMA_VERSION, "input": source.identity(), "rows": [start, stop],
                            "settings": config.settings(), "model": _model_digest(posterior)}, resume=resume)
    model, attrs = _model_for(posterior, config), _run_attrs(posterior, config, source)
    cache = None
    if config.fallback is not None:
        from ..mcmc import CompiledRuns

        cache = CompiledRuns()
    ranges = aligned_ranges(start, stop, size)
    counts = dict.fromkeys(COUNT_KEYS, 0)
    done = [r for r in ranges if ckpt.done(*r) and _add(counts, _part_counts(ckpt.part(*r)))]
    t0 = time.perf_counter()
    first = next((a for a, b in ranges if not ckpt.done(a, b)), stop)
    pad = min(size, stop - start)  # the flow's batch: one compiled shape for every chunk
    with tqdm(total=stop - start, initial=sum(b - a for a, b in done), unit="row", desc="catalogue",
              disable=not config.progress) as bar:
        for a, b, cat, ext in source.blocks(first, stop, size):
            if ckpt.done(a, b):
                continue
            left = None if config.fallback is None or config.fallback.limit is None else \
                max(0, config.fallback.limit - counts["n_refit"])
            _add(counts, infer_chunk(posterior, cat, ckpt.part(a, b), a, model, config, attrs=attrs, extra=ext or None,
                                     fallback_limit=left, cache=cache, bar=bar, pad_galaxies=pad))
    merge_posterior_files(ckpt.parts(), out)
    ckpt.remove()
    return {**counts, "seconds": time.perf_counter() - t0, "resumed": len(done)}


def _part_counts(path) -> dict | None:
    """A finished part's counts, or None (and the part removed, to be redone) if it cannot be read: a part a
    crash left empty or damaged."""
    try:
        with h5py.File(path, "r") as fh:
            return json.loads(fh.attrs["counts"])
    except (OSError, KeyError, ValueError):
        path.unlink(missing_ok=True)
        return None


def _add(total: dict, part: dict | None) -> bool:
    if part is None:
        return False
    for k in COUNT_KEYS:
        total[k] += int(part[k])
    return True
