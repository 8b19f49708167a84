"""``sedflow-jax nuts CATALOG --out DIR``: NUTS reference posteriors for a catalogue of galaxies.

CATALOG is either a simulated set written by ``sedflow-jax simulate`` (HDF5: ``flux_obs_nmgy``,
``sigma_flux_nmgy``, ``redshift``; the true ``theta`` is stored with each posterior) or a CSV file
with columns ``redshift``, ``flux_<band>`` and ``ivar_<band>`` (nanomaggies, nmgy^-2; band =
speclite filter name, e.g. ``flux_sdss2010-r``) and an optional ``id`` column.

Writes ``DIR/galaxy_<id>.nc`` (ArviZ InferenceData, atomically) and ``DIR/summary.csv`` (one row
per galaxy: convergence verdict, R-hat, ESS, divergences, wall time, posterior medians). Galaxies
whose ``.nc`` already exists are skipped (resume). Exit code 3 when any galaxy did not converge.
"""

from __future__ import annotations

import argparse

__all__ = ["add_parser"]


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("nuts", help="NUTS reference posteriors for a catalogue (InferenceData per galaxy)")
    p.add_argument("catalog", help="simulated HDF5 set or CSV with redshift, flux_<band>, ivar_<band>")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--rows", default=None, help="row range START:STOP (default: all rows)")
    p.add_argument("--filters", default="sdss2010-ugriz", help="speclite filter names or group")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--num-warmup", type=int, default=500)
    p.add_argument("--num-samples", type=int, default=500)
    p.add_argument("--num-chains", type=int, default=4)
    p.add_argument("--diag-mass", action="store_true", help="diagonal instead of dense mass matrix")
    p.add_argument("--init", choices=("optimize", "median", "uniform"), default="optimize")
    p.add_argument("--target-accept", type=float, default=0.9)
    p.add_argument("--max-extensions", type=int, default=3,
                   help="continue the chains by --num-samples draws at most this many times while R-hat/ESS fail")
    p.add_argument("--max-tree-depth", type=int, default=10)
    p.add_argument("--strategy", choices=("loop", "vmap"), default="loop")
    p.add_argument("--batch-size", type=int, default=4, help="galaxies per vmapped batch (--strategy vmap)")
    p.add_argument("--ssp", default=None, help="DSPS-format SSP HDF5 file (default: cached BC03 table)")
    p.add_argument("--x64", action="store_true", help="run in float64")
    p.set_defaults(func=_run)


def _read_catalog(path: str, filters, rows):
    import numpy as np

    if path.endswith((".h5", ".hdf5")):
        from ..simulate import load_training_set

        data = load_training_set(path, valid_only=False, columns=("flux_obs_nmgy", "sigma_flux_nmgy", "redshift", "theta", "flags"))
        sl = rows or slice(None)
        n_all = data["redshift"].shape[0]
        idx = np.arange(n_all)[sl]
        sig = data["sigma_flux_nmgy"][sl]
        with np.errstate(divide="ignore"):
            ivar = np.where(sig > 0, 1.0 / sig**2, 0.0)
        return (data["flux_obs_nmgy"][sl], ivar, data["redshift"][sl], [str(i) for i in idx], data["theta"][sl])
    import csv

    from ..errors import InputError
    from ..model.filters import resolve_filter_names

    names = resolve_filter_names(filters)
    with open(path, newline="") as fh:
        recs = list(csv.DictReader(fh))
    if not recs:
        raise InputError(f"{path}: no rows")
    need = ["redshift"] + [f"flux_{b}" for b in names] + [f"ivar_{b}" for b in names]
    missing = [c for c in need if c not in recs[0]]
    if missing:
        raise InputError(f"{path}: missing columns {missing} (need redshift, flux_<band>, ivar_<band> for {names})")
    recs = recs[rows] if rows else recs
    flux = np.array([[float(r[f"flux_{b}"]) for b in names] for r in recs])
    ivar = np.array([[float(r[f"ivar_{b}"]) for b in names] for r in recs])
    z = np.array([float(r["redshift"]) for r in recs])
    ids = [r.get("id") or str(i) for i, r in enumerate(recs)]
    return flux, ivar, z, ids, None


