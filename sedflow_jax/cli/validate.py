"""``sedflow-jax validate calibration|compare``: posterior checks on HDF5 sample files.

Sample file layout (see :mod:`sedflow_jax.validation.samples_file`): dataset
``samples (n_gal, n_draw, n_param)``, optional ``truth (n_gal, n_param)``, optional attribute
``param_names``.
"""

from __future__ import annotations

import argparse

from ..errors import InputError

__all__ = ["add_parser"]


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("validate", help="posterior calibration (SBC, coverage, TARP) and comparisons (W/sigma, C2ST)")
    sub = p.add_subparsers(dest="validate_command", metavar="ACTION")
    sub.required = True

    cal = sub.add_parser("calibration", help="SBC ranks, coverage and TARP of one sample file against the truth")
    cal.add_argument("samples", help="sample HDF5 file: samples (n_gal, n_draw, n_param) [+ truth]")
    cal.add_argument("--truth", default=None,
                     help="file holding a 'truth' (n_gal, n_param) dataset (HDF5) or array (.npy); default: the samples file")
    cal.add_argument("--n-bins", type=int, default=10, help="SBC histogram bins (SEDflow: 10)")
    cal.add_argument("--tarp-refs", type=int, default=4, help="TARP random references per galaxy")
    cal.add_argument("--bootstrap", type=int, default=100, help="TARP galaxy-bootstrap resamples (0: none)")
    cal.add_argument("--seed", type=int, default=0)
    cal.add_argument("--json", default=None, help="write the summary as JSON here")
    cal.add_argument("--plots", default=None, metavar="DIR", help="write sbc.png, pp.png and tarp.png into DIR")
    cal.set_defaults(func=_calibration)

    cmp_ = sub.add_parser("compare", help="per-galaxy W/sigma and C2ST of file A against reference file B")
    cmp_.add_argument("a", help="sample file under test (e.g. ANPE)")
    cmp_.add_argument("b", help="reference sample file (e.g. NUTS), same galaxies and parameters")
    cmp_.add_argument("--galaxies", type=int, nargs="*", default=None, metavar="I", help="galaxy indices (default all)")
    cmp_.add_argument("--classifier", choices=("mlp", "gbt", "rf"), default="mlp")
    cmp_.add_argument("--max-samples", type=int, default=2000, help="draws per set used by C2ST")
    cmp_.add_argument("--no-c2st", action="store_true", help="skip the classifier test")
    cmp_.add_argument("--seed", type=int, default=1)
    cmp_.add_argument("--json", default=None, help="write per-galaxy results as JSON here")
    cmp_.add_argument("--corner", default=None, metavar="DIR", help="write corner_<i>.png overlays into DIR")
    cmp_.set_defaults(func=_compare)


def _load_truth(args, sf):
    import numpy as np

    if args.truth is None:
        if sf.truth is None:
            raise InputError(f"{args.samples} has no 'truth' dataset; pass --truth FILE.")
        return sf.truth
    if str(args.truth).endswith(".npy"):
        return np.load(args.truth)
    import h5py

    with h5py.File(args.truth, "r") as fh:
        if "truth" not in fh:
            raise InputError(f"{args.truth} has no 'truth' dataset.")
        return fh["truth"][...]


