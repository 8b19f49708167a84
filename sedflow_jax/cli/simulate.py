"""``sedflow-jax simulate``: write a training set (prior -> photometry -> noise) to HDF5."""

from __future__ import annotations

import argparse

__all__ = ["add_parser"]


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("simulate", help="simulate an ANPE training set into an HDF5 file",
                              description="Simulate N training rows (theta, z, fluxes, noise, x, cut flags) into HDF5, "
                                          "chunk by chunk; the same --seed gives the same rows for any --chunk.")
    p.add_argument("--n", type=int, required=True, help="number of draws (rows)")
    p.add_argument("--out", required=True, help="output HDF5 path (written as OUT.partial until complete)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--chunk", type=int, default=16384, help="rows per compiled step (does not change the rows)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run from OUT.partial")
    p.add_argument("--overwrite", action="store_true", help="replace OUT or discard OUT.partial")
    p.add_argument("--bands", default="sdss2010-ugriz", help="speclite filter names or group (comma-separated)")
    p.add_argument("--z-range", type=float, nargs=2, default=(0.0, 0.2), metavar=("ZMIN", "ZMAX"),
                   help="redshift distribution U(ZMIN, ZMAX)")
    p.add_argument("--noise-model", default=None, help="noise-model JSON (default: shipped SDSS fit)")
    p.add_argument("--mag-cut", action="store_true",
                   help="flag rows whose noiseless magnitudes lie outside the noise model's calibration catalogue")
    p.add_argument("--ssp", default=None, help="DSPS-format SSP HDF5 file (default: cached BC03 table)")
    p.add_argument("--basis", default=None, help="directory of PROVABGS basis text files (default: package basis)")
    p.add_argument("--burst-rule", choices=("fsps_quirk", "age"), default="fsps_quirk")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_simulate)


def _simulate(args: argparse.Namespace) -> int:
    from ..model import load_provabgs_basis
    from ..simulate import FLAG_BITS, SimulationConfig, build_simulator, load_noise_model, simulate_to_hdf5

    bands = tuple(b.strip() for b in args.bands.split(",")) if "," in args.bands else args.bands
    cfg = SimulationConfig(n=args.n, seed=args.seed, bands=bands, redshift_range=tuple(args.z_range),
                           mag_cut=args.mag_cut, burst_rule=args.burst_rule)
    noise = load_noise_model(args.noise_model) if args.noise_model else None
    basis = load_provabgs_basis(args.basis) if args.basis else None
    sim, meta = build_simulator(cfg, noise=noise, ssp=args.ssp, basis=basis)
    res = simulate_to_hdf5(sim, meta, args.out, chunk=args.chunk, resume=args.resume, overwrite=args.overwrite,
                           progress=not args.no_progress)
    print(f"wrote {res['path']}: {res['n']} rows, {res['n_valid']} valid (flags == 0), "
          f"{res['rows_per_s']:.0f} rows/s in this run")
    for name in FLAG_BITS:
        print(f"  flagged {name:24s} {res[name]:>10d}")
    return 0
