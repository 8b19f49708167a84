"""Whole-catalogue inference: x + row flags -> samples and summaries in HDF5, one output row per input row.

Output layout (``posteriors.h5``):

    /flags            (n,)          uint8   catalogue flags (io.catalog.ROW_FLAGS; 16 = outside support)
    /flag_reason      (n,)          str     comma-separated flag names ('' = clean)
    /support_score    (n,)          float32 kNN support score (threshold in attrs)
    /x                (n, 11)       float32 (mags, sigma_m, z) as read
    /samples          (n, S, 12)    float32 physical samples (THETA_NAMES), NaN for invalid rows (optional)
    /median, /p16, /p84 (n, 12)     float32 per-parameter summaries (NaN for invalid rows)
    /derived/{median,p16,p84} (n, 5) float32 derived properties (DERIVED_NAMES), with --properties
    /id               (n,)          catalogue id column, when given
    /method           (n,)          str     'anpe', 'anpe_is' (reliable importance reweighting), 'nuts'
                                            (fallback refit) or '' (invalid row)
    /is_ess, /is_pareto_k (n,)      float32 ANPE-IS effective sample size and Pareto k-hat (with --importance)
    /is_status        (n,)          str     'reliable' or why the reweighting was not used (with --importance)
    /fallback_trigger (n,)          str     why the row was sent to NUTS ('support', 'chi2', ...; with a fallback)
    /fallback_status  (n,)          str     outcome of the refit (with a fallback)
    /chi2_best        (n,)          float32 best chi-square of the flow draws (with a fallback)
"""

from __future__ import annotations

import json
import os
import time

import h5py
import jax.random as jr
import numpy as np

from ..io import atomic_path
from ..io.catalog import INVALID_MASK, ROW_FLAGS, flag_reasons
from ..params import DERIVED_NAMES, THETA_NAMES
from .infer import Posterior

__all__ = ["infer_catalog", "summarise"]


