"""``sedflow-jax validate calibration|compare``: posterior checks on HDF5 sample files.

Two inputs are read (told apart by the posterior file's ``schema_version`` attribute or /flags + /median):

* a sample file (:mod:`sedflow_jax.validation.samples_file`): dataset ``samples (n_gal, n_draw, n_param)``,
  optional ``truth (n_gal, n_param)``, optional attribute ``param_names``; every value must be finite;
* the posterior file of ``sedflow-jax infer`` (read by :func:`sedflow_jax.pipeline.read_posterior_file`):
  ``/samples`` (absent with ``--no-samples``: an error), the truth from ``/input/true_<param>`` (the example
  catalogue's ``true_*`` columns) unless ``--truth`` is given. Rows flagged invalid, or without a finite truth,
  and parameters without any truth are left out with a printed count, never silently.
"""

from __future__ import annotations

import argparse
import dataclasses

from ..errors import InputError

__all__ = ["add_parser"]


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("validate", help="posterior calibration (SBC, coverage, TARP) and comparisons (W/sigma, C2ST)")
    sub = p.add_subparsers(dest="validate_command", metavar="ACTION")
    sub.required = True

    cal = sub.add_parser("calibration", help="SBC ranks, coverage and TARP of one sample file against the truth")
    cal.add_argument("samples", help="sample HDF5 file: samples (n_gal, n_draw, n_param) [+ truth], or the posterior "
                     "file of `sedflow-jax infer` (truth from its /input/true_<param> columns)")
    cal.add_argument("--truth", default=None,
                     help="file holding a 'truth' (n_gal, n_param) dataset (HDF5) or array (.npy); default: the samples "
                          "file's truth")
    cal.add_argument("--n-bins", type=int, default=10, help="SBC histogram bins (SEDflow: 10)")
    cal.add_argument("--tarp-refs", type=int, default=4, help="TARP random references per galaxy")
    cal.add_argument("--bootstrap", type=int, default=100, help="TARP galaxy-bootstrap resamples (0: none)")
    cal.add_argument("--seed", type=int, default=0)
    cal.add_argument("--json", default=None, help="write the summary as JSON here")
    cal.add_argument("--plots", default=None, metavar="DIR", help="write sbc.png, pp.png and tarp.png into DIR")
    cal.set_defaults(func=_calibration)

    cmp_ = sub.add_parser("compare", help="per-galaxy W/sigma and C2ST of file A against reference file B")
    cmp_.add_argument("a", help="sample file (or infer's posterior file) under test (e.g. ANPE)")
    cmp_.add_argument("b", help="reference sample or posterior file (e.g. NUTS), same galaxies and parameters")
    cmp_.add_argument("--galaxies", type=int, nargs="*", default=None, metavar="I", help="galaxy indices (default all)")
    cmp_.add_argument("--classifier", choices=("mlp", "gbt", "rf"), default="mlp")
    cmp_.add_argument("--max-samples", type=int, default=2000, help="draws per set used by C2ST")
    cmp_.add_argument("--no-c2st", action="store_true", help="skip the classifier test")
    cmp_.add_argument("--seed", type=int, default=1)
    cmp_.add_argument("--json", default=None, help="write per-galaxy results as JSON here")
    cmp_.add_argument("--corner", default=None, metavar="DIR", help="write corner_<i>.png overlays into DIR")
    cmp_.set_defaults(func=_compare)


def _read(path):
    """A sample file or the posterior file of ``sedflow-jax infer`` (told apart by its ``schema_version``
    attribute or its /flags and /median datasets), as a :class:`~sedflow_jax.validation.SampleFile`."""
    from pathlib import Path

    from ..io.hdf5 import open_hdf5
    from ..validation import read_samples_file

    if not Path(path).is_file():
        raise FileNotFoundError(f"sample file {path} does not exist.")
    with open_hdf5(path, error=InputError, message="{path} is not a readable HDF5 file: {err}") as fh:
        posterior = "schema_version" in fh.attrs or ("flags" in fh and "median" in fh)
    return _read_posterior(path) if posterior else read_samples_file(path)


