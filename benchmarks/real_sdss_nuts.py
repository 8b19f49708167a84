"""ANPE (shipped model) vs NUTS on real SDSS MGS galaxies spanning colour and brightness.

Reads both ``../shared/data/sdss_mgs`` files with :func:`sedflow_jax.io.catalog.read_sdss_mgs`, keeps
unflagged rows inside the flow's redshift range (0.02 < z < 0.2), and picks ``--n-gal`` galaxies on a grid
of g - r colour x r magnitude quantiles (so blue/red and bright/faint are all represented). For each:
NUTS (default :class:`~sedflow_jax.mcmc.NUTSConfig`, fluxes from the magnitudes as the fallback does) and
the flow posterior; W1/sigma_NUTS per parameter and C2ST, as in ``anpe_vs_nuts.py``. Writes
``benchmarks/results/real_sdss_nuts.json`` after every galaxy (a partial run keeps its results;
``--nuts-cache DIR`` keeps each galaxy's NUTS draws, so a stopped run resumes and another flow is
compared against the same reference). ANPE-IS (``sedflow_jax.anpe.importance``) is measured beside
the raw flow, as in ``anpe_vs_nuts.py``.

    python benchmarks/real_sdss_nuts.py --n-gal 20 --nuts-cache /tmp/nuts_real
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

from sedflow_jax.host_devices import expose_cpu_cores

expose_cpu_cores(min_devices=4)  # before JAX starts: a device per chain (4 chains)
import jax  # noqa: E402
import numpy as np  # noqa: E402
from _common import RESULTS, SHARED, read_sdss_mgs_both, write_results  # noqa: E402
from _nuts_common import (add_anpe_is_arguments, cached_nuts, is_record, is_summary, nuts_signature,  # noqa: E402
                          pipeline_records)

from sedflow_jax.photometry import SDSS_LAYOUT  # noqa: E402


def select(x: np.ndarray, flags: np.ndarray, n_gal: int, seed: int) -> np.ndarray:
    """Rows on a (g - r) x r quantile grid: one random unflagged galaxy per cell, 0.02 < z < 0.2."""
    z, mag = SDSS_LAYOUT.redshift(x), SDSS_LAYOUT.mag(x)
    ok = np.flatnonzero((flags == 0) & (z > 0.02) & (z < 0.2))
    gr, r = mag[ok, 1] - mag[ok, 2], mag[ok, 2]  # g - r, r
    n_c = int(np.ceil(np.sqrt(n_gal)))
    ec = np.quantile(gr, np.linspace(0, 1, n_c + 1))
    em = np.quantile(r, np.linspace(0, 1, n_c + 1))
    rng = np.random.default_rng(seed)
    picks = []
    for i in range(n_c):
        for j in range(n_c):
            cell = ok[(gr >= ec[i]) & (gr <= ec[i + 1]) & (r >= em[j]) & (r <= em[j + 1])]
            if cell.size:
                picks.append(int(rng.choice(cell)))
    rng.shuffle(picks)
    return np.array(sorted(picks[:n_gal]))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shared", default=str(SHARED))
    p.add_argument("--n-gal", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n-compare", type=int, default=2000)
    add_anpe_is_arguments(p)
    p.add_argument("--robust", action="store_true",
                   help="the catalogue fallback's NUTS settings (fallback_nuts_config: target_accept 0.95, 7 extensions)")
    p.add_argument("--tag", default="", help="suffix of the output file name")
    p.add_argument("--out", default=str(RESULTS))
    args = p.parse_args(argv)

    from sedflow_jax.anpe import Posterior
    from sedflow_jax.io.catalog import CatalogColumns, catalogue_from_table
    from sedflow_jax.mcmc import CompiledRuns, NotConvergedWarning, NUTSConfig, run_nuts
    from sedflow_jax.model import ProvabgsModel
    from sedflow_jax.params import THETA_NAMES
    from sedflow_jax.pipeline import fallback_nuts_config
    from sedflow_jax.validation import c2st, wasserstein_over_sigma

    table = read_sdss_mgs_both(Path(args.shared))  # both MGS files, as the catalogue run reads them
    post = Posterior.load(args.model)
    cat = catalogue_from_table(table, CatalogColumns(id="id"), redshift_range=post.redshift_range)
    x, flags = cat.x, cat.flags
    sel = select(x, flags, args.n_gal, args.seed)
    model = ProvabgsModel.build(z_max=0.2)
    cfg = fallback_nuts_config() if args.robust else NUTSConfig()
    cfg_sig = nuts_signature(args.seed, args.n_gal, cfg)
    # the photometry as read (float64 from the catalogue's magnitudes), as `infer` gives NUTS and ANPE-IS;
    # NUTS draws cached before 2026-12-04 were fitted to fluxes rebuilt from float32 x (<= 1e-6 relative apart)
    flux, ivar = cat.photometry.flux_nmgy, cat.photometry.ivar
    z_obs, mag = SDSS_LAYOUT.redshift(x), SDSS_LAYOUT.mag(x)
    runs = CompiledRuns()  # one compile for all galaxies
    recs = []
    t_all = time.perf_counter()
    for k, i in enumerate(sel):
        def run():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", NotConvergedWarning)
                return run_nuts(jax.random.fold_in(jax.random.key(args.seed), k), flux[i], ivar[i], float(z_obs[i]),
                                model=model, config=cfg, galaxy_id=str(table["id"][i]), cache=runs)

        nuts, d, converged = cached_nuts(args.nuts_cache, f"real_{table['id'][i]}", cfg_sig, run)
        anpe = np.asarray(post.sample(jax.random.fold_in(jax.random.key(args.seed + 1), k), x[i], args.n_compare))
        w = wasserstein_over_sigma(anpe, nuts)
        acc = c2st(anpe, nuts, classifier="mlp", seed=1)
        is_rec = {}
        if args.is_proposal:
            is_rec = is_record(jax.random.fold_in(jax.random.key(args.seed + 2), k), post, model, x[i], nuts,
                               n_proposal=args.is_proposal, n_samples=args.n_compare, n_pilot=args.is_pilot,
                               flux_nmgy=flux[i], ivar=ivar[i])
            is_rec.pop("samples")
        recs.append({"row": int(i), "id": str(table["id"][i]), "z": float(z_obs[i]), "mag_r": float(mag[i, 2]),
                     "g_minus_r": float(mag[i, 1] - mag[i, 2]), "nuts_converged": converged,
                     "nuts_wall_s": d["wall_s"], "nuts_max_rhat": d["max_rhat"], "nuts_min_ess_bulk": d["min_ess_bulk"],
                     "nuts_divergent_fraction": d["divergent_fraction"], "nuts_reasons": d["reasons"],
                     "nuts_log10_mstar_p50": float(np.median(nuts[:, 0])),
                     "wasserstein_over_sigma": dict(zip(THETA_NAMES, w.round(4).tolist())), "c2st": acc} | is_rec)
        W = np.array([[r["wasserstein_over_sigma"][n] for n in THETA_NAMES] for r in recs])
        conv = np.array([r["nuts_converged"] for r in recs])
        summary = is_summary(recs)
        base = {"device": str(jax.devices()[0]), "n_galaxies": len(recs), "nuts_converged": int(conv.sum()),
                "data": "SDSS MGS (real)"}
        out = {
            "nuts_config": {f: getattr(cfg, f) for f in cfg.__dataclass_fields__},
            "complete": k == len(sel) - 1, "n_galaxies": len(recs), "nuts_converged": int(conv.sum()),
        }
        records = ([{"name": "wasserstein_over_sigma", "value": float(np.median(W[:, j])), "unit": "sigma_NUTS",
                     "params": base | {"parameter": n, "method": "anpe", "statistic": "median over galaxies"}}
                    for j, n in enumerate(THETA_NAMES)]
                   + [{"name": "nuts_seconds_per_galaxy", "value": float(np.median([r["nuts_wall_s"] for r in recs])),
                       "unit": "s", "params": base | {"statistic": "median (first includes compile)"}}]
                   + pipeline_records(summary, base | {"n_proposal": args.is_proposal, "n_pilot": args.is_pilot}))
        out |= {
            "wasserstein_log10_mstar_median_converged": float(np.median(W[conv, 0])) if conv.any() else None,
            "c2st_median": float(np.median([r["c2st"] for r in recs])),
            "model": str(args.model or "shipped default"), **summary,
            "galaxies": recs, "total_wall_s": time.perf_counter() - t_all,
        }
        write_results(Path(args.out) / f"real_sdss_nuts{args.tag}.json", records, **out)
        print(f"{k + 1}/{len(sel)} row {i} r={mag[i, 2]:.2f} g-r={mag[i, 1] - mag[i, 2]:.2f} z={z_obs[i]:.3f}: NUTS "
              f"{d['wall_s']:.0f} s converged={converged} ({'; '.join(d['reasons'])}); W1/sigma log M* {w[0]:.2f}, "
              f"tau_ism {w[10]:.2f}; C2ST {acc:.2f}"
              + (f"; IS ESS {is_rec['is_ess']:.0f} k {is_rec['is_pareto_k']:.2f}" if is_rec else ""), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
