"""``sedflow-jax nuts CATALOG --out DIR``: NUTS reference posteriors for a catalogue of galaxies.

CATALOG is either a simulated set written by ``sedflow-jax simulate`` (HDF5: ``flux_obs_nmgy``,
``sigma_flux_nmgy``, ``redshift``; the true ``theta`` is stored with each posterior) or a CSV file
with columns ``redshift``, ``flux_<band>`` and ``ivar_<band>`` (nanomaggies, nmgy^-2; band =
speclite filter name, e.g. ``flux_sdss2010-r``) and an optional ``id`` column (default: the row
number in the file). Ids name the outputs, so they must be unique and usable as file names; they are
kept exactly as read. A malformed file (missing or non-numeric value, a line with too many or too few
fields, a repeated or unusable id) is an error before any fit (:mod:`._nuts_inputs`).

Writes ``DIR/galaxy_<id>.nc`` (ArviZ InferenceData, atomically) and ``DIR/summary.csv`` (one row
per galaxy: convergence verdict, R-hat, ESS, divergences, wall time, posterior medians; rewritten
after a galaxy once a minute has passed since the last write, and when the run stops). Galaxies whose ``.nc`` already exists are skipped
(resume). A row that cannot be fitted (a non-finite flux where ivar > 0, a negative or non-finite
ivar, no band with ivar > 0, a redshift not finite or outside [0, 3], the cosmology table) is not fitted:
it gets a summary row with ``converged = 0`` and ``failures = "bad input: ..."`` and a printed line,
and the other galaxies run. Exit code 3 when any galaxy did not converge or was not fitted.
"""

from __future__ import annotations

import argparse

__all__ = ["add_parser", "SUMMARY_FIELDS"]

#: Columns of ``summary.csv`` (then ``median_<name>`` for each of :data:`sedflow_jax.params.THETA_NAMES`).
SUMMARY_FIELDS = ("galaxy_id", "converged", "max_rhat", "min_ess_bulk", "min_ess_tail", "n_divergent", "wall_s",
                  "p_burst_on", "n_gradient_evals_total", "failures")
#: Seconds between rewrites of ``summary.csv`` during a run (it is also written when the run stops).
SUMMARY_EVERY_S = 60.0


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


def _run(args: argparse.Namespace) -> int:
    from ._nuts_inputs import parse_rows

    rows = parse_rows(args.rows)  # before JAX starts: a bad --rows fails at once
    from ..host_devices import expose_cpu_cores

    expose_cpu_cores(min_devices=args.num_chains)  # a device per chain, before JAX starts
    import jax

    if args.x64:
        jax.config.update("jax_enable_x64", True)
    from pathlib import Path

    from ..model.cosmology import planck13
    from ._nuts_inputs import read_inputs, screen_rows

    cfg = _config(args)
    inputs = read_inputs(args.catalog, args.filters, rows)
    reasons = screen_rows(inputs, planck13().z_max)
    ids = inputs.ids
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    todo = [i for i, g in enumerate(ids) if not (out / f"galaxy_{g}.nc").exists()]
    print(f"{len(ids)} galaxies in {args.catalog}; {len(ids) - len(todo)} already done in {out}")
    summary_path = out / "summary.csv"
    redo = {ids[i] for i in todo}
    records = [r for r in _read_summary(summary_path) if r.get("galaxy_id") not in redo]
    for i in todo:
        if reasons[i]:
            records.append({"galaxy_id": ids[i], "converged": 0, "failures": f"bad input: {reasons[i]}"})
            print(f"galaxy {ids[i]} ({inputs.where[i]}): NOT FITTED: bad input: {reasons[i]}", flush=True)
    good = [i for i in todo if not reasons[i]]
    try:
        if good:
            _fit(args, cfg, inputs, good, [i for i, r in enumerate(reasons) if not r], out, records, summary_path)
    finally:
        _write_summary(summary_path, records)  # also when the run stops early: no finished galaxy is lost
    n_bad = sum(1 for r in records if str(r.get("converged")) != "1")
    print(f"{len(records)} galaxies in {summary_path}; {n_bad} did not converge or were not fitted")
    return 3 if n_bad else 0


