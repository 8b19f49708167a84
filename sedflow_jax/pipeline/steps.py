"""The steps of catalogue inference, each a function of arrays with explicit inputs and outputs.

read and flag (:mod:`sedflow_jax.io.catalog`) -> :func:`support_step` -> :func:`flow_step` (samples, summaries,
chi-square check) -> :func:`importance_step` (ANPE-IS where reliable) -> :func:`fallback_step` (NUTS refits) ->
write (:mod:`.layout`). :func:`sedflow_jax.pipeline.infer_catalog` runs them in that order.

The flow's x conditions the flow and gives the redshift of model evaluations; every flux-space step
(chi-square, ANPE-IS, NUTS) uses the catalogue's :class:`~sedflow_jax.photometry.Photometry`.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax.random as jr
import numpy as np

from ..flags import FLAGS, INVALID_MASK
from ..photometry import Photometry, XLayout
from ..params import THETA_NAMES
from .config import InferConfig
from .fallback import best_chi2, refit_rows, select_rows
from .layout import PosteriorFileWriter, RowResults

__all__ = ["summarise", "support_step", "ChunkOutputs", "chunk_outputs", "store_outputs", "FlowSink", "flow_key", "flow_step",
           "replace_row", "importance_step", "fallback_step"]


def summarise(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Median, 16th and 84th percentiles over the sample axis (axis 1), float32."""
    q = np.percentile(samples, [50, 16, 84], axis=1)
    return q[0].astype(np.float32), q[1].astype(np.float32), q[2].astype(np.float32)


def support_step(posterior, x: np.ndarray, flags: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(flags, support_score)``: valid rows scored by the posterior's kNN support model (NaN elsewhere, and
    everywhere without one); rows above its threshold get ``outside_support`` (a new flags array)."""
    flags = np.asarray(flags, np.uint8).copy()
    valid = (flags & INVALID_MASK) == 0
    score = np.full(flags.shape[0], np.nan, np.float32)
    if posterior.support is not None and valid.any():
        score[valid] = posterior.support_score(x[valid])
        flags[valid & (score > posterior.support.threshold)] |= FLAGS["outside_support"]
    return flags, score


@dataclass(frozen=True)
class ChunkOutputs:
    """Per-row outputs of posterior samples of ``m`` rows: summaries ``(m, 12)``, derived-property summaries
    (three ``(m, 5)``, or ``None``) and the best chi-square ``(m,)`` of the fallback's check (or ``None``)."""

    median: np.ndarray
    p16: np.ndarray
    p84: np.ndarray
    derived: tuple | None = None
    chi2_best: np.ndarray | None = None


def chunk_outputs(samples: np.ndarray, x_rows: np.ndarray, photometry_rows: Photometry, model, config: InferConfig,
                  *, check: bool = True) -> ChunkOutputs:
    """Summaries of ``samples (m, S, 12)`` of rows with flow inputs ``x_rows`` and photometry ``photometry_rows``;
    derived properties of the first ``n_properties`` draws with ``config.properties``; the chi-square check of
    the first ``fallback.n_check`` draws when ``check`` and a fallback is configured."""
    med, p16, p84 = summarise(samples)
    derived = chi2 = None
    if check and config.fallback is not None:
        n_check = min(config.fallback.n_check, samples.shape[1])
        chi2 = best_chi2(model, samples[:, :n_check], photometry_rows, config.fallback.error_floor_mag)
    if config.properties:
        from ..model import properties_batch

        k = min(config.n_properties, samples.shape[1])
        theta = samples[:, :k].reshape(-1, len(THETA_NAMES))
        z = np.repeat(XLayout.of(x_rows).redshift(x_rows), k)  # the redshift the flow saw (float32 x)
        derived = summarise(properties_batch(model, theta, z).reshape(samples.shape[0], k, -1))
    return ChunkOutputs(med, p16, p84, derived, chi2)


def store_outputs(res: RowResults, rows, out: ChunkOutputs) -> None:
    """Write ``out`` into the rows ``rows`` of ``res``."""
    res.median[rows], res.p16[rows], res.p84[rows] = out.median, out.p16, out.p84
    if out.derived is not None:
        for dst, src in zip(res.derived, out.derived):
            dst[rows] = src
    if out.chi2_best is not None:
        res.chi2_best[rows] = out.chi2_best


class FlowSink:
    """The flow's per-chunk callback: summaries into ``res``, samples into ``writer``.

    ``rows``: the catalogue rows sampled, in the order given to :meth:`Posterior.sample`.
    """

    def __init__(self, rows, x, photometry: Photometry, model, config: InferConfig, res: RowResults,
                 writer: PosteriorFileWriter, bar=None):
        self.rows, self.x, self.photometry, self.model = rows, x, photometry, model
        self.config, self.res, self.writer, self.bar = config, res, writer, bar

    def __call__(self, start: int, samples: np.ndarray) -> None:
        rows = self.rows[start : start + samples.shape[0]]
        store_outputs(self.res, rows, chunk_outputs(samples, self.x[rows], self.photometry.rows(rows), self.model,
                                                    self.config))
        self.writer.write_samples(rows, samples)
        if self.bar is not None:
            self.bar.update(samples.shape[0])