def _calibration(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..io import atomic_write_json
    from ..validation import coverage_from_ranks, rank_uniformity, read_samples_file, sbc_ranks, tarp_coverage

    sf = read_samples_file(args.samples)
    truth = _load_truth(args, sf)
    n_draw, n_gal, n_param = sf.samples.shape
    ranks = sbc_ranks(sf.samples, truth)
    uni = rank_uniformity(ranks, n_bins=args.n_bins, n_draw=n_draw)
    cov = coverage_from_ranks(ranks)
    tarp = tarp_coverage(sf.samples, truth, n_refs=args.tarp_refs, rng=args.seed, n_bootstrap=args.bootstrap)
    print(f"{args.samples}: n_gal={n_gal}, n_draw={n_draw}, n_param={n_param}")
    print(f"{'parameter':20s} {'KS p':>9s} {'chi2 p':>9s} {'max|cov-c|':>11s}")
    for j, name in enumerate(sf.param_names):
        print(f"{name:20s} {uni.ks_pvalue[j]:9.3g} {uni.chi2_pvalue[j]:9.3g} {cov.max_abs_deviation[j]:11.3f}")
    print(f"TARP: ATC = {tarp.atc:+.4f}, max|ECP - alpha| = {tarp.max_abs_deviation:.3f}")
    summary = {
        "samples": str(args.samples), "n_gal": n_gal, "n_draw": n_draw, "param_names": list(sf.param_names),
        "ks_pvalue": uni.ks_pvalue.tolist(), "ks_stat": uni.ks_stat.tolist(), "chi2_pvalue": uni.chi2_pvalue.tolist(),
        "coverage_levels": cov.levels.tolist(), "coverage": cov.coverage.tolist(),
        "coverage_max_abs_deviation": cov.max_abs_deviation.tolist(),
        "tarp_atc": tarp.atc, "tarp_max_abs_deviation": tarp.max_abs_deviation,
        "tarp_alpha": tarp.alpha.tolist(), "tarp_ecp": tarp.ecp.tolist(),
    }
    if args.json:
        atomic_write_json(args.json, summary)
        print(f"summary written to {args.json}")
    if args.plots:
        from ..validation.plots import plot_pp, plot_sbc_histograms, plot_tarp

        out = Path(args.plots)
        plot_sbc_histograms(ranks, out / "sbc.png", param_names=sf.param_names, n_bins=args.n_bins, n_draw=n_draw)
        plot_pp(ranks, out / "pp.png", param_names=sf.param_names)
        plot_tarp(tarp, out / "tarp.png")
        print(f"plots written to {out}")
    return 0


def _compare(args: argparse.Namespace) -> int:
    from pathlib import Path

    import numpy as np

    from ..io import atomic_write_json
    from ..validation import c2st, read_samples_file, wasserstein_over_sigma

    a, b = read_samples_file(args.a), read_samples_file(args.b)
    if a.samples.shape[1:] != b.samples.shape[1:]:
        raise InputError(f"{args.a} and {args.b} must hold the same (n_gal, n_param); got "
                         f"{a.samples.shape[1:]} and {b.samples.shape[1:]}.")
    n_gal = a.samples.shape[1]
    idx = list(range(n_gal)) if args.galaxies is None else args.galaxies
    bad = [i for i in idx if not 0 <= i < n_gal]
    if bad:
        raise InputError(f"--galaxies {bad} out of range for n_gal={n_gal}.")
    rows = []
    print(f"{'galaxy':>6s} {'max W/sigma':>11s} {'worst param':20s} {'C2ST':>6s}")
    for i in idx:
        w = wasserstein_over_sigma(a.samples[:, i], b.samples[:, i])
        acc = None if args.no_c2st else c2st(a.samples[:, i], b.samples[:, i], seed=args.seed,
                                             classifier=args.classifier, max_samples=args.max_samples)
        k = int(np.argmax(w))
        print(f"{i:6d} {w[k]:11.3f} {a.param_names[k]:20s} {'-' if acc is None else f'{acc:.3f}':>6s}")
        rows.append({"galaxy": i, "w_over_sigma": w.tolist(), "c2st": acc})
        if args.corner:
            from ..validation.plots import plot_corner_overlay

            truth = None if b.truth is None else b.truth[i]
            plot_corner_overlay(a.samples[:, i], b.samples[:, i], Path(args.corner) / f"corner_{i}.png",
                                param_names=a.param_names, labels=(Path(args.a).stem, Path(args.b).stem), truth=truth)
    if args.json:
        atomic_write_json(args.json, {"a": str(args.a), "b": str(args.b), "param_names": list(a.param_names),
                                      "galaxies": rows})
        print(f"results written to {args.json}")
    return 0