def summarise(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Median, 16th and 84th percentiles over the sample axis (axis 1)."""
    q = np.percentile(samples, [50, 16, 84], axis=1)
    return q[0].astype(np.float32), q[1].astype(np.float32), q[2].astype(np.float32)


def infer_catalog(posterior: Posterior, x: np.ndarray, flags: np.ndarray, out: str | os.PathLike, *, seed: int = 0,
                  n_samples: int = 1000, write_samples: bool = True, properties: bool = False,
                  n_properties: int = 100, ids=None, extra: dict | None = None, progress: bool = True,
                  fallback=None, importance: int | None = None, importance_pilot: int = 0) -> dict:
    """Sample every valid row, write ``out`` atomically, return a summary dict.

    Args:
        posterior: trained :class:`Posterior`.
        x, flags: from :func:`sedflow_jax.io.catalog.prepare_x` (one row per catalogue row).
        n_samples: posterior samples per galaxy.
        write_samples: store all samples (n x S x 12 float32) besides the summaries.
        properties: also compute derived properties (surviving M*, SFRs, Z_MW, t_MW) from the first
            ``n_properties`` samples per galaxy (one PROVABGS model evaluation per sample).
        ids: optional id column to copy.
        extra: optional dict of 1-D arrays (e.g. true parameters) copied under ``/input``.
        fallback: a :class:`~sedflow_jax.anpe.fallback.FallbackConfig` to refit rows outside the
            training support or failing the chi-square check with NUTS (:mod:`sedflow_jax.anpe.fallback`).
        importance: proposal draws per galaxy for ANPE-IS (:mod:`sedflow_jax.anpe.importance`) on every
            valid row inside the support: where the reweighting is reliable (Pareto k-hat <= 0.7, ESS >= 400)
            its resampled draws replace the flow's (``method = 'anpe_is'``); elsewhere the flow's stay and
            ``is_status`` says why. Runs before the fallback, which still sees the flow's chi-square.
        importance_pilot: > 0: the adaptive ANPE-IS proposal (two pilot rounds of this many draws move the
            flow's latent onto the weighted draws before the final ``importance`` draws); 0: the flow itself.
    """
    from tqdm.auto import tqdm

    x = np.asarray(x, np.float32)
    flags = np.asarray(flags, np.uint8).copy()
    n = x.shape[0]
    valid = (flags & INVALID_MASK) == 0
    score = np.full(n, np.nan, np.float32)
    if posterior.support is not None and valid.any():
        score[valid] = posterior.support_score(x[valid])
        flags[valid & (score > posterior.support.threshold)] |= ROW_FLAGS["outside_support"]
    vidx = np.flatnonzero(valid)
    med, p16, p84 = (np.full((n, len(THETA_NAMES)), np.nan, np.float32) for _ in range(3))
    dmed, d16, d84 = (np.full((n, len(DERIVED_NAMES)), np.nan, np.float32) for _ in range(3))
    model = None
    chi2 = np.full(n, np.nan, np.float32)
    is_ess, is_k = np.full(n, np.nan, np.float32), np.full(n, np.nan, np.float32)
    is_status = np.full(n, "", dtype=object)
    if properties or fallback is not None or importance:
        from ..model import ProvabgsModel, properties_batch

        model = ProvabgsModel.build(z_max=float(posterior.redshift_range[1]))
    method = np.where(valid, "anpe", "").astype(object)
    trigger = np.full(n, "", dtype=object)
    status = np.full(n, "", dtype=object)
    t0 = time.perf_counter()
    with atomic_path(out) as tmp, h5py.File(tmp, "w") as fh:
        ds = None
        if write_samples:
            ds = fh.create_dataset("samples", shape=(n, n_samples, len(THETA_NAMES)), dtype="float32",
                                   chunks=(max(1, min(n, (1 << 20) // (n_samples * 12))), n_samples, 12), fillvalue=np.nan)
        bar = tqdm(total=vidx.size, unit="gal", disable=not progress, desc="posteriors")

        def write(start, s):
            rows = vidx[start : start + s.shape[0]]
            med[rows], p16[rows], p84[rows] = summarise(s)
            if ds is not None:
                # valid rows are sorted; write contiguous runs
                for a, b in _runs(rows):
                    ds[a : b + 1] = s[np.searchsorted(rows, a) : np.searchsorted(rows, b) + 1]
            if fallback is not None:
                from .fallback import best_chi2

                chi2[rows] = best_chi2(model, s[:, : min(fallback.n_check, s.shape[1])], x[rows], fallback.error_floor_mag)
            if properties:
                k = min(n_properties, s.shape[1])
                th = s[:, :k].reshape(-1, 12)
                zz = np.repeat(x[rows, 10], k)
                props = properties_batch(model, th, zz).reshape(s.shape[0], k, -1)
                props[..., 0] = props[..., 0]  # log10 surviving mass already log
                dmed[rows], d16[rows], d84[rows] = summarise(props)
            bar.update(s.shape[0])

        if vidx.size:
            posterior.sample(jr.key(seed), x[vidx], n_samples, callback=write)
        bar.close()
        seconds_anpe = time.perf_counter() - t0

        def replace_row(r, smp, how):
            method[r] = how
            med[r], p16[r], p84[r] = (a[0] for a in summarise(smp[None]))
            if ds is not None:
                ds[r] = smp
            if properties:
                props = properties_batch(model, smp[:n_properties], np.full(min(n_properties, smp.shape[0]), x[r, 10]))
                dmed[r], d16[r], d84[r] = (a[0] for a in summarise(props[None]))

        n_is = 0
        if importance:
            from .importance import reweight_rows

            inside = np.flatnonzero(valid & ((flags & ROW_FLAGS["outside_support"]) == 0))
            is_status[np.flatnonzero(valid)] = "not run: outside support"
            for r, res in reweight_rows(posterior, model, x, inside, n_proposal=int(importance), n_samples=n_samples,
                                        seed=seed, progress=progress, n_pilot=int(importance_pilot)):
                is_ess[r], is_k[r] = res.ess, res.pareto_k
                is_status[r] = "reliable" if res.reliable else "; ".join(res.reasons)
                if res.reliable:
                    n_is += 1
                    replace_row(r, res.samples, "anpe_is")
        n_refit = n_nuts = 0
        if fallback is not None:
            from .fallback import refit_rows, select_rows

            todo, trigger = select_rows(valid, (flags & ROW_FLAGS["outside_support"]) != 0, chi2, fallback)
            if fallback.limit is not None and todo.size > fallback.limit:
                status[todo[fallback.limit:]] = "not refit: limit"
                todo = todo[: fallback.limit]
            for r, smp, msg, _ in refit_rows(todo, x, n_samples, fallback, ids=ids, progress=progress):
                n_refit += 1
                status[r] = msg
                if smp is None:
                    continue
                n_nuts += 1
                replace_row(r, smp, "nuts")
        seconds = time.perf_counter() - t0
        str_ds = lambda name, arr: fh.create_dataset(name, data=np.array(arr, dtype=h5py.string_dtype()))  # noqa: E731
        str_ds("method", method.tolist())
        if importance:
            fh.create_dataset("is_ess", data=is_ess)
            fh.create_dataset("is_pareto_k", data=is_k)
            str_ds("is_status", is_status.tolist())
            fh.attrs["importance"] = json.dumps({"n_proposal": int(importance), "n_pilot": int(importance_pilot),
                                                 "n_reliable": n_is,
                                                 "criterion": "Pareto k-hat <= 0.7 and ESS >= 400"})
        if fallback is not None:
            str_ds("fallback_trigger", trigger.tolist())
            str_ds("fallback_status", status.tolist())
            fh.create_dataset("chi2_best", data=chi2)
            fh.attrs["fallback"] = json.dumps({"chi2_p": fallback.chi2_p, "chi2_cut": fallback.chi2_cut,
                                               "n_check": fallback.n_check, "limit": fallback.limit,
                                               "n_triggered": int(np.sum(trigger != "")), "n_refit": n_refit,
                                               "n_nuts": n_nuts, "error_floor_mag": fallback.error_floor_mag})
        fh.create_dataset("flags", data=flags)
        fh.create_dataset("flag_reason", data=np.array(flag_reasons(flags), dtype=h5py.string_dtype()))
        fh.create_dataset("support_score", data=score)
        fh.create_dataset("x", data=x)
        for name, arr in (("median", med), ("p16", p16), ("p84", p84)):
            fh.create_dataset(name, data=arr)
        if properties:
            g = fh.create_group("derived")
            for name, arr in (("median", dmed), ("p16", d16), ("p84", d84)):
                g.create_dataset(name, data=arr)
            g.attrs["names"] = json.dumps(list(DERIVED_NAMES))
        if ids is not None:
            ids = np.asarray(ids)
            fh.create_dataset("id", data=ids.astype(h5py.string_dtype()) if ids.dtype.kind in "OUS" else ids)
        if extra:
            g = fh.create_group("input")
            for k, v in extra.items():
                v = np.asarray(v)
                g.create_dataset(k, data=v.astype(h5py.string_dtype()) if v.dtype.kind in "OUS" else v)
        fh.attrs["param_names"] = json.dumps(list(THETA_NAMES))
        fh.attrs["flag_bits"] = json.dumps(ROW_FLAGS)
        fh.attrs["n_samples"] = n_samples
        fh.attrs["seed"] = seed
        fh.attrs["support_threshold"] = float(posterior.support.threshold) if posterior.support else np.nan
        fh.attrs["model"] = json.dumps({k: posterior.meta.get(k) for k in ("flow_config", "train_config", "name")}, default=str)
    return {"n_rows": n, "n_inferred": int(vidx.size), "n_invalid": int(n - vidx.size),
            "n_outside_support": int(np.sum((flags & ROW_FLAGS["outside_support"]) != 0)), "seconds": seconds,
            "seconds_anpe": seconds_anpe, "median": med, "p16": p16, "p84": p84, "flags": flags,
            "method": method, "fallback_trigger": trigger, "fallback_status": status, "chi2_best": chi2,
            "n_fallback_triggered": int(np.sum(trigger != "")), "n_refit": n_refit, "n_nuts": n_nuts,
            "n_importance_reliable": n_is, "is_ess": is_ess, "is_pareto_k": is_k, "is_status": is_status}


def _runs(rows: np.ndarray):
    """Contiguous runs (first, last) in a sorted index array."""
    if rows.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(rows) != 1)
    starts = np.r_[rows[0], rows[breaks + 1]]
    ends = np.r_[rows[breaks], rows[-1]]
    return list(zip(starts.tolist(), ends.tolist()))
