"""``sedflow-jax model demo``: evaluate the SED model for one galaxy, print ugriz, plot its spectrum."""

from __future__ import annotations

import argparse

__all__ = ["add_parser"]

# A star-forming, Milky-Way-like galaxy (THETA_NAMES order).
DEMO_THETA = (10.8, 0.30, 0.35, 0.20, 0.15, 0.05, 1.5, 6e-3, 4e-3, 0.5, 0.4, -0.3)


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("model", help="evaluate the PROVABGS SED model")
    sub = p.add_subparsers(dest="model_command", metavar="ACTION")
    sub.required = True
    demo = sub.add_parser("demo", help="one galaxy: ugriz photometry, derived properties, spectrum plot")
    demo.add_argument("--theta", type=float, nargs=12, default=DEMO_THETA, metavar="X",
                      help="12 physical parameters in THETA_NAMES order (default: a star-forming galaxy)")
    demo.add_argument("--redshift", type=float, default=0.1)
    demo.add_argument("--ssp", default=None, help="DSPS-format SSP HDF5 file (default: cached BC03 table)")
    demo.add_argument("--basis", default=None, help="directory of PROVABGS basis text files (default: package basis)")
    demo.add_argument("--filters", default="sdss2010-ugriz", help="speclite filter names or group")
    demo.add_argument("--burst-rule", choices=("fsps_quirk", "age"), default="fsps_quirk")
    demo.add_argument("--out", default="sedflow_demo_spectrum.png", help="spectrum plot (PNG)")
    demo.add_argument("--x64", action="store_true", help="evaluate in float64")
    demo.set_defaults(func=_demo)


def _demo(args: argparse.Namespace) -> int:
    import jax

    if args.x64:
        jax.config.update("jax_enable_x64", True)
    import equinox as eqx
    import numpy as np

    from ..model import ProvabgsModel, validate_inputs
    from ..params import DERIVED_NAMES, THETA_NAMES
    from ..photometry import flux_to_mag
    from ..plotting import plot_spectrum

    basis = args.basis  # None: package basis; a directory: PROVABGS text files
    z_max = max(1.0, args.redshift)
    model = ProvabgsModel.build(args.ssp, basis, args.filters, z_max=z_max, burst_rule=args.burst_rule)
    full = ProvabgsModel.build(args.ssp, basis, args.filters, z_max=z_max, burst_rule=args.burst_rule,
                               crop_to_filters=False)
    theta, z = validate_inputs(args.theta, args.redshift, z_max=model.z_max)
    theta, z = theta[0], z[0]
    flux = np.asarray(eqx.filter_jit(model)(theta, z))
    props = np.asarray(eqx.filter_jit(model.properties)(theta, z))
    wave, flam = (np.asarray(a) for a in eqx.filter_jit(full.observed_spectrum)(theta, z))

    print(f"PROVABGS NMF+burst model  (SSP: {dict(model.ssp_attrs).get('library', dict(model.ssp_attrs).get('source', '?'))}; "
          f"basis: {model.basis_name}; burst rule: {model.burst_rule}; dtype: {model.dtype})")
    print(f"redshift = {z:g}")
    for name, value in zip(THETA_NAMES, theta):
        print(f"  {name:20s} {value: .6g}")
    print(f"{'band':16s} {'flux [nmgy]':>14s} {'AB mag':>9s}")
    for name, f in zip(model.filters.names, flux):
        print(f"{name:16s} {f:14.6g} {flux_to_mag(f):9.4f}")
    print("derived properties:")
    for name, value in zip(DERIVED_NAMES, props):
        print(f"  {name:20s} {value: .6g}")
    plot_spectrum(wave, flam, model.filters, flux, z, args.out)
    print(f"spectrum plot written to {args.out}")
    return 0
