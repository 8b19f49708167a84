"""One galaxy's chains spread over the local devices (``pmap``), and the compiled runners per kind.

:class:`CompiledRuns` holds the compiled programs (one per config and kind); a caller that runs many
galaxies holds one and passes it to :func:`~sedflow_jax.mcmc.run_nuts` /
:func:`~sedflow_jax.mcmc.run_nuts_batch`, so the program compiles once.
"""

from __future__ import annotations

import dataclasses
import warnings

import jax
import jax.random as jr

from .config import NUTSConfig
from .kernel import make_extend, make_run_one
from .starts import make_init

__all__ = ["CompiledRuns", "chain_devices", "KINDS"]

#: jit: one galaxy; vmap: a batch of galaxies on one device; pmap: one galaxy per device;
#: chains_pmap: one galaxy's chains over the devices; extend / extend_pmap: continue a run
KINDS = ("jit", "vmap", "pmap", "chains_pmap", "extend", "extend_pmap")


def chain_devices(cfg: NUTSConfig) -> int:
    """Number of local devices one galaxy's chains are spread over (1: all on one device): the most, up to one
    device per chain, that divides the chain count (4 chains: 4 devices of 8, 2 of 2 or 3)."""
    if cfg.chain_method != "vectorized":
        return 1
    n_dev = min(jax.local_device_count(), cfg.num_chains)
    return max(d for d in range(1, n_dev + 1) if cfg.num_chains % d == 0)


def _merged(out: dict) -> dict:
    """(devices, chains per device, ...) outputs of a chain-split ``pmap`` -> (chains, ...); the state stays split."""
    return {k: (v if k == "state" else v[0] if k == "t_cut" else v.reshape((-1,) + v.shape[2:])) for k, v in out.items()}


def _merge_devices(pmapped, n_dev: int):
    """Wrap a chain-split ``pmap`` of extend: one key per device in, chains merged out."""

    def fn(key, *args):
        return _merged(pmapped(jr.split(key, n_dev), *args))

    return fn


def _per_device(cfg: NUTSConfig, n_dev: int) -> NUTSConfig:
    """The config each of ``n_dev`` devices runs: its share of the chains."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # num_chains may drop below 2 per device
        return dataclasses.replace(cfg, num_chains=cfg.num_chains // n_dev)


def _split_run(cfg: NUTSConfig, n_dev: int):
    """run_one with a galaxy's chains split over ``n_dev`` devices. The ``'optimize'`` starts are searched
    once for all chains (one device, :func:`~sedflow_jax.mcmc.starts.make_init`) and then sharded, so the
    starts do not depend on the number of devices."""
    sub = _per_device(cfg, n_dev)
    devices = jax.local_devices()[:n_dev]
    if cfg.init != "optimize":
        return _merge_devices(jax.pmap(make_run_one(sub), in_axes=(0, None, None, None, None, None), devices=devices),
                              n_dev)
    init_fn = jax.jit(make_init(cfg))
    pmapped = jax.pmap(make_run_one(sub), in_axes=(0, None, None, None, None, None, 0), devices=devices)

    def fn(key, *args):
        init = jax.tree.map(lambda a: a.reshape((n_dev, -1) + a.shape[1:]), init_fn(key, *args))
        return _merged(pmapped(jr.split(key, n_dev), *args, init))

    return fn


def _build(cfg: NUTSConfig, kind: str):
    if kind == "jit":
        return jax.jit(make_run_one(cfg))
    if kind == "vmap":
        return jax.jit(jax.vmap(make_run_one(cfg), in_axes=(0, 0, 0, 0, None, None)))
    if kind == "pmap":
        return jax.pmap(make_run_one(cfg), in_axes=(0, 0, 0, 0, None, None))
    if kind == "extend":
        return jax.jit(make_extend(cfg))
    n_dev = chain_devices(cfg)
    if kind == "chains_pmap":
        return _split_run(cfg, n_dev)
    if kind == "extend_pmap":
        return _merge_devices(jax.pmap(make_extend(_per_device(cfg, n_dev)), in_axes=(0, 0, None, None, None, None, None),
                                       devices=jax.local_devices()[:n_dev]), n_dev)
    raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")


class CompiledRuns:
    """The compiled runners of NUTS, one per (config, kind), built on first use and kept.

    Hold one across calls of :func:`~sedflow_jax.mcmc.run_nuts` (``cache=``) to compile once for all
    galaxies of the same shapes; :func:`~sedflow_jax.mcmc.run_nuts_batch` makes one per call unless given
    one. Configs that differ only in the host-side settings (convergence criteria, extension count) share
    a runner (:meth:`NUTSConfig.compile_key`).
    """

    def __init__(self):
        self._fns: dict = {}

    def get(self, cfg: NUTSConfig, kind: str = "jit"):
        """The runner of ``kind`` (see :data:`KINDS`) for ``cfg``."""
        key = (cfg.compile_key(), kind)
        if key not in self._fns:
            self._fns[key] = _build(cfg, kind)
        return self._fns[key]

    def __len__(self) -> int:
        return len(self._fns)

    def kinds(self) -> list[tuple[NUTSConfig, str]]:
        """The (config, kind) pairs built so far."""
        return list(self._fns)

    def runners(self) -> list:
        """The runners built so far (jitted functions, or wrappers of a ``pmap``)."""
        return list(self._fns.values())
