"""The off-support path of catalogue inference: NUTS for rows the amortised posterior cannot serve.

SEDflow refit its 588 off-support NSA galaxies (1.7%) with MCMC by hand. Here
:func:`~sedflow_jax.pipeline.infer_catalog` does it automatically when its
:class:`~sedflow_jax.pipeline.InferConfig` holds a :class:`FallbackConfig`:

* **trigger**: a valid row (redshift inside the trained range) is refit when it is flagged outside
  the training support (kNN score, ``outside_support``) or when its flow posterior fails the cheap
  check the paper suggests: the best chi-square (:func:`~sedflow_jax.photometry.chi_square`) of its
  observed ugriz fluxes against the model photometry of ``n_check`` posterior draws exceeds the
  ``1 - chi2_p`` quantile of a chi-square with 5 degrees of freedom;
* **refit**: :func:`~sedflow_jax.mcmc.run_nuts_batch` (collapsed sampler) on the row's fluxes and
  inverse variances as the catalogue gave them (:class:`~sedflow_jax.photometry.Photometry`). Every block of draws has bounded work (draws x 2^max_tree_depth leapfrog steps) and the
  number of extensions is capped, so no row stalls;
* **result**: a converged NUTS posterior replaces the row's samples and summaries (``method =
  'nuts'``); otherwise the flow posterior stays and ``fallback_status`` says why NUTS failed.
  ``limit`` caps how many rows are refit (the rest are marked ``'not refit: limit'``).

``error_floor_mag``: magnitude errors added in quadrature to the quoted ones for the check and the
NUTS fits (:meth:`Photometry.with_error_floor`) (not for the flow, which was trained on the quoted errors' noise model). Survey
photometry often quotes errors below its calibration systematics; NSA, which SEDflow used, had a
floor built in (``docs/real_sdss.md``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError
from ..photometry import Photometry, chi_square

__all__ = ["FallbackConfig", "best_chi2", "fallback_nuts_config", "select_rows", "trigger_strings", "refit_rows"]


def fallback_nuts_config(**overrides):
    """The fallback's NUTS settings: the defaults with target_accept 0.95 and up to 7 extensions.

    A fallback row has no other posterior, so the fallback buys robustness with time: target_accept
    0.95 halved the divergences of a hard galaxy at 1.6x the gradients (``docs/nuts.md``), and 7
    extensions of 500 draws per chain give slow-mixing chains twice the draws before a row is declared
    failed. The work per row stays bounded (draws x 2^max_tree_depth leapfrog steps per block).
    """
    from ..mcmc import NUTSConfig

    return NUTSConfig(**{"target_accept_prob": 0.95, "max_extensions": 7, **overrides})


@dataclass(frozen=True)
class FallbackConfig:
    """Settings of the NUTS fallback (see the module docstring).

    Attributes:
        chi2_p: tail probability of the cheap check (chi-square, 5 dof); ``None`` disables it.
        n_check: posterior draws per row evaluated for the check.
        limit: refit at most this many rows (``None``: all).
        seed: PRNG seed of the NUTS runs.
        nuts: a :class:`~sedflow_jax.mcmc.NUTSConfig` (:func:`fallback_nuts_config` when ``None``).
        error_floor_mag: ``None`` or 5 ugriz magnitude errors added in quadrature to the quoted ones
            for the check and the NUTS fits.
    """

    chi2_p: float | None = 1e-3
    n_check: int = 100
    limit: int | None = None
    seed: int = 0
    nuts: object = field(default=None)
    error_floor_mag: tuple | None = None

    def __post_init__(self):
        if self.error_floor_mag is not None:
            fl = np.asarray(self.error_floor_mag, np.float64)
            if fl.shape != (5,) or not np.all(np.isfinite(fl) & (fl >= 0)):
                raise InputError(f"error_floor_mag must be 5 finite values >= 0 (ugriz), got {self.error_floor_mag}")
            object.__setattr__(self, "error_floor_mag", tuple(float(v) for v in fl))

    @property
    def chi2_cut(self) -> float:
        from scipy import stats

        return float("inf") if self.chi2_p is None else float(stats.chi2.isf(self.chi2_p, 5))


def best_chi2(model, samples: np.ndarray, photometry: Photometry, error_floor_mag=None) -> np.ndarray:
    """Smallest chi-square (n,) of the observed fluxes of ``photometry`` (n rows) over each row's posterior
    draws ``samples`` (n, k, 12), with ``error_floor_mag`` in quadrature (:meth:`Photometry.with_error_floor`)."""
    from ..model import photometry_batch

    n, k = samples.shape[:2]
    phot = photometry.with_error_floor(error_floor_mag)
    z = np.repeat(np.asarray(phot.redshift, np.float64), k)
    f_model = photometry_batch(model, samples.reshape(n * k, -1), z).reshape(n, k, -1)
    chi2 = chi_square(f_model, phot.flux_nmgy[:, None], phot.ivar[:, None])
    return np.min(chi2, axis=1)


def trigger_strings(masks: dict[str, np.ndarray]) -> np.ndarray:
    """Per row, the names of the masks that are True, comma-joined in the dict's order ('' if none)."""
    names = list(masks)
    cols = np.stack([np.asarray(masks[n], bool) for n in names], axis=1)
    return np.array([",".join(n for n, m in zip(names, row) if m) for row in cols], dtype=object)