def flow_key(seed: int):
    """The key of the flow's draws: catalogue row ``r`` uses ``fold_in(flow_key(seed), r)`` (ANPE-IS uses
    ``fold_in(key(seed), r)``, an independent stream)."""
    return jr.split(jr.key(seed))[0]


def flow_step(posterior, rows: np.ndarray, x: np.ndarray, sink: FlowSink, config: InferConfig, *,
              row_offset: int = 0, pad_galaxies: int | None = None) -> None:
    """Sample the flow for the sorted rows ``rows`` of a chunk whose first catalogue row is ``row_offset``
    (catalogue row ``r`` uses ``fold_in(flow_key(config.seed), r)``); every chunk goes to ``sink``.
    ``pad_galaxies`` (:meth:`Posterior.sample`; default ``config.chunk_rows``): the same compiled shape for
    every chunk of a run."""
    if rows.size:
        posterior.sample(flow_key(config.seed), x[rows], config.n_samples, callback=sink,
                         index=np.asarray(rows, np.int64) + int(row_offset),
                         pad_galaxies=config.chunk_rows if pad_galaxies is None else pad_galaxies)


def replace_row(res: RowResults, writer: PosteriorFileWriter, row: int, samples: np.ndarray, method: str, x, model,
                config: InferConfig) -> None:
    """Replace the flow's samples ``(S, 12)`` of ``row`` (ANPE-IS or NUTS): method, summaries, derived, file."""
    res.method[row] = method
    out = chunk_outputs(samples[None], x[row : row + 1], None, model, config, check=False)
    store_outputs(res, [row], out)
    writer.write_row(row, samples)


def importance_step(posterior, model, x, photometry: Photometry, res: RowResults, writer: PosteriorFileWriter,
                    config: InferConfig, *, row_offset: int = 0) -> int:
    """ANPE-IS on every valid row inside the support; reliable rows take the reweighted draws. Fills
    ``res.is_ess``, ``is_pareto_k``, ``is_status``; returns the number of reliable rows. Catalogue row ``r`` (the
    chunk's row ``r - row_offset``) uses ``fold_in(key(config.seed), r)``."""
    from ..anpe.importance import reweight_rows

    valid = (res.flags & INVALID_MASK) == 0
    inside = np.flatnonzero(valid & ((res.flags & FLAGS["outside_support"]) == 0))
    res.is_status[np.flatnonzero(valid)] = "not run: outside support"
    n_reliable = 0
    for r, ir in reweight_rows(posterior, model, x, photometry, inside, n_proposal=int(config.importance),
                               n_samples=config.n_samples, seed=config.seed, progress=config.progress,
                               n_pilot=int(config.importance_pilot), key_index=inside + int(row_offset)):
        res.is_ess[r], res.is_pareto_k[r] = ir.ess, ir.pareto_k
        res.is_status[r] = "reliable" if ir.reliable else "; ".join(ir.reasons)
        if ir.reliable:
            n_reliable += 1
            replace_row(res, writer, r, ir.samples, "anpe_is", x, model, config)
    return n_reliable


def fallback_step(photometry: Photometry, res: RowResults, writer: PosteriorFileWriter, x, model,
                  config: InferConfig, ids=None, *, row_offset: int = 0, limit: int | None = None,
                  cache=None) -> tuple[int, int]:
    """NUTS refits of the valid rows outside the support or failing the chi-square check (at most ``limit``,
    default ``fallback.limit``: what a chunk has left of the run's limit); converged ones replace the row's
    samples. Fills ``res.fallback_trigger`` and ``fallback_status``; returns ``(n_refit, n_converged)``. Each
    refit is keyed by its catalogue row (``row_offset`` + its row here; :func:`~sedflow_jax.pipeline.fallback.refit_rows`);
    ``cache``: a :class:`~sedflow_jax.mcmc.CompiledRuns` shared by the chunks of a run."""
    cfg = config.fallback
    limit = cfg.limit if limit is None else limit
    valid = (res.flags & INVALID_MASK) == 0
    todo, res.fallback_trigger = select_rows(valid, (res.flags & FLAGS["outside_support"]) != 0, res.chi2_best, cfg)
    if limit is not None and todo.size > limit:
        res.fallback_status[todo[limit:]] = "not refit: limit"
        todo = todo[:limit]
    n_refit = n_nuts = 0
    for r, smp, msg, _ in refit_rows(todo, photometry, config.n_samples, cfg, ids=ids, progress=config.progress,
                                     model=model, cache=cache, row_offset=int(row_offset)):
        n_refit += 1
        res.fallback_status[r] = msg
        if smp is not None:
            n_nuts += 1
            replace_row(res, writer, r, smp, "nuts", x, model, config)
    return n_refit, n_nuts
