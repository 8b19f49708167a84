"""``sedflow-jax infer``: posteriors for every row of a catalogue (CSV, FITS, HDF5)."""

from __future__ import annotations

import argparse

from ..errors import InputError

__all__ = ["add_parser"]


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("infer", help="sample ANPE posteriors for a catalogue",
                              description="Read CATALOG (fluxes + inverse variances in nanomaggies, or magnitudes + "
                                          "errors), sample the amortised posterior for every valid row and write "
                                          "samples + median/16th/84th percentiles, one output row per input row. "
                                          "Bad rows are flagged with a reason, never dropped.")
    p.add_argument("catalog", help="CSV / FITS / HDF5 file, or 'example' for the shipped example catalogue")
    p.add_argument("--out", required=True, help="output HDF5 (checkpoints in OUT.partial/ while the run lasts)")
    p.add_argument("--model", default=None, help="model directory or shipped model name: default (any magnitude), "
                   "sdss (fine-tuned on SDSS-range photometry); default: default")
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
    p.add_argument("--importance", type=int, default=0, metavar="N_PROPOSAL",
                   help="ANPE-IS: reweight N_PROPOSAL flow draws per galaxy by the exact posterior and use them "
                        "where reliable (Pareto k-hat <= 0.7, ESS >= 400); 0 = off. ~1 s/galaxy at 4M on a GPU")
    p.add_argument("--importance-pilot", type=int, default=0, metavar="N_PILOT",
                   help="adaptive ANPE-IS: two pilot rounds of N_PILOT draws move the flow's latent Gaussian onto "
                        "the weighted draws before the N_PROPOSAL final ones (exact weights; docs/anpe.md); 0 = off")
    p.add_argument("--fallback", choices=("none", "nuts"), default="none",
                   help="nuts: refit rows outside the training support or failing the chi-square check with NUTS")
    p.add_argument("--fallback-chi2-p", type=float, default=1e-3,
                   help="tail probability of the chi-square check (5 dof) that sends a row to NUTS; 0 disables it")
    p.add_argument("--fallback-limit", type=int, default=None,
                   help="refit at most this many rows (per run: each --rows part of a split catalogue has its own)")
    p.add_argument("--fallback-error-floor", default=None, metavar="MAG[,MAG,MAG,MAG,MAG]",
                   help="magnitude error floor added in quadrature for the chi-square check and the NUTS fits: "
                        "one value for all of ugriz or five (NSA's: 0.05,0.02,0.02,0.02,0.03)")
    p.add_argument("--rows", default=None, metavar="START:STOP",
                   help="infer only catalogue rows START..STOP-1 (STOP empty: to the end); join the parts of a split "
                        "catalogue with `sedflow-jax merge`")
    p.add_argument("--resume", action="store_true",
                   help="continue a killed run from OUT.partial/ (same catalogue and arguments); without it a new "
                        "run removes an old checkpoint")
    p.add_argument("--chunk-rows", type=int, default=16384,
                   help="rows read, inferred and checkpointed together (bounds memory)")
    p.add_argument("--nuts-warmup", type=int, default=500)
    p.add_argument("--nuts-samples", type=int, default=500)
    p.set_defaults(func=_infer)


def _floor(text: str | None):
    """``--fallback-error-floor``: None, one magnitude for all five bands, or five comma-separated ones."""
    if text is None:
        return None
    try:
        vals = [float(v) for v in text.split(",")]
    except ValueError:
        raise InputError(f"--fallback-error-floor: not a number in {text!r}") from None
    if len(vals) == 1:
        vals *= 5
    if len(vals) != 5 or min(vals) < 0:
        raise InputError(f"--fallback-error-floor: give one value >= 0 or five (ugriz), got {text!r}")
    return tuple(vals)


def parse_rows(text: str | None, arg: str = "--rows") -> tuple[int, int | None] | None:
    """``START:STOP`` (either may be empty) -> ``(start, stop or None)``; an :class:`InputError` naming ``arg``."""
    if text is None:
        return None
    a, sep, b = text.partition(":")
    try:
        if not sep or ":" in b:
            raise ValueError
        start, stop = int(a) if a.strip() else 0, int(b) if b.strip() else None
    except ValueError:
        raise InputError(f"{arg}: expected START:STOP (integers, either may be empty), got {text!r}") from None
    if start < 0 or (stop is not None and stop <= start):
        raise InputError(f"{arg} {text!r}: need 0 <= START < STOP")
    return start, stop


def _columns(args):
    from ..io.catalog import CatalogColumns

    if args.catalog == "example":
        from pathlib import Path

        args.catalog = str(Path(__file__).resolve().parent.parent / "data" / "example_catalog.csv")
        return CatalogColumns(id="id")
    if args.kind == "nsa":
        return CatalogColumns.nsa()
    return CatalogColumns(kind=args.kind, mag=args.mag_col, mag_err=args.mag_err_col, flux=args.flux_col,
                          ivar=args.ivar_col, redshift=args.z_col, id=args.id_col)


def _config(args):
    from ..pipeline import InferConfig

    fallback = None
    if args.fallback == "nuts":
        from ..pipeline import FallbackConfig, fallback_nuts_config

        fallback = FallbackConfig(chi2_p=args.fallback_chi2_p or None, limit=args.fallback_limit, seed=args.seed,
                                  nuts=fallback_nuts_config(num_warmup=args.nuts_warmup, num_samples=args.nuts_samples),
                                  error_floor_mag=_floor(args.fallback_error_floor))
    return InferConfig(n_samples=args.n_samples, seed=args.seed, write_samples=not args.no_samples,
                       properties=args.properties, importance=args.importance or None,
                       importance_pilot=args.importance_pilot, fallback=fallback, chunk_rows=args.chunk_rows,
                       progress=not args.no_progress)