def _run(args: argparse.Namespace) -> int:
    from ..host_devices import expose_cpu_cores

    expose_cpu_cores(min_devices=args.num_chains)  # a device per chain, before JAX starts
    import jax

    if args.x64:
        jax.config.update("jax_enable_x64", True)
    import csv
    import warnings
    from pathlib import Path

    import numpy as np

    from ..io.atomic import atomic_path
    from ..mcmc import NotConvergedWarning, NUTSConfig, run_nuts_batch
    from ..model import ProvabgsModel
    from ..params import THETA_NAMES

    rows = None
    if args.rows:
        a, _, b = args.rows.partition(":")
        rows = slice(int(a) if a else None, int(b) if b else None)
    flux, ivar, z, ids, truth = _read_catalog(args.catalog, args.filters, rows)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    todo = [i for i, g in enumerate(ids) if not (out / f"galaxy_{g}.nc").exists()]
    print(f"{len(ids)} galaxies in {args.catalog}; {len(ids) - len(todo)} already done in {out}")
    cfg = NUTSConfig(num_warmup=args.num_warmup, num_samples=args.num_samples, num_chains=args.num_chains,
                     dense_mass=not args.diag_mass, init=args.init, target_accept_prob=args.target_accept,
                     max_tree_depth=args.max_tree_depth, max_extensions=args.max_extensions)
    model = ProvabgsModel.build(args.ssp, None, args.filters, z_max=max(0.2, float(np.max(z))))
    summary_path = out / "summary.csv"
    old = []
    if summary_path.exists():
        with open(summary_path, newline="") as fh:
            old = [r for r in csv.DictReader(fh) if r["galaxy_id"] not in {ids[i] for i in todo}]
    n_bad = 0
    records = list(old)
    if todo:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotConvergedWarning)  # reported below, per galaxy
            it = run_nuts_batch(jax.random.key(args.seed), flux[todo], ivar[todo], z[todo], model=model, config=cfg,
                                galaxy_ids=[ids[i] for i in todo], truth=None if truth is None else truth[todo],
                                strategy=args.strategy, batch_size=args.batch_size)
            for j, res in it:
                g = ids[todo[j]]
                res.to_netcdf(out / f"galaxy_{g}.nc")
                d = res.diagnostics
                med = np.median(np.asarray(res.idata.posterior["theta"]).reshape(-1, len(THETA_NAMES)), axis=0)
                rec = {"galaxy_id": g, "converged": int(res.converged), "max_rhat": f"{d['max_rhat']:.4f}",
                       "min_ess_bulk": f"{d['min_ess_bulk']:.0f}", "min_ess_tail": f"{d['min_ess_tail']:.0f}",
                       "n_divergent": d["n_divergent"], "wall_s": f"{d['wall_s']:.2f}",
                       "p_burst_on": f"{d['p_burst_on']:.4f}", "n_gradient_evals_total": d["n_gradient_evals_total"],
                       "failures": "; ".join(d["reasons"])}
                rec.update({f"median_{n}": f"{v:.6g}" for n, v in zip(THETA_NAMES, med)})
                records.append(rec)
                if not res.converged:
                    n_bad += 1
                    print(f"galaxy {g}: NOT CONVERGED: {rec['failures']}", flush=True)
    n_bad = sum(1 for r in records if str(r["converged"]) != "1")
    if records:
        keys = list(records[-1].keys())
        with atomic_path(summary_path) as tmp, open(tmp, "w", newline="") as fh:
            wr = csv.DictWriter(fh, fieldnames=keys, extrasaction="ignore")
            wr.writeheader()
            wr.writerows(records)
    print(f"{len(records)} galaxies in {summary_path}; {n_bad} did not converge")
    return 3 if n_bad else 0
