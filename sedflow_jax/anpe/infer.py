"""Amortised posteriors: :class:`Posterior` (load/save, chunked sharded sampling, log_prob).

The compiled step :func:`_sample_chunk` draws ``n`` samples for a fixed-size chunk of galaxies
(``vmap`` over galaxies of the one-galaxy kernel ``ConditionalFlow.sample_one``). Galaxy ``i`` always
uses ``fold_in(key, i)``, so samples do not depend on the chunk size or device count. The last chunk is
padded (with the first galaxy) and the padding discarded. Chunk sizes are powers of two: one galaxy for a
single x, else the number of galaxies rounded up to a power of two, at least :data:`MIN_CHUNK_GALAXIES`
and at most ``samples_per_chunk // n``. So every catalogue of 2 .. MIN_CHUNK_GALAXIES rows reuses one
compile, each sample count compiles at most a handful of shapes, and memory is bounded. With several
local devices each chunk is sharded over them along the galaxy axis.

:meth:`Posterior.log_prob` evaluates in fixed chunks of :data:`LOG_PROB_CHUNK` rows (the last padded),
so inputs of every length reuse one compile.

Dtypes: the flow's parameters decide (float32 for the shipped models). Inputs (``x``, ``u``) are cast to
that dtype and outputs have it, also under ``jax_enable_x64`` and for float64 inputs.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np

from ..io import atomic_path, atomic_write_json
from ..keys import check_key
from ..priors.sedflow import flow_to_physical
from .flow import N_X, ConditionalFlow, FlowConfig, skeleton
from .support import SupportModel

__all__ = ["Posterior", "default_model_dir", "resolve_model_dir", "SHIPPED_MODELS", "SAMPLES_PER_CHUNK",
           "MIN_CHUNK_GALAXIES", "LOG_PROB_CHUNK", "flow_dtype"]

SAMPLES_PER_CHUNK = 1 << 18  # samples per compiled call (bounds memory: ~2^18 x 11 x width floats)
#: Smallest chunk of a multi-galaxy call: small catalogues share one compiled shape (padding up to 32
#: galaxies costs less than a compile); a single x keeps its one-galaxy shape (per-galaxy loops).
MIN_CHUNK_GALAXIES = 32
LOG_PROB_CHUNK = 4096  #: rows per compiled log_prob call
MODEL_FILE, META_FILE, SUPPORT_FILE = "flow.eqx", "model.json", "support.npz"


#: Shipped models by name: ``default`` (trained on the whole prior predictive, any magnitude) and
#: ``sdss`` (the default fine-tuned on SDSS-range photometry, ``docs/anpe.md``).
SHIPPED_MODELS = {"default": "default_flow", "sdss": "sdss_flow"}


def default_model_dir() -> Path:
    """The shipped default model (``sedflow_jax/data/default_flow``)."""
    return resolve_model_dir(None)


def resolve_model_dir(model: str | os.PathLike | None) -> Path:
    """A model directory from a path, a shipped model's name (:data:`SHIPPED_MODELS`) or None (default).
    A directory that holds a saved model wins over a shipped name."""
    data = Path(__file__).resolve().parent.parent / "data"
    if model is None:
        return data / SHIPPED_MODELS["default"]
    d = Path(model)
    if not (d / META_FILE).exists() and str(model) in SHIPPED_MODELS:
        return data / SHIPPED_MODELS[str(model)]
    return d


@eqx.filter_jit
def _sample_chunk(flow: ConditionalFlow, key, index, x, n: int):
    keys = jax.vmap(jr.fold_in, in_axes=(None, 0))(key, index)
    return jax.vmap(flow.sample_one, in_axes=(0, 0, None))(keys, x, n)


@eqx.filter_jit
def _log_prob_chunk(flow: ConditionalFlow, u, x):
    return flow.log_prob(u, x)


def flow_dtype(flow: ConditionalFlow):
    """The dtype of the flow's parameters (inputs are cast to it)."""
    return jnp.result_type(flow.x_mean)