def _read_posterior(path):
    """infer's posterior file: /samples (n, S, n_param), /flags, truth from the /input/true_<param> columns
    (NaN where a column is missing), through :func:`sedflow_jax.pipeline.read_posterior_file`."""
    import numpy as np

    from ..params import THETA_NAMES
    from ..pipeline import read_posterior_file
    from ..validation import SampleFile

    data = read_posterior_file(path)
    if "samples" not in data:
        raise InputError(f"{path}: no /samples: rerun infer without --no-samples")
    samples = np.asarray(data["samples"], np.float64)
    names = tuple(str(n) for n in data["attrs"].get("param_names", THETA_NAMES))
    n = samples.shape[0]
    if samples.ndim != 3 or samples.shape[2] != len(names) or data["flags"].shape != (n,):
        raise InputError(f"{path}: /samples has shape {samples.shape} and /flags {data['flags'].shape}; expected "
                         f"(n, S, {len(names)}) and (n,)")
    columns = {k: data.get(f"input/true_{k}") for k in names}
    truth = None
    if any(c is not None for c in columns.values()):
        try:
            truth = np.stack([np.full(n, np.nan) if c is None else np.asarray(c, np.float64).reshape(n)
                              for c in columns.values()], axis=1)
        except ValueError as err:
            raise InputError(f"{path}: a /input/true_<param> column is not {n} numbers ({err})") from None
    return SampleFile(samples=np.moveaxis(samples, 1, 0), truth=truth, param_names=names, flags=data["flags"])


def _load_truth(args, sf):
    if args.truth is None:
        if sf.truth is None and sf.flags is not None:
            raise InputError(f"{args.samples}: no /input/true_<param> columns (infer copies a catalogue's true_* "
                             f"columns); pass --truth FILE.")
        if sf.truth is None:
            raise InputError(f"{args.samples} has no 'truth' dataset; pass --truth FILE.")
        return sf.truth
    return _read_truth_file(args.truth)


def _read_truth_file(path):
    """``--truth``: an .npy array or an HDF5 file with a 'truth' dataset, (n_gal, n_param)."""
    from pathlib import Path

    import numpy as np

    from ..io.hdf5 import open_hdf5

    if not Path(path).is_file():
        raise FileNotFoundError(f"--truth {path} does not exist.")
    if str(path).endswith(".npy"):
        try:
            return np.asarray(np.load(path, allow_pickle=False), np.float64)
        except (OSError, ValueError) as err:
            raise InputError(f"--truth {path}: not a readable .npy array of numbers ({err})") from None
    with open_hdf5(path, error=InputError, message="--truth {path}: not a readable HDF5 file ({err})") as fh:
        if "truth" not in fh:
            raise InputError(f"{path} has no 'truth' dataset.")
        return np.asarray(fh["truth"][...], np.float64)


def _calibration_inputs(args):
    """``(samples, truth, param_names, notes, n_rows)`` ready for the metrics (``n_rows``: the file's galaxies):
    for a posterior file of infer, parameters without any truth and rows that cannot be validated are left out,
    each with a line in ``notes`` saying how many and why."""
    import numpy as np

    from ..validation.samples_file import usable_rows

    sf = _read(args.samples)
    truth = _load_truth(args, sf)
    n_gal, n_param = sf.samples.shape[1:]
    if truth.shape != (n_gal, n_param):
        raise InputError(f"{args.truth or args.samples}: truth must be (n_gal, n_param) = {(n_gal, n_param)} to "
                         f"match {args.samples}; got {truth.shape}.")
    samples, names, notes = sf.samples, sf.param_names, []
    if sf.flags is not None:
        has = np.any(np.isfinite(truth), axis=0)
        if not has.any():
            raise InputError(f"{args.truth or args.samples}: no finite truth value for any parameter.")
        if not has.all():
            notes.append(f"left out {int((~has).sum())} parameters without truth: "
                         f"{', '.join(n for n, h in zip(names, has) if not h)}")
            samples, truth, names = samples[..., has], truth[:, has], tuple(n for n, h in zip(names, has) if h)
    rows, more = usable_rows(dataclasses.replace(sf, samples=samples), truth)
    if rows.size == 0:
        raise InputError(f"{args.samples}: no row left to validate ({'; '.join(more)}).")
    return samples[:, rows], truth[rows], names, notes + more, n_gal


