"""Host drivers: input checks, the fixed-redshift models, the compiled run, extensions, results.

* :func:`run_nuts`: one galaxy;
* :func:`run_nuts_batch`: a catalogue, one compiled program for all galaxies (or ``vmap`` over
  galaxies, or ``pmap`` over devices when there are several), yielding one result per galaxy.

Both take ``cache=``, a :class:`~sedflow_jax.mcmc.devices.CompiledRuns` to reuse compiled programs
across calls (a new one per call when omitted).
"""

from __future__ import annotations

import time
from typing import Iterator

import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np

from ..photometry import check_photometry
from .config import NUTSConfig
from .devices import CompiledRuns, chain_devices
from .diagnostics import diagnose
from .kernel import DRAW_KEYS
from .result import NUTSResult, finish
from .starts import extension_key
from ..keys import check_key

__all__ = ["run_nuts", "run_nuts_batch", "fixed_redshift_models", "extend_until_converged", "extension_keys"]




def _default_model(redshift_max: float, filters="sdss2010-ugriz"):
    from ..model import ProvabgsModel

    return ProvabgsModel.build(filters=filters, z_max=max(0.2, float(redshift_max)))


def fixed_redshift_models(model, redshift) -> list:
    """One :class:`~sedflow_jax.model.fixed_redshift.FixedRedshiftModel` per redshift (same shapes)."""
    from ..model.fixed_redshift import FixedRedshiftModel

    return [FixedRedshiftModel.from_model(model, float(z)) for z in np.atleast_1d(redshift)]


def extension_keys(key, n: int):
    """The keys of the ``n`` extension blocks of the run with key ``key``: one split of
    :func:`~sedflow_jax.mcmc.starts.extension_key`, a key no part of the first block uses."""
    return jr.split(extension_key(key), max(n, 1))


def extend_until_converged(cfg: NUTSConfig, raw: dict, key, flux_model, flux_obs, ivar, low, high,
                           split: bool = False, cache: CompiledRuns | None = None) -> dict:
    """Continue the chains in blocks of ``num_samples`` while R-hat or ESS fail (``max_extensions``).

    ``key``: the run's key (the blocks use :func:`extension_keys`); ``split``: ``raw`` came from the
    chain-split ``pmap`` (state stacked per device).
    """
    raw = dict(raw)
    raw["n_blocks"] = 1
    keys = None
    for b in range(cfg.max_extensions):
        d = diagnose(np.asarray(raw["theta_flow"]), np.asarray(raw["diverging"]), cfg, np.asarray(raw["burst_on"]))
        if d["rhat_ok"] and d["ess_ok"]:
            raw["diag"] = d  # of the final draws: finish need not compute it again
            break
        if keys is None:
            keys = extension_keys(key, cfg.max_extensions)
            cache = CompiledRuns() if cache is None else cache
        more = cache.get(cfg, "extend_pmap" if split else "extend")(keys[b], raw["state"], flux_model, flux_obs,
                                                                     ivar, low, high)
        for k in DRAW_KEYS:
            raw[k] = jnp.concatenate([raw[k], more[k]], axis=1)
        raw["state"] = more["state"]
        raw["n_blocks"] += 1
    return raw


def _prepare(flux_obs, ivar, redshift, model, prior):
    from ..priors.sedflow import sedflow_prior

    z = np.atleast_1d(np.asarray(redshift, np.float64))
    if model is None:
        if not np.all(np.isfinite(z)):
            raise ValueError("redshift must be finite")
        model = _default_model(float(np.max(z)))
    f, w = check_photometry(flux_obs, ivar, model.n_band)
    if f.ndim == 1:
        f, w = f[None], w[None]
    if z.shape != (f.shape[0],):
        raise ValueError(f"redshift must have shape ({f.shape[0]},) to match the fluxes, got {z.shape}")
    bad = ~np.isfinite(z) | (z < 0) | (z > model.z_max)
    if bad.any():
        raise ValueError(f"redshift outside [0, {model.z_max}] (the model's z_max) in row(s) {np.flatnonzero(bad)[:10].tolist()}")
    prior = sedflow_prior(dtype=model.dtype) if prior is None else prior
    return f, w, z, model, prior


def run_nuts(key, flux_obs_nmgy, ivar, redshift: float, *, model=None, prior=None, config: NUTSConfig | None = None,
             galaxy_id="0", truth=None, require_converged: bool = False, cache: CompiledRuns | None = None) -> NUTSResult:
    """NUTS posterior of one galaxy's 12 SED parameters given its photometry.

    Args:
        key: typed PRNG key (``jax.random.key(seed)``).
        flux_obs_nmgy: ``(n_band,)`` observed fluxes in nanomaggies.
        ivar: ``(n_band,)`` inverse variances (nmgy^-2); 0 drops a band.
        redshift: the galaxy's (spectroscopic) redshift, held fixed.
        model: a :class:`~sedflow_jax.model.ProvabgsModel` (default: BC03, SDSS ugriz, z_max >= z).
        prior: :class:`~sedflow_jax.priors.SEDflowPrior` (default: SEDflow's box).
        config: :class:`NUTSConfig`.
        galaxy_id: label stored with the result.
        truth: optional true 12-D theta, stored in the attributes (simulations).
        require_converged: raise :class:`NotConvergedError` instead of warning.
        cache: :class:`~sedflow_jax.mcmc.devices.CompiledRuns` holding the compiled programs; pass the
            same one for every galaxy to compile once (default: a new one, compiled in this call).

    Returns:
        :class:`NUTSResult`; ``result.converged`` is False (and a :class:`NotConvergedWarning` is
        issued) when any criterion of ``config`` fails.
    """
    check_key(key)
    cfg = config or NUTSConfig()
    cache = CompiledRuns() if cache is None else cache
    f, w, z, model, prior = _prepare(flux_obs_nmgy, ivar, redshift, model, prior)
    if f.shape[0] != 1:
        raise ValueError("run_nuts fits one galaxy; use run_nuts_batch for several")
    fm = fixed_redshift_models(model, z)[0]
    dt = model.dtype
    split = chain_devices(cfg) > 1
    t0 = time.perf_counter()
    fa, wa = jnp.asarray(f[0], dt), jnp.asarray(w[0], dt)
    raw = cache.get(cfg, "chains_pmap" if split else "jit")(key, fm, fa, wa, prior.low, prior.high)
    raw = extend_until_converged(cfg, raw, key, fm, fa, wa, prior.low, prior.high, split=split, cache=cache)
    raw = jax.block_until_ready(raw)
    wall = time.perf_counter() - t0
    return finish(raw, cfg, flux_obs=f[0], ivar=w[0], redshift=z[0], galaxy_id=galaxy_id,
                  filters=model.filters.names, wall_s=wall, require_converged=require_converged, truth=truth)