def _infer(args: argparse.Namespace) -> int:
    if args.importance_pilot and not args.importance:
        raise InputError("--importance-pilot needs --importance N_PROPOSAL (the final draws per galaxy)")
    if args.importance_pilot < 0 or args.importance < 0:
        raise InputError("--importance and --importance-pilot must be >= 0")
    rows = parse_rows(args.rows)
    if args.fallback == "nuts":
        from ..host_devices import expose_cpu_cores

        expose_cpu_cores(min_devices=4)  # a device per NUTS chain (4 chains), before JAX starts
    from ..anpe import Posterior
    from ..io.catalog import CatalogueReader
    from ..pipeline import infer_catalog

    columns = _columns(args)
    config = _config(args)  # bad values are reported before the model loads
    post = Posterior.load(args.model)
    with CatalogueReader(args.catalog, columns, redshift_range=post.redshift_range,
                         extra_prefix="true_") as reader, _terminate_as_interrupt():
        try:
            res = infer_catalog(post, reader, args.out, config, rows=rows, resume=args.resume)
        except KeyboardInterrupt:
            print(f"sedflow-jax infer: interrupted; finished chunks are kept: rerun the same command with --resume "
                  f"to continue", flush=True)
            return 130
    _report(args, res)
    return 0


class _terminate_as_interrupt:
    """SIGTERM (a batch system's kill) raises KeyboardInterrupt, so temporary files are removed and the
    checkpoint stays; the previous handler comes back on exit."""

    def __enter__(self):
        import signal

        def handler(signum, frame):
            raise KeyboardInterrupt

        try:
            self._old = signal.signal(signal.SIGTERM, handler)
        except ValueError:  # not the main thread: leave signals alone
            self._old = None
        return self

    def __exit__(self, *exc):
        import signal

        if self._old is not None:
            signal.signal(signal.SIGTERM, self._old)


def _summarise_file(path, truth_col: str) -> dict:
    """Per-flag counts, ANPE-IS diagnostics, fallback triggers and log M* recovery from the posterior file,
    read a block of rows at a time (constant memory for any catalogue)."""
    import numpy as np

    from ..flags import FLAGS
    from ..pipeline.layout import iter_posterior_blocks

    flags = dict.fromkeys(FLAGS, 0)
    trig = {"support": 0, "chi2": 0, "support,chi2": 0}
    ess, khat, dm, inside = [], [], [], []
    truth_name = f"input/{truth_col}"
    for blk in iter_posterior_blocks(path, ["flags", "median", "p16", "p84", "is_ess", "is_pareto_k",
                                            "fallback_trigger", truth_name]):
        for name, bit in FLAGS.items():
            flags[name] += int(np.sum((blk["flags"] & bit) != 0))
        if "is_ess" in blk:
            ok = np.isfinite(blk["is_ess"])  # rows the reweighting ran on
            ess.append(blk["is_ess"][ok])
            khat.append(blk["is_pareto_k"][ok])
        if "fallback_trigger" in blk:
            for k in trig:
                trig[k] += int(np.sum(blk["fallback_trigger"] == k))
        if truth_name in blk:
            t, m = np.asarray(blk[truth_name], float), blk["median"][:, 0]
            ok = np.isfinite(m) & np.isfinite(t)
            dm.append(m[ok] - t[ok])
            inside.append((t[ok] >= blk["p16"][ok, 0]) & (t[ok] <= blk["p84"][ok, 0]))
    cat = lambda parts: np.concatenate(parts) if parts else np.zeros(0)  # noqa: E731
    return {"flags": flags, "trigger": trig, "is_ess": cat(ess), "is_pareto_k": cat(khat), "dm": cat(dm),
            "inside": cat(inside)}


def _report(args, res: dict) -> None:
    import numpy as np

    f = _summarise_file(args.out, args.truth_col)
    print(f"wrote {args.out}: {res['n_rows']} rows, {res['n_inferred']} inferred, {res['n_invalid']} flagged invalid, "
          f"{res['n_outside_support']} outside the training support; {res['seconds']:.2f} s"
          + (f" ({res['resumed']} chunks from the checkpoint)" if res["resumed"] else
             f" ({res['seconds'] / max(1, res['n_inferred']):.4f} s/galaxy at {args.n_samples} samples)"))
    if args.importance and f["is_ess"].size:
        print(f"importance sampling ({args.importance} proposals/galaxy): {res['n_importance_reliable']} of "
              f"{f['is_ess'].size} in-support galaxies reliable (method='anpe_is'); median ESS "
              f"{np.median(f['is_ess']):.0f}, median Pareto k-hat {np.median(f['is_pareto_k']):.2f}")
    if args.fallback == "nuts":
        trig, n_trig, n_inf = f["trigger"], res["n_fallback_triggered"], max(1, res["n_inferred"])
        print(f"fallback: {n_trig} rows ({100 * n_trig / n_inf:.2f}% of inferred; SEDflow paper: 1.7%) sent to NUTS: "
              f"{trig['support']} outside support only, {trig['chi2']} chi-square only, {trig['support,chi2']} both; "
              f"{res['n_refit']} refit, {res['n_nuts']} converged (method='nuts'), "
              f"{res['n_refit'] - res['n_nuts']} kept the flow posterior with the failure stated")
    for name, k in f["flags"].items():
        if k:
            print(f"  flagged {name:28s} {k}")
    if f["dm"].size:
        print(f"log M* recovery on {f['dm'].size} galaxies with truth: bias {np.mean(f['dm']):+.3f} dex, "
              f"scatter {np.std(f['dm']):.3f} dex, truth inside 68% interval {np.mean(f['inside']):.2f}")