def _chunk_galaxies(n_gal: int, n: int, samples_per_chunk: int, single: bool) -> int:
    if single:
        return 1
    g_max = max(1, samples_per_chunk // int(n))
    g_max = 1 << (g_max.bit_length() - 1)
    return min(g_max, max(MIN_CHUNK_GALAXIES, 1 << max(0, (n_gal - 1).bit_length())))


def _shard(*arrays):
    devs = jax.local_devices()
    if len(devs) == 1:
        return arrays
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    sh = NamedSharding(Mesh(np.array(devs), ("gal",)), PartitionSpec("gal"))
    return tuple(jax.device_put(a, sh) for a in arrays)


class Posterior:
    """A trained amortised posterior q(theta | x) with its support model and metadata.

    Attributes:
        flow: the :class:`~sedflow_jax.anpe.flow.ConditionalFlow`.
        support: :class:`~sedflow_jax.anpe.support.SupportModel` or None.
        meta: JSON metadata (configs, redshift range, training summary, metrics).
    """

    def __init__(self, flow: ConditionalFlow, support: SupportModel | None = None, meta: dict | None = None):
        self.flow, self.support, self.meta = flow, support, dict(meta or {})

    @property
    def redshift_range(self) -> tuple[float, float]:
        return tuple(self.meta.get("redshift_range", (0.0, 0.2)))

    # -- sampling ---------------------------------------------------------------------------------
    def sample(self, key, x, n: int, *, physical: bool = True, samples_per_chunk: int = SAMPLES_PER_CHUNK,
               callback=None, index=None, pad_galaxies: int | None = None) -> np.ndarray | None:
        """Posterior samples for each galaxy.

        Args:
            key: typed JAX key; galaxy ``i`` uses ``fold_in(key, index[i])`` (default ``index[i] = i``).
            x: ``(n_gal, 11)`` or ``(11,)``: (ugriz mags, sigma_m, z). Rows must be valid (see
                :func:`sedflow_jax.io.catalog.prepare_x`); invalid rows give meaningless samples.
            n: samples per galaxy.
            physical: return the 12 physical parameters (``THETA_NAMES``) instead of the 11 flow ones.
            samples_per_chunk: chunk size in samples (galaxies per chunk = this // n, power of two).
            callback: if given, called as ``callback(start, samples_chunk)`` per chunk and nothing is
                returned (bounded memory for large catalogues).
            index: ``(n_gal,)`` non-negative integers < 2**32 naming each galaxy's key (e.g. its catalogue row, so
                a galaxy's draws do not depend on which other rows are sampled with it).
            pad_galaxies: choose the compiled chunk as if there were at least this many galaxies (the rows of a
                catalogue chunk), so calls with fewer galaxies (a chunk with fewer valid rows) reuse its shape.

        Returns:
            ``(n_gal, n, 12|11)`` in the flow's dtype (float32 for shipped models; or ``(n, ...)`` for a
            single x), every sample inside the prior box.
        """
        check_key(key)
        dtype = flow_dtype(self.flow)
        x = np.asarray(x, dtype)
        single = x.ndim == 1
        x = np.atleast_2d(x)
        if x.shape[1:] != (N_X,):
            raise ValueError(f"x must have shape (n_gal, {N_X}) or ({N_X},); got {x.shape}")
        n_gal = x.shape[0]
        if n_gal == 0:
            raise ValueError("x has no rows")
        index = np.arange(n_gal) if index is None else np.asarray(index)
        if index.shape != (n_gal,) or (index.size and (index.min() < 0 or index.max() >= 2**32)):
            raise ValueError(f"index must hold {n_gal} integers in [0, 2**32), got shape {index.shape}")
        index = index.astype(np.uint32)
        n_dev = len(jax.local_devices())
        g = _chunk_galaxies(max(n_gal, int(pad_galaxies or 0)), n, samples_per_chunk, single)
        g = max(n_dev, -(-g // n_dev) * n_dev)
        outs = []
        for s in range(0, n_gal, g):
            m = min(g, n_gal - s)
            xc = np.repeat(x[s : s + 1], g, 0)
            xc[:m] = x[s : s + m]
            idx = np.repeat(index[s : s + 1], g)
            idx[:m] = index[s : s + m]
            xc_d, idx_d = _shard(jnp.asarray(xc), jnp.asarray(idx))
            u = _sample_chunk(self.flow, key, idx_d, xc_d, int(n))
            out = np.asarray(flow_to_physical(u) if physical else u, dtype)[:m]
            if callback is not None:
                callback(s, out)
            else:
                outs.append(out)
        if callback is not None:
            return None
        res = np.concatenate(outs, 0)
        return res[0] if single else res

    def log_prob(self, u, x, *, chunk: int = LOG_PROB_CHUNK) -> np.ndarray:
        """log q(u | x) in flow space (11-D), broadcasting leading dimensions.

        Evaluated in compiled chunks of ``chunk`` rows (the last one padded), so one compile serves
        inputs of every length. Inputs are cast to the flow's dtype.
        """
        dtype = flow_dtype(self.flow)
        u, x = np.broadcast_arrays(np.asarray(u, dtype), np.asarray(x, dtype))
        lead = u.shape[:-1]
        u, x = u.reshape(-1, u.shape[-1]), x.reshape(-1, x.shape[-1])
        n = u.shape[0]
        out = np.empty(n, dtype)
        for s in range(0, n, chunk):
            m = min(chunk, n - s)
            uc, xc = (np.concatenate([a[s : s + m], np.repeat(a[s : s + 1], chunk - m, 0)]) for a in (u, x))
            out[s : s + m] = np.asarray(_log_prob_chunk(self.flow, jnp.asarray(uc), jnp.asarray(xc)))[:m]
        return out.reshape(lead)

    def support_score(self, x) -> np.ndarray:
        if self.support is None:
            return np.full(np.atleast_2d(x).shape[0], np.nan, np.float32)
        return self.support.score(np.atleast_2d(np.asarray(x, np.float32)))

    # -- persistence ------------------------------------------------------------------------------
    def save(self, directory: str | os.PathLike) -> None:
        """Write ``flow.eqx`` (equinox leaves), ``model.json`` (configs + metadata), ``support.npz``."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        with atomic_path(d / MODEL_FILE) as tmp:
            eqx.tree_serialise_leaves(tmp, self.flow)
        if self.support is not None:
            with atomic_path(d / SUPPORT_FILE) as tmp:
                with open(tmp, "wb") as fh:
                    self.support.save(fh)
        meta = dict(self.meta)
        meta["flow_config"] = self.flow.config.to_json()
        meta["x_mean"] = np.asarray(self.flow.x_mean).tolist()
        meta["x_std"] = np.asarray(self.flow.x_std).tolist()
        meta["box_low"] = np.asarray(self.flow.low).tolist()
        meta["box_high"] = np.asarray(self.flow.high).tolist()
        atomic_write_json(d / META_FILE, meta)

    @classmethod
    def load(cls, directory: str | os.PathLike | None = None) -> Posterior:
        """Load a saved posterior from a directory or a shipped model's name (default: ``"default"``)."""
        d = resolve_model_dir(directory)
        if not (d / META_FILE).exists():
            raise FileNotFoundError(f"{d}: no {META_FILE}; not a saved sedflow_jax posterior (shipped models: "
                                    f"{', '.join(SHIPPED_MODELS)})")
        meta = json.loads((d / META_FILE).read_text())
        flow = eqx.tree_deserialise_leaves(d / MODEL_FILE, skeleton(FlowConfig.from_json(meta["flow_config"])))
        support = SupportModel.load(d / SUPPORT_FILE) if (d / SUPPORT_FILE).exists() else None
        return cls(flow, support, meta)