def _run_group(cache, cfg, kind, keys, fms, fa, wa, prior):
    """First blocks of a group of galaxies (padded to the group size): one result dict per galaxy."""
    if kind in ("jit", "chains_pmap"):
        return [cache.get(cfg, kind)(keys[0], fms[0], fa[0], wa[0], prior.low, prior.high)]
    stacked = jax.tree.map(lambda *a: jnp.stack(a), *fms)
    out = cache.get(cfg, kind)(keys, stacked, fa, wa, prior.low, prior.high)
    return [jax.tree.map(lambda a, j=j: a[j], out) for j in range(len(fms))]


def run_nuts_batch(key, flux_obs_nmgy, ivar, redshift, *, model=None, prior=None, config: NUTSConfig | None = None,
                   galaxy_ids=None, truth=None, strategy: str = "loop", batch_size: int = 4,
                   require_converged: bool = False, progress: bool = True,
                   cache: CompiledRuns | None = None, key_index=None) -> Iterator[tuple[int, NUTSResult]]:
    """NUTS for many galaxies; yields ``(row, NUTSResult)`` in row order.

    Galaxy ``i`` uses ``jax.random.fold_in(key, key_index[i])`` (default ``key_index[i] = i``; e.g. catalogue
    rows, so a galaxy's result does not depend on which others are run with it), so results do not depend on
    the strategy's grouping. Strategies: ``'loop'`` (one ``jax.jit(run_one)`` compile reused for every galaxy;
    with several local devices, galaxies are spread over them with ``pmap``, ``n_device`` at a
    time) or ``'vmap'`` (``jit(vmap(run_one))`` over ``batch_size`` galaxies; a vmapped NUTS
    advances at the pace of the slowest trajectory, see ``docs/nuts.md`` for timings).
    Non-converged galaxies are yielded with ``converged=False`` and a warning. ``cache``: as for
    :func:`run_nuts` (default: one for this call, so all its galaxies share one compile).
    """
    check_key(key)
    if strategy not in ("loop", "vmap"):
        raise ValueError(f"strategy must be 'loop' or 'vmap', got {strategy!r}")
    cfg = config or NUTSConfig()
    cache = CompiledRuns() if cache is None else cache
    f, w, z, model, prior = _prepare(flux_obs_nmgy, ivar, redshift, model, prior)
    n = f.shape[0]
    key_index = np.arange(n) if key_index is None else np.asarray(key_index)
    if key_index.shape != (n,):
        raise ValueError(f"key_index must hold {n} integers, got shape {key_index.shape}")
    ids = [str(i) for i in range(n)] if galaxy_ids is None else [str(g) for g in galaxy_ids]
    if len(ids) != n:
        raise ValueError(f"{len(ids)} galaxy_ids for {n} galaxies")
    truth = None if truth is None else np.asarray(truth)
    dt = model.dtype
    n_dev = jax.local_device_count()
    split = chain_devices(cfg) > 1
    group = batch_size if strategy == "vmap" else (n_dev if (n_dev > 1 and not split) else 1)
    kind = "vmap" if strategy == "vmap" else ("chains_pmap" if split else "pmap" if n_dev > 1 else "jit")

    from tqdm.auto import tqdm

    bar = tqdm(total=n, desc="NUTS", unit="gal", disable=not progress)
    try:
        for start in range(0, n, group):
            rows = list(range(start, min(start + group, n)))
            pad = rows + [rows[-1]] * (group - len(rows))  # fixed shape: pad with the last row
            fms = fixed_redshift_models(model, z[pad])
            keys = jnp.stack([jr.fold_in(key, int(key_index[i])) for i in pad])
            fa, wa = jnp.asarray(f[pad], dt), jnp.asarray(w[pad], dt)
            t0 = time.perf_counter()
            raws = jax.block_until_ready(_run_group(cache, cfg, kind, keys, fms, fa, wa, prior))
            wall0 = (time.perf_counter() - t0) / len(rows)
            for j, i in enumerate(rows):
                t1 = time.perf_counter()
                raw = jax.block_until_ready(
                    extend_until_converged(cfg, raws[j], keys[j], fms[j], fa[j], wa[j], prior.low, prior.high,
                                           split=kind == "chains_pmap", cache=cache))
                wall = wall0 + time.perf_counter() - t1
                res = finish(raw, cfg, flux_obs=f[i], ivar=w[i], redshift=z[i], galaxy_id=ids[i],
                             filters=model.filters.names, wall_s=wall, require_converged=require_converged,
                             truth=None if truth is None else truth[i])
                bar.update(1)
                bar.set_postfix(converged=res.converged, s=f"{wall:.1f}")
                yield i, res
    finally:
        bar.close()