def select_rows(valid: np.ndarray, outside_support: np.ndarray, chi2: np.ndarray, cfg: FallbackConfig):
    """Rows to refit and their trigger strings ('support', 'chi2', 'support,chi2' or '')."""
    chi2_fail = np.isfinite(chi2) & (chi2 > cfg.chi2_cut)
    need = valid & (outside_support | chi2_fail)
    trig = trigger_strings({"support": need & outside_support, "chi2": need & chi2_fail})
    return np.flatnonzero(need), trig


def refit_rows(rows: np.ndarray, photometry: Photometry, n_samples: int, cfg: FallbackConfig, *, ids=None,
               progress=True, model=None, cache=None, row_offset: int = 0):
    """Run NUTS on ``rows`` of ``photometry`` (the catalogue's fluxes and ivar, ``cfg.error_floor_mag`` in
    quadrature); yields ``(row, samples (n_samples, 12) or None, status, diagnostics)``.

    Row ``r`` (catalogue row ``row_offset + r``: a chunk passes its first row) runs NUTS with
    ``fold_in(split(key(cfg.seed))[1], row_offset + r)`` and its draws are picked with ``default_rng([cfg.seed, row_offset
    + r])``, so a galaxy's refit does not depend on the chunk or the other rows refit with it. ``model``
    (default: built for these redshifts) and ``cache`` (:class:`~sedflow_jax.mcmc.CompiledRuns`): held across
    calls, one compile serves them all.

    ``samples`` is a random subset of the NUTS draws (with replacement only if there are fewer
    draws than ``n_samples``) when the run converged, else ``None`` and ``status`` gives the reasons;
    ``diagnostics`` is the run's :attr:`~sedflow_jax.mcmc.NUTSResult.diagnostics`.
    """
    import warnings

    import jax

    from ..mcmc import NotConvergedWarning, run_nuts_batch
    from ..model import ProvabgsModel

    rows = np.asarray(rows)
    if rows.size == 0:
        return
    phot = photometry.rows(rows).with_error_floor(cfg.error_floor_mag)
    flux, ivar, z = (np.asarray(a, np.float64) for a in (phot.flux_nmgy, phot.ivar, phot.redshift))
    model = ProvabgsModel.build(z_max=max(0.2, float(np.max(z)))) if model is None else model
    gid = [str(r) if ids is None else str(ids[r]) for r in rows]
    catalogue_rows = rows.astype(np.int64) + int(row_offset)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotConvergedWarning)
        key = jax.random.split(jax.random.key(cfg.seed))[1]  # [0] is the flow's, key(seed) itself ANPE-IS's
        for j, res in run_nuts_batch(key, flux, ivar, z, model=model,
                                     config=cfg.nuts or fallback_nuts_config(), galaxy_ids=gid, progress=progress,
                                     cache=cache, key_index=catalogue_rows):
            d = res.diagnostics
            if res.converged:
                draws = np.asarray(res.idata.posterior["theta"]).reshape(-1, 12)
                rng = np.random.default_rng([cfg.seed, int(catalogue_rows[j])])
                pick = rng.choice(draws.shape[0], n_samples, replace=draws.shape[0] < n_samples)
                yield int(rows[j]), draws[pick].astype(np.float32), (
                    f"nuts converged in {d['wall_s']:.0f} s (R-hat {d['max_rhat']:.3f}, ESS {d['min_ess_bulk']:.0f})"), d
            else:
                yield int(rows[j]), None, "nuts not converged: " + "; ".join(d["reasons"]), d
