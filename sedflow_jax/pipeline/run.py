"""Whole-catalogue inference: a :class:`~sedflow_jax.io.catalog.Catalogue` -> one posterior file, one row per row."""

from __future__ import annotations

import json
import os
import time

import h5py
import numpy as np

from ..flags import FLAGS, INVALID_MASK
from ..io import atomic_path
from ..io.catalog import Catalogue
from ..photometry import Photometry, XLayout
from .config import InferConfig
from .layout import PosteriorFileWriter, RowResults
from .steps import FlowSink, fallback_step, flow_step, importance_step, support_step

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


def infer_catalog(posterior, catalogue: Catalogue, out: str | os.PathLike, config: InferConfig = InferConfig(), *,
                  extra: dict | None = None) -> dict:
    """Sample every valid row of ``catalogue``, write ``out`` atomically (:mod:`.layout`), return a summary dict.

    Steps (:mod:`.steps`): support flags -> flow samples and summaries (plus derived properties and the
    fallback's chi-square check as configured) -> ANPE-IS -> NUTS fallback -> the rest of the file.

    Args:
        posterior: trained :class:`~sedflow_jax.anpe.Posterior`.
        catalogue: from :func:`~sedflow_jax.io.catalog.read_catalogue` (or :func:`catalogue_from_x`).
        out: the posterior file to write.
        config: :class:`InferConfig`.
        extra: optional dict of 1-D arrays (e.g. true parameters) copied under ``/input``.

    Returns:
        counts (n_rows, n_inferred, n_invalid, n_outside_support, n_fallback_triggered, n_refit, n_nuts,
        n_importance_reliable), timings (seconds, seconds_anpe) and the per-row arrays median, p16, p84, flags,
        method, fallback_trigger, fallback_status, chi2_best, is_ess, is_pareto_k, is_status.
    """
    from tqdm.auto import tqdm

    x = np.asarray(catalogue.x, np.float32)
    flags, score = support_step(posterior, x, catalogue.flags)
    valid = (flags & INVALID_MASK) == 0
    vidx = np.flatnonzero(valid)
    res = RowResults.empty(x, flags, score, valid, properties=config.properties)
    model = _model_for(posterior, config)
    n_is = n_refit = n_nuts = 0
    t0 = time.perf_counter()
    with atomic_path(out) as tmp, h5py.File(tmp, "w") as fh:
        writer = PosteriorFileWriter(fh, x.shape[0], config.n_samples, write_samples=config.write_samples)
        bar = tqdm(total=vidx.size, unit="gal", disable=not config.progress, desc="posteriors")
        flow_step(posterior, vidx, x, FlowSink(vidx, x, catalogue.photometry, model, config, res, writer, bar), config)
        bar.close()
        seconds_anpe = time.perf_counter() - t0
        if config.importance:
            n_is = importance_step(posterior, model, x, catalogue.photometry, res, writer, config)
        if config.fallback is not None:
            n_refit, n_nuts = fallback_step(catalogue.photometry, res, writer, x, model, config, ids=catalogue.ids)
        seconds = time.perf_counter() - t0
        writer.finish(res, attrs=_attrs(posterior, config), ids=catalogue.ids, extra=extra,
                      importance=_importance_attrs(config, n_is), fallback=_fallback_attrs(res, config, n_refit, n_nuts))
    trig = res.fallback_trigger
    return {"n_rows": len(res), "n_inferred": int(vidx.size), "n_invalid": int(len(res) - vidx.size),
            "n_outside_support": int(np.sum((flags & FLAGS["outside_support"]) != 0)), "seconds": seconds,
            "seconds_anpe": seconds_anpe, "median": res.median, "p16": res.p16, "p84": res.p84, "flags": flags,
            "method": res.method, "fallback_trigger": trig, "fallback_status": res.fallback_status,
            "chi2_best": res.chi2_best, "n_fallback_triggered": int(np.sum(trig != "")), "n_refit": n_refit,
            "n_nuts": n_nuts, "n_importance_reliable": n_is, "is_ess": res.is_ess, "is_pareto_k": res.is_pareto_k,
            "is_status": res.is_status}


def _attrs(posterior, config: InferConfig) -> dict:
    return {"n_samples": config.n_samples, "seed": config.seed,
            "support_threshold": float(posterior.support.threshold) if posterior.support else np.nan,
            "model": json.dumps({k: posterior.meta.get(k) for k in ("flow_config", "train_config", "name")}, default=str)}


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
