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
import time
import warnings
from pathlib import Path

from sedflow_jax.host_devices import expose_cpu_cores

expose_cpu_cores(min_devices=4)  # before JAX starts: a device per chain (4 chains)
import jax  # noqa: E402
import numpy as np  # noqa: E402
from _common import record, write_results  # noqa: E402
from _nuts_common import add_nuts_arguments, nuts_config_from_args, select_galaxies  # noqa: E402


def _summarise(recs, cfg, args, t_all, dest, final):
    """Summary of the galaxies done so far; written after every galaxy (a partial run keeps its results)."""
    from sedflow_jax.io.atomic import atomic_path
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
    records = [record("nuts_seconds_per_galaxy", np.median(walls), "s", statistic="median (first includes compile)"),
               record("coverage_68_all_params", inside.mean(), "", expected=expect, n_galaxies=n),
               record("nuts_converged_fraction", conv.mean(), "", n_galaxies=n)]
    out = write_results(dest / f"nuts_recovery{args.tag}.json", records, **out)
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


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_nuts_arguments(p)
    p.add_argument("--diag-mass", action="store_true")
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
    cfg = nuts_config_from_args(args, dense_mass=not args.diag_mass, init=args.init)
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
