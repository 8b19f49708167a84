"""One chunk of catalogue inference: the steps of :mod:`.steps` on a block of rows -> one part file.

A chunk's output depends only on its rows and its first catalogue row (every key derives from catalogue row
numbers), so a resumed run, a run of a sub-range (``rows=``) and an uninterrupted run agree chunk by chunk.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from ..flags import FLAGS, INVALID_MASK
from ..io import atomic_path
from ..io.catalog import Catalogue
from .config import InferConfig
from .layout import PosteriorFileWriter, RowResults
from .steps import FlowSink, fallback_step, flow_step, importance_step, support_step

__all__ = ["COUNT_KEYS", "infer_chunk"]

#: Per-chunk counts stored in each file's ``counts`` attribute (summed when files are merged).
COUNT_KEYS = ("n_rows", "n_inferred", "n_invalid", "n_outside_support", "n_importance_reliable",
              "n_fallback_triggered", "n_refit", "n_nuts")


def infer_chunk(posterior, cat: Catalogue, path: Path, row_start: int, model, config: InferConfig, *,
                attrs: dict, extra: dict | None = None, fallback_limit: int | None = None, cache=None,
                bar=None, pad_galaxies: int | None = None) -> dict:
    """Infer the rows of ``cat`` (catalogue rows ``row_start ..``) and write them to ``path`` atomically.

    Args:
        attrs: the run's file attributes (n_samples, seed, support_threshold, model, settings); the row range
            and counts are added here.
        extra: 1-D columns of these rows to copy under ``/input``.
        fallback_limit: refits this chunk may still do (``None``: no limit).
        cache: a :class:`~sedflow_jax.mcmc.CompiledRuns` shared by the run's chunks (fallback).
        bar: a tqdm bar counting rows.
        pad_galaxies: the flow's compiled batch is chosen for this many galaxies (the run's chunk size, or its row
            count when smaller), whatever the chunk's number of valid rows: one compile per run.

    Returns:
        the chunk's counts (:data:`COUNT_KEYS`).
    """
    x = np.asarray(cat.x, np.float32)
    flags, score = support_step(posterior, x, cat.flags)
    valid = (flags & INVALID_MASK) == 0
    vidx = np.flatnonzero(valid)
    res = RowResults.empty(x, flags, score, valid, properties=config.properties)
    n_is = n_refit = n_nuts = 0
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as fh:
        writer = PosteriorFileWriter(fh, len(cat), config.n_samples, write_samples=config.write_samples)
        sink = FlowSink(vidx, x, cat.photometry, model, config, res, writer, bar)
        flow_step(posterior, vidx, x, sink, config, row_offset=row_start, pad_galaxies=pad_galaxies)
        if bar is not None:
            bar.update(len(cat) - vidx.size)
        if config.importance:
            n_is = importance_step(posterior, model, x, cat.photometry, res, writer, config, row_offset=row_start)
        if config.fallback is not None:
            n_refit, n_nuts = fallback_step(cat.photometry, res, writer, x, model, config, ids=cat.ids,
                                            row_offset=row_start, limit=fallback_limit, cache=cache)
        counts = dict(zip(COUNT_KEYS, (len(cat), int(vidx.size), int(len(cat) - vidx.size),
                                       int(np.sum((flags & FLAGS["outside_support"]) != 0)), n_is,
                                       int(np.sum(res.fallback_trigger != "")), n_refit, n_nuts)))
        writer.finish(res, attrs={**attrs, "row_start": row_start, "row_stop": row_start + len(cat), "counts": counts},
                      ids=cat.ids, extra=extra, importance=_importance_attrs(config, n_is),
                      fallback=_fallback_attrs(res, config, n_refit, n_nuts))
    return counts


def _importance_attrs(config: InferConfig, n_reliable: int) -> dict | None:
    if not config.importance:
        return None
    return {"n_proposal": int(config.importance), "n_pilot": int(config.importance_pilot), "n_reliable": n_reliable,
            "criterion": "Pareto k-hat <= 0.7 and ESS >= 400"}


def _fallback_attrs(res: RowResults, config: InferConfig, n_refit: int, n_nuts: int) -> dict | None:
    fb = config.fallback
    if fb is None:
        return None
    return {"chi2_p": fb.chi2_p, "chi2_cut": fb.chi2_cut, "n_check": fb.n_check, "limit": fb.limit,
            "n_triggered": int(np.sum(res.fallback_trigger != "")), "n_refit": n_refit, "n_nuts": n_nuts,
            "error_floor_mag": fb.error_floor_mag}