def _config(args):
    from ..errors import InputError
    from ..mcmc import NUTSConfig

    try:
        return NUTSConfig(num_warmup=args.num_warmup, num_samples=args.num_samples, num_chains=args.num_chains,
                          dense_mass=not args.diag_mass, init=args.init, target_accept_prob=args.target_accept,
                          max_tree_depth=args.max_tree_depth, max_extensions=args.max_extensions)
    except ValueError as err:  # names the NUTSConfig field: --num-warmup is num_warmup, and so on
        raise InputError(f"bad NUTS setting: {err}") from None


def _fit(args, cfg, inputs, todo, fittable, out, records, summary_path) -> None:
    """Fit rows ``todo`` of ``inputs``, appending one summary record each (``fittable``: every good row, which
    sets the model's z_max, so that a resumed or partial run builds the same model)."""
    import time
    import warnings

    import jax
    import numpy as np

    from .. import mcmc
    from ..model import ProvabgsModel

    model = ProvabgsModel.build(args.ssp, None, args.filters, z_max=max(0.2, float(np.max(inputs.z[fittable]))))
    # a masked band's flux is never used, and NaN there would poison gradients (NaN * 0 is NaN)
    flux = np.where(inputs.ivar[todo] > 0, inputs.flux[todo], 0.0)
    truth = None if inputs.truth is None else inputs.truth[todo]
    last = time.monotonic()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mcmc.NotConvergedWarning)  # reported below, per galaxy
        it = mcmc.run_nuts_batch(jax.random.key(args.seed), flux, inputs.ivar[todo], inputs.z[todo], model=model,
                                 config=cfg, galaxy_ids=[inputs.ids[i] for i in todo], truth=truth,
                                 strategy=args.strategy, batch_size=args.batch_size)
        for j, res in it:
            g = inputs.ids[todo[j]]
            res.to_netcdf(out / f"galaxy_{g}.nc")
            records.append(_record(g, res))
            if not res.converged:
                print(f"galaxy {g}: NOT CONVERGED: {records[-1]['failures']}", flush=True)
            if time.monotonic() - last > SUMMARY_EVERY_S:
                _write_summary(summary_path, records)
                last = time.monotonic()


def _record(g: str, res) -> dict:
    import numpy as np

    from ..params import THETA_NAMES

    d = res.diagnostics
    med = np.median(np.asarray(res.idata.posterior["theta"]).reshape(-1, len(THETA_NAMES)), axis=0)
    rec = {"galaxy_id": g, "converged": int(res.converged), "max_rhat": f"{d['max_rhat']:.4f}",
           "min_ess_bulk": f"{d['min_ess_bulk']:.0f}", "min_ess_tail": f"{d['min_ess_tail']:.0f}",
           "n_divergent": d["n_divergent"], "wall_s": f"{d['wall_s']:.2f}",
           "p_burst_on": f"{d['p_burst_on']:.4f}", "n_gradient_evals_total": d["n_gradient_evals_total"],
           "failures": "; ".join(d["reasons"])}
    rec.update({f"median_{n}": f"{v:.6g}" for n, v in zip(THETA_NAMES, med)})
    return rec


def _read_summary(path) -> list:
    import csv

    if not path.exists():
        return []
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _write_summary(path, records: list) -> None:
    import csv

    from ..io.atomic import atomic_path
    from ..params import THETA_NAMES

    if not records:
        return
    keys = list(SUMMARY_FIELDS) + [f"median_{n}" for n in THETA_NAMES]
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        wr = csv.DictWriter(fh, fieldnames=keys, extrasaction="ignore", restval="")
        wr.writeheader()
        wr.writerows(records)