def _calibration(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..io import atomic_write_json
    from ..validation import coverage_from_ranks, rank_uniformity, sbc_ranks, tarp_coverage

    samples, truth, names, notes, n_rows = _calibration_inputs(args)
    for line in notes:
        print(f"{args.samples}: {line}")
    n_draw, n_gal, n_param = samples.shape
    ranks = sbc_ranks(samples, truth)
    uni = rank_uniformity(ranks, n_bins=args.n_bins, n_draw=n_draw)
    cov = coverage_from_ranks(ranks)
    tarp = tarp_coverage(samples, truth, n_refs=args.tarp_refs, rng=args.seed, n_bootstrap=args.bootstrap)
    print(f"{args.samples}: n_gal={n_gal}, n_draw={n_draw}, n_param={n_param}")
    print(f"{'parameter':20s} {'KS p':>9s} {'chi2 p':>9s} {'max|cov-c|':>11s}")
    for j, name in enumerate(names):
        print(f"{name:20s} {uni.ks_pvalue[j]:9.3g} {uni.chi2_pvalue[j]:9.3g} {cov.max_abs_deviation[j]:11.3f}")
    print(f"TARP: ATC = {tarp.atc:+.4f}, max|ECP - alpha| = {tarp.max_abs_deviation:.3f}")
    summary = {
        "samples": str(args.samples), "n_gal": n_gal, "n_rows": n_rows, "notes": notes, "n_draw": n_draw,
        "param_names": list(names),
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
        plot_sbc_histograms(ranks, out / "sbc.png", param_names=names, n_bins=args.n_bins, n_draw=n_draw)
        plot_pp(ranks, out / "pp.png", param_names=names)
        plot_tarp(tarp, out / "tarp.png")
        print(f"plots written to {out}")
    return 0


def _compare_galaxies(args, a, b) -> list[int]:
    """The galaxy (row) indices to compare: ``--galaxies`` or all, less rows either file cannot provide (posterior
    files of infer: invalid rows), with a printed count."""
    from ..validation.samples_file import usable_rows

    n_gal = a.samples.shape[1]
    idx = list(range(n_gal)) if args.galaxies is None else args.galaxies
    bad = [i for i in idx if not 0 <= i < n_gal]
    if bad:
        raise InputError(f"--galaxies {bad} out of range for n_gal={n_gal}.")
    for path, sf in ((args.a, a), (args.b, b)):
        rows, notes = usable_rows(sf)
        for line in notes:
            print(f"{path}: {line}")
        ok = set(rows.tolist())
        drop = [i for i in idx if i not in ok]
        if drop:
            print(f"{path}: left out {len(drop)} of the {len(idx)} galaxies to compare (no usable samples): "
                  f"{drop[:10]}{' ...' if len(drop) > 10 else ''}")
        idx = [i for i in idx if i in ok]
    if not idx:
        raise InputError(f"no galaxy left to compare in {args.a} and {args.b}.")
    return idx


def _compare(args: argparse.Namespace) -> int:
    from pathlib import Path

    import numpy as np

    from ..io import atomic_write_json
    from ..validation import c2st, wasserstein_over_sigma

    a, b = _read(args.a), _read(args.b)
    if a.samples.shape[1:] != b.samples.shape[1:]:
        raise InputError(f"{args.a} and {args.b} must hold the same (n_gal, n_param); got "
                         f"{a.samples.shape[1:]} and {b.samples.shape[1:]}.")
    idx = _compare_galaxies(args, a, b)
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

            truth = None if b.truth is None or not np.all(np.isfinite(b.truth[i])) else b.truth[i]
            plot_corner_overlay(a.samples[:, i], b.samples[:, i], Path(args.corner) / f"corner_{i}.png",
                                param_names=a.param_names, labels=(Path(args.a).stem, Path(args.b).stem), truth=truth)
    if args.json:
        atomic_write_json(args.json, {"a": str(args.a), "b": str(args.b), "param_names": list(a.param_names),
                                      "galaxies": rows})
        print(f"results written to {args.json}")
    return 0
