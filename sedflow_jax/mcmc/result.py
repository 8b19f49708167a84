"""A galaxy's NUTS result: ArviZ InferenceData, diagnostics and the convergence verdict."""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass
from typing import Any

import jax.numpy as jnp
import numpy as np

from ..params import FLOW_NAMES, THETA_NAMES
from ..priors.sedflow import flow_to_physical
from .config import NotConvergedError, NotConvergedWarning, NUTSConfig
from .diagnostics import diagnose

__all__ = ["NUTSResult", "finish", "to_idata", "SAMPLER_TEXT"]

SAMPLER_TEXT = "numpyro NUTS on collapsed_model (log10 M* and the burst state drawn back per draw)"


@dataclass
class NUTSResult:
    """One galaxy: posterior as InferenceData, diagnostics, and whether it converged."""

    idata: Any
    diagnostics: dict
    converged: bool

    def to_netcdf(self, path) -> None:
        """Write the InferenceData atomically (temporary file beside ``path``, then rename)."""
        from ..io.atomic import atomic_path

        with atomic_path(path) as tmp:
            self.idata.to_netcdf(str(tmp), engine="h5netcdf")


def to_idata(raw: dict, diag: dict, cfg: NUTSConfig, *, flux_obs, ivar, redshift, galaxy_id, filters, wall_s,
             truth=None):
    """InferenceData of a finished run: posterior (theta_flow, theta, burst_on), sample stats, the
    observed fluxes, and the diagnostics and settings as attributes."""
    import arviz as az

    theta_flow = np.asarray(raw["theta_flow"])
    theta = np.asarray(flow_to_physical(jnp.asarray(theta_flow)))
    posterior = {"theta_flow": theta_flow, "theta": theta, "burst_on": np.asarray(raw["burst_on"])}
    sample_stats = {
        "diverging": np.asarray(raw["diverging"]),
        "n_steps": np.asarray(raw["num_steps"]),
        "acceptance_rate": np.asarray(raw["accept_prob"]),
        "lp": -np.asarray(raw["potential_energy"]),
    }
    attrs = {
        "galaxy_id": str(galaxy_id),
        "redshift": float(redshift),
        "converged": int(diag["converged"]),
        "convergence_failures": "; ".join(diag["reasons"]),
        "max_rhat": diag["max_rhat"],
        "min_ess_bulk": diag["min_ess_bulk"],
        "min_ess_tail": diag["min_ess_tail"],
        "n_divergent": diag["n_divergent"],
        "n_gradient_evals": int(diag["n_gradient_evals"]),
        "n_gradient_evals_total": int(diag["n_gradient_evals_total"]),
        "t_cut_gyr": float(raw["t_cut"]),
        "p_burst_on": float(np.mean(raw["burst_on"])),
        "burst_flip_rate": float(diag["burst_flip_rate"]),
        "wall_s": float(wall_s),
        "nuts_config": str(dataclasses.asdict(cfg)),
        "likelihood": "Gaussian in flux (nanomaggies), sigma = ivar^-1/2, bands with ivar = 0 dropped",
        "prior": "SEDflow box, uniform in flow space (theta_flow)",
        "sampler": SAMPLER_TEXT,
    }
    if truth is not None:
        attrs["theta_true"] = np.asarray(truth, np.float64).tolist()
    coords = {"flow_param": list(FLOW_NAMES), "param": list(THETA_NAMES), "band": list(filters)}
    dims = {"theta_flow": ["flow_param"], "theta": ["param"], "flux_obs_nmgy": ["band"], "ivar": ["band"]}
    return az.from_dict(
        posterior=posterior,
        sample_stats=sample_stats,
        observed_data={"flux_obs_nmgy": np.asarray(flux_obs), "ivar": np.asarray(ivar)},
        coords=coords,
        dims=dims,
        attrs=attrs,
    )


def finish(raw, cfg, *, flux_obs, ivar, redshift, galaxy_id, filters, wall_s, require_converged, truth=None):
    """The :class:`NUTSResult` of a run's outputs ``raw``; warns (or raises) when it did not converge."""
    diag = raw.get("diag")
    raw = {k: np.asarray(v) for k, v in raw.items() if k not in ("state", "diag")}
    if diag is None:
        diag = diagnose(raw["theta_flow"], raw["diverging"], cfg, raw["burst_on"])
    diag["n_gradient_evals"] = int(np.sum(raw["num_steps"]))  # sampling phase only
    n_init = cfg.num_chains * (cfg.init_keep * cfg.init_steps + cfg.init_draws) if cfg.init == "optimize" else 0
    # all phases (init search + warm-up + sampling), all chains
    diag["n_gradient_evals_total"] = int(np.sum(raw["num_steps"]) + np.sum(raw["warmup_num_steps"]) + n_init)
    diag["t_cut_gyr"] = float(raw["t_cut"])
    diag["p_burst_on"] = float(np.mean(raw["burst_on"]))
    b = np.asarray(raw["burst_on"])
    diag["burst_flip_rate"] = float(np.mean(b[:, 1:] != b[:, :-1])) if b.shape[1] > 1 else 0.0
    diag["wall_s"] = float(wall_s)
    diag["n_blocks"] = int(raw.get("n_blocks", 1))
    diag["n_draws_per_chain"] = int(raw["theta_flow"].shape[1])
    idata = to_idata(raw, diag, cfg, flux_obs=flux_obs, ivar=ivar, redshift=redshift, galaxy_id=galaxy_id,
                     filters=filters, wall_s=wall_s, truth=truth)
    res = NUTSResult(idata=idata, diagnostics=diag, converged=diag["converged"])
    if not res.converged:
        msg = f"galaxy {galaxy_id}: NUTS did not converge: " + "; ".join(diag["reasons"])
        if require_converged:
            raise NotConvergedError(msg)
        warnings.warn(msg, NotConvergedWarning, stacklevel=3)
    return res
