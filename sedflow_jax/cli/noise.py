"""``sedflow-jax noise fit|validate``: the photometric noise model p(sigma | f) on a catalogue."""

from __future__ import annotations

import argparse

from ..errors import InputError

__all__ = ["add_parser"]


def _cols(text):
    return tuple(int(c) for c in text.split(",")) if text else None


def _catalogue_args(p):
    p.add_argument("catalog", metavar="CATALOG", help="text/CSV catalogue (default layout: MLZ SDSS_MGS files)")
    p.add_argument("--mag-cols", default=None, help="0-based value columns, comma-separated (default 1,2,3,4,5)")
    p.add_argument("--err-cols", default=None, help="0-based error columns, comma-separated (default 10,11,12,13,14)")
    p.add_argument("--units", choices=("mag", "nmgy"), default="mag", help="values are AB mags or fluxes in nanomaggies")


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("noise", help="fit or validate the photometric noise model on a catalogue")
    sub = p.add_subparsers(dest="noise_command", metavar="ACTION")
    sub.required = True
    fit = sub.add_parser("fit", help="fit p(sigma_m | m) per band and write a noise-model JSON")
    _catalogue_args(fit)
    fit.add_argument("--bands", default="sdss2010-ugriz", help="filter names/group the columns correspond to")
    fit.add_argument("--n-bins", type=int, default=40)
    fit.add_argument("--scatter", choices=("mad", "std"), default="mad")
    fit.add_argument("--out", required=True, help="output JSON")
    fit.set_defaults(func=_fit)
    val = sub.add_parser("validate", help="compare a noise model's sigma distribution with a catalogue's")
    _catalogue_args(val)
    val.add_argument("--model", default=None, help="noise-model JSON (default: shipped SDSS fit)")
    val.set_defaults(func=_validate)


def _fit(args) -> int:
    from pathlib import Path

    from ..model.filters import resolve_filter_names
    from ..simulate.noise import fit_noise_model, read_mag_catalogue

    bands = resolve_filter_names(args.bands if "," not in args.bands else tuple(args.bands.split(",")))
    mag, sig, _ = read_mag_catalogue(args.catalog, mag_cols=_cols(args.mag_cols), err_cols=_cols(args.err_cols), units=args.units)
    if mag.shape[1] != len(bands):
        raise InputError(f"{mag.shape[1]} magnitude columns but {len(bands)} bands {bands}")
    noise = fit_noise_model(mag, sig, bands, n_bins=args.n_bins, scatter=args.scatter,
                            meta={"catalogue": Path(args.catalog).name, "derived_by": "sedflow-jax noise fit"})
    noise.save(args.out)
    print(f"wrote {args.out} ({len(bands)} bands, {args.n_bins} bins, scatter={args.scatter})")
    return 0


def _validate(args) -> int:
    from ..simulate.noise import load_noise_model, read_mag_catalogue, validate_noise_model

    noise = load_noise_model(args.model)
    mag, sig, _ = read_mag_catalogue(args.catalog, mag_cols=_cols(args.mag_cols), err_cols=_cols(args.err_cols), units=args.units)
    res = validate_noise_model(noise, mag, sig)
    print(f"{'band':12s} {'n':>5s} {'PIT KS D':>9s} {'bin KS med':>10s} {'bin KS max':>10s} {'med rel err':>11s}")
    for b, s in res.items():
        print(f"{b:12s} {s['n']:5d} {s['pit_ks']:9.3f} {s['bin_ks_median']:10.3f} {s['bin_ks_max']:10.3f} {s['median_rel_err_max']:11.3f}")
    return 0
