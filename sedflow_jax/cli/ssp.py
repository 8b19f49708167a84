"""``sedflow-jax ssp``: build and inspect SSP tables.

* ``sedflow-jax ssp build``: build (or refresh) the cached default BC03 table and print its path.
  ``--out PATH`` writes to PATH instead; ``--kind fsps`` builds with python-fsps (needs ``SPS_HOME``).
* ``sedflow-jax ssp info [PATH]``: summary of a table file (default: the cached default table).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["add_parser"]


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the ``ssp`` command and its sub-commands on ``subparsers``.

    Args:
        subparsers: the object returned by ``ArgumentParser.add_subparsers()``.

    Returns:
        The ``ssp`` parser.
    """
    from sedflow_jax.sps.bc03 import DEFAULT_N_WAVE, DEFAULT_WAVE_MAX_AA, DEFAULT_WAVE_MIN_AA

    parser = subparsers.add_parser("ssp", help="build and inspect SSP spectral tables")
    sub = parser.add_subparsers(dest="ssp_command", metavar="{build,info}")
    sub.required = True

    build = sub.add_parser("build", help="build an SSP table (default: refresh the cached BC03 table)")
    build.add_argument("--kind", choices=("bc03", "fsps"), default="bc03", help="source models (default bc03)")
    build.add_argument("--n-wave", type=int, default=DEFAULT_N_WAVE, help=f"log wavelength bins (default {DEFAULT_N_WAVE})")
    build.add_argument("--wave-min", type=float, default=DEFAULT_WAVE_MIN_AA, help="lower edge, Angstrom (default %(default)g)")
    build.add_argument("--wave-max", type=float, default=DEFAULT_WAVE_MAX_AA, help="upper edge, Angstrom (default %(default)g)")
    build.add_argument("--out", type=Path, default=None, help="output HDF5 file (default: the cache, for bc03)")
    build.add_argument("--force", action="store_true", help="rebuild the cached table even if it is up to date")
    build.set_defaults(func=_cmd_build)

    info = sub.add_parser("info", help="summarise an SSP table file")
    info.add_argument("path", nargs="?", type=Path, default=None, help="HDF5 file (default: the cached default table)")
    info.set_defaults(func=_cmd_info)
    return parser


def _cmd_build(args: argparse.Namespace) -> int:
    from sedflow_jax.sps.io import save_ssp_table

    if args.kind == "bc03" and args.out is None:
        from sedflow_jax.sps.bc03 import default_ssp_path

        path = default_ssp_path(args.n_wave, args.wave_min, args.wave_max, rebuild=args.force)
    else:
        if args.kind == "bc03":
            from sedflow_jax.sps.bc03 import build_bc03_table as build
        else:
            from sedflow_jax.sps.fsps import build_fsps_table as build
        out = args.out
        if out is None:
            from sedflow_jax.sps.bc03 import cache_dir

            out = cache_dir() / f"ssp_fsps_n{args.n_wave}_w{args.wave_min:g}-{args.wave_max:g}.h5"
        print(f"sedflow_jax: building {args.kind} SSP table -> {out} ...", file=sys.stderr, flush=True)
        table = build(args.n_wave, args.wave_min, args.wave_max)
        out.parent.mkdir(parents=True, exist_ok=True)
        path = save_ssp_table(table, out)
    print(path)
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    from sedflow_jax.sps.io import load_ssp_table, ssp_table_info

    if args.path is None:
        from sedflow_jax.sps.bc03 import default_ssp_path

        path = default_ssp_path()
    else:
        path = args.path
    print(ssp_table_info(load_ssp_table(path)))
    return 0
