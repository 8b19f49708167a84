"""Convergence diagnostics of a run: rank-normalised split R-hat, bulk and tail ESS, divergences."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ..params import FLOW_NAMES, THETA_NAMES
from ..priors.sedflow import flow_to_physical
from .config import NUTSConfig

__all__ = ["diagnose", "binary_rhat_ess"]


def binary_rhat_ess(s: np.ndarray) -> tuple[float, float]:
    """Split R-hat and bulk ESS of a 0/1 chain array (chains, draws), on the mean (not ranks).

    All draws equal (every chain on one side of the burst cut): R-hat 1 and ESS = the number of
    draws (nothing to mix; the other side has negligible posterior mass as far as the run sees).
    """
    import arviz as az

    s = np.asarray(s, np.float64)
    if np.all(s == s.flat[0]):
        return 1.0, float(s.size)
    return float(az.rhat(s, method="split")), float(az.ess(s, method="mean"))


def diagnose(theta_flow: np.ndarray, diverging: np.ndarray, cfg: NUTSConfig, burst_on: np.ndarray | None = None) -> dict:
    """Split R-hat (rank-normalised), bulk and tail ESS per parameter, divergences, verdict.

    Computed on both the 11 sampled flow coordinates and the 12 physical parameters; the criteria
    apply to all 23 (beta_k are not monotone in single flow coordinates). ``burst_on`` (the burst
    state s drawn with every draw, optional) adds the row ``burst:on`` with the classic split R-hat and ESS of the
    mean of s (rank statistics and tail ESS are meaningless for a binary variable; its tail entry
    repeats the mean ESS). It is reported but not a criterion: s is a function of t_burst
    (t_burst < t_cut), whose rank-normalised R-hat and ESS already measure the mixing between the
    burst-on and burst-off pieces.
    """
    import arviz as az

    theta = np.asarray(flow_to_physical(jnp.asarray(theta_flow, jnp.float64 if jax.config.jax_enable_x64 else None)))
    out: dict[str, Any] = {}
    rows = {}
    for group, arr, names in (("flow", theta_flow, FLOW_NAMES), ("theta", theta, THETA_NAMES)):
        arr = np.asarray(arr, np.float64)
        # a chain stuck at a constant value has undefined R-hat (NaN): count it as failed
        rhat = np.array([float(az.rhat(arr[..., j], method="rank")) for j in range(arr.shape[-1])])
        ess_b = np.array([float(az.ess(arr[..., j], method="bulk")) for j in range(arr.shape[-1])])
        ess_t = np.array([float(az.ess(arr[..., j], method="tail")) for j in range(arr.shape[-1])])
        for j, n in enumerate(names):
            rows[f"{group}:{n}"] = {"rhat": rhat[j], "ess_bulk": ess_b[j], "ess_tail": ess_t[j]}
    if burst_on is not None:
        r, e = binary_rhat_ess(burst_on)
        rows["burst:on"] = {"rhat": r, "ess_bulk": e, "ess_tail": e, "mean": float(np.mean(burst_on))}
    # criteria over the parameters; burst:on is reported only (it is a function of t_burst, whose
    # rank-based R-hat and ESS already measure the mixing between the two pieces)
    crit = {k: r for k, r in rows.items() if k != "burst:on"}
    rhat_all = np.array([r["rhat"] for r in crit.values()])
    essb = np.array([r["ess_bulk"] for r in crit.values()])
    esst = np.array([r["ess_tail"] for r in crit.values()])
    n_div = int(np.sum(diverging))
    nan_to = lambda a, v: np.where(np.isfinite(a), a, v)  # noqa: E731
    out["max_rhat"] = float(np.max(nan_to(rhat_all, np.inf)))
    out["min_ess_bulk"] = float(np.min(nan_to(essb, 0.0)))
    out["min_ess_tail"] = float(np.min(nan_to(esst, 0.0)))
    out["n_divergent"] = n_div
    reasons = []
    if not out["max_rhat"] < cfg.rhat_max:
        worst = max(crit, key=lambda k: nan_to(np.array(crit[k]["rhat"]), np.inf))
        reasons.append(f"R-hat {out['max_rhat']:.4f} >= {cfg.rhat_max} ({worst})")
    if not out["min_ess_bulk"] >= cfg.ess_min:
        worst = min(crit, key=lambda k: nan_to(np.array(crit[k]["ess_bulk"]), 0.0))
        reasons.append(f"bulk ESS {out['min_ess_bulk']:.0f} < {cfg.ess_min:.0f} ({worst})")
    if not out["min_ess_tail"] >= cfg.ess_min:
        worst = min(crit, key=lambda k: nan_to(np.array(crit[k]["ess_tail"]), 0.0))
        reasons.append(f"tail ESS {out['min_ess_tail']:.0f} < {cfg.ess_min:.0f} ({worst})")
    n_trans = int(np.size(diverging))
    out["divergent_fraction"] = n_div / max(n_trans, 1)
    if out["divergent_fraction"] > cfg.max_divergence_fraction:
        reasons.append(f"{n_div} divergent transitions ({100 * out['divergent_fraction']:.2f}% of {n_trans}) "
                       f"> {100 * cfg.max_divergence_fraction:g}%")
    out["rhat_ok"] = bool(out["max_rhat"] < cfg.rhat_max)
    out["ess_ok"] = bool(out["min_ess_bulk"] >= cfg.ess_min and out["min_ess_tail"] >= cfg.ess_min)
    out["converged"] = not reasons
    out["reasons"] = reasons
    out["per_parameter"] = rows
    return out
