"""What the NUTS benchmarks share (``nuts_recovery.py``, ``anpe_vs_nuts.py``, ``real_sdss_nuts.py``,
``anpe_importance.py``): the simulated test galaxies, the NUTS options and config, the NUTS cache, and the
ANPE-IS records. Public API of the package only.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

__all__ = ["R_LIMIT", "select_galaxies", "add_nuts_arguments", "add_anpe_is_arguments", "nuts_config_from_args",
           "nuts_signature", "NUTS_DIAGNOSTICS", "cached_nuts", "is_record", "is_summary", "pipeline_records"]

R_LIMIT = 17.77


def select_galaxies(n_gal: int, seed: int):
    """SDSS-like simulated test galaxies with known truth: unflagged, noiseless r < R_LIMIT,
    0.02 < z < 0.2, the first ``n_gal`` of ``50 n_gal`` draws. Returns (rows, indices, simulator)."""
    import jax

    from sedflow_jax.photometry import flux_to_mag
    from sedflow_jax.simulate import SimulationConfig, build_simulator, simulate_arrays

    sim, _ = build_simulator(SimulationConfig(n=50 * n_gal, seed=seed))
    rows = simulate_arrays(jax.random.key(seed), sim, 50 * n_gal)
    r_true = flux_to_mag(rows["flux_nmgy"][:, 2])  # r band (SDSS ugriz)
    zs = rows["redshift"]
    sel = np.flatnonzero((rows["flags"] == 0) & (r_true < R_LIMIT) & (zs > 0.02) & (zs < 0.2))[:n_gal]
    if sel.size < n_gal:
        raise RuntimeError(f"only {sel.size} bright galaxies among {r_true.size} draws")
    return rows, sel, sim


def add_nuts_arguments(p: argparse.ArgumentParser) -> None:
    """Galaxy selection and NUTS settings shared by ``nuts_recovery.py`` and ``anpe_vs_nuts.py``."""
    p.add_argument("--n-gal", type=int, default=20)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--num-warmup", type=int, default=500)
    p.add_argument("--num-samples", type=int, default=500)
    p.add_argument("--num-chains", type=int, default=4)
    p.add_argument("--max-tree-depth", type=int, default=10)
    p.add_argument("--target-accept", type=float, default=0.9)
    p.add_argument("--max-extensions", type=int, default=3)


def add_anpe_is_arguments(p: argparse.ArgumentParser) -> None:
    """The ANPE model, ANPE-IS and NUTS-cache options shared by ``anpe_vs_nuts.py`` and ``real_sdss_nuts.py``."""
    p.add_argument("--model", default=None, help="ANPE model directory or shipped name (default: the shipped default flow)")
    p.add_argument("--is-proposal", type=int, default=131072, help="ANPE-IS proposal draws per galaxy (0: off)")
    p.add_argument("--is-pilot", type=int, default=0,
                   help="adaptive ANPE-IS: draws per pilot round (2 rounds; 0: the flow itself)")
    p.add_argument("--nuts-cache", default=None, help="directory to keep/reuse NUTS draws per galaxy")


def nuts_config_from_args(args: argparse.Namespace, **extra):
    """NUTSConfig from the arguments of :func:`add_nuts_arguments` (and ``--quick``: no extensions), plus ``extra``."""
    from sedflow_jax.mcmc import NUTSConfig

    return NUTSConfig(num_warmup=args.num_warmup, num_samples=args.num_samples, num_chains=args.num_chains,
                      max_tree_depth=args.max_tree_depth, target_accept_prob=args.target_accept,
                      max_extensions=0 if args.quick else args.max_extensions, **extra)


#: NUTSConfig fields that were removed (their options measured worse, docs/nuts.md), at the values that the
#: remaining sampler equals: put back into the signature so that caches written before the removal stay valid
_REMOVED_FIELDS = {"sampler": "collapsed", "profile_mass": True, "off_power": 4.0}
# (jump_tries, joint_off, joint_on and init_select, also removed, were left out of the signature at their
# defaults already, so caches written with them at those defaults match without them)


def nuts_signature(seed: int, n_gal: int, cfg) -> str:
    """JSON key of a NUTS cache entry: the galaxy selection and every NUTS setting."""
    nuts = _REMOVED_FIELDS | {k: getattr(cfg, k) for k in cfg.__dataclass_fields__}
    return json.dumps({"seed": seed, "n_gal": n_gal, "nuts": nuts}, sort_keys=True, default=str)


NUTS_DIAGNOSTICS = ("wall_s", "n_gradient_evals_total", "max_rhat", "min_ess_bulk", "min_ess_tail", "n_divergent",
                    "reasons", "n_blocks", "n_draws_per_chain", "divergent_fraction")


def cached_nuts(cache_dir, name: str, signature: str, run):
    """NUTS draws ``(n, 12)``, diagnostics (dict) and verdict for one galaxy, kept in ``cache_dir``.

    ``run()`` returns a :class:`~sedflow_jax.mcmc.NUTSResult`; it is called unless ``cache_dir/name.npz``
    exists with the same ``signature`` (JSON of the galaxy selection and NUTS settings). Lets another
    flow be compared with the same NUTS reference, and a stopped benchmark resume.
    """
    from sedflow_jax.io.atomic import atomic_path

    path = Path(cache_dir) / f"{name}.npz" if cache_dir else None
    if path is not None and path.exists():
        with np.load(path) as f:
            if str(f["signature"]) == signature:
                return f["draws"], json.loads(str(f["diagnostics"])), bool(f["converged"])
    res = run()
    draws = np.asarray(res.idata.posterior["theta"]).reshape(-1, 12)
    diag = json.loads(json.dumps({k: res.diagnostics[k] for k in NUTS_DIAGNOSTICS}, default=float))
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, draws=draws, diagnostics=json.dumps(diag), converged=bool(res.converged),
                         signature=signature)
    return draws, diag, bool(res.converged)


def is_record(key, posterior, model, x, nuts_draws, *, n_proposal: int, n_samples: int, n_pilot: int = 0,
              flux_nmgy=None, ivar=None) -> dict:
    """ANPE-IS for one galaxy, compared with its NUTS draws: wall time, ESS, k-hat, verdict, W1/sigma_NUTS.

    ``flux_nmgy``, ``ivar``: the galaxy's photometry as read (default: implied by ``x``, for simulations).
    ``samples`` (the reweighted draws) is returned too, for callers that need more than the record.
    """
    from sedflow_jax.anpe.importance import importance_sample
    from sedflow_jax.params import THETA_NAMES
    from sedflow_jax.validation import wasserstein_over_sigma

    t = time.perf_counter()
    r = importance_sample(key, posterior, model, x, n_proposal=n_proposal, n_samples=n_samples, n_pilot=n_pilot,
                          flux_nmgy=flux_nmgy, ivar=ivar)
    w1 = wasserstein_over_sigma(r.samples, nuts_draws)
    return {"is_wall_s": time.perf_counter() - t, "is_ess": r.ess, "is_pareto_k": r.pareto_k,
            "is_reliable": r.reliable, "is_reasons": list(r.reasons),
            "is_wasserstein_over_sigma": dict(zip(THETA_NAMES, w1.round(4).tolist())), "samples": r.samples}


def is_summary(recs) -> dict:
    """ANPE-IS summary over galaxy records: reliable count, median ESS / k-hat, median W1/sigma where reliable."""
    from sedflow_jax.params import THETA_NAMES

    if not recs or "is_ess" not in recs[0]:
        return {}
    ok = [r for r in recs if r["is_reliable"]]
    out = {"anpe_is_n_reliable": len(ok), "anpe_is_median_ess": float(np.median([r["is_ess"] for r in recs])),
           "anpe_is_median_pareto_k": float(np.median([r["is_pareto_k"] for r in recs]))}
    if ok:
        out["anpe_is_wasserstein_over_sigma_reliable"] = {
            n: float(np.median([r["is_wasserstein_over_sigma"][n] for r in ok])) for n in THETA_NAMES}
    # what `infer --importance` returns per galaxy: the reweighted draws where reliable, else the flow's
    for name, sub in (("all", recs), ("nuts_converged", [r for r in recs if r["nuts_converged"]])):
        if sub:
            out[f"anpe_pipeline_wasserstein_over_sigma_{name}"] = {n: float(np.median(
                [(r["is_wasserstein_over_sigma"] if r["is_reliable"] else r["wasserstein_over_sigma"])[n] for r in sub]))
                for n in THETA_NAMES}
    return out


def pipeline_records(summary: dict, base: dict) -> list[dict]:
    """Records ``wasserstein_over_sigma`` (method ``anpe_pipeline``) from :func:`is_summary`'s medians."""
    return [{"name": "wasserstein_over_sigma", "value": v, "unit": "sigma_NUTS",
             "params": base | {"parameter": n, "method": "anpe_pipeline", "galaxies": name,
                               "statistic": "median over galaxies of ANPE-IS where reliable, else the flow"}}
            for name in ("all", "nuts_converged")
            for n, v in summary.get(f"anpe_pipeline_wasserstein_over_sigma_{name}", {}).items()]
