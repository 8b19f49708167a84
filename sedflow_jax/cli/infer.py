"""``sedflow-jax infer``: posteriors for every row of a catalogue (CSV, FITS, HDF5)."""

from __future__ import annotations

import argparse

__all__ = ["add_parser"]


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("infer", help="sample ANPE posteriors for a catalogue",
                              description="Read CATALOG (fluxes + inverse variances in nanomaggies, or magnitudes + "
                                          "errors), sample the amortised posterior for every valid row and write "
                                          "samples + median/16th/84th percentiles, one output row per input row. "
                                          "Bad rows are flagged with a reason, never dropped.")
    p.add_argument("catalog", help="CSV / FITS / HDF5 file, or 'example' for the shipped example catalogue")
    p.add_argument("--out", required=True, help="output HDF5")
    p.add_argument("--model", default=None, help="model directory (default: the shipped model)")
    p.add_argument("--n-samples", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--kind", choices=("mag", "flux", "nsa"), default="mag",
                   help="mag: magnitudes + errors; flux: nanomaggies + ivar; nsa: NMGY/NMGY_IVAR/Z/NSAID")
    p.add_argument("--mag-col", default="mag_{band}")
    p.add_argument("--mag-err-col", default="mag_err_{band}")
    p.add_argument("--flux-col", default="flux_{band}")
    p.add_argument("--ivar-col", default="ivar_{band}")
    p.add_argument("--z-col", default="z")
    p.add_argument("--id-col", default=None)
    p.add_argument("--truth-col", default="true_log10_mstar_formed",
                   help="if present, print recovery of log M* against this column")
    p.add_argument("--no-samples", action="store_true", help="write summaries only")
    p.add_argument("--properties", action="store_true", help="also derived properties (model evaluations)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_infer)


def _infer(args: argparse.Namespace) -> int:
    import numpy as np

    from ..anpe import Posterior, infer_catalog
    from ..io.catalog import ROW_FLAGS, CatalogColumns, prepare_x, read_table

    post = Posterior.load(args.model)
    if args.kind == "nsa":
        cols = CatalogColumns.nsa()
    else:
        cols = CatalogColumns(kind=args.kind, mag=args.mag_col, mag_err=args.mag_err_col, flux=args.flux_col,
                              ivar=args.ivar_col, redshift=args.z_col, id=args.id_col)
    if args.catalog == "example":
        from pathlib import Path

        args.catalog = str(Path(__file__).resolve().parent.parent / "data" / "example_catalog.csv")
        cols = CatalogColumns(id="id")
    table = read_table(args.catalog)
    x, flags = prepare_x(table, cols, redshift_range=post.redshift_range)
    extra = {k: v for k, v in table.items() if k.startswith("true_") and np.asarray(v).ndim == 1}
    res = infer_catalog(post, x, flags, args.out, seed=args.seed, n_samples=args.n_samples,
                        write_samples=not args.no_samples, properties=args.properties,
                        ids=table.get(cols.id) if cols.id else None, extra=extra, progress=not args.no_progress)
    print(f"wrote {args.out}: {res['n_rows']} rows, {res['n_inferred']} inferred, {res['n_invalid']} flagged invalid, "
          f"{res['n_outside_support']} outside the training support; {res['seconds']:.2f} s "
          f"({res['seconds'] / max(1, res['n_inferred']):.4f} s/galaxy at {args.n_samples} samples)")
    for name, bit in ROW_FLAGS.items():
        k = int(np.sum((res["flags"] & bit) != 0))
        if k:
            print(f"  flagged {name:28s} {k}")
    if args.truth_col in table:
        truth = np.asarray(table[args.truth_col], float)
        ok = np.isfinite(res["median"][:, 0]) & np.isfinite(truth)
        if ok.any():
            d = res["median"][ok, 0] - truth[ok]
            inside = np.mean((truth[ok] >= res["p16"][ok, 0]) & (truth[ok] <= res["p84"][ok, 0]))
            print(f"log M* recovery on {ok.sum()} galaxies with truth: bias {np.mean(d):+.3f} dex, "
                  f"scatter {np.std(d):.3f} dex, truth inside 68% interval {inside:.2f}")
    return 0
