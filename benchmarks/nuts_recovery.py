"""NUTS recovery on simulated galaxies: 68% coverage, convergence, wall time per galaxy.

Simulates bright (noiseless r < 17.77), unflagged galaxies from the default simulator (SEDflow
prior, z ~ U(0, 0.2), SDSS noise model), keeps those with r < 17.77 and 0.02 < z < 0.2, runs :func:`sedflow_jax.mcmc.run_nuts_batch` on each and
writes ``benchmarks/results/nuts_recovery.json`` (per-galaxy diagnostics, coverage with binomial
errors, median wall time) and ``nuts_recovery.png``.

    python benchmarks/nuts_recovery.py --n-gal 20            # the must-show run (long on 2 CPUs)
    python benchmarks/nuts_recovery.py --n-gal 2 --quick     # smoke test
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
import warnings
from pathlib import Path

from sedflow_jax.host_devices import expose_cpu_cores

expose_cpu_cores(min_devices=4)  # before JAX starts: a device per chain (4 chains)
import jax  # noqa: E402
import numpy as np

R_LIMIT = 17.77


def _summarise(recs, cfg, args, t_all, dest, final):
    """Summary of the galaxies done so far; written after every galaxy (a partial run keeps its results)."""
    from sedflow_jax.io.atomic import atomic_path, atomic_write_json
    from sedflow_jax.params import THETA_NAMES

    inside = np.array([r["in_68"] for r in recs], bool)
    n = inside.shape[0]
    cov = inside.mean(axis=0)
    expect = 0.6827
    binom = np.sqrt(expect * (1 - expect) / n)
    conv = np.array([r["converged"] for r in recs])
    walls = np.array([r["wall_s"] for r in recs])
    grads = np.array([r["n_gradient_evals_total"] for r in recs])
    out = {
        "machine": {"platform": platform.platform(), "processor": platform.processor(), "n_cores": os.cpu_count(),
                    "jax_version": jax.__version__, "device": str(jax.devices()[0])},
        "config": {k: getattr(cfg, k) for k in cfg.__dataclass_fields__} | {"strategy": args.strategy},
        "n_galaxies": n,
        "n_converged": int(conv.sum()),
        "coverage_68": dict(zip(THETA_NAMES, cov.round(4).tolist())),
        "coverage_68_all_params": float(inside.mean()),
        "coverage_68_expected": expect,
        "coverage_68_binomial_sigma_per_param": float(binom),
        "coverage_68_within_2sigma": bool(np.all(np.abs(cov - expect) <= 2 * binom)),
        "median_wall_s": float(np.median(walls)),
        "median_wall_s_excluding_first": float(np.median(walls[1:])) if n > 1 else None,
        "wall_s_note": "first galaxy includes the one-off compile",
        "median_gradient_evals_total": float(np.median(grads)),
        "gradient_evals_note": "all chains, init search + warm-up + sampling; PROVABGS/SEDflow paper: > 100,000",
        "complete": final,
        "total_wall_s": time.perf_counter() - t_all,
        "galaxies": recs,
    }
    dest = Path(args.out)
    atomic_write_json(dest / f"nuts_recovery{args.tag}.json", out)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.errorbar(np.arange(len(THETA_NAMES)), cov, yerr=binom, fmt="o")
    ax.axhline(expect, color="k", lw=0.8)
    ax.set_xticks(np.arange(len(THETA_NAMES)), THETA_NAMES, rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("truth in 68% interval")
    ax.set_title(f"NUTS recovery: {n} galaxies, {int(conv.sum())} converged, median {np.median(walls):.0f} s")
    fig.tight_layout()
    with atomic_path(dest / f"nuts_recovery{args.tag}.png") as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)  # the summary is redrawn after every galaxy
    return out


def select_galaxies(n_gal: int, seed: int):
    """SDSS-like simulated test galaxies with known truth: unflagged, noiseless r < R_LIMIT,
    0.02 < z < 0.2, the first ``n_gal`` of ``50 n_gal`` draws. Returns (rows, indices, simulator)."""
    from sedflow_jax.simulate import SimulationConfig, build_simulator, simulate_arrays

    sim, _ = build_simulator(SimulationConfig(n=50 * n_gal, seed=seed))
    rows = simulate_arrays(jax.random.key(seed), sim, 50 * n_gal)
    r_true = 22.5 - 2.5 * np.log10(rows["flux_nmgy"][:, 2])
    zs = rows["redshift"]
    sel = np.flatnonzero((rows["flags"] == 0) & (r_true < R_LIMIT) & (zs > 0.02) & (zs < 0.2))[:n_gal]
    if sel.size < n_gal:
        raise RuntimeError(f"only {sel.size} bright galaxies among {r_true.size} draws")
    return rows, sel, sim


def add_nuts_arguments(p: argparse.ArgumentParser) -> None:
    """Galaxy selection and NUTS settings shared by this benchmark and ``anpe_vs_nuts.py``."""
    p.add_argument("--n-gal", type=int, default=20)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--num-warmup", type=int, default=500)
    p.add_argument("--num-samples", type=int, default=500)
    p.add_argument("--num-chains", type=int, default=4)
    p.add_argument("--max-tree-depth", type=int, default=10)
    p.add_argument("--target-accept", type=float, default=0.9)
    p.add_argument("--max-extensions", type=int, default=3)
    p.add_argument("--jump-tries", type=int, default=0, help="multiple-try burst jumps per NUTS step (JumpNUTS; 0: off)")
    p.add_argument("--joint-off", action="store_true", help="integrate f_burst out of the burst-off state (NUTSConfig.joint_off)")
    p.add_argument("--joint-on", action="store_true", help="integrate f_burst out of the burst-on state (NUTSConfig.joint_on)")
    p.add_argument("--init-select", default="density", choices=("density", "laplace"),
                   help="how each chain's start is picked among its optimised candidates (NUTSConfig.init_select)")


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
                      max_extensions=0 if args.quick else args.max_extensions, jump_tries=args.jump_tries,
                      joint_off=args.joint_off, joint_on=args.joint_on, init_select=args.init_select, **extra)


#: NUTSConfig fields added after NUTS caches were first written: left out of the signature while they
#: hold their default, so those caches stay valid
_LATER_FIELDS = {"jump_tries": 0, "joint_off": False, "joint_on": False, "init_select": "density"}


def nuts_signature(seed: int, n_gal: int, cfg) -> str:
    """JSON key of a NUTS cache entry: the galaxy selection and every NUTS setting."""
    nuts = {k: getattr(cfg, k) for k in cfg.__dataclass_fields__
            if not (k in _LATER_FIELDS and getattr(cfg, k) == _LATER_FIELDS[k])}
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


def is_record(key, posterior, model, x, nuts_draws, *, n_proposal: int, n_samples: int, n_pilot: int = 0) -> dict:
    """ANPE-IS for one galaxy, compared with its NUTS draws: wall time, ESS, k-hat, verdict, W1/sigma_NUTS.

    ``samples`` (the reweighted draws) is returned too, for callers that need more than the record.
    """
    from sedflow_jax.anpe.importance import importance_sample
    from sedflow_jax.params import THETA_NAMES
    from sedflow_jax.validation import wasserstein_over_sigma

    t = time.perf_counter()
    r = importance_sample(key, posterior, model, x, n_proposal=n_proposal, n_samples=n_samples, n_pilot=n_pilot)
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


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_nuts_arguments(p)
    p.add_argument("--diag-mass", action="store_true")
    p.add_argument("--sampler", default="collapsed", choices=("collapsed", "gibbs", "nuts"))
    p.add_argument("--no-profile-mass", action="store_true")
    p.add_argument("--off-power", type=float, default=4.0)
    p.add_argument("--tag", default="", help="suffix of the output file names")
    p.add_argument("--init", default="optimize")
    p.add_argument("--strategy", default="loop", choices=("loop", "vmap"))
    p.add_argument("--quick", action="store_true", help="tiny run (100 warm-up, 100 draws)")
    p.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = p.parse_args(argv)

    from sedflow_jax.mcmc import NotConvergedWarning, run_nuts_batch
    from sedflow_jax.params import THETA_NAMES

    if args.quick:
        args.num_warmup = args.num_samples = 100
    rows, sel, sim = select_galaxies(args.n_gal, args.seed)
    flux, sig, z, theta = (rows[k][sel] for k in ("flux_obs_nmgy", "sigma_flux_nmgy", "redshift", "theta"))
    cfg = nuts_config_from_args(args, sampler=args.sampler, dense_mass=not args.diag_mass, init=args.init,
                                profile_mass=not args.no_profile_mass, off_power=args.off_power)
    recs = []
    t_all = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotConvergedWarning)
        for i, res in run_nuts_batch(jax.random.key(args.seed + 1), flux, 1.0 / sig**2, z, model=sim.model, config=cfg,
                                     galaxy_ids=[str(s) for s in sel], truth=theta, strategy=args.strategy):
            post = np.asarray(res.idata.posterior["theta"]).reshape(-1, len(THETA_NAMES))
            lo, hi = np.quantile(post, [0.16, 0.84], axis=0)
            inside = (theta[i] >= lo) & (theta[i] <= hi)
            d = res.diagnostics
            recs.append({"row": int(sel[i]), "redshift": float(z[i]), "converged": bool(res.converged),
                         "max_rhat": d["max_rhat"], "min_ess_bulk": d["min_ess_bulk"], "min_ess_tail": d["min_ess_tail"],
                         "n_divergent": d["n_divergent"], "n_gradient_evals_sampling": d["n_gradient_evals"],
                         "n_gradient_evals_total": d["n_gradient_evals_total"], "t_cut_gyr": d["t_cut_gyr"],
                         "p_burst_on": d["p_burst_on"], "burst_flip_rate": d["burst_flip_rate"],
                         "log10_mstar_true": float(theta[i][0]), "f_burst_true": float(theta[i][5]),
                         "t_burst_true": float(theta[i][6]),
                         "burst_on_true": bool(theta[i][6] < d["t_cut_gyr"]),
                         "rhat_burst_on": d["per_parameter"].get("burst:on", {}).get("rhat"),
                         "ess_burst_on": d["per_parameter"].get("burst:on", {}).get("ess_bulk"),
                         "wall_s": d["wall_s"], "reasons": d["reasons"], "in_68": inside.tolist()})
            _summarise(recs, cfg, args, t_all, Path(args.out), final=False)
            print(f"galaxy {sel[i]} z={z[i]:.3f}: converged={res.converged} rhat={d['max_rhat']:.3f} "
                  f"ess_bulk={d['min_ess_bulk']:.0f} ess_tail={d['min_ess_tail']:.0f} div={d['n_divergent']} "
                  f"P(on)={d['p_burst_on']:.2f} grads={d['n_gradient_evals_total']} {d['wall_s']:.1f}s "
                  f"{'; '.join(d['reasons'])}", flush=True)
    dest = Path(args.out)
    out = _summarise(recs, cfg, args, t_all, dest, final=True)
    print(json.dumps({k: out[k] for k in ("n_galaxies", "n_converged", "coverage_68_all_params", "median_wall_s")}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
